"""Avg@k and Pass@k as CODA reports them, per agent and app, with overall means.

- Avg@k: successes / runs (= successes / (tasks x k) when every task ran k times).
- Pass@k: the share of tasks solved at least once in k runs. With n > k runs of a task the
  unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``, is used; with n <= k
  it is whether any of the n runs succeeded.
- Overall: the unweighted mean over apps (CODA's headline figure) and the task-weighted mean
  (every task counts once, whichever app it belongs to).
- Standard errors treat tasks as the unit: the spread of per-task success rates over
  ``sqrt(tasks)``; for one task, the binomial error of its runs. The unweighted overall's error
  combines the apps' errors (``sqrt(sum se^2) / apps``).

Figures are fractions in 0-1; :func:`percent` formats them as CODA's tables do (48.39).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OVERALL_APPS = "overall (mean over apps)"
OVERALL_TASKS = "overall (task-weighted)"


@dataclass(frozen=True)
class EpisodeOutcome:
    """One finished episode as the metrics see it."""

    agent: str
    app: str
    task: str
    success: bool
    steps: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Score:
    """One row of the summary: an agent on one app, or one of its overall rows."""

    agent: str
    app: str
    tasks: int
    runs: int
    k: int
    avg_at_k: float
    avg_at_k_se: float
    pass_at_k: float
    n_err: int
    mean_steps: float
    mean_seconds: float


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k runs succeeds, from c successes in n runs."""
    if n <= 0 or k <= 0:
        raise ValueError(f"pass@k needs n > 0 and k > 0, got n={n}, k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"successes c={c} must lie in 0..n={n}")
    if n <= k:
        return 1.0 if c > 0 else 0.0
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _rate_se(rates: Sequence[float], runs: int) -> float:
    """Standard error of the mean success rate, tasks as the unit (binomial for a single task)."""
    if len(rates) >= 2:
        return statistics.stdev(rates) / math.sqrt(len(rates))
    if len(rates) == 1 and runs > 1:
        p = rates[0]
        return math.sqrt(p * (1 - p) / runs)
    return 0.0


@dataclass(frozen=True)
class _TaskRuns:
    runs: int
    successes: int


def _score(agent: str, app: str, episodes: Sequence[EpisodeOutcome], k: int) -> Score:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for episode in episodes:
        per_task[episode.task].append(episode.success)
    tasks = {task: _TaskRuns(len(runs), sum(runs)) for task, runs in per_task.items()}
    rates = [t.successes / t.runs for t in tasks.values()]
    runs = len(episodes)
    return Score(
        agent=agent, app=app, tasks=len(tasks), runs=runs, k=k,
        avg_at_k=sum(e.success for e in episodes) / runs,
        avg_at_k_se=_rate_se(rates, runs),
        pass_at_k=statistics.fmean(pass_at_k(t.runs, t.successes, k) for t in tasks.values()),
        n_err=sum(e.error is not None for e in episodes),
        mean_steps=statistics.fmean(e.steps for e in episodes),
        mean_seconds=statistics.fmean(e.seconds for e in episodes),
    )


def summarise(episodes: Iterable[EpisodeOutcome], k: int) -> list[Score]:
    """Per (agent, app) scores, then (with several apps) each agent's two overall rows; first-seen order."""
    by_agent: dict[str, dict[str, list[EpisodeOutcome]]] = defaultdict(lambda: defaultdict(list))
    for episode in episodes:
        by_agent[episode.agent][episode.app].append(episode)
    scores: list[Score] = []
    for agent, apps in by_agent.items():
        per_app = [_score(agent, app, runs, k) for app, runs in apps.items()]
        scores += per_app
        if len(per_app) > 1:
            scores.append(_mean_over_apps(agent, per_app, k))
            scores.append(_score(agent, OVERALL_TASKS, [e for runs in apps.values() for e in runs], k))
    return scores


def _mean_over_apps(agent: str, per_app: Sequence[Score], k: int) -> Score:
    n = len(per_app)
    return Score(
        agent=agent, app=OVERALL_APPS, tasks=sum(s.tasks for s in per_app), runs=sum(s.runs for s in per_app), k=k,
        avg_at_k=statistics.fmean(s.avg_at_k for s in per_app),
        avg_at_k_se=math.sqrt(sum(s.avg_at_k_se ** 2 for s in per_app)) / n,
        pass_at_k=statistics.fmean(s.pass_at_k for s in per_app),
        n_err=sum(s.n_err for s in per_app),
        mean_steps=sum(s.mean_steps * s.runs for s in per_app) / sum(s.runs for s in per_app),
        mean_seconds=sum(s.mean_seconds * s.runs for s in per_app) / sum(s.runs for s in per_app),
    )


def percent(value: float) -> float:
    """A fraction as a percentage rounded to two decimals (0.48387 -> 48.39)."""
    return round(100.0 * value, 2)


SUMMARY_COLUMNS = ("agent", "app", "tasks", "runs", "k", "avg_at_k", "avg_at_k_se", "pass_at_k", "n_err",
                   "mean_steps", "mean_seconds")


def score_row(score: Score) -> dict[str, object]:
    """A summary.csv row: rates in percent, means rounded."""
    return {"agent": score.agent, "app": score.app, "tasks": score.tasks, "runs": score.runs, "k": score.k,
            "avg_at_k": percent(score.avg_at_k), "avg_at_k_se": percent(score.avg_at_k_se),
            "pass_at_k": percent(score.pass_at_k), "n_err": score.n_err,
            "mean_steps": round(score.mean_steps, 2), "mean_seconds": round(score.mean_seconds, 2)}


def markdown_table(scores: Sequence[Score]) -> str:
    """The summary as a Markdown table (rates in percent, ± standard error)."""
    k = scores[0].k if scores else 0
    lines = [f"| agent | app | tasks | runs | Avg@{k} (± se) | Pass@{k} | n_err | mean steps | mean s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in scores:
        app = f"**{s.app}**" if s.app in (OVERALL_APPS, OVERALL_TASKS) else s.app
        lines.append(f"| {s.agent} | {app} | {s.tasks} | {s.runs} | {percent(s.avg_at_k):.2f} ± "
                     f"{percent(s.avg_at_k_se):.2f} | {percent(s.pass_at_k):.2f} | {s.n_err} | "
                     f"{s.mean_steps:.1f} | {s.mean_seconds:.1f} |")
    return "\n".join(lines) + "\n"
