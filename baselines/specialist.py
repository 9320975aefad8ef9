"""SpecialistAgent: one grounding VLM (e.g. UI-TARS-1.5) acting alone on the task instruction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from baselines import prompts
from coda_agent.backends.base import Backend, Message, Part
from coda_agent.images import EXECUTOR_MAX_PIXELS, model_image, screen_size_of
from coda_agent.uitars import CoordinateFrame, CoordinateMode, parse_uitars, split_thought
from sciboard_gym import actions

_FINISHED_WITH_CONTENT = re.compile(r"^\s*`*\s*finished\s*\(\s*content\s*=\s*(['\"])(.+?)\1\s*\)", re.DOTALL)


class SpecialistAgent:
    """An :class:`~sciboard_gym.agent.Agent`: a UI-TARS-style model alone, in its own prompt format.

    The model gets the task, its earlier replies and the last ``history_images`` screenshots as
    a multi-turn chat, and answers ``Thought: ... Action: click(start_box='(x,y)')`` and so on.
    Replies are parsed with :func:`coda_agent.uitars.parse_uitars` (``coordinates`` as in
    :class:`coda_agent.Cerebellum`); ``finished(content='...')`` with a non-empty content becomes
    ``answer("...")``, an empty one ``done()``, ``call_user()`` ``fail()``. An unusable reply
    goes to the env as it is, which refuses it with ``info["action_error"]``.
    """

    def __init__(self, backend: Backend, *, coordinates: CoordinateMode = "absolute", history_images: int = 2,
                 history_steps: int = 15, max_new_tokens: int = 256, temperature: float = 0.0,
                 max_pixels: int = EXECUTOR_MAX_PIXELS, system_prompt: str = prompts.SPECIALIST_SYSTEM):
        if coordinates not in ("absolute", "relative"):
            raise ValueError(f"coordinates must be 'absolute' or 'relative', got {coordinates!r}")
        self.backend = backend
        self.coordinates: CoordinateMode = coordinates
        self.history_images, self.history_steps = max(0, history_images), max(0, history_steps)
        self.max_new_tokens, self.temperature, self.max_pixels = max_new_tokens, temperature, max_pixels
        self.system_prompt = system_prompt
        self.instruction = ""
        self.turns: list[tuple[Any, str]] = []  # (model image, reply) of earlier steps
        self.last_info: dict[str, Any] = {}

    def reset(self, instruction: str) -> None:
        self.instruction = instruction
        self.turns = []
        self.last_info = {}

    def conversation(self, observation: Mapping[str, Any]) -> list[Message]:
        """Task prompt, earlier replies (the most recent with their screenshots), then the current screen."""
        coordinates = prompts.ABSOLUTE_COORDINATES if self.coordinates == "absolute" else prompts.RELATIVE_COORDINATES
        text = self.system_prompt.format(coordinates=coordinates,
                                         instruction=self.instruction or observation.get("instruction", ""))
        turns = self.turns[-self.history_steps:] if self.history_steps else []
        older, recent = turns[:len(turns) - self.history_images], turns[len(turns) - self.history_images:]
        if self.history_images == 0:
            older, recent = turns, []
        if older:
            text += "\n\nEarlier actions (oldest first):\n" + "\n".join(
                f"{i}. {split_thought(reply)[1] or reply.strip()}" for i, (_, reply) in enumerate(older, 1))
        messages = [Message.of("user", text)]
        for image, reply in recent:
            messages += [Message.of("user", image), Message.of("assistant", reply)]
        current: Part = model_image(observation["screenshot"], self.max_pixels)
        return messages + [Message.of("user", current)]

    def act(self, observation: Mapping[str, Any]) -> str:
        conversation = self.conversation(observation)
        image = conversation[-1].parts[0]
        reply = self.backend.generate([conversation], max_new_tokens=self.max_new_tokens,
                                      temperature=self.temperature)[0]
        self.turns.append((image, reply))
        screen = screen_size_of(observation)
        frame = CoordinateFrame(self.coordinates, (image.width, image.height), screen)  # type: ignore[union-attr]
        error = None
        action_text = split_thought(reply)[1]
        answer = _FINISHED_WITH_CONTENT.match(action_text)
        try:
            if answer:
                action = actions.parse(actions.Answer(answer.group(2)).to_string()).to_string()
            else:
                parsed = parse_uitars(reply, frame)
                actions.check_bounds(parsed, screen)
                action = parsed.to_string()
        except actions.ActionError as err:
            error = str(err)
            action = action_text.strip() or reply.strip() or "(empty reply)"
        self.last_info = {"thought": split_thought(reply)[0], "reply": reply, "action": action,
                          "parse_error": error}
        return action
