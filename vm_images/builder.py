"""Build a VM image from a recipe: mmdebstrap -> guest configuration -> ext4 -> qcow2, cached by hash.

The apps built from Debian packages alone share one disk, the desktop layer (built once, the same
way); each of their images is a thin qcow2 overlay backed by it. ``build_all`` builds every image.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vm_images import guest_config, images_dir, vm_dir
from vm_images.catalog import BuildError, Image, built_images, image_for
from vm_images.recipe import DESKTOP_LAYER, Recipe, RecipeError, apps, desktop_layer, load

TOOLS = {"mmdebstrap": "mmdebstrap", "mke2fs": "e2fsprogs", "qemu-img": "qemu-utils", "chroot": "coreutils"}


def prune() -> list[Image]:
    """Delete every built image that is not the ``current`` one of its app (nor the layer a kept one is
    backed by); returns what was deleted."""
    removed = []
    images = built_images()
    kept = {image.path.resolve() for image in images
            if (image.path.parent / "current").exists()
            and (image.path.parent / "current").resolve() == image.path.resolve()}
    kept |= {(images_dir() / DESKTOP_LAYER / image.manifest["layer"]).resolve() for image in images
             if image.path.resolve() in kept and image.manifest.get("layer")}
    for image in images:
        if image.path.resolve() not in kept:
            shutil.rmtree(image.path)
            removed.append(image)
    return removed


def build(app: str, installer: Path | None = None, force: bool = False,
          log: Callable[[str], None] | None = None, output: TextIO | None = None) -> Image:
    """Build (or reuse) the image for ``app``; returns it. Progress goes to ``log`` and ``output``."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    recipe = load(app)
    recipe.check_installer(installer)
    installer = installer.resolve() if installer else None
    image = Image(app, recipe.digest(installer), images_dir() / app / recipe.digest(installer))
    return _build_cached(recipe, image, installer, force, say, output)


def build_all(installers: dict[str, Path] | None = None, force: bool = False,
              log: Callable[[str], None] | None = None, output: TextIO | None = None) -> dict[str, Image | str]:
    """Build (or reuse) every app's image; an app whose recipe needs an installer that is not in
    ``installers`` is skipped. Returns each app's image, or the reason it was skipped."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    installers = installers or {}
    results: dict[str, Image | str] = {}
    layer_forced = False
    for app in apps():
        if load(app).installer_required and app not in installers:
            results[app] = f"skipped: needs its installer (sciboard vm build {app} --installer FILE)"
            say(f"[vm build {app}] {results[app]}")
            continue
        on_layer = load(app).on_desktop_layer
        results[app] = build(app, installers.get(app), force=force and not (on_layer and layer_forced), log=say,
                             output=output)
        layer_forced = layer_forced or (force and on_layer)  # the shared layer is rebuilt once, not per app
    return results


def _build_cached(recipe: Recipe, image: Image, installer: Path | None, force: bool, say: Callable[[str], None],
                  output: TextIO | None) -> Image:
    app = recipe.app
    if image.complete() and not force:
        say(f"[vm build {app}] up to date: {image.path}")
        return image
    _check_host()
    vm_dir().mkdir(parents=True, exist_ok=True)
    with open(vm_dir() / "build.lock", "w") as lock:  # one build at a time (tests may build in parallel)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"[vm build {app}] waiting for another image build to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if image.complete() and not force:  # the other build made it
            say(f"[vm build {app}] up to date: {image.path}")
            return image
        if recipe.on_desktop_layer:
            return _build_on_layer(recipe, image, force, say, output)
        return _build_locked(recipe, image, installer, say, output)


def _build_on_layer(recipe: Recipe, image: Image, force: bool, say: Callable[[str], None],
                    output: TextIO | None) -> Image:
    """The app's image as a thin overlay of the desktop layer (built first if needed; the lock is held)."""
    layer_recipe = desktop_layer()
    layer = Image(DESKTOP_LAYER, layer_recipe.digest(), images_dir() / DESKTOP_LAYER / layer_recipe.digest())
    if force or not layer.complete():
        _build_locked(layer_recipe, layer, None, say, output)
    else:
        say(f"[vm build {recipe.app}] desktop layer up to date: {layer.path}")
    started = time.monotonic()
    staging = image.path.parent / f".build-{image.digest}"  # as deep as the image: same relative backing path
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        # A relative backing path: the cache directory can move as a whole.
        backing = os.path.relpath(layer.disk, image.path)
        _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", backing, str(staging / "disk.qcow2")],
             "qemu-img create", output)
        for name in ("vmlinuz", "initrd.img"):
            os.link(layer.path / name, staging / name)
        manifest = {**layer.manifest, "app": recipe.app, "digest": image.digest, "layer": layer.digest,
                    "memory_mib": recipe.memory_mib, "build_seconds": round(time.monotonic() - started, 1),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _publish(staging, image)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"[vm build {recipe.app}] done: {image.path} (an overlay of the desktop layer {layer.digest})")
    return image


def _publish(staging: Path, image: Image) -> None:
    """Move a finished image into place and point the app's ``current`` at it."""
    shutil.rmtree(image.path, ignore_errors=True)
    image.path.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(image.path)
    current = image.path.parent / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(image.digest)


