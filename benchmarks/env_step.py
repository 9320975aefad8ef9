"""Step time (settle included), staleness, reset time and idle CPU per app: old and new paths side by side.

    .venv/bin/python benchmarks/env_step.py [--apps kalgebra,pymol] [--tasks 0] [--resets 8] [--idle 5]
        [--pause 2] [--reset-task NAME] [--quiet SECONDS]

One sandboxed env per app (1920x1080). For every task of the app (``--tasks N``: the first N only),
the oracle is played twice, once per path, interleaved task by task so both paths see the same load:

- old: the guest settles by copying and comparing whole frames every 30 ms with a 0.2 s quiet window,
  and types through one ``xdotool`` process per key chord or line;
- new: the guest settles on X DAMAGE events with the app's own quiet window (or ``--quiet``, to try
  another), and types through XTEST on its open X connection.

"Drawing ends" is how long after a key or click the app's drawing ended: the step's settle less the
quiet window that proved it had ended (the app's redraw time, the floor of a step).

Stale rate: after each reset and oracle step the observation returned is compared with the screen
grabbed again 1.0 s and 1.5 s later; the step is stale when it matches neither but for a text caret's
sliver (``sciboard_gym.staleness``). It must be 0. A step whose settle ended at its timeout, the
screen still changing (``info["settled"]`` False: e.g. a sky whose time runs fast), is counted apart
as "still changing", not as stale: no later observation could have shown it settled.
Reset: ``reset`` of the app's first task (or ``--reset-task``), alternating a relaunch (old) with the
new path's reset: an in-place restore where the app has one, else a relaunch that adopts the spare copy
of the app started in the background by the reset before (KAlgebra; so each measured new reset follows
an unmeasured one). Each reset is followed by ``--pause`` seconds, a short episode's length. "Of which
the app" is the guest's relaunch or restore alone, the rest is the task's setup steps, a settle and the
first observation.
Frame grab: the local provider's read of Xvfb's mapped framebuffer, old (slice, then convert) and
new (convert straight out of the map). Idle CPU: the share of one core used by every process of the sandbox (X server, window manager,
buses, app, guest) over ``--idle`` seconds with nothing happening, after a reset.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from sciboard_guest import apps as guest_apps
from sciboard_guest.server import quiet_window
from sciboard_gym import actions
from sciboard_gym.env import SciBoardEnv
from sciboard_gym.providers.local import LocalProvider
from sciboard_gym.staleness import is_stale
from sciboard_gym.tasks import load_app_tasks

#: path -> (env.settle_quiet, the client's settle options, the client's input options, launch options)
PATHS: dict[str, tuple[float | None, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "old": (0.2, {"method": "poll"}, {"via": "xdotool"}, {"fresh": True, "spare": False}),
    "new": (None, {}, {}, {}),
}


@dataclass
class Figures:
    steps: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # each step's action name (key, type, click, ...)
    settles: list[float] = field(default_factory=list)
    stale: int = 0
    stale_steps: list[str] = field(default_factory=list)  # "task: action" of each stale observation
    changing_steps: list[str] = field(default_factory=list)  # "task: action" of each step still changing at its timeout
    checked: int = 0
    resets: list[float] = field(default_factory=list)
    launches: list[float] = field(default_factory=list)
    idle: float = float("nan")
    frames: list[float] = field(default_factory=list)


def use_path(env: SciBoardEnv, path: str) -> None:
    quiet, settle, inputs, launch = PATHS[path]
    env.settle_quiet = quiet
    client = env.provider.client
    client.settle_options, client.input_options, client.launch_options = dict(settle), dict(inputs), dict(launch)


def idle_cpu(provider: LocalProvider, seconds: float) -> float:
    """Share of one core used by all of the desktop's processes over ``seconds``."""
    root = psutil.Process(provider._proc.pid)  # type: ignore[union-attr]  # the sandbox's bubblewrap

    def total() -> float:
        used = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                used += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        return used

    before, start = total(), time.perf_counter()
    time.sleep(seconds)
    return (total() - before) / (time.perf_counter() - start)


def frame_times(provider: LocalProvider, figures: dict[str, Figures], count: int = 50) -> None:
    """The local provider's frame grab: the older slice-then-convert (two copies) against ``Screen.rgb``."""
    screen = provider._screen
    assert screen is not None

    def old() -> np.ndarray:
        frame = np.frombuffer(screen.raw_bgrx(), np.uint8).reshape(screen.height, -1, 4)[:, : screen.width]
        return frame[:, :, 2::-1].copy()

    for _ in range(count):
        for path, grab in (("old", old), ("new", screen.rgb)):
            start = time.perf_counter()
            grab()
            figures[path].frames.append(time.perf_counter() - start)


def check(env: SciBoardEnv, observation: dict[str, Any], figures: Figures, what: str) -> None:
    """Count the observation as checked, and as stale if the screen still changed after it."""
    figures.checked += 1
    if is_stale(env.provider.client, observation["screenshot"]):
        figures.stale += 1
        figures.stale_steps.append(what)


