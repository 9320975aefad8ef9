"""Build a VM image from a recipe: mmdebstrap -> guest configuration -> ext4 -> qcow2, cached by hash."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vm_images import guest_config, images_dir, vm_dir
from vm_images.catalog import BuildError, Image, built_images, image_for
from vm_images.recipe import Recipe, RecipeError, load

TOOLS = {"mmdebstrap": "mmdebstrap", "mke2fs": "e2fsprogs", "qemu-img": "qemu-utils", "chroot": "coreutils"}


def prune() -> list[Image]:
    """Delete every built image that is not the ``current`` one of its app; returns what was deleted."""
    removed = []
    for image in built_images():
        current = image.path.parent / "current"
        if current.exists() and current.resolve() != image.path.resolve():
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
        return _build_locked(recipe, image, installer, say, output)


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
            "packages": packages,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(image.path, ignore_errors=True)
        image.path.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(image.path)
        current = image.path.parent / "current"
        current.unlink(missing_ok=True)
        current.symlink_to(image.digest)
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
    if installer is not None:
        argv.append(f"--include={installer}")
    argv.append("--dpkgopt=force-unsafe-io")  # no fsync per file: the result is packed into an image anyway
    argv += [f"--dpkgopt=path-exclude={p}" for p in recipe.dpkg_exclude]
    argv += [f"--dpkgopt=path-include={p}" for p in recipe.dpkg_include]
    # Reuse downloaded packages across builds: copy the cache in, keep it, copy new ones out.
    argv += ["--skip=essential/unlink", f"--setup-hook=copy-in {debs} /var/cache/apt",
             f"--customize-hook=sync-out /var/cache/apt/archives {debs}"]
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


__all__ = ["BuildError", "Image", "RecipeError", "build", "built_images", "image_for", "prune"]
