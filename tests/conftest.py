"""Shared fixtures: one live desktop per app per test worker, reused across tasks."""

from __future__ import annotations

import os
import subprocess
import time
from collections import defaultdict

import pytest

from sciboard_guest.apps import AppNotInstalled
from sciboard_guest.protocol import FRAMEBUFFER

#: Apps whose installers are licence-gated or not packaged for Debian 12: their live tests are
#: skipped (with the reason) where the app is missing; every other app must be installed.
OPTIONAL_APPS = {"chimerax", "celestia"}

_envs: dict[str, object] = {}
_durations: dict[str, float] = defaultdict(float)


@pytest.fixture(scope="session")
def live_env():
    """``live_env(app)`` -> a started SciBoardEnv for ``app``, shared by the worker's tests.

    One app runs per worker at a time: asking for another app closes the previous one (an idle
    app still costs CPU). The oracle tests are grouped per app (``xdist_group``), so this is rare.
    """
    from sciboard_gym.env import SciBoardEnv

    def get(app: str) -> SciBoardEnv:
        if app not in _envs:
            for other in list(_envs):
                _envs.pop(other).close()
            try:
                _envs[app] = SciBoardEnv(app=app)
            except AppNotInstalled as err:
                if app in OPTIONAL_APPS:
                    pytest.skip(str(err))
                raise
        return _envs[app]

    yield get
    for env in _envs.values():
        env.close()
    _envs.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _durations[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Per-group timing, so the suite's growth stays visible (collected on the controller)."""
    if not _durations:
        return
    terminalreporter.section("time per test group (s)")
    for group, seconds in sorted(_durations.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f}  {group}")
    terminalreporter.write_line(f"{sum(_durations.values()):8.1f}  total (summed over workers)")


@pytest.fixture(scope="module")
def desktop():
    """(provider, client): a bare 800x600 local desktop running KAlgebra, shared by one test module."""
    from sciboard_gym.providers.local import LocalProvider

    provider = LocalProvider(screen_size=(800, 600))
    client = provider.start()
    client.launch("kalgebra")
    yield provider, client
    provider.close()


@pytest.fixture
def stopwatch():
    start = time.monotonic()
    yield lambda: time.monotonic() - start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep each app's episodes together (oracle and immediate-done runs), so a worker starts each app once."""

    def group(item: pytest.Item) -> str:
        marker = item.get_closest_marker("xdist_group")
        return marker.args[0] if marker else ""

    items.sort(key=group)


class ScriptedAgent:
    """Plays a fixed list of actions (e.g. part of a task's oracle, then ``done()``)."""

    def __init__(self, script: list[str]):
        self.script, self._next = script, 0

    def reset(self, instruction: str) -> None:
        self._next = 0

    def act(self, observation) -> str:
        action = self.script[self._next] if self._next < len(self.script) else "fail()"
        self._next += 1
        return action


#: Tasks the recorded-episode fixture plays: oracle runs (successes) and cut-short oracles (failures).
RECORDED_ORACLE = ("kalgebra/assign-sum", "kalgebra/answer-gcd", "kalgebra/power-of-two")
RECORDED_CUT_SHORT = ("kalgebra/cube-root", "kalgebra/sum-to-hundred")


@pytest.fixture(scope="session")
def recorded_episodes(live_env, tmp_path_factory):
    """A folder of real KAlgebra episodes recorded once per worker: oracle runs of three training
    tasks (successes) and two runs that stop after the oracle's first action (failures)."""
    from baselines.oracle import OracleAgent
    from sciboard_gym.episode import run_episode
    from sciboard_gym.tasks import get_task
    from sciboard_gym.trajectory import TrajectoryRecorder

    root = tmp_path_factory.mktemp("recorded")
    env = live_env("kalgebra")
    for task_id in RECORDED_ORACLE + RECORDED_CUT_SHORT:
        task = get_task(task_id)
        agent = OracleAgent(task.variant(3)) if task_id in RECORDED_ORACLE else ScriptedAgent([task.oracle[0], "done()"])
        kind = "oracle" if task_id in RECORDED_ORACLE else "cut-short"
        result = run_episode(env, agent, task=task_id, seed=3,
                             recorder=TrajectoryRecorder(root / f"{task_id.replace('/', '_')}-{kind}"))
        assert result.success == (task_id in RECORDED_ORACLE), (task_id, result)
    return root


@pytest.fixture()
def xvfb(tmp_path):
    """An Xvfb with a memory-mapped framebuffer and one red 200x100 window at (300, 200)."""
    from Xlib import X, display

    fbdir = tmp_path / FRAMEBUFFER.parent
    fbdir.mkdir()
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=(write_fd,), stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        name = f":{pipe.readline().strip()}"
    conn = display.Display(name)
    screen = conn.screen()
    red = screen.default_colormap.alloc_color(0xFFFF, 0, 0).pixel
    window = screen.root.create_window(300, 200, 200, 100, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                       background_pixel=red, override_redirect=True)
    window.map()
    conn.sync()
    time.sleep(0.3)
    yield name, fbdir
    conn.close()
    proc.terminate()
    proc.wait(timeout=10)