def _build_locked(recipe: Recipe, image: Image, installer: Path | None, say: Callable[[str], None],
                  output: TextIO | None) -> Image:
    app = recipe.app
    started = time.monotonic()
    step = _stepper(app, started, say)
    work = vm_dir() / "build" / f"{app}-{image.digest}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = work / "root"
    try:
        step(f"1/5 mmdebstrap {recipe.suite}: {len(recipe.packages)} packages (+ dependencies)")
        _run(_mmdebstrap_argv(recipe, root, installer), "mmdebstrap", output)
        step("2/5 configure the guest (guest agent service, VM-only network)")
        guest_config.configure(root)
        step("3/5 extract kernel and initrd for direct boot")
        staging = work / "image"
        staging.mkdir()
        _copy_boot(root, staging)
        packages = _package_versions(root)
        installed = _installer_contents(root, installer) if installer else {}
        step(f"4/5 make the ext4 filesystem ({_du_mib(root)} MiB of files)")
        raw = work / "disk.raw"
        _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "sciboard", "-d", str(root), str(raw),
              f"{_fs_size_mib(root)}M"], "mke2fs", output)
        shutil.rmtree(root)
        step("5/5 convert to qcow2")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(staging / "disk.qcow2")], "qemu-img", output)
        raw.unlink()
        manifest = {
            "app": app, "digest": image.digest, "suite": recipe.suite, "kernel_cmdline": guest_config.KERNEL_CMDLINE,
            "memory_mib": recipe.memory_mib, "installer": installer.name if installer else None,
            "build_seconds": round(time.monotonic() - started, 1), "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                            time.gmtime()),
            "packages": packages, **installed,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _publish(staging, image)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    step(f"done: {image.path} ({_du_mib(image.path)} MiB)")
    return image


def _check_host() -> None:
    missing = [f"{tool} (apt package {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise BuildError("missing tools: " + ", ".join(missing) + "; run scripts/install.sh")
    if os.geteuid() != 0:
        raise BuildError("building a VM image needs root (mmdebstrap --mode=root and chroot)")


def _stepper(app: str, started: float, say: Callable[[str], None]) -> Callable[[str], None]:
    def step(message: str) -> None:
        say(f"[vm build {app} {time.monotonic() - started:6.1f}s] {message}")

    return step


def _mmdebstrap_argv(recipe: Recipe, root: Path, installer: Path | None) -> list[str]:
    debs = vm_dir() / "apt" / "archives"
    (debs / "partial").mkdir(parents=True, exist_ok=True)
    argv = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
            "--include=" + ",".join(recipe.packages)]
    argv.append("--dpkgopt=force-unsafe-io")  # no fsync per file: the result is packed into an image anyway
    argv += [f"--dpkgopt=path-exclude={p}" for p in recipe.dpkg_exclude]
    argv += [f"--dpkgopt=path-include={p}" for p in recipe.dpkg_include]
    # Reuse downloaded packages across builds: copy the cache in, keep it, copy new ones out.
    argv += ["--skip=essential/unlink", f"--setup-hook=copy-in {debs} /var/cache/apt"]
    if installer is not None:
        # apt cannot hand dpkg (which runs inside the chroot) a .deb outside the chroot: copy it in first,
        # then let apt install it with its dependencies from Debian.
        inside = f"/tmp/{installer.name}"
        argv += [f"--customize-hook=copy-in {shlex.quote(str(installer))} /tmp",
                 f'--customize-hook=chroot "$1" apt-get install --yes {shlex.quote(inside)}',
                 f'--customize-hook=rm -f "$1"{shlex.quote(inside)}']
    argv.append(f"--customize-hook=sync-out /var/cache/apt/archives {debs}")
    return argv + [recipe.suite, str(root), *recipe.mirrors]


def _run(argv: list[str], what: str, output: TextIO | None) -> None:
    proc = subprocess.run(argv, stdout=output or sys.stderr, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}); its output is above")


def _copy_boot(root: Path, dest: Path) -> None:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise BuildError(f"expected one kernel and one initrd in the image's /boot, found {kernels} {initrds}")
    shutil.copyfile(kernels[0], dest / "vmlinuz")
    shutil.copyfile(initrds[0], dest / "initrd.img")
    config = root / "boot" / kernels[0].name.replace("vmlinuz-", "config-")
    if config.is_file() and "CONFIG_FW_CFG_SYSFS=" not in config.read_text():
        raise BuildError(f"the kernel {kernels[0].name} lacks qemu_fw_cfg (CONFIG_FW_CFG_SYSFS)")


def _package_versions(root: Path) -> dict[str, str]:
    out = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Package} ${Version}\n"],
                         check=True, capture_output=True, text=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def _installer_contents(root: Path, installer: Path) -> dict[str, object]:
    """The installer's package name and the programs it put on the image's PATH."""
    package = subprocess.run(["dpkg-deb", "-f", str(installer), "Package"], check=True, capture_output=True,
                             text=True).stdout.strip()
    files = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-L", package], check=True,
                           capture_output=True, text=True).stdout.split()
    programs = sorted(f for f in files if f.startswith(("/usr/bin/", "/usr/local/bin/")))
    return {"installer_package": package, "installer_programs": programs}


def _du_mib(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total // (1 << 20)


def _fs_size_mib(root: Path) -> int:
    """Room for the files plus 1 GiB for the session (HOMEs, logs) and ext4's own overhead."""
    return int(_du_mib(root) * 1.15) + 1024


__all__ = ["BuildError", "Image", "RecipeError", "build", "build_all", "built_images", "image_for", "prune"]
