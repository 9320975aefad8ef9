"""The local desktop tree: where a built tree lives and what it holds.

This is the small interface the env core uses (a path and a manifest); building a tree is
:mod:`vm_images.tree_builder`'s job. One tree holds every app whose recipe needs no installer,
built from the same recipes as the VM images (Debian packages only, no kernel, no boot services).

Trees live under ``$SCIBOARD_CACHE/trees`` (default ``~/.cache/sciboard/trees``):

- ``<digest>/root/``         the tree (read-only inside each desktop's sandbox)
- ``<digest>/manifest.json`` what it was built from: apps, packages and versions, build time
- ``current``                the newest build (a symlink)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from vm_images.recipe import RECIPES_DIR, apps, load

#: Bump when the tree builder changes what it writes into a tree (invalidates every cached tree).
TREE_BUILDER_VERSION = 1
#: The unprivileged user every desktop runs as inside its sandbox (it has a passwd entry in the tree).
SANDBOX_UID = 1000
SANDBOX_USER = "sciboard"


class TreeMissing(RuntimeError):
    """No up-to-date desktop tree is built on this machine (the message says how to build it)."""


def cache_dir() -> Path:
    """The root of SciBoard's caches (``$SCIBOARD_CACHE`` or ``~/.cache/sciboard``)."""
    configured = os.environ.get("SCIBOARD_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sciboard"


def trees_dir() -> Path:
    return cache_dir() / "trees"


def tree_apps() -> list[str]:
    """The apps the desktop tree holds: every recipe built from Debian packages alone."""
    return [app for app in apps() if not load(app).installer_required]


def tree_digest() -> str:
    """A short hash of the recipes the tree is built from and the tree builder's version."""
    h = hashlib.sha256(f"tree-builder-{TREE_BUILDER_VERSION}\n".encode())
    for source in [RECIPES_DIR / "base.toml", *(RECIPES_DIR / f"{app}.toml" for app in tree_apps())]:
        h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Tree:
    """A desktop tree on disk (built or not)."""

    digest: str
    path: Path

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text())

    def complete(self) -> bool:
        return self.manifest_path.is_file() and (self.root / "usr" / "bin" / "python3").exists()


def desktop_tree() -> Tree:
    """The up-to-date desktop tree for the current recipes (check :meth:`Tree.complete`)."""
    digest = tree_digest()
    return Tree(digest, trees_dir() / digest)


def require_desktop_tree() -> Tree:
    """The built, up-to-date desktop tree, or :class:`TreeMissing` saying how to build it."""
    tree = desktop_tree()
    if not tree.complete():
        raise TreeMissing(f"the sandboxed desktop's tree is not built (expected {tree.path}): build it with "
                          "`sciboard tree build` (scripts/install.sh does this; it takes a few minutes)")
    return tree
