"""The sandbox of the local desktop, attacked from inside: code run through each app cannot reach the host.

Each app's code-running command (PyMOL's ``/`` Python line, a command in the GRASS console) is typed
through the env like an agent would, running an escape script that tries to write a file on the host,
connect to a listener the test opens on the host's loopback and list the host's processes. The
script writes what it saw into the episode's HOME, which proves it ran. For every app the same
script also runs inside the live desktop's own namespaces (as any process of the app would), and no
desktop process may listen on a host interface.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from sciboard_guest import processes
from sciboard_gym.providers.local import LocalProvider
from vm_images.trees import SANDBOX_UID, tree_apps

pytestmark = pytest.mark.desktop

REPORT = "escape-report.json"
_ESCAPE = """import os,socket,json
r={{"uid":os.getuid()}}
r["host_write"]=os.system("id > {host_file} 2>/dev/null")
r["tmp_write"]=os.system("id > /tmp/{name}")
s=socket.socket();s.settimeout(3);r["connect"]=s.connect_ex(("127.0.0.1",{port}))
r["pids"]=sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
r["init"]=open("/proc/1/cmdline","rb").read().split(b"\\0")[0].decode()
open(os.path.expanduser("~/{report}"),"w").write(json.dumps(r))
"""


class HostListener:
    """A TCP listener on the host's loopback that records every connection it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.server.accept()
            except TimeoutError:
                continue
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


@pytest.fixture
def listener() -> Iterator[HostListener]:
    server = HostListener()
    yield server
    server.close()


def escape_script(host_file: Path, name: str, port: int) -> str:
    return _ESCAPE.format(host_file=host_file, name=name, port=port, report=REPORT)


def hex_payload(script: str) -> str:
    return f"exec(bytes.fromhex('{script.encode().hex()}'))"


def sandbox_pids(provider: LocalProvider) -> list[int]:
    pids = processes.tagged_pids(provider.desktop_id)
    assert pids, "the desktop's processes should be found by their tag"
    return pids


def run_inside(provider: LocalProvider, script: str, home: Path) -> subprocess.CompletedProcess:
    """Run ``script`` with the tree's Python in the namespaces of the live desktop, as its unprivileged user."""
    inside_home = "/run/sciboard/desktop/" + home.name
    pid = sandbox_pids(provider)[0]
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-U", "-m", "-n", "-p", "-i", "-u", "-S", str(SANDBOX_UID), "-G", str(SANDBOX_UID),
         "--wd=/", "env", "-i", f"HOME={inside_home}", "PATH=/usr/bin:/bin", "/usr/bin/python3", "-c",
         hex_payload(script)], capture_output=True, text=True, timeout=60, check=False)


def episode_home(provider: LocalProvider) -> Path:
    homes = sorted(provider._workdir.glob("home-*"), key=lambda p: int(p.name.split("-")[1]))
    assert homes, "the app's episode HOME should be in the desktop folder"
    return homes[-1]


def wait_for(path: Path, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size:
            return json.loads(path.read_text())
        time.sleep(0.2)
    raise AssertionError(f"the escape script never ran (no {path})")


def assert_contained(report: dict, host_file: Path, tmp_name: str, listener: HostListener) -> None:
    assert report["uid"] == SANDBOX_UID, report
    assert report["host_write"] != 0 and not host_file.exists(), "a file was written on the host"
    assert report["tmp_write"] == 0, "the sandbox's own /tmp should be writable"
    assert not Path("/tmp", tmp_name).exists(), "the sandbox's /tmp is the host's /tmp"
    assert report["connect"] != 0 and not listener.accepted, "a host listener on 127.0.0.1 was reached"
    assert os.getpid() not in report["pids"] and len(report["pids"]) < 60, "host processes are visible"
    assert report["init"].endswith("bwrap"), report["init"]


def assert_no_host_listener(provider: LocalProvider) -> dict[str, int]:
    """No desktop process has a socket in the host's network namespace; returns its listeners inside."""
    host_netns = os.readlink("/proc/self/ns/net")
    host_inodes = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        host_inodes |= {line.split()[9] for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]}
    inside: dict[str, int] = {}
    for pid in sandbox_pids(provider):
        try:
            assert os.readlink(f"/proc/{pid}/ns/net") != host_netns, f"process {pid} shares the host's network"
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            tcp = [line for table in ("tcp", "tcp6") for line in Path(f"/proc/{pid}/net/{table}").read_text()
                   .splitlines()[1:]]
        except FileNotFoundError:
            continue  # exited meanwhile
        sockets = set()
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
        assert not sockets & host_inodes, f"process {pid} has a socket on the host's network"
        for line in tcp:
            fields = line.split()
            if fields[3] == "0A":
                inside[fields[1]] = pid
    return inside


# --- every app: nothing listens on the host; code run as the app stays inside ---------------------------------

