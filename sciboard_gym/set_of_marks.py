"""Set-of-marks observations: numbered boxes over the app's interactive widgets.

The boxes come from the accessibility tree (showing nodes with an interactive role and
a box on screen); the screenshot gets a numbered outline per mark, and a legend lists
``[n] role 'name' @(x,y,w,h)`` so an agent can refer to widgets by number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

INTERACTIVE_ROLES = frozenset({
    "push button", "toggle button", "check box", "radio button", "page tab", "menu item", "menu",
    "combo box", "spin button", "text", "entry", "password text", "slider", "list item", "table cell",
    "tree item", "link", "icon", "check menu item", "radio menu item", "table column header",
})
MAX_MARKS = 300
_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (0, 128, 128)]


def marks_from_tree(tree: dict[str, Any], screen_size: tuple[int, int]) -> list[dict[str, Any]]:
    """Interactive, showing nodes with a visible on-screen box, in reading order."""
    width, height = screen_size
    found = []
    for node in _walk(tree):
        box = node.get("box")
        if node.get("role") not in INTERACTIVE_ROLES or not node.get("showing") or not box:
            continue
        x, y, w, h = box
        if w <= 1 or h <= 1 or x >= width or y >= height or x + w <= 0 or y + h <= 0:
            continue
        found.append({"role": node["role"], "name": node.get("name") or node.get("text", "")[:60], "box": box})
    found.sort(key=lambda m: (m["box"][1] // 8, m["box"][0]))
    unique, seen = [], set()
    for mark in found:
        key = tuple(mark["box"])
        if key not in seen:
            seen.add(key)
            unique.append(mark)
    return unique[:MAX_MARKS]


def draw_marks(screenshot: np.ndarray, marks: list[dict[str, Any]]) -> np.ndarray:
    """A copy of ``screenshot`` with each mark outlined and numbered from 1."""
    image = Image.fromarray(screenshot)
    draw = ImageDraw.Draw(image)
    for number, mark in enumerate(marks, start=1):
        x, y, w, h = mark["box"]
        colour = _COLOURS[number % len(_COLOURS)]
        draw.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=2)
        label = str(number)
        text_w = 7 * len(label) + 4
        draw.rectangle([x, y, x + text_w, y + 12], fill=colour)
        draw.text((x + 2, y), label, fill=(255, 255, 255))
    return np.asarray(image, dtype=np.uint8)


def legend(marks: list[dict[str, Any]]) -> str:
    """One line per mark: ``[n] role 'name' @(x,y,w,h)``."""
    return "\n".join(f"[{i}] {m['role']} {m['name']!r} @({','.join(str(v) for v in m['box'])})"
                     for i, m in enumerate(marks, start=1))


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Depth-first; a combo box's popup list is skipped (toolkits report it showing while closed)."""
    yield node
    if node.get("role") == "combo box":
        return
    for child in node.get("children", []):
        yield from _walk(child)
