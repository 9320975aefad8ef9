"""CODAAgent: the Cerebrum plans, the Cerebellum grounds, one GUI action per step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coda_agent.cerebellum import Cerebellum, Grounding
from coda_agent.cerebrum import Cerebrum, PlanStep


@dataclass(frozen=True)
class CODAStep:
    """What happened in one step: the plan, its grounding (None for terminal actions), the action sent."""

    plan: PlanStep
    grounding: Grounding | None
    action: str


class CODAAgent:
    """An :class:`~sciboard_gym.agent.Agent` for ordinary (GUI action) envs.

    Terminal planner actions (``done()``, ``fail()``, ``answer(...)``) go straight to the env.
    Every other step is grounded by the executor. When the executor's reply is not a valid
    action, the agent returns that reply unchanged: the env rejects it with an
    ``info["action_error"]`` and the episode goes on; the planner's history notes the failure.
    """

    def __init__(self, cerebrum: Cerebrum, cerebellum: Cerebellum):
        self.cerebrum, self.cerebellum = cerebrum, cerebellum
        self.steps: list[CODAStep] = []
        self.last_info: dict[str, Any] = {}

    def reset(self, instruction: str) -> None:
        self.cerebrum.reset(instruction)
        self.steps = []
        self.last_info = {}

    def act(self, observation: Mapping[str, Any]) -> str:
        step = self.cerebrum.propose(observation)[0]
        if step.terminal:
            self.cerebrum.commit(step, observation)
            self._record(step, None, step.terminal)
            return step.terminal
        grounding = self.cerebellum.ground_many([step.plan], observation)[0]
        if grounding.action is not None:
            self.cerebrum.commit(step, observation, f"executed {grounding.action}")
            return self._record(step, grounding, grounding.action)
        self.cerebrum.commit(step, observation, f"the executor failed: {grounding.error}")
        return self._record(step, grounding, grounding.raw.strip())

    def _record(self, plan: PlanStep, grounding: Grounding | None, action: str) -> str:
        self.steps.append(CODAStep(plan, grounding, action))
        self.last_info = {"thought": plan.thought, "plan": plan.plan, "planner_reply": plan.raw,
                          "executor_reply": grounding.raw if grounding else None,
                          "grounding_error": grounding.error if grounding else None}
        return action
