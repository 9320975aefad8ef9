"""The typed GUI action language.

One action per step, written as a call: ``click(120, 45)``, ``type("x:=3")``,
``key("ctrl+s")``, ``done()``. :func:`parse` turns a string into a typed action
object (never evaluating it as code); :func:`describe` renders the language for
prompts. Invalid input raises :class:`ActionError` with a message that says what
was wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

MAX_TEXT_LENGTH = 2000
MAX_WAIT_SECONDS = 10.0
MAX_SCROLL = 50
_KEY_COMBO = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")


class ActionError(ValueError):
    """A string that is not a valid action, with a human-readable reason."""


@dataclass(frozen=True)
class Action:
    """Base of all typed actions."""

    name: ClassVar[str] = ""
    terminal: ClassVar[bool] = False

    def to_string(self) -> str:
        """Render the action back into the action language."""
        args = ", ".join(_format_arg(getattr(self, f.name)) for f in dataclasses.fields(self))
        return f"{self.name}({args})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"name": ..., <fields>}`` (the guest's wire format)."""
        return {"name": self.name, **dataclasses.asdict(self)}

    def points(self) -> list[tuple[int, int]]:
        """Screen points the action touches (for bounds checks and scaling)."""
        return []


@dataclass(frozen=True)
class _PointAction(Action):
    x: int
    y: int

    def points(self) -> list[tuple[int, int]]:
        return [(self.x, self.y)]


@dataclass(frozen=True)
class Click(_PointAction):
    name: ClassVar[str] = "click"


@dataclass(frozen=True)
class DoubleClick(_PointAction):
    name: ClassVar[str] = "double_click"


@dataclass(frozen=True)
class RightClick(_PointAction):
    name: ClassVar[str] = "right_click"


@dataclass(frozen=True)
class Move(_PointAction):
    name: ClassVar[str] = "move"


@dataclass(frozen=True)
class Drag(Action):
    name: ClassVar[str] = "drag"
    x1: int
    y1: int
    x2: int
    y2: int

    def points(self) -> list[tuple[int, int]]:
        return [(self.x1, self.y1), (self.x2, self.y2)]


@dataclass(frozen=True)
class Scroll(Action):
    """Scroll at (x, y); positive ``dy`` scrolls down, negative up (wheel notches)."""

    name: ClassVar[str] = "scroll"
    x: int
    y: int
    dy: int

    def points(self) -> list[tuple[int, int]]:
        return [(self.x, self.y)]


@dataclass(frozen=True)
class Type(Action):
    name: ClassVar[str] = "type"
    text: str


@dataclass(frozen=True)
class Key(Action):
    """A key or chord, xdotool/X keysym names joined by ``+``: ``ctrl+s``, ``Return``."""

    name: ClassVar[str] = "key"
    keys: str


@dataclass(frozen=True)
class Wait(Action):
    name: ClassVar[str] = "wait"
    seconds: float


@dataclass(frozen=True)
class Done(Action):
    name: ClassVar[str] = "done"
    terminal: ClassVar[bool] = True


@dataclass(frozen=True)
class Fail(Action):
    name: ClassVar[str] = "fail"
    terminal: ClassVar[bool] = True


@dataclass(frozen=True)
class Answer(Action):
    name: ClassVar[str] = "answer"
    terminal: ClassVar[bool] = True
    text: str


_SIGNATURES: dict[str, tuple[type[Action], tuple[str, ...], str]] = {
    "click": (Click, ("int", "int"), "click(x, y): left-click at pixel (x, y)"),
    "double_click": (DoubleClick, ("int", "int"), "double_click(x, y): double-click at (x, y)"),
    "right_click": (RightClick, ("int", "int"), "right_click(x, y): right-click at (x, y)"),
    "move": (Move, ("int", "int"), "move(x, y): move the pointer to (x, y)"),
    "drag": (Drag, ("int", "int", "int", "int"), "drag(x1, y1, x2, y2): press at (x1, y1), release at (x2, y2)"),
    "scroll": (Scroll, ("int", "int", "int"), "scroll(x, y, dy): wheel at (x, y); dy > 0 down, dy < 0 up (notches)"),
    "type": (Type, ("str",), 'type("text"): type text into the focused widget'),
    "key": (Key, ("key",), 'key("ctrl+s"): press a key or chord (X keysym names joined by +)'),
    "wait": (Wait, ("float",), f"wait(seconds): wait up to {MAX_WAIT_SECONDS:g} s"),
    "done": (Done, (), "done(): the task is finished"),
    "fail": (Fail, (), "fail(): give up; the task cannot be done"),
    "answer": (Answer, ("str",), 'answer("text"): give the answer to a question and finish'),
}

