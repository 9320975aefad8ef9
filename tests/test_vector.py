"""Vector envs: ``gym.make_vec(..., vectorization_mode="async")`` runs N isolated KAlgebra desktops."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import psutil
import pytest
from gymnasium import spaces

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_gym.text_space import ObservationText

TASK = "kalgebra/assign-sum"
SOLVE = 'type("total:=17+25+58\\n")'
SMALL: dict[str, Any] = {"screen_size": (640, 480), "settle_quiet": 0.05, "settle_timeout": 1.0}


def desktop_processes(vec: Any) -> list[psutil.Process]:
    return [child for proc in vec.processes for child in psutil.Process(proc.pid).children(recursive=True)]


def assert_all_gone(procs: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive, [p.info for p in alive]


class FakeTextEnv(gym.Env):
    """Observations whose text changes every step."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"instruction": ObservationText(20)})
        self.action_space = spaces.Discrete(2)
        self.count = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.count = 0
        return {"instruction": "reset"}, {}

    def step(self, action: int):
        self.count += 1
        return {"instruction": f"step{self.count}"}, 0.0, False, False, {}


def test_observation_texts_stay_current_through_shared_memory() -> None:
    vec = gym.vector.AsyncVectorEnv([FakeTextEnv, FakeTextEnv], shared_memory=True)
    try:
        assert vec.reset()[0]["instruction"] == ("reset", "reset")
        vec.step(np.array([0, 1]))
        obs = vec.step(np.array([0, 1]))[0]
        assert obs["instruction"] == ("step2", "step2") and isinstance(obs["instruction"], tuple)
        assert vec.observations["instruction"][1] == "step2"  # the live view (copy=False) reads fresh too
    finally:
        vec.close()


@pytest.mark.desktop
def test_two_async_desktops_autoreset_and_close_cleanly() -> None:
    vec = gym.make_vec("SciBoard-KAlgebra-v0", num_envs=2, vectorization_mode="async", task=TASK, **SMALL)
    procs: list[psutil.Process] = []
    try:
        obs, info = vec.reset(seed=[1, 2])  # type: ignore[arg-type]
        procs = desktop_processes(vec)
        assert len(procs) >= 2 * 4  # each worker runs its own guest, Xvfb, window manager, buses and app
        assert obs["screenshot"].shape == (2, 480, 640, 3) and obs in vec.observation_space
        assert obs["instruction"][0].startswith("In the KAlgebra calculator") and list(info["task_id"]) == [TASK] * 2
        _, reward, terminated, _, info = vec.step((SOLVE, "done()"))
        assert list(terminated) == [False, True] and list(reward) == [0.0, 0.0]
        assert not info["success"][1] and list(info["_success"]) == [False, True]
        _, reward, terminated, _, info = vec.step(("done()", "click(5, 5)"))
        assert list(terminated) == [True, False] and list(reward) == [1.0, 0.0]  # env 0 solved in its own desktop
        assert list(info["_instruction"]) == [False, True]  # next-step autoreset: env 1 was reset, its action ignored
        assert list(info["_executed"]) == [True, False]
        _, reward, terminated, _, info = vec.step(("done()", "done()"))
        assert list(info["_task_id"]) == [True, True] and list(info["_instruction"]) == [True, False]
        assert list(terminated) == [False, True] and reward[1] == 0.0  # env 1's fresh episode: nothing typed
    finally:
        vec.close()
    assert_all_gone(procs)


@pytest.mark.desktop
def test_four_async_desktops_are_isolated() -> None:
    vec = gym.make_vec("SciBoard-KAlgebra-v0", num_envs=4, vectorization_mode="async", task=TASK, **SMALL)
    procs: list[psutil.Process] = []
    try:
        vec.reset(seed=0)
        procs = desktop_processes(vec)
        vec.step((SOLVE, "wait(0)", SOLVE, "wait(0)"))
        _, reward, terminated, _, info = vec.step(("done()",) * 4)
        assert list(terminated) == [True] * 4
        assert list(reward) == [1.0, 0.0, 1.0, 0.0], list(info["checks"])  # typing in one desktop reaches no other
    finally:
        vec.close()
    assert_all_gone(procs)
