"""Comparison episodes: the job (agent, task, repeat), its record, and the worker that runs jobs.

Each episode lives in its own folder under the run's ``episodes/``: the trajectory
(``episode.json``, ``steps.jsonl``, frames) and, once the episode is over, ``result.json``.
An episode counts as finished exactly when its ``result.json`` exists; anything else in a
folder is left from an interrupted run and is cleared before the episode runs again.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from baselines.specs import AgentSpec, EpisodeContext
from sciboard_gym.episode import run_episode
from sciboard_gym.tasks import get_task
from sciboard_gym.trajectory import TrajectoryRecorder, atomic_write_json

RESULT_FILE = "result.json"
EPISODES_DIR = "episodes"


def safe_name(text: str) -> str:
    """A file-name-safe form of an agent label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "agent"


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: ``agent`` (a spec label) on ``task``, repeat number ``repeat``."""

    agent: str
    app: str
    task: str
    repeat: int
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.agent, self.task, self.repeat)

    @property
    def folder(self) -> str:
        """The episode's folder, relative to the run's output folder."""
        return f"{EPISODES_DIR}/{safe_name(self.agent)}/{self.task}/r{self.repeat}"


@dataclass(frozen=True)
class EpisodeRecord:
    """One row of ``episodes.csv``."""

    agent: str
    app: str
    task: str
    repeat: int
    success: bool
    reward: float
    steps: int
    seconds: float
    error: str | None
    folder: str

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.agent, self.task, self.repeat)


EPISODE_COLUMNS = tuple(f.name for f in fields(EpisodeRecord))


def failed_record(job: EpisodeJob, error: str, seconds: float = 0.0, steps: int = 0) -> EpisodeRecord:
    """The record of an episode that could not run to its end: a failure with its reason."""
    return EpisodeRecord(job.agent, job.app, job.task, job.repeat, False, 0.0, steps, round(seconds, 3), error,
                         job.folder)


def write_result(out: Path, record: EpisodeRecord) -> None:
    """Mark the episode finished (atomically): from now on a resumed run skips it."""
    atomic_write_json(out / record.folder / RESULT_FILE, asdict(record))


def load_results(out: Path) -> Iterator[EpisodeRecord]:
    """Every finished episode under ``out`` (unreadable result files are treated as unfinished)."""
    for path in sorted((out / EPISODES_DIR).glob(f"**/{RESULT_FILE}")):
        try:
            data = json.loads(path.read_text())
            record = EpisodeRecord(**{name: data[name] for name in EPISODE_COLUMNS})
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (out / record.folder).resolve() == path.parent.resolve():
            yield record


class GuardedAgent:
    """Wraps an agent so that its exceptions end its episode (``fail()``) and are kept as ``error``."""

    def __init__(self, agent: Any):
        self.agent = agent
        self.error: str | None = None

    def reset(self, instruction: str) -> None:
        try:
            self.agent.reset(instruction)
        except Exception as err:  # noqa: BLE001  (any agent bug ends only its own episode)
            self.error = f"agent reset failed: {type(err).__name__}: {err}"

    def act(self, observation: Mapping[str, Any]) -> str:
        if self.error is None:
            try:
                return self.agent.act(observation)
            except Exception as err:  # noqa: BLE001  (any agent bug ends only its own episode)
                self.error = f"agent failed: {type(err).__name__}: {err}"
        return "fail()"

    @property
    def last_info(self) -> dict[str, Any]:
        info = dict(getattr(self.agent, "last_info", None) or {})
        if self.error is not None:
            info["agent_error"] = self.error
        return info


class EpisodeWorker:
    """Runs jobs on one desktop: keeps one env open (per app in turn) and builds a fresh agent per episode.

    Any failure (the env cannot start or reset, the agent cannot be built or crashes, the
    desktop dies) becomes the episode's ``error``: a failed episode, and the next one goes on.
    """

    def __init__(self, specs: Mapping[str, AgentSpec], env_factory: Callable[[str], Any], out: Path,
                 save_frames: bool = True):
        self.specs, self.env_factory, self.out, self.save_frames = specs, env_factory, out, save_frames
        self.app: str | None = None
        self.env: Any = None

    def _env_for(self, app: str) -> Any:
        if self.app != app:
            self.close()
            self.env = self.env_factory(app)
            self.app = app
        return self.env

    def run(self, job: EpisodeJob) -> EpisodeRecord:
        """Run ``job`` to its end and save its ``result.json``; never raises for a failed episode."""
        folder = self.out / job.folder
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        try:
            record = self._run(job, folder)
        except Exception as err:  # noqa: BLE001  (a failed episode is recorded; the run goes on)
            record = failed_record(job, f"{type(err).__name__}: {err}", time.monotonic() - started)
        write_result(self.out, record)
        return record

    def _run(self, job: EpisodeJob, folder: Path) -> EpisodeRecord:
        task = get_task(job.task).variant(job.seed)  # the instance reset(seed=job.seed) plays
        try:
            env = self._env_for(job.app)
        except Exception:
            self.close()
            raise
        width, height = tuple(getattr(env.unwrapped, "screen_size", (1920, 1080)))
        agent = GuardedAgent(self.specs[job.agent].build(EpisodeContext(task, (width, height), job.seed)))
        try:
            result = run_episode(env, agent, task=job.task, seed=job.seed,
                                 recorder=TrajectoryRecorder(folder, save_frames=self.save_frames))
        except Exception:
            self.close()  # a broken env is made afresh for the next episode
            raise
        return EpisodeRecord(job.agent, job.app, job.task, job.repeat, result.success, result.reward,
                             result.steps, result.seconds, agent.error or result.error, job.folder)

    def close(self) -> None:
        if self.env is not None:
            env, self.env, self.app = self.env, None, None
            with contextlib.suppress(Exception):  # closing a broken desktop must not stop the run
                env.close()
