#!/usr/bin/env python3
"""Soak: many episodes of the random agent on mixed tasks, checking that nothing leaks.

Runs ``--episodes`` episodes (tasks sampled per reset from each app's suite, apps in
turn), optionally killing a desktop process mid-episode every ``--fault-every``
episodes (the guest agent, the X server, the app, in rotation). After the first step
of every episode it samples processes, open file descriptors, threads and memory of
this process and of the desktops; at the end it compares the start (after warm-up)
with the end and exits non-zero if anything grew, if an episode raised, or if a
killed desktop went unreported.

    .venv/bin/python scripts/soak.py --episodes 200 --max-steps 6 --fault-every 10 --out runs/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.random_agent import RandomAgent
from sciboard_guest import processes
from sciboard_gym.env import SciBoardEnv
from sciboard_gym.episode import run_episode
from sciboard_gym.trajectory import atomic_write_json

FAULTS = ("guest", "xserver", "app")  # the guest first: leaks it causes persist to the end
_DESKTOP_COMMS = {"Xvfb", "openbox", "dbus-daemon", "dbus-send", "xdotool"}
START_SAMPLES = 5
#: Growth allowed between the start and the end of a soak before it counts as a leak.
TOLERANCE = {"processes": 0, "fds": 4, "threads": 2, "host_rss_mib": 48.0, "guest_rss_mib": 24.0}


def _status(pid: int | str) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _rss_mib(pid: int | str) -> float:
    return int(_status(pid).get("VmRSS", "0 kB").split()[0]) / 1024


def _descendants(root: int) -> list[int]:
    """Live (non-zombie) descendants of ``root``."""
    children: dict[int, list[int]] = {}
    states = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            states[int(entry.name)] = fields[0]
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if states.get(child) != "Z":
                found.append(child)
    return found


def _zombies() -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                pass
    return count


def sample(envs: list[SciBoardEnv]) -> dict[str, float]:
    """Resources of this process and of its desktops, right now."""
    me = os.getpid()
    desktop_pids = {p for env in envs for p in processes.tagged_pids(env.provider.desktop_id)}
    guests = [pid for env in envs if (pid := env.provider.guest_pid) is not None]
    guest_rss, guest_fds = 0.0, 0
    for pid in guests:
        try:
            guest_rss += _rss_mib(pid)
            guest_fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return {
        "processes": len(set(_descendants(me)) | desktop_pids),
        "fds": len(os.listdir("/proc/self/fd")) + guest_fds,
        "threads": int(_status("self")["Threads"]),
        "host_rss_mib": round(_rss_mib("self"), 1),
        "guest_rss_mib": round(guest_rss, 1),
        "zombies_system_wide": _zombies(),
    }


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until the kernel has torn it down (every thread gone: a zombie or reaped)."""
    os.kill(pid, signal.SIGKILL)
    for _ in range(1000):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state in "ZX" and len(os.listdir(f"/proc/{pid}/task")) <= 1:
                return
        except OSError:
            return
        time.sleep(0.01)


def inject(env: SciBoardEnv, fault: str) -> str:
    """Kill one process of ``env``'s desktop; returns which."""
    guest = env.provider.guest_pid
    if guest is None:
        raise RuntimeError(f"no guest agent is running on {env.app}'s desktop")
    if fault == "guest":
        kill(guest)
        return "guest agent"
    for pid in processes.tagged_pids(env.provider.desktop_id):
        try:
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        is_app = comm not in _DESKTOP_COMMS and not comm.startswith("at-spi")
        if parent == str(guest) and (comm == "Xvfb" if fault == "xserver" else is_app):
            kill(pid)
            return comm
    raise RuntimeError(f"no {fault} process found on {env.app}'s desktop")


