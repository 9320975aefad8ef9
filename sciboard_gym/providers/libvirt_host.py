"""Host side of the libvirt provider: the daemons, the libvirt connection and the KVM probe.

There is no systemd on these machines, so when libvirtd is not answering (and we
are root) we start ``virtlogd`` and ``libvirtd`` ourselves, and stop the ones we
started when this process exits, unless a domain still runs on them.
"""

from __future__ import annotations

import atexit
import grp
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sciboard_gym.providers.base import ProviderError

DEFAULT_URI = "qemu:///system"
_DAEMONS = (("virtlogd", Path("/run/virtlogd.pid")), ("libvirtd", Path("/run/libvirtd.pid")))
_started: list[tuple[str, int]] = []
_kvm_probe: dict[str, bool] = {}


def libvirt_module() -> Any:
    """The ``libvirt`` Python module, with libvirt's own stderr error printing switched off."""
    try:
        import libvirt
    except ImportError as err:
        raise ProviderError("libvirt-python is missing: apt-get install python3-libvirt (see scripts/apt/vm.txt) "
                            "or pip install 'sciboard-gym[vm]'") from err
    libvirt.registerErrorHandler(lambda *_: None, None)
    return libvirt


def connect(uri: str = DEFAULT_URI, timeout: float = 30.0) -> Any:
    """An open libvirt connection; starts virtlogd/libvirtd first when they are not running."""
    libvirt = libvirt_module()
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as first:
        if uri != DEFAULT_URI:
            raise ProviderError(f"cannot connect to libvirt at {uri}: {first}") from first
    _start_daemons()
    deadline = time.monotonic() + timeout
    while True:
        try:
            return libvirt.open(uri)
        except libvirt.libvirtError as err:
            if time.monotonic() > deadline:
                raise ProviderError(f"libvirtd did not come up within {timeout:.0f}s: {err}; "
                                    f"see /var/log/libvirt/libvirtd.log") from err
            time.sleep(0.2)


def _start_daemons() -> None:
    if os.geteuid() != 0:
        raise ProviderError("libvirtd is not running and only root can start it: start libvirtd (and virtlogd) "
                            "or run as root")
    _kvm_device_permissions()
    for name, pid_file in _DAEMONS:
        if _running(pid_file):
            continue
        binary = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if binary is None:
            raise ProviderError(f"{name} is not installed: apt-get install libvirt-daemon-system "
                                f"(see scripts/apt/vm.txt)")
        for directory in ("/run/libvirt", "/var/log/libvirt"):
            Path(directory).mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([binary, "--daemon"], capture_output=True, text=True, timeout=30, check=False)
        deadline = time.monotonic() + 10
        while not _running(pid_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.returncode != 0:
            if _running(pid_file):  # another process started it at the same moment
                continue
            raise ProviderError(f"{name} failed to start: {proc.stderr.strip()}")
        if _running(pid_file):
            _started.append((name, int(pid_file.read_text().strip())))


def _kvm_device_permissions() -> None:
    """Do what udev's default rule does (``/dev/kvm`` root:kvm 0660), as no udev runs here.

    Without it libvirtd finds KVM "not available" to its QEMU user after probing it as
    root, throws its capabilities cache away on every call and re-probes QEMU (~4 s
    each, ~50 s per domain start).
    """
    kvm = Path("/dev/kvm")
    try:
        group = grp.getgrnam("kvm").gr_gid
        if kvm.exists() and kvm.stat().st_gid != group:
            os.chown(kvm, 0, group)
            kvm.chmod(0o660)
    except (KeyError, OSError):
        pass


def _running(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@atexit.register
def stop_started_daemons() -> None:
    """Stop the daemons this process started, unless a domain is still running on them."""
    if not _started:
        return
    libvirt = libvirt_module()
    try:
        conn = libvirt.open(DEFAULT_URI)
        busy = conn.numOfDomains() > 0
        conn.close()
    except libvirt.libvirtError:
        busy = False
    if busy:
        return
    for name, pid in reversed(_started):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _started.clear()


def kvm_works(kernel: Path, timeout: float = 20.0) -> bool:
    """Boot ``kernel`` under KVM with no root disk; KVM works if it reaches its panic in time.

    A working KVM prints the kernel's banner and panics ("VFS: Unable to mount root")
    within seconds; a broken one (a guest that hangs) prints nothing.
    """
    key = str(kernel)
    if key in _kvm_probe:
        return _kvm_probe[key]
    works = False
    qemu = shutil.which("qemu-system-x86_64")
    if qemu and os.access("/dev/kvm", os.R_OK | os.W_OK):
        argv = [qemu, "-accel", "kvm", "-machine", "pc", "-cpu", "host", "-m", "256", "-nodefaults",
                "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel", str(kernel),
                "-append", "console=ttyS0 panic=-1"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
            works = b"Kernel panic" in proc.stdout
        except subprocess.TimeoutExpired:
            works = False
    _kvm_probe[key] = works
    return works
