"""The oracle agent: replays a task's known solution (for testing tasks and the pipeline)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sciboard_gym.tasks import Task


class OracleAgent:
    """Plays ``task.oracle`` one action per step; says ``fail()`` if asked for more."""

    def __init__(self, task: Task):
        self.task = task
        self._next = 0

    def reset(self, instruction: str) -> None:
        self._next = 0

    def act(self, observation: Mapping[str, Any]) -> str:
        if self._next >= len(self.task.oracle):
            return "fail()"
        action = self.task.oracle[self._next]
        self._next += 1
        return action
