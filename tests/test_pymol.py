"""PyMOL env: argument validation, our structure files, port discovery, and live episodes."""

from __future__ import annotations

import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sciboard_guest.app_cpu import process_tree
from sciboard_guest.apps import AppContext, pymol_rpc, pymol_structures
from sciboard_guest.apps import pymol as pymol_app
from sciboard_gym.apps import pymol as adapter
from sciboard_gym.guest_client import GuestError
from sciboard_gym.tasks import load_app_tasks

# --- pure logic -------------------------------------------------------------------

@pytest.mark.parametrize("text", ["all", "pept and resn TRP", "site and resi 3 and name O", "/pept//E/5/CA",
                                  "byres (all within 3 of elem Zn)", "polymer.protein", "resi 1-5+7"])
def test_selection_accepts_pymol_expressions(text):
    assert pymol_rpc.check_selection(text) == text


@pytest.mark.parametrize("text", ["all; quit", "all\nquit", 'name "CA"', "`ls`", "a\\b", "", "x" * 201, 5])
def test_selection_rejects_command_separators_and_junk(text):
    with pytest.raises(ValueError, match="selection must match"):
        pymol_rpc.check_selection(text)


@pytest.mark.parametrize("name", ["pept", "h10", "chain_A"])
def test_names_accept_plain_identifiers(name):
    assert pymol_rpc.check_name(name) == name


@pytest.mark.parametrize("name", ["1abc", "a b", "a;b", "a-b", "", "x" * 41, None])
def test_names_reject_everything_else(name):
    with pytest.raises(ValueError):
        pymol_rpc.check_name(name)


def _pdb_coords(text: str) -> dict[tuple[str, int], tuple[float, float, float]]:
    atoms = {}
    for line in text.splitlines():
        if line.startswith(("ATOM", "HETATM")):
            atoms[(line[12:16].strip(), int(line[22:26]))] = (float(line[30:38]), float(line[38:46]),
                                                              float(line[46:54]))
    return atoms


def test_zinc_site_geometry():
    atoms = _pdb_coords(pymol_structures.zinc_site())
    assert len(atoms) == 13
    zinc = atoms[("ZN", 1)]
    oxygens = [atoms[("O", resi)] for resi in range(2, 6)]
    assert all(abs(math.dist(zinc, o) - pymol_structures.ZN_O) < 0.002 for o in oxygens)
    for resi in range(2, 6):
        for h in ("H1", "H2"):
            assert abs(math.dist(atoms[("O", resi)], atoms[(h, resi)]) - pymol_structures.OH) < 0.002


def test_water_box_and_ligands_files():
    assert len(_pdb_coords(pymol_structures.water_box())) == 24
    records = [r for r in pymol_structures.ligands().split("$$$$\n") if r.strip()]
    assert [r.splitlines()[0] for r in records] == ["methane", "ammonia"]
    assert [r.splitlines()[3][:6] for r in records] == ["  5  4", "  4  3"]


def test_rgb_and_switch_parsing():
    assert adapter._rgb("0xffffff") == (1.0, 1.0, 1.0)
    assert adapter._rgb("[ 0.5, 0.5, 0.5 ]") == (0.5, 0.5, 0.5)
    assert adapter._rgb("white") is None
    assert [adapter._setting_number(v) for v in ("on", "off", "1", "0.40000", True)] == [1.0, 0.0, 1.0, 0.4, 1.0]


class FakePyMOL:
    """PyMOL as its in-place restore sees it, having missed an episode's button release over the viewer:
    the pointer's next move over the viewer drags, which turns the view."""

    VIEWER = (0, 0, 1500, 900)

    def __init__(self) -> None:
        self.launch = {"names": [], "view": [1.0, 0.0, 0.0]}
        self.session = {"names": ["pept"], "view": [0.2, 0.9, -0.4]}
        self.button_held = True
        self.viewer_line = "delete near"  # typed into the viewer's own command line, never run

    def call(self, ctx: Any, method: str, *args: Any) -> Any:
        if method == "reinitialize":
            self.session = dict(self.launch)
        return dict(self.session) if method == "get_session" else None

    def perform(self, action: dict) -> None:
        if action == {"name": "key", "keys": "ctrl+k"}:
            self.viewer_line = ""
        if action["name"] not in ("click", "move"):
            return
        x, y, width, height = self.VIEWER
        if x <= action["x"] < x + width and y <= action["y"] < y + height:
            if self.button_held:
                self.session["view"] = [-0.15, 0.83, -0.54]
            self.button_held = action["name"] == "move" and self.button_held


