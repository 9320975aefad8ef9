"""Data safety: a writer process SIGKILLed mid-write leaves the previous file intact.

A real child process writes big files over and over and says when each write starts;
the test kills it at a random moment soon after, and checks that every file on disk is a
complete version (a temporary left behind proves the kill landed mid-write). The same kill
against a plain ``write_bytes`` tears the file: the check is able to fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sciboard_gym.trajectory import load_trajectory

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD_MIB = 16
MAX_ROUNDS = 12

#: The child: writes two alternating versions of ``target`` over and over (all its time goes into
#: writing), announcing each write on stdout.
WRITER = """
import hashlib, sys
from pathlib import Path
from sciboard_gym.trajectory import atomic_write_bytes
mode, target, mib = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
versions = []
for fill in (b"a", b"b"):
    body = fill * (mib * 1024 * 1024)
    versions.append(body + hashlib.sha256(body).hexdigest().encode())
for generation in range(10**6):
    print(generation, flush=True)
    if mode == "atomic":
        atomic_write_bytes(target, versions[generation % 2])
    else:
        target.write_bytes(versions[generation % 2])
"""

#: The child: records one long episode step by step (frames, steps.jsonl, episode.json), announcing each step.
RECORDER = """
import sys
import time
from pathlib import Path
import numpy as np
from sciboard_gym.trajectory import TrajectoryRecorder
folder = Path(sys.argv[1])
rng = np.random.default_rng(0)
obs = lambda: {"screenshot": rng.integers(0, 255, (600, 800, 3), dtype=np.uint8), "instruction": "x"}
recorder = TrajectoryRecorder(folder)
recorder.start("kalgebra/assign-sum", "Store the sum.", obs(), {"task_id": "kalgebra/assign-sum"})
for step in range(1, 10**6):
    print(step, flush=True)
    recorder.step(step, f"click({step}, 1)", obs(), 0.0, False, False, {"note": "n" * 20000, "step": step})
"""


def _start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)


def _kill_when(proc: subprocess.Popen, announced: int, delay: float = 0.0) -> None:
    """SIGKILL the child ``delay`` seconds after it announces write number ``announced``."""
    for line in proc.stdout:
        if int(line) >= announced:
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    proc.stdout.close()


def _complete(data: bytes) -> bool:
    body, digest = data[:-64], data[-64:]
    return hashlib.sha256(body).hexdigest().encode() == digest


def _kill_writer_until(tmp_path: Path, mode: str, wanted: str) -> tuple[int, int]:
    """Kill the writer at random moments until ``wanted`` ("torn" or "mid-write") happened, at most
    MAX_ROUNDS times; returns (torn files, kills that left a temporary, i.e. landed mid-write)."""
    target = tmp_path / "checkpoint.bin"
    rng = random.Random(0)
    torn = mid_write = 0
    for _ in range(MAX_ROUNDS):
        proc = _start(WRITER, mode, str(target), str(PAYLOAD_MIB))
        _kill_when(proc, 1, delay=rng.uniform(0.0, 0.05))
        torn += not _complete(target.read_bytes())
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
        if (torn if wanted == "torn" else mid_write):
            break
    return torn, mid_write


def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    torn, mid_write = _kill_writer_until(tmp_path, "atomic", "mid-write")
    assert mid_write > 0, "no kill landed mid-write: the test proved nothing"
    assert torn == 0


def test_plain_write_is_torn_by_the_same_kill(tmp_path):
    torn, _ = _kill_writer_until(tmp_path, "plain", "torn")
    assert torn > 0


@pytest.mark.parametrize("kill_at", [2, 5, 9])
def test_trajectory_killed_mid_episode_reads_back_whole(tmp_path, kill_at):
    folder = tmp_path / "episode"
    proc = _start(RECORDER, str(folder))
    _kill_when(proc, kill_at)
    episode, steps = load_trajectory(folder)
    assert episode["status"] == "running" and episode["task_id"] == "kalgebra/assign-sum"
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert len(steps) >= kill_at - 1
    for record in steps:
        assert record["info"]["step"] == record["step"] and len(record["info"]["note"]) == 20000
        with Image.open(folder / record["frame"]) as image:
            image.load()
            assert image.size == (800, 600)
    with Image.open(folder / episode["first_frame"]) as image:
        assert np.asarray(image).shape == (600, 800, 3)
    json.loads((folder / "episode.json").read_text())
