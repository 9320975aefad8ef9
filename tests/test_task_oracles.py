"""Every packaged task, on the real app: its oracle succeeds and an immediate done() fails."""

from __future__ import annotations

import pytest

from sciboard_gym.apps import APPS
from sciboard_gym.tasks import load_app_tasks, task_apps

pytestmark = pytest.mark.desktop

# Each app's episodes run on one worker (pytest -n 2 --dist loadgroup), reusing one live desktop.
CASES = [pytest.param(t.app, t.id, id=t.id, marks=pytest.mark.xdist_group(t.app))
         for app in task_apps() if app in APPS for t in load_app_tasks(app)]


@pytest.mark.parametrize("app,task_id", CASES)
def test_oracle_succeeds(live_env, app, task_id):
    env = live_env(app)
    _, info = env.reset(options={"task": task_id})
    task = env.task
    reward, terminated, truncated = 0.0, False, False
    for action in task.oracle:
        _, reward, terminated, truncated, info = env.step(action)
        assert info["action_error"] is None, f"oracle action {action!r} rejected: {info['action_error']}"
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert reward == 1.0, f"oracle failed: {info.get('checks')}"


@pytest.mark.parametrize("app,task_id", CASES)
def test_immediate_done_fails(live_env, app, task_id):
    env = live_env(app)
    env.reset(options={"task": task_id})
    _, reward, terminated, _, info = env.step("done()")
    assert terminated
    assert reward == 0.0, f"doing nothing already passes: {info['checks']}"
    assert info["success"] is False
