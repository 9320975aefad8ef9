"""A VLM judge of GUI steps, with voting over k sampled verdicts.

:class:`Judge` asks a vision-language model (any :class:`~coda_agent.backends.Backend`)
whether an action was a correct next step of a task, shown the screen before (and, for
recorded steps, after) the action. Each step is judged ``samples`` times; ``voting`` decides:

- ``"majority"``: correct when more than half of the votes say correct;
- ``"unanimous"``: correct only when every vote says correct (fewer false approvals).

A reply without a readable verdict counts as a vote against. Wrong steps carry the judges'
most common correction (a valid action, when one was given). :meth:`Judge.judge_episode`
labels a recorded episode (first wrong step, corrections) and predicts its success;
``sciboard judge-eval`` measures those predictions against the env's evaluator.
:class:`JudgeReward` is the judge as a TRL-style reward function for proposed actions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from coda_agent import prompts
from coda_agent.backends.base import Backend, Message, Part
from coda_agent.data import Episode, StepSample, episode_samples, load_episode, save_labels
from coda_agent.images import DEFAULT_MAX_PIXELS, model_image
from coda_agent.rewards import grounded_actions
from sciboard_gym import actions

Voting = Literal["majority", "unanimous"]
_VERDICT = re.compile(r"Verdict\s*:\s*\**\s*(correct|incorrect|wrong)\b", re.IGNORECASE)
_CORRECTION = re.compile(r"Correction\s*:\s*(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class JudgeCase:
    """One step to judge: the task, the history before it, the screens, and the action."""

    instruction: str
    history: Sequence[str]
    screenshot: Image.Image
    action: str
    after: Image.Image | None = None


@dataclass(frozen=True)
class StepVerdict:
    """The judges' decision on one step: each vote (None = unreadable reply) and the correction."""

    correct: bool
    votes: tuple[bool | None, ...]
    correction: str | None
    replies: tuple[str, ...]


@dataclass(frozen=True)
class EpisodeVerdict:
    """A judged episode: per-step verdicts, the first wrong step (1-based) and the predicted success."""

    steps: tuple[StepVerdict, ...]
    first_wrong_step: int | None
    success: bool

    def labels(self, samples: Sequence[StepSample]) -> dict[int, str]:
        """Correct actions for the steps up to the first wrong one (its correction, when there is one)."""
        labels: dict[int, str] = {}
        for sample, verdict in zip(samples, self.steps):
            if verdict.correct:
                labels[sample.step] = sample.action
                continue
            if verdict.correction:
                labels[sample.step] = verdict.correction
            break
        return labels


def parse_verdict(reply: str) -> tuple[bool | None, str | None]:
    """(verdict, correction) of one judge reply; verdict None when the reply has none."""
    found = _VERDICT.search(reply)
    verdict = None if found is None else found.group(1).lower() == "correct"
    correction = None
    if (line := _CORRECTION.search(reply)) is not None:
        try:
            correction = actions.parse(line.group(1).strip().strip("`").strip()).to_string()
        except actions.ActionError:
            correction = None
    return verdict, correction


def vote(votes: Sequence[bool | None], voting: Voting) -> bool:
    """The voting rule: a majority of all votes, or every vote, must say correct."""
    approvals = sum(v is True for v in votes)
    return approvals == len(votes) > 0 if voting == "unanimous" else approvals * 2 > len(votes)


