"""Running one episode of an agent in an env, optionally recorded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sciboard_gym.agent import Agent
from sciboard_gym.trajectory import TrajectoryRecorder


@dataclass
class EpisodeResult:
    """How an episode ended. ``error``: the env's fault report; ``agent_error``: the agent's crash, if it crashed."""

    task_id: str
    success: bool
    reward: float
    steps: int
    seconds: float
    terminated: bool
    truncated: bool
    error: str | None = None
    action_errors: int = 0
    checks: list[dict[str, Any]] = field(default_factory=list)
    agent_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_episode(env: Any, agent: Agent, task: str | None = None, seed: int | None = None,
                recorder: TrajectoryRecorder | None = None,
                on_step: Callable[[int, str, dict[str, Any]], None] | None = None) -> EpisodeResult:
    """Reset ``env`` (on ``task`` if given), let ``agent`` act until the episode ends.

    An agent whose ``act`` raises gives up with ``fail()``; its message goes to that step's
    ``info["agent_error"]`` and to :attr:`EpisodeResult.agent_error`.
    """
    start = time.monotonic()
    obs, info = env.reset(seed=seed, options={"task": task} if task else None)
    agent.reset(obs["instruction"])
    if recorder is not None:
        recorder.start(info["task_id"], obs["instruction"], obs, info)
    steps, action_errors, reward = 0, 0, 0.0
    terminated = truncated = False
    agent_error: str | None = None
    while not (terminated or truncated):
        try:
            action = agent.act(obs)
        except Exception as err:  # noqa: BLE001  (an agent crash ends its episode, not the run)
            action, agent_error = "fail()", f"{type(err).__name__}: {err}"
        agent_info = dict(getattr(agent, "last_info", None) or {})
        obs, reward, terminated, truncated, info = env.step(action)
        if agent_error is not None:
            info = {**info, "agent_error": agent_error}
        steps += 1
        action_errors += info.get("action_error") is not None
        if recorder is not None:
            recorder.step(steps, action, obs, reward, terminated, truncated, info, agent_info=agent_info)
        if on_step is not None:
            on_step(steps, action, info)
    result = EpisodeResult(
        task_id=info["task_id"], success=bool(info.get("success")), reward=float(reward), steps=steps,
        seconds=round(time.monotonic() - start, 3), terminated=terminated, truncated=truncated,
        error=info.get("error"), action_errors=action_errors, checks=info.get("checks", []),
        agent_error=agent_error,
    )
    if recorder is not None:
        recorder.finish({**result.to_dict(), "seed": seed, "agent": type(agent).__name__})
    return result
