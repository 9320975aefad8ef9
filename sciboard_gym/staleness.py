"""Is an observation stale? The check the staleness test and the step benchmark share."""

from __future__ import annotations

import time

import numpy as np

from sciboard_gym.guest_client import GuestClient

#: Seconds after the step, then after that: two grabs half a second apart, so a blinking text caret alone
#: is never counted as a change.
RECHECK = (1.0, 0.5)


def is_stale(client: GuestClient, observed: np.ndarray, recheck: tuple[float, ...] = RECHECK) -> bool:
    """True when the screen, grabbed again after each delay in ``recheck``, never matches ``observed``
    (the observation was taken before the screen had settled)."""
    for delay in recheck:
        time.sleep(delay)
        if np.array_equal(client.screenshot(), observed):
            return False
    return True
