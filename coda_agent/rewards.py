"""Step rewards for decoupled GRPO, as plain callables with TRL's reward-function signature.

Each reward is called as ``reward(prompts=..., completions=..., **columns)`` and returns one
float (or ``None`` when it cannot judge a sample) per completion. ``columns`` are the
dataset's columns, one value per completion, plus ``grounded``: the GUI action the frozen
executor made of each completion (``None`` when it could not ground it). Without
``grounded`` (plain TRL use, where the policy writes actions itself) the completion text
is parsed as an action.

- :class:`ActionMatchReward`: CODA's reward, comparing the action with the labelled correct
  action of the state (``label`` column).
- :class:`EnvOutcomeReward`: ground truth, by executing the action in the real app from the
  recorded state and running the task's evaluator.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sciboard_gym import actions

_POINT_TYPES = (actions.Click, actions.DoubleClick, actions.RightClick, actions.Move)


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversation whose last message is the reply."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], Mapping) else ""
        if isinstance(content, str):
            return content
        return "".join(part.get("text") or "" for part in content if isinstance(part, Mapping))
    return ""


def char_bleu4(candidate: str, reference: str) -> float:
    """Character-level BLEU-4 of ``candidate`` against one ``reference``.

    Clipped n-gram precisions for n = 1..N with N = min(4, both lengths), their geometric
    mean (0 when one of them is 0), times the brevity penalty exp(1 - r/c) when the
    candidate is shorter. Identical strings score 1.0; an empty candidate scores 0.0
    (1.0 if the reference is empty too).
    """
    if not candidate or not reference:
        return float(candidate == reference)
    order = min(4, len(candidate), len(reference))
    log_sum = 0.0
    for n in range(1, order + 1):
        cand = Counter(candidate[i:i + n] for i in range(len(candidate) - n + 1))
        ref = Counter(reference[i:i + n] for i in range(len(reference) - n + 1))
        matches = sum(min(count, ref[gram]) for gram, count in cand.items())
        if matches == 0:
            return 0.0
        log_sum += math.log(matches / sum(cand.values()))
    brevity = 1.0 if len(candidate) >= len(reference) else math.exp(1 - len(reference) / len(candidate))
    return brevity * math.exp(log_sum / order)


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two boxes (x1, y1, x2, y2), corners in any order; identical degenerate boxes score 1."""
    ax1, ax2, ay1, ay2 = min(a[0], a[2]), max(a[0], a[2]), min(a[1], a[3]), max(a[1], a[3])
    bx1, bx2, by1, by2 = min(b[0], b[2]), max(b[0], b[2]), min(b[1], b[3]), max(b[1], b[3])
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if union <= 0:
        return float((ax1, ay1, ax2, ay2) == (bx1, by1, bx2, by2))
    return inter / union


def action_match(action: actions.Action, label: actions.Action, screen_size: tuple[int, int]) -> float:
    """CODA's step reward: 1 for the same action type, plus a distance term in [0, 1] for that type.

    Points (click, double_click, right_click, move): 1 - L1 distance of the points in screen
    coordinates normalised to [0, 1] (floored at 0). Drags: IoU of the boxes the two drags span.
    type / key / answer: character BLEU-4 of the text (key chords compared lower-cased).
    Scroll: character BLEU-4 of the direction words ("up" / "down"). Actions without
    arguments to compare (wait, done, fail) get the full distance term. Different types: 0.
    """
    if type(action) is not type(label):
        return 0.0
    width, height = screen_size
    if isinstance(action, _POINT_TYPES) and isinstance(label, _POINT_TYPES):
        distance = abs(action.x - label.x) / width + abs(action.y - label.y) / height
        return 1.0 + max(0.0, 1.0 - distance)
    if isinstance(action, actions.Drag) and isinstance(label, actions.Drag):
        return 1.0 + _box_iou((action.x1 / width, action.y1 / height, action.x2 / width, action.y2 / height),
                              (label.x1 / width, label.y1 / height, label.x2 / width, label.y2 / height))
    if isinstance(action, (actions.Type, actions.Answer)) and isinstance(label, (actions.Type, actions.Answer)):
        return 1.0 + char_bleu4(action.text, label.text)
    if isinstance(action, actions.Key) and isinstance(label, actions.Key):
        return 1.0 + char_bleu4(action.keys.lower(), label.keys.lower())
    if isinstance(action, actions.Scroll) and isinstance(label, actions.Scroll):
        return 1.0 + char_bleu4(_direction(action.dy), _direction(label.dy))
    return 2.0


