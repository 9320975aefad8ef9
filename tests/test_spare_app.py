"""A relaunch that adopts the app's spare copy, started in the background: fresh, focused, never on screen before."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sciboard_guest.desktop import Desktop
from sciboard_guest.settle import is_caret
from sciboard_gym.guest_client import GuestClient

SPARE_TIMEOUT = 60.0


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_the_desktop_keeps_one_spare_and_hands_it_over(tmp_path):
    desk = Desktop(tmp_path, "sciboard-spare-test")
    try:
        desk.start_spare(["sleep", "60"], {"MODE": "a"})
        spare = desk.spare_pid(["sleep", "60"], {"MODE": "a"})
        assert spare is not None and running(spare)
        # Only a launch of the very same argv and environment may adopt it.
        assert desk.spare_pid(["sleep", "61"], {"MODE": "a"}) is None
        assert desk.spare_pid(["sleep", "60"], {"MODE": "b"}) is None
        desk.launch(["sleep", "60"], {})
        app, app_home = desk.pid("app"), desk._home
        assert app is not None and app_home is not None

        home = desk.adopt_spare()
        assert desk.pid("app") == spare and desk.alive("app") and home.is_dir()
        assert not running(app) and not app_home.exists()  # the app before it was stopped, its HOME removed
        assert desk.any_spare_pid is None and desk.log_path("app").exists()

        desk.start_spare(["sleep", "60"], {})
        other = desk.any_spare_pid
        assert other is not None
        desk.start_spare(["sleep", "60"], {})  # a new spare replaces the old one
        assert not running(other)
        last = desk.any_spare_pid
        assert last is not None
        desk.shutdown()
        assert not running(last) and not running(spare)
        assert [p.name for p in tmp_path.glob("home-*")] == []
    finally:
        desk.shutdown()


def only_a_caret_differs(a: np.ndarray, b: np.ndarray) -> bool:
    ys, xs = np.nonzero((a != b).any(axis=2))
    return not len(xs) or is_caret(int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def enter(client: GuestClient, line: str) -> None:
    client.input({"name": "type", "text": line})
    client.input({"name": "key", "keys": "Return"}, settle=(None, 5.0))


def kalgebra_apps(client: GuestClient) -> int:
    return sum(1 for app in client.a11y_tree()["children"] if app["name"] == "kalgebra")


@pytest.mark.desktop
def test_the_spare_never_shows_and_is_not_on_the_accessibility_bus(desktop):
    _, client = desktop
    client.launch("kalgebra", spare=False)
    client.launch("kalgebra")  # fresh: no spare to adopt; starts one
    client.settle(0.3, 5.0)
    start = client.screenshot()
    grabs = 0
    deadline = time.monotonic() + SPARE_TIMEOUT
    while not client.health(spare=True)["spare_ready"] or grabs < 20:
        assert time.monotonic() < deadline, "the spare did not come up"
        assert only_a_caret_differs(client.screenshot(), start)
        grabs += 1
    assert kalgebra_apps(client) == 1


#: KAlgebra's probes without arguments: every kind of state its tasks change.
STATE_PROBES = ("variables", "functions_2d", "viewport_2d", "current_tab", "texts")


@pytest.mark.desktop
def test_a_relaunch_adopts_the_spare_fresh_and_focused_like_a_plain_launch(desktop):
    _, client = desktop
    client.launch("kalgebra")
    assert client.wait_for_spare(SPARE_TIMEOUT)
    enter(client, "total:=100")
    client.setup("plot_2d", {"expression": "x^2"})
    client.setup("open_tab", {"tab": "3D Graph"})
    client.input({"name": "type", "text": "x*y"}, settle=(None, 5.0))
    changed = {probe: client.probe(probe) for probe in STATE_PROBES}

    assert client.launch("kalgebra")["from_spare"] is True
    assert kalgebra_apps(client) == 1  # the spare started for the next launch is not on the bus
    client.settle(0.3, 5.0)
    adopted = client.screenshot()
    fresh = {probe: client.probe(probe) for probe in STATE_PROBES}
    leaked = [probe for probe in STATE_PROBES if probe != "viewport_2d" and fresh[probe] == changed[probe]]
    assert leaked == [], (changed, fresh)
    enter(client, "x:=7")  # keys reach the adopted app
    assert client.probe("variables")["x"] == "7"

    assert client.launch("kalgebra", spare=False)["from_spare"] is False
    client.settle(0.3, 5.0)
    assert only_a_caret_differs(client.screenshot(), adopted)  # the same screen as a plain launch's
    assert {probe: client.probe(probe) for probe in STATE_PROBES} == fresh


@pytest.mark.desktop
def test_no_spare_is_kept_without_one_or_after_the_app_stops(desktop):
    _, client = desktop
    client.launch("kalgebra", spare=False)
    assert client.health()["spare_running"] is False
    client.launch("kalgebra")
    assert client.health()["spare_running"] is True
    client.stop_app()
    assert client.health(spare=True)["spare_running"] is False
    client.launch("kalgebra")
