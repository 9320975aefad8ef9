"""Ctrl-C for runs that resume: an interrupt is remembered until the run reaches a safe point.

SIGINT still raises :class:`KeyboardInterrupt` at once, but code outside our control can swallow it:
a C extension that imports a module while it initialises clears any error of that import, including
the interrupt (torch's ``import torch._C`` importing numpy does). Inside :func:`remembered_interrupts`
the interrupt is also recorded, and :func:`honour_interrupt`, called between units of work, raises it
again; the run then stops there and continues from its last saved state when started again.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_pending = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Within the block, remember every SIGINT (it still raises KeyboardInterrupt at once).

    Outside the main thread (where Python cannot set signal handlers) this does nothing.
    """
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous is not _on_sigint:  # the outermost block: the run is over
            _pending = False


def honour_interrupt() -> None:
    """Raise KeyboardInterrupt if an interrupt arrived inside :func:`remembered_interrupts` (a safe point)."""
    if _pending:
        raise KeyboardInterrupt
