"""Settle detection on X DAMAGE events: a step ends when the X server reports no drawing for a while.

The X server tells us (one ``DamageNotify`` per growth of the damaged area's bounding box,
re-armed after each) whenever anything is drawn on the root window, i.e. anywhere on the screen;
a blinking text caret's redraw is not counted (see :class:`BlinkFilter`). No frame is copied or compared: waiting costs
a ``select`` on the X connection. The polling settle (:meth:`sciboard_guest.screen.Screen.settle`),
which compares whole frames, is kept for the benchmark's side-by-side figures only.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from typing import Any

#: A damaged area at most this wide and tall is a text caret's sliver, not the effect of an input.
CARET_WIDTH, CARET_HEIGHT = 3, 48
#: The tallest area a caret blink repaints: a text line. Toolkits repaint from the caret alone (KAlgebra
#: 10x19 px, PyMOL's Tk console 8x18 px) up to the caret's whole line (GRASS's wx console: 381x19 px),
#: each every 0.5 s; any width counts.
BLINK_HEIGHT = 48
#: A blink repeats on its own timer (Qt and Tk blink every 0.5 s, GTK every 0.6 s): the same area redrawn
#: at least BLINK_MIN_PERIOD after its last redraw, at the same period as before (within BLINK_JITTER of
#: it), both earlier redraws within BLINK_MEMORY.
BLINK_MIN_PERIOD, BLINK_JITTER, BLINK_MEMORY = 0.2, 0.35, 2.0

#: A settle waits for drawing in slices at most this long, and a slice adds at most twice this to the quiet
#: window: time beyond that passed while the settle itself did not run (a VM whose virtual CPU the host did
#: not schedule, while the guest's clock went on), so the app could not draw either.
QUIET_SLICE = 0.1
#: Such a gap longer than this goes to the guest's log.
LOGGED_GAP = 1.0
#: An app whose processes were on a CPU for more than this share of a quiet wait was still computing
#: (see :class:`Computing`); an idle app's timers (a caret's blink) take far less.
COMPUTING_SHARE = 0.1

Area = tuple[int, int, int, int]


def is_caret(width: int, height: int) -> bool:
    """Whether a damaged area is no more than a text caret's sliver (which redraws on its own timer)."""
    return width <= CARET_WIDTH and height <= CARET_HEIGHT


class BlinkFilter:
    """Tells a blinking caret's redraws from drawing: an area no taller than a text line, redrawn on a timer.

    Such an area counts as a blink when the very same area was redrawn twice before within BLINK_MEMORY
    seconds and the three redraws came at one steady period of at least BLINK_MIN_PERIOD: the third and
    later redraws of a caret that stays put. A typed character's echo lands somewhere new, or (when the
    toolkit repaints the caret's whole line) off the blink's beat, and an input's quick redraws of one
    spot come closer together than a blink, so all of these still count as drawing. Slivers
    (:func:`is_caret`) always count as blinks.
    """

    def __init__(self) -> None:
        self._seen: dict[Area, list[float]] = {}

    def is_blink(self, area: Area, now: float) -> bool:
        """Record a redraw of ``area`` (x, y, width, height) at ``now``; whether it is a caret's blink."""
        if is_caret(area[2], area[3]):
            return True
        if area[3] > BLINK_HEIGHT:
            return False
        self._seen = {a: times for a, times in self._seen.items() if now - times[-1] <= BLINK_MEMORY}
        times = self._seen.setdefault(area, [])
        blink = False
        if len(times) >= 2 and now - times[-2] <= BLINK_MEMORY:
            period, last = times[-1] - times[-2], now - times[-1]
            blink = period >= BLINK_MIN_PERIOD and abs(last - period) <= BLINK_JITTER * period
        if not times or now - times[-1] >= BLINK_MIN_PERIOD:
            times[:] = [*times[-1:], now]
        return blink


def wait_until_quiet(wait_for_damage: Callable[[float], bool], quiet: float, timeout: float,
                     first_change: float = 0.0, at_least: float = 0.0,
                     clock: Callable[[], float] = time.monotonic) -> tuple[bool, float]:
    """Wait until no damage has arrived for ``quiet`` seconds (bounded by ``timeout``), and at least ``at_least``.

    ``wait_for_damage(seconds)`` blocks up to ``seconds`` and says whether drawing happened. While
    nothing has been drawn yet, a quiet screen is trusted only after ``max(quiet, first_change)``
    seconds (an app that draws an input's effect late). Quiet time counts only while the wait itself
    runs (see :data:`QUIET_SLICE`): a guest frozen by its host for seconds does not come back settled.
    Returns (settled, seconds waited).
    """
    start = clock()
    quiet_for = 0.0  # quiet time counted since the last drawing
    changed = False
    while True:
        now = clock()
        window = quiet if changed else max(quiet, first_change)
        if quiet_for >= window and now >= start + at_least:
            return True, now - start
        if now - start >= timeout:
            return False, now - start
        wanted = max(window - quiet_for, start + at_least - now)
        seconds = max(min(wanted, QUIET_SLICE, start + timeout - now), 0.001)  # a wait always lets time pass
        if wait_for_damage(seconds):
            quiet_for, changed = 0.0, True
        else:
            ran = clock() - now
            quiet_for += min(ran, seconds + QUIET_SLICE)
            if ran > seconds + LOGGED_GAP:
                print(f"settle: {ran - seconds:.1f} s passed while the guest did not run; not counted as quiet",
                      file=sys.stderr, flush=True)


