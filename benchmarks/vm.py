"""VM figures per app in one run, side by side with the local desktop: image build time and size,
boot to ready, reset (libvirt revert, QEMU loadvm, and the local desktop's reset) and one step.

    .venv/bin/python benchmarks/vm.py [--app kalgebra --app pymol ...] [--resets 5] [--steps 10]
                                      [--snapshot-compare] [--no-local] [--json]

Images are built (or reused) first; a reused image reports the build time recorded when it was built.
The VM boots with the default snapshot (lean: the guest zeroes memory it frees, and its page cache
is dropped just before the snapshot, so the ``ready`` snapshot holds only memory in use).
``--snapshot-compare`` also boots the first app with the page cache kept, with neither, and with
1 GiB of guest memory, and prints the four side by side. Goals (under TCG): reset <= 4 s through libvirt, <= 1 s through loadvm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import gymnasium as gym

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_gym.apps import APPS
from sciboard_gym.tasks import load_app_tasks
from vm_images import images_dir
from vm_images.builder import build
from vm_images.recipe import DESKTOP_LAYER, layer_apps


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def _first_task(app: str) -> str:
    return load_app_tasks(app)[0].id


def _step_times(env: Any, task: str, steps: int) -> list[float]:
    """Wall time of ``steps`` pointer moves (action + settle + observation), after a reset."""
    env.reset(seed=0, options={"task": task})
    width, height = env.unwrapped.screen_size
    times = []
    for i in range(steps):
        started = time.monotonic()
        _, _, terminated, truncated, info = env.step(f"move({width // 3 + 40 * (i % 2)}, {height // 2})")
        times.append(time.monotonic() - started)
        if terminated or truncated:
            raise RuntimeError(f"the episode ended during the step benchmark: {info}")
    return times


def _env_resets(env: Any, task: str, resets: int) -> list[float]:
    times = []
    for _ in range(resets):
        started = time.monotonic()
        env.reset(seed=0, options={"task": task})
        times.append(time.monotonic() - started)
    return times


def image_figures(app: str) -> dict[str, Any]:
    """Build (or reuse) the app's image; its build time and size, and those of the layer it is on."""
    started = time.monotonic()
    image = build(app, log=lambda msg: None)
    figures: dict[str, Any] = {"image_call_seconds": round(time.monotonic() - started, 1),
                               "image_build_seconds": image.manifest["build_seconds"],
                               "image_mib": round(image.own_bytes() / (1 << 20), 1)}
    layer = image.manifest.get("layer")
    if layer:
        layer_dir = images_dir() / DESKTOP_LAYER / layer
        figures["layer_build_seconds"] = json.loads((layer_dir / "manifest.json").read_text())["build_seconds"]
        figures["layer_mib"] = round(sum(p.stat().st_size for p in layer_dir.iterdir()) / (1 << 20), 1)
        figures["overlay_kib"] = image.disk.stat().st_size // 1024
    return figures


#: The snapshot variants ``--snapshot-compare`` boots side by side (provider options), the default first.
SNAPSHOT_VARIANTS: dict[str, dict[str, Any]] = {
    "VM": {"lean_snapshot": True, "drop_page_cache": True},
    "VM, cache kept": {"lean_snapshot": True, "drop_page_cache": False},
    "VM, not lean": {"lean_snapshot": False, "drop_page_cache": False},
    "VM, 1 GiB": {"lean_snapshot": True, "drop_page_cache": True, "memory_mib": 1024},
}


def vm_figures(app: str, resets: int, steps: int, options: dict[str, Any]) -> dict[str, Any]:
    """Boot the app's VM; boot, snapshot, revert (both ways), env.reset and step figures."""
    task = _first_task(app)
    env = gym.make(APPS[app][0], provider="libvirt", task=task, max_steps=steps + 5, provider_options=options)
    figures: dict[str, Any] = dict(options)
    try:
        started = time.monotonic()
        env.reset(seed=0, options={"task": task})
        figures["first_reset_seconds"] = round(time.monotonic() - started, 1)
        provider: Any = env.unwrapped.provider  # type: ignore[attr-defined]
        figures["accel"] = "kvm" if provider.timings.get("accel_kvm") else "tcg"
        for key in ("boot_seconds", "launch_seconds", "snapshot_seconds", "snapshot_mib", "ready_seconds",
                    "page_cache_dropped_mib"):
            figures[key] = provider.timings.get(key)
        for mode in ("libvirt", "loadvm"):
            reverts, commands = [], []
            for _ in range(resets):
                reverts.append(provider.revert(mode))
                commands.append(provider.timings[f"revert_{mode}_command_seconds"])
            figures[f"revert_{mode}_seconds"] = _summary(reverts)
            figures[f"revert_{mode}_command_seconds"] = _summary(commands)
            provider.reset_mode = mode
            figures[f"env_reset_{mode}_seconds"] = _summary(_env_resets(env, task, resets))
        figures["step_seconds"] = _summary(_step_times(env, task, steps))
    finally:
        env.close()
    return figures


