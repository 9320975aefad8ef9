"""Trajectory datasets: real recorded episodes as step samples and Hugging Face datasets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from coda_agent.data import (
    TrajectoryError,
    find_episodes,
    from_dataset,
    load_episode,
    planner_conversation,
    planner_target,
    save_labels,
    step_samples,
    to_dataset,
)
from sciboard_gym.tasks import get_task
from sciboard_gym.trajectory import TrajectoryRecorder


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_recorded_episodes_become_step_samples(recorded_episodes: Path) -> None:
    folders = find_episodes([recorded_episodes])
    episodes = [load_episode(folder) for folder in folders]
    oracle_tasks = {e.task_id for e in episodes if e.agent == "OracleAgent"}
    cut_short_tasks = {e.task_id for e in episodes if e.agent == "ScriptedAgent"}
    assert len(oracle_tasks) == 3 and len(cut_short_tasks) == 2
    samples = step_samples(folders)
    by_task: dict[str, list] = {}
    for sample in samples:
        by_task.setdefault(sample.task_id, []).append(sample)
    for task_id in oracle_tasks:
        oracle = list(get_task(task_id).variant(3).oracle)  # the instance the recorded seed played
        steps = by_task[task_id]
        assert [s.step for s in steps] == list(range(1, len(oracle) + 1))
        assert all(s.episode_success and s.label == s.action and s.seed == 3 and s.app == "kalgebra" for s in steps)
        assert [s.prefix for s in steps] == [[]] + [steps[i].prefix + [steps[i].action] for i in range(len(steps) - 1)]
        assert steps[0].prev_screenshot is None and len(steps[1].history) == 1
        episode = load_episode(steps[0].episode_dir)
        assert np.array_equal(_pixels(steps[1].prev_screenshot), _pixels(episode.frame(0)))
        assert np.array_equal(_pixels(steps[1].screenshot), _pixels(episode.frame(1)))
        assert planner_target(steps[-1]) == f"Action: {oracle[-1]}"
    for task_id in cut_short_tasks:
        assert [(s.label, s.episode_success) for s in by_task[task_id]] == [(None, False), (None, False)]
    successes = step_samples(folders, only_success=True)
    assert {s.task_id for s in successes} == oracle_tasks
    assert step_samples(folders, apps=["pymol"]) == []


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_step_dataset_round_trips_through_disk(recorded_episodes: Path, tmp_path: Path) -> None:
    import datasets

    samples = step_samples(find_episodes(recorded_episodes))
    to_dataset(samples).save_to_disk(str(tmp_path / "steps"))
    loaded = datasets.load_from_disk(str(tmp_path / "steps"))
    assert isinstance(loaded.features["screenshot"], datasets.Image)
    back = from_dataset(loaded)
    assert len(back) == len(samples)
    for before, after in zip(samples, back):
        assert (before.task_id, before.step, before.history, before.prefix, before.label, before.seed) == (
            after.task_id, after.step, after.history, after.prefix, after.label, after.seed)
        assert np.array_equal(_pixels(before.screenshot), _pixels(after.screenshot))
        assert (before.prev_screenshot is None) == (after.prev_screenshot is None)


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_history_and_prompt_match_what_the_cerebrum_saw(live_env, tmp_path: Path) -> None:
    """A real CODA episode (tiny models): each sample's history and prompt are the planner's own."""
    import torch

    from coda_agent import Cerebellum, Cerebrum, CODAAgent, TransformersBackend
    from coda_agent.tiny import cached_tiny_qwen25vl
    from sciboard_gym.episode import run_episode

    torch.set_num_threads(1)
    backend = TransformersBackend(str(cached_tiny_qwen25vl()), dtype="float32")
    planner = Cerebrum(backend, max_pixels=112 * 112 * 4, max_new_tokens=16, history_steps=2)
    agent = CODAAgent(planner, Cerebellum(backend, max_pixels=112 * 112 * 4, max_new_tokens=16))
    env = live_env("kalgebra")
    prompts: list = []
    original = planner.conversation
    planner.conversation = lambda obs: prompts.append(original(obs)) or prompts[-1]  # type: ignore[method-assign]
    env.unwrapped.max_steps_override = 3
    try:
        run_episode(env, agent, task="kalgebra/assign-sum", recorder=TrajectoryRecorder(tmp_path / "coda"))
    finally:
        env.unwrapped.max_steps_override = None
        planner.conversation = original  # type: ignore[method-assign]
    samples = step_samples([tmp_path / "coda"])
    assert len(samples) == len(agent.steps) == len(prompts)
    for sample, step, prompt in zip(samples, agent.steps, prompts):
        assert sample.history == planner.history[:sample.step - 1]
        assert sample.planner_reply == step.plan.raw and sample.thought == step.plan.thought
        assert planner_target(sample) == step.plan.raw.strip() or not step.plan.raw.strip()
        rebuilt = planner_conversation(sample, Cerebrum(backend, max_pixels=112 * 112 * 4, history_steps=2))
        assert [m.role for m in rebuilt] == [m.role for m in prompt]
        for built, seen in zip(rebuilt, prompt):
            assert len(built.parts) == len(seen.parts)
            for a, b in zip(built.parts, seen.parts):
                assert (a == b) if isinstance(a, str) else np.array_equal(_pixels(a), _pixels(b))


def _synthetic_episode(folder: Path, frames: bool = True) -> Path:
    """An episode written by the real recorder from plain arrays (no desktop)."""
    recorder = TrajectoryRecorder(folder, save_frames=frames)
    screen = {"screenshot": np.zeros((20, 30, 3), np.uint8)}
    recorder.start("kalgebra/assign-sum", "add the numbers", screen, {"task_id": "kalgebra/assign-sum"})
    recorder.step(1, "click(3, 4)", screen, 0.0, False, False, {"action_error": None, "executed": "click(3, 4)"})
    recorder.step(2, "bogus", screen, 0.0, False, False, {"action_error": "unknown action 'bogus'"})
    recorder.step(3, "done()", screen, 0.0, True, False, {"action_error": None, "executed": "done()"})
    recorder.finish({"success": False, "reward": 0.0, "steps": 3, "agent": "ScriptedAgent"})
    return folder


def test_rejected_actions_are_not_replayed_and_judge_labels_are_read(tmp_path: Path) -> None:
    folder = _synthetic_episode(tmp_path / "ep")
    samples = step_samples([folder])
    assert [s.prefix for s in samples] == [[], ["click(3, 4)"], ["click(3, 4)"]]
    assert samples[2].history[1] == "Thought: - | Action: bogus | the action failed: unknown action 'bogus'"
    assert all(s.label is None for s in samples)
    save_labels(folder, {2: "key(\"Return\")"}, source="judge")
    assert [s.label for s in step_samples([folder])] == [None, 'key("Return")', None]
    assert load_episode(folder).label_source == "judge"


def test_broken_episode_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="not an episode folder"):
        load_episode(tmp_path)
    with pytest.raises(TrajectoryError, match="no such folder"):
        find_episodes(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "episode.json").write_text("{not json")
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "episode.json").write_text(json.dumps({"task_id": "kalgebra/x", "status": "running"}))
    good = _synthetic_episode(tmp_path / "good")
    no_frames = _synthetic_episode(tmp_path / "no-frames", frames=False)
    with pytest.warns(UserWarning, match="unreadable episode.json"):
        assert find_episodes(tmp_path) == [good, no_frames]
    with pytest.raises(TrajectoryError, match="unreadable episode"):
        load_episode(tmp_path / "bad")
    with pytest.warns(UserWarning, match="frame 0 was not recorded"):
        assert len(step_samples([good, no_frames])) == 3
    (good / "labels.json").write_text('{"steps": 3}')
    with pytest.raises(TrajectoryError, match="unreadable labels"):
        load_episode(good)
    import datasets

    with pytest.raises(TrajectoryError, match="missing columns"):
        from_dataset(datasets.Dataset.from_dict({"task_id": ["x"]}))
