"""The agent protocol every SciBoard agent implements (ours and third parties')."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Agent(Protocol):
    """An agent: told the task at the start of an episode, then asked for one action per step.

    ``act`` returns one string in the action language (see :func:`sciboard_gym.actions.describe`),
    e.g. ``'click(120, 45)'`` or ``'done()'``. The observation is the env's observation dict
    (``screenshot`` as an (H, W, 3) uint8 array, ``instruction``, optionally ``a11y_tree``).

    An agent may also expose ``last_info``, a JSON-serialisable mapping describing its latest
    ``act`` (e.g. ``{"thought": ..., "plan": ...}``); :func:`sciboard_gym.episode.run_episode`
    records it with the step, where trajectory viewers and training datasets read it.
    """

    def reset(self, instruction: str) -> None: ...

    def act(self, observation: Mapping[str, Any]) -> str: ...
