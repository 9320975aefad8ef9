"""Task files: schema validation, clear errors naming the file and the field, packaged tasks valid."""

from __future__ import annotations

import json

import pytest

from sciboard_gym.apps import APPS, get_adapter
from sciboard_gym.env import CHARSET, task_split
from sciboard_gym.tasks import Task, TaskError, alternative_coverage, load_app_tasks, load_task_file, task_apps

GOOD = {
    "id": "kalgebra/example", "app": "kalgebra", "instruction": "Store 2 plus 2 in a variable named four.",
    "max_steps": 5, "evaluate": [{"check": "variable_equals", "args": {"name": "four", "value": 4}}],
    "oracle": ['type("four:=2+2")', 'key("Return")', "done()"],
}


def write(tmp_path, data, name="example"):
    folder = tmp_path / "kalgebra"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_good_task_loads(tmp_path):
    task = load_task_file(write(tmp_path, GOOD))
    assert task.id == "kalgebra/example" and task.evaluate[0].args == {"name": "four", "value": 4}
    assert Task.from_dict(task.to_dict()) == Task.from_dict(GOOD)
    get_adapter("kalgebra").validate_task(task)


@pytest.mark.parametrize("change,field", [
    ({"max_steps": "ten"}, "max_steps"),
    ({"instruction": "short"}, "instruction"),
    ({"evaluate": []}, "evaluate"),
    ({"evaluate": [{"check": "variable_equals", "args": {"name": "x"}, "code": "import os"}]}, "evaluate/0"),
    ({"oracle": ["click(1, 2)", "explode()"]}, "oracle/1"),
    ({"oracle": ['type("a")']}, "oracle"),
    ({"difficulty": "impossible"}, "difficulty"),
    ({"lambda": "x: x"}, "(top level)"),
    ({"id": "Kalgebra/Bad Id"}, "id"),
])
def test_broken_task_names_file_and_field(tmp_path, change, field):
    path = write(tmp_path, {**GOOD, **change})
    with pytest.raises(TaskError) as err:
        load_task_file(path)
    assert str(path) in str(err.value)
    assert f"field '{field}'" in str(err.value)


def test_missing_field_and_bad_json(tmp_path):
    data = dict(GOOD)
    del data["oracle"]
    with pytest.raises(TaskError, match="'oracle' is a required property"):
        load_task_file(write(tmp_path, data))
    with pytest.raises(TaskError, match="not valid JSON"):
        load_task_file(write(tmp_path, "{not json", name="broken"))


def test_id_must_match_file_place(tmp_path):
    with pytest.raises(TaskError, match="must match the file's place"):
        load_task_file(write(tmp_path, GOOD, name="other"))


def test_unknown_check_or_setup_step_is_rejected(tmp_path):
    adapter = get_adapter("kalgebra")
    task = load_task_file(write(tmp_path, {**GOOD, "evaluate": [{"check": "no_such_check"}]}))
    with pytest.raises(TaskError, match="unknown check 'no_such_check'"):
        adapter.validate_task(task)
    task = load_task_file(write(tmp_path, {**GOOD, "setup": [{"step": "calculate", "args": {"expr": "1"}}]}))
    with pytest.raises(TaskError, match="unknown \\['expr'\\], missing \\['expression'\\]"):
        adapter.validate_task(task)


@pytest.mark.parametrize("app", [a for a in task_apps() if a in APPS])
def test_packaged_tasks_are_valid(app):
    tasks = load_app_tasks(app)
    adapter = get_adapter(app)
    for task in tasks:
        adapter.validate_task(task)
        assert set(task.instruction) <= CHARSET, f"{task.id}: instruction has characters outside the Text space"
    assert len({t.instruction for t in tasks}) == len(tasks), "duplicate instructions"


#: Splits published with the benchmark: a change to ``task_split`` that moves any of them breaks comparability.
PINNED_SPLITS = {
    "kalgebra/answer-e-to-pi": "test", "kalgebra/assign-product": "test", "kalgebra/assign-sum": "train",
    "kalgebra/answer-gcd": "train", "pymol/answer-peptide-sequence": "test", "pymol/add-hydrogens": "train",
    "grass/export-geotiff": "test", "grass/aspect-map": "train",
}


def test_split_is_pinned_and_covers_both():
    assert {i: task_split(i) for i in PINNED_SPLITS} == PINNED_SPLITS
    assert {task_split(t.id) for t in load_app_tasks("kalgebra")} == {"train", "test"}


ALL_TASKS = [t for app in task_apps() if app in APPS for t in load_app_tasks(app)]
ANSWER_CHECKS = {"answer_number", "answer_text", "answer_one_of"}


def test_suite_offers_many_instances():
    parameterised = [t for t in ALL_TASKS if t.parameters]
    assert len(parameterised) >= 60
    assert sum(t.variant_count() for t in ALL_TASKS) >= 5000


@pytest.mark.parametrize("task", [t for t in ALL_TASKS if t.parameters], ids=lambda t: t.id)
def test_variants_are_valid_and_reproducible(task):
    adapter = get_adapter(task.app)
    seen = set()
    for seed in range(5):
        variant = task.variant(seed)
        assert variant == task.variant(seed)
        adapter.validate_task(variant)
        assert set(variant.instruction) <= CHARSET
        assert "{" not in variant.instruction or task.app == "texstudio"
        seen.add(json.dumps(variant.values, sort_keys=True))
    assert len(seen) > 1, "five seeds drew the same instance"


@pytest.mark.parametrize("task", [t for t in ALL_TASKS if t.oracle[-1].startswith("answer(")], ids=lambda t: t.id)
def test_answer_tasks_also_need_evidence_in_the_app(task):
    """An answer task checks something in the app's state besides the answer (run live in test_task_oracles)."""
    evidence = [c.name for c in task.evaluate if c.name not in ANSWER_CHECKS and not c.name.startswith("answer_")]
    assert evidence, f"{task.id} can be solved by its final answer alone"


def test_every_check_type_has_two_correct_alternatives_and_two_near_misses():
    """Counted from the task files: a correct alternative counts for every check of its task, a near
    miss for the checks it names in ``fails`` (tests/test_task_oracles.py plays them and checks that
    those checks really fail)."""
    coverage = alternative_coverage(ALL_TASKS)
    gaps = sorted((kind, counts) for kind, counts in coverage.items() if counts[0] < 2 or counts[1] < 2)
    assert not gaps, f"check types short of 2 correct alternatives and 2 near misses: {gaps}"
    assert len(coverage) >= 100


def test_near_misses_name_the_checks_they_fail():
    """Every near miss says which check must catch it."""
    vague = [(t.id, i) for t in ALL_TASKS for i, a in enumerate(t.alternatives) if a.expect == "fail" and not a.fails]
    assert not vague, vague