def _restore_fake(monkeypatch, tmp_path, fake: FakePyMOL, line: SimpleNamespace) -> None:
    monkeypatch.setattr(pymol_app, "call", fake.call)
    monkeypatch.setattr(pymol_app.inplace, "check_windows", lambda *args, **kwargs: None)
    monkeypatch.setattr(pymol_app.inplace, "restore_home", lambda ctx: None)
    monkeypatch.setattr(pymol_app, "_viewer_box", lambda ctx: fake.VIEWER)
    monkeypatch.setattr(pymol_app, "_viewer_pixels", lambda ctx: fake.viewer_line or "empty")
    monkeypatch.setattr(pymol_app, "_command_line", lambda ctx: (line, line))
    ctx = AppContext(env={}, home=tmp_path, screen=None, a11y=None, perform=fake.perform,
                     settle=lambda **kwargs: None,
                     state={"launch_session": fake.launch, "launch_viewer": "empty"})
    pymol_app._restore(ctx)


def test_restore_checks_the_session_after_its_own_clicks(monkeypatch, tmp_path):
    fake = FakePyMOL()
    _restore_fake(monkeypatch, tmp_path, fake, SimpleNamespace(box=(10, 1000, 300, 20), text="", focused=False))
    assert fake.session == fake.launch


def test_restore_sends_no_input_when_the_command_line_is_empty_and_focused(monkeypatch, tmp_path):
    """The common end of an episode (commands typed and run, nothing typed into the viewer): the restore only
    moves the pointer back onto the label, outside the viewer, so no click can finish an open gesture."""
    fake = FakePyMOL()
    fake.viewer_line = ""
    sent: list[dict] = []
    monkeypatch.setattr(fake, "perform", lambda action: (sent.append(action), FakePyMOL.perform(fake, action)))
    _restore_fake(monkeypatch, tmp_path, fake, SimpleNamespace(box=(10, 1000, 300, 20), text="", focused=True))
    assert [action["name"] for action in sent] == ["move"]
    assert fake.session == fake.launch


