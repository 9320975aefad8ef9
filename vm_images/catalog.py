"""Built VM images on disk: where they live and what they contain (no building here).

The libvirt provider depends on ``vm_images`` only through this module: an image is a folder
with ``disk.qcow2``, ``vmlinuz``, ``initrd.img`` and ``manifest.json``, found by app and recipe
digest. :mod:`vm_images.builder` makes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vm_images import images_dir
from vm_images.recipe import DESKTOP_LAYER, load


class BuildError(RuntimeError):
    """An image could not be built (the message says which step failed and why)."""


@dataclass(frozen=True)
class Image:
    """A built image on disk."""

    app: str
    digest: str
    path: Path

    @property
    def disk(self) -> Path:
        return self.path / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.img"

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def layer_path(self) -> Path | None:
        """The desktop layer's folder when the disk is an overlay of it, else None."""
        layer = self.manifest.get("layer")
        return None if layer is None else images_dir() / DESKTOP_LAYER / layer

    def own_bytes(self) -> int:
        """Bytes of the image's own files: a file hard-linked to its layer's (the kernel, the initrd) counts there."""
        shared: set[tuple[int, int]] = set()
        layer = self.layer_path
        if layer is not None and layer.is_dir():
            shared = {(st.st_dev, st.st_ino) for st in (p.stat() for p in layer.iterdir() if p.is_file())}
        total = 0
        for path in self.path.iterdir():
            st = path.stat()
            if path.is_file() and (st.st_dev, st.st_ino) not in shared:
                total += st.st_size
        return total

    def complete(self) -> bool:
        """Every file is there, and so is the desktop layer the disk is an overlay of (if it is one)."""
        if not all(p.is_file() for p in (self.disk, self.kernel, self.initrd, self.path / "manifest.json")):
            return False
        layer = self.layer_path
        return layer is None or (layer / "disk.qcow2").is_file()


def image_for(app: str, installer: Path | None = None) -> Image:
    """Where the image for ``app`` (with ``installer``) lives, built or not."""
    recipe = load(app)
    digest = recipe.digest(installer) if installer is not None or not recipe.installer_required else None
    if digest is None:  # installer-based recipe without the installer at hand: use the newest build
        current = images_dir() / app / "current"
        if not current.exists():
            raise BuildError(f"no {app} image is built yet. {recipe.installer_hint} Then run: "
                             f"sciboard vm build {app} --installer FILE")
        digest = current.resolve().name
    return Image(app, digest, images_dir() / app / digest)


def built_images() -> list[Image]:
    """Every complete image in the cache."""
    found = []
    for app_dir in sorted(images_dir().glob("*")):
        for path in sorted(app_dir.iterdir()):
            if path.is_dir() and not path.is_symlink():
                image = Image(app_dir.name, path.name, path)
                if image.complete():
                    found.append(image)
    return found
