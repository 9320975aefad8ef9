"""``viewer.html``: a static, self-contained trajectory viewer for a comparison folder.

The page embeds every episode's steps (actions, the agent's thoughts, action errors, the
evaluator's checks) as JSON and loads the PNG frames by relative path, so it opens from
``file://`` with no server. It shows an index with filters and the summary table, each
episode step by step with the action drawn on the screenshot, and two agents' episodes of
one task side by side.
"""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

from baselines.episodes import EpisodeRecord, load_results
from sciboard_gym import actions
from sciboard_gym.trajectory import atomic_write_bytes, load_trajectory

VIEWER_FILE = "viewer.html"
_DATA_MARK = "/*SCIBOARD_DATA*/null"


def action_overlay(text: str | None) -> dict[str, Any] | None:
    """The geometry to draw for an action (its :meth:`~sciboard_gym.actions.Action.to_dict`), or None."""
    if not text:
        return None
    try:
        return actions.parse(text).to_dict()
    except actions.ActionError:
        return None


def _step_view(step: dict[str, Any], frame_dir: str) -> dict[str, Any]:
    info = step.get("info") or {}
    executed = info.get("executed")
    return {
        "step": step.get("step"), "action": step.get("action"), "executed": executed,
        "overlay": action_overlay(executed or step.get("action")), "action_error": info.get("action_error"),
        "plan": info.get("plan"), "error": info.get("error"), "reward": step.get("reward"),
        "frame": f"{frame_dir}/{step['frame']}" if step.get("frame") else None,
        "agent": step.get("agent") or {},
    }


def episode_view(out: Path, record: EpisodeRecord, index: int) -> dict[str, Any]:
    """One episode for the page: its record, instruction, frames, steps and checks."""
    view: dict[str, Any] = {"id": index, **{k: getattr(record, k) for k in (
        "agent", "app", "task", "repeat", "success", "reward", "steps", "seconds", "error", "folder")}}
    view.update(instruction="", first_frame=None, trajectory=[], checks=[], answer=None)
    try:
        episode, steps = load_trajectory(out / record.folder)
    except (OSError, ValueError):
        return view  # the episode failed before its trajectory was written
    view["instruction"] = episode.get("instruction", "")
    if episode.get("first_frame"):
        view["first_frame"] = f"{record.folder}/{episode['first_frame']}"
    view["trajectory"] = [_step_view(step, record.folder) for step in steps]
    last = (steps[-1].get("info") or {}) if steps else {}
    view["checks"] = episode.get("checks") or last.get("checks") or []
    view["answer"] = last.get("answer")
    return view


def _summary_rows(out: Path) -> list[dict[str, str]]:
    path = out / "summary.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def build_viewer(out: str | Path) -> Path:
    """Write ``viewer.html`` into the comparison folder ``out`` and return its path."""
    out = Path(out)
    records = sorted(load_results(out), key=lambda r: (r.agent, r.app, r.task, r.repeat))
    data = {"episodes": [episode_view(out, record, i) for i, record in enumerate(records)],
            "summary": _summary_rows(out), "title": out.resolve().name}
    template = (resources.files("baselines") / "viewer.html").read_text()
    payload = json.dumps(data, default=str).replace("<", "\\u003c")  # nothing can close the script tag
    page = template.replace(_DATA_MARK, payload)
    path = out / VIEWER_FILE
    atomic_write_bytes(path, page.encode())
    return path
