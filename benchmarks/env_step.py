"""Step overhead, reset time and the raw-frame path vs PNG over HTTP, measured side by side.

    .venv/bin/python benchmarks/env_step.py [--app kalgebra] [--steps 40] [--resets 10]

Step overhead = wall time of ``env.step`` minus the time the guest spent waiting for the
screen to settle (``info["settle_seconds"]``): parsing, the input request, the settle
request's round trip and the raw screenshot transfer. Goals at 1920x1080: overhead
<= 30 ms, KAlgebra reset <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from io import BytesIO

import numpy as np
from PIL import Image

from sciboard_gym.env import SciBoardEnv
from sciboard_gym.tasks import load_app_tasks


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
    env = SciBoardEnv(app=args.app, task=task.id, max_steps=10_000)
    try:
        env.reset(seed=0)  # warm-up: starts the desktop
        resets = []
        for i in range(args.resets):
            start = time.perf_counter()
            env.reset(seed=i)
            resets.append(time.perf_counter() - start)

        overheads, settles = [], []
        width, height = env.screen_size
        for i in range(args.steps):
            action = f"move({(37 * i) % width}, {(53 * i) % height})"
            start = time.perf_counter()
            _, _, _, _, info = env.step(action)
            elapsed = time.perf_counter() - start
            overheads.append(elapsed - info["settle_seconds"])
            settles.append(info["settle_seconds"])

        client = env.provider.client
        shared, raw, png = [], [], []
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
        env.close()

    print(f"app {args.app}, screen {width}x{height}")
    print(f"reset:           median {statistics.median(resets):6.3f} s over {len(resets)} resets "
          f"(min {min(resets):.3f}, max {max(resets):.3f})   goal <= 2 s")
    print(f"step overhead:   median {median_ms(overheads):6.1f} ms over {len(overheads)} steps "
          f"(excluding settle; settle median {median_ms(settles):.0f} ms)   goal <= 30 ms")
    print(f"frame, shared framebuffer (local provider's path): median {median_ms(shared):6.1f} ms")
    print(f"frame, raw BGRX over HTTP (the VM path):          median {median_ms(raw):6.1f} ms")
    print(f"frame, PNG over HTTP (encode + transfer + decode): median {median_ms(png):6.1f} ms")
    print(f"ratio PNG / raw HTTP: {statistics.median(png) / statistics.median(raw):5.1f}x   "
          f"PNG / shared: {statistics.median(png) / statistics.median(shared):5.1f}x")


if __name__ == "__main__":
    main()
