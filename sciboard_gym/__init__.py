"""SciBoard Gym: real scientific desktop apps as Gymnasium environments.

Importing this package registers one env per app, e.g. ``SciBoard-KAlgebra-v0``::

    import gymnasium as gym, sciboard_gym
    env = gym.make("SciBoard-KAlgebra-v0")
"""

from __future__ import annotations

import gymnasium as gym

from sciboard_gym.apps import APPS

__version__ = "0.1.0"


def _register_envs() -> None:
    for app, (env_id, _) in APPS.items():
        if env_id not in gym.registry:
            # A live desktop is not bit-deterministic (caret blink phase, app timers), hence
            # nondeterministic=True; see docs/env-reference.md.
            gym.register(id=env_id, entry_point="sciboard_gym.env:SciBoardEnv", kwargs={"app": app},
                         nondeterministic=True)


_register_envs()

__all__ = ["__version__"]
