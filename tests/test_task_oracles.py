"""Every packaged task, on the real app: its oracle succeeds (on several seeds when it has
parameters), an immediate done() fails, an answer task's final answer alone fails, and the
declared alternatives pass or fail as declared.

Playing every alternative costs a reset and a few actions each, so by default the suite plays a
deterministic sample that exercises every check type at least once as a correct solution and
once as a near miss; ``SCIBOARD_ALTERNATIVES=all`` plays every declared alternative."""

from __future__ import annotations

import os

import pytest

from sciboard_gym import actions
from sciboard_gym.apps import APPS
from sciboard_gym.tasks import Task, load_app_tasks, task_apps

pytestmark = pytest.mark.desktop

#: Seeds each parameterised task's oracle runs on (seed 0 also runs done() and the alternatives).
ORACLE_SEEDS = (0, 1, 2)

TASKS = [t for app in task_apps() if app in APPS for t in load_app_tasks(app)]


def _cases(select, variants=lambda task: [0]):
    # Each app's episodes run on one worker (pytest -n 2 --dist loadgroup), reusing one live desktop.
    return [pytest.param(t.app, t.id, extra, id=f"{t.id}-{extra}" if extra != 0 else t.id,
                         marks=pytest.mark.xdist_group(t.app))
            for t in TASKS if select(t) for extra in variants(t)]


def _sampled_alternatives(tasks: list[Task]) -> set[tuple[str, int]]:
    """(task id, index) of the alternatives to play: all of them with ``SCIBOARD_ALTERNATIVES=all``,
    otherwise a small deterministic set in which every check type is exercised at least once by a correct
    alternative (which must pass all its task's checks) and once by a near miss (for the checks it names in
    ``fails``, or all its task's checks): greedily, the alternative that covers most new pairs first."""
    offers = {}
    for task in tasks:
        kinds = {(task.app, c.name) for c in task.evaluate}
        for index, alternative in enumerate(task.alternatives):
            names = kinds if alternative.expect == "pass" or not alternative.fails else \
                {(task.app, name) for name in alternative.fails}
            offers[(task.id, index)] = {(kind, alternative.expect) for kind in names}
    if os.environ.get("SCIBOARD_ALTERNATIVES", "") == "all":
        return set(offers)
    chosen: set[tuple[str, int]] = set()
    missing = set().union(*offers.values()) if offers else set()
    while missing:
        best = max(sorted(offers), key=lambda key: len(offers[key] & missing))
        chosen.add(best)
        missing -= offers[best]
    return chosen


ALTERNATIVES = _sampled_alternatives(TASKS)


def _is_answer_task(task: Task) -> bool:
    return isinstance(actions.parse(task.oracle[-1]), actions.Answer)


def _run(env, app: str, task_id: str, seed: int, sequence=None):
    """Reset ``task_id`` with ``seed``, play ``sequence`` (default: the variant's oracle); (reward, info, task)."""
    _, info = env.reset(seed=seed, options={"task": task_id})
    task = env.task
    assert task.values == info["parameters"]
    reward, terminated, truncated = 0.0, False, False
    for action in task.oracle if sequence is None else sequence(task):
        _, reward, terminated, truncated, info = env.step(action)
        assert info["action_error"] is None, f"action {action!r} rejected: {info['action_error']}"
        if terminated or truncated:
            break
    assert terminated and not truncated
    return reward, info, task


@pytest.mark.parametrize("app,task_id,seed", _cases(lambda t: True, lambda t: ORACLE_SEEDS if t.parameters else [0]))
def test_oracle_succeeds(live_env, app, task_id, seed):
    reward, info, task = _run(live_env(app), app, task_id, seed)
    assert reward == 1.0, f"oracle failed for {task.values}: {info.get('checks')}"


@pytest.mark.parametrize("app,task_id,seed", _cases(lambda t: True))
def test_immediate_done_fails(live_env, app, task_id, seed):
    reward, info, _ = _run(live_env(app), app, task_id, seed, lambda task: ["done()"])
    assert reward == 0.0, f"doing nothing already passes: {info['checks']}"
    assert info["success"] is False


@pytest.mark.parametrize("app,task_id,seed", _cases(_is_answer_task))
def test_final_answer_alone_fails(live_env, app, task_id, seed):
    reward, info, _ = _run(live_env(app), app, task_id, seed, lambda task: [task.oracle[-1]])
    assert reward == 0.0, f"the answer alone passes without using the app: {info['checks']}"


@pytest.mark.parametrize("app,task_id,index", _cases(lambda t: bool(t.alternatives), lambda t: [
    i for i in range(len(t.alternatives)) if (t.id, i) in ALTERNATIVES]))
def test_alternative_behaves_as_declared(live_env, app, task_id, index):
    reward, info, task = _run(live_env(app), app, task_id, 0, lambda task: task.alternatives[index].actions)
    alternative = task.alternatives[index]
    want = 1.0 if alternative.expect == "pass" else 0.0
    assert reward == want, f"{alternative.expect} expected ({alternative.note}): {info.get('checks')}"
    failed = {c["check"] for c in info["checks"] if not c["passed"]}
    assert set(alternative.fails) <= failed, f"{alternative.note}: expected {alternative.fails} to fail: {info['checks']}"
