"""The libvirt provider on a real VM: build (or reuse) the KAlgebra image, boot it, solve a task
with the oracle, check that a snapshot reset restores state, survive a VM that dies mid-episode,
and leave nothing behind. Select with ``-m vm``; deselect with ``-m "not vm"``.

The pure-logic checks at the top (domain XML, recipes) run without a VM.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sciboard_gym.providers import ProviderError, make_provider
from sciboard_gym.providers.libvirt_domain import DomainSpec, domain_xml
from vm_images import recipe
from vm_images.guest_config import GUEST_ADDRESS, GUEST_PORT

TASK = "kalgebra/assign-sum"
QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"


def _spec(kvm: bool) -> DomainSpec:
    path = Path("/tmp/vm")
    return DomainSpec(name="sciboard-test", kvm=kvm, memory_mib=1024, vcpus=1, kernel=path / "vmlinuz",
                      initrd=path / "initrd.img", cmdline="root=/dev/vda", overlay=path / "o.qcow2",
                      console_log=path / "console.log", host_port=40123, token_file=path / "token",
                      env_file=path / "env", code_file=path / "code.tar.gz")


@pytest.mark.parametrize("kvm", [False, True])
def test_domain_xml_isolates_the_guest(kvm):
    root = ET.fromstring(domain_xml(_spec(kvm)))
    assert root.get("type") == ("kvm" if kvm else "qemu")
    args = [a.get("value") for a in root.iter(f"{QEMU_NS}arg")]
    netdev = args[args.index("-netdev") + 1]
    assert "restrict=on" in netdev
    assert f"hostfwd=tcp:127.0.0.1:40123-{GUEST_ADDRESS}:{GUEST_PORT}" in netdev
    assert not root.findall("devices/interface") and not root.findall("devices/graphics")
    assert "name=opt/sciboard/token,file=/tmp/vm/token" in args
    assert root.find("devices/disk/source").get("file") == "/tmp/vm/o.qcow2"


def test_recipe_digest_follows_the_recipe(tmp_path):
    for name in ("base.toml", "kalgebra.toml"):
        (tmp_path / name).write_text((recipe.RECIPES_DIR / name).read_text())
    before = recipe.load("kalgebra", tmp_path).digest()
    assert before == recipe.load("kalgebra", tmp_path).digest()
    (tmp_path / "kalgebra.toml").write_text((tmp_path / "kalgebra.toml").read_text().replace(
        '"kalgebra"]', '"kalgebra", "bc"]'))
    changed = recipe.load("kalgebra", tmp_path)
    assert "bc" in changed.packages and changed.digest() != before


def test_installer_recipes_need_the_installer(tmp_path):
    with pytest.raises(recipe.RecipeError, match="--installer"):
        recipe.load("chimerax").check_installer(None)
    wrong = tmp_path / "chimerax.zip"
    wrong.write_bytes(b"x")
    with pytest.raises(recipe.RecipeError, match=r"\.deb"):
        recipe.load("chimerax").check_installer(wrong)
    with pytest.raises(recipe.RecipeError, match="no VM image recipe"):
        recipe.load("nosuchapp")


def test_missing_image_is_a_clear_error(tmp_path):
    provider = make_provider("libvirt", "kalgebra", (800, 600), image=str(tmp_path / "missing"))
    with pytest.raises(ProviderError, match="sciboard vm build kalgebra"):
        provider.start()
    provider.close()


# --- a real VM ---------------------------------------------------------------------------
# One test function on purpose: booting a VM under TCG takes minutes, and pytest-xdist would
# give separate test functions to separate workers, each booting its own VM.


def _variables(env) -> dict:
    return env.unwrapped.provider.client.probe("variables")


def _run_oracle(env) -> tuple[float, dict]:
    env.reset(options={"task": TASK})
    reward, info = 0.0, {}
    for action in env.unwrapped.task.oracle:
        _, reward, terminated, truncated, info = env.step(action)
        assert info["action_error"] is None, info["action_error"]
        if terminated or truncated:
            break
    return reward, info


def _check_reset_restores_state(env, mode: str) -> None:
    env.unwrapped.provider.reset_mode = mode
    env.reset(options={"task": TASK})
    env.step('type("marker:=4242")')
    env.step('key("Return")')
    assert "marker" in _variables(env), "the episode's change did not happen"
    _, info = env.reset(options={"task": TASK})
    assert info["task_id"] == TASK
    variables = _variables(env)
    assert "marker" not in variables and "total" not in variables, f"the {mode} reset kept {variables}"


def _check_dead_vm_is_detected_and_replaced(env) -> None:
    env.reset(options={"task": TASK})
    env.unwrapped.provider._dom.destroy()  # what a crashed QEMU looks like to libvirt
    _, reward, terminated, truncated, info = env.step('type("1+1")')
    assert truncated and not terminated and reward == 0.0
    assert "VM" in info["error"] and "shut off" in info["error"], info["error"]
    reward, info = _run_oracle(env)
    assert reward == 1.0, f"after the VM came back: {info.get('checks')}"


def _check_close_removes_domain_and_overlay(env) -> None:
    from sciboard_gym.providers.libvirt_host import connect

    provider = env.unwrapped.provider
    name, workdir = provider.vm_id, provider._workdir
    assert workdir is not None and (workdir / "overlay.qcow2").is_file()
    env.close()
    conn = connect()
    try:
        assert name not in conn.listDefinedDomains()
        assert name not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
    assert not workdir.exists()


@pytest.mark.vm
@pytest.mark.timeout(1800)  # an image build and a TCG boot take minutes on 2 busy cores
def test_kalgebra_in_a_libvirt_vm():
    """Build/reuse the image, solve a task by oracle in the VM, reset by snapshot, survive a dead VM."""
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)
    from vm_images.builder import build

    if os.geteuid() != 0:
        pytest.skip("building images and starting libvirtd need root")
    build("kalgebra")  # reuses the cached image when the recipe is unchanged
    env = gym.make("SciBoard-KAlgebra-v0", provider="libvirt", task=TASK)
    try:
        assert env.unwrapped.provider.name == "libvirt"
        reward, info = _run_oracle(env)
        assert reward == 1.0, f"oracle failed in the VM: {info.get('checks')}"
        for mode in ("libvirt", "loadvm"):
            _check_reset_restores_state(env, mode)
        _check_dead_vm_is_detected_and_replaced(env)
        _check_close_removes_domain_and_overlay(env)
    finally:
        env.close()