ACTION_NAMES: tuple[str, ...] = tuple(_SIGNATURES)


def describe() -> str:
    """The action language as a prompt-ready text."""
    lines = [
        "Write exactly one action per step, as a call. Coordinates are pixels of the screenshot,",
        'origin at the top-left. Strings use double quotes with JSON escapes ("a\\"b", "\\n").',
    ]
    lines += [f"- {doc}" for _, _, doc in _SIGNATURES.values()]
    return "\n".join(lines)


def parse(text: str, screen_size: tuple[int, int] | None = None) -> Action:
    """Parse one action string into a typed :class:`Action`.

    ``screen_size`` (width, height), when given, bounds-checks coordinates.
    Raises :class:`ActionError` for anything that is not a valid action.
    """
    if not isinstance(text, str):
        raise ActionError(f"an action must be a string, got {type(text).__name__}")
    source = text.strip()
    if not source:
        raise ActionError("empty action; expected e.g. click(10, 20) or done()")
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", source)
    if not match:
        raise ActionError(f"expected a call like click(10, 20), got {_preview(source)}")
    name = match.group(1)
    if name not in _SIGNATURES:
        raise ActionError(f"unknown action {name!r}; known: {', '.join(ACTION_NAMES)}")
    cls, kinds, doc = _SIGNATURES[name]
    raw_args, end = _scan_args(source, match.end())
    if source[end:].strip():
        raise ActionError(f"unexpected text after the action: {_preview(source[end:].strip())}")
    if len(raw_args) != len(kinds):
        raise ActionError(f"{name} takes {len(kinds)} argument(s), got {len(raw_args)}; usage: {doc}")
    values = [_convert(name, i, raw, kind) for i, (raw, kind) in enumerate(zip(raw_args, kinds))]
    action = cls(*values)
    if screen_size is not None:
        check_bounds(action, screen_size)
    return action


def check_bounds(action: Action, screen_size: tuple[int, int]) -> None:
    """Raise :class:`ActionError` if a point of ``action`` lies outside the screen."""
    width, height = screen_size
    for x, y in action.points():
        if not (0 <= x < width and 0 <= y < height):
            raise ActionError(f"{action.name}: point ({x}, {y}) is outside the {width}x{height} screen")


def from_dict(data: dict[str, Any]) -> Action:
    """Inverse of :meth:`Action.to_dict` (validated like :func:`parse`)."""
    if not isinstance(data, dict) or data.get("name") not in _SIGNATURES:
        raise ActionError(f"not an action dict: {_preview(repr(data))}")
    cls, kinds, _ = _SIGNATURES[data["name"]]
    fields = [f.name for f in dataclasses.fields(cls)]
    if set(data) - {"name"} != set(fields):
        raise ActionError(f"{data['name']} needs fields {fields}, got {sorted(set(data) - {'name'})}")
    values = [_convert(data["name"], i, ("literal", data[f]), k) for i, (f, k) in enumerate(zip(fields, kinds))]
    return cls(*values)


# --- scanning -----------------------------------------------------------------

_Raw = tuple[str, Any]  # ("number", float|int) | ("string", str) | ("literal", any)


