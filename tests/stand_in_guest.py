"""The guest agent with every app's program replaced by a stand-in, for tests/test_app_exit.py.

Run inside a desktop sandbox as ``python3 stand_in_guest.py MODE ARGS...``: ARGS are ``python -m
sciboard_guest``'s. MODE ``exit``: each app writes a line to its log and exits with code 7; ``crash``:
each app kills itself with SIGSEGV. Each app's own readiness loop and HOME preparation stay (but for
apps whose preparation needs the app installed), and the readiness timeout is an hour, so a loop that
did not notice the exit would hit the test's timeout instead.
"""

from __future__ import annotations

import dataclasses
import sys

from sciboard_guest import __main__ as guest_main
from sciboard_guest import apps

PROGRAMS = {
    "exit": [sys.executable, "-c", "import sys; print('cannot start: no such thing'); sys.exit(7)"],
    "crash": [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
}
#: Apps whose HOME preparation reads the installed app (GRASS builds its data, Celestia copies its config).
NEEDS_THE_APP = ("grass", "celestia")


def stand_ins(program: list[str]) -> dict[str, apps.GuestApp]:
    """Every known app with its program replaced by ``program`` and an hour's readiness timeout."""
    found = {}
    for name in apps.KNOWN_APPS:
        real = apps.get(name)
        stand_in = dataclasses.replace(real, argv=program, prepare=None if name in NEEDS_THE_APP else real.prepare,
                                       ready_timeout=3600.0)
        stand_in.check_installed = lambda: None  # type: ignore[method-assign]  # ChimeraX and Celestia are not
        found[name] = stand_in
    return found


if __name__ == "__main__":
    replaced = stand_ins(PROGRAMS[sys.argv[1]])
    apps.get = replaced.__getitem__  # type: ignore[assignment]
    sys.exit(guest_main.main(sys.argv[2:]))
