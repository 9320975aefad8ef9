"""Pure logic of the CODA agent (plan parsing, grounding, history) with a scripted FakeBackend.

These are unit tests of our own logic; the real-model runs are in test_coda_tiny_models.py,
test_coda_env.py and test_backends_http.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from coda_agent import Cerebellum, Cerebrum, CODAAgent, GroundingError, Message, parse_plan
from coda_agent.images import fit_size, model_image
from sciboard_gym.agent import Agent


class FakeBackend:
    """Replies from a script, one per conversation, and remembers what it was asked."""

    def __init__(self, replies: list[str]):
        self.replies = list(replies)
        self.calls: list[list[list[Message]]] = []

    def generate(self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]:
        self.calls.append([list(c) for c in conversations])
        return [self.replies.pop(0) for _ in conversations]


def observation(width: int = 1920, height: int = 1080) -> dict:
    return {"screenshot": np.zeros((height, width, 3), np.uint8), "instruction": "Plot sin(x)."}


@pytest.mark.parametrize("reply, thought, action, terminal, plan", [
    ("Thought: open the 2D plot tab\nAction: Click the 2D Plot tab", "open the 2D plot tab",
     "Click the 2D Plot tab", None, "open the 2D plot tab"),
    ("Thought: it is plotted\nAction: done()", "it is plotted", "done()", "done()", "it is plotted"),
    ('Thought: 42\nAction: answer("42")\nextra words', "42", 'answer("42")\nextra words', 'answer("42")', "42"),
    ("Action: fail()", "", "fail()", "fail()", "fail()"),
    ("just some words", "", "", None, "just some words"),
    ("", "", "", None, ""),
])
def test_parse_plan(reply: str, thought: str, action: str, terminal: str | None, plan: str) -> None:
    step = parse_plan(reply)
    assert (step.thought, step.action, step.terminal, step.plan) == (thought, action, terminal, plan)
    assert step.env_action == (terminal or plan)


def test_fit_size_is_patch_aligned_and_bounded() -> None:
    width, height = fit_size(1920, 1080, max_pixels=200_000)
    assert width % 28 == 0 and height % 28 == 0 and width * height <= 200_000
    scale = (200_000 / (1920 * 1080)) ** 0.5
    assert abs(width - 1920 * scale) <= 28 and abs(height - 1080 * scale) <= 28  # aspect kept to a patch
    assert model_image(np.zeros((1080, 1920, 3), np.uint8), 200_000).size == (width, height)


def test_cerebellum_maps_absolute_coordinates_to_the_screen() -> None:
    backend = FakeBackend(["Thought: there.\nAction: click(start_box='(100,50)')"])
    executor = Cerebellum(backend, max_pixels=200_000)
    action = executor.ground("Click the Plot tab", observation())
    image = backend.calls[0][0][0].parts[0]
    assert isinstance(image, Image.Image)
    assert action == f"click({round(100 / image.width * 1920)}, {round(50 / image.height * 1080)})"
    assert "Click the Plot tab" in backend.calls[0][0][0].parts[1]


def test_cerebellum_relative_mode_and_action_language_fallback() -> None:
    executor = Cerebellum(FakeBackend(["Action: click(start_box='(250,500)')", 'Action: key("ctrl+z")']),
                          coordinates="relative")
    assert executor.ground("undo", observation()) == "click(480, 540)"
    assert executor.ground("undo", observation()) == 'key("ctrl+z")'


def test_cerebellum_passes_terminal_actions_without_the_model() -> None:
    backend = FakeBackend([])
    executor = Cerebellum(backend)
    assert executor.ground('answer("3.14")', observation()) == 'answer("3.14")'
    assert executor.ground("done()", observation()) == "done()"
    assert backend.calls == []


@pytest.mark.parametrize("reply", ["", "no idea", "Action: click(start_box='(5000,5)')",
                                   "Action: drag(start_box='(1,1)')", "click(9999, 1)"])
def test_cerebellum_refuses_bad_replies_with_grounding_error(reply: str) -> None:
    with pytest.raises(GroundingError) as caught:
        Cerebellum(FakeBackend([reply])).ground("do something", observation())
    assert caught.value.raw == reply


def test_ground_many_batches_the_model_calls() -> None:
    backend = FakeBackend(["Action: hotkey(key='enter')", "garbage"])
    results = Cerebellum(backend).ground_many(["press enter", "done()", "something"], observation())
    assert [r.action for r in results] == ['key("Return")', "done()", None]
    assert "unusable executor output" in (results[2].error or "")
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2


def test_coda_agent_steps_history_and_survives_malformed_output() -> None:
    planner = FakeBackend([
        "Thought: type the plot command into the console\nAction: type plot",
        "%%% not a plan at all",
        "Thought: the curve is drawn\nAction: done()",
    ])
    executor = FakeBackend(["Action: type(content='plot sin(x)\\n')", "@@@"])
    agent = CODAAgent(Cerebrum(planner, max_pixels=100_000), Cerebellum(executor, max_pixels=100_000))
    assert isinstance(agent, Agent)
    agent.reset("Plot sin(x).")
    assert agent.act(observation()) == 'type("plot sin(x)\\n")'
    assert agent.act(observation()) == "@@@"  # the env will reject it as an action error
    assert agent.act(observation()) == "done()"
    assert len(executor.calls) == 2  # done() never reached the executor
    assert executor.calls[1][0][0].parts[1].endswith("%%% not a plan at all")
    history = agent.cerebrum.history
    assert 'executed type("plot sin(x)\\n")' in history[0] and "the executor failed" in history[1]
    assert history[2].endswith("Action: done()")
    # The third planner prompt shows the history and both the previous and the current screen.
    prompt = planner.calls[2][0][1].parts
    assert "1. Thought: type the plot command" in prompt[0]
    assert sum(isinstance(p, Image.Image) for p in prompt) == 2
    assert [s.action for s in agent.steps] == ['type("plot sin(x)\\n")', "@@@", "done()"]


def test_cerebrum_history_window_and_propose_does_not_commit() -> None:
    planner = FakeBackend([f"Thought: step {i}\nAction: do {i}" for i in range(5)] + ["a", "b", "c"])
    cerebrum = Cerebrum(planner, history_steps=2, max_pixels=100_000)
    cerebrum.reset("task")
    for _ in range(5):
        cerebrum.plan(observation())
    steps = cerebrum.propose(observation(), n=3, temperature=1.0)
    assert [s.plan for s in steps] == ["a", "b", "c"] and len(cerebrum.history) == 5
    text = planner.calls[-1][0][1].parts[0]
    assert "step 3" in text and "step 4" in text and "step 2" not in text
