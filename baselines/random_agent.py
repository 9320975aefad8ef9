"""The random agent: uniformly random GUI actions (a floor for success rates, and a soak load)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import numpy as np

_KEYS = ("Return", "Tab", "Escape", "BackSpace", "Up", "Down", "Left", "Right", "ctrl+a", "ctrl+z", "space")
_KINDS = ("click", "double_click", "right_click", "move", "scroll", "type", "key", "drag")


class RandomAgent:
    """Emits random actions inside the screen; ends with ``done()`` with probability ``p_done``."""

    def __init__(self, screen_size: tuple[int, int] = (1920, 1080), seed: int | None = None, p_done: float = 0.05):
        self.width, self.height = screen_size
        self.p_done = p_done
        self.rng = np.random.default_rng(seed)

    def reset(self, instruction: str) -> None:
        pass

    def act(self, observation: Mapping[str, Any]) -> str:
        if "screenshot" in observation:
            self.height, self.width = observation["screenshot"].shape[:2]
        if self.rng.random() < self.p_done:
            return "done()"
        kind = _KINDS[int(self.rng.integers(len(_KINDS)))]
        x, y = int(self.rng.integers(self.width)), int(self.rng.integers(self.height))
        if kind == "scroll":
            return f"scroll({x}, {y}, {int(self.rng.choice([-3, -1, 1, 3]))})"
        if kind == "type":
            letters = string.ascii_letters + string.digits + "+-*/^() "
            text = "".join(letters[int(i)] for i in self.rng.integers(len(letters), size=int(self.rng.integers(1, 8))))
            return f'type("{text}")'
        if kind == "key":
            return f'key("{_KEYS[int(self.rng.integers(len(_KEYS)))]}")'
        if kind == "drag":
            x2, y2 = int(self.rng.integers(self.width)), int(self.rng.integers(self.height))
            return f"drag({x}, {y}, {x2}, {y2})"
        return f"{kind}({x}, {y})"
