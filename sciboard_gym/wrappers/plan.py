"""``PlanActions``: the agent sends natural-language plan steps; an executor grounds each into one GUI action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
from gymnasium import spaces

from sciboard_gym import actions
from sciboard_gym.env import CHARSET, MAX_ACTION

#: Sent to the env when the executor fails: it never parses, so nothing runs and the step counts.
_NOTHING = ""


@runtime_checkable
class Executor(Protocol):
    """Grounds one plan step on the current screen into one action of the action language.

    ``ground`` raises ``ValueError`` (e.g. ``coda_agent.GroundingError``) when the model's reply
    is unusable; any other exception (a dead model server) is not the agent's doing and propagates.
    """

    def ground(self, plan: str, observation: Mapping[str, Any]) -> str: ...


class PlanActions(gym.Wrapper):
    """Plan mode (CODA's planner interface): each action is a plan step that ``executor`` grounds.

    The executor sees the observation the agent saw (no second screenshot or tree walk) and
    returns one action string, which the wrapped env executes. Terminal actions (``done()``,
    ``fail()``, ``answer("...")``) go to the env without the executor. If the executor raises
    ``ValueError`` (it could not ground the plan), nothing runs, the step counts and ``info["action_error"]`` says why. ``info["plan"]`` holds
    the plan on every step; ``info["executed"]`` the action it became. The wrapped env stays
    model-free (and picklable): the executor lives only in this wrapper.
    """

    def __init__(self, env: gym.Env, executor: Executor):
        if not callable(getattr(executor, "ground", None)):
            raise TypeError(f"executor must have ground(plan, observation) -> str, got {type(executor).__name__}")
        super().__init__(env)
        self.executor = executor
        self.action_space = spaces.Text(MAX_ACTION, min_length=1, charset=CHARSET)
        self._obs: Mapping[str, Any] | None = None

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        plan = str(action)
        grounding_error = None
        if _is_terminal(plan):
            gui_action = plan
        else:
            try:
                gui_action = str(self.executor.ground(plan, self._obs))
            except ValueError as err:  # an unusable grounding is the agent's action error, not a crash
                gui_action, grounding_error = _NOTHING, f"the executor could not ground the plan: {err}"
        obs, reward, terminated, truncated, info = self.env.step(gui_action)
        self._obs = obs
        info["plan"] = plan
        if grounding_error is not None:
            info["action_error"] = grounding_error
        return obs, reward, terminated, truncated, info


def _is_terminal(plan: str) -> bool:
    try:
        return actions.parse(plan).terminal
    except actions.ActionError:
        return False
