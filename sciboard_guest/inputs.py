"""Turning typed GUI actions (their JSON form) into X input events via xdotool.

Arguments are validated here again (the guest trusts nobody) and passed to
xdotool as an argv list: nothing is ever interpreted by a shell.
"""

from __future__ import annotations

import re
import subprocess

_KEY = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
_POINT_BUTTONS = {"click": ("1", 1), "double_click": ("1", 2), "right_click": ("3", 1)}


class InputError(ValueError):
    """An input request that is malformed or out of bounds."""


def xdotool_commands(action: dict, screen_size: tuple[int, int]) -> list[list[str]]:
    """The xdotool argv lists that perform ``action`` (a dict from the action language)."""
    name = action.get("name")
    if name in _POINT_BUTTONS or name == "move":
        x, y = _point(action, "x", "y", screen_size)
        move = ["mousemove", "--sync", x, y]
        if name == "move":
            return [move]
        button, repeat = _POINT_BUTTONS[name]
        return [move + ["click", "--repeat", str(repeat), "--delay", "80", button]]
    if name == "drag":
        x1, y1 = _point(action, "x1", "y1", screen_size)
        x2, y2 = _point(action, "x2", "y2", screen_size)
        mid_x, mid_y = str((int(x1) + int(x2)) // 2), str((int(y1) + int(y2)) // 2)
        return [
            ["mousemove", "--sync", x1, y1, "mousedown", "1"],
            ["mousemove", "--sync", mid_x, mid_y],
            ["mousemove", "--sync", x2, y2, "mouseup", "1"],
        ]
    if name == "scroll":
        x, y = _point(action, "x", "y", screen_size)
        dy = action.get("dy")
        if not isinstance(dy, int) or isinstance(dy, bool) or dy == 0 or abs(dy) > 50:
            raise InputError("scroll: dy must be a non-zero integer in [-50, 50]")
        button = "5" if dy > 0 else "4"
        return [["mousemove", "--sync", x, y, "click", "--repeat", str(abs(dy)), "--delay", "30", button]]
    if name == "type":
        text = action.get("text")
        if not isinstance(text, str) or not text or len(text) > 2000:
            raise InputError("type: text must be a non-empty string of at most 2000 characters")
        return [["type", "--delay", "12", "--", text]]
    if name == "key":
        keys = action.get("keys")
        if not isinstance(keys, str) or not _KEY.match(keys) or len(keys) > 100:
            raise InputError('key: expected key names joined by "+", e.g. "ctrl+s"')
        return [["key", "--clearmodifiers", "--", keys]]
    raise InputError(f"not a GUI input action: {name!r}")


def perform(action: dict, screen_size: tuple[int, int], env: dict[str, str]) -> None:
    """Execute ``action`` on the display in ``env``; raises InputError on failure."""
    for command in xdotool_commands(action, screen_size):
        result = subprocess.run(["xdotool", *command], env=env, capture_output=True, timeout=60)
        if result.returncode != 0:
            raise InputError(f"xdotool failed: {result.stderr.decode(errors='replace').strip()[:300]}")


def _point(action: dict, kx: str, ky: str, screen_size: tuple[int, int]) -> tuple[str, str]:
    x, y = action.get(kx), action.get(ky)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y)):
        raise InputError(f"{action.get('name')}: {kx} and {ky} must be integers")
    width, height = screen_size
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"{action.get('name')}: point ({x}, {y}) is outside the {width}x{height} screen")
    return str(x), str(y)
