"""The guest kernel's memory, made lean before a VM's memory snapshot.

In a VM whose kernel zeroes freed pages (``init_on_free=1``), memory the page cache gives back is
zero and a snapshot stores it as a flag: dropping the clean page cache just before the snapshot
leaves less for every revert to load. This is done only inside a SciBoard VM (the files QEMU hands
its guest through fw_cfg are there), never on a host's kernel; elsewhere the call reports that
nothing was dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
MEMINFO = Path("/proc/meminfo")
#: Present only in a VM the libvirt provider booted (its per-VM files arrive through QEMU's fw_cfg).
VM_MARKER = Path("/sys/firmware/qemu_fw_cfg/by_name/opt/sciboard/token")


def _cached_mib() -> float:
    """The page cache's size (``Cached`` in /proc/meminfo), in MiB."""
    for line in MEMINFO.read_text().splitlines():
        if line.startswith("Cached:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def drop_page_cache() -> dict[str, object]:
    """Write dirty pages back, then drop the clean page cache, dentries and inodes.

    Returns ``{"dropped": True, "cached_mib_before": ..., "cached_mib_after": ...}``, or
    ``{"dropped": False, "reason": ...}`` outside a SciBoard VM or where the kernel does not allow it.
    """
    if not VM_MARKER.exists():
        return {"dropped": False, "reason": "not in a SciBoard VM: the page cache is the host's"}
    before = _cached_mib()
    os.sync()
    try:
        DROP_CACHES.write_text("3\n")
    except OSError as err:
        return {"dropped": False, "reason": f"the page cache cannot be dropped here: {err.strerror or err}"}
    return {"dropped": True, "cached_mib_before": before, "cached_mib_after": _cached_mib()}
