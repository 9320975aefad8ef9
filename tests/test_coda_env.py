"""The CODA agent with tiny real models in the real KAlgebra env, in gui mode and in plan mode (the
``PlanActions`` wrapper).

Success is not expected from random weights; the episodes must run to their end, with the
models' malformed output turned into action errors instead of crashes.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

torch.set_num_threads(1)  # tiny models gain nothing from threads; the machine is shared

import gymnasium as gym

import sciboard_gym  # noqa: F401  (registers the envs)
from coda_agent import Cerebellum, Cerebrum, CODAAgent, TransformersBackend
from coda_agent.tiny import cached_tiny_qwen25vl
from coda_agent.uitars import CoordinateFrame, parse_uitars
from sciboard_gym.wrappers import PlanActions

pytestmark = pytest.mark.desktop
PIXELS = 112 * 112 * 4


@pytest.fixture(scope="module")
def backend() -> TransformersBackend:
    return TransformersBackend(str(cached_tiny_qwen25vl()), dtype="float32")


def executor(backend: TransformersBackend) -> Cerebellum:
    return Cerebellum(backend, max_pixels=PIXELS, max_new_tokens=24)


def planner(backend: TransformersBackend) -> Cerebrum:
    return Cerebrum(backend, max_pixels=PIXELS, max_new_tokens=24)


def run(env: Any, agent: Any, task: str) -> list[dict[str, Any]]:
    """One episode to its end (agent exceptions propagate: they would be crashes)."""
    obs, _ = env.reset(options={"task": task})
    agent.reset(obs["instruction"])
    infos: list[dict[str, Any]] = []
    while True:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs))
        infos.append(info)
        if terminated or truncated:
            assert "success" in info and reward in (0.0, 1.0)
            return infos


def test_gui_mode_episodes_run_to_the_end(live_env, backend: TransformersBackend) -> None:
    env = live_env("kalgebra")
    agent = CODAAgent(planner(backend), executor(backend))
    for task in ("kalgebra/assign-sum", "kalgebra/plot-sine"):
        infos = run(env, agent, task)
        assert len(infos) == len(agent.steps) and len(infos) <= env.max_steps
        failed = [i for i in infos if i["action_error"]]
        assert failed, "random weights should have produced at least one unusable reply"
        for info, step in zip(infos, agent.steps):
            assert (info["action_error"] is None) == (step.action == info["executed"])


def test_uitars_reply_grounded_for_the_real_screen_solves_a_task(live_env) -> None:
    env = live_env("kalgebra")
    obs, _ = env.reset(options={"task": "kalgebra/assign-sum"})
    height, width = obs["screenshot"].shape[:2]
    frame = CoordinateFrame("absolute", (width // 2, height // 2), (width, height))
    for reply in ("Thought: enter the sum\nAction: type(content='total:=17+25+58\\n')", "Action: finished()"):
        obs, reward, terminated, _, info = env.step(parse_uitars(reply, frame).to_string())
        assert info["action_error"] is None
    assert terminated and reward == 1.0


def test_plan_actions_wrapper_grounds_plans_with_the_cerebellum(backend: TransformersBackend) -> None:
    base = gym.make("SciBoard-KAlgebra-v0", max_steps=3)
    env = PlanActions(base, executor(backend))
    try:
        infos = run(env, planner(backend), "kalgebra/assign-sum")
        assert len(infos) == 3 and infos[-1]["success"] is False
        assert any("executor could not ground" in (i["action_error"] or "") for i in infos)
        assert all(i["plan"] for i in infos)
        assert all((i["executed"] is None) == (i["action_error"] is not None) for i in infos)
        env.reset(options={"task": "kalgebra/assign-sum"})
        _, _, terminated, _, info = env.step('answer("100")')  # terminal plans pass straight through
        assert terminated and info["executed"] == 'answer("100")' and info["action_error"] is None
        copy = pickle.loads(pickle.dumps(base))  # the base env holds no model: it pickles as its configuration
        assert copy.unwrapped.max_steps_override == 3 and not hasattr(copy.unwrapped, "executor")
        copy.close()
    finally:
        env.close()


def test_plan_mode_is_a_wrapper_not_an_env_argument(backend: TransformersBackend) -> None:
    with pytest.raises(ValueError, match="PlanActions"):
        gym.make("SciBoard-KAlgebra-v0", action_mode="plan", executor=executor(backend))
