"""Step rewards: CODA's action-match values computed by hand, and the env-outcome reward on a real app."""

from __future__ import annotations

import math
from typing import Any

import pytest
from PIL import Image

from coda_agent.rewards import ActionMatchReward, EnvOutcomeReward, char_bleu4

SIZE = [(1000, 500)]


def match(action: str | None, label: str | None, size: tuple[int, int] = (1000, 500)) -> float | None:
    return ActionMatchReward()(["p"], ["c"], grounded=[action], label=[label], screen_size=[size])[0]


@pytest.mark.parametrize(("action", "label", "expected"), [
    ("click(100, 50)", "click(100, 50)", 2.0),
    ("click(200, 100)", "click(100, 50)", 1.0 + (1 - 0.1 - 0.1)),       # dx 100/1000, dy 50/500
    ("right_click(900, 450)", "right_click(0, 0)", 1.0),                # L1 1.8: distance term floored at 0
    ("double_click(100, 50)", "click(100, 50)", 0.0),                   # another type
    ("type(\"abcd\")", "type(\"abcd\")", 2.0),
    ("type(\"abc\")", "type(\"abcd\")", 1.0 + math.exp(1 - 4 / 3)),     # precisions 1, brevity exp(1 - 4/3)
    ("type(\"abcde\")", "type(\"abcdf\")", 1.0 + (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25),
    ("key(\"Ctrl+S\")", "key(\"ctrl+s\")", 2.0),
    ("key(\"Return\")", "key(\"ctrl+s\")", 1.0),                        # no shared character n-gram... see below
    ("scroll(10, 10, 5)", "scroll(500, 400, 3)", 2.0),                  # both down
    ("scroll(10, 10, -5)", "scroll(500, 400, 3)", 1.0),                 # up vs down
    ("answer(\"42\")", "answer(\"42\")", 2.0),
    ("answer(\"42\")", "type(\"42\")", 0.0),
    ("done()", "done()", 2.0),
    ("wait(1)", "wait(5)", 2.0),
])
def test_action_match_hand_computed(action: str, label: str, expected: float) -> None:
    if action == 'key("Return")':
        expected = 1.0 + char_bleu4("return", "ctrl+s")
        assert char_bleu4("return", "ctrl+s") == 0.0  # 4-grams: none shared
    assert match(action, label) == pytest.approx(expected, abs=1e-9)


def test_drags_are_scored_by_box_iou() -> None:
    square = (1000, 1000)
    # boxes (0,0)-(0.1,0.1) and (0.05,0.05)-(0.15,0.15): intersection 0.0025, union 0.0175
    assert match("drag(0, 0, 100, 100)", "drag(50, 50, 150, 150)", square) == pytest.approx(1 + 1 / 7)
    assert match("drag(100, 100, 0, 0)", "drag(0, 0, 100, 100)", square) == pytest.approx(2.0)  # same box
    assert match("drag(0, 0, 100, 100)", "drag(200, 200, 300, 300)", square) == pytest.approx(1.0)  # disjoint
    assert match("drag(0, 0, 100, 0)", "drag(0, 0, 100, 0)", square) == pytest.approx(2.0)  # flat, identical
    assert match("drag(0, 0, 100, 0)", "drag(0, 0, 200, 0)", square) == pytest.approx(1.0)  # flat, different


def test_unusable_inputs() -> None:
    assert match(None, "click(1, 1)") == 0.0  # the executor could not ground the plan
    assert match("click(1, 1)", None) is None  # no label: this reward abstains
    assert match("click(1, 1)", "not an action") == 0.0
    with pytest.raises(ValueError, match="label"):
        ActionMatchReward()(["p"], ["c"], grounded=["done()"])
    with pytest.raises(ValueError, match="screen size"):
        ActionMatchReward()(["p"], ["c"], grounded=["click(1, 1)"], label=["click(1, 1)"])


def test_plain_trl_use_parses_completions_and_reads_screenshot_size() -> None:
    completions = [[{"role": "assistant", "content": "click(200, 100)"}], [{"role": "assistant", "content": "hm"}]]
    shot = Image.new("RGB", (1000, 500))
    rewards = ActionMatchReward()(["p", "p"], completions, label=["click(100, 50)"] * 2, screenshot=[shot, shot])
    assert rewards == pytest.approx([1.8, 0.0])


def test_char_bleu4_edge_cases() -> None:
    assert char_bleu4("", "") == 1.0
    assert char_bleu4("", "a") == 0.0
    assert char_bleu4("x", "x") == 1.0
    assert char_bleu4("total:=100", "total:=100") == 1.0
    assert 0.0 < char_bleu4("total:=17+25", "total:=17+25+58") < 1.0


class FakeEnv:
    """Stands in for a SciBoard env: a task passes its two checks when ``type("ok")`` then Return ran."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.typed: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.calls.append(("reset", seed, (options or {}).get("task")))
        self.typed = []
        return {"instruction": "say ok", "screenshot": None}, {}

    def step(self, action: str):
        self.calls.append(("step", action))
        self.typed.append(action)
        if action == "done()":
            checks = [{"check": "typed", "passed": 'type("ok")' in self.typed, "detail": ""},
                      {"check": "entered", "passed": 'key("Return")' in self.typed, "detail": ""}]
            return {}, 0.0, True, False, {"checks": checks, "success": all(c["passed"] for c in checks)}
        return {"instruction": "say ok"}, 0.0, False, False, {}

    def close(self) -> None:
        self.calls.append(("close",))


def test_env_outcome_replays_prefix_and_scores_fraction_of_checks() -> None:
    env = FakeEnv()
    lines: list[str] = []
    reward = EnvOutcomeReward(lambda app, size: env, printer=lines.append)
    columns = {"app": ["demo"] * 4, "task_id": ["demo/ok"] * 4, "seed": [3] * 4, "prefix": [['type("ok")']] * 4,
               "screen_size": SIZE * 4}
    rewards = reward(["p"] * 4, ["c"] * 4, grounded=['key("Return")', 'key("Escape")', None, 'key("Return")'],
                     **columns)
    assert rewards == [1.0, 0.5, 0.0, 1.0]
    assert env.calls[:4] == [("reset", 3, "demo/ok"), ("step", 'type("ok")'), ("step", 'key("Return")'),
                             ("step", "done()")]
    assert reward.evaluations == 2  # the repeated action came from the cache; the ungrounded one cost nothing
    assert len(lines) == 2 and "demo/ok after 1 steps" in lines[0] and "-> 1.00" in lines[0]
    reward.close()
    assert env.calls[-1] == ("close",)


def test_env_outcome_continues_with_a_policy() -> None:
    class TypeOk:
        def reset(self, instruction: str) -> None:
            self.instruction = instruction

        def act(self, observation: dict[str, Any]) -> str:
            return 'key("Return")'

    env = FakeEnv()
    reward = EnvOutcomeReward(lambda app, size: env, policy=TypeOk(), continue_steps=1, verbose=False)
    assert reward(["p"], ["c"], grounded=['type("ok")'], app=["demo"], task_id=["demo/ok"], seed=[None],
                  prefix=[[]], screen_size=SIZE) == [1.0]
    assert ("step", 'key("Return")') in env.calls and not reward.cache


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_env_outcome_on_kalgebra() -> None:
    reward = EnvOutcomeReward(verbose=True)
    try:
        columns = {"app": ["kalgebra"] * 3, "task_id": ["kalgebra/assign-sum"] * 3, "seed": [0] * 3,
                   "prefix": [['type("total:=17+25+58")']] * 3, "screen_size": [(1280, 800)] * 3}
        rewards = reward(["p"] * 3, ["c"] * 3, grounded=['key("Return")', 'key("Escape")', 'answer("100")'],
                         **columns)
    finally:
        reward.close()
    assert rewards == [1.0, 0.0, 0.0]