def changed_box(before: bytes, after: bytes, width: int) -> tuple[int, int] | None:
    """The (width, height) of the box around the pixels that differ between two frames of 4-byte pixels
    ``width`` wide; None when none differ."""
    import numpy as np

    rows_before = np.frombuffer(before, dtype=np.uint32).reshape(-1, width)
    differ = rows_before != np.frombuffer(after, dtype=np.uint32).reshape(-1, width)
    rows = np.flatnonzero(differ.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(differ[rows[0]:rows[-1] + 1].any(axis=0))
    return int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1)


class ChangedFrames:
    """Damage that changed the frame: a drawing report counts only when the frame differs from the frame at
    the last report that counted (or at the start) by more than a text caret's sliver (:func:`is_caret`).
    One frame read per report, none in between."""

    def __init__(self, wait_for_damage: Callable[[float], bool], frame: Callable[[], bytes | bytearray],
                 width: int):
        self._wait, self._frame, self._width = wait_for_damage, frame, width
        self._last = bytes(frame())

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for drawing that changed the frame; whether there was any."""
        deadline = time.monotonic() + seconds
        while self._wait(max(deadline - time.monotonic(), 0.0)):
            current = bytes(self._frame())
            box = changed_box(self._last, current, self._width) if current != self._last else None
            if box is not None and not is_caret(*box):
                self._last = current
                return True
            if time.monotonic() >= deadline:
                break
        return False


class Computing:
    """Drawing, or an app still computing: a wait reports activity when drawing was reported or the app's
    processes were on a CPU for more than COMPUTING_SHARE of the time waited. For an app that draws from
    another process (a web view's renderer): the screen can be quiet while that process lays out what it
    draws next. One CPU read per quiet wait: its reading starts the next wait."""

    def __init__(self, wait_for_damage: Callable[[float], bool], cpu_seconds: Callable[[], float],
                 clock: Callable[[], float] = time.monotonic):
        self._wait, self._cpu, self._clock = wait_for_damage, cpu_seconds, clock
        self._last: tuple[float, float] | None = None  # (time, CPU seconds) at the end of the last quiet wait

    def wait(self, seconds: float) -> bool:
        """Block up to ``seconds`` for drawing; whether there was any, or the app computed meanwhile."""
        start, before = self._last if self._last is not None else (self._clock(), self._cpu())
        if self._wait(seconds):
            self._last = None
            return True
        self._last = now, used = self._clock(), self._cpu()
        return used - before > COMPUTING_SHARE * (now - start)


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
        self._width = self._x.screen().width_in_pixels
        self._blinks = BlinkFilter()
        self._x.sync()

    def _drain(self, sizes: list[tuple[int, int]] | None = None) -> bool:
        """Read queued events (the drawn areas' sizes go to ``sizes``); re-arm the damage object. Whether
        drawing other than a caret's blink was reported."""
        seen = drawn = False
        while self._x.pending_events():
            event = self._x.next_event()
            if event.type == self._event:
                seen = True
                area = (event.area.x, event.area.y, event.area.width, event.area.height)
                drawn = not self._blinks.is_blink(area, time.monotonic()) or drawn
                if sizes is not None:
                    sizes.append((event.area.width, event.area.height))
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

    def wait_for_area(self, width: int, height: int, timeout: float) -> bool:
        """Block until an area at least ``width`` x ``height`` is drawn (drawing before the call does not
        count); whether one was within ``timeout`` seconds."""
        self._drain()
        deadline = time.monotonic() + timeout
        while True:
            sizes: list[tuple[int, int]] = []
            self._drain(sizes)
            if any(w >= width and h >= height for w, h in sizes):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([self._x.fileno()], [], [], left)

    def settle(self, quiet: float = 0.2, timeout: float = 3.0, first_change: float = 0.0,
               at_least: float = 0.0, frame: Callable[[], bytes | bytearray] | None = None,
               barrier: Callable[[], object] | None = None,
               cpu: Callable[[], float] | None = None) -> tuple[bool, float]:
        """Wait until nothing is drawn for ``quiet`` seconds (see :func:`wait_until_quiet`).

        Drawing reported before the call (e.g. the echo of typed text) is the past: it neither counts as
        the input's effect nor ends the wait. ``barrier`` runs first (e.g. waiting until the app has taken
        its input in); drawing reported while it runs counts. With ``frame`` (a reader of the current
        frame's bytes), drawing counts only when it changed the frame by more than a caret: for an app
        that redraws on a timer. With ``cpu`` (a reader of the app's CPU seconds), time the app spent
        computing does not count as quiet either (:class:`Computing`).
        """
        self._drain()
        wait = self.wait if frame is None else ChangedFrames(self.wait, frame, self._width).wait  # frame before the barrier
        if cpu is not None:
            wait = Computing(wait, cpu).wait
        if barrier is not None:
            barrier()
        return wait_until_quiet(wait, quiet, timeout, first_change, at_least)

    def close(self) -> None:
        try:
            self._x.damage_destroy(self._damage)
            self._x.close()
        except Exception:  # noqa: BLE001, S110  (the X server may already be gone; nothing left to free)
            pass
