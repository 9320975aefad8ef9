"""Stable-Baselines3 on a SciBoard env: discrete grid actions, image observations, PPO with CnnPolicy."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_gym.wrappers import ImageObservation, SB3Actions


class FakeScreenEnv(gym.Env):
    """A 200x100 'screen' that records the action strings it receives."""

    def __init__(self) -> None:
        self.screen_size = (200, 100)
        self.observation_space = spaces.Dict({"screenshot": spaces.Box(0, 255, (100, 200, 3), np.uint8)})
        self.action_space = spaces.Text(100)
        self.received: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return {"screenshot": np.full((100, 200, 3), 7, np.uint8)}, {}

    def step(self, action: str):
        self.received.append(action)
        return {"screenshot": np.full((100, 200, 3), 7, np.uint8)}, 0.0, False, False, {}


def test_grid_actions_become_action_strings() -> None:
    screen = FakeScreenEnv()
    env = SB3Actions(screen, grid=(4, 2), keys=("Return", "ctrl+z"))
    assert env.action_space == spaces.MultiDiscrete([4, 2, 8])
    assert env.describe([0, 0, 0]) == "click(25, 25)"
    assert env.describe(np.array([3, 1, 1])) == "double_click(175, 75)"
    assert env.describe([1, 0, 2]) == "right_click(75, 25)"
    assert env.describe([1, 1, 3]) == "scroll(75, 75, -3)" and env.describe([1, 1, 4]) == "scroll(75, 75, 3)"
    assert env.describe([2, 1, 5]) == 'key("Return")' and env.describe([0, 0, 6]) == 'key("ctrl+z")'
    assert env.describe([0, 0, 7]) == "done()"
    env.step(np.array([0, 0, 0]))
    assert screen.received == ["click(25, 25)"]
    with pytest.raises(ValueError, match="outside"):
        env.describe([4, 0, 0])
    assert SB3Actions(FakeScreenEnv(), allow_done=False).kinds[-1] == 'key:BackSpace'
    with pytest.raises(Exception, match="key"):
        SB3Actions(FakeScreenEnv(), keys=("no such key!",))


def test_image_observation_is_the_resized_screenshot() -> None:
    env = ImageObservation(FakeScreenEnv(), (64, 48))
    obs, _ = env.reset()
    assert env.observation_space == spaces.Box(0, 255, (48, 64, 3), np.uint8) and obs in env.observation_space
    assert int(obs[10, 10, 0]) == 7


@pytest.mark.desktop
def test_sb3_check_env_and_ppo_cnn_policy_on_kalgebra() -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env

    torch.set_num_threads(1)
    base = gym.make("SciBoard-KAlgebra-v0", task="kalgebra/assign-sum", screen_size=(640, 480), max_steps=256,
                    settle_quiet=0.03, settle_timeout=0.5)
    env = SB3Actions(ImageObservation(base, (64, 64)), grid=(8, 6), allow_done=False)
    try:
        check_env(env, warn=True)
        model = PPO("CnnPolicy", env, n_steps=512, batch_size=128, n_epochs=2, device="cpu", seed=0)
        model.learn(total_timesteps=2048)
        assert model.num_timesteps == 2048
        assert model.ep_info_buffer is not None and len(model.ep_info_buffer) >= 2048 // 256 - 1  # episodes ended at the step limit and were reset
        action, _ = model.predict(env.reset()[0], deterministic=True)
        assert env.action_space.contains(action)
    finally:
        env.close()
