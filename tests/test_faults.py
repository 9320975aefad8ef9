"""Fault injection: real desktop processes killed with real signals mid-episode.

For each fault, ``step`` must come back truncated with ``info["error"]`` naming what
died, and the next ``reset`` must hand back a working desktop (one of each process,
the task solvable) without leaving the dead desktop's processes behind. Killing the
app alone is covered in tests/test_env.py.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from sciboard_guest import processes
from sciboard_gym.env import SciBoardEnv

TASK = "kalgebra/assign-sum"
SOLUTION = ('type("total:=17+25+58")', 'key("Return")', "done()")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def desktop_processes(env: SciBoardEnv, like: Counter | None = None, timeout: float = 20.0) -> Counter:
    """How many processes of each name the env's desktop runs, once the app's spare copy (started in the
    background at a reset) has come up and the count has stopped changing: KAlgebra's QtWebEngine starts
    its helper processes a while after its window. With ``like``, until the count equals it (at most
    ``timeout`` seconds)."""
    env.provider.client.wait_for_spare()
    deadline = time.monotonic() + timeout
    found, last = _count(env), None
    while found != (like if like is not None else last) and time.monotonic() < deadline:
        time.sleep(0.5)
        found, last = _count(env), found
    return found


def _count(env: SciBoardEnv) -> Counter:
    found: Counter = Counter()
    for pid in processes.tagged_pids(env.provider.desktop_id):
        try:
            found[_comm(pid)] += 1
        except OSError:
            pass
    return found


def guest_child(env: SciBoardEnv, name: str) -> int:
    """The pid of the guest agent's direct child called ``name`` (e.g. the session bus, not the a11y bus)."""
    guest = env.provider.guest_pid
    for pid in processes.tagged_pids(env.provider.desktop_id):
        try:
            if _comm(pid) == name and _stat(pid)[1] == str(guest):
                return pid
        except OSError:
            continue
    raise AssertionError(f"no {name} under the guest agent {guest}")


def kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until the kernel has torn it down: every thread gone, a zombie or reaped."""
    os.kill(pid, signal.SIGKILL)
    for _ in range(1000):
        try:
            if _stat(pid)[0] in "ZX" and len(os.listdir(f"/proc/{pid}/task")) <= 1:
                return
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} survived SIGKILL")


def own_zombies() -> list[int]:
    """Zombie children of this test process (unreaped leftovers of a dead desktop)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, parent = _stat(int(entry.name))[:2]
            except OSError:
                continue
            if state == "Z" and parent == me:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def env():
    env = SciBoardEnv(app="kalgebra", task=TASK, screen_size=(800, 600))
    yield env
    env.close()


def _healthy_desktop(env: SciBoardEnv) -> Counter:
    env.reset(seed=0)
    return desktop_processes(env)


@pytest.mark.desktop
@pytest.mark.parametrize("victim,named", [
    ("Xvfb", "the X server"),
    ("openbox", "the window manager"),
    ("dbus-daemon", "the session bus"),
    ("guest", "the guest agent"),
])
def test_killed_component_truncates_with_its_name_and_reset_recovers(env, victim, named):
    before = _healthy_desktop(env)
    pid = env.provider.guest_pid if victim == "guest" else guest_child(env, victim)
    assert pid is not None
    kill(pid)

    _, reward, terminated, truncated, info = env.step('type("total:=1")')
    assert truncated and not terminated and reward == 0.0
    assert named in info["error"] and "died" in info["error"], info["error"]
    assert info["success"] is False
    with pytest.raises(RuntimeError, match="reset"):
        env.step("done()")

    env.reset(seed=0)
    assert desktop_processes(env, like=before) == before, "the recovered desktop differs from a healthy one"
    assert env.provider.alive() is None
    for action in SOLUTION:
        _, reward, terminated, truncated, info = env.step(action)
    assert terminated and reward == 1.0, info
    assert own_zombies() == []


@pytest.mark.desktop
def test_fault_at_the_terminal_step_is_reported_not_evaluated(env):
    env.reset(seed=0)
    env.step('type("total:=17+25+58")')
    env.step('key("Return")')
    # Wait until the kill has landed (every thread gone): a killed process still answers for a few ms,
    # and with 1 ms probes a whole evaluation can fit in that window.
    kill(guest_child(env, "kalgebra"))
    _, reward, terminated, truncated, info = env.step("done()")
    assert truncated and not terminated and reward == 0.0, info
    assert "the app died" in info["error"]


@pytest.mark.desktop
def test_frozen_guest_agent_is_reported_and_replaced_not_waited_for_forever():
    """A guest that stops answering (SIGSTOP: a hung VM looks the same) costs bounded time, then is replaced."""
    frozen = SciBoardEnv(app="kalgebra", task=TASK, screen_size=(800, 600), provider_options={"request_timeout": 10})
    try:
        frozen.reset(seed=0)
        guest = frozen.provider.guest_pid
        assert guest is not None
        os.kill(guest, signal.SIGSTOP)
        _, reward, terminated, truncated, info = frozen.step('type("total:=1")')
        assert truncated and not terminated and reward == 0.0
        assert "the guest agent does not answer" in info["error"], info["error"]
        frozen.reset(seed=0)
        assert frozen.provider.guest_pid != guest and not Path(f"/proc/{guest}/cmdline").exists()
        for action in SOLUTION:
            _, reward, terminated, truncated, info = frozen.step(action)
        assert terminated and reward == 1.0, info
    finally:
        frozen.close()


def _qemu_pid(vm_id: str) -> int:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"qemu-system-x86_64") and any(vm_id.encode() in a for a in argv):
                return int(entry.name)
    raise AssertionError(f"no QEMU process for {vm_id}")


@pytest.mark.vm
def test_killed_qemu_truncates_and_reset_boots_a_working_vm():
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)
    from vm_images.builder import build

    if os.geteuid() != 0:
        pytest.skip("building images and starting libvirtd need root")
    build("kalgebra")
    vm_env = gym.make("SciBoard-KAlgebra-v0", provider="libvirt", task=TASK)
    try:
        vm_env.reset(seed=0)
        kill(_qemu_pid(vm_env.unwrapped.provider.vm_id))
        _, reward, terminated, truncated, info = vm_env.step('type("total:=1")')
        assert truncated and not terminated and reward == 0.0
        assert "VM" in info["error"], info["error"]
        vm_env.reset(seed=0)
        for action in SOLUTION:
            _, reward, terminated, truncated, info = vm_env.step(action)
        assert terminated and reward == 1.0, info
    finally:
        vm_env.close()