def test_listening_port_of_a_child_process_is_found():
    """A real child process listening in PyMOL's port range is found through /proc (and nothing else is)."""
    script = ("import socket,sys,time\nfor p in range(9123,9128):\n    s=socket.socket()\n    try:\n"
              "        s.bind(('127.0.0.1',p)); s.listen(); break\n    except OSError: s.close()\n"
              "else: sys.exit(3)\nprint(p, flush=True); time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if not line:
            pytest.skip("ports 9123-9127 are all taken on this machine")
        assert pymol_rpc.find_port(child.pid) == int(line)
        assert child.pid in process_tree(os.getpid())
        idle = subprocess.Popen(["sleep", "30"])
        try:
            with pytest.raises(pymol_rpc.AppError, match="not listening"):
                pymol_rpc.find_port(idle.pid)
        finally:
            idle.kill()
            idle.wait()
    finally:
        child.kill()
        child.wait()


def _headless_pymol(home: Path) -> subprocess.Popen:
    env = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "PYMOL_RPCHOST": "127.0.0.1"}
    return subprocess.Popen(["pymol", "-c", "-R", "-K", "-k", "-q"], env=env, cwd=home, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_port(pid: int, deadline: float) -> int:
    while True:
        try:
            return pymol_rpc.find_port(pid)
        except pymol_rpc.AppError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.skipif(shutil.which("pymol", path="/usr/bin") is None, reason="PyMOL is not installed")
def test_two_pymols_each_found_on_their_own_port(tmp_path):
    """Two real (headless) PyMOLs: each one's XML-RPC port is found from its own pid, and they hold
    separate state, so one desktop can never read another desktop's PyMOL."""
    first = _headless_pymol(tmp_path)
    second = None
    try:
        port_a = _wait_port(first.pid, time.monotonic() + 60)
        second = _headless_pymol(tmp_path)
        port_b = _wait_port(second.pid, time.monotonic() + 60)
        assert port_a != port_b
        pymol_rpc.proxy(port_a).fragment("benzene", "only_in_a")
        assert pymol_rpc.proxy(port_a).get_names() == ["only_in_a"]
        assert pymol_rpc.proxy(port_b).get_names() == []
    finally:
        for proc in (first, second):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_every_task_validates_and_has_at_least_thirty():
    tasks = load_app_tasks("pymol")
    assert len(tasks) >= 30
    for task in tasks:
        adapter.ADAPTER.validate_task(task)
    kinds = {tag for task in tasks for tag in task.tags}
    assert {"gui", "command", "answer"} <= kinds


# --- live ---------------------------------------------------------------------------

@pytest.mark.desktop
def test_gym_make_runs_an_episode():
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)

    env = gym.make("SciBoard-PyMOL-v0", task="pymol/fragment-benzene")
    try:
        obs, info = env.reset(seed=0)
        assert obs["screenshot"].shape == (1080, 1920, 3)
        assert info["task_id"] == "pymol/fragment-benzene"
        for action in ('type("fragment benzene, ring")', 'key("Return")'):
            env.step(action)
        _, reward, terminated, _, info = env.step("done()")
        assert terminated and reward == 1.0, info["checks"]
        # a fresh reset gives a fresh PyMOL: the object is gone
        env.reset(options={"task": "pymol/fragment-benzene"})
        _, reward, _, _, info = env.step("done()")
        assert reward == 0.0 and "no object 'ring'" in info["checks"][0]["detail"]
    finally:
        env.close()


@pytest.mark.desktop
def test_bad_arguments_get_clear_errors_and_pymol_survives(live_env):
    env = live_env("pymol")
    env.reset(options={"task": "pymol/select-tryptophans"})
    client = env.provider.client
    for name, args, message in [
        ("count_atoms", {"selection": "all; quit"}, "selection must match"),
        ("setting", {"key": "bg_rgb; quit"}, "setting must be"),
        ("file_info", {"file": "../../etc/passwd"}, "plain file name"),
        ("names", {"kind": "everything"}, "kind must be one of"),
    ]:
        with pytest.raises(GuestError, match=message) as err:
            client.probe(name, args)
        assert err.value.status == 400
    with pytest.raises(GuestError, match="fragment must be one of"):
        client.setup("fragment", {"fragment": "../../x", "name": "x"})
    assert client.probe("count_atoms", {"selection": "no_such_object"}) is None
    assert client.probe("count_atoms", {"selection": "pept"}) == 107
    assert env.provider.alive() is None


@pytest.mark.desktop
def test_probes_read_measurements_and_view(live_env):
    env = live_env("pymol")
    env.reset(options={"task": "pymol/measure-zinc-water"})
    client = env.provider.client
    assert client.probe("measurements", {}) == {}
    client.setup("distance", {"name": "d2", "atom1": "site and name ZN", "atom2": "site and resi 2 and name O"})
    assert client.probe("measurements", {})["d2"] == [pytest.approx(pymol_structures.ZN_O, abs=0.01)]
    view = client.probe("view", {})
    assert len(view) == 18
    client.setup("orient", {"selection": "site and resi 5"})
    box = client.probe("extent", {"selection": "site and resi 5"})
    origin = client.probe("view", {})[12:15]
    assert all(lo - 0.01 <= v <= hi + 0.01 for v, lo, hi in zip(origin, box[0], box[1]))


@pytest.mark.desktop
def test_reset_times_are_reported(live_env):
    """Resets start a fresh PyMOL each time; the median is printed for the notes (not asserted)."""
    env = live_env("pymol")
    seconds = []
    for _ in range(5):
        _, info = env.reset(options={"task": "pymol/build-helix"})
        seconds.append(info["reset_seconds"])
        assert env.provider.client.probe("names", {}) == []
    print(f"\nPyMOL reset seconds: {seconds}; median {statistics.median(seconds):.2f}")
