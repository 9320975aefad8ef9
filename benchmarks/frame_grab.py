"""Frame grab time by the guest's three read paths, side by side on one Xvfb.

    .venv/bin/python benchmarks/frame_grab.py [--size 1920x1080] [--grabs 30] [--rounds 3]

- mapped: the guest's own Xvfb (local desktop and VM) writes its framebuffer to a memory-mapped
  file (``-fbdir``); a frame is converted straight out of the map;
- mss: an X server the guest attaches to (``--display``), read with XShmGetImage through mss;
- xlib: the same, read with XGetImage through python-xlib (when mss is not installed).

Each round times ``--grabs`` frames (to an (H, W, 3) RGB array) per path, paths interleaved
round by round; the median per path and its ratio to the mapped path are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from sciboard_guest.protocol import FRAMEBUFFER
from sciboard_guest.screen import Screen


def start_xvfb(size: str, workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    fbdir = workdir / FRAMEBUFFER.parent
    fbdir.mkdir()
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size}x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        return proc, f":{pipe.readline().strip()}", fbdir


def xlib_screen(name: str) -> Screen:
    """A Screen on ``name`` that cannot import mss (the XGetImage path)."""
    with mock.patch.dict(sys.modules, {"mss": None}):  # None in sys.modules: ``import mss`` raises ImportError
        return Screen(name, None, {})


def median_ms(screen: Screen, grabs: int) -> float:
    times = []
    for _ in range(grabs):
        start = time.perf_counter()
        screen.rgb()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--grabs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, name, fbdir = start_xvfb(args.size, Path(tmp))
        try:
            screens = {"mapped": Screen(name, fbdir, {}), "mss": Screen(name, None, {}), "xlib": xlib_screen(name)}
            if screens["mss"]._mss is None:
                raise SystemExit("mss is not installed: pip install mss")
            times: dict[str, list[float]] = {path: [] for path in screens}
            for _ in range(args.rounds):
                for path, screen in screens.items():
                    times[path].append(median_ms(screen, args.grabs))
            for screen in screens.values():
                screen.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    base = statistics.median(times["mapped"])
    print(f"frame grab to RGB, {args.size}, median of {args.rounds} rounds x {args.grabs} grabs")
    for path, values in times.items():
        value = statistics.median(values)
        print(f"  {path:7s} {value:7.2f} ms   {value / base:4.1f}x the mapped path")


if __name__ == "__main__":
    main()
