"""Wrappers on the real KAlgebra env: scaled screens map actions back; recording writes files."""

from __future__ import annotations

import json

import pytest

from sciboard_gym.env import SciBoardEnv
from sciboard_gym.trajectory import load_trajectory
from sciboard_gym.wrappers import RecordTrajectory, ScaleScreen

pytestmark = pytest.mark.desktop


def test_scale_screen_and_record(tmp_path):
    env = RecordTrajectory(ScaleScreen(SciBoardEnv(app="kalgebra", task="kalgebra/open-dictionary"),
                                       (960, 540)), tmp_path)
    try:
        obs, _ = env.reset(seed=0)
        assert obs["screenshot"].shape == (540, 960, 3) and obs in env.observation_space
        assert env.env.scale_action("click(157, 27)") == "click(315, 55)"
        obs, _, _, _, info = env.step("click(157, 27)")  # the Dictionary tab at half scale
        assert info["executed"] == "click(315, 55)"
        _, reward, terminated, _, info = env.step("done()")
        assert terminated and reward == 1.0, info["checks"]
        episode, steps = load_trajectory(env.episode_folder)
        assert episode["status"] == "finished" and episode["success"] is True
        assert [s["action"] for s in steps] == ["click(157, 27)", "done()"]
        assert (env.episode_folder / steps[-1]["frame"]).exists()
        assert json.loads((env.episode_folder / "episode.json").read_text())["task_id"] == "kalgebra/open-dictionary"
    finally:
        env.close()


def test_scale_passes_bad_actions_through():
    env = ScaleScreen(SciBoardEnv(app="kalgebra", task="kalgebra/assign-sum"), (640, 360))
    try:
        assert env.scale_action("click(1,") == "click(1,"
        assert env.scale_action('type("x")') == 'type("x")'
        assert env.scale_action("drag(0, 0, 639, 359)") == "drag(1, 1, 1918, 1078)"  # pixel centres
    finally:
        env.close()
