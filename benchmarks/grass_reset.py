"""GRASS GIS reset: where its time goes, for this checkout and an earlier commit side by side in one run.

    .venv/bin/python benchmarks/grass_reset.py [--resets 8] [--baseline REF] [--task grass/slope-map]

Each side (this checkout; with ``--baseline``, the commit REF extracted with ``git archive``) runs in a
process of its own with its own sandboxed desktop (1920x1080) on which GRASS is launched once. Then
``env.reset()`` of the task alternates between the sides, one reset at a time, so both see the same load.

Per reset, frames are sampled from the desktop's framebuffer every 0.1 s while the reset runs and up to
0.5 s after it; the phases are:

- main window drawn: the last change of the top 200 rows (the main window's menu and toolbars);
- screen final: the last change anywhere (the splash screen in the middle of the screen is gone);
- reset: ``env.reset()`` returns (the readiness checks and the settle wait end).

Also printed: the median time of copying the prepared GRASS data into a fresh directory (what every
relaunch copies into the episode's HOME).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOP_ROWS = 200
SAMPLE_PERIOD = 0.1
AFTER = 0.5


def _last_change(frames: list[tuple[float, np.ndarray]], rows: slice) -> float:
    """When the region last differed from the final frame (seconds from the first sample; 0 if never)."""
    final = frames[-1][1][rows]
    changed = [t for t, frame in frames if not np.array_equal(frame[rows], final)]
    return (max(changed) + SAMPLE_PERIOD / 2) if changed else 0.0


def _sample(screen: Any, frames: list[tuple[float, np.ndarray]], stop: threading.Event, start: float) -> None:
    while not stop.is_set():
        frames.append((time.perf_counter() - start, screen.rgb()))
        time.sleep(SAMPLE_PERIOD)


def worker(task: str, phases: bool) -> None:
    """Serve ``reset`` lines on stdin with one JSON line of figures each (the side's own desktop)."""
    from sciboard_gym.env import SciBoardEnv

    env = SciBoardEnv(app="grass", max_steps=10_000)
    try:
        env.reset(seed=0, options={"task": task})
        screen = env.provider._screen  # type: ignore[attr-defined]
        print(json.dumps({"ready": True, "copy": _copy_times(env.provider)}), flush=True)
        for line in sys.stdin:
            if line.strip() != "reset":
                break
            frames: list[tuple[float, np.ndarray]] = []
            stop, start = threading.Event(), time.perf_counter()
            sampler = threading.Thread(target=_sample, args=(screen, frames, stop, start))
            if phases:
                sampler.start()
            _, info = env.reset(seed=0, options={"task": task})
            reset = time.perf_counter() - start
            row = {"reset": reset, "launch": info.get("launch_seconds")}
            if phases:
                time.sleep(AFTER)
                stop.set()
                sampler.join()
                row.update(main_window=_last_change(frames, slice(0, TOP_ROWS)),
                           screen_final=_last_change(frames, slice(None)))
            print(json.dumps(row), flush=True)
    finally:
        env.close()


def _copy_times(provider: Any, count: int = 5) -> float | None:
    """Median seconds of copying the prepared GRASS data (as each relaunch does); None if it is not found."""
    data = provider._prepare_data()
    sources = sorted(Path(data).glob("grass/*/grassdata")) if data else []
    if not sources:
        return None
    times = []
    for _ in range(count):
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            shutil.copytree(sources[0], Path(scratch) / "grassdata", symlinks=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class Side:
    """One side's worker process."""

    def __init__(self, name: str, root: Path, task: str, phases: bool):
        self.name = name
        self.rows: list[dict[str, Any]] = []
        env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", "--task", task,
                                      *([] if phases else ["--no-phases"])],
                                     cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.first = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} side's worker ended (exit {self.proc.wait()})")
        return json.loads(line)

    def reset(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("reset\n")
        self.proc.stdin.flush()
        self.rows.append(self._read())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def extract(ref: str, into: Path) -> Path:
    """The tree of commit ``ref`` of this repository, extracted under ``into``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resets", type=int, default=8, help="resets per side")
    parser.add_argument("--baseline", help="a git ref to measure beside this checkout")
    parser.add_argument("--task", default="grass/slope-map", help="the task reset to (one without setup steps)")
    parser.add_argument("--no-phases", action="store_true",
                        help="time the resets only (no frame sampling, which costs some CPU itself)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.task, not args.no_phases)
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grass-reset-bench-") as scratch:
        roots = {"this checkout": REPO}
        if args.baseline:
            roots = {args.baseline: extract(args.baseline, Path(scratch)), **roots}
        sides = [Side(name, root, args.task, not args.no_phases) for name, root in roots.items()]
        try:
            for _ in range(args.resets):
                for side in sides:
                    side.reset()
        finally:
            for side in sides:
                side.close()
    print(f"GRASS GIS reset, sandboxed local desktop, 1920x1080, {args.resets} resets per side, medians in s "
          f"(1-min load average at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f})")
    columns = ("reset", "launch") if args.no_phases else ("main_window", "screen_final", "reset", "launch")
    print(f"  {'side':<28}" + "".join(f"{c:>14}" for c in columns))
    for side in sides:
        medians = [statistics.median(float(row[c]) for row in side.rows) for c in columns]
        print(f"  {side.name:<28}" + "".join(f"{m:>14.3f}" for m in medians))
    if len(sides) == 2:
        old, new = (statistics.median(row["reset"] for row in side.rows) for side in sides)
        print(f"  reset new/old: {new / old:.2f}")
    copy = sides[-1].first.get("copy")
    print(f"  copying the GRASS data: {copy * 1000:.0f} ms" if copy else "  copying the GRASS data: not found")


if __name__ == "__main__":
    main()
