"""``sciboard compare``: every (agent, task, repeat) once, resumable, then tables, a plot and a viewer.

Outputs in the run folder: ``episodes.csv`` (one row per episode), ``summary.csv`` and
``summary.md`` (:mod:`baselines.metrics`), ``plot.png``, ``viewer.html`` and every episode's
trajectory under ``episodes/<agent>/<app>/<task>/r<repeat>/``. Running the same command again
continues an interrupted run: finished episodes are kept, unfinished ones run again.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from baselines.episodes import EPISODE_COLUMNS, EpisodeJob, EpisodeRecord, load_results
from baselines.metrics import SUMMARY_COLUMNS, EpisodeOutcome, Score, markdown_table, score_row, summarise
from baselines.pools import EpisodePool, InlinePool, ProcessPool, RayPool
from baselines.specs import AgentSpec, AgentSpecError, resolve
from sciboard_gym.tasks import Task, load_app_tasks
from sciboard_gym.trajectory import atomic_write_bytes, atomic_write_json

RUN_FILE = "run.json"


class CompareError(ValueError):
    """A comparison that cannot start (bad agents, no tasks, a folder holding another run)."""


@dataclass(frozen=True)
class EnvOptions:
    """How each worker makes its envs (picklable: worker processes rebuild them)."""

    provider: str = "local"
    max_steps: int | None = None
    screen_size: tuple[int, int] = (1920, 1080)

    def __call__(self, app: str) -> Any:
        import gymnasium as gym

        import sciboard_gym  # noqa: F401  (registers the envs)
        from sciboard_gym.apps import APPS

        return gym.make(APPS[app][0], provider=self.provider, max_steps=self.max_steps,
                        screen_size=self.screen_size)


@dataclass
class CompareConfig:
    """One comparison: which agents on which tasks, how often, where."""

    agents: Sequence[str]
    out: Path
    apps: Sequence[str] | None = None
    k: int = 1
    split: str | None = None
    tasks: str | None = None
    max_tasks: int | None = None
    envs: int = 1
    ray: str | None = None
    seed: int = 0
    save_frames: bool = True
    retry_errors: bool = False
    env: Callable[[str], Any] = field(default_factory=EnvOptions)


@dataclass
class CompareResult:
    scores: list[Score]
    records: list[EpisodeRecord]
    outputs: dict[str, Path]


def resolve_agents(specs: Sequence[str]) -> dict[str, AgentSpec]:
    """Resolve every spec up front (clear errors before any desktop starts); labels must differ."""
    if not specs:
        raise CompareError("name at least one agent")
    resolved: dict[str, AgentSpec] = {}
    for text in specs:
        try:
            spec = resolve(text)
        except AgentSpecError as err:
            raise CompareError(str(err)) from err
        if spec.name in resolved:
            raise CompareError(f"two agents are both called {spec.name!r}; name them with LABEL=SPEC")
        resolved[spec.name] = spec
    return resolved


def select_tasks(apps: Sequence[str], split: str | None = None, pattern: str | None = None,
                 max_tasks: int | None = None) -> list[Task]:
    """Each app's tasks in id order, filtered by split and glob (on the task id), at most ``max_tasks`` per app."""
    from sciboard_gym.env import task_split

    chosen: list[Task] = []
    for app in apps:
        tasks = [t for t in sorted(load_app_tasks(app), key=lambda t: t.id)
                 if (split is None or task_split(t.id) == split)
                 and (pattern is None or fnmatch.fnmatch(t.id, pattern) or fnmatch.fnmatch(t.id.split("/", 1)[1],
                                                                                           pattern))]
        chosen += tasks[:max_tasks] if max_tasks else tasks
    return chosen


def installed_apps() -> list[str]:
    """Apps with tasks that the (sandboxed) local desktop can run here: those in the built desktop tree."""
    from sciboard_gym.providers.local import sandboxed_apps
    from sciboard_gym.tasks import task_apps

    runnable = set(sandboxed_apps())
    return [app for app in sorted(task_apps()) if app in runnable]


def plan_jobs(agents: Sequence[str], tasks: Sequence[Task], k: int, seed: int = 0) -> list[EpisodeJob]:
    """Every (agent, task, repeat) once, grouped by app; repeat r of a task has the same seed for every agent."""
    if k < 1:
        raise CompareError(f"k must be at least 1, got {k}")
    return [EpisodeJob(agent, task.app, task.id, repeat, seed + repeat)
            for app in dict.fromkeys(t.app for t in tasks)
            for repeat in range(k)
            for task in tasks if task.app == app
            for agent in agents]


def _check_run_file(out: Path, agents: dict[str, AgentSpec]) -> None:
    """Record which spec each label names; refuse to mix another spec's results under the same label."""
    path = out / RUN_FILE
    known: dict[str, str] = {}
    if path.exists():
        try:
            known = json.loads(path.read_text()).get("agents", {})
        except (OSError, ValueError) as err:
            raise CompareError(f"{path} is unreadable ({err}); use another --out folder") from err
    for name, spec in agents.items():
        if name in known and known[name] != spec.source:
            raise CompareError(f"{out} already holds results of agent {name!r} from {known[name]!r}, not "
                               f"{spec.source!r}; use another --out folder or another label (LABEL=SPEC)")
        known[name] = spec.source
    atomic_write_json(path, {"agents": known})


