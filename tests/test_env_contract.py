"""SciBoardEnv's contract on a FakeProvider (no desktop, milliseconds): spaces, episodes, truncation,
faults, broken checks, malformed actions, task selection, check_env, and run_episode on top."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from fakes import FakeProvider
from gymnasium.utils.env_checker import check_env

import sciboard_gym
from sciboard_gym.apps import get_adapter
from sciboard_gym.env import SciBoardEnv
from sciboard_gym.episode import run_episode
from sciboard_gym.guest_client import GuestError
from sciboard_gym.tasks import TASKS_DIR, Task, TaskError, get_task, load_app_tasks
from sciboard_gym.trajectory import TrajectoryRecorder

TASK = "kalgebra/assign-sum"  # one check: variable_equals(total, 100), read through the "variables" probe
SOLVED = {"variables": {"total": "100"}}


def make(task: str | None = TASK, **kwargs: Any) -> tuple[SciBoardEnv, FakeProvider]:
    provider = FakeProvider(probes=kwargs.pop("probes", SOLVED))
    return SciBoardEnv(app="kalgebra", task=task, provider=provider, screen_size=(64, 48), **kwargs), provider


def test_a_step_says_whether_the_screen_settled():
    env, provider = make()
    env.reset(seed=0)
    assert env.step("click(10, 20)")[4]["settled"] is True
    provider.client.settles = False  # e.g. a sky whose time runs fast: still changing at the settle's timeout
    assert env.step("key('a')")[4]["settled"] is False
    assert env.step("wait(0.01)")[4]["settled"] is None


def test_reset_step_close_and_spaces():
    env, provider = make(observation=("screenshot", "a11y_tree", "som"), render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and obs["screenshot"].shape == (48, 64, 3)
    assert info["task_id"] == TASK and info["max_steps"] == 6 and "total" in obs["instruction"]
    assert "[push button] 'OK'" in obs["a11y_tree"] and "push button 'OK'" in obs["som_marks"]
    assert "click(1, 2)" in env.action_space and isinstance(env.action_space, gym.spaces.Text)
    obs, reward, terminated, truncated, info = env.step("click(10, 20)")
    assert (reward, terminated, truncated, info["action_error"], info["step"]) == (0.0, False, False, None, 1)
    assert provider.client.inputs == [{"name": "click", "x": 10, "y": 20}]
    assert obs in env.observation_space and np.array_equal(env.render(), obs["screenshot"])
    obs, reward, terminated, truncated, info = env.step("done()")
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)
    assert info["checks"] == [{"check": "variable_equals", "passed": True, "detail": "total = 100, expected 100"}]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("done()")
    env.close()
    assert provider.guest is None and provider.closes == 1


def test_check_env_passes_through_gym_make_with_a_provider_path():
    env = gym.make("SciBoard-KAlgebra-v0", task=TASK, provider="fakes:FakeProvider", screen_size=(64, 48),
                   observation=("screenshot", "a11y_tree", "som"), render_mode="rgb_array")
    try:
        assert isinstance(env.unwrapped.provider, FakeProvider)
        check_env(env.unwrapped)
    finally:
        env.close()


def test_unknown_or_wrong_provider_is_a_clear_error():
    from sciboard_gym.providers import ProviderError

    with pytest.raises(ProviderError, match="unknown provider 'nowhere'"):
        SciBoardEnv(app="kalgebra", task=TASK, provider="nowhere")
    with pytest.raises(ProviderError, match="not a sciboard_gym.providers.Provider"):
        SciBoardEnv(app="kalgebra", task=TASK, provider="fakes:FakeGuest")


def test_truncation_at_max_steps_evaluates_the_state():
    env, _ = make(max_steps=3, probes={"variables": {}})
    env.reset(seed=0)
    assert env.step("move(1, 1)")[2:4] == (False, False)
    assert env.step("move(2, 2)")[2:4] == (False, False)
    _, reward, terminated, truncated, info = env.step("move(3, 3)")
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, True, False)
    assert info["checks"][0]["detail"] == "variable 'total' is not defined" and "error" not in info
    env.close()


MALFORMED = ["", "click(", "rm -rf /", "click(99999, 5)", 'key("a b")', None, 42, ["click(1, 1)"],
             "__import__('os').system('touch CANARY')", "click(__import__('os').getpid(), 1)",
             "exec('1')", "done(); fail()", "x" * 5000, 'type("a", "b")', "wait(1e9)"]


def test_malformed_actions_never_raise_run_nothing_and_count(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env, provider = make(max_steps=len(MALFORMED) + 1)
    env.reset(seed=0)
    for index, bad in enumerate(MALFORMED, start=1):
        obs, reward, terminated, truncated, info = env.step(bad)
        assert info["action_error"] and info["step"] == index, (bad, info)
        assert (reward, terminated, truncated) == (0.0, False, False) and obs in env.observation_space
    assert provider.client.inputs == [] and not (tmp_path / "CANARY").exists()
    _, _, terminated, _, info = env.step('type("__import__(\'os\').system(\'touch CANARY\')")')
    assert info["step"] == len(MALFORMED) + 1 and info["action_error"] is None and info["success"] is True
    assert provider.client.inputs == [{"name": "type", "text": "__import__('os').system('touch CANARY')"}]
    assert not (tmp_path / "CANARY").exists()
    env.close()


def test_dead_desktop_mid_step_truncates_with_error_and_next_reset_recovers():
    env, provider = make()
    env.reset(seed=0)
    env.step("click(1, 1)")
    provider.kill("the X server")
    obs, reward, terminated, truncated, info = env.step("click(2, 2)")
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, True, False)
    assert info["error"] == "the X server died" and obs in env.observation_space
    with pytest.raises(RuntimeError, match="reset"):
        env.step("done()")
    obs, info = env.reset(seed=1)
    assert provider.starts == 2 and provider.alive() is None and info["task_id"] == TASK
    assert env.step("done()")[1] == 1.0
    env.close()


def test_dead_desktop_at_the_terminal_step_is_a_fault_not_a_verdict():
    env, provider = make()
    env.reset(seed=0)
    provider.kill("the app")
    _, reward, terminated, truncated, info = env.step("done()")
    assert (reward, terminated, truncated) == (0.0, False, True) and info["error"] == "the app died"
    env.close()


def test_a_check_that_raises_ends_the_episode_with_the_error_and_the_env_stays_usable(monkeypatch):
    adapter = get_adapter("kalgebra")

    def broken(ctx: Any, name: str) -> tuple[bool, str]:
        return {}[name], "unreachable"

    monkeypatch.setitem(adapter.checks, "broken_check", broken)
    task = get_task(TASK).to_dict()
    task["evaluate"].append({"check": "broken_check", "args": {"name": "total"}})
    env, _ = make(task=None)
    env.reset(seed=0, options={"task": Task.from_dict(task)})
    _, reward, terminated, truncated, info = env.step("done()")
    assert (reward, terminated, truncated, info["success"]) == (0.0, True, False, False)
    assert info["checks"][0]["passed"] and not info["checks"][1]["passed"]
    assert info["checks"][1]["raised"] and info["checks"][1]["detail"] == "KeyError: 'total'"
    assert info["error"] == "check 'broken_check' raised KeyError: 'total'"
    env.reset(seed=0, options={"task": TASK})
    assert env.step("done()")[1] == 1.0
    env.close()


def test_a_guest_fault_in_a_probe_is_a_fault_and_a_refused_probe_fails_the_check():
    env, provider = make(probes={"variables": GuestError(500, "guest POST /probe -> 500: KeyError: 'x'")})
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step("done()")
    assert (reward, terminated, truncated) == (0.0, False, True) and "500" in info["error"], info
    provider.probes["variables"] = GuestError(400, "guest POST /probe -> 400: refused")
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step("done()")
    assert (reward, terminated, truncated) == (0.0, True, False) and "error" not in info
    assert "could not read the app's state" in info["checks"][0]["detail"]
    env.close()


def test_reset_refuses_another_apps_task_and_the_env_stays_usable():
    env, _ = make()
    env.reset(seed=0)
    other = load_app_tasks("pymol")[0]
    for chosen in (other.id, other):
        with pytest.raises(TaskError, match=f"task '{other.id}' is for pymol, not kalgebra"):
            env.reset(seed=0, options={"task": chosen})
    with pytest.raises(TaskError, match="unknown task"):
        env.reset(seed=0, options={"task": "kalgebra/no-such-task"})
    assert env.reset(seed=0, options={"task": "kalgebra/answer-gcd"})[1]["task_id"] == "kalgebra/answer-gcd"
    assert env.reset(seed=0, options={"task": TASK})[1]["task_id"] == TASK
    assert env.step("done()")[1] == 1.0
    env.close()


def test_tasks_dir_resolves_task_ids_at_construction_and_reset(tmp_path):
    folder = tmp_path / "kalgebra"
    folder.mkdir()
    data = json.loads((TASKS_DIR / "kalgebra" / "assign-sum.json").read_text())
    data.update(id="kalgebra/my-sum", instruction="Make a variable total equal to 100, my way.")
    (folder / "my-sum.json").write_text(json.dumps(data))
    shutil.copy(TASKS_DIR / "kalgebra" / "answer-gcd.json", folder)
    env = SciBoardEnv(app="kalgebra", task="kalgebra/my-sum", provider=FakeProvider(probes=SOLVED),
                      screen_size=(64, 48), tasks_dir=str(folder))
    obs, info = env.reset(seed=0)
    assert info["task_id"] == "kalgebra/my-sum" and obs["instruction"].endswith("my way.")
    assert env.reset(seed=0, options={"task": "kalgebra/answer-gcd"})[1]["task_id"] == "kalgebra/answer-gcd"
    assert env.reset(seed=0, options={"task": "kalgebra/my-sum"})[1]["task_id"] == "kalgebra/my-sum"
    with pytest.raises(TaskError, match=f"unknown task 'kalgebra/assign-sum' in {folder}"):
        env.reset(seed=0, options={"task": "kalgebra/assign-sum"})
    env.close()


def test_every_reset_samples_a_task_of_the_split_by_seed():
    env, _ = make(task=None, split="test")
    ids = {env.reset(seed=seed)[1]["task_id"] for seed in range(20)}
    assert ids and all(sciboard_gym.env.task_split(i) == "test" for i in ids)
    assert env.reset(seed=3)[1]["task_id"] == env.reset(seed=3)[1]["task_id"]
    env.close()


class CrashingAgent:
    """Acts once, then raises."""

    def __init__(self) -> None:
        self.calls = 0

    def reset(self, instruction: str) -> None:
        self.calls = 0

    def act(self, observation: Mapping[str, Any]) -> str:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("the model server went away")
        return "click(5, 5)"


def test_run_episode_keeps_an_agents_crash_message(tmp_path):
    env, _ = make(probes={"variables": {}})
    result = run_episode(env, CrashingAgent(), task=TASK, seed=0, recorder=TrajectoryRecorder(tmp_path / "ep"))
    assert result.agent_error == "RuntimeError: the model server went away"
    assert result.steps == 2 and result.terminated and not result.success and result.error is None
    steps = [json.loads(line) for line in (tmp_path / "ep" / "steps.jsonl").read_text().splitlines()]
    assert steps[-1]["action"] == "fail()" and steps[-1]["info"]["agent_error"] == result.agent_error
    assert "agent_error" not in steps[0]["info"]
    episode = json.loads(Path(tmp_path / "ep" / "episode.json").read_text())
    assert episode["agent_error"] == result.agent_error
    env.close()


def test_coda_run_reports_an_agents_crash_instead_of_dying(monkeypatch, capsys):
    from coda_agent import run

    make_env = gym.make
    monkeypatch.setattr(run, "make_backend", lambda spec, **options: object())
    monkeypatch.setattr(run, "CODAAgent", lambda cerebrum, cerebellum: CrashingAgent())
    monkeypatch.setattr(gym, "make", lambda env_id, **options: make_env(
        env_id, **options, task=TASK, provider="fakes:FakeProvider", screen_size=(64, 48)))
    assert run.main(["--planner", "tiny-planner", "--executor", "tiny-executor", "--episodes", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line.get("agent_error") for line in lines[:2]] == ["RuntimeError: the model server went away"] * 2
    assert lines[0]["executed"] == ["click(5, 5)", "fail()"] and lines[-1] == {"episodes": 2, "successes": 0}
