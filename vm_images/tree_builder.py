"""Build the local desktop tree with mmdebstrap into a directory, cached by the recipes' hash."""

from __future__ import annotations

import fcntl
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vm_images import vm_dir
from vm_images.builder import BuildError, _du_mib, _package_versions, _run
from vm_images.recipe import load
from vm_images.trees import SANDBOX_UID, SANDBOX_USER, Tree, desktop_tree, tree_apps, trees_dir

#: Makes the sandbox's user known inside the tree (D-Bus refuses a uid without a passwd entry).
_USER_HOOK = (
    f"echo '{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:SciBoard desktop:/home/{SANDBOX_USER}:/bin/sh'"
    ' >> "$1/etc/passwd" && '
    f"echo '{SANDBOX_USER}:x:{SANDBOX_UID}:' >> \"$1/etc/group\" && "
    f'mkdir -p "$1/home/{SANDBOX_USER}"'
)


def build_tree(force: bool = False, log: Callable[[str], None] | None = None,
               output: TextIO | None = None) -> Tree:
    """Build (or reuse) the desktop tree; returns it. Progress goes to ``log`` and ``output``."""
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    tree = desktop_tree()
    if tree.complete() and not force:
        say(f"[tree build] up to date: {tree.path}")
        return tree
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is not installed (apt package mmdebstrap); run scripts/install.sh")
    trees_dir().mkdir(parents=True, exist_ok=True)
    with open(trees_dir() / "build.lock", "w") as lock:  # one build at a time (parallel tests or installs)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("[tree build] waiting for another tree build to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if tree.complete() and not force:
            say(f"[tree build] up to date: {tree.path}")
            return tree
        return _build_locked(tree, say, output)


def _build_locked(tree: Tree, say: Callable[[str], None], output: TextIO | None) -> Tree:
    started = time.monotonic()
    recipes = [load(app) for app in tree_apps()]
    packages = list(dict.fromkeys(p for recipe in recipes for p in recipe.desktop_packages))
    base = recipes[0]
    staging = trees_dir() / f".build-{tree.digest}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    root = staging / "root"
    try:
        say(f"[tree build] mmdebstrap {base.suite}: {', '.join(tree_apps())} ({len(packages)} packages + dependencies)")
        debs = vm_dir() / "apt" / "archives"
        (debs / "partial").mkdir(parents=True, exist_ok=True)
        argv = ["mmdebstrap", "--mode=root", "--variant=apt", "--format=directory", "--include=" + ",".join(packages),
                "--dpkgopt=force-unsafe-io"]
        argv += [f"--dpkgopt=path-exclude={p}" for p in base.dpkg_exclude]
        argv += [f"--dpkgopt=path-include={p}" for p in base.dpkg_include]
        argv += ["--skip=essential/unlink", f"--setup-hook=copy-in {debs} /var/cache/apt",
                 f"--customize-hook=sync-out /var/cache/apt/archives {debs}", f"--customize-hook={_USER_HOOK}",
                 "--customize-hook=rm -rf \"$1\"/var/cache/apt/archives/*.deb \"$1\"/var/lib/apt/lists/*"]
        _run([*argv, base.suite, str(root), *base.mirrors], "mmdebstrap", output)
        manifest = {
            "digest": tree.digest, "suite": base.suite, "apps": tree_apps(), "uid": SANDBOX_UID,
            "build_seconds": round(time.monotonic() - started, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "size_mib": _du_mib(root), "packages": _package_versions(root),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(tree.path, ignore_errors=True)
        staging.rename(tree.path)
        current = trees_dir() / "current"
        current.unlink(missing_ok=True)
        current.symlink_to(tree.digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    say(f"[tree build] done in {time.monotonic() - started:.0f}s: {tree.path} ({manifest['size_mib']} MiB)")
    return tree


def prune_trees() -> list[Path]:
    """Delete every built tree but the up-to-date one; returns what was deleted."""
    keep = desktop_tree().path
    removed = []
    for path in sorted(trees_dir().glob("*")):
        if path.is_dir() and not path.is_symlink() and path != keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


__all__ = ["build_tree", "prune_trees"]
