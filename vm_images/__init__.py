"""Reproducible VM images for SciBoard Gym, built from Debian packages with mmdebstrap.

Images live outside the clone, under ``$SCIBOARD_VM_DIR`` (default ``~/.cache/sciboard/vm``):

- ``images/<app>/<digest>/`` one built image: ``disk.qcow2``, ``vmlinuz``, ``initrd.img``, ``manifest.json``
- ``images/<app>/current``   the newest build of that app (a symlink)
- ``apt/archives/``          downloaded .deb files, reused by later builds
- ``run/<vm>/``              per-VM overlays, console logs and tokens (removed on close)
"""

from __future__ import annotations

import os
from pathlib import Path


def vm_dir() -> Path:
    """The root of the VM cache (``$SCIBOARD_VM_DIR`` or ``~/.cache/sciboard/vm``)."""
    configured = os.environ.get("SCIBOARD_VM_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "sciboard" / "vm"


def images_dir() -> Path:
    return vm_dir() / "images"


def run_dir() -> Path:
    return vm_dir() / "run"
