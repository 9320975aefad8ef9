"""Shared fixtures: one live desktop per app per test worker, reused across tasks."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from sciboard_guest.apps import AppNotInstalled
from sciboard_gym.apps import get_adapter

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
                get_adapter(app).preflight_local()
            except AppNotInstalled as err:
                if app in OPTIONAL_APPS:
                    pytest.skip(str(err))
                raise
            _envs[app] = SciBoardEnv(app=app)
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
