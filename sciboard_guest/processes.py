"""Process bookkeeping for a desktop: spawn, tag, reap and kill.

Every process of a desktop carries ``SCIBOARD_DESKTOP=<id>`` in its environment;
daemons that double-fork away from us are still found (and killed) by that tag.
The guest makes itself a child subreaper so orphans are reparented to it and
reaped instead of becoming zombies of a PID 1 that does not reap.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Set as AbstractSet
from pathlib import Path

MARKER = "SCIBOARD_DESKTOP"
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux prctl), so they can be reaped here."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans(own: set[int]) -> None:
    """Reap zombie children that were adopted (not the ``own`` pids, which Popen waits for)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and fields[1] == me:
            try:
                os.waitpid(int(entry.name), os.WNOHANG)
            except ChildProcessError:
                pass


def tagged_pids(desktop_id: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries this desktop's tag."""
    needle = f"{MARKER}={desktop_id}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"\0" + needle not in b"\0" + (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def kill_tagged(desktop_id: str, exclude: AbstractSet[int] = frozenset(), grace: float = 1.0) -> None:
    """SIGTERM then SIGKILL every live process tagged with ``desktop_id``."""
    deadline = time.monotonic() + grace
    sig = signal.SIGTERM
    while True:
        pids = [p for p in tagged_pids(desktop_id) if p not in exclude]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline + grace:
            return
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.05)


def spawn(argv: list[str], env: dict[str, str], log: Path, cwd: str | None = None, **kwargs) -> subprocess.Popen:
    """Start ``argv`` (never through a shell) in its own process group, logging to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **kwargs,
        )


def stop(proc: subprocess.Popen | None, timeout: float = 2.0) -> None:
    """Terminate a process group started by :func:`spawn` and wait for it."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
