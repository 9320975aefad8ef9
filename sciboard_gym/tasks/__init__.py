"""Tasks as data: the :class:`Task` dataclass, its JSON schema and the loader.

A task file is one JSON object (see ``schema.json`` and docs/tasks.md). Task
files name setup steps and evaluator checks with arguments; they never contain
code. Files live in ``sciboard_gym/tasks/<app>/*.json``.

A task may declare ``parameters`` that a seed draws (:meth:`Task.variant`): integer
ranges, choices (numbers, names, objects with fields) and formulas over earlier
parameters (arithmetic in :mod:`sciboard_gym.expressions`, never code). Its texts refer
to them as ``{name}`` or ``{name.field}``.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from sciboard_gym import expressions

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
class Alternative:
    """Another action sequence for the task and whether it must pass (a correct solution) or fail
    (a near miss); ``fails`` names the checks a near miss must fail (empty: any check may)."""

    actions: tuple[str, ...]
    expect: str
    note: str = ""
    fails: tuple[str, ...] = ()


#: How many seeds the loader draws to check that every variant of a task is well-formed.
VALIDATION_SEEDS = 8
_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}")


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
    parameters: dict[str, Any] = field(default_factory=dict)
    alternatives: tuple[Alternative, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)

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
        task = cls(
            id=data["id"], app=data["app"], instruction=data["instruction"], max_steps=data["max_steps"],
            setup=tuple(Step(s["step"], dict(s.get("args", {}))) for s in data.get("setup", [])),
            evaluate=tuple(Step(c["check"], dict(c.get("args", {}))) for c in data["evaluate"]),
            oracle=tuple(data["oracle"]), difficulty=data.get("difficulty", "medium"),
            tags=tuple(data.get("tags", [])), source=source, parameters=dict(data.get("parameters", {})),
            alternatives=tuple(Alternative(tuple(a["actions"]), a["expect"], a.get("note", ""),
                                           tuple(a.get("fails", []))) for a in data.get("alternatives", [])),
        )
        task._check_parameters()
        task._check_alternatives()
        for seed in range(VALIDATION_SEEDS if task.parameters else 1):
            task.variant(seed)._check_actions()
        return task

    def _check_parameters(self) -> None:
        used = set()
        for text in _strings(self._templates()):
            used |= {match.group(1) for match in _REFERENCE.finditer(text)}
        formulas = " ".join(str(p.get("formula", "")) for p in self.parameters.values())
        for name, spec in self.parameters.items():
            if "int" in spec and spec["int"][0] > spec["int"][1]:
                raise TaskError(f"{self.source}: field 'parameters/{name}': the range {spec['int']} is empty")
            for other in spec.get("differs_from", []):
                if other not in self.parameters or list(self.parameters).index(other) >= list(self.parameters).index(name):
                    raise TaskError(f"{self.source}: field 'parameters/{name}': differs_from names {other!r}, "
                                    "which is not an earlier parameter")
            if name not in used and not re.search(rf"\b{name}\b", formulas):
                raise TaskError(f"{self.source}: field 'parameters/{name}': the parameter is never used")

    def _check_alternatives(self) -> None:
        checks = {c.name for c in self.evaluate}
        for index, alternative in enumerate(self.alternatives):
            if alternative.fails and alternative.expect != "fail":
                raise TaskError(f"{self.source}: field 'alternatives/{index}/fails': only a near miss "
                                "(\"expect\": \"fail\") names the checks it fails")
            for name in alternative.fails:
                if name not in checks:
                    raise TaskError(f"{self.source}: field 'alternatives/{index}/fails': {name!r} is not one of "
                                    f"the task's checks ({', '.join(sorted(checks))})")

    def _check_actions(self) -> None:
        from sciboard_gym import actions

        for where, sequence in [("oracle", self.oracle)] + [(f"alternatives/{i}/actions", a.actions)
                                                           for i, a in enumerate(self.alternatives)]:
            for index, text in enumerate(sequence):
                try:
                    actions.parse(text)
                except actions.ActionError as err:
                    raise TaskError(f"{self.source}: field '{where}/{index}': {err}") from None
            if not actions.parse(sequence[-1]).terminal:
                raise TaskError(f"{self.source}: field '{where}': the last action must be done(), fail() or answer(...)")
            if len(sequence) > self.max_steps:
                raise TaskError(f"{self.source}: field '{where}': {len(sequence)} actions exceed max_steps "
                                f"({self.max_steps})")

    def _templates(self) -> dict[str, Any]:
        """The parts of the task that may refer to parameters."""
        return {
            "instruction": self.instruction,
            "setup": [[s.name, s.args] for s in self.setup],
            "evaluate": [[c.name, c.args] for c in self.evaluate],
            "oracle": list(self.oracle),
            "alternatives": [list(a.actions) for a in self.alternatives],
        }

    def draw(self, seed: int) -> dict[str, Any]:
        """The parameter values ``seed`` picks (the same seed always picks the same values)."""
        rng = random.Random(seed)
        values: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            for _ in range(100):
                if "int" in spec:
                    value: Any = rng.randint(spec["int"][0], spec["int"][1])
                elif "choices" in spec:
                    value = rng.choice(spec["choices"])
                else:
                    value = _formula(self, name, spec["formula"], values)
                if all(value != values[other] for other in spec.get("differs_from", [])):
                    break
            else:
                raise TaskError(f"{self.source}: field 'parameters/{name}': no value differs from "
                                f"{spec['differs_from']}")
            values[name] = value
        return values

    def variant(self, seed: int) -> Task:
        """The concrete task for ``seed``: parameters drawn and substituted everywhere; ``values``
        holds them. A task without parameters, or a variant already drawn, is its own only variant."""
        if not self.parameters or self.values:
            return self
        values = self.draw(seed)
        filled = _substitute(self._templates(), values, self.source)
        return replace(
            self, instruction=filled["instruction"],
            setup=tuple(Step(name, args) for name, args in filled["setup"]),
            evaluate=tuple(Step(name, args) for name, args in filled["evaluate"]),
            oracle=tuple(filled["oracle"]),
            alternatives=tuple(replace(a, actions=tuple(acts)) for a, acts in zip(self.alternatives,
                                                                                  filled["alternatives"])),
            values=values,
        )

    def variant_count(self) -> int:
        """How many distinct parameter draws the task has (formulas add none)."""
        count = 1
        for spec in self.parameters.values():
            if "int" in spec:
                count *= spec["int"][1] - spec["int"][0] + 1
            elif "choices" in spec:
                count *= len({json.dumps(c, sort_keys=True) for c in spec["choices"]})
        return count

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id, "app": self.app, "instruction": self.instruction, "max_steps": self.max_steps,
            "difficulty": self.difficulty, "tags": list(self.tags),
            "setup": [{"step": s.name, "args": s.args} for s in self.setup],
            "evaluate": [{"check": c.name, "args": c.args} for c in self.evaluate],
            "oracle": list(self.oracle),
        }
        if self.parameters and not self.values:
            data["parameters"] = self.parameters
        if self.alternatives:
            data["alternatives"] = [{"actions": list(a.actions), "expect": a.expect, "note": a.note}
                                    | ({"fails": list(a.fails)} if a.fails else {}) for a in self.alternatives]
        return data


def _formula(task: Task, name: str, formula: str, values: dict[str, Any]) -> int | float:
    numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    try:
        result = expressions.value_of(formula, numbers)
    except expressions.MathError as err:
        raise TaskError(f"{task.source}: field 'parameters/{name}': formula {formula!r}: {err}") from None
    if not math.isfinite(result):
        raise TaskError(f"{task.source}: field 'parameters/{name}': formula {formula!r} is not finite")
    return int(result) if float(result).is_integer() and abs(result) < 2**53 else result


def _text(value: Any) -> str:
    """A parameter value as it appears inside a text."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.12g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _lookup(values: dict[str, Any], name: str, key: str | None, source: str) -> Any:
    value = values[name]
    if key is None:
        return value
    if not isinstance(value, dict) or key not in value:
        raise TaskError(f"{source}: field 'parameters/{name}': the value {value!r} has no field {key!r}")
    return value[key]


