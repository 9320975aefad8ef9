"""SciBoardEnv on the real KAlgebra desktop: API, spaces, errors, isolation and clean shutdown."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_guest import processes
from sciboard_gym.env import SciBoardEnv

pytestmark = pytest.mark.desktop
TASK = "kalgebra/assign-sum"


def tagged(env) -> list[int]:
    return processes.tagged_pids(env.unwrapped.provider.desktop_id)


def test_make_reset_step_spaces():
    env = gym.make("SciBoard-KAlgebra-v0", task=TASK, render_mode="rgb_array")
    try:
        obs, info = env.reset(seed=0)
        assert obs["screenshot"].shape == (1080, 1920, 3) and obs["screenshot"].dtype == np.uint8
        assert obs in env.observation_space
        assert info["task_id"] == TASK and "variable named total" in obs["instruction"]
        assert obs["screenshot"].std() > 5, "the screenshot should show the app, not a blank screen"
        obs, reward, terminated, truncated, info = env.step('type("total:=1")')
        assert (reward, terminated, truncated, info["action_error"]) == (0.0, False, False, None)
        assert np.array_equal(env.render(), obs["screenshot"])
    finally:
        env.close()


def test_module_qualified_id_and_kwargs():
    env = gym.make("sciboard_gym:SciBoard-KAlgebra-v0", task=TASK, observation=("screenshot", "a11y_tree"),
                   max_steps=2)
    try:
        obs, _ = env.reset(seed=0)
        assert "[page tab] 'Calculator'" in obs["a11y_tree"]
        assert obs in env.observation_space
        env.step("move(10, 10)")
        _, reward, terminated, truncated, info = env.step("move(20, 20)")
        assert truncated and not terminated and reward == 0.0 and info["success"] is False
        assert info["checks"][0]["detail"] == "variable 'total' is not defined"
    finally:
        env.close()


def test_bad_actions_never_raise_and_count_as_steps():
    env = SciBoardEnv(app="kalgebra", task=TASK, max_steps=20)
    try:
        env.reset(seed=0)
        for bad in ["", "click(", "rm -rf /", "click(99999, 5)", 'key("a b")', None, 42]:
            _obs, reward, terminated, _truncated, info = env.step(bad)
            assert info["action_error"], bad
            assert reward == 0.0 and not terminated
        assert info["step"] == 7  # every malformed action counted
        _, reward, terminated, _truncated, info = env.step("done()")
        assert terminated and reward == 0.0
        with pytest.raises(RuntimeError, match="reset"):
            env.step("done()")
    finally:
        env.close()


def test_answer_action_is_evaluated():
    env = SciBoardEnv(app="kalgebra", task="kalgebra/answer-gcd")
    try:
        env.reset(seed=0)
        *work, final = env.task.oracle  # the drawn variant's solution, ending in answer("N")
        expected = final.removeprefix('answer("').removesuffix('")')
        _, reward, terminated, _, info = env.step(f'answer("{expected}")')
        assert terminated and reward == 0.0 and info["answer"] == expected  # the answer alone: no evidence
        env.reset(seed=0)
        for action in work:
            env.step(action)
        _, reward, _, _, info = env.step(f'answer(" {expected} ")')
        assert reward == 1.0, info["checks"]
    finally:
        env.close()


def test_check_env_passes():
    env = gym.make("SciBoard-KAlgebra-v0", task=TASK, render_mode="rgb_array")
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


def test_reset_gives_a_fresh_app_and_home():
    env = SciBoardEnv(app="kalgebra", task=TASK)
    try:
        env.reset(seed=0)
        env.step('type("total:=100")')
        env.step('key("Return")')
        assert env.provider.client.probe("variables")["total"] == "100"
        env.reset(seed=0)
        assert "total" not in env.provider.client.probe("variables")
    finally:
        env.close()


def test_two_envs_side_by_side_do_not_interfere():
    first, second = SciBoardEnv(app="kalgebra", task=TASK), SciBoardEnv(app="kalgebra", task=TASK)
    try:
        first.reset(seed=0)
        second.reset(seed=0)
        # Each desktop has its own X server (in its own sandbox both may be display :0) and folder.
        assert first.provider.client.unix_socket != second.provider.client.unix_socket
        assert set(tagged(first)).isdisjoint(tagged(second))
        first.step('type("total:=17+25+58")')
        first.step('key("Return")')
        _, reward_second, *_ = second.step("done()")
        _, reward_first, *_ = first.step("done()")
        assert (reward_first, reward_second) == (1.0, 0.0)
    finally:
        first.close()
        second.close()


def test_close_leaves_no_process_behind():
    env = SciBoardEnv(app="kalgebra", task=TASK)
    env.reset(seed=0)
    running = tagged(env)
    names = {Path(f"/proc/{p}/comm").read_text().strip() for p in running}
    assert {"Xvfb", "openbox", "dbus-daemon", "kalgebra"} <= names, names
    env.close()
    assert tagged(env) == []
    env.close()  # idempotent


def test_dead_app_truncates_with_error_then_reset_recovers():
    env = SciBoardEnv(app="kalgebra", task=TASK)
    try:
        env.reset(seed=0)
        app_pid = next(p for p in tagged(env) if Path(f"/proc/{p}/comm").read_text().strip() == "kalgebra")
        os.kill(app_pid, signal.SIGKILL)
        _, reward, terminated, truncated, info = env.step('type("total:=100")')
        assert truncated and not terminated and reward == 0.0
        assert "app" in info["error"] and "died" in info["error"]
        _obs, info = env.reset(seed=0)
        _, reward, *_ = env.step('type("total:=17+25+58")')
        env.step('key("Return")')
        assert env.step("done()")[1] == 1.0
    finally:
        env.close()


def test_set_of_marks_observation():
    env = SciBoardEnv(app="kalgebra", task=TASK, observation=("screenshot", "som"))
    try:
        obs, _ = env.reset(seed=0)
        assert obs in env.observation_space
        assert "page tab 'Calculator'" in obs["som_marks"]
        line = next(l for l in obs["som_marks"].splitlines() if "page tab 'Calculator'" in l)
        x, y, w, h = (int(v) for v in line.rsplit("@(", 1)[1].rstrip(")").split(","))
        assert not np.array_equal(obs["som_screenshot"][y:y + h, x:x + w], obs["screenshot"][y:y + h, x:x + w])
        assert np.array_equal(obs["som_screenshot"][500:600, 500:600], obs["screenshot"][500:600, 500:600])
    finally:
        env.close()


def test_desktop_does_not_outlive_a_killed_env_process(tmp_path):
    """An env process that dies without close() (killed, crashed) takes its desktop with it."""
    import subprocess
    import sys
    import time

    script = ("import sys; from sciboard_gym.env import SciBoardEnv; "
              "env = SciBoardEnv(app='kalgebra', task='kalgebra/assign-sum'); env.reset(seed=0); "
              "print(env.provider.desktop_id, flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    desktop_id = child.stdout.readline().strip()
    assert processes.tagged_pids(desktop_id)
    child.kill()
    child.wait()
    deadline = time.monotonic() + 30
    while processes.tagged_pids(desktop_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes.tagged_pids(desktop_id) == []
