"""CPU time of an app's processes, read from ``/proc``: whether the app is still computing.

A settle uses it for an app that draws part of its screen from another process or thread (KAlgebra's
console is a QtWebEngine view rendered by a helper process): its main thread can be idle, and the
screen quiet, while the result is still being laid out.
"""

from __future__ import annotations

import os


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (by parent pid, read once)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """Seconds on a CPU so far of every thread of ``pids`` (``/proc/PID/task/TID/schedstat``, in ns; the
    time of a thread that is running now is counted up to its last scheduler update). Gone processes
    and threads count 0."""
    total = 0
    for pid in pids:
        try:
            tasks = os.scandir(f"/proc/{pid}/task")
        except OSError:
            continue
        with tasks:
            for task in tasks:
                try:
                    with open(f"{task.path}/schedstat", "rb") as stat:
                        total += int(stat.read().split(None, 1)[0])
                except (OSError, ValueError, IndexError):
                    continue
    return total / 1e9


class TreeCpu:
    """A reader of the CPU seconds used so far by a process and the descendants it had when this was made."""

    def __init__(self, root: int):
        self._pids = process_tree(root)

    def __call__(self) -> float:
        return cpu_seconds(self._pids)
