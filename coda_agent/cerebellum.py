"""The Cerebellum: a specialist executor VLM that grounds one plan step into one GUI action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coda_agent import prompts
from coda_agent.backends.base import Backend, Message
from coda_agent.images import EXECUTOR_MAX_PIXELS, model_image, screen_size_of
from coda_agent.uitars import CoordinateFrame, CoordinateMode, parse_uitars, split_thought
from sciboard_gym import actions


class GroundingError(ValueError):
    """The executor's reply is not one valid action; ``raw`` is what the model said."""

    def __init__(self, message: str, raw: str = ""):
        super().__init__(message)
        self.raw = raw


@dataclass(frozen=True)
class Grounding:
    """One grounded plan: the action (action-language string) or the reason there is none."""

    plan: str
    raw: str
    action: str | None = None
    error: str | None = None


class Cerebellum:
    """The executor, e.g. UI-TARS-1.5-7B. Implements the env's executor protocol, ``ground``.

    ``coordinates`` is ``"absolute"`` (pixels of the image the model saw: UI-TARS-1.5 and
    other Qwen2.5-VL models) or ``"relative"`` (0-1000: UI-TARS 1.0 / Qwen2-VL). Screenshots
    are resized to at most ``max_pixels`` before the model sees them; actions come back in
    pixels of the original screenshot. Terminal actions (``done()``, ``fail()``,
    ``answer(...)``) pass straight through without the model.
    """

    def __init__(self, backend: Backend, *, coordinates: CoordinateMode = "absolute",
                 max_pixels: int = EXECUTOR_MAX_PIXELS, max_new_tokens: int = 128, temperature: float = 0.0,
                 prompt: str | None = None):
        if coordinates not in ("absolute", "relative"):
            raise ValueError(f"coordinates must be 'absolute' or 'relative', got {coordinates!r}")
        self.backend = backend
        self.coordinates: CoordinateMode = coordinates
        self.max_pixels, self.max_new_tokens, self.temperature = max_pixels, max_new_tokens, temperature
        self.prompt = prompt or (prompts.EXECUTOR_UITARS if coordinates == "absolute"
                                 else prompts.EXECUTOR_UITARS_RELATIVE)

    def ground(self, plan: str, observation: Mapping[str, Any]) -> str:
        """One action-language string for ``plan``; raises :class:`GroundingError` if the reply is unusable."""
        result = self.ground_many([plan], observation)[0]
        if result.action is None:
            raise GroundingError(result.error or "no action", result.raw)
        return result.action

    def ground_many(self, plans: Sequence[str], observation: Mapping[str, Any]) -> list[Grounding]:
        """Ground several plans for the same screen in one batch (never raises for bad replies)."""
        return self.ground_batch(plans, [observation] * len(plans))

    def ground_batch(self, plans: Sequence[str], observations: Sequence[Mapping[str, Any]]) -> list[Grounding]:
        """Ground each plan on its own screen, all in one backend call (never raises for bad replies)."""
        if len(plans) != len(observations):
            raise ValueError(f"{len(plans)} plans but {len(observations)} observations")
        results: list[Grounding | None] = [_pass_through(plan) for plan in plans]
        pending = [i for i, r in enumerate(results) if r is None]
        if pending:
            images: dict[int, Any] = {}
            conversations, frames = [], []
            for i in pending:
                shot = observations[i]["screenshot"]
                if id(shot) not in images:
                    images[id(shot)] = model_image(shot, self.max_pixels)
                image = images[id(shot)]
                frames.append(CoordinateFrame(self.coordinates, image.size, screen_size_of(observations[i])))
                conversations.append([Message.of("user", image, self.prompt.replace("{plan}", plans[i].strip()))])
            replies = self.backend.generate(conversations, max_new_tokens=self.max_new_tokens,
                                            temperature=self.temperature)
            for i, reply, frame in zip(pending, replies, frames):
                results[i] = _interpret(plans[i], reply, frame)
        return [r for r in results if r is not None]


def _pass_through(plan: str) -> Grounding | None:
    """Terminal actions skip the executor; an empty plan cannot be grounded."""
    if not plan.strip():
        return Grounding(plan, "", error="the plan is empty")
    try:
        parsed = actions.parse(plan)
    except actions.ActionError:
        return None
    return Grounding(plan, plan, action=parsed.to_string()) if parsed.terminal else None


def _interpret(plan: str, reply: str, frame: CoordinateFrame) -> Grounding:
    """The executor's reply as an action: UI-TARS format first, then the action language itself."""
    try:
        action = parse_uitars(reply, frame)
    except actions.ActionError as uitars_error:
        try:
            action = actions.parse(split_thought(reply)[1], frame.screen_size)
        except actions.ActionError:
            return Grounding(plan, reply, error=f"unusable executor output ({uitars_error}): {_preview(reply)}")
    try:
        actions.check_bounds(action, frame.screen_size)
    except actions.ActionError as err:
        return Grounding(plan, reply, error=str(err))
    return Grounding(plan, reply, action=action.to_string())


def _preview(text: str, limit: int = 120) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
