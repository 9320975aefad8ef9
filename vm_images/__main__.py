"""``python -m vm_images``: the ``sciboard vm`` commands on their own."""

import sys

from vm_images.cli import main

sys.exit(main())
