"""Fakes for the comparison tests (no desktop): an env that grades agents against the task's oracle,
a scripted model backend, and a third-party agent class named as ``compare_fakes:Class``."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sciboard_gym import actions
from sciboard_gym.tasks import get_task


class FakeEnv:
    """Succeeds exactly when the agent plays the task's oracle; frames are small grey images."""

    def __init__(self, app: str, die_on: str | None = None, break_on: str | None = None,
                 max_steps: int | None = None, step_seconds: float = 0.0):
        self.app, self.die_on, self.break_on, self.max_steps = app, die_on, break_on, max_steps
        self.step_seconds = step_seconds
        self.unwrapped = self
        self.screen_size = (64, 48)
        self.closed = False

    def _obs(self) -> dict[str, Any]:
        shade = 40 + 20 * len(self.played)
        return {"screenshot": np.full((48, 64, 3), shade % 256, np.uint8), "instruction": self.task.instruction}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        self.task = get_task((options or {})["task"]).variant(seed or 0)  # as SciBoardEnv plays reset(seed)
        if self.task.id == self.die_on:
            os._exit(3)  # the worker process dies mid-episode
        if self.task.id == self.break_on:
            raise RuntimeError("the fake desktop is broken")
        self.played: list[str] = []
        self.steps = 0
        return self._obs(), {"task_id": self.task.id}

    def step(self, action: str):
        info: dict[str, Any] = {"task_id": self.task.id, "action_error": None}
        self.steps += 1
        time.sleep(self.step_seconds)
        try:
            parsed = actions.parse(action)
            info["executed"] = parsed.to_string()
            self.played.append(parsed.to_string())
        except actions.ActionError as err:
            info["action_error"] = str(err)
            parsed = None
        terminated = parsed is not None and parsed.terminal
        truncated = not terminated and self.steps >= (self.max_steps or self.task.max_steps)
        reward = 0.0
        if terminated or truncated:
            success = tuple(self.played) == tuple(actions.parse(a).to_string() for a in self.task.oracle)
            reward = float(success)
            info.update(success=success, checks=[{"check": "played_oracle", "passed": success, "detail": ""}])
        return self._obs(), reward, terminated, truncated, info

    def close(self) -> None:
        self.closed = True


class FakeEnvFactory:
    """Picklable env factory for worker processes."""

    def __init__(self, die_on: str | None = None, break_on: str | None = None, max_steps: int | None = None,
                 step_seconds: float = 0.0):
        self.die_on, self.break_on, self.max_steps, self.step_seconds = die_on, break_on, max_steps, step_seconds

    def __call__(self, app: str) -> FakeEnv:
        return FakeEnv(app, self.die_on, self.break_on, self.max_steps, self.step_seconds)


class FakeBackend:
    """Replies from a script, one per generate call; remembers the conversations it saw."""

    def __init__(self, replies: Sequence[str]):
        self.replies = list(replies)
        self.seen: list[Any] = []

    def generate(self, conversations: Sequence[Any], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]:
        self.seen.extend(conversations)
        return [self.replies.pop(0) for _ in conversations]


class OracleCopyAgent:
    """A third-party agent (constructed with the task): plays the oracle, but crashes on one task."""

    def __init__(self, task: Any, crash_on: str = "kalgebra/assign-product"):
        self.task, self.crash_on = task, crash_on

    def reset(self, instruction: str) -> None:
        self.pending = list(self.task.oracle)

    def act(self, observation: Mapping[str, Any]) -> str:
        if self.task.id == self.crash_on:
            raise ValueError("this agent cannot do products")
        return self.pending.pop(0)


class NotAnAgent:
    pass
