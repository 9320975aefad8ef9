"""Env steps and resets per second for 1, 2 and 4 desktops: async vector envs and the Ray pool, in one run.

    .venv/bin/python benchmarks/throughput.py [--app kalgebra] [--sizes 1 2 4] [--steps 30] [--resets 3]

For each size N it runs ``gym.make_vec(..., vectorization_mode="async")`` and an
:class:`~sciboard_gym.distributed.EnvPool` of N actors on a local Ray cluster, one after the
other, and measures:

- steps/s: total env steps over wall time, every env stepping at once (a fixed action cycle:
  pointer moves, a short formula typed into the app, Escape);
- resets/s: total resets over wall time, every env resetting at once;
- per desktop at idle: CPU (% of one core, over ``--idle`` seconds with nothing asked of it)
  and memory (PSS, so shared libraries count once) of the desktop's processes (guest agent,
  X server, window manager, buses, app);
- per desktop while stepping: CPU of the desktop's processes (% of one core);
- machine CPU while stepping: every process on the host (env workers, Ray, the driver), % of
  all cores: where it nears 100% the machine is saturated.

The ratios in the last column compare each run with the 1-desktop vector run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import psutil

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_gym.apps import APPS
from sciboard_gym.tasks import load_app_tasks

CYCLE = ("move(300, 200)", 'type("1+1\\n")', "move(700, 450)", 'key("Escape")')


@dataclass
class Row:
    mode: str
    envs: int
    steps_per_s: float
    resets_per_s: float
    idle_cpu: float
    idle_pss_mb: float
    busy_cpu: float
    machine_cpu: float


def desktop_trees(parents: Sequence[int]) -> list[list[psutil.Process]]:
    """The processes of each desktop: every descendant of each env-holding process."""
    return [psutil.Process(pid).children(recursive=True) for pid in parents]


def cpu_seconds(procs: Sequence[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def pss_mb(procs: Sequence[psutil.Process]) -> float:
    total = 0
    for proc in procs:
        try:
            total += proc.memory_full_info().pss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def measure(mode: str, n: int, parents: Sequence[int], reset: Callable[[int], object],
            step: Callable[[tuple[str, ...]], object], args: argparse.Namespace) -> Row:
    reset(0)  # warm-up: starts every desktop
    trees = desktop_trees(parents)
    flat = [p for tree in trees for p in tree]
    before = cpu_seconds(flat)
    time.sleep(args.idle)
    idle_cpu = 100 * (cpu_seconds(flat) - before) / args.idle / n
    idle_pss = sum(pss_mb(tree) for tree in trees) / n

    started = time.perf_counter()
    for i in range(args.resets):
        reset(i + 1)
    resets_per_s = n * args.resets / (time.perf_counter() - started)

    trees = desktop_trees(parents)  # the apps were restarted by the resets
    flat = [p for tree in trees for p in tree]
    before_cpu, started = cpu_seconds(flat), time.perf_counter()
    psutil.cpu_percent()
    for i in range(args.steps):
        step((CYCLE[i % len(CYCLE)],) * n)
    machine_cpu = psutil.cpu_percent()
    elapsed = time.perf_counter() - started
    busy_cpu = 100 * (cpu_seconds(flat) - before_cpu) / elapsed / n
    return Row(mode, n, n * args.steps / elapsed, resets_per_s, idle_cpu, idle_pss, busy_cpu, machine_cpu)


def run_vector(env_id: str, n: int, env_kwargs: dict[str, Any], args: argparse.Namespace) -> Row:
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="async", **env_kwargs)
    try:
        return measure("vector", n, [proc.pid for proc in envs.processes],  # type: ignore[attr-defined]
                       lambda seed: envs.reset(seed=seed), lambda actions: envs.step(actions), args)
    finally:
        envs.close()


def run_ray(env_id: str, n: int, env_kwargs: dict[str, Any], args: argparse.Namespace) -> Row:
    from sciboard_gym.distributed import EnvPool

    pool = EnvPool(env_id, size=n, env_kwargs=env_kwargs)
    try:
        pids = [int(worker.rsplit(":", 1)[1]) for worker in pool.workers]
        return measure("ray", n, pids, lambda seed: pool.reset(seeds=[seed + i for i in range(n)]),
                       lambda actions: pool.step(actions), args)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="kalgebra")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=30, help="steps per env per run")
    parser.add_argument("--resets", type=int, default=3, help="resets per env per run")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU sampling")
    parser.add_argument("--screen", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"))
    parser.add_argument("--no-ray", action="store_true", help="vector envs only")
    args = parser.parse_args()

    env_id = APPS[args.app][0]
    task = load_app_tasks(args.app)[0].id
    env_kwargs = {"task": task, "max_steps": 100_000, "screen_size": tuple(args.screen)}
    rows = []
    if not args.no_ray:
        import ray

        ray.init(num_cpus=os.cpu_count(), resources={"desktop": max(args.sizes)}, include_dashboard=False,
                 log_to_driver=False)
    for n in args.sizes:
        rows.append(run_vector(env_id, n, env_kwargs, args))
        if not args.no_ray:
            rows.append(run_ray(env_id, n, env_kwargs, args))

    base = rows[0]
    print(f"\n{args.app}, task {task}, screen {args.screen[0]}x{args.screen[1]}, {os.cpu_count()} cores, "
          f"{args.steps} steps and {args.resets} resets per env\n")
    print("| mode | envs | steps/s | resets/s | idle CPU/desktop | idle PSS/desktop | CPU/desktop stepping "
          "| machine CPU stepping | steps/s vs 1 vector env |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.mode} | {row.envs} | {row.steps_per_s:.2f} | {row.resets_per_s:.2f} | {row.idle_cpu:.1f}% "
              f"| {row.idle_pss_mb:.0f} MB | {row.busy_cpu:.0f}% | {row.machine_cpu:.0f}% "
              f"| {row.steps_per_s / base.steps_per_s:.2f}x |")


if __name__ == "__main__":
    main()
