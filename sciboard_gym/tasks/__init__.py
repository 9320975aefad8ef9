"""Tasks as data: the :class:`Task` dataclass, its JSON schema and the loader.

A task file is one JSON object (see ``schema.json`` and docs/tasks.md). Task
files name setup steps and evaluator checks with arguments; they never contain
code. Files live in ``sciboard_gym/tasks/<app>/*.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema

TASKS_DIR = Path(__file__).resolve().parent
SCHEMA: dict[str, Any] = json.loads((TASKS_DIR / "schema.json").read_text())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Step:
    """A named setup step or evaluator check with its arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One task: what to ask, how to prepare the app, how to judge, and a known solution."""

    id: str
    app: str
    instruction: str
    max_steps: int
    setup: tuple[Step, ...]
    evaluate: tuple[Step, ...]
    oracle: tuple[str, ...]
    difficulty: str = "medium"
    tags: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Task:
        """Validate ``data`` against the schema and build a Task (raises :class:`TaskError`)."""
        try:
            errors = sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
        except RecursionError:
            raise TaskError(f"{source}: nested too deeply to be a task") from None
        if errors:
            err = errors[0]
            where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
            raise TaskError(f"{source}: field '{where}': {err.message}")
        from sciboard_gym import actions

        for index, text in enumerate(data["oracle"]):
            try:
                actions.parse(text)
            except actions.ActionError as err:
                raise TaskError(f"{source}: field 'oracle/{index}': {err}") from None
        if not actions.parse(data["oracle"][-1]).terminal:
            raise TaskError(f"{source}: field 'oracle': the last action must be done(), fail() or answer(...)")
        if len(data["oracle"]) > data["max_steps"]:
            raise TaskError(f"{source}: field 'oracle': {len(data['oracle'])} actions exceed max_steps "
                            f"({data['max_steps']})")
        return cls(
            id=data["id"], app=data["app"], instruction=data["instruction"], max_steps=data["max_steps"],
            setup=tuple(Step(s["step"], dict(s.get("args", {}))) for s in data.get("setup", [])),
            evaluate=tuple(Step(c["check"], dict(c.get("args", {}))) for c in data["evaluate"]),
            oracle=tuple(data["oracle"]), difficulty=data.get("difficulty", "medium"),
            tags=tuple(data.get("tags", [])), source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "app": self.app, "instruction": self.instruction, "max_steps": self.max_steps,
            "difficulty": self.difficulty, "tags": list(self.tags),
            "setup": [{"step": s.name, "args": s.args} for s in self.setup],
            "evaluate": [{"check": c.name, "args": c.args} for c in self.evaluate],
            "oracle": list(self.oracle),
        }


def load_task_file(path: str | Path) -> Task:
    """Load and validate one task file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TaskError(f"{path}: cannot read: {err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise TaskError(f"{path}: not valid JSON: {err}") from None
    task = Task.from_dict(data, source=str(path))
    expected = f"{path.parent.name}/{path.stem}"
    if task.id != expected:
        raise TaskError(f"{path}: field 'id': {task.id!r} must match the file's place ({expected!r})")
    if task.app != path.parent.name:
        raise TaskError(f"{path}: field 'app': {task.app!r} does not match the folder {path.parent.name!r}")
    return task


@cache
def load_app_tasks(app: str, directory: str | None = None) -> tuple[Task, ...]:
    """All tasks of ``app`` (from ``directory`` or the package's task folder), sorted by id."""
    folder = Path(directory) if directory else TASKS_DIR / app
    return tuple(sorted((load_task_file(p) for p in folder.glob("*.json")), key=lambda t: t.id))


def get_task(task_id: str) -> Task:
    """The packaged task with this id (``<app>/<name>``)."""
    app, _, _ = task_id.partition("/")
    for task in load_app_tasks(app) if (TASKS_DIR / app).is_dir() else ():
        if task.id == task_id:
            return task
    raise TaskError(f"unknown task {task_id!r}")


def task_apps() -> list[str]:
    """Apps that have a task folder."""
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
