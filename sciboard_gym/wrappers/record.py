"""``RecordTrajectory``: save every episode (frames, steps, result) while any agent plays."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym

from sciboard_gym.trajectory import TrajectoryRecorder


class RecordTrajectory(gym.Wrapper):
    """Writes each episode to ``folder/<time>-<n>-<task>/`` (see :mod:`sciboard_gym.trajectory`)."""

    def __init__(self, env: gym.Env, folder: str | Path, save_frames: bool = True):
        super().__init__(env)
        self.folder = Path(folder)
        self.save_frames = save_frames
        self.episodes = 0
        self._recorder: TrajectoryRecorder | None = None
        self._steps = 0

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.episodes += 1
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{self.episodes:05d}-{info['task_id'].replace('/', '_')}"
        self._recorder = TrajectoryRecorder(self.folder / name, save_frames=self.save_frames)
        self._recorder.start(info["task_id"], obs["instruction"], obs, info)
        self._steps = 0
        return obs, info

    @property
    def episode_folder(self) -> Path | None:
        return None if self._recorder is None else self._recorder.folder

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        if self._recorder is not None:
            self._recorder.step(self._steps, str(action), obs, float(reward), terminated, truncated, info)
            if terminated or truncated:
                self._recorder.finish({"success": bool(info.get("success")), "reward": float(reward),
                                       "steps": self._steps, "error": info.get("error")})
        return obs, reward, terminated, truncated, info
