"""Guest faults versus request errors, over real HTTP without a desktop.

The guest server answers a bug inside a probe or setup step with 500 (a fault) and a refused
argument with 400; the host treats a 5xx as a guest fault. The guest client never re-sends a
POST whose answer was lost (``/input`` may have typed already), retries a GET once, and
reconnects before reusing a kept-alive connection the server closed while idle.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from sciboard_guest import apps, inputs
from sciboard_guest.server import Guest, make_handler
from sciboard_gym.apps import get_adapter
from sciboard_gym.guest_client import GuestClient, GuestError, GuestUnreachable
from sciboard_gym.tasks import get_task


class FakeDesktop:
    """The parts of a desktop the server consults, all healthy."""

    def __init__(self, home: Path):
        self._home = home
        self.env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":99"}
        self.display = ":99"
        self.fbdir = None  # an X server the guest does not own: frames over HTTP
        self.any_spare_pid = None  # no spare app in the background

    def alive(self, name: str) -> bool:
        return True

    def pid(self, name: str) -> int | None:
        return None

    def exit_status(self, name: str) -> int | None:
        return None

    def log_path(self, name: str) -> Path:
        return self._home / f"{name}.log"

    def component_status(self) -> dict[str, bool]:
        return {"xvfb": True, "wm": True, "dbus": True, "app": True}


def _buggy_probe(ctx: apps.AppContext) -> Any:
    return {"x": 1}["y"]  # a bug: KeyError


def _refusing_probe(ctx: apps.AppContext, name: str) -> Any:
    raise apps.BadArgument(f"no variable called {name!r}")


def _buggy_setup(ctx: apps.AppContext, expression: str) -> None:
    len(None)  # type: ignore[arg-type]  # a bug: TypeError


def _serve(guest: Guest) -> Iterator[GuestClient]:
    token = secrets.token_urlsafe(24)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(guest, token))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client = GuestClient("127.0.0.1", server.server_address[1], token, timeout=10)
    yield client
    client.close()
    server.shutdown()
    server.server_close()


class FakeAccessibility:
    """An accessibility bus whose apps have always taken their input in (or, ``broken``, that fails when
    asked); counts the catch-ups asked for."""

    def __init__(self, broken: bool = False) -> None:
        self.catch_ups, self.broken = 0, broken

    def caught_up(self, deadline: float, prompt: float) -> bool:
        self.catch_ups += 1
        if self.broken:
            raise RuntimeError("the accessibility registry went away")
        return True


def _guest(home: Path, app: apps.GuestApp, settles: list[float]) -> Guest:
    """A guest on a fake desktop whose screen settles at once (each settle's quiet window goes to ``settles``)."""
    guest = Guest(FakeDesktop(home))  # type: ignore[arg-type]

    def settle(quiet: float, **_: Any) -> tuple[bool, float]:
        settles.append(quiet)
        return True, 0.0

    guest._screen = SimpleNamespace(width=64, height=48, settle=settle)  # type: ignore[assignment]
    guest._a11y = FakeAccessibility()  # type: ignore[assignment]  # no probe here reads the accessibility tree
    guest._input_device = inputs.InputDevice(guest.desktop.env, (64, 48))  # checks an action before touching X
    guest.app = app
    return guest


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GuestClient]:
    """A real guest server on loopback whose app ("kalgebra"-named) has one buggy and one refusing probe."""
    app = apps.GuestApp(name="kalgebra", argv=["true"], probes={"variables": _buggy_probe, "refusing": _refusing_probe},
                        setups={"calculate": _buggy_setup})
    yield from _serve(_guest(tmp_path, app, []))


def test_a_step_does_not_settle_while_the_app_is_busy(tmp_path):
    busy_until = time.monotonic() + 0.5
    app = apps.GuestApp(name="grass", argv=["true"])
    app.busy(lambda ctx: time.monotonic() < busy_until)  # e.g. a command still running
    settles: list[float] = []
    guest = _guest(tmp_path, app, settles)
    for client in _serve(guest):
        reply = client.settle(0.2, 3.0)
        assert reply["settled"] and reply["seconds"] >= 0.45
        assert settles == [0.2, 0.2]  # settled once more after the work ended
        assert client.settle(0.2, 3.0)["settled"] and settles == [0.2, 0.2, 0.2]  # idle: one settle
        assert guest.a11y.catch_ups == 2  # each settle first waited until the app had taken its input in


