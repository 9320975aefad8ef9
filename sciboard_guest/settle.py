"""Settle detection on X DAMAGE events: a step ends when the X server reports no drawing for a while.

The X server tells us (one ``DamageNotify`` per growth of the damaged area's bounding box,
re-armed after each) whenever anything is drawn on the root window, i.e. anywhere on the screen;
a blinking text caret's redraw (a sliver a few pixels wide) is not counted. No frame is copied or compared: waiting costs
a ``select`` on the X connection. The polling settle (:meth:`sciboard_guest.screen.Screen.settle`),
which compares whole frames, is kept for the benchmark's side-by-side figures only.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any

#: A damaged area at most this wide and tall is a text caret's blink, not the effect of an input.
CARET_WIDTH, CARET_HEIGHT = 3, 48


def is_caret(width: int, height: int) -> bool:
    """Whether a damaged area is no more than a blinking text caret (which redraws on its own timer)."""
    return width <= CARET_WIDTH and height <= CARET_HEIGHT


def wait_until_quiet(wait_for_damage: Callable[[float], bool], quiet: float, timeout: float,
                     first_change: float = 0.0, at_least: float = 0.0,
                     clock: Callable[[], float] = time.monotonic) -> tuple[bool, float]:
    """Wait until no damage has arrived for ``quiet`` seconds (bounded by ``timeout``), and at least ``at_least``.

    ``wait_for_damage(seconds)`` blocks up to ``seconds`` and says whether drawing happened. While
    nothing has been drawn yet, a quiet screen is trusted only after ``max(quiet, first_change)``
    seconds (an app that draws an input's effect late). Returns (settled, seconds waited).
    """
    start = clock()
    last_damage = start
    changed = False
    while True:
        now = clock()
        window = quiet if changed else max(quiet, first_change)
        due = max(last_damage + window, start + at_least)
        if now >= due:
            return True, now - start
        if now - start >= timeout:
            return False, now - start
        if wait_for_damage(min(due, start + timeout) - now):
            last_damage, changed = clock(), True


class DamageMonitor:
    """Watches one X display's root window for drawing through the DAMAGE extension."""

    def __init__(self, display: str, env: dict[str, str]):
        from Xlib import display as xdisplay
        from Xlib.ext import damage

        if env.get("XAUTHORITY"):
            os.environ["XAUTHORITY"] = env["XAUTHORITY"]
        self._x: Any = xdisplay.Display(display)
        if not self._x.has_extension(damage.extname):
            self._x.close()
            raise RuntimeError(f"the X server of {display} has no DAMAGE extension")
        self._x.damage_query_version()
        self._event = self._x.extension_event.DamageNotify
        self._damage = self._x.screen().root.damage_create(damage.DamageReportBoundingBox)
        self._x.sync()

    def _drain(self) -> bool:
        """Read queued events; re-arm the damage object. Whether drawing larger than a text caret was reported."""
        seen = drawn = False
        while self._x.pending_events():
            event = self._x.next_event()
            if event.type == self._event:
                seen = True
                drawn = drawn or not is_caret(event.area.width, event.area.height)
        if seen:
            self._x.damage_subtract(self._damage)
            self._x.flush()
        return drawn

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for drawing; whether any was reported."""
        if self._drain():
            return True
        if seconds > 0 and select.select([self._x.fileno()], [], [], seconds)[0]:
            return self._drain()
        return False

    def settle(self, quiet: float = 0.2, timeout: float = 3.0, first_change: float = 0.0,
               at_least: float = 0.0) -> tuple[bool, float]:
        """Wait until nothing is drawn for ``quiet`` seconds (see :func:`wait_until_quiet`).

        Drawing reported before the call (e.g. the echo of typed text) is the past: it neither counts as
        the input's effect nor ends the wait.
        """
        self._drain()
        return wait_until_quiet(self.wait, quiet, timeout, first_change, at_least)

    def close(self) -> None:
        try:
            self._x.damage_destroy(self._damage)
            self._x.close()
        except Exception:  # noqa: BLE001, S110  (the X server may already be gone; nothing left to free)
            pass
