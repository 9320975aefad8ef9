"""The Cerebrum: a generalist planner VLM that writes ``Thought: ... Action: ...``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from coda_agent import prompts
from coda_agent.backends.base import Backend, Message, Part
from coda_agent.images import DEFAULT_MAX_PIXELS, model_image
from coda_agent.uitars import split_thought
from sciboard_gym import actions

MAX_HISTORY_LINE = 400


@dataclass(frozen=True)
class PlanStep:
    """One planner reply, parsed. Malformed replies still parse: whatever text there is becomes the plan."""

    thought: str
    action: str
    raw: str
    terminal: str | None = None  # done() / fail() / answer("...") in the action language

    @property
    def plan(self) -> str:
        """The text the executor grounds: the thought, else the action sentence, else the raw reply."""
        return self.thought or self.action or self.raw.strip()

    @property
    def env_action(self) -> str:
        """What a plan-mode env (:class:`~sciboard_gym.wrappers.PlanActions`) receives: the terminal action, or the plan for the executor."""
        return self.terminal or self.plan


def parse_plan(text: str) -> PlanStep:
    """Split a planner reply into thought / action and recognise the terminal actions."""
    thought, action = split_thought(text)
    if not re.search(r"Action\s*:", text):
        action = ""
    first_line = action.splitlines()[0].strip().strip("`").strip() if action else ""
    terminal = None
    try:
        parsed = actions.parse(first_line)
        terminal = parsed.to_string() if parsed.terminal else None
    except actions.ActionError:
        pass
    return PlanStep(thought=thought, action=action, raw=text, terminal=terminal)


def history_line(step: PlanStep, outcome: str | None = None) -> str:
    """The history line the planner sees for a past step (and what came of it), capped in length."""
    line = f"Thought: {step.thought or '-'} | Action: {step.terminal or step.action or step.plan or '-'}"
    line += f" | {outcome}" if outcome else ""
    return line if len(line) <= MAX_HISTORY_LINE else line[:MAX_HISTORY_LINE] + "..."


class Cerebrum:
    """The planner. Also an :class:`~sciboard_gym.agent.Agent` for plan-mode envs
    (:class:`~sciboard_gym.wrappers.PlanActions` with a :class:`~coda_agent.Cerebellum`).

    The prompt holds the task, the last ``history_steps`` thoughts and actions, and the
    previous and current screenshots (resized to at most ``max_pixels``).
    """

    def __init__(self, backend: Backend, *, history_steps: int = 8, max_new_tokens: int = 256,
                 temperature: float = 0.0, max_pixels: int = DEFAULT_MAX_PIXELS,
                 system_prompt: str = prompts.PLANNER_SYSTEM):
        self.backend = backend
        self.history_steps, self.max_new_tokens, self.temperature = history_steps, max_new_tokens, temperature
        self.max_pixels, self.system_prompt = max_pixels, system_prompt
        self.instruction = ""
        self.history: list[str] = []
        self.previous: Image.Image | None = None

    def reset(self, instruction: str) -> None:
        self.instruction = instruction
        self.history = []
        self.previous = None

    def conversation(self, observation: Mapping[str, Any]) -> list[Message]:
        """The planner's prompt for this state (also what a trainer scores plans against)."""
        current = model_image(observation["screenshot"], self.max_pixels)
        turn = prompts.PLANNER_TURN.format(
            instruction=self.instruction or observation.get("instruction", ""),
            history=prompts.history_lines(self.history[-self.history_steps:]), screens="{screens}")
        before, after = turn.split("{screens}")
        parts: list[Part] = [before]
        if self.previous is not None:
            parts += ["Previous screen:", self.previous]
        parts += ["Current screen:", current, after]
        return [Message.of("system", self.system_prompt), Message("user", tuple(parts))]

    def propose(self, observation: Mapping[str, Any], n: int = 1, temperature: float | None = None) -> list[PlanStep]:
        """``n`` candidate steps for this state, as one batch; the history is left unchanged."""
        conversation = self.conversation(observation)
        replies = self.backend.generate([conversation] * n, max_new_tokens=self.max_new_tokens,
                                        temperature=self.temperature if temperature is None else temperature)
        return [parse_plan(reply) for reply in replies]

    def commit(self, step: PlanStep, observation: Mapping[str, Any], outcome: str | None = None) -> None:
        """Record ``step`` (and what came of it) in the history; the screenshot becomes the previous one."""
        self.history.append(history_line(step, outcome))
        self.previous = model_image(observation["screenshot"], self.max_pixels)

    def plan(self, observation: Mapping[str, Any]) -> PlanStep:
        """Propose one step and commit it."""
        step = self.propose(observation)[0]
        self.commit(step, observation)
        return step

    def act(self, observation: Mapping[str, Any]) -> str:
        """Agent protocol for plan-mode envs: the plan step (or terminal action) as text."""
        return self.plan(observation).env_action