def play(env: SciBoardEnv, task_id: str, figures: Figures, check_stale: bool) -> None:
    observation, _ = env.reset(seed=0, options={"task": task_id})
    if check_stale:  # the reset's observation too
        check(env, observation, figures, f"{task_id}: reset")
    for action in env.task.oracle:  # type: ignore[union-attr]
        if actions.parse(action).terminal:
            break
        start = time.perf_counter()
        observation, _, terminated, truncated, info = env.step(action)
        figures.steps.append(time.perf_counter() - start)
        figures.kinds.append(action.split("(", 1)[0])
        figures.settles.append(info.get("settle_seconds", 0.0))
        if info.get("settled") is False:
            figures.changing_steps.append(f"{task_id}: {action}")
        elif check_stale and not isinstance(actions.parse(action), actions.Wait):
            check(env, observation, figures, f"{task_id}: {action}")
        if terminated or truncated:
            break


def drawing_ends(app: str, path: str, figures: Figures) -> float:
    """How long after its input an app's drawing ends, over key and click steps: the settle less the quiet
    window that followed the last drawing (typed text waits longer for apps with a text wait)."""
    quiet = quiet_window(guest_apps.get(app), PATHS[path][0])
    ends = [max(settle - quiet, 0.0) for settle, kind in zip(figures.settles, figures.kinds) if kind in ("key", "click")]
    return statistics.median(ends) if ends else float("nan")


def bench_app(app: str, args: argparse.Namespace) -> dict[str, Figures]:
    figures = {path: Figures() for path in PATHS}
    tasks = load_app_tasks(app)[: args.tasks or None]
    reset_task = f"{app}/{args.reset_task}" if args.reset_task else tasks[0].id
    env = SciBoardEnv(app=app, max_steps=10_000)
    try:
        env.reset(seed=0, options={"task": reset_task})
        for i in range(args.resets):
            for path in PATHS:
                use_path(env, path)
                if path == "new":  # the old reset stopped the spare: start one, as an earlier new reset would
                    env.reset(seed=i, options={"task": reset_task})
                    time.sleep(args.pause)
                start = time.perf_counter()
                _, info = env.reset(seed=i, options={"task": reset_task})
                figures[path].resets.append(time.perf_counter() - start)
                figures[path].launches.append(float(info["launch_seconds"]))
                time.sleep(args.pause)
        frame_times(env.provider, figures)  # type: ignore[arg-type]
        for path in PATHS:
            use_path(env, path)
            env.reset(seed=0, options={"task": reset_task})
            env.provider.client.wait_for_spare()
            time.sleep(1.0)
            figures[path].idle = idle_cpu(env.provider, args.idle)  # type: ignore[arg-type]
        for task in tasks:
            for path in PATHS:
                use_path(env, path)
                play(env, task.id, figures[path], check_stale=not args.no_stale)
    finally:
        env.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", default="kalgebra", help="comma-separated apps")
    parser.add_argument("--tasks", type=int, default=0, help="play the first N tasks of each app (0: all)")
    parser.add_argument("--resets", type=int, default=8)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measurement")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds after each measured reset")
    parser.add_argument("--reset-task", default="", help="the task (name without the app) whose reset is timed "
                                                          "(default: the app's first)")
    parser.add_argument("--quiet", type=float, default=None,
                        help="the new path's quiet window in seconds (default: the app's own)")
    parser.add_argument("--no-stale", action="store_true", help="skip the staleness re-grabs (faster)")
    args = parser.parse_args()
    if args.quiet is not None:
        PATHS["new"] = (args.quiet, *PATHS["new"][1:])

    print("median figures, sandboxed local desktop, 1920x1080; old | new | new/old")
    for app in args.apps.split(","):
        started = time.perf_counter()
        figures = bench_app(app, args)
        old, new = figures["old"], figures["new"]
        print(f"\n{app} ({len(new.steps)} oracle steps per path, {len(new.resets)} resets per path, "
              f"{time.perf_counter() - started:.0f} s)")
        rows = [
            ("step incl. settle (ms)", 1000 * statistics.median(old.steps), 1000 * statistics.median(new.steps)),
            ("  of which settle (ms)", 1000 * statistics.median(old.settles), 1000 * statistics.median(new.settles)),
            ("  drawing ends (ms)", 1000 * drawing_ends(app, "old", old),
             1000 * drawing_ends(app, "new", new)),
            ("step, 90th pct (ms)", 1000 * float(np.percentile(old.steps, 90)),
             1000 * float(np.percentile(new.steps, 90))),
            ("reset (s)", statistics.median(old.resets), statistics.median(new.resets)),
            ("  of which the app (s)", statistics.median(old.launches), statistics.median(new.launches)),
            ("idle CPU (% of a core)", 100 * old.idle, 100 * new.idle),
            ("frame grab, local (ms)", 1000 * statistics.median(old.frames), 1000 * statistics.median(new.frames)),
        ]
        for name, a, b in rows:
            print(f"  {name:<24}{a:>10.3f}{b:>10.3f}{b / a if a else float('nan'):>8.2f}")
        for path, fig in figures.items():
            by_kind = {kind: [t for t, k in zip(fig.steps, fig.kinds) if k == kind] for kind in sorted(set(fig.kinds))}
            print(f"  step by action, {path}: " + ", ".join(
                f"{kind} {1000 * statistics.median(times):.0f} ms ({len(times)})" for kind, times in by_kind.items()))
            if fig.checked:
                print(f"  stale rate, {path}: {fig.stale}/{fig.checked} = {fig.stale / fig.checked:.3f}"
                      + "".join(f"\n    stale: {what}" for what in fig.stale_steps))
            if fig.changing_steps:
                print(f"  still changing at the settle's timeout, {path}: {len(fig.changing_steps)}"
                      + "".join(f"\n    changing: {what}" for what in fig.changing_steps))


if __name__ == "__main__":
    main()
