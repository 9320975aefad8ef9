"""Turning typed GUI actions (their JSON form) into X input events.

Everything goes through the XTEST extension on the guest's open X connection (python3-xlib): no
process is spawned per action. Text is typed key by key; a character the keyboard map lacks (say
``Å`` or ``°``) is bound to a spare keycode first, as xdotool does. The older path (``via="xdotool"``:
one xdotool process per key chord or line of text) is kept for the benchmark's side-by-side figures.
Arguments are validated here again (the guest trusts nobody); xdotool gets an argv list, nothing is
ever interpreted by a shell.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from typing import Any

_KEY = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
_POINTER = {"click": (1, 1), "double_click": (1, 2), "right_click": (3, 1), "move": (0, 0)}
#: How a keyboard action reaches the X server: XTEST in-process, or one xdotool process per chord/line.
KEYBOARD_PATHS = ("xtest", "xdotool")
#: xdotool's names for modifiers (matched case-insensitively), so key chords mean the same on both paths.
_MODIFIER_ALIASES = {"ctrl": "Control_L", "control": "Control_L", "alt": "Alt_L", "shift": "Shift_L",
                     "super": "Super_L", "meta": "Meta_L"}
#: Seconds between typed characters (as on the xdotool path), so completers and echo keep pace;
#: stretched by the guest's slowness in a VM without KVM.
TYPE_DELAY = 0.012
_CONTROL_KEYSYMS = {"\t": 0xFF09, "\b": 0xFF08}


class InputError(ValueError):
    """An input request that is malformed or out of bounds."""


def keyboard_command(action: dict) -> list[str]:
    """The xdotool argv (without the program name) for a ``type`` or ``key`` action (validates it)."""
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


def char_keysym(char: str) -> int:
    """The X keysym of one character: Latin-1 as is, anything else as a Unicode keysym."""
    if char in _CONTROL_KEYSYMS:
        return _CONTROL_KEYSYMS[char]
    code = ord(char)
    if 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xFF:
        return code
    return 0x01000000 | code


class InputDevice:
    """Injects input into one X display."""

    def __init__(self, env: dict[str, str], screen_size: tuple[int, int]):
        self.env, self.screen_size = env, screen_size
        self._display: Any = None
        self._keys: Keyboard | None = None

    def _x(self) -> Any:
        if self._display is None:
            from Xlib import display as xdisplay

            if self.env.get("XAUTHORITY"):
                os.environ["XAUTHORITY"] = self.env["XAUTHORITY"]
            self._display = xdisplay.Display(self.env["DISPLAY"])
        return self._display

    def perform(self, action: Any, via: str = "xtest") -> None:
        """Execute ``action``; raises :class:`InputError` if it is malformed or fails."""
        if not isinstance(action, dict):
            raise InputError("action must be a JSON object")
        name = action.get("name")
        if not isinstance(name, str):
            raise InputError(f"action name must be a string, got {type(name).__name__}")
        if name in ("type", "key") and via == "xtest":
            keyboard_command(action)  # validates
            if name == "key":
                self._keyboard().chord(action["keys"])
            else:
                self._keyboard().type(action["text"])
            self._x().sync()
            return
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

    def _keyboard(self) -> Keyboard:
        if self._keys is None:
            self._keys = Keyboard(self._x())
        return self._keys

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
            self._keys = None


class Keyboard:
    """Key chords and text through XTEST on an open X connection, binding missing characters on demand."""

    def __init__(self, display: Any):
        from Xlib import XK

        from sciboard_guest.apps import slowness

        self._x, self._xk = display, XK
        self._type_delay = TYPE_DELAY * slowness()
        first = display.display.info.min_keycode
        count = display.display.info.max_keycode - first + 1
        self._codes: dict[int, tuple[int, int]] = {}  # keysym -> (keycode, shift level 0/1)
        self._spare: list[int] = []
        for offset, syms in enumerate(display.get_keyboard_mapping(first, count)):
            keycode = first + offset
            if not any(syms):
                self._spare.append(keycode)
            for level, sym in enumerate(syms[:2]):
                if sym and (sym not in self._codes or self._codes[sym][1] > level):
                    self._codes[sym] = (keycode, level)
        self._shift = self._codes[XK.XK_Shift_L][0]
        self._bound: list[int] = []  # spare keycodes bound by us, oldest first

    def keysym(self, name: str) -> int:
        """The keysym of an xdotool-style key name (``ctrl``, ``Return``, ``a``, ``F3``); InputError if unknown."""
        name = _MODIFIER_ALIASES.get(name.lower(), name)
        for candidate in (name, name.capitalize(), name.lower()):
            sym = self._xk.string_to_keysym(candidate)
            if sym:
                return sym
        raise InputError(f"key: unknown key name {name!r}")

    def _code(self, sym: int) -> tuple[int, int]:
        if sym in self._codes:
            return self._codes[sym]
        if not self._spare and not self._bound:
            raise InputError(f"no free keycode to type keysym {sym:#x}")
        if self._spare:
            keycode = self._spare.pop()
        else:  # reuse the keycode bound longest ago
            keycode = self._bound.pop(0)
            self._codes = {s: c for s, c in self._codes.items() if c[0] != keycode}
        self._x.change_keyboard_mapping(keycode, [(sym, sym)])
        self._x.sync()
        self._bound.append(keycode)
        self._codes[sym] = (keycode, 0)
        return keycode, 0

    def _fake(self, event: int, keycode: int) -> None:
        from Xlib.ext import xtest

        xtest.fake_input(self._x, event, keycode)

    def chord(self, keys: str) -> None:
        """Press ``keys`` (names joined by ``+``) together, then release them in reverse order."""
        from Xlib import X

        codes: list[int] = []
        for name in keys.split("+"):
            keycode, level = self._code(self.keysym(name))
            if level and self._shift not in codes:
                codes.append(self._shift)
            codes.append(keycode)
        for keycode in codes:
            self._fake(X.KeyPress, keycode)
        for keycode in reversed(codes):
            self._fake(X.KeyRelease, keycode)
        self._x.sync()

    def type(self, text: str) -> None:
        """Type ``text``; a newline is the Return key (which Qt and GTK treat as Enter)."""
        from Xlib import X

        for char in text:
            sym = self._xk.XK_Return if char == "\n" else char_keysym(char)
            keycode, level = self._code(sym)
            if level:
                self._fake(X.KeyPress, self._shift)
            self._fake(X.KeyPress, keycode)
            self._fake(X.KeyRelease, keycode)
            if level:
                self._fake(X.KeyRelease, self._shift)
            self._x.sync()
            time.sleep(self._type_delay)
