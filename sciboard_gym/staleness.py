"""Is an observation stale? The check the staleness test and the step benchmark share."""

from __future__ import annotations

import time

import numpy as np

from sciboard_guest.settle import is_caret
from sciboard_gym.guest_client import GuestClient

#: Seconds after the step, then after that: two grabs half a second apart.
RECHECK = (1.0, 0.5)


def same_but_a_caret(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two frames (height x width x channels) differ at most in a text caret's sliver."""
    differ = (first != second).any(axis=2)
    rows = np.flatnonzero(differ.any(axis=1))
    if rows.size == 0:
        return True
    columns = np.flatnonzero(differ[rows[0]:rows[-1] + 1].any(axis=0))
    return is_caret(int(columns[-1] - columns[0] + 1), int(rows[-1] - rows[0] + 1))


def is_stale(client: GuestClient, observed: np.ndarray, recheck: tuple[float, ...] = RECHECK) -> bool:
    """True when the screen, grabbed again after each delay in ``recheck``, never matches ``observed`` but
    for a blinking text caret (the observation was taken before the screen had settled). Two grabs half a
    second apart: a caret blinking at its usual period is off in one of them."""
    for delay in recheck:
        time.sleep(delay)
        if same_but_a_caret(client.screenshot(), observed):
            return False
    return True
