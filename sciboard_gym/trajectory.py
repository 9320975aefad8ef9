"""Recording episodes: one folder per episode with ``steps.jsonl``, ``episode.json`` and PNG frames.

Every file is written atomically (temporary file in the same folder, fsync, rename),
so a process killed mid-write leaves the previous version intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass
class TrajectoryRecorder:
    """Writes one episode: frames as PNG, each step as a JSON line, a summary at the end."""

    folder: Path
    save_frames: bool = True
    _lines: list[str] = field(default_factory=list)

    def start(self, task_id: str, instruction: str, observation: dict[str, Any], info: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lines = []
        frame = self._save_frame(0, observation)
        atomic_write_json(self.folder / "episode.json", {
            "task_id": task_id, "instruction": instruction, "status": "running", "reset_info": info,
            "first_frame": frame,
        })

    def step(self, index: int, action: str, observation: dict[str, Any], reward: float, terminated: bool,
             truncated: bool, info: dict[str, Any], agent_info: dict[str, Any] | None = None) -> None:
        """Record step ``index``: the action, what the env returned and, if given, the agent's ``last_info``."""
        frame = self._save_frame(index, observation)
        record = {"step": index, "action": action, "reward": reward, "terminated": terminated,
                  "truncated": truncated, "frame": frame, "info": info, "agent": agent_info or {}}
        self._lines.append(json.dumps(record, default=_jsonable))
        atomic_write_bytes(self.folder / "steps.jsonl", ("\n".join(self._lines) + "\n").encode())

    def finish(self, summary: dict[str, Any]) -> None:
        episode = json.loads((self.folder / "episode.json").read_text())
        episode.update(summary, status="finished")
        atomic_write_json(self.folder / "episode.json", episode)

    def _save_frame(self, index: int, observation: dict[str, Any]) -> str | None:
        if not self.save_frames or "screenshot" not in observation:
            return None
        name = f"frame_{index:04d}.png"
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            Image.fromarray(np.asarray(observation["screenshot"], dtype=np.uint8)).save(tmp, format="PNG",
                                                                                        compress_level=1)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return name


def load_trajectory(folder: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read back an episode folder: (episode summary, list of step records)."""
    folder = Path(folder)
    episode = json.loads((folder / "episode.json").read_text())
    steps_file = folder / "steps.jsonl"
    steps = [json.loads(line) for line in steps_file.read_text().splitlines() if line] if steps_file.exists() else []
    return episode, steps
