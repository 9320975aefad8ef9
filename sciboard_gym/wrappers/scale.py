"""``ScaleScreen``: the agent sees a smaller screenshot and acts in its coordinates."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from sciboard_gym import actions

_COORDINATE_FIELDS = {"x": 0, "y": 1, "x1": 0, "y1": 1, "x2": 0, "y2": 1}


class ScaleScreen(gym.Wrapper):
    """Resize ``screenshot`` (and ``som_screenshot``) to ``size`` = (width, height), and scale the
    coordinates of incoming actions back to the desktop's pixels.

    Actions that do not parse are passed through unchanged, so the env reports the error.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int]):
        super().__init__(env)
        self.size = (int(size[0]), int(size[1]))
        self.full_size = tuple(env.get_wrapper_attr("screen_size"))
        width, height = self.size
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(f"ScaleScreen wraps a SciBoard env (Dict observations), got {env.observation_space}")
        observation_space = dict(env.observation_space.spaces)
        for key in ("screenshot", "som_screenshot"):
            if key in observation_space:
                observation_space[key] = spaces.Box(0, 255, (height, width, 3), np.uint8)
        self.observation_space = spaces.Dict(observation_space)

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return self._scale_obs(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.scale_action(action))
        return self._scale_obs(obs), reward, terminated, truncated, info

    def scale_action(self, action: Any) -> Any:
        """Map an action string in the small screen's coordinates to the desktop's."""
        try:
            parsed = actions.parse(action, self.size)
        except actions.ActionError:
            return action
        factors = (self.full_size[0] / self.size[0], self.full_size[1] / self.size[1])
        changes = {}
        for field in dataclasses.fields(parsed):
            axis = _COORDINATE_FIELDS.get(field.name)
            if axis is not None:
                limit = self.full_size[axis] - 1
                changes[field.name] = min(limit, int((getattr(parsed, field.name) + 0.5) * factors[axis]))
        return dataclasses.replace(parsed, **changes).to_string() if changes else action

    def _scale_obs(self, obs: dict[str, Any]) -> dict[str, Any]:
        out = dict(obs)
        for key in ("screenshot", "som_screenshot"):
            if key in out:
                out[key] = np.asarray(Image.fromarray(out[key]).resize(self.size, Image.Resampling.BILINEAR), dtype=np.uint8)
        return out
