"""``python -m sciboard_gym.cli``: the ``sciboard`` command."""

import sys

from sciboard_gym.cli import main

sys.exit(main())