def _direction(dy: int) -> str:
    return "down" if dy > 0 else "up" if dy < 0 else "none"


def _screen_size(index: int, columns: Mapping[str, Any]) -> tuple[int, int]:
    if columns.get("screen_size") is not None:
        width, height = columns["screen_size"][index]
        return int(width), int(height)
    if columns.get("screenshot") is not None:
        width, height = columns["screenshot"][index].size
        return int(width), int(height)
    raise ValueError("the reward needs the screen size: give a 'screen_size' or a 'screenshot' column")


def grounded_actions(completions: Sequence[Any], grounded: Sequence[str | None] | None) -> list[str | None]:
    """The action of each completion: the executor's grounding, else the completion parsed as an action."""
    if grounded is not None:
        return list(grounded)
    found: list[str | None] = []
    for completion in completions:
        try:
            found.append(actions.parse(completion_text(completion).strip()).to_string())
        except actions.ActionError:
            found.append(None)
    return found


class ActionMatchReward:
    """CODA's step reward against the labelled correct action (``label`` column; max 2.0).

    Samples without a label get ``None`` (TRL then ignores this reward for them); an action
    the executor could not ground, or a label that does not parse, scores 0.
    """

    __name__ = "action_match"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *,
                 grounded: Sequence[str | None] | None = None, label: Sequence[str | None] | None = None,
                 **columns: Any) -> list[float | None]:
        if label is None:
            raise ValueError("ActionMatchReward needs a 'label' column (the correct action of each state)")
        rewards: list[float | None] = []
        for index, action_text in enumerate(grounded_actions(completions, grounded)):
            if label[index] is None:
                rewards.append(None)
                continue
            if action_text is None:
                rewards.append(0.0)
                continue
            try:
                action, wanted = actions.parse(action_text), actions.parse(str(label[index]))
            except actions.ActionError:
                rewards.append(0.0)
                continue
            rewards.append(action_match(action, wanted, _screen_size(index, columns)))
        return rewards


#: ``env_factory(app, screen_size)`` -> a SciBoard env (Gymnasium API).
EnvFactory = Callable[[str, tuple[int, int]], Any]


def make_local_env(app: str, screen_size: tuple[int, int], provider: str = "local") -> Any:
    """The default env factory: the app's registered env on a desktop of ``screen_size``."""
    import gymnasium as gym

    import sciboard_gym
    from sciboard_gym.apps import APPS

    del sciboard_gym  # imported for the env registration
    return gym.make(APPS[app][0], provider=provider, screen_size=screen_size)


