"""Guest agent security over real HTTP and real processes (extends tests/test_guest.py).

Every endpoint wants the desktop's token; the agent refuses to listen beyond loopback
or the VM-only network; no desktop process listens on the network; shell strings
sent anywhere run nothing; file-taking probes stay inside the episode's HOME;
malformed, oversized, stalled and fuzzed requests get 4xx and the server keeps serving.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import inspect
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciboard_guest import apps, inputs, processes
from sciboard_gym import actions
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.providers import sandbox as sandboxing
from vm_images.trees import require_desktop_tree

ROOT = Path(__file__).resolve().parents[1]
ROUTES = [("GET", "/health"), ("GET", "/screenshot"), ("POST", "/settle"), ("POST", "/input"), ("GET", "/a11y"),
          ("POST", "/app/launch"), ("POST", "/app/stop"), ("POST", "/setup"), ("POST", "/probe"),
          ("POST", "/memory/trim"), ("POST", "/shutdown")]


def request(client: GuestClient, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None, auth: bool = True) -> tuple[int, bytes]:
    conn = client.connect_raw()
    try:
        conn.request(method, path, body=body, headers=({"Authorization": client._auth} if auth else {}) | (headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def send_raw(client: GuestClient, data: bytes) -> bytes:
    """Write raw bytes on a fresh connection and return everything the server answers before closing."""
    with client.connect_raw().sock as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_still_serving(client: GuestClient) -> None:
    health = client.health()
    assert health["ok"] and health["app_alive"], health


# --- authentication --------------------------------------------------------------------------


@pytest.mark.desktop
def test_every_endpoint_refuses_every_wrong_credential(desktop):
    _, client = desktop
    token = client._auth.removeprefix("Bearer ")
    wrong = [
        {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {token}"},
        {"Authorization": f"bearer {token}"}, {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Bearer {token.swapcase()}"},
        {"X-Token": token}, {"Cookie": f"token={token}"},
    ]
    for method, path in ROUTES:
        for headers in wrong:
            body = b"{}" if method == "POST" else None
            status, data = request(client, method, path, body, headers, auth=False)
            assert status == 401, (method, path, headers)
            assert json.loads(data) == {"error": "missing or wrong token"}
        assert request(client, method, f"{path}?token={token}", b"{}" if method == "POST" else None,
                       auth=False)[0] == 401
    assert_still_serving(client)  # neither /app/stop nor /shutdown was obeyed


def _guest_cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``python3 -m sciboard_guest ARGS`` in a desktop sandbox (the tree's Python, as a local desktop runs it),
    with ``folder`` as its desktop folder (DESKTOP_DIR inside) holding the token file."""
    box = sandboxing.Sandbox(require_desktop_tree().root, folder, ROOT)
    return subprocess.run(box.argv(["/usr/bin/python3", "-m", "sciboard_guest", *args]), env={"PATH": sandboxing.PATH},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.10", "10.1.2.3", "example.org"])
def test_guest_refuses_to_listen_beyond_loopback_or_the_vm_network(tmp_path, bind):
    (tmp_path / "token").write_text("t" * 32)
    inside = sandboxing.DESKTOP_DIR
    result = _guest_cli(tmp_path, "--workdir", f"{inside}/w", "--token-file", f"{inside}/token", "--bind", bind)
    assert result.returncode == 2 and "--bind must be loopback" in result.stderr, result.stderr
    assert not (tmp_path / "w").exists(), "no desktop may start"


def test_guest_refuses_a_weak_token(tmp_path):
    (tmp_path / "token").write_text("short")
    inside = sandboxing.DESKTOP_DIR
    result = _guest_cli(tmp_path, "--workdir", f"{inside}/w", "--token-file", f"{inside}/token")
    assert result.returncode == 2 and "at least 16 characters" in result.stderr, result.stderr
    assert not (tmp_path / "w").exists(), "no desktop may start"


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def _network_sockets() -> list[tuple[str, str, str, str]]:
    """(table, local address hex, state, inode) of every IPv4/IPv6 TCP/UDP socket on this host."""
    rows = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            rows.append((table, fields[1], fields[3], fields[9]))
    return rows


@pytest.mark.desktop
def test_no_desktop_process_listens_on_the_network(desktop):
    provider, _ = desktop
    inodes = set()
    for pid in processes.tagged_pids(provider.desktop_id):
        try:
            inodes |= _socket_inodes(pid)
        except OSError:
            continue
    assert inodes, "the desktop's processes should be found with their sockets"
    listening = [(table, address) for table, address, state, inode in _network_sockets()
                 if inode in inodes and (state == "0A" or table.startswith("udp"))]
    # The guest serves on a Unix socket; every app server lives in the sandbox's own network namespace.
    assert listening == [], listening


# --- no code execution -----------------------------------------------------------------------

SHELL_STRINGS = ["$(touch {canary})", "`touch {canary}`", "; touch {canary}", "| touch {canary}",
                 "&& touch {canary}", "\ntouch {canary}\n"]


@pytest.mark.desktop
def test_shell_strings_sent_anywhere_run_nothing(desktop, tmp_path):
    _, client = desktop
    canary = tmp_path / "canary"
    for template in SHELL_STRINGS:
        text = template.format(canary=canary)
        client.input({"name": "type", "text": text}, settle=(0.1, 2.0))
        client.input({"name": "key", "keys": "ctrl+a"})
        client.input({"name": "key", "keys": "BackSpace"})
        calls = [(client.input, {"name": "key", "keys": text}), (client.launch, text), (client.probe, text),
                 (client.setup, text), (client.a11y_text, text)]
        calls += [(lambda args: client.probe("variables", args), {text: 1}),
                  (lambda args: client.setup("calculate", args), {"expression": text})]
        for call, argument in calls:
            try:
                call(argument)
            except GuestError as err:
                assert 400 <= err.status < 500, err
    assert not canary.exists(), "a shell string was executed"
    assert_still_serving(client)


# --- file access stays inside HOME ---------------------------------------------------------

TRAVERSALS = ["../secret.txt", "../../secret.txt", "/etc/passwd", "{outside}/secret.txt", "a/../../secret.txt",
              "..", ".", "", "link/secret.txt", "link", "./../secret.txt", "secret.txt\x00.pdb", "~/../secret.txt"]


def _file_entry_points() -> list:
    """(app, kind, name) of every registered setup step and probe that takes a file or path argument."""
    found = []
    for app in apps.KNOWN_APPS:
        try:
            module = importlib.import_module(f"sciboard_guest.apps.{app}")
        except ImportError:
            continue
        for kind, table in (("setup step", module.APP.setups), ("probe", module.APP.probes)):
            for name, fn in table.items():
                if {"path", "file", "folder", "directory"} & set(inspect.signature(fn).parameters):
                    found.append(pytest.param(app, kind, name))
    return found


@pytest.mark.parametrize("app,kind,name", _file_entry_points())
def test_file_arguments_cannot_leave_home(tmp_path, app, kind, name):
    outside, home = tmp_path / "outside", tmp_path / "home"
    outside.mkdir()
    home.mkdir()
    secret = "top-secret-" + os.urandom(4).hex()
    (outside / "secret.txt").write_text(secret)
    (tmp_path / "secret.txt").write_text(secret)
    (home / "link").symlink_to(outside)
    module = importlib.import_module(f"sciboard_guest.apps.{app}")
    table = module.APP.setups if kind == "setup step" else module.APP.probes
    fn = table[name]
    argument = next(p for p in ("path", "file", "folder", "directory") if p in inspect.signature(fn).parameters)
    context = apps.AppContext(env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, home=home, screen=None, a11y=None,
                              perform=lambda action: None, settle=lambda **kw: (True, 0.0))
    for value in TRAVERSALS:
        value = value.format(outside=outside)
        args = {p.name: "x" for p in list(inspect.signature(fn).parameters.values())[1:]
                if p.default is inspect.Parameter.empty} | {argument: value}
        try:
            result = apps.call_named(table, kind, name, context, args)
        except (ValueError, TypeError, KeyError, apps.AppError) as err:  # what the server answers with 4xx
            assert str(err).strip()
            continue
        except OSError:
            continue  # nothing was read
        assert secret not in json.dumps(result, default=str), f"{app} {kind} {name}({argument}={value!r}) read outside HOME"
        assert not isinstance(result, dict) or not result.get("exists"), (value, result)
    assert (outside / "secret.txt").read_text() == secret, "a setup step wrote outside HOME"


@pytest.mark.desktop
def test_url_paths_cannot_traverse(desktop):
    _, client = desktop
    for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/health/../shutdown",
                 "/app/../shutdown", "/shutdown/.", "/./shutdown", "/SHUTDOWN", "/shutdown%00"]:
        status, _ = request(client, "POST", path, b"{}")
        assert status == 404, path
    assert_still_serving(client)