def test_a_broken_accessibility_bus_does_not_fail_a_step(tmp_path, capfd):
    settles: list[float] = []
    guest = _guest(tmp_path, apps.GuestApp(name="kalgebra", argv=["true"]), settles)
    guest._a11y = FakeAccessibility(broken=True)  # type: ignore[assignment]
    for client in _serve(guest):
        assert client.settle(0.2, 3.0)["settled"] and settles == [0.2]
    assert "could not be asked over the accessibility bus" in capfd.readouterr().err


def test_a_bug_inside_a_probe_or_setup_step_is_a_500_and_the_server_keeps_serving(served):
    with pytest.raises(GuestError) as err:
        served.probe("variables")
    assert err.value.status == 500 and "KeyError" in str(err.value)
    with pytest.raises(GuestError) as err:
        served.setup("calculate", {"expression": "1+1"})
    assert err.value.status == 500 and "TypeError" in str(err.value)
    assert served.health()["ok"]


@pytest.mark.parametrize("call", [
    lambda c: c.probe("refusing", {"name": "x"}),  # the probe refuses its argument
    lambda c: c.probe("no_such_probe"),
    lambda c: c.probe("refusing", {}),  # a missing argument
    lambda c: c.probe("refusing", {"name": 3}),  # a wrongly typed argument
    lambda c: c.probe("refusing", {"name": "x", "extra": 1}),
    lambda c: c.call("POST", "/probe", {"probe": "refusing", "args": [1]}),
    lambda c: c.call("POST", "/input", {"action": {"name": ["click"], "x": 1, "y": 1}}),
    lambda c: c.call("POST", "/input", {"action": "click(1, 1)"}),
])
def test_a_refused_request_is_a_400(served, call):
    with pytest.raises(GuestError) as err:
        call(served)
    assert err.value.status == 400, err.value


def test_the_host_treats_a_500_from_a_probe_as_a_guest_fault_not_a_failed_check(served):
    with pytest.raises(GuestError) as err:
        get_adapter("kalgebra").evaluate(get_task("kalgebra/assign-sum"), served, None)
    assert err.value.status == 500


# --- the client: what is retried and what is not -----------------------------------------------


class ScriptedGuest(BaseHTTPRequestHandler):
    """Drops the answer to every POST /input and to the first GET /health; closes idle connections fast."""

    protocol_version = "HTTP/1.1"
    timeout = 0.3
    received: ClassVar[list[str]] = []
    answer_inputs: ClassVar[bool] = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.received.append("GET " + self.path)
        if self.received.count("GET /health") == 1:
            self.close_connection = True  # lost answer
            return
        self._answer({"ok": True})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append("POST " + self.path)
        if not self.answer_inputs:
            self.close_connection = True  # the input was performed, its answer is lost
            return
        self._answer({"ok": True})

    def _answer(self, value: Any) -> None:
        payload = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def scripted() -> Iterator[tuple[GuestClient, type[ScriptedGuest]]]:
    handler = type("Scripted", (ScriptedGuest,), {"received": [], "answer_inputs": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    client = GuestClient("127.0.0.1", server.server_address[1], "t" * 24, timeout=5)
    yield client, handler
    client.close()
    server.shutdown()
    server.server_close()


def test_a_lost_input_answer_is_a_fault_never_a_second_input(scripted):
    client, handler = scripted
    with pytest.raises(GuestUnreachable):
        client.input({"name": "type", "text": "x"})
    assert handler.received == ["POST /input"], "the input was sent twice"


def test_a_lost_get_answer_is_retried_once(scripted):
    client, handler = scripted
    assert client.health() == {"ok": True}
    assert handler.received == ["GET /health", "GET /health"]


def test_a_kept_alive_connection_closed_while_idle_is_replaced_before_a_post(scripted):
    client, handler = scripted
    handler.answer_inputs = True
    client.input({"name": "type", "text": "a"})
    time.sleep(0.8)  # the server closes the idle connection after 0.3 s
    client.input({"name": "type", "text": "b"})
    assert handler.received == ["POST /input", "POST /input"]