def _substitute(item: Any, values: dict[str, Any], source: str) -> Any:
    """Replace ``{name}``/``{name.field}`` of declared parameters in every string of ``item``; a string
    that is exactly one reference becomes the value itself (a number stays a number)."""
    if isinstance(item, str):
        whole = _REFERENCE.fullmatch(item)
        if whole and whole.group(1) in values:
            return _lookup(values, whole.group(1), whole.group(2), source)
        return _REFERENCE.sub(lambda m: _text(_lookup(values, m.group(1), m.group(2), source))
                              if m.group(1) in values else m.group(0), item)
    if isinstance(item, list):
        return [_substitute(x, values, source) for x in item]
    if isinstance(item, dict):
        return {k: _substitute(v, values, source) for k, v in item.items()}
    return item


def _strings(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, list):
        return [s for x in item for s in _strings(x)]
    if isinstance(item, dict):
        return [s for x in item.values() for s in _strings(x)]
    return []


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


def alternative_coverage(tasks: list[Task] | tuple[Task, ...]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per check type (``(app, check)``): how many correct alternatives and near misses exercise it.

    A correct alternative must pass every check of its task, so it counts for each check type the
    task uses; a near miss counts for the checks it names in ``fails`` (all the task's checks when it
    names none). Every check type the tasks use appears, with zeros when nothing exercises it.
    """
    counts: dict[tuple[str, str], list[int]] = {}
    for task in tasks:
        kinds = {c.name for c in task.evaluate}
        for kind in kinds:
            counts.setdefault((task.app, kind), [0, 0])
        for alternative in task.alternatives:
            if alternative.expect == "pass":
                for kind in kinds:
                    counts[(task.app, kind)][0] += 1
            else:
                for kind in set(alternative.fails) or kinds:
                    counts[(task.app, kind)][1] += 1
    return {key: (good, bad) for key, (good, bad) in sorted(counts.items())}


def task_apps() -> list[str]:
    """Apps that have a task folder."""
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
