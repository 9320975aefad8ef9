"""Reset time, step overhead and the frame paths, sandboxed and on the host, measured side by side.

    .venv/bin/python benchmarks/env_step.py [--app kalgebra] [--steps 40] [--resets 10]

Two envs of the same app run at once: the default sandboxed desktop (the pinned tree under
bubblewrap, guest over a Unix socket) and ``sandbox=False`` (the host's own packages); their
resets and steps are interleaved so both see the same machine load. Step overhead = wall time
of ``env.step`` minus the time the guest spent waiting for the screen to settle
(``info["settle_seconds"]``): parsing, the input request, the settle request's round trip and
the screenshot. Goals at 1920x1080: overhead <= 30 ms, KAlgebra reset <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from io import BytesIO

import numpy as np
from PIL import Image

from sciboard_gym.env import SciBoardEnv
from sciboard_gym.tasks import load_app_tasks

MODES = {"sandboxed": True, "host": False}


def median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", default="kalgebra")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--resets", type=int, default=10)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()

    task = load_app_tasks(args.app)[0]
    envs: dict[str, SciBoardEnv] = {}
    starts: dict[str, float] = {}
    resets: dict[str, list[float]] = {mode: [] for mode in MODES}
    overheads: dict[str, list[float]] = {mode: [] for mode in MODES}
    settles: dict[str, list[float]] = {mode: [] for mode in MODES}
    shared: list[float] = []
    raw: list[float] = []
    png: list[float] = []
    try:
        for mode, sandbox in MODES.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # sandbox=False warns, as it should
                envs[mode] = SciBoardEnv(app=args.app, task=task.id, max_steps=10_000, sandbox=sandbox)
            start = time.perf_counter()
            envs[mode].reset(seed=0)  # starts the desktop and the app
            starts[mode] = time.perf_counter() - start
        for i in range(args.resets):
            for mode, env in envs.items():
                start = time.perf_counter()
                env.reset(seed=i)
                resets[mode].append(time.perf_counter() - start)
        width, height = envs["sandboxed"].screen_size
        for i in range(args.steps):
            action = f"move({(37 * i) % width}, {(53 * i) % height})"
            for mode, env in envs.items():
                start = time.perf_counter()
                _, _, _, _, info = env.step(action)
                elapsed = time.perf_counter() - start
                overheads[mode].append(elapsed - info["settle_seconds"])
                settles[mode].append(info["settle_seconds"])

        client = envs["sandboxed"].provider.client
        for _ in range(args.frames):  # interleaved, so all paths see the same machine load
            start = time.perf_counter()
            client.screenshot()
            shared.append(time.perf_counter() - start)
            start = time.perf_counter()
            frame_raw = client.screenshot_http()
            raw.append(time.perf_counter() - start)
            start = time.perf_counter()
            frame_png = np.asarray(Image.open(BytesIO(client.screenshot_png())).convert("RGB"))
            png.append(time.perf_counter() - start)
        assert frame_raw.shape == frame_png.shape
    finally:
        for env in envs.values():
            env.close()

    print(f"app {args.app}, screen {width}x{height}; {args.resets} resets and {args.steps} steps each, interleaved")
    print(f"{'':24}{'sandboxed':>12}{'host':>12}{'ratio':>8}")
    rows = [("desktop start + reset (s)", starts["sandboxed"], starts["host"]),
            ("reset, median (s)", statistics.median(resets["sandboxed"]), statistics.median(resets["host"])),
            ("step overhead, median (ms)", median_ms(overheads["sandboxed"]), median_ms(overheads["host"])),
            ("settle wait, median (ms)", median_ms(settles["sandboxed"]), median_ms(settles["host"]))]
    for name, sandboxed, host in rows:
        print(f"{name:<26}{sandboxed:>10.3f}{host:>12.3f}{sandboxed / host:>8.2f}")
    print("goals: reset <= 2 s, step overhead <= 30 ms")
    print(f"frame, shared framebuffer (local provider's path): median {median_ms(shared):6.1f} ms")
    print(f"frame, raw BGRX over HTTP (the VM path):          median {median_ms(raw):6.1f} ms")
    print(f"frame, PNG over HTTP (encode + transfer + decode): median {median_ms(png):6.1f} ms")
    print(f"ratio PNG / raw HTTP: {statistics.median(png) / statistics.median(raw):5.1f}x   "
          f"PNG / shared: {statistics.median(png) / statistics.median(shared):5.1f}x")


if __name__ == "__main__":
    main()
