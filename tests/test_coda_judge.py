"""The VLM judge: voting, corrections, the TRL-style reward and ``sciboard judge-eval``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from coda_agent.backends.base import Conversation
from coda_agent.judge import Judge, JudgeCase, JudgeReward, JudgeScores, parse_verdict, vote


class FakeBackend:
    """Replies from a script, in order; records what it was asked."""

    def __init__(self, replies: Sequence[str]):
        self.replies, self.asked = list(replies), []

    def generate(self, conversations: Sequence[Conversation], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]:
        self.asked.append((len(conversations), temperature))
        out, self.replies = self.replies[:len(conversations)], self.replies[len(conversations):]
        return out


SCREEN = Image.new("RGB", (64, 48), "white")


def case(action: str = "click(10, 10)") -> JudgeCase:
    return JudgeCase("plot sin(x)", ["Thought: - | Action: click(1, 1)"], SCREEN, action, after=SCREEN)


def test_verdicts_parse_and_vote() -> None:
    assert parse_verdict("Verdict: correct") == (True, None)
    assert parse_verdict('Verdict: **wrong**\nCorrection: type("x:=1")') == (False, 'type("x:=1")')
    assert parse_verdict("Verdict: wrong\nCorrection: teleport()") == (False, None)
    assert parse_verdict("no idea") == (None, None)
    assert vote([True, True, False], "majority") and not vote([True, True, False], "unanimous")
    assert not vote([True, None], "majority") and vote([True, True], "unanimous") and not vote([], "majority")


def test_judge_votes_over_samples_in_one_batch() -> None:
    backend = FakeBackend(["Verdict: correct", "Verdict: correct", "gibberish",
                           "Verdict: wrong\nCorrection: key(\"Return\")", "Verdict: wrong\nCorrection: key(\"Return\")",
                           "Verdict: correct"])
    majority = Judge(backend, samples=3, voting="majority").judge([case(), case("done()")])
    assert backend.asked == [(6, 0.7)]
    assert [v.correct for v in majority] == [True, False]
    assert majority[0].votes == (True, True, None) and majority[1].correction == 'key("Return")'
    unanimous = Judge(FakeBackend(["Verdict: correct", "Verdict: correct", "gibberish"]), samples=3,
                      voting="unanimous").judge([case()])
    assert [v.correct for v in unanimous] == [False]
    prompt = Judge(backend, samples=1).conversation(case())
    assert sum(len(m.images()) for m in prompt) == 2 and "click(10, 10)" in "".join(
        p for p in prompt[1].parts if isinstance(p, str))
    with pytest.raises(ValueError, match="voting"):
        Judge(backend, voting="plurality")  # type: ignore[arg-type]


def test_judge_reward_has_trl_signature() -> None:
    backend = FakeBackend(["Verdict: correct", "Verdict: wrong"])
    reward = JudgeReward(Judge(backend, samples=1))
    rewards = reward(prompts=["p"] * 3, completions=["a", "b", "c"], grounded=["click(1, 2)", None, "done()"],
                     instruction=["t"] * 3, history=[[], [], []], screenshot=[SCREEN] * 3, app=["kalgebra"] * 3)
    assert rewards == [1.0, 0.0, 0.0] and backend.asked == [(2, 0.0)]
    parsed = JudgeReward(Judge(FakeBackend(["Verdict: correct"]), samples=1))(
        prompts=["p", "p"], completions=[[{"role": "assistant", "content": "click(3, 4)"}], "not an action"],
        instruction=["t", "t"], screenshot=[SCREEN, SCREEN])
    assert parsed == [1.0, 0.0]
    with pytest.raises(ValueError, match="instruction"):
        reward(prompts=["p"], completions=["a"])


def test_scores_against_ground_truth() -> None:
    scores = JudgeScores.of([True, True, False, False, True], [True, False, True, False, True])
    assert (scores.precision, scores.recall) == (2 / 3, 2 / 3)
    assert JudgeScores.of([False], [True]).precision is None
    assert "precision n/a recall 0.0" in JudgeScores.of([False], [True]).summary()


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_judge_eval_prints_precision_and_recall_of_a_tiny_judge(recorded_episodes: Path, capsys, tmp_path) -> None:
    import torch

    from coda_agent.backends import TransformersBackend
    from coda_agent.data import find_episodes, load_episode
    from coda_agent.tiny import cached_tiny_qwen25vl
    from sciboard_gym.cli import main

    torch.set_num_threads(1)
    model = str(cached_tiny_qwen25vl())
    assert main(["judge-eval", str(recorded_episodes), "--judge", model, "--samples", "2", "--max-new-tokens", "8",
                 "--max-pixels", str(112 * 112 * 4), "--json"]) == 0
    out = capsys.readouterr().out
    scores = json.loads(out.strip().splitlines()[-1])
    assert "precision" in out and "recall" in out and scores["episodes"] == 5
    assert scores["true_positives"] + scores["false_negatives"] == 3  # the three oracle runs succeeded
    folder = Path(shutil.copytree(find_episodes(recorded_episodes)[0], tmp_path / "episode"))  # others share them
    judge = Judge(TransformersBackend(model, dtype="float32"), samples=1, max_new_tokens=8, max_pixels=112 * 112 * 4)
    verdict = judge.label_episode(folder)
    assert load_episode(folder).label_source == "judge" and len(verdict.steps) == len(load_episode(folder).steps)
