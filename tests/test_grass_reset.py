"""GRASS GIS resets: every kind of change the GRASS tasks make is gone after the next reset (read through the
probes and the screen), and the reset's observation is the settled start screen with the splash screen closed."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sciboard_guest.apps import grass_data as data
from sciboard_gym.staleness import is_stale

pytestmark = [pytest.mark.desktop, pytest.mark.xdist_group("grass")]

TASK = "grass/slope-map"  # no setup steps: the reset shows the GUI exactly as launched
MAIN_WINDOW = f"{data.LOCATION}/{data.USER_MAPSET} - GRASS GIS"
# Where the single-window GUI puts things at 1920x1080 (as the tasks' oracles use them).
#: The catalog row that names the database: x below 400, y from 180 to 205.
CATALOG_DATABASE_ROW = (400, 180, 205)
CONSOLE_TAB, CONSOLE_LINE, ADD_RASTER, ADD_RASTER_OK = (1627, 1031), (1714, 983), (195, 135), (959, 1030)


def _start_state(client) -> dict:
    return {"rasters": client.probe("maps", {"kind": "raster"}), "vectors": client.probe("maps", {"kind": "vector"}),
            "regions": client.probe("maps", {"kind": "region"}), "region": client.probe("region", {}),
            "mapsets": client.probe("mapsets", {}), "history": client.probe("command_history", {}),
            "windows": client.probe("gui_windows", {}),
            # The preferences name the episode's HOME, which is new on every launch.
            "settings": re.sub(r"/home-\d+/", "/HOME/", json.dumps(client.probe("gui_settings", {}), sort_keys=True))}


def test_every_kind_of_change_is_gone_after_the_next_reset(live_env):
    env = live_env("grass")
    first, _ = env.reset(seed=0, options={"task": TASK})
    client = env.provider.client
    start = _start_state(client)
    assert start["windows"] == [{"role": "frame", "name": MAIN_WINDOW, "showing": True}]  # the splash is gone
    assert start["rasters"] == start["vectors"] == start["history"] == []
    assert not is_stale(client, first["screenshot"])  # the reset returned the settled screen

    # New and edited maps, the region and a saved region, console text and history, a layer on the display,
    # an open dialog: each kind of change the GRASS tasks make.
    client.setup("copy_map", {"kind": "raster", "name": "elevation", "new_name": "dem"})
    client.setup("copy_map", {"kind": "vector", "name": "roads"})
    client.setup("set_region", {"n": 5128000.0, "s": 5122000.0, "e": 609000.0, "w": 604000.0, "res": 50.0})
    for action in [f"click{CONSOLE_TAB}", f"click{CONSOLE_LINE}", 'type("g.region res=100 save=coarse")',
                   'key("Escape")', 'key("Return")', "wait(2)",
                   f"click{ADD_RASTER}", "wait(1)", 'type("elevation@PERMANENT")', f"click{ADD_RASTER_OK}", "wait(2)",
                   f"click{ADD_RASTER}", "wait(1)"]:
        _, _, _, _, info = env.step(action)
        assert not info.get("action_error"), (action, info)
    changed = _start_state(client)
    assert changed["rasters"] == ["dem"] and changed["vectors"] == ["roads"] and changed["regions"] == ["coarse"]
    assert changed["region"]["nsres"] == 50 and any("save=coarse" in line for line in changed["history"])
    assert len(changed["windows"]) == 2  # the add-raster dialog is open

    again, _ = env.reset(seed=0, options={"task": TASK})
    assert _start_state(client) == start
    # The layer tree, map display and console show what they showed at the start: the screen is the same but
    # for the data catalog's first row, which names the episode's HOME (``.../home-N/grassdata``).
    differs = np.argwhere(np.any(again["screenshot"] != first["screenshot"], axis=2))
    assert all(x < CATALOG_DATABASE_ROW[0] and CATALOG_DATABASE_ROW[1] <= y < CATALOG_DATABASE_ROW[2]
               for y, x in differs), (differs.min(axis=0), differs.max(axis=0), len(differs))
