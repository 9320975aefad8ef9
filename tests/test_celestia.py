"""Celestia: what can be checked without Celestia (it is not packaged for Debian 12).

The bridge protocol is tested on its pure parts (config rewriting, request building,
response parsing) and the env's behaviour without the app (a clear error at
construction). The live oracle runs are in tests/test_task_oracles.py and are
skipped, with the install hint as the reason, where Celestia is missing.
"""

from __future__ import annotations

import shutil

import gymnasium as gym
import pytest

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_guest.apps import AppError, AppNotInstalled
from sciboard_guest.apps import celestia as guest
from sciboard_gym.apps import APPS, get_adapter
from sciboard_gym.tasks import load_app_tasks

SYSTEM_CFG = """# Celestia's configuration
Configuration
{
  StarDatabase "data/stars.dat"
  # LuaHook "luahook.lua"
  LuaHook "old.lua"
  ScriptSystemAccessPolicy "ask"
}
"""


def test_config_sets_our_hook_and_policy_once():
    text = guest.build_config(SYSTEM_CFG, "/home/x/.sciboard-celestia/bridge.lua")
    assert 'StarDatabase "data/stars.dat"' in text
    assert text.count("LuaHook") == 2  # the commented-out line stays, the live one is ours
    assert 'LuaHook "/home/x/.sciboard-celestia/bridge.lua"' in text
    assert 'ScriptSystemAccessPolicy "allow"' in text and '"ask"' not in text
    assert text.rstrip().endswith("}") and text.index("LuaHook \"/home") < text.rindex("}")


@pytest.mark.parametrize("bad", ["no configuration block", 'Configuration { x "1"'])
def test_config_rejects_a_file_that_is_not_celestias(bad):
    with pytest.raises(AppError):
        guest.build_config(bad, "/h/bridge.lua")


def test_config_rejects_a_path_that_would_break_the_quoting():
    with pytest.raises(AppError):
        guest.build_config(SYSTEM_CFG, '/h/"evil.lua')


@pytest.mark.parametrize("command,argument,expected", [
    ("state", "", "7\nstate\n\n"),
    ("select", "Sol/Jupiter/Io", "7\nselect\nSol/Jupiter/Io\n"),
    ("render", "orbits true", "7\nrender\norbits true\n"),
    ("timescale", "-10.0", "7\ntimescale\n-10.0\n"),
])
def test_requests_are_built_from_checked_values(command, argument, expected):
    assert guest.build_request(7, command, argument) == expected


@pytest.mark.parametrize("command,argument", [
    ("run", "os.execute('x')"), ("select", "Mars\nstate"), ("select", 'Mars"); os.exit('), ("render", "orbits maybe"),
    ("render", "everything true"), ("label", "orbits true"), ("timescale", "nan"), ("settime", "-5"),
    ("state", "extra"),
])
def test_requests_refuse_anything_else(command, argument):
    with pytest.raises(ValueError):
        guest.build_request(1, command, argument)


def test_response_parsing_groups_flags_and_types_values():
    text = ("id=4\ntime_tdb=2460599.33333333\nutc=2024-10-15T19:58:51\ntimescale=10\npaused=false\n"
            "selection=Mars\ndistance_km=20371.5\nrender.orbits=true\nrender.grid=false\nlabel.planets=true\n")
    state = guest.parse_response(text, 4)
    assert state["selection"] == "Mars" and state["utc"] == "2024-10-15T19:58:51"
    assert state["timescale"] == 10.0 and state["paused"] is False and state["distance_km"] == 20371.5
    assert state["render"] == {"orbits": True, "grid": False} and state["label"] == {"planets": True}


def test_response_for_another_request_or_an_error_is_refused():
    with pytest.raises(AppError, match="answered request"):
        guest.parse_response("id=3\ntimescale=1\n", 4)
    with pytest.raises(AppError, match="unknown object Vulcan"):
        guest.parse_response("id=5\nerror=bridge.lua:40: unknown object Vulcan\n", 5)


def test_bridge_script_only_runs_our_commands():
    script = guest.BRIDGE_SCRIPT
    assert "celestia:setluahook(hook)" in script and "function hook:tick" in script
    assert "loadstring" not in script and "dofile" not in script and "os.execute" not in script


def test_env_is_registered():
    assert APPS["celestia"][0] == "SciBoard-Celestia-v0"
    assert "SciBoard-Celestia-v0" in gym.registry


def test_tasks_validate_against_the_adapter():
    adapter = get_adapter("celestia")
    tasks = load_app_tasks("celestia")
    assert len(tasks) >= 10
    for task in tasks:
        adapter.validate_task(task)


@pytest.mark.skipif(shutil.which("celestia-qt") is not None, reason="Celestia is installed here")
def test_make_without_celestia_fails_with_the_install_hint():
    with pytest.raises(AppNotInstalled) as err:
        gym.make("SciBoard-Celestia-v0")
    message = str(err.value)
    assert "not installed in the sandboxed desktop's tree" in message and "install Celestia" in message