def _csv_text(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def write_episodes_csv(out: Path, records: Sequence[EpisodeRecord]) -> Path:
    path = out / "episodes.csv"
    atomic_write_bytes(path, _csv_text(EPISODE_COLUMNS, [asdict(r) for r in records]))
    return path


def write_outputs(out: Path, records: Sequence[EpisodeRecord], k: int) -> CompareResult:
    """episodes.csv, summary.csv, summary.md, plot.png and viewer.html from finished episodes."""
    from baselines.plot import plot_scores
    from baselines.viewer import build_viewer

    scores = summarise([EpisodeOutcome(r.agent, r.app, r.task, r.success, r.steps, r.seconds, r.error)
                        for r in records], k)
    outputs = {"episodes": write_episodes_csv(out, records)}
    outputs["summary_csv"] = out / "summary.csv"
    atomic_write_bytes(outputs["summary_csv"], _csv_text(SUMMARY_COLUMNS, [score_row(s) for s in scores]))
    outputs["summary_md"] = out / "summary.md"
    atomic_write_bytes(outputs["summary_md"], markdown_table(scores).encode())
    outputs["plot"] = plot_scores(scores, out / "plot.png")
    outputs["viewer"] = build_viewer(out)
    return CompareResult(scores, list(records), outputs)


def run_compare(config: CompareConfig, pool: EpisodePool | None = None, progress: bool = True,
                tasks: Sequence[Task] | None = None,
                on_record: Callable[[EpisodeRecord], None] | None = None) -> CompareResult:
    """Run what is missing of ``config`` (resuming from ``config.out``) and write every output."""
    from sciboard_gym.apps import APPS

    agents = resolve_agents(config.agents)
    if config.apps:
        apps = list(config.apps)
    else:  # a VM image carries its own apps: only the local desktop depends on this host's
        from sciboard_gym.tasks import task_apps

        apps = installed_apps() if getattr(config.env, "provider", "local") == "local" else task_apps()
    unknown = sorted(set(apps) - set(APPS))
    if unknown:
        raise CompareError(f"unknown apps {unknown}; known: {', '.join(sorted(APPS))}")
    if tasks is None:
        tasks = select_tasks(apps, config.split, config.tasks, config.max_tasks)
    if not tasks:
        raise CompareError("no tasks match the chosen apps, split and --tasks pattern")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_run_file(out, agents)
    jobs = plan_jobs(list(agents), tasks, config.k, config.seed)
    planned_pairs = {(job.agent, job.task) for job in jobs}
    finished = {r.key: r for r in load_results(out)
                if (r.agent, r.task) in planned_pairs and not (config.retry_errors and r.error is not None)}
    pending = [job for job in jobs if job.key not in finished]
    if pool is None:
        pool = _default_pool(config, agents, out)
    solved: Counter[str] = Counter(r.agent for r in finished.values() if r.success)
    ran: Counter[str] = Counter(r.agent for r in finished.values())
    with tqdm(total=len(jobs), initial=len(jobs) - len(pending), desc="episodes", unit="ep",
              disable=not progress, dynamic_ncols=True) as bar:
        bar.set_postfix_str(_tally(agents, solved, ran))
        for record in pool.run(pending):
            finished[record.key] = record
            solved[record.agent] += record.success
            ran[record.agent] += 1
            write_episodes_csv(out, _ordered(finished.values(), agents))
            bar.update(1)
            bar.set_postfix_str(_tally(agents, solved, ran))
            if on_record is not None:
                on_record(record)
    return write_outputs(out, _ordered(finished.values(), agents), config.k)


def _default_pool(config: CompareConfig, agents: dict[str, AgentSpec], out: Path) -> EpisodePool:
    """A Ray pool with ``ray`` (``envs`` actors, or every declared desktop), else local workers."""
    if config.ray is not None:
        return RayPool(agents, config.env, out, address=config.ray or None,
                       size=config.envs if config.envs > 1 else None, save_frames=config.save_frames)
    if config.envs <= 1:
        return InlinePool(agents, config.env, out, config.save_frames)
    return ProcessPool(config.envs, agents, config.env, out, config.save_frames)


def _ordered(records: Any, agents: dict[str, AgentSpec]) -> list[EpisodeRecord]:
    order = {name: i for i, name in enumerate(agents)}
    return sorted(records, key=lambda r: (order.get(r.agent, len(order)), r.app, r.task, r.repeat))


def _tally(agents: dict[str, AgentSpec], solved: Counter[str], ran: Counter[str]) -> str:
    """The live success count per agent: ``oracle 4/4  random 0/3``."""
    return "  ".join(f"{name} {solved[name]}/{ran[name]}" for name in agents)
