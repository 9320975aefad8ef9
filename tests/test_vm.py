"""The libvirt provider on real VMs: for every app with an image, build (or reuse) it, boot it once,
run a sample of its tasks' oracles and immediate ``done()`` runs, check that both snapshot resets put
the app back, and that ``close()`` leaves nothing behind; KAlgebra's VM also dies mid-episode and
comes back.

Selection: ``pytest -m vm tests/test_vm.py`` runs every app's sample; a run whose ``-m`` does not
name ``vm`` (the plain suite) runs only :data:`CI_APPS`. ``-m vm_long`` runs every task of every
app inside its VM (long: hours under TCG). The pure-logic checks at the top (domain XML, recipes,
the desktop layer, the command line) run without a VM.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sciboard_gym.providers import ProviderError, make_provider
from sciboard_gym.providers.libvirt_domain import DomainSpec, domain_xml
from vm_images import recipe
from vm_images.catalog import Image
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
    disabled = {f.get("name") for f in root.findall("cpu/feature") if f.get("policy") == "disable"}
    assert disabled == (set() if kvm else {"avx", "avx2", "fma", "f16c"})  # TCG's AVX breaks llvmpipe


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


def test_desktop_layer_holds_every_debian_app(tmp_path):
    for source in recipe.RECIPES_DIR.glob("*.toml"):
        (tmp_path / source.name).write_text(source.read_text())
    layer = recipe.desktop_layer(tmp_path)
    assert recipe.layer_apps(tmp_path) == ["grass", "kalgebra", "pymol", "stellarium", "texstudio"]
    for app in recipe.layer_apps(tmp_path):
        assert set(recipe.load(app, tmp_path).packages) <= set(layer.packages)
    assert not recipe.load("chimerax", tmp_path).on_desktop_layer
    before = {app: recipe.load(app, tmp_path).digest() for app in ("kalgebra", "pymol")}
    # Any layer app's recipe changes the layer, hence every image on it.
    (tmp_path / "grass.toml").write_text((tmp_path / "grass.toml").read_text().replace('"grass-core"]',
                                                                                          '"grass-core", "bc"]'))
    assert "bc" in recipe.desktop_layer(tmp_path).packages
    assert all(recipe.load(app, tmp_path).digest() != before[app] for app in before)
    # An app's own setting (memory) changes only its own image.
    after = {app: recipe.load(app, tmp_path).digest() for app in ("kalgebra", "pymol")}
    layer_before = recipe.layer_digest(tmp_path)
    (tmp_path / "kalgebra.toml").write_text((tmp_path / "kalgebra.toml").read_text().replace("1536", "1024"))
    assert recipe.layer_digest(tmp_path) == layer_before
    assert recipe.load("pymol", tmp_path).digest() == after["pymol"]
    assert recipe.load("kalgebra", tmp_path).digest() != after["kalgebra"]


def _fake_layer(vm_dir: Path) -> Image:
    """A stand-in desktop layer (a small qcow2 and kernel files) so that app images can be made on it."""
    from vm_images.recipe import DESKTOP_LAYER, desktop_layer

    digest = desktop_layer().digest()
    layer = Image(DESKTOP_LAYER, digest, vm_dir / "images" / DESKTOP_LAYER / digest)
    layer.path.mkdir(parents=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(layer.disk), "64M"], check=True)
    layer.kernel.write_bytes(b"kernel" * (1 << 20))  # big enough that counting it in an overlay shows
    layer.initrd.write_bytes(b"initrd")
    (layer.path / "manifest.json").write_text(json.dumps({
        "app": "desktop", "kernel_cmdline": "root=/dev/vda", "packages": {}, "built_at": "2026-01-01T00:00:00Z",
        "build_seconds": 1.0}))
    return layer


def test_app_images_are_thin_overlays_of_the_layer(tmp_path, monkeypatch):
    from vm_images.builder import build, prune

    if os.geteuid() != 0:
        pytest.skip("image builds need root")
    monkeypatch.setenv("SCIBOARD_VM_DIR", str(tmp_path))
    layer = _fake_layer(tmp_path)
    images = [build(app, log=lambda msg: None) for app in ("kalgebra", "pymol")]
    for image in images:
        assert image.complete() and image.manifest["layer"] == layer.digest
        assert image.manifest["memory_mib"] == recipe.load(image.app).memory_mib
        info = subprocess.run(["qemu-img", "info", "--backing-chain", str(image.disk)], check=True,
                              capture_output=True, text=True).stdout
        assert f"backing file: ../../desktop/{layer.digest}/disk.qcow2" in info
        assert image.disk.stat().st_size < (1 << 20)  # the overlay holds nothing but its header
    assert images[0].own_bytes() < (1 << 20)  # the hard-linked kernel counts in the layer, not in the overlay
    from vm_images.cli import main

    listing = io.StringIO()
    with contextlib.redirect_stdout(listing):
        assert main(["vm", "list", "--json"]) == 0
    rows = {row["app"]: row for row in json.loads(listing.getvalue())}
    assert rows["kalgebra"]["size_mib"] < 1 and rows["desktop"]["size_mib"] >= 6
    assert prune() == []  # the layer the current images stand on is kept
    assert build("kalgebra", log=lambda msg: None) == images[0]  # cached
    layer.disk.unlink()
    assert not images[0].complete()  # an image whose layer is gone is not usable


def test_build_command_line(capsys):
    from vm_images.cli import main

    assert main(["vm", "build"]) == 2
    assert "one app or pass --all" in capsys.readouterr().err
    assert main(["vm", "build", "--all", "--installer-for", "nosuchapp", "x.deb"]) == 2
    assert "no recipe for nosuchapp" in capsys.readouterr().err
    assert main(["vm", "build", "chimerax"]) == 2
    assert "--installer" in capsys.readouterr().err


# --- real VMs -----------------------------------------------------------------------------
# One VM per app and worker (booting under TCG takes minutes): the cases of one app are one xdist
# group, in order: the resets, the sample's oracles and done() runs, then close().

#: Tasks run in each app's VM. The first changes the app's state: after its oracle succeeded, a
#: reset must leave nothing of it (an immediate done() fails again), for both kinds of reset.
SAMPLES = {
    "kalgebra": ("kalgebra/assign-sum", "kalgebra/answer-gcd", "kalgebra/plot-sine"),
    "pymol": ("pymol/sticks-only", "pymol/gui-background-white"),
    "texstudio": ("texstudio/lab-emphasis", "texstudio/ocean-fix-brace"),
    "stellarium": ("stellarium/hide-ground", "stellarium/saturn-magnitude", "stellarium/date-dialog"),
    "grass": ("grass/region-100m", "grass/mean-elevation", "grass/gui-rename-map"),
}
#: The apps whose VM cases run in a plain test run (the others need ``-m vm``).
CI_APPS = ("kalgebra", "pymol")
_VMS: dict = {}


def _marker_named(config: pytest.Config, marker: str) -> bool:
    return re.search(rf"\b{marker}\b", config.getoption("markexpr") or "") is not None


@pytest.fixture(scope="module")
def vm_env(request):
    """``vm_env(app)`` -> a gym env of ``app`` on the libvirt provider, one VM per app and worker."""
    import gymnasium as gym

    import sciboard_gym  # noqa: F401  (registers the envs)
    from sciboard_gym.apps import APPS
    from vm_images.builder import build

    def get(app: str):
        if os.geteuid() != 0:
            pytest.skip("building images and starting libvirtd need root")
        if app not in _VMS:
            for other in list(_VMS):  # one VM at a time: an idle VM still costs CPU under TCG
                _VMS.pop(other).close()
            build(app)  # reuses the cached image (and the desktop layer) when the recipes are unchanged
            _VMS[app] = gym.make(APPS[app][0], provider="libvirt")
        return _VMS[app]

    yield get
    for env in _VMS.values():
        env.close()
    _VMS.clear()


def _episode(env, task_id: str, seed: int = 0, done_only: bool = False) -> tuple[float, dict]:
    """Reset ``task_id`` and play its oracle (or only ``done()``); (reward, info) of the last step."""
    env.reset(seed=seed, options={"task": task_id})
    reward, info = 0.0, {}
    for action in ["done()"] if done_only else env.unwrapped.task.oracle:
        _, reward, terminated, truncated, info = env.step(action)
        assert info["action_error"] is None, f"{action!r} rejected: {info['action_error']}"
        if terminated or truncated:
            break
    assert terminated and not truncated, info.get("error")
    return reward, info


def _check_resets_put_the_app_back(env, task_id: str) -> None:
    for mode in ("libvirt", "loadvm"):
        env.unwrapped.provider.reset_mode = mode
        reward, info = _episode(env, task_id)
        assert reward == 1.0, f"oracle failed in the VM: {info.get('checks')}"
        reward, info = _episode(env, task_id, done_only=True)
        assert reward == 0.0, f"after a {mode} reset the oracle's change is still there: {info.get('checks')}"


def _check_dead_vm_is_detected_and_replaced(env, task_id: str) -> None:
    env.reset(options={"task": task_id})
    env.unwrapped.provider._dom.destroy()  # what a crashed QEMU looks like to libvirt
    _, reward, terminated, truncated, info = env.step('key("Escape")')
    assert truncated and not terminated and reward == 0.0
    assert "VM" in info["error"] and "shut off" in info["error"], info["error"]
    reward, info = _episode(env, task_id)
    assert reward == 1.0, f"after the VM came back: {info.get('checks')}"


def _check_close_removes_domain_and_overlay(env) -> None:
    from sciboard_gym.providers.libvirt_host import connect

    provider = env.unwrapped.provider
    name, workdir = provider.vm_id, provider._workdir
    assert workdir is not None and (workdir / "overlay.qcow2").is_file()
    print(f"{provider.app} VM timings: {provider.timings}")  # shown with -rP or -s
    env.close()
    conn = connect()
    try:
        assert name not in conn.listDefinedDomains()
        assert name not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()
    assert not workdir.exists()


def _vm_cases() -> list:
    cases = []
    for app, tasks in SAMPLES.items():
        steps = [("resets", tasks[0])] + [(check, t) for t in tasks for check in ("oracle", "done")]
        if app == "kalgebra":
            steps.append(("dead-vm", tasks[0]))
        steps.append(("close", ""))
        cases += [pytest.param(app, check, task, id=f"{app}-{check}-{task.split('/')[-1]}".rstrip("-"),
                               marks=pytest.mark.xdist_group(f"vm-{app}")) for check, task in steps]
    return cases


@pytest.mark.vm
@pytest.mark.parametrize("app,check,task_id", _vm_cases())
def test_app_in_a_libvirt_vm(request, vm_env, app, check, task_id):
    """One app's VM: resets put it back, sample oracles succeed, done() alone fails, close cleans up."""
    if app not in CI_APPS and not _marker_named(request.config, "vm"):
        pytest.skip(f"{app}'s VM runs with -m vm (the plain suite boots {' and '.join(CI_APPS)} only)")
    env = vm_env(app)
    assert env.unwrapped.provider.name == "libvirt"
    if check == "resets":
        _check_resets_put_the_app_back(env, task_id)
    elif check == "oracle":
        reward, info = _episode(env, task_id)
        assert reward == 1.0, f"oracle failed in the VM: {info.get('checks')}"
    elif check == "done":
        reward, info = _episode(env, task_id, done_only=True)
        assert reward == 0.0 and info["success"] is False, f"doing nothing passes: {info.get('checks')}"
    elif check == "dead-vm":
        _check_dead_vm_is_detected_and_replaced(env, task_id)
    else:
        _check_close_removes_domain_and_overlay(_VMS.pop(app))