def local_figures(app: str, resets: int, steps: int) -> dict[str, Any]:
    task = _first_task(app)
    env = gym.make(APPS[app][0], task=task, max_steps=steps + 5)
    try:
        started = time.monotonic()
        env.reset(seed=0, options={"task": task})
        figures: dict[str, Any] = {"first_reset_seconds": round(time.monotonic() - started, 1)}
        figures["env_reset_seconds"] = _summary(_env_resets(env, task, resets))
        figures["step_seconds"] = _summary(_step_times(env, task, steps))
    finally:
        env.close()
    return figures


def run(apps: list[str], resets: int, steps: int, snapshot_compare: bool, local: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for i, app in enumerate(apps):
        figures: dict[str, Any] = {"task": _first_task(app), "image": image_figures(app), "vm": {}}
        for name, options in SNAPSHOT_VARIANTS.items():
            if name == "VM" or (snapshot_compare and i == 0):
                figures["vm"][name] = vm_figures(app, resets, steps, options)
                print(json.dumps({app: figures}), file=sys.stderr, flush=True)  # the figures so far
        if local:
            figures["local"] = local_figures(app, resets, steps)
        results[app] = figures
    return results


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return f"{value['median']:.2f} ({value['min']:.2f}-{value['max']:.2f})"
    return "-" if value is None else str(value)


def print_table(results: dict[str, Any]) -> None:
    for app, figures in results.items():
        vms, local, image = figures["vm"], figures.get("local", {}), figures["image"]
        print(f"\n{app} ({figures['task']}; VM accel {vms['VM']['accel']})")
        if "layer_mib" in image:
            print(f"  image: overlay {image['overlay_kib']} KiB on the desktop layer ({image['layer_mib']} MiB, "
                  f"built in {image['layer_build_seconds']:.0f} s); overlay made in {image['image_build_seconds']} s")
        else:
            print(f"  image: {image['image_mib']} MiB, built in {image['image_build_seconds']:.0f} s")
        print(f"  {'figure':<28}" + "".join(f"{name:>24}" for name in vms) + f"{'local':>24}")
        rows = [("boot to guest agent (s)", "boot_seconds", None), ("app launch (s)", "launch_seconds", None),
                ("page cache dropped (MiB)", "page_cache_dropped_mib", None),
                ("snapshot (s)", "snapshot_seconds", None), ("snapshot size (MiB)", "snapshot_mib", None),
                ("boot to ready (s)", "ready_seconds", None), ("first env.reset (s)", "first_reset_seconds",
                                                              "first_reset_seconds"),
                ("revert libvirt (s)", "revert_libvirt_seconds", None),
                ("  of which the command (s)", "revert_libvirt_command_seconds", None),
                ("revert loadvm (s)", "revert_loadvm_seconds", None),
                ("  of which the command (s)", "revert_loadvm_command_seconds", None),
                ("env.reset, libvirt (s)", "env_reset_libvirt_seconds", "env_reset_seconds"),
                ("env.reset, loadvm (s)", "env_reset_loadvm_seconds", "env_reset_seconds"),
                ("step (s)", "step_seconds", "step_seconds")]
        for label, vm_key, local_key in rows:
            line = f"  {label:<28}" + "".join(f"{_cell(vm.get(vm_key)):>24}" for vm in vms.values())
            print(line + f"{_cell(local.get(local_key) if local_key else None):>24}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=layer_apps(),
                        help="an app to measure (repeatable; default: kalgebra)")
    parser.add_argument("--resets", type=int, default=5, help="resets timed per mode")
    parser.add_argument("--steps", type=int, default=10, help="steps timed per provider")
    parser.add_argument("--snapshot-compare", action="store_true",
                        help="also boot the first app with its page cache kept, without the lean snapshot, and with 1 GiB")
    parser.add_argument("--no-local", action="store_true", help="skip the local desktop's figures")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = run(args.app or ["kalgebra"], args.resets, args.steps, args.snapshot_compare, not args.no_local)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
