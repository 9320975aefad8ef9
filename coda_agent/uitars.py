"""UI-TARS-style executor output -> one action of the SciBoard action language.

UI-TARS models answer ``Thought: ...`` then ``Action: click(start_box='(x,y)')``. Points
come as ``(x,y)``, ``<|box_start|>(x,y)<|box_end|>``, ``<point>x y</point>``, or a box
``[x1,y1,x2,y2]`` / ``<bbox>x1 y1 x2 y2</bbox>`` (its centre is used). Two coordinate
conventions exist: UI-TARS-1.5 (Qwen2.5-VL based) gives **absolute** pixels of the image
it was shown; UI-TARS 1.0 (Qwen2-VL based) gives **relative** values in 0-1000. Both are
mapped to pixels of the screen. Nothing is evaluated as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sciboard_gym import actions

CoordinateMode = Literal["absolute", "relative"]
SCROLL_NOTCHES = 5
WAIT_SECONDS = 5.0
#: Points this far outside the image (as a fraction of its size) are clamped to the edge, not refused.
EDGE_TOLERANCE = 0.02

_KEY_NAMES = {
    "enter": "Return", "return": "Return", "esc": "Escape", "escape": "Escape", "tab": "Tab", "space": "space",
    "backspace": "BackSpace", "delete": "Delete", "del": "Delete", "insert": "Insert", "home": "Home", "end": "End",
    "pageup": "Page_Up", "pagedown": "Page_Down", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "arrowup": "Up", "arrowdown": "Down", "arrowleft": "Left", "arrowright": "Right", "ctrl": "ctrl",
    "control": "ctrl", "alt": "alt", "shift": "shift", "cmd": "super", "command": "super", "win": "super",
    "super": "super", "meta": "super", "capslock": "Caps_Lock", "+": "plus", "-": "minus", "=": "equal",
    "/": "slash", "\\": "backslash", ".": "period", ",": "comma", ";": "semicolon", "*": "asterisk",
}
_POINT_ACTIONS = {
    "click": actions.Click, "left_single": actions.Click, "left_double": actions.DoubleClick,
    "double_click": actions.DoubleClick, "right_single": actions.RightClick, "right_click": actions.RightClick,
    "hover": actions.Move, "mouse_move": actions.Move, "move_to": actions.Move,
}
_TEXT_ARG = {"type": "content", "finished": "content", "call_user": "content"}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_KWARG = re.compile(r"([A-Za-z_]+)\s*=\s*(['\"])(.*?)\2", re.DOTALL)


@dataclass(frozen=True)
class CoordinateFrame:
    """How model coordinates map to the screen.

    ``image_size`` is the (width, height) of the image the model saw (for ``absolute``);
    ``screen_size`` the (width, height) of the screenshot the action is for.
    """

    mode: CoordinateMode
    image_size: tuple[int, int]
    screen_size: tuple[int, int]

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        span_x, span_y = (1000.0, 1000.0) if self.mode == "relative" else map(float, self.image_size)
        fx, fy = x / span_x, y / span_y
        if not (-EDGE_TOLERANCE <= fx <= 1 + EDGE_TOLERANCE and -EDGE_TOLERANCE <= fy <= 1 + EDGE_TOLERANCE):
            limits = "0-1000" if self.mode == "relative" else f"the {self.image_size[0]}x{self.image_size[1]} image"
            raise actions.ActionError(f"point ({x:g}, {y:g}) lies outside {limits}")
        width, height = self.screen_size
        return (min(width - 1, max(0, round(fx * width))), min(height - 1, max(0, round(fy * height))))


def split_thought(text: str) -> tuple[str, str]:
    """``(thought, action_text)`` of a ``Thought: ... Action: ...`` reply (either may be empty)."""
    marker = re.search(r"Action\s*:", text)
    head, action_text = (text[:marker.start()], text[marker.end():]) if marker else ("", text)
    thought = re.sub(r"^\s*(Thought|Reflection|Action_Summary)\s*:\s*", "", head.strip())
    return thought.strip(), action_text.strip()


def parse_uitars(text: str, frame: CoordinateFrame) -> actions.Action:
    """The first action of a UI-TARS reply as a typed action; :class:`ActionError` if there is none."""
    _, action_text = split_thought(text)
    action_text = action_text.strip().strip("`").strip()
    call = _CALL.search(action_text)
    if call is None:
        raise actions.ActionError(f"no action call in the executor output: {_preview(action_text)}")
    name = call.group(1).lower()
    body = action_text[call.end():]
    if name in _TEXT_ARG:
        text_value = _text_argument(body, _TEXT_ARG[name])
        if name == "type":
            if not text_value:
                raise actions.ActionError("type: empty content")
            return actions.Type(_check_text(text_value))
        return actions.Done() if name == "finished" else actions.Fail()
    kwargs = {key.lower(): value for key, _, value in _KWARG.findall(_first_call_body(body))}
    if name in _POINT_ACTIONS:
        return _POINT_ACTIONS[name](*_point(kwargs, ("start_box", "point", "start_point"), frame, name))
    if name in ("drag", "select"):
        x1, y1 = _point(kwargs, ("start_box", "start_point", "point"), frame, name)
        x2, y2 = _point(kwargs, ("end_box", "end_point"), frame, name)
        return actions.Drag(x1, y1, x2, y2)
    if name == "scroll":
        return _scroll(kwargs, frame)
    if name in ("hotkey", "press", "keydown"):
        return actions.Key(_keys(kwargs.get("key") or kwargs.get("hotkey") or kwargs.get("keys") or ""))
    if name == "wait":
        return actions.Wait(WAIT_SECONDS)
    raise actions.ActionError(f"executor action {name!r} has no counterpart in the action language")


def _first_call_body(body: str) -> str:
    """The argument text of the first call (up to its closing parenthesis outside quotes)."""
    quote = None
    for index, char in enumerate(body):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == ")":
            return body[:index]
    return body


def _text_argument(body: str, key: str) -> str:
    """A free-text argument (``content='...'``): up to the last matching quote before ``)``.

    Models often leave inner quotes unescaped, so the value runs to the quote that closes the call.
    """
    match = re.match(rf"\s*(?:{key}\s*=\s*)?(['\"])", body)
    if match is None:
        if re.match(r"\s*\)", body):
            return ""
        raise actions.ActionError(f"expected {key}='...' in the executor output")
    quote = match.group(1)
    rest = body[match.end():]
    closing = [m.start() for m in re.finditer(re.escape(quote) + r"\s*\)", rest)]
    raw = rest[:closing[-1]] if closing else rest.rstrip().rstrip(")").rstrip(quote)
    return re.sub(r"\\(n|t|'|\"|\\)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw)


def _point(kwargs: dict[str, str], keys: tuple[str, ...], frame: CoordinateFrame, name: str) -> tuple[int, int]:
    raw = next((kwargs[k] for k in keys if k in kwargs), None)
    if raw is None:
        raise actions.ActionError(f"{name}: missing {keys[0]}")
    numbers = [float(n) for n in _NUMBER.findall(raw)]
    if len(numbers) == 4:
        numbers = [(numbers[0] + numbers[2]) / 2, (numbers[1] + numbers[3]) / 2]
    if len(numbers) != 2:
        raise actions.ActionError(f"{name}: expected a point (x,y) or a box [x1,y1,x2,y2], got {_preview(raw)}")
    return frame.to_screen(*numbers)


def _scroll(kwargs: dict[str, str], frame: CoordinateFrame) -> actions.Scroll:
    direction = kwargs.get("direction", "down").strip().lower()
    if direction not in ("up", "down"):
        raise actions.ActionError(f"scroll: direction {direction!r} is not supported (only up and down)")
    if any(k in kwargs for k in ("start_box", "point", "start_point")):
        x, y = _point(kwargs, ("start_box", "point", "start_point"), frame, "scroll")
    else:
        x, y = frame.screen_size[0] // 2, frame.screen_size[1] // 2
    return actions.Scroll(x, y, SCROLL_NOTCHES if direction == "down" else -SCROLL_NOTCHES)


def _keys(raw: str) -> str:
    raw = raw.strip()
    names = ["+"] if raw == "+" else [n for n in re.split(r"[\s+]+", raw) if n]
    if not names:
        raise actions.ActionError("hotkey: no key given")
    mapped = [_KEY_NAMES.get(n.lower(), n if len(n) > 1 else n.lower()) for n in names]
    if re.fullmatch(r"f\d{1,2}", mapped[-1], re.IGNORECASE):
        mapped[-1] = mapped[-1].upper()
    chord = "+".join(mapped)
    actions.parse(f'key("{chord}")')  # validates the key names' form
    return chord


def _check_text(text: str) -> str:
    return actions.parse(actions.Type(text).to_string()).text  # type: ignore[attr-defined]


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
