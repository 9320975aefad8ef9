"""Where comparison episodes run: in this process, in worker processes, or on Ray actors; one desktop each.

A pool takes :class:`~baselines.episodes.EpisodeJob` items and yields one
:class:`~baselines.episodes.EpisodeRecord` per job, in any order, each exactly once; a job
whose worker dies comes back as a failed record naming the cause. Anything with the same
``run(jobs)`` method can replace these (e.g. vector envs).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import queue
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from baselines.episodes import EpisodeJob, EpisodeRecord, EpisodeWorker, failed_record, write_result
from baselines.specs import AgentSpec

EnvFactory = Callable[[str], Any]


class EpisodePool(Protocol):
    """Runs episodes; yields one record per job as each finishes."""

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[EpisodeRecord]: ...


class InlinePool:
    """Every episode in this process, one after another, on one desktop."""

    def __init__(self, specs: dict[str, AgentSpec], env_factory: EnvFactory, out: Path, save_frames: bool = True):
        self.specs, self.env_factory, self.out, self.save_frames = specs, env_factory, out, save_frames

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[EpisodeRecord]:
        worker = EpisodeWorker(self.specs, self.env_factory, self.out, self.save_frames)
        try:
            for job in jobs:
                yield worker.run(job)
        finally:
            worker.close()


class ProcessPool:
    """``workers`` processes, each with its own desktop (one env at a time), sharing one job queue.

    Jobs are taken in order, so jobs sorted by app keep each worker on one app for long
    stretches. Workers die with this process (``PR_SET_PDEATHSIG``); a worker that dies
    mid-episode turns that episode into a failed record and is replaced.
    """

    def __init__(self, workers: int, specs: dict[str, AgentSpec], env_factory: EnvFactory, out: Path,
                 save_frames: bool = True):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers, self.specs, self.env_factory = workers, specs, env_factory
        self.out, self.save_frames = out, save_frames

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[EpisodeRecord]:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        job_queue: Any = context.Queue()
        results: Any = context.Queue()
        for job in jobs:
            job_queue.put(job)
        count = min(self.workers, len(jobs))
        for _ in range(count):
            job_queue.put(None)
        outstanding = {job.key: job for job in jobs}
        in_flight: dict[int, EpisodeJob] = {}
        processes: dict[int, Any] = {}

        def start(index: int) -> None:
            processes[index] = context.Process(
                target=_worker_main, name=f"sciboard-compare-{index}", daemon=True,
                args=(index, self.specs, self.env_factory, self.out, self.save_frames, job_queue, results))
            processes[index].start()

        for index in range(count):
            start(index)
        try:
            while outstanding:
                try:
                    kind, index, payload = results.get(timeout=1.0)
                except queue.Empty:
                    yield from self._reap(processes, in_flight, outstanding, start)
                    continue
                if kind == "start":
                    in_flight[index] = payload
                elif kind == "done":
                    in_flight.pop(index, None)
                    if outstanding.pop(payload.key, None) is not None:
                        yield payload
        finally:
            for process in processes.values():
                if process.is_alive():
                    process.terminate()
            for process in processes.values():
                process.join(timeout=30)

    def _reap(self, processes: dict[int, Any], in_flight: dict[int, EpisodeJob],
              outstanding: dict[tuple[str, str, int], EpisodeJob],
              start: Callable[[int], None]) -> Iterator[EpisodeRecord]:
        """Failed records for the jobs of dead workers; replacements while work remains."""
        for index, process in list(processes.items()):
            if process.is_alive() or process.exitcode == 0:
                continue
            job = in_flight.pop(index, None)
            if job is not None and outstanding.pop(job.key, None) is not None:
                record = failed_record(job, f"the worker process died (exit code {process.exitcode})")
                write_result(self.out, record)
                yield record
            del processes[index]
            if outstanding:
                start(index)
        if not any(p.is_alive() for p in processes.values()):
            for job in list(outstanding.values()):  # taken by a worker that died before saying so
                record = failed_record(job, "the worker process died before reporting the episode")
                write_result(self.out, record)
                outstanding.pop(job.key)
                yield record


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent dies (no orphaned desktops)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(index: int, specs: dict[str, AgentSpec], env_factory: EnvFactory, out: Path, save_frames: bool,
                 job_queue: Any, results: Any) -> None:
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: close the desktop
    worker = EpisodeWorker(specs, env_factory, out, save_frames)
    try:
        while (job := job_queue.get()) is not None:
            results.put(("start", index, job))
            results.put(("done", index, worker.run(job)))
    finally:
        worker.close()


class RecordedEpisodes:
    """Runs on a Ray actor: plays a job with an :class:`EpisodeWorker` kept in the actor's state and
    returns its record with the episode folder's files (the actor may be on another host)."""

    def __init__(self, specs: dict[str, AgentSpec], env_factory: EnvFactory, save_frames: bool = True):
        self.specs, self.env_factory, self.save_frames = specs, env_factory, save_frames

    def __call__(self, worker: Any, job: EpisodeJob) -> tuple[EpisodeRecord, dict[str, bytes]]:
        episodes = worker.state.get("compare")
        if episodes is None:  # closed with the actor (EnvWorker.close closes its state)
            scratch = Path(tempfile.mkdtemp(prefix="sciboard-episodes-"))
            episodes = worker.state["compare"] = EpisodeWorker(self.specs, self.env_factory, scratch,
                                                               self.save_frames)
        record = episodes.run(job)
        folder = episodes.out / job.folder
        files = {path.relative_to(folder).as_posix(): path.read_bytes()
                 for path in sorted(folder.rglob("*")) if path.is_file()}
        shutil.rmtree(folder, ignore_errors=True)
        return record, files


class RayPool:
    """Episodes on the actors of a Ray cluster (:class:`sciboard_gym.distributed.EnvPool`), one desktop each.

    Each actor plays jobs like a local worker; the episode's files (trajectory, frames,
    ``result.json``) come back with its record and are written under ``out`` here, so a
    run on a cluster leaves the same folders, viewer and resumable results as a local one.
    A job whose actor died ``max_attempts`` times comes back as a failed record.
    """

    def __init__(self, specs: dict[str, AgentSpec], env_factory: EnvFactory, out: Path,
                 address: str | None = None, size: int | None = None, save_frames: bool = True):
        self.specs, self.env_factory, self.out = specs, env_factory, out
        self.address, self.size, self.save_frames = address, size, save_frames

    def run(self, jobs: Sequence[EpisodeJob]) -> Iterator[EpisodeRecord]:
        from sciboard_gym.distributed import EnvPool

        if not jobs:
            return
        play = RecordedEpisodes(self.specs, self.env_factory, self.save_frames)
        with EnvPool(size=self.size, address=self.address) as pool:
            for outcome in pool.map(play, jobs):
                job = jobs[outcome.index]
                folder = self.out / job.folder
                shutil.rmtree(folder, ignore_errors=True)
                if outcome.value is None:
                    record = failed_record(job, outcome.error or "the episode did not run")
                else:
                    record, files = outcome.value
                    for name, data in files.items():
                        (folder / name).parent.mkdir(parents=True, exist_ok=True)
                        (folder / name).write_bytes(data)
                write_result(self.out, record)
                yield record
