"""VM figures in one run: image build time, boot-to-ready time, reset time (libvirt revert vs
QEMU loadvm) and the step overhead of the libvirt provider over the local one.

    .venv/bin/python benchmarks/vm.py [--rebuild] [--resets 5] [--steps 10] [--json]

Without ``--rebuild`` a cached image is reused and its recorded build time is reported.
Goals (under TCG): reset <= 4 s through libvirt, <= 1 s through loadvm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import gymnasium as gym

import sciboard_gym  # noqa: F401  (registers the envs)
from vm_images.builder import build

TASK = "kalgebra/assign-sum"
ENV_ID = "SciBoard-KAlgebra-v0"


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def _step_times(env, steps: int) -> list[float]:
    """Wall time of ``steps`` pointer moves (action + settle + screenshot), after a reset."""
    env.reset(options={"task": TASK})
    width, height = env.unwrapped.screen_size
    times = []
    for i in range(steps):
        started = time.monotonic()
        _, _, terminated, truncated, info = env.step(f"move({width // 3 + 40 * (i % 2)}, {height // 2})")
        times.append(time.monotonic() - started)
        if terminated or truncated:
            raise RuntimeError(f"the episode ended during the step benchmark: {info}")
    return times


def run(rebuild: bool, resets: int, steps: int) -> dict:
    figures: dict = {}
    started = time.monotonic()
    image = build("kalgebra", force=rebuild)
    figures["image_build_seconds"] = round(time.monotonic() - started, 1) if rebuild else \
        image.manifest["build_seconds"]
    figures["image_build_measured_now"] = rebuild
    figures["image_mib"] = sum(p.stat().st_size for p in image.path.iterdir()) // (1 << 20)

    env = gym.make(ENV_ID, provider="libvirt", task=TASK, max_steps=steps + 5)
    try:
        started = time.monotonic()
        env.reset(options={"task": TASK})
        provider = env.unwrapped.provider
        figures["first_reset_seconds"] = round(time.monotonic() - started, 1)
        figures["accel"] = "kvm" if provider.timings.get("accel_kvm") else "tcg"
        for key in ("boot_seconds", "launch_seconds", "snapshot_seconds", "ready_seconds"):
            figures[key] = provider.timings[key]
        for mode in ("libvirt", "loadvm"):
            figures[f"revert_{mode}_seconds"] = _summary([provider.revert(mode) for _ in range(resets)])
            provider.reset_mode = mode
            env_resets = []
            for _ in range(resets):
                started = time.monotonic()
                env.reset(options={"task": TASK})
                env_resets.append(time.monotonic() - started)
            figures[f"env_reset_{mode}_seconds"] = _summary(env_resets)
        figures["step_vm_seconds"] = _summary(_step_times(env, steps))
    finally:
        env.close()

    print(json.dumps(figures), file=sys.stderr, flush=True)  # the VM figures so far, in case the local run fails

    local = gym.make(ENV_ID, task=TASK, max_steps=steps + 5)
    try:
        figures["step_local_seconds"] = _summary(_step_times(local, steps))
    finally:
        local.close()
    figures["step_overhead_seconds"] = round(figures["step_vm_seconds"]["median"]
                                             - figures["step_local_seconds"]["median"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the image to time it (else reuse it)")
    parser.add_argument("--resets", type=int, default=5, help="resets timed per mode")
    parser.add_argument("--steps", type=int, default=10, help="steps timed per provider")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.rebuild, args.resets, args.steps)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    built = "measured now" if figures["image_build_measured_now"] else "recorded when the cached image was built"
    print(f"image build (KAlgebra)      {figures['image_build_seconds']:8.1f} s   ({built}; {figures['image_mib']} MiB)")
    print(f"accelerator                 {figures['accel']:>8}")
    print(f"boot to guest agent         {figures['boot_seconds']:8.1f} s")
    print(f"app launch in the VM        {figures['launch_seconds']:8.1f} s")
    print(f"memory snapshot             {figures['snapshot_seconds']:8.1f} s")
    print(f"boot to ready (total)       {figures['ready_seconds']:8.1f} s")
    for mode in ("libvirt", "loadvm"):
        rev, env_reset = figures[f"revert_{mode}_seconds"], figures[f"env_reset_{mode}_seconds"]
        print(f"revert ({mode:7s})           {rev['median']:8.2f} s   median of {rev['n']} "
              f"(min {rev['min']:.2f}, max {rev['max']:.2f}); env.reset() {env_reset['median']:.2f} s")
    vm, local = figures["step_vm_seconds"], figures["step_local_seconds"]
    print(f"step, VM / local            {vm['median']:8.3f} s / {local['median']:.3f} s   "
          f"overhead {figures['step_overhead_seconds']:+.3f} s (median of {vm['n']})")


if __name__ == "__main__":
    main()
