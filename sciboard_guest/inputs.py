"""Turning typed GUI actions (their JSON form) into X input events.

Pointer actions go through the XTEST extension in-process (python3-xlib: no process
spawn per click); text and key chords go through xdotool, which maps any character
to a keysym. Arguments are validated here again (the guest trusts nobody) and
xdotool gets an argv list: nothing is ever interpreted by a shell.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

_KEY = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
_POINTER = {"click": (1, 1), "double_click": (1, 2), "right_click": (3, 1), "move": (0, 0)}


class InputError(ValueError):
    """An input request that is malformed or out of bounds."""


def keyboard_command(action: dict) -> list[str]:
    """The xdotool argv (without the program name) for a ``type`` or ``key`` action."""
    name = action.get("name")
    if name == "type":
        text = action.get("text")
        if not isinstance(text, str) or not text or len(text) > 2000:
            raise InputError("type: text must be a non-empty string of at most 2000 characters")
        return ["type", "--delay", "12", "--", text]
    if name == "key":
        keys = action.get("keys")
        if not isinstance(keys, str) or not _KEY.match(keys) or len(keys) > 100:
            raise InputError('key: expected key names joined by "+", e.g. "ctrl+s"')
        return ["key", "--clearmodifiers", "--", keys]
    raise InputError(f"not a keyboard action: {name!r}")


class InputDevice:
    """Injects input into one X display."""

    def __init__(self, env: dict[str, str], screen_size: tuple[int, int]):
        self.env, self.screen_size = env, screen_size
        self._display = None

    def _x(self):
        if self._display is None:
            from Xlib import display as xdisplay

            if self.env.get("XAUTHORITY"):
                os.environ["XAUTHORITY"] = self.env["XAUTHORITY"]
            self._display = xdisplay.Display(self.env["DISPLAY"])
        return self._display

    def perform(self, action: Any) -> None:
        """Execute ``action``; raises :class:`InputError` if it is malformed or fails."""
        if not isinstance(action, dict):
            raise InputError("action must be a JSON object")
        name = action.get("name")
        if not isinstance(name, str):
            raise InputError(f"action name must be a string, got {type(name).__name__}")
        if name in ("type", "key"):
            command = keyboard_command(action)
            if name == "key":
                self._xdotool(command)
                return
            # xdotool types "\n" as the Linefeed keysym, which Qt and GTK do not treat as Enter.
            for index, line in enumerate(action["text"].split("\n")):
                if index:
                    self._xdotool(["key", "--clearmodifiers", "Return"])
                if line:
                    self._xdotool([*command[:-1], line])
            return
        if name in _POINTER:
            x, y = self._point(action, "x", "y")
            button, count = _POINTER[name]
            self._move(x, y)
            for i in range(count):
                if i:
                    time.sleep(0.05)
                self._button(button)
        elif name == "drag":
            x1, y1 = self._point(action, "x1", "y1")
            x2, y2 = self._point(action, "x2", "y2")
            self._move(x1, y1)
            self._fake("ButtonPress", 1)
            for step in range(1, 11):
                time.sleep(0.01)
                self._move(x1 + (x2 - x1) * step // 10, y1 + (y2 - y1) * step // 10)
            self._fake("ButtonRelease", 1)
        elif name == "scroll":
            x, y = self._point(action, "x", "y")
            dy = action.get("dy")
            if not isinstance(dy, int) or isinstance(dy, bool) or dy == 0 or abs(dy) > 50:
                raise InputError("scroll: dy must be a non-zero integer in [-50, 50]")
            self._move(x, y)
            for _ in range(abs(dy)):
                self._button(5 if dy > 0 else 4)
                time.sleep(0.01)
        else:
            raise InputError(f"not a GUI input action: {name!r}")
        self._x().sync()

    def _xdotool(self, argv: list[str]) -> None:
        result = subprocess.run(["xdotool", *argv], env=self.env, capture_output=True, timeout=120, check=False)
        if result.returncode != 0:
            raise InputError(f"xdotool failed: {result.stderr.decode(errors='replace').strip()[:300]}")

    def _point(self, action: dict, kx: str, ky: str) -> tuple[int, int]:
        x, y = action.get(kx), action.get(ky)
        if not (isinstance(x, int) and isinstance(y, int)) or isinstance(x, bool) or isinstance(y, bool):
            raise InputError(f"{action.get('name')}: {kx} and {ky} must be integers")
        width, height = self.screen_size
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"{action.get('name')}: point ({x}, {y}) is outside the {width}x{height} screen")
        return x, y

    def _fake(self, event: str, detail: int = 0, **kwargs: int) -> None:
        from Xlib import X
        from Xlib.ext import xtest

        xtest.fake_input(self._x(), getattr(X, event), detail, **kwargs)

    def _move(self, x: int, y: int) -> None:
        self._fake("MotionNotify", x=x, y=y)
        self._x().sync()

    def _button(self, button: int) -> None:
        self._fake("ButtonPress", button)
        self._fake("ButtonRelease", button)
        self._x().sync()

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
            self._display = None
