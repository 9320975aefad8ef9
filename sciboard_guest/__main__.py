"""``python -m sciboard_guest``: start a desktop and serve the guest agent on it."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import uuid
from pathlib import Path

from sciboard_guest import processes
from sciboard_guest.desktop import Desktop
from sciboard_guest.server import Guest, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sciboard_guest", description=__doc__)
    parser.add_argument("--workdir", type=Path, required=True, help="scratch directory for this desktop")
    parser.add_argument("--token-file", type=Path, required=True, help="file holding the per-desktop token")
    parser.add_argument("--delete-token-file", action="store_true",
                        help="delete the token file once read (the app, started later, cannot read it)")
    parser.add_argument("--socket", type=Path, help="serve on this Unix socket instead of TCP")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (loopback or the VM-only net)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="where to write the chosen port")
    parser.add_argument("--screen", default="1920x1080", help="WIDTHxHEIGHT of an owned Xvfb")
    parser.add_argument("--display", help="attach to this X display instead of starting Xvfb")
    parser.add_argument("--xauthority", help="Xauthority of --display")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="shut the desktop down when the process that started the guest exits")
    args = parser.parse_args(argv)

    if args.bind not in ("127.0.0.1", "::1", "localhost") and not args.bind.startswith("10.0.2."):
        parser.error("--bind must be loopback or the VM-only user network (10.0.2.x)")
    token = args.token_file.read_text().strip()
    if len(token) < 16:
        parser.error("the token must be at least 16 characters")
    if args.delete_token_file:
        args.token_file.unlink(missing_ok=True)
    desktop_id = os.environ.get(processes.MARKER) or uuid.uuid4().hex
    os.environ[processes.MARKER] = desktop_id
    processes.become_subreaper()
    width, height = (int(v) for v in args.screen.lower().split("x"))
    desktop = Desktop(workdir=args.workdir, desktop_id=desktop_id, screen_size=(width, height),
                      display=args.display, xauthority=args.xauthority)
    guest = Guest(desktop)
    signal.signal(signal.SIGTERM, lambda *_: guest.stopping.set())
    try:
        guest.start()
    except Exception as err:  # noqa: BLE001  (whatever failed, the desktop is torn down and the cause printed)
        desktop.shutdown()
        print(f"sciboard_guest: desktop failed to start: {err}", file=sys.stderr)
        return 1
    serve(guest, token, args.bind, args.port, args.port_file, unix_socket=args.socket,
          exit_with_parent=args.exit_with_parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