class Judge:
    """Labels GUI steps with a VLM and votes over ``samples`` replies per step (see the module docstring)."""

    def __init__(self, backend: Backend, *, samples: int = 3, voting: Voting = "majority", temperature: float = 0.7,
                 max_new_tokens: int = 160, max_pixels: int = DEFAULT_MAX_PIXELS, history_steps: int = 8):
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        if voting not in ("majority", "unanimous"):
            raise ValueError(f"voting must be 'majority' or 'unanimous', got {voting!r}")
        self.backend, self.samples, self.voting = backend, samples, voting
        self.temperature = temperature if samples > 1 else 0.0
        self.max_new_tokens, self.max_pixels, self.history_steps = max_new_tokens, max_pixels, history_steps

    def conversation(self, case: JudgeCase) -> list[Message]:
        """The judge's prompt for one step."""
        width, height = case.screenshot.size
        parts: list[Part] = [prompts.JUDGE_TURN.format(
            instruction=case.instruction, history=prompts.history_lines(list(case.history)[-self.history_steps:]),
            width=width, height=height, action=case.action), "Screen before the action:",
            model_image(case.screenshot, self.max_pixels)]
        if case.after is not None:
            parts += ["Screen after the action:", model_image(case.after, self.max_pixels)]
        parts.append(prompts.JUDGE_QUESTION)
        return [Message.of("system", prompts.JUDGE_SYSTEM.format(actions=actions.describe())),
                Message("user", tuple(parts))]

    def judge(self, cases: Sequence[JudgeCase]) -> list[StepVerdict]:
        """One verdict per case; all ``len(cases) * samples`` replies are asked for as one batch."""
        if not cases:
            return []
        conversations = [self.conversation(case) for case in cases for _ in range(self.samples)]
        replies = self.backend.generate(conversations, max_new_tokens=self.max_new_tokens,
                                        temperature=self.temperature)
        verdicts = []
        for start in range(0, len(replies), self.samples):
            group = replies[start:start + self.samples]
            parsed = [parse_verdict(reply) for reply in group]
            votes = tuple(verdict for verdict, _ in parsed)
            corrections = Counter(c for verdict, c in parsed if c is not None and verdict is not True)
            verdicts.append(StepVerdict(correct=vote(votes, self.voting), votes=votes,
                                        correction=corrections.most_common(1)[0][0] if corrections else None,
                                        replies=tuple(group)))
        return verdicts

    def judge_episode(self, episode: Episode | str | Path) -> EpisodeVerdict:
        """Judge every step of a recorded episode (each with the screen after it).

        The episode is predicted successful when every step is judged correct and it ended with
        ``done()`` or ``answer(...)``.
        """
        episode = episode if isinstance(episode, Episode) else load_episode(episode)
        samples = episode_samples(episode)
        cases = [JudgeCase(s.instruction, s.history, s.screenshot, s.action, after=episode.frame(s.step))
                 for s in samples]
        verdicts = self.judge(cases)
        wrong = [s.step for s, v in zip(samples, verdicts) if not v.correct]
        ended = bool(samples) and samples[-1].action.split("(")[0] in ("done", "answer")
        return EpisodeVerdict(tuple(verdicts), wrong[0] if wrong else None, ended and not wrong)

    def label_episode(self, folder: str | Path) -> EpisodeVerdict:
        """Judge a recorded episode and write its step labels (``labels.json``, source ``judge``)."""
        episode = load_episode(folder)
        verdict = self.judge_episode(episode)
        save_labels(folder, verdict.labels(episode_samples(episode)), source="judge")
        return verdict


class JudgeReward:
    """The judge as a step reward with TRL's reward-function signature: 1.0 when the voted verdict on
    the proposed action is correct, else 0.0.

    Called as ``reward(prompts=..., completions=..., grounded=..., instruction=..., history=...,
    screenshot=...)``: the columns of a step-sample dataset, one value per completion. The action
    judged is the executor's grounding (``grounded``), else the completion parsed as an action;
    one that is neither scores 0 without asking the judge.
    """

    __name__ = "judge"

    def __init__(self, judge: Judge | Backend):
        """``judge``: a :class:`Judge`, or a backend to judge with the default settings."""
        self.judge = judge if isinstance(judge, Judge) else Judge(judge)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *,
                 grounded: Sequence[str | None] | None = None, instruction: Sequence[str] | None = None,
                 history: Sequence[Sequence[str]] | None = None, screenshot: Sequence[Image.Image] | None = None,
                 **columns: Any) -> list[float | None]:
        if instruction is None or screenshot is None:
            raise ValueError("JudgeReward needs the columns 'instruction' and 'screenshot' (and 'history')")
        proposed = grounded_actions(completions, grounded)
        asked = [i for i, action in enumerate(proposed) if action is not None]
        cases = [JudgeCase(instruction[i], list(history[i]) if history is not None else [], screenshot[i],
                           str(proposed[i])) for i in asked]
        rewards: list[float | None] = [0.0] * len(proposed)
        for index, verdict in zip(asked, self.judge.judge(cases)):
            rewards[index] = float(verdict.correct)
        return rewards


@dataclass(frozen=True)
class JudgeScores:
    """How a judge's success predictions compare with the env's ground truth (success = positive)."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @classmethod
    def of(cls, predicted: Sequence[bool], truth: Sequence[bool]) -> JudgeScores:
        pairs = list(zip(predicted, truth, strict=True))
        return cls(sum(p and t for p, t in pairs), sum(p and not t for p, t in pairs),
                   sum(t and not p for p, t in pairs), sum(not p and not t for p, t in pairs))

    @property
    def precision(self) -> float | None:
        """Share of episodes judged successful that were (None when none was judged successful)."""
        judged = self.true_positives + self.false_positives
        return self.true_positives / judged if judged else None

    @property
    def recall(self) -> float | None:
        """Share of successful episodes the judge recognised (None when none was successful)."""
        real = self.true_positives + self.false_negatives
        return self.true_positives / real if real else None

    def summary(self) -> str:
        def percent(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f}"

        return (f"precision {percent(self.precision)} recall {percent(self.recall)} "
                f"(TP {self.true_positives}, FP {self.false_positives}, FN {self.false_negatives}, "
                f"TN {self.true_negatives})")