# --- malformed, oversized and stalled requests ----------------------------------------------


@pytest.mark.desktop
def test_malformed_requests_get_4xx_and_the_server_keeps_serving(desktop):
    _, client = desktop
    bad_bodies = [b"[" * 200_000 + b"]" * 200_000, b'{"quiet": NaN}', b'{"quiet": Infinity}', b'{"quiet": 1e999}',
                  b"\xff\xfe\x00{", b'{"a": "\\ud800"', b"null", b'"string"']
    for body in bad_bodies:
        status, data = request(client, "POST", "/settle", body)
        assert status == 400, (body[:20], data)
        assert json.loads(data)["error"]
    for settle in [{"quiet": "nan"}, {"timeout": "inf"}, {"quiet": [1]}, {"timeout": True}]:
        status, data = request(client, "POST", "/settle", json.dumps(settle).encode())
        assert status == 400 and "finite number" in json.loads(data)["error"], settle
    status, _ = request(client, "POST", "/probe", b"{}", {"Content-Length": "-5"})
    assert 400 <= status < 500
    # Not HTTP at all (a TLS hello): the answer is an HTTP/0.9-style error page, code 400.
    assert b"Error code: 400" in send_raw(client, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    assert send_raw(client, b"GET /health HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n").split(b" ")[1] in (b"400",
                                                                                                           b"431")
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    assert send_raw(client, b"GET /health HTTP/1.1\r\n" + many + b"\r\n").split(b" ")[1] == b"431"
    assert_still_serving(client)


@pytest.mark.desktop
def test_stalled_and_idle_clients_do_not_block_the_server(desktop):
    _, client = desktop
    stalled = []
    try:
        for _ in range(3):  # headers sent, body promised but never finished
            sock = client.connect_raw().sock
            sock.sendall(b"POST /settle HTTP/1.1\r\nAuthorization: " + client._auth.encode() +
                         b"\r\nContent-Length: 1000\r\n\r\n{\"quiet\"")
            stalled.append(sock)
        for _ in range(30):  # connected, silent
            stalled.append(client.connect_raw().sock)
        fresh = GuestClient(client.host, client.port, client._auth.removeprefix("Bearer "), timeout=20,
                            unix_socket=client.unix_socket)
        try:
            assert fresh.health()["ok"]
            assert fresh.settle(0.05, 1.0)["app_alive"]
        finally:
            fresh.close()
    finally:
        for sock in stalled:
            sock.close()
    assert_still_serving(client)


FUZZ_ROUTES = ["/settle", "/input", "/probe", "/setup"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False,
                                                                       min_value=-5, max_value=5) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10)
