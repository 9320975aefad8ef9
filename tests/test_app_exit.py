"""An app that exits while the guest waits for it to become ready fails the launch at once, with its
exit status and the end of its log, instead of waiting out the readiness timeout.

Each app's own readiness loop is exercised on a real desktop (Xvfb, window manager, buses) with the
app's program replaced by one that exits at once; the readiness timeout is an hour, so a loop that
did not notice would hit the test's timeout instead.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciboard_guest import apps
from sciboard_guest.desktop import Desktop
from sciboard_guest.server import Guest

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]

#: A program that writes a line to its log and exits with code 7.
EXITS_AT_ONCE = [sys.executable, "-c", "import sys; print('cannot start: no such thing'); sys.exit(7)"]
#: Apps whose HOME preparation reads the installed app (GRASS builds its data, Celestia copies its config).
NEEDS_THE_APP = ("grass", "celestia")
#: A program that kills itself with SIGSEGV.
CRASHES = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    # A desktop id of its own: shutdown() kills every process tagged with it, and pytest-xdist may run
    # this module's tests on two workers at once, each with its own desktop.
    desktop = Desktop(tmp_path_factory.mktemp("desktop"), f"app-exit-test-{uuid.uuid4().hex[:12]}", (800, 600))
    guest = Guest(desktop)
    guest.start()
    yield guest
    desktop.shutdown()


def _standing_in(monkeypatch: pytest.MonkeyPatch, name: str, argv: list[str]) -> apps.GuestApp:
    """The registered app ``name`` with its program replaced by ``argv`` and an hour's readiness timeout
    (its HOME prepared as for the real app, except where preparing needs the app installed)."""
    real = apps.get(name)
    stand_in = dataclasses.replace(real, argv=argv, prepare=None if name in NEEDS_THE_APP else real.prepare,
                                   ready_timeout=3600.0)
    monkeypatch.setattr(stand_in, "check_installed", lambda: None)
    monkeypatch.setattr(apps, "get", lambda app: stand_in if app == name else real)
    return stand_in


@pytest.mark.parametrize("name", apps.KNOWN_APPS)
def test_an_app_that_exits_during_its_readiness_wait_fails_at_once(guest, monkeypatch, name):
    _standing_in(monkeypatch, name, EXITS_AT_ONCE)
    with pytest.raises(apps.AppExited) as err:
        guest.launch(name, fresh=True)
    message = str(err.value)
    assert message.startswith(f"{name} could not start: the app exited with code 7"), message
    assert "cannot start: no such thing" in message  # the tail of the app's log
    assert guest.status()["app_alive"] is False


def test_an_app_killed_by_a_signal_names_the_signal(guest, monkeypatch):
    _standing_in(monkeypatch, "kalgebra", CRASHES)
    with pytest.raises(apps.AppExited, match="was killed by signal SIGSEGV"):
        guest.launch("kalgebra", fresh=True)


def test_the_exit_is_told_over_http_and_the_guest_keeps_serving(guest, monkeypatch, tmp_path: Path):
    import secrets
    import threading
    from http.server import ThreadingHTTPServer

    from sciboard_guest.server import make_handler
    from sciboard_gym.guest_client import GuestClient, GuestError

    _standing_in(monkeypatch, "pymol", EXITS_AT_ONCE)
    token = secrets.token_urlsafe(24)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(guest, token))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    client = GuestClient("127.0.0.1", server.server_address[1], token, timeout=60)
    try:
        with pytest.raises(GuestError, match="exited with code 7") as err:
            client.launch("pymol")
        assert "cannot start: no such thing" in str(err.value)
        assert client.health()["ok"]
    finally:
        client.close()
        server.shutdown()
        server.server_close()
