"""PlanActions without a desktop: which executor failures are action errors and which stop the run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from sciboard_gym import actions
from sciboard_gym.wrappers import PlanActions


class FakeGuiEnv(gym.Env):
    """Parses each action like the real env and records what it was asked to run."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"screenshot": spaces.Box(0, 255, (4, 4, 3), np.uint8)})
        self.action_space = spaces.Text(100)
        self.received: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return {"screenshot": np.zeros((4, 4, 3), np.uint8)}, {}

    def step(self, action: str):
        self.received.append(action)
        info: dict[str, Any] = {"action_error": None, "executed": None}
        try:
            info["executed"] = actions.parse(action).to_string()
        except actions.ActionError as err:
            info["action_error"] = str(err)
        return {"screenshot": np.zeros((4, 4, 3), np.uint8)}, 0.0, False, False, info


class FakeExecutor:
    def __init__(self, reply: str | Exception):
        self.reply = reply
        self.seen: list[tuple[str, Mapping[str, Any]]] = []

    def ground(self, plan: str, observation: Mapping[str, Any]) -> str:
        self.seen.append((plan, observation))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_grounded_action_runs_and_terminal_plans_skip_the_executor() -> None:
    executor = FakeExecutor("click(1, 2)")
    gui = FakeGuiEnv()
    env = PlanActions(gui, executor)
    obs, _ = env.reset()
    _, _, _, _, info = env.step("press the button")
    assert info["executed"] == "click(1, 2)" and info["plan"] == "press the button"
    assert executor.seen[0][1] is obs  # the executor grounds on the observation the agent saw
    env.step("done()")
    assert len(executor.seen) == 1 and gui.received == ["click(1, 2)", "done()"]


def test_unusable_grounding_is_an_action_error_and_nothing_runs() -> None:
    env = PlanActions(FakeGuiEnv(), FakeExecutor(ValueError("no coordinates in the reply")))
    env.reset()
    _, _, _, _, info = env.step("press the button")
    assert info["action_error"] == "the executor could not ground the plan: no coordinates in the reply"
    assert info["executed"] is None and info["plan"] == "press the button"


def test_a_broken_executor_is_not_the_agents_fault() -> None:
    env = PlanActions(FakeGuiEnv(), FakeExecutor(ConnectionError("model server down")))
    env.reset()
    with pytest.raises(ConnectionError):
        env.step("press the button")


def test_executor_must_ground() -> None:
    with pytest.raises(TypeError, match="ground"):
        PlanActions(FakeGuiEnv(), object())  # type: ignore[arg-type]