BODIES = st.fixed_dictionaries({}, optional={
    "action": st.fixed_dictionaries({"name": st.sampled_from(["click", "move", "key", "type", "scroll", "drag", "x"])},
                                    optional={k: JSON_VALUES | st.integers(0, 799) for k in ("x", "y", "dy", "keys",
                                                                                             "text")}) | JSON_VALUES,
    "settle": st.fixed_dictionaries({}, optional={"quiet": JSON_VALUES, "timeout": JSON_VALUES}) | JSON_VALUES,
    "probe": st.sampled_from(["variables", "current_tab", "eval", ""]) | JSON_VALUES,
    "step": st.sampled_from(["open_tab", "calculate", "system"]) | JSON_VALUES,
    "args": JSON_VALUES, "quiet": JSON_VALUES, "timeout": JSON_VALUES,
})


@pytest.mark.desktop
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(FUZZ_ROUTES), body=BODIES)
def test_fuzzed_requests_get_answers_not_crashes(desktop, route, body):
    _, client = desktop
    status, data = request(client, "POST", route, json.dumps(body).encode())
    answer = json.loads(data)
    assert status == 200 or (400 <= status < 500 and answer["error"]), (status, answer)
    assert client.health()["ok"]


CODE_STRINGS = [*SHELL_STRINGS, "__import__('os').system('touch {canary}')", "open('{canary}', 'w').close()",
                "exec(\"open('{canary}', 'w').close()\")", "{{{{ __import__('os').system('touch {canary}') }}}}",
                "x); import os; os.system('touch {canary}'); (y"]
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "python", "python3", "perl", "lua", "env", "xargs"}