APPS = [pytest.param(app, marks=pytest.mark.xdist_group(app)) for app in tree_apps()]


@pytest.mark.parametrize("app", APPS)
def test_app_runs_sandboxed_without_a_host_listener_and_its_processes_stay_inside(live_env, app, listener,
                                                                                 tmp_path):
    env = live_env(app)
    env.reset(seed=0)
    provider = env.provider
    inside = assert_no_host_listener(provider)
    if app == "pymol":
        assert any(address.endswith(":23A3") for address in inside), "PyMOL's XML-RPC (9123) should serve inside"
    if app == "stellarium":
        assert inside, "Stellarium's RemoteControl should serve inside the sandbox"
    home = episode_home(provider)
    host_file, tmp_name = tmp_path / "escaped", f"sciboard-escape-{os.getpid()}-{app}"
    done = run_inside(provider, escape_script(host_file, tmp_name, listener.port), home)
    assert done.returncode == 0, done.stderr
    assert_contained(wait_for(home / REPORT), host_file, tmp_name, listener)


# --- the apps' own code-running commands, typed like an agent -------------------------------------------------

@pytest.mark.xdist_group("pymol")
def test_pymol_python_command_line_cannot_reach_the_host(live_env, listener, tmp_path):
    env = live_env("pymol")
    env.reset(options={"task": "pymol/add-hydrogens"})
    host_file, tmp_name = tmp_path / "escaped", f"sciboard-escape-{os.getpid()}-pymol-typed"
    home = episode_home(env.provider)
    # The attack from the issue, verbatim, then the full escape script.
    env.step(f'type("/import os; os.system(\'id > {host_file}\')")')
    env.step('key("Return")')
    env.step(f'type("/{hex_payload(escape_script(host_file, tmp_name, listener.port))}")')
    env.step('key("Return")')
    assert_contained(wait_for(home / REPORT), host_file, tmp_name, listener)


@pytest.mark.xdist_group("grass")
def test_grass_console_cannot_reach_the_host(live_env, listener, tmp_path):
    env = live_env("grass")
    env.reset(seed=0)
    host_file, tmp_name = tmp_path / "escaped", f"sciboard-escape-{os.getpid()}-grass-typed"
    home = episode_home(env.provider)
    # No '.', '=' or quotes: the console's completion acts on those while typing.
    payload = f"exec(bytes([{','.join(map(str, escape_script(host_file, tmp_name, listener.port).encode()))}]))"
    for action in ["click(1627, 1031)", "wait(1)", "click(1714, 983)", "wait(1)", f'type("python3 -c {payload}")',
                   'key("Escape")', 'key("Return")']:
        obs, _, _, _, info = env.step(action)
        assert info["action_error"] is None, info["action_error"]
    try:
        report = wait_for(home / REPORT, timeout=60)
    except AssertionError:
        Image.fromarray(obs["screenshot"]).save(tmp_path / "grass-console.png")
        raise
    assert_contained(report, host_file, tmp_name, listener)


# --- desktops side by side ------------------------------------------------------------------------------------

def test_two_desktops_do_not_see_each_others_files_or_sockets(tmp_path):
    first, second = LocalProvider(screen_size=(640, 480)), LocalProvider(screen_size=(640, 480))
    try:
        first.start(), second.start()
        probe = ("import os,json,socket\n"
                 "r={'own':sorted(os.listdir('/run/sciboard/desktop')),'other_dir':os.path.exists({other!r})}\n"
                 "s=socket.socket(socket.AF_UNIX)\nr['other_socket']=s.connect_ex({sock!r})\n"
                 "open(os.path.expanduser('~/seen.json'),'w').write(json.dumps(r))\n")
        for me, other in ((first, second), (second, first)):
            script = probe.replace("{other!r}", repr(str(other._workdir))).replace(
                "{sock!r}", repr(str(other._workdir / "guest.sock")))
            (me._workdir / "probe-home").mkdir()
            done = run_inside(me, script, me._workdir / "probe-home")
            assert done.returncode == 0, done.stderr
            seen = json.loads((me._workdir / "probe-home" / "seen.json").read_text())
            assert not seen["other_dir"] and seen["other_socket"] != 0, seen
            assert "guest.sock" in seen["own"]
        assert first.client.health()["ok"] and second.client.health()["ok"]
    finally:
        first.close()
        second.close()


def test_ten_pymol_desktops_run_at_once():
    providers = [LocalProvider(screen_size=(640, 480), app="pymol") for _ in range(10)]
    try:
        for provider in providers:
            provider.start().launch("pymol")
        for provider in providers:  # each PyMOL answers over its own XML-RPC port 9123, inside its own network
            assert provider.client.probe("names", {}) == []
            assert provider.alive() is None
    finally:
        for provider in providers:
            provider.close()
