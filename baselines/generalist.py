"""GeneralistAgent: one general VLM (e.g. Qwen2.5-VL) that writes our action language itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from baselines import prompts
from coda_agent.backends.base import Backend, Message
from coda_agent.cerebrum import MAX_HISTORY_LINE
from coda_agent.images import DEFAULT_MAX_PIXELS, model_image, screen_size_of
from coda_agent.prompts import history_lines
from coda_agent.uitars import CoordinateFrame, split_thought
from sciboard_gym import actions


def to_screen(action: actions.Action, frame: CoordinateFrame) -> actions.Action:
    """``action`` with its points mapped from the model's image to the screen (others unchanged)."""
    if isinstance(action, actions.Drag):
        x1, y1 = frame.to_screen(action.x1, action.y1)
        x2, y2 = frame.to_screen(action.x2, action.y2)
        return dataclasses.replace(action, x1=x1, y1=y1, x2=x2, y2=y2)
    if isinstance(action, (actions.Click, actions.DoubleClick, actions.RightClick, actions.Move, actions.Scroll)):
        x, y = frame.to_screen(action.x, action.y)
        return dataclasses.replace(action, x=x, y=y)
    return action


class GeneralistAgent:
    """An :class:`~sciboard_gym.agent.Agent` made of one VLM acting alone.

    Each step the model sees the task, its last ``history_steps`` thoughts and actions, and
    the screenshot resized to at most ``max_pixels`` (patch-aligned, so the image it reasons
    about is exactly the one it was sent). It answers ``Thought: ... Action: <action>`` in the
    action language with coordinates in that image's pixels; they are mapped back to the
    screen. A reply that is not one valid action is passed on as it is: the env refuses it
    with ``info["action_error"]`` and the history notes the failure.
    """

    def __init__(self, backend: Backend, *, history_steps: int = 8, max_new_tokens: int = 256,
                 temperature: float = 0.0, max_pixels: int = DEFAULT_MAX_PIXELS,
                 system_prompt: str = prompts.GENERALIST_SYSTEM):
        self.backend = backend
        self.history_steps, self.max_new_tokens, self.temperature = history_steps, max_new_tokens, temperature
        self.max_pixels, self.system_prompt = max_pixels, system_prompt
        self.instruction = ""
        self.history: list[str] = []
        self.last_info: dict[str, Any] = {}

    def reset(self, instruction: str) -> None:
        self.instruction = instruction
        self.history = []
        self.last_info = {}

    def conversation(self, observation: Mapping[str, Any]) -> list[Message]:
        """The prompt for this state: system text, then the task, history and current screenshot."""
        image = model_image(observation["screenshot"], self.max_pixels)
        system = self.system_prompt.format(width=image.width, height=image.height)
        turn = prompts.GENERALIST_TURN.format(instruction=self.instruction or observation.get("instruction", ""),
                                              history=history_lines(self.history[-self.history_steps:]))
        return [Message.of("system", system), Message.of("user", turn, image)]

    def act(self, observation: Mapping[str, Any]) -> str:
        conversation = self.conversation(observation)
        image = next(part for part in conversation[1].parts if not isinstance(part, str))
        reply = self.backend.generate([conversation], max_new_tokens=self.max_new_tokens,
                                      temperature=self.temperature)[0]
        thought, action_text = split_thought(reply)
        line = action_text.splitlines()[0].strip().strip("`").strip() if action_text.strip() else ""
        frame = CoordinateFrame("absolute", (image.width, image.height), screen_size_of(observation))
        error = None
        try:
            action = to_screen(actions.parse(line), frame).to_string()
        except actions.ActionError as err:
            error = str(err)
            action = line or reply.strip() or "(empty reply)"
        outcome = f"refused: {error}" if error else "ok"
        entry = f"Thought: {thought or '-'} | Action: {action} | {outcome}"
        self.history.append(entry if len(entry) <= MAX_HISTORY_LINE else entry[:MAX_HISTORY_LINE] + "...")
        self.last_info = {"thought": thought, "reply": reply, "action": action, "parse_error": error}
        return action