def _sample(annotation: object, text: str) -> object:
    return {str: text, float: 1.0, int: 1, bool: True}.get(annotation, text)  # type: ignore[call-overload]


@pytest.mark.parametrize("app", apps.KNOWN_APPS)
def test_code_strings_in_every_setup_and_probe_argument_run_nothing(tmp_path, monkeypatch, app):
    """Every named entry point of the app gets code and shell strings in each argument: nothing evaluates
    them (eval/exec/os.system/os.popen are watched), no shell or interpreter is started, no canary file
    appears. Without a running app most calls fail after checking their arguments; that is fine."""
    canary = tmp_path / "canary"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(home)
    started: list[tuple[object, bool]] = []
    evaluated: list[object] = []
    popen_init = subprocess.Popen.__init__

    def watched_popen(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        started.append((args, bool(kwargs.get("shell"))))
        popen_init(self, args, *rest, **kwargs)  # type: ignore[arg-type]

    def refused(*args: object, **kwargs: object) -> None:
        evaluated.append(args)
        raise AssertionError("a shell was asked for")

    def watched(real: object) -> object:
        def run(source: object, *rest: object, **kwargs: object) -> object:
            if isinstance(source, str) and "canary" in source:
                evaluated.append(source)
            return real(source, *rest, **kwargs)  # type: ignore[operator]
        return run

    monkeypatch.setattr(subprocess.Popen, "__init__", watched_popen)
    monkeypatch.setattr(os, "system", refused)
    monkeypatch.setattr(os, "popen", refused)
    monkeypatch.setattr(builtins, "eval", watched(builtins.eval))
    monkeypatch.setattr(builtins, "exec", watched(builtins.exec))
    module = importlib.import_module(f"sciboard_guest.apps.{app}")
    context = apps.AppContext(env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, home=home, screen=None,
                              a11y=None, perform=lambda action: None, settle=lambda **kw: (True, 0.0))
    calls = 0
    for kind, table in (("setup step", module.APP.setups), ("probe", module.APP.probes)):
        for name, fn in table.items():
            hints = inspect.get_annotations(fn, eval_str=True)
            params = list(inspect.signature(fn).parameters)[1:]
            for template in CODE_STRINGS:
                text = template.format(canary=canary)
                # Refused, or the app is not there: what matters is that nothing ran.
                with contextlib.suppress(Exception):
                    apps.call_named(table, kind, name, context, {p: _sample(hints.get(p), text) for p in params})
                calls += 1
    assert calls and not evaluated, evaluated
    shells = [args for args, shell in started if shell or isinstance(args, (str, bytes))
              or Path(str(next(iter(args)))).name in SHELLS]  # type: ignore[call-overload]
    assert not shells, shells
    assert not canary.exists(), "a code string was executed"


def test_code_strings_as_actions_are_refused_or_typed_as_text():
    """The action language parses, never evaluates: code is an error, or literal text for type()."""
    for template in CODE_STRINGS:
        text = template.format(canary="/tmp/canary")
        with pytest.raises(actions.ActionError):
            actions.parse(text)
        typed = actions.parse(f"type({json.dumps(text)})")
        assert typed.to_dict() == {"name": "type", "text": text}
        assert inputs.keyboard_command(typed.to_dict())[-2:] == ["--", text]  # one argv item after "--"

