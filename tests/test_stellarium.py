"""Stellarium: pure logic (config, conversions, checks) and a few live properties of the env.

The oracle / immediate-done runs of every task are in tests/test_task_oracles.py.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_sandbox import episode_home, run_inside

from sciboard_guest.apps import AppError
from sciboard_guest.apps import stellarium as guest
from sciboard_gym.apps import stellarium as host
from sciboard_gym.apps.base import CheckContext
from sciboard_gym.tasks import load_app_tasks

SAMPLE_DEFAULT = """[main]
version = 0.22.2
[video]
fullscreen = true
minimum_fps = 18
maximum_fps = 10000
[color]
default_color = 0.5,0.5,0.7
"""


def test_config_caps_the_frame_rate_and_enables_remote_control_with_a_password():
    text = guest.build_config(SAMPLE_DEFAULT, 41234, "s3cret")
    port, password = guest.read_remote_settings(text)
    assert (port, password) == (41234, "s3cret")
    assert f"minimum_fps = {guest.MIN_FPS}" in text and f"maximum_fps = {guest.MAX_FPS}" in text
    assert "autostart = true" in text and "use_password = true" in text  # lowercase key, as Stellarium reads it
    assert "RemoteControl = true" in text  # plugin key keeps its case
    assert "default_color = 0.5,0.5,0.7" in text and "fullscreen = false" in text


def test_a_slow_guest_draws_fewer_idle_frames(monkeypatch):
    monkeypatch.setenv("SCIBOARD_READY_SCALE", "6")  # what the libvirt provider sets in a VM without KVM
    text = guest.build_config(SAMPLE_DEFAULT, 41234, "s3cret")
    assert "minimum_fps = 0.333333" in text and f"maximum_fps = {guest.MAX_FPS}" in text


@pytest.mark.skipif(not guest.DEFAULT_CONFIG.is_file(), reason="Stellarium is not installed")
def test_config_from_the_installed_defaults_keeps_every_section():
    default = guest.DEFAULT_CONFIG.read_text()
    text = guest.build_config(default, 40000, "pw")
    for line in default.splitlines():
        if line.startswith("["):
            assert line in text


def test_prepare_writes_config_and_an_empty_recent_search_list(tmp_path: Path, monkeypatch):
    default = tmp_path / "default_cfg.ini"
    default.write_text(SAMPLE_DEFAULT)
    monkeypatch.setattr(guest, "DEFAULT_CONFIG", default)
    guest.prepare_home(tmp_path / "home")
    port, password = guest.read_remote_settings((tmp_path / "home/.stellarium/config.ini").read_text())
    assert 1024 <= port <= 65535 and len(password) >= 20
    assert '"maxSize": 0' in (tmp_path / "home/.stellarium/data/recentObjectSearches.json").read_text()


def test_missing_remote_settings_is_a_clear_error():
    with pytest.raises(AppError, match="RemoteControl"):
        guest.read_remote_settings("[main]\nversion = 1\n")


@pytest.mark.parametrize("utc,jd", [("2000-01-01T12:00:00", 2451545.0), ("2024-10-15T20:00:00Z", 2460599.3333333335),
                                    ("1970-01-01", 2440587.5)])
def test_julian_days(utc, jd):
    assert guest.jd_from_utc(utc) == pytest.approx(jd, abs=1e-9)
    assert guest.utc_from_jd(jd) == guest.utc_from_jd(guest.jd_from_utc(utc))


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-45T00:00:00", "2024-10-15T20:00:00+02:00", 2460000])
def test_bad_times_are_refused(bad):
    with pytest.raises(ValueError):
        guest.jd_from_utc(bad)


def test_far_julian_days_do_not_crash_the_probe():
    assert guest.utc_from_jd(1e12).startswith("JD ")


@pytest.mark.parametrize("az,alt", [(0, 0), (90, 10), (180, 20), (271.5, -30), (45, 89)])
def test_horizontal_vectors_round_trip(az, alt):
    back_az, back_alt = guest.vector_azalt(guest.altaz_vector(az, alt))
    assert back_alt == pytest.approx(alt, abs=1e-9)
    assert math.isclose(math.cos(math.radians(back_az - az)), 1.0, abs_tol=1e-9)


def test_stellarium_frame_convention_south_is_x_east_is_y():
    assert guest.vector_azalt((1.0, 0.0, 0.0)) == pytest.approx((180.0, 0.0))
    assert guest.vector_azalt((0.0, 1.0, 0.0)) == pytest.approx((90.0, 0.0))
    assert guest.vector_radec((0.0, 1.0, 0.0)) == pytest.approx((6.0, 0.0))


def test_vector_text_parsing():
    assert guest.parse_vector("[0.999722, 9.99722e-06, 0.201384]") == pytest.approx((0.999722, 9.99722e-06, 0.201384))
    with pytest.raises(AppError):
        guest.parse_vector("[1, 2]")


@pytest.mark.parametrize("name", ["Mars", "M31", "Barnard's Star", "NGC 7000"])
def test_select_script_quotes_checked_names(name):
    assert guest.select_script(name) == f'core.selectObjectByName("{name}", true);'


@pytest.mark.parametrize("name", ['Mars"); core.quitStellarium(); ("', "a\nb", "", "x" * 61, None])
def test_unsafe_names_never_reach_a_script(name):
    with pytest.raises(ValueError):
        guest.check_name(name)


# --- host checks on canned probe values (the live values come from the oracle tests) ---

@dataclass
class FakeGuestClient:
    """Answers probes from a dict; records what was asked."""

    values: dict
    asked: list = field(default_factory=list)

    def probe(self, name, args=None):
        self.asked.append((name, args))
        return self.values[name] if name != "object_info" else self.values["object_info"].get(args["target"])


def _ctx(values: dict, answer: str | None = None) -> CheckContext:
    task = load_app_tasks("stellarium")[0]
    return CheckContext(client=FakeGuestClient(values), answer=answer, task=task)


STATUS = {"jd": 2460599.3333333335, "utc": "2024-10-15T20:00:00", "time_rate": 0.0, "seconds_from_now": -6.4e7,
          "location": {"name": "Paris", "region": "Western Europe", "planet": "Earth", "latitude": 48.85,
                       "longitude": 2.35, "altitude": 42.0}, "fov": 60.0}


def test_time_and_rate_checks():
    ctx = _ctx({"status": STATUS})
    assert host.time_is(ctx, "2024-10-15T20:00:30", tolerance_minutes=1)[0]
    assert not host.time_is(ctx, "2024-10-16T20:00:00")[0]
    assert host.time_rate(ctx, -0.1, 0.1)[0] and not host.time_rate(ctx, 0.9, 1.1)[0]


def test_now_is_the_desktops_clock_at_real_time_speed_even_between_slow_frames():
    def now(seconds_from_now: float, rate: float) -> bool:
        status = {**STATUS, "seconds_from_now": seconds_from_now, "time_rate": rate}
        return host.time_is_now(_ctx({"status": status}))[0]

    assert now(-0.4, 1.0)
    assert now(-4.0, 1.0)  # a VM's last frame is seconds old (Stellarium's own "now" flag says no): still now
    assert not now(-4.0, 10.0)  # the present, ten times faster
    assert not now(0.0, 0.0)  # the present, paused
    assert not now(-3600.0, 1.0)  # an hour off, at real-time speed
    assert not now(-6.4e7, 1.0)  # the task's start time, at real-time speed


def test_location_checks():
    ctx = _ctx({"status": STATUS})
    assert host.location_is(ctx, "paris")[0] and not host.location_is(ctx, "Tokyo")[0]
    assert host.location_near(ctx, 48.9, 2.3, 0.1)[0] and not host.location_near(ctx, -33.9, 18.4, 0.5)[0]


def test_flags_check_reports_what_differs():
    ctx = _ctx({"flags": {"ConstellationMgr.linesDisplayed": True, "LandscapeMgr.landscapeDisplayed": True}})
    ok, _ = host.flags(ctx, {"ConstellationMgr.linesDisplayed": True})
    bad, detail = host.flags(ctx, {"LandscapeMgr.landscapeDisplayed": False, "Nope.flag": True})
    assert ok and not bad and "Nope.flag" in detail


def test_selection_accepts_common_or_catalogue_names():
    ctx = _ctx({"selected": {"name": "HIP 27989", "localized-name": "Betelgeuse"}})
    assert host.selected_object(ctx, "Betelgeuse")[0] and host.selected_object(ctx, "hip 27989")[0]
    assert not host.selected_object(ctx, "Rigel")[0]
    assert not host.selected_object(_ctx({"selected": None}), "Rigel")[0]


def test_view_toward_object_uses_the_objects_live_position():
    values = {"view": {"azimuth": 359.5, "altitude": 48.9}, "object_info": {"Polaris": {"azimuth": 0.9, "altitude": 49.0}}}
    assert host.view_toward_object(_ctx(values), "Polaris", 1.0)[0]
    values["view"] = {"azimuth": 180.0, "altitude": 20.0}
    assert not host.view_toward_object(_ctx(values), "Polaris", 1.0)[0]


def _at_reset(values: dict, answer: str, name: str) -> CheckContext:
    """A context whose check saw ``values`` for ``name`` right after setup (as read_at_reset would)."""
    ctx = _ctx(values, answer)
    ctx.at_reset = values["object_info"].get(name)
    return ctx


def test_answer_checks_compare_with_the_apps_values_at_reset():
    values = {"object_info": {"Saturn": {"vmag": 0.7234, "altitude": 30.4}, "Mars": {"altitude": -12.8},
                              "Moon": {"iauConstellation": "Psc", "altitude": 20.0}}}
    assert host.answer_object_value(_at_reset(values, "0.72", "Saturn"), "Saturn", "vmag", 0.05)[0]
    assert host.answer_object_value(_at_reset(values, "0.72 mag", "Saturn"), "Saturn", "vmag", 0.05)[0]
    assert not host.answer_object_value(_at_reset(values, "1.5", "Saturn"), "Saturn", "vmag", 0.05)[0]
    assert not host.answer_object_value(_at_reset(values, "bright", "Saturn"), "Saturn", "vmag", 0.05)[0]
    assert host.answer_above_horizon(_at_reset(values, "No.", "Mars"), "Mars")[0]
    assert not host.answer_above_horizon(_at_reset(values, "yes", "Mars"), "Mars")[0]
    assert host.answer_above_horizon(_at_reset(values, "yes", "Saturn"), "Saturn")[0]
    for given, expected in (("Pisces", True), ("psc", True), ("Pisces.", True), ("Aries", False), ("Pis", False)):
        assert host.answer_constellation(_at_reset(values, given, "Moon"), "Moon")[0] is expected, given
    assert len(host.CONSTELLATIONS) == 88


def test_task_suite_validates_and_is_big_enough():
    tasks = load_app_tasks("stellarium")
    assert len(tasks) >= 30
    for task in tasks:
        host.ADAPTER.validate_task(task)


# --- live: the RemoteControl server of a running env -------------------------------------------

@pytest.mark.desktop
def test_remote_control_needs_the_per_launch_password(live_env):
    """RemoteControl listens only inside the sandbox, and there it still refuses a request without the password."""
    env = live_env("stellarium")
    env.reset(options={"task": "stellarium/find-mars"})
    status = env.provider.client.probe("status")  # works through the guest (it knows the password)
    assert status["location"]["name"] == "Paris"
    home = episode_home(env.provider)
    port, _ = guest.read_remote_settings((home / ".stellarium" / "config.ini").read_text())
    with pytest.raises(urllib.error.URLError) as err:  # not reachable from the host at all
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/main/status", timeout=10)
    assert not isinstance(err.value, urllib.error.HTTPError)
    request = ("import urllib.error, urllib.request\n"
               "try:\n"
               f"    urllib.request.urlopen('http://127.0.0.1:{port}/api/main/status', timeout=10)\n"
               "    print('open')\n"
               "except urllib.error.HTTPError as err:\n"
               "    print(err.code)\n")
    inside = run_inside(env.provider, request, home)
    assert inside.stdout.strip() == "401", inside.stderr


@pytest.mark.desktop
def test_reset_restores_the_start_state_in_place(live_env):
    env = live_env("stellarium")
    env.reset(options={"task": "stellarium/find-mars"})
    for action in ('key("c")', 'key("F6")', 'key("ctrl+equal")'):
        env.step(action)
    env.reset(options={"task": "stellarium/show-constellation-lines"})
    client = env.provider.client
    assert client.probe("status")["utc"] == "2024-10-15T20:00:00"
    flags = client.probe("flags")
    assert flags["ConstellationMgr.linesDisplayed"] is False
    assert flags["actionShow_Location_Window_Global"] is False
    assert client.probe("selected") is None


@pytest.mark.desktop
def test_reset_times_are_reported(live_env):
    """Median of 5 resets, each after an action that changed the state (printed with -s; no time limit)."""
    import statistics

    env = live_env("stellarium")
    seconds = []
    for task_id in ["stellarium/find-mars", "stellarium/show-constellation-lines", "stellarium/next-day",
                    "stellarium/hide-ground", "stellarium/night-mode", "stellarium/resume-clock"]:
        _, info = env.reset(options={"task": task_id})
        seconds.append(info["reset_seconds"])
        env.step(env.task.oracle[0])
    print(f"\nstellarium reset seconds: {seconds[1:]}, median {statistics.median(seconds[1:]):.2f}")
    assert all(s > 0 for s in seconds)


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.mark.parametrize("first_change,expect_new_frame", [(0.0, False), (guest.FIRST_CHANGE_WAIT, True)])
def test_settle_waits_for_a_late_first_frame(monkeypatch, first_change, expect_new_frame):
    """Stellarium draws an input's effect ~0.9 s late: a plain settle returns the old frame, ours the new one."""
    from sciboard_guest import screen as screen_module

    clock = FakeClock()
    monkeypatch.setattr(screen_module, "time", clock)
    screen = screen_module.Screen.__new__(screen_module.Screen)
    screen.raw_bgrx = lambda: b"new" if clock.now >= 0.9 else b"old"
    settled, _ = screen.settle(quiet=guest.SETTLE_QUIET, timeout=5.0, first_change=first_change)
    assert settled and (screen.raw_bgrx() == b"new") is expect_new_frame