def _every_task() -> list:
    from sciboard_gym.tasks import load_app_tasks

    return [pytest.param(app, t.id, id=t.id, marks=pytest.mark.xdist_group(f"vm-{app}"))
            for app in SAMPLES for t in load_app_tasks(app)]


@pytest.mark.vm
@pytest.mark.vm_long
@pytest.mark.parametrize("app,task_id", _every_task())
def test_every_task_in_a_libvirt_vm(request, vm_env, app, task_id):
    """The long run (``-m vm_long``): every task's oracle succeeds in the app's VM (after a libvirt revert) and
    done() alone fails (after a ``loadvm`` revert); the revert medians so far are printed (``-rA``)."""
    if not _marker_named(request.config, "vm_long"):
        pytest.skip("the long run over every task needs -m vm_long")
    env = vm_env(app)
    provider = env.unwrapped.provider
    provider.reset_mode = "libvirt"  # both kinds of revert, one before each episode
    reward, info = _episode(env, task_id)
    assert reward == 1.0, f"oracle failed in the VM: {info.get('checks')}"
    provider.reset_mode = "loadvm"
    reward, info = _episode(env, task_id, done_only=True)
    assert reward == 0.0, f"doing nothing passes: {info.get('checks')}"
    medians = {mode: statistics.median(times) for mode, times in provider.revert_history.items() if times}
    print(f"{app} revert medians so far: {medians} over {[len(t) for t in provider.revert_history.values()]}")