def _scan_args(source: str, pos: int) -> tuple[list[_Raw], int]:
    """Scan comma-separated literal arguments up to the closing parenthesis."""
    args: list[_Raw] = []
    pos = _skip_space(source, pos)
    if pos < len(source) and source[pos] == ")":
        return args, pos + 1
    while True:
        pos = _skip_space(source, pos)
        if pos >= len(source):
            raise ActionError("unterminated action: missing ')'")
        char = source[pos]
        if char in "\"'":
            value, pos = _scan_string(source, pos)
            args.append(("string", value))
        else:
            number = re.match(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", source[pos:])
            if not number:
                raise ActionError(f"expected a number or a quoted string at {_preview(source[pos:])}")
            literal = number.group(0)
            if len(literal) > 100:
                raise ActionError(f"number too long: {_preview(literal)}")
            args.append(("number", float(literal) if any(c in literal for c in ".eE") else int(literal)))
            pos += len(literal)
        pos = _skip_space(source, pos)
        if pos >= len(source):
            raise ActionError("unterminated action: missing ')'")
        if source[pos] == ")":
            return args, pos + 1
        if source[pos] != ",":
            raise ActionError(f"expected ',' or ')' at {_preview(source[pos:])}")
        pos += 1


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/", "b": "\b", "f": "\f"}


def _scan_string(source: str, pos: int) -> tuple[str, int]:
    quote = source[pos]
    out: list[str] = []
    pos += 1
    while pos < len(source):
        char = source[pos]
        if char == quote:
            return "".join(out), pos + 1
        if char == "\\":
            if pos + 1 >= len(source):
                break
            nxt = source[pos + 1]
            if nxt == "u":
                digits = source[pos + 2 : pos + 6]
                if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                    raise ActionError(f"bad \\u escape in string: {_preview(source[pos:])}")
                out.append(chr(int(digits, 16)))
                pos += 6
                continue
            if nxt not in _ESCAPES:
                raise ActionError(f"unknown escape \\{nxt} in string")
            out.append(_ESCAPES[nxt])
            pos += 2
            continue
        out.append(char)
        pos += 1
    raise ActionError("unterminated string: missing closing quote")


def _skip_space(source: str, pos: int) -> int:
    while pos < len(source) and source[pos].isspace():
        pos += 1
    return pos


def _convert(name: str, index: int, raw: _Raw, kind: str) -> Any:
    origin, value = raw
    where = f"{name}: argument {index + 1}"
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ActionError(f"{where} must be a number, got {_preview(repr(value))}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ActionError(f"{where} must be a finite number, got {value}")
        if isinstance(value, float) and not value.is_integer():
            value = round(value)
        if name == "scroll" and index == 2 and not (-MAX_SCROLL <= value <= MAX_SCROLL and value != 0):
            raise ActionError(f"{where} (dy) must be a non-zero whole number in [-{MAX_SCROLL}, {MAX_SCROLL}]")
        if abs(value) > 100_000:
            raise ActionError(f"{where} is out of range (more than 100000 pixels from 0)")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ActionError(f"{where} must be a number of seconds, got {_preview(repr(value))}")
        if not 0 <= value <= MAX_WAIT_SECONDS:
            raise ActionError(f"{where} must be between 0 and {MAX_WAIT_SECONDS:g} seconds, got {_show(value)}")
        return float(value)
    if not isinstance(value, str) or (origin == "number"):
        raise ActionError(f'{where} must be a quoted string, e.g. {name}("...")')
    if len(value) > MAX_TEXT_LENGTH:
        raise ActionError(f"{where} is too long ({len(value)} > {MAX_TEXT_LENGTH} characters)")
    if kind == "key":
        if not _KEY_COMBO.match(value):
            raise ActionError(f'{where} must be key names joined by "+", e.g. "ctrl+s" or "Return"; got {value!r}')
    elif kind == "str" and name == "type" and not value:
        raise ActionError("type: the text must not be empty")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ActionError(f"{where} contains control characters")
    return value


def _format_arg(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _show(number: float) -> str:
    """A number for an error message (Python refuses to print ints of more than 4300 digits)."""
    return f"{number:g}" if isinstance(number, float) or abs(number) < 10**15 else "a huge number"


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
