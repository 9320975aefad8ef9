"""Spaces classic RL libraries (Stable-Baselines3) can train on: a discrete action grid, an image observation.

::

    env = SB3Actions(ImageObservation(gym.make("SciBoard-KAlgebra-v0"), (84, 84)), grid=(16, 9))
    model = stable_baselines3.PPO("CnnPolicy", env)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from sciboard_gym import actions

#: Pointer kinds (x, y from the grid cell), before the keys.
POINTER_KINDS = ("click", "double_click", "right_click", "scroll_up", "scroll_down")
DEFAULT_KEYS = ("Return", "Escape", "Tab", "BackSpace")
SCROLL_NOTCHES = 3


class ImageObservation(gym.ObservationWrapper):
    """The observation becomes the screenshot alone, resized to ``size`` = (width, height).

    ``Box(0, 255, (height, width, 3), uint8)``, channel-last RGB: what SB3's ``CnnPolicy``
    takes (SB3 transposes it to channel-first itself). The instruction is dropped: train one
    task (``gym.make(..., task=...)``) or a family whose screen tells the task.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int] = (84, 84)):
        super().__init__(env)
        self.size = (int(size[0]), int(size[1]))
        self.observation_space = spaces.Box(0, 255, (self.size[1], self.size[0], 3), np.uint8)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        frame = Image.fromarray(observation["screenshot"]).resize(self.size, Image.Resampling.BILINEAR)
        return np.array(frame, dtype=np.uint8)  # a writable copy (torch warns on read-only arrays)


class SB3Actions(gym.ActionWrapper):
    """``MultiDiscrete([columns, rows, kinds])``: a grid cell for the pointer and what to do there.

    Kinds, in order: ``click``, ``double_click``, ``right_click``, ``scroll_up``, ``scroll_down``
    at the cell's centre, then one ``key(...)`` per entry of ``keys`` (the cell is ignored),
    then ``done()`` if ``allow_done``. Without ``done()`` an episode ends at its step limit,
    where the evaluator still scores the app's state. ``describe(action)`` gives the string an
    action becomes.
    """

    def __init__(self, env: gym.Env, grid: tuple[int, int] = (16, 9), keys: Sequence[str] = DEFAULT_KEYS,
                 allow_done: bool = True, screen_size: tuple[int, int] | None = None):
        super().__init__(env)
        self.grid = (int(grid[0]), int(grid[1]))
        if min(self.grid) < 1:
            raise ValueError(f"grid needs at least one column and one row, got {grid}")
        for key in keys:
            actions.parse(f'key("{key}")')  # a bad key name fails here, not in the middle of training
        self.keys = tuple(keys)
        self.kinds = POINTER_KINDS + tuple(f"key:{key}" for key in self.keys) + (("done",) if allow_done else ())
        self.screen_size = tuple(screen_size or env.unwrapped.screen_size)  # type: ignore[attr-defined]
        self.action_space = spaces.MultiDiscrete([self.grid[0], self.grid[1], len(self.kinds)])

    def action(self, action: Any) -> str:
        return self.describe(action)

    def describe(self, action: Any) -> str:
        """The action-language string for ``action`` = (column, row, kind)."""
        column, row, kind_index = (int(v) for v in np.asarray(action).reshape(-1))
        if not (0 <= column < self.grid[0] and 0 <= row < self.grid[1] and 0 <= kind_index < len(self.kinds)):
            raise ValueError(f"action {action} is outside {self.action_space}")
        x = int((column + 0.5) * self.screen_size[0] / self.grid[0])
        y = int((row + 0.5) * self.screen_size[1] / self.grid[1])
        kind = self.kinds[kind_index]
        if kind == "done":
            return "done()"
        if kind.startswith("key:"):
            return f'key("{kind[4:]}")'
        if kind.startswith("scroll_"):
            return f"scroll({x}, {y}, {SCROLL_NOTCHES if kind == 'scroll_down' else -SCROLL_NOTCHES})"
        return f"{kind}({x}, {y})"
