"""An app that exits while the guest waits for it to become ready fails the launch at once, with its
exit status and the end of its log, instead of waiting out the readiness timeout.

Each app's own readiness loop is exercised on a real sandboxed desktop (Xvfb, window manager, buses
from the pinned tree) whose guest has every app's program replaced by one that exits at once
(``tests/stand_in_guest.py``); the readiness timeout is an hour, so a loop that did not notice would
hit the test's timeout instead. The test talks to that guest over its socket, as a provider does.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sciboard_guest import apps, processes
from sciboard_guest.protocol import LOG_NAME, SOCKET_NAME, TOKEN_NAME
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.providers import sandbox as sandboxing
from vm_images.trees import require_desktop_tree

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("stand_in_guest.py")


@contextmanager
def stand_in_guest(folder: Path, mode: str) -> Iterator[GuestClient]:
    """A sandboxed desktop whose guest runs every app as ``mode``'s stand-in (see stand_in_guest.py)."""
    folder.mkdir(mode=0o700)
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    token = uuid.uuid4().hex
    (folder / TOKEN_NAME).write_text(token)
    desktop_id = f"app-exit-test-{uuid.uuid4().hex[:12]}"
    box = sandboxing.Sandbox(require_desktop_tree().root, folder, ROOT, env={processes.MARKER: desktop_id})
    inside = sandboxing.DESKTOP_DIR
    argv = box.argv(["/usr/bin/python3", f"{inside}/{SCRIPT.name}", mode, "--workdir", inside,
                     "--token-file", f"{inside}/{TOKEN_NAME}", "--delete-token-file",
                     "--socket", f"{inside}/{SOCKET_NAME}", "--screen", "800x600", "--exit-with-parent"])
    with open(folder / LOG_NAME, "ab") as log:
        proc = subprocess.Popen(argv, env={"PATH": sandboxing.PATH}, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    client = GuestClient("localhost", 0, token, timeout=120, unix_socket=str(folder / SOCKET_NAME))
    try:
        deadline = time.monotonic() + 60
        while not (folder / SOCKET_NAME).exists():
            assert proc.poll() is None and time.monotonic() < deadline, (folder / LOG_NAME).read_text()
            time.sleep(0.05)
        client.handshake(timeout=30)
        yield client
    finally:
        client.shutdown(timeout=10)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        processes.kill_tagged(desktop_id)


@pytest.fixture(scope="module")
def exiting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestClient]:
    with stand_in_guest(tmp_path_factory.mktemp("exit") / "desktop", "exit") as client:
        yield client


@pytest.mark.parametrize("name", apps.KNOWN_APPS)
def test_an_app_that_exits_during_its_readiness_wait_fails_at_once(exiting, name):
    with pytest.raises(GuestError) as err:
        exiting.launch(name)
    message = str(err.value)
    assert f"{name} could not start: the app exited with code 7" in message, message
    assert "cannot start: no such thing" in message  # the tail of the app's log
    health = exiting.health()  # the guest keeps serving
    assert health["ok"] and health["app_alive"] is False


def test_an_app_killed_by_a_signal_names_the_signal(tmp_path):
    with stand_in_guest(tmp_path / "desktop", "crash") as client, pytest.raises(GuestError) as err:
        client.launch("kalgebra")
    assert "kalgebra could not start: the app was killed by signal SIGSEGV" in str(err.value), str(err.value)