@dataclass
class SoakReport:
    episodes: int = 0
    steps: int = 0
    successes: int = 0
    crashes: list[str] = field(default_factory=list)
    faults_injected: int = 0
    faults_reported: int = 0
    unreported_faults: list[str] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    samples: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def growth(self, warmup: int) -> dict[str, dict[str, float]]:
        """Start (median of the first 5 samples after warm-up) and end (median of the last 5) per resource."""
        usable = self.samples[warmup:] if len(self.samples) > warmup + START_SAMPLES else self.samples
        start, end = usable[:START_SAMPLES], usable[-START_SAMPLES:]
        return {key: {"start": statistics.median(s[key] for s in start), "end": statistics.median(e[key] for e in end),
                      "max": max(s[key] for s in usable)}
                for key in self.samples[0]}

    def leaks(self, warmup: int) -> list[str]:
        found = []
        for key, limit in TOLERANCE.items():
            figures = self.growth(warmup)[key]
            if figures["end"] - figures["start"] > limit:
                found.append(f"{key} grew from {figures['start']} to {figures['end']} (allowed +{limit})")
        return found

    def to_dict(self, warmup: int) -> dict[str, Any]:
        return {
            "episodes": self.episodes, "steps": self.steps, "successes": self.successes,
            "crashes": self.crashes, "faults_injected": self.faults_injected,
            "faults_reported": self.faults_reported, "unreported_faults": self.unreported_faults,
            "errors": dict(self.errors), "seconds": round(self.seconds, 1), "warmup_episodes": warmup,
            "resources": self.growth(warmup) if self.samples else {}, "leaks": self.leaks(warmup) if self.samples else [],
        }


def soak(episodes: int, apps: list[str], max_steps: int | None = None, fault_every: int = 0, seed: int = 0,
         screen_size: tuple[int, int] = (1280, 800), warmup: int = 5, progress: bool = False) -> SoakReport:
    """Run the soak and return its report (the envs are closed at the end).

    The first ``warmup`` episodes settle caches, the next five give the start figures; faults
    (one every ``fault_every`` episodes) come only after those, so what they leak shows at the end.
    """
    envs = [SciBoardEnv(app=app, max_steps=max_steps, screen_size=screen_size) for app in apps]
    report = SoakReport()
    started = time.monotonic()
    pending: list[str] = []  # a fault waits for an episode that lasts beyond its first step
    try:
        for episode in range(episodes):
            env = envs[episode % len(envs)]
            agent = RandomAgent(screen_size, seed=seed + episode, p_done=0.05)
            quiet = warmup + START_SAMPLES
            if fault_every and episode >= quiet and (episode - quiet) % fault_every == 0:
                pending.append(FAULTS[(episode - quiet) // fault_every % len(FAULTS)])
            injected: list[str] = []

            def on_step(index: int, action: str, info: dict[str, Any], env: SciBoardEnv = env,
                        injected: list[str] = injected) -> None:
                if index == 1:
                    report.samples.append(sample(envs))
                if pending and not injected and "success" not in info:  # not the episode's last step
                    injected.append(inject(env, pending.pop(0)))

            try:
                result = run_episode(env, agent, seed=seed + episode, on_step=on_step)
            except Exception as err:  # noqa: BLE001  (the verdict: an episode must never raise)
                report.crashes.append(f"episode {episode}: {type(err).__name__}: {err}\n{traceback.format_exc(limit=4)}")
                continue
            report.episodes += 1
            report.steps += result.steps
            report.successes += result.success
            if result.error:
                report.errors[result.error] += 1
            if injected:
                report.faults_injected += 1
                if result.error and result.truncated:
                    report.faults_reported += 1
                else:
                    report.unreported_faults.append(f"episode {episode}: killed {injected[0]}, result {result}")
            if progress:
                last = report.samples[-1] if report.samples else {}
                print(f"[soak] {episode + 1}/{episodes} {result.task_id} steps={result.steps} "
                      f"reward={result.reward} error={result.error!r} {last}", flush=True)
    finally:
        for env in envs:
            env.close()
        report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--apps", default="kalgebra", help="comma-separated apps, used in turn")
    parser.add_argument("--max-steps", type=int, default=None, help="cap every episode (default: each task's own)")
    parser.add_argument("--fault-every", type=int, default=0, help="kill a desktop process in every N-th episode")
    parser.add_argument("--warmup", type=int, default=5, help="episodes before the start figures are taken")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON report here (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no per-episode progress lines")
    args = parser.parse_args(argv)
    report = soak(args.episodes, args.apps.split(","), args.max_steps, args.fault_every, args.seed,
                  warmup=args.warmup, progress=not args.quiet)
    summary = report.to_dict(args.warmup)
    print(json.dumps(summary, indent=2))
    if args.out:
        atomic_write_json(args.out, summary)
    failed = summary["crashes"] or summary["unreported_faults"] or summary["leaks"]
    return 1 if failed or report.episodes < args.episodes else 0


if __name__ == "__main__":
    sys.exit(main())