class EnvOutcomeReward:
    """Ground truth from the real app: the fraction of the task's checks that hold after the action.

    For each completion: reset the task with the recorded seed, replay the recorded action
    prefix (columns ``app``, ``task_id``, ``seed``, ``prefix``), execute the grounded action,
    optionally let ``policy`` (an :class:`~sciboard_gym.agent.Agent`) continue for up to
    ``continue_steps`` steps, then end the episode (``done()`` unless the action ended it)
    and score the evaluator's checks: passed / total (1.0 only when all hold). An action the
    executor could not ground scores 0 without touching the env; a broken desktop gives
    ``None``. Without a continuation policy the outcome of (state, action) is cached, so a
    group that repeats an action pays for it once (``cache=False`` turns this off). The cost
    of every evaluated plan is printed (``verbose``) and logged as ``env_reward/seconds``.
    """

    __name__ = "env_outcome"

    def __init__(self, env_factory: EnvFactory = make_local_env, *, policy: Any = None, continue_steps: int = 0,
                 cache: bool = True, verbose: bool = True, printer: Callable[[str], None] = print):
        self.env_factory, self.policy, self.continue_steps = env_factory, policy, continue_steps
        self.cache_enabled, self.verbose, self.printer = cache and continue_steps == 0, verbose, printer
        self.envs: dict[tuple[str, tuple[int, int]], Any] = {}
        self.cache: dict[tuple[Any, ...], float | None] = {}
        self.seconds = 0.0
        self.evaluations = 0

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *,
                 grounded: Sequence[str | None] | None = None, app: Sequence[str] | None = None,
                 task_id: Sequence[str] | None = None, seed: Sequence[int | None] | None = None,
                 prefix: Sequence[Sequence[str]] | None = None, log_metric: Callable[[str, float], None] | None = None,
                 **columns: Any) -> list[float | None]:
        if app is None or task_id is None or prefix is None:
            raise ValueError("EnvOutcomeReward needs the columns 'app', 'task_id', 'seed' and 'prefix'")
        rewards: list[float | None] = []
        spent = 0.0
        for index, action in enumerate(grounded_actions(completions, grounded)):
            if action is None:
                rewards.append(0.0)
                continue
            key = (task_id[index], None if seed is None else seed[index], tuple(prefix[index]), action)
            if self.cache_enabled and key in self.cache:
                rewards.append(self.cache[key])
                continue
            started = time.monotonic()
            score = self.score(app[index], _screen_size(index, columns), task_id[index],
                               None if seed is None else seed[index], list(prefix[index]), action)
            spent += time.monotonic() - started
            if self.cache_enabled:
                self.cache[key] = score
            rewards.append(score)
        if log_metric is not None:
            log_metric("env_reward/seconds", spent)
        return rewards

    def score(self, app: str, screen_size: tuple[int, int], task_id: str, seed: int | None, prefix: list[str],
              action: str) -> float | None:
        """Branch from the state after ``prefix``, execute ``action``, return the fraction of checks that hold."""
        env = self._env(app, screen_size)
        times = {"branch": 0.0, "action": 0.0, "evaluate": 0.0}
        started = time.monotonic()
        obs, info = env.reset(seed=seed, options={"task": task_id})
        over = False
        for step in prefix:
            obs, _, terminated, truncated, info = env.step(step)
            if terminated or truncated:
                over = True
                break
        times["branch"] = time.monotonic() - started
        if over:
            self._report(task_id, len(prefix), action, None, times, f"the recorded prefix ended the episode: {info}")
            return None
        mark = time.monotonic()
        obs, _, terminated, truncated, info = env.step(action)
        if self.policy is not None and self.continue_steps > 0 and not (terminated or truncated):
            self.policy.reset(obs["instruction"])
            for _ in range(self.continue_steps):
                obs, _, terminated, truncated, info = env.step(self.policy.act(obs))
                if terminated or truncated:
                    break
        times["action"] = time.monotonic() - mark
        mark = time.monotonic()
        if not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step("done()")
        times["evaluate"] = time.monotonic() - mark
        self.evaluations += 1
        if info.get("error"):
            self._report(task_id, len(prefix), action, None, times, f"desktop error: {info['error']}")
            return None
        checks = info.get("checks") or []
        score = sum(bool(c["passed"]) for c in checks) / len(checks) if checks else 0.0
        self._report(task_id, len(prefix), action, score, times)
        return score

    def _env(self, app: str, screen_size: tuple[int, int]) -> Any:
        key = (app, screen_size)
        if key not in self.envs:
            self.envs[key] = self.env_factory(app, screen_size)
        return self.envs[key]

    def _report(self, task_id: str, done_steps: int, action: str, score: float | None, times: dict[str, float],
                problem: str = "") -> None:
        total = sum(times.values())
        self.seconds += total
        if self.verbose:
            verdict = "n/a" if score is None else f"{score:.2f}"
            parts = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in times.items())
            self.printer(f"[env-reward] {task_id} after {done_steps} steps: {action} -> {verdict} "
                         f"({total:.2f} s: {parts}){' ' + problem if problem else ''}")

    def close(self) -> None:
        """Close every env this reward opened."""
        for env in self.envs.values():
            env.close()
        self.envs.clear()
