"""What the host and the guest agent agree on: protocol version, names in the desktop folder, headers.

Standard library only; both sides import this module and nothing else of each other.
"""

from __future__ import annotations

from pathlib import PurePosixPath

#: Bumped whenever a request, a reply or a name below changes; the host refuses a guest that speaks another.
PROTOCOL_VERSION = 2
#: The guest's Unix socket, in the desktop folder (the local provider; a VM's guest listens on TCP instead).
SOCKET_NAME = "guest.sock"
#: The per-desktop token file the host writes into the desktop folder; the guest reads it once and deletes it.
TOKEN_NAME = "token"
#: The guest's log (written by the process that starts it).
LOG_NAME = "guest.log"
#: Xvfb's memory-mapped framebuffer (``-fbdir``), relative to the desktop folder.
FRAMEBUFFER = PurePosixPath("fb") / "Xvfb_screen0"
#: How every request carries the token.
AUTH_HEADER = "Authorization"
AUTH_SCHEME = "Bearer"


class ProtocolMismatch(RuntimeError):
    """The guest speaks another protocol version than the host."""


def check_version(reported: object) -> None:
    """Raise :class:`ProtocolMismatch` unless ``reported`` (a guest's ``/health`` ``protocol``) is ours."""
    if reported != PROTOCOL_VERSION:
        raise ProtocolMismatch(
            f"the guest agent speaks protocol {reported!r} but this host speaks {PROTOCOL_VERSION}: host and guest "
            "come from different SciBoard versions (a VM image or a desktop started by another checkout?); "
            "restart the desktop from this installation")