# --- ChimeraX and Celestia: the user's installer, with a stand-in package -------------------

#: What the real installers are called and the program the guest starts from them.
STAND_INS = {"chimerax": ("ucsf-chimerax", "chimerax"), "celestia": ("celestia", "celestia-qt")}


def _stand_in_deb(folder: Path, package: str, program: str) -> Path:
    """A .deb named like the real installer that installs ``/usr/bin/<program>`` (a script) and
    depends on a Debian package, so that the build resolves the installer's dependencies."""
    root = folder / package
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 0.0.1-standin\nArchitecture: amd64\nMaintainer: SciBoard tests <tests@invalid>\n"
        f"Depends: bc\nDescription: stand-in for the {package} installer in tests\n")
    script = root / "usr" / "bin" / program
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\necho 'stand-in {program} started' >&2\nexit 3\n")
    script.chmod(0o755)
    deb = folder / f"{package}_0.0.1-standin_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


@pytest.mark.vm
@pytest.mark.parametrize("app", sorted(STAND_INS))
def test_installer_image_with_a_stand_in_package(request, tmp_path, app):
    """The recipe's installer path up to where the app would start: a stand-in .deb goes into a built
    image with its Debian dependencies, it puts the program the guest starts on the image's PATH, and
    the image is found by that installer."""
    from sciboard_guest.apps import get as guest_app
    from vm_images.builder import build
    from vm_images.catalog import image_for

    if not _marker_named(request.config, "vm"):
        pytest.skip("building an installer image runs with -m vm")
    if os.geteuid() != 0:
        pytest.skip("image builds need root")
    package, program = STAND_INS[app]
    assert guest_app(app).argv[0] == program
    deb = _stand_in_deb(tmp_path, package, program)
    image = build(app, installer=deb)
    try:
        manifest = image.manifest
        assert image.complete() and manifest["installer"] == deb.name and manifest["installer_package"] == package
        assert manifest["packages"][package] == "0.0.1-standin"
        assert "bc" in manifest["packages"]  # the installer's own dependency came from Debian
        assert f"/usr/bin/{program}" in manifest["installer_programs"]
        assert image_for(app, deb) == image
    finally:  # a stand-in image must not stay the app's current image
        current = image.path.parent / "current"
        if current.is_symlink() and current.resolve() == image.path.resolve():
            current.unlink()
        shutil.rmtree(image.path, ignore_errors=True)
