"""The libvirt provider: each env's desktop is a VM booted from a built image.

``start()`` defines a domain on a copy-on-write overlay of the app's image, boots
it, waits (bounded) for the guest agent, launches the app and takes a memory
snapshot (``ready``). ``reset_app()`` reverts to that snapshot: through libvirt
(``reset_mode="libvirt"``) or by QEMU's ``loadvm`` in the running process
(``reset_mode="loadvm"``, the default, several times faster). A VM that died is
brought back by reverting to the snapshot (which restarts QEMU); ``close()``
removes the domain and the overlay.
"""

from __future__ import annotations

import atexit
import io
import json
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
import weakref
from pathlib import Path
from typing import Any

import sciboard_guest
from sciboard_guest.protocol import ProtocolMismatch
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.providers import libvirt_host
from sciboard_gym.providers.base import Provider, ProviderError
from sciboard_gym.providers.libvirt_domain import DomainSpec, domain_xml
from vm_images import run_dir
from vm_images.catalog import BuildError, Image, image_for

SNAPSHOT = "ready"
RESET_MODES = ("loadvm", "libvirt")
ACCELS = ("auto", "kvm", "tcg")
TCG_READY_SCALE = 6
#: Under TCG an app draws an input's effect seconds late: a step's quiet window and timeout are stretched
#: by this factor, or the step ends before the app has reacted (and the next input lands on a busy app).
TCG_SETTLE_SCALE = 5.0
#: The quiet window (before stretching) when the caller leaves it to the app.
TCG_BASE_QUIET = 0.2
#: Kernel arguments of a lean snapshot: memory the guest frees is zeroed, so the ``ready`` snapshot
#: (which stores zero pages as flags) holds only memory in use and a revert has less to load.
LEAN_KERNEL_ARGS = "init_on_free=1"
#: Seconds a health check may take before the guest counts as frozen.
QUICK_TIMEOUT = 10.0
_STATES = {0: "in no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutting down", 5: "shut off",
           6: "crashed", 7: "suspended by power management"}


#: Providers with a VM, closed at interpreter exit so that no domain outlives the process.
_LIVE: weakref.WeakSet[LibvirtProvider] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for provider in list(_LIVE):
        provider.close()


class LibvirtProvider(Provider):
    """A desktop in a libvirt VM, reset by reverting a memory snapshot."""

    name = "libvirt"

    def __init__(self, screen_size: tuple[int, int] = (1920, 1080), app: str | None = None,
                 image: str | None = None, installer: str | None = None,
                 reset_mode: str = "loadvm", accel: str = "auto", memory_mib: int | None = None,
                 vcpus: int = 1, boot_timeout: float = 600.0, request_timeout: float = 120.0,
                 lean_snapshot: bool = True, drop_page_cache: bool = True, uri: str = libvirt_host.DEFAULT_URI):
        if app is None:
            raise ProviderError("the libvirt provider needs the app whose image to boot")
        if reset_mode not in RESET_MODES:
            raise ProviderError(f"reset_mode must be one of {RESET_MODES}, got {reset_mode!r}")
        if accel not in ACCELS:
            raise ProviderError(f"accel must be one of {ACCELS}, got {accel!r}")
        self.screen_size = (int(screen_size[0]), int(screen_size[1]))
        self.app = app
        self.reset_mode = reset_mode
        self.accel = accel
        self.vcpus = vcpus
        self.boot_timeout = boot_timeout
        self.request_timeout = request_timeout
        self.uri = uri
        self.lean_snapshot = lean_snapshot
        self.drop_page_cache = drop_page_cache
        self._image_dir = Path(image) if image else None
        self._installer = Path(installer) if installer else None
        self._memory_mib = memory_mib
        self.vm_id = f"sciboard-{app}-{secrets.token_hex(4)}"
        self.timings: dict[str, float] = {}
        #: Every revert's seconds (until the guest answers), per mode, for medians.
        self.revert_history: dict[str, list[float]] = {mode: [] for mode in RESET_MODES}
        self.settle_scale = 1.0
        self._conn: Any = None
        self._dom: Any = None
        self._client: GuestClient | None = None
        self._workdir: Path | None = None
        self._fresh = False
        self._token = ""

    # --- the Provider contract -----------------------------------------------------

    @property
    def client(self) -> GuestClient:
        if self._client is None:
            raise ProviderError("the VM is not started")
        return self._client

    def start(self) -> GuestClient:
        if self._client is not None and self._dom is not None:
            if self._dom_running():
                return self._client
            if self._revive():
                return self._client
        self.close()
        try:
            self._boot()
        except BaseException:
            self.close()
            raise
        return self.client

    def reset_app(self, app: str) -> dict:
        if app != self.app:
            raise ProviderError(f"this VM runs {self.app}, not {app}")
        if self._fresh:  # just booted or revived: already in the snapshot's state
            self._fresh = False
            return {"app": app, "launch_seconds": 0.0, "reset": "fresh"}
        seconds = self.revert()
        return {"app": app, "launch_seconds": seconds, "reset": self.reset_mode}

    def alive(self) -> str | None:
        if self._dom is None:
            return "the VM is not started"
        if not self._dom_running():
            libvirt = libvirt_host.libvirt_module()
            try:
                state = _STATES.get(self._dom.state()[0], "in an unknown state")
            except libvirt.libvirtError as err:
                state = f"unreachable through libvirt ({err})"
            return f"the VM {self.vm_id} is {state}; its console ends with: {self.console_tail(2)!r}"
        try:
            health = self.client.health(timeout=QUICK_TIMEOUT)
        except GuestError as err:
            return f"the guest agent in the VM does not answer: {err}"
        names = {"xvfb": "the X server", "wm": "the window manager", "dbus": "the session bus", "app": "the app"}
        dead = [names.get(name, name) for name, up in health["components"].items() if not up]
        return " and ".join(dead) + " died in the VM" if dead else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._dom is not None:
            libvirt = libvirt_host.libvirt_module()
            for action in (self._dom.destroy, self._undefine):
                try:
                    action()
                except libvirt.libvirtError:
                    pass
            self._dom = None
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt_host.libvirt_module().libvirtError:
                pass
            self._conn = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self._fresh = False

    # --- resets ---------------------------------------------------------------------

    def revert(self, mode: str | None = None) -> float:
        """Revert the running VM to the ``ready`` snapshot; returns the seconds until the guest answers."""
        mode = mode or self.reset_mode
        libvirt = libvirt_host.libvirt_module()
        started = time.monotonic()
        self.client.close()
        try:
            if mode == "loadvm":
                import libvirt_qemu

                reply = libvirt_qemu.qemuMonitorCommand(self._dom, f"loadvm {SNAPSHOT}",
                                                        libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP)
                if reply.strip():  # HMP answers loadvm with nothing on success, an error text otherwise
                    raise ProviderError(f"loadvm {SNAPSHOT} failed: {reply.strip()}")
            else:
                snapshot = self._dom.snapshotLookupByName(SNAPSHOT)
                self._dom.revertToSnapshot(snapshot, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
        except libvirt.libvirtError as err:
            raise ProviderError(f"reverting {self.vm_id} to its snapshot failed: {err}") from err
        self.timings[f"revert_{mode}_command_seconds"] = round(time.monotonic() - started, 3)
        self._wait_guest(time.monotonic() + 60, interval=0.05)
        seconds = time.monotonic() - started
        self.timings[f"revert_{mode}_seconds"] = round(seconds, 3)
        self.revert_history[mode].append(round(seconds, 3))
        return seconds

    def _revive(self) -> bool:
        """Bring a dead VM back from its snapshot (restarts QEMU); False if that is not possible."""
        libvirt = libvirt_host.libvirt_module()
        try:
            snapshot = self._dom.snapshotLookupByName(SNAPSHOT)
            self._dom.revertToSnapshot(snapshot, libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING)
            self._wait_guest(time.monotonic() + 60, interval=0.2)
        except (libvirt.libvirtError, ProviderError):
            return False
        self._fresh = True
        return True

    # --- boot -----------------------------------------------------------------------

    def _boot(self) -> None:
        image = self._image()
        manifest = image.manifest
        self._conn = libvirt_host.connect(self.uri)
        kvm = self.accel == "kvm" or (self.accel == "auto" and libvirt_host.kvm_works(image.kernel))
        self._workdir = run_dir() / self.vm_id
        self._workdir.mkdir(parents=True)
        _LIVE.add(self)
        overlay = self._workdir / "overlay.qcow2"
        proc = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image.disk),
                               str(overlay)], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ProviderError(f"could not create the overlay of {image.disk}: {proc.stderr.strip()}")
        self._token = secrets.token_urlsafe(24)
        token_file = _private_file(self._workdir / "token", self._token.encode())
        width, height = self.screen_size
        # Under TCG everything in the guest is several times slower: stretch the app's readiness timeout.
        env = f"SCIBOARD_SCREEN={width}x{height}\nSCIBOARD_READY_SCALE={1 if kvm else TCG_READY_SCALE}\n"
        env_file = _private_file(self._workdir / "guest.env", env.encode())
        code_file = _private_file(self._workdir / "guest.tar.gz", _guest_code())
        port = _free_port()
        cmdline = manifest["kernel_cmdline"] + (f" {LEAN_KERNEL_ARGS}" if self.lean_snapshot else "")
        spec = DomainSpec(
            name=self.vm_id, kvm=kvm, memory_mib=self._memory_mib or int(manifest.get("memory_mib", 1536)),
            vcpus=self.vcpus, kernel=image.kernel, initrd=image.initrd, cmdline=cmdline,
            overlay=overlay, console_log=self._workdir / "console.log", host_port=port, token_file=token_file,
            env_file=env_file, code_file=code_file,
        )
        libvirt = libvirt_host.libvirt_module()
        started = time.monotonic()
        try:
            self._dom = self._conn.defineXML(domain_xml(spec))
            self._dom.create()
        except libvirt.libvirtError as err:
            raise ProviderError(f"libvirt could not start the {self.app} VM: {err}") from err
        self.timings["accel_kvm"] = float(kvm)
        self.settle_scale = 1.0 if kvm else TCG_SETTLE_SCALE
        self._client = ScaledSettleClient("127.0.0.1", port, self._token, timeout=self.request_timeout,
                                          settle_scale=self.settle_scale)
        self._wait_guest(started + self.boot_timeout)
        self.timings["boot_seconds"] = round(time.monotonic() - started, 3)
        slow = GuestClient("127.0.0.1", port, self._token, timeout=self.boot_timeout)
        try:  # the first launch under TCG takes minutes: a client with a long timeout
            launch = slow.launch(self.app, spare=False)  # resets revert the snapshot: a spare would only fill it
            slow.settle(0.3, 10.0)
            if self.drop_page_cache:  # with a lean snapshot, the dropped cache is zeroed memory the snapshot skips
                trimmed = slow.trim_memory()
                if trimmed.get("dropped"):
                    self.timings["page_cache_dropped_mib"] = round(
                        float(trimmed["cached_mib_before"]) - float(trimmed["cached_mib_after"]), 1)
        except GuestError as err:
            raise ProviderError(f"{self.app} did not start in the VM: {err}; the VM's console log ends with:\n"
                                f"{self.console_tail()}") from err
        finally:
            slow.close()
        self.timings["launch_seconds"] = float(launch.get("launch_seconds", 0.0))
        snap_started = time.monotonic()
        self._client.close()
        try:
            self._dom.snapshotCreateXML(f"<domainsnapshot><name>{SNAPSHOT}</name></domainsnapshot>", 0)
        except libvirt.libvirtError as err:
            raise ProviderError(f"could not snapshot the {self.app} VM: {err}") from err
        self.timings["snapshot_seconds"] = round(time.monotonic() - snap_started, 3)
        self.timings["snapshot_mib"] = _vm_state_mib(overlay)
        self.timings["ready_seconds"] = round(time.monotonic() - started, 3)
        self._fresh = True

    def _image(self) -> Image:
        if self._image_dir is not None:
            image = Image(self.app, self._image_dir.name, self._image_dir)
        else:
            try:
                image = image_for(self.app, self._installer)
            except BuildError as err:
                raise ProviderError(str(err)) from err
        if not image.complete():
            raise ProviderError(f"no built VM image for {self.app} at {image.path}: build it with "
                                f"`sciboard vm build {self.app}`")
        return image

    def _wait_guest(self, deadline: float, interval: float = 1.0) -> None:
        """Poll the guest agent until it answers; a clear error with the console tail otherwise."""
        probe = GuestClient(self.client.host, self.client.port, self._token, timeout=5.0)
        try:
            while True:
                if not self._dom_running():
                    raise ProviderError(f"the {self.app} VM stopped while booting; its console log ends with:\n"
                                        f"{self.console_tail()}")
                try:
                    probe.handshake()
                    return
                except ProtocolMismatch as err:
                    raise ProviderError(f"the {self.app} VM's guest agent is not usable: {err}") from None
                except GuestError as err:
                    if err.status == 401:
                        raise ProviderError("the guest agent rejected the VM's token") from err
                if time.monotonic() > deadline:
                    raise ProviderError(f"the guest agent of the {self.app} VM did not answer in time; "
                                        f"its console log ends with:\n{self.console_tail()}")
                time.sleep(interval)
        finally:
            probe.close()

    # --- helpers --------------------------------------------------------------------

    def _dom_running(self) -> bool:
        libvirt = libvirt_host.libvirt_module()
        try:
            return self._dom is not None and self._dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        except libvirt.libvirtError:
            return False

    def _undefine(self) -> None:
        libvirt = libvirt_host.libvirt_module()
        self._dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)

    def console_tail(self, lines: int = 25) -> str:
        """The last lines of the VM's serial console (kernel and systemd messages)."""
        if self._workdir is None:
            return "(no console log)"
        try:
            text = (self._workdir / "console.log").read_text(errors="replace")
        except OSError:
            return "(no console log)"
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")
        return "\n".join(line for line in text.splitlines()[-lines:])

    def __del__(self) -> None:
        # No module globals here: at interpreter shutdown they may already be gone.
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110  (close() as far as it gets; nothing to report to)
            pass


class ScaledSettleClient(GuestClient):
    """A guest client whose screen settling waits ``settle_scale`` times longer (a VM without KVM).

    A quiet window left to the app (``None``) becomes :data:`TCG_BASE_QUIET` stretched by the scale.
    """

    def __init__(self, host: str, port: int, token: str, timeout: float = 120.0, settle_scale: float = 1.0):
        super().__init__(host, port, token, timeout=timeout)
        self.settle_scale = settle_scale

    def _scaled(self, quiet: float | None, timeout: float) -> tuple[float | None, float]:
        if self.settle_scale == 1.0:
            return quiet, timeout
        return (TCG_BASE_QUIET if quiet is None else quiet) * self.settle_scale, timeout * self.settle_scale

    def settle(self, quiet: float | None = None, timeout: float = 3.0) -> dict[str, Any]:
        return super().settle(*self._scaled(quiet, timeout))

    def input(self, action: dict[str, Any], settle: tuple[float | None, float] | None = None) -> dict[str, Any] | None:
        return super().input(action, settle=None if settle is None else self._scaled(*settle))


def _guest_code() -> bytes:
    """The host's ``sciboard_guest`` package as a tar.gz (handed to the VM through fw_cfg)."""
    root = Path(sciboard_guest.__file__).resolve().parent
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            tar.add(path, arcname=str(Path("sciboard_guest") / path.relative_to(root)), recursive=False)
    return buffer.getvalue()


def _vm_state_mib(overlay: Path) -> float:
    """The size of the ``ready`` snapshot's saved memory and devices (what a revert loads), in MiB."""
    proc = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(overlay)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return float("nan")
    snapshots = json.loads(proc.stdout).get("snapshots", [])
    sizes = [s.get("vm-state-size", 0) for s in snapshots if s.get("name") == SNAPSHOT]
    return round(sizes[0] / (1 << 20), 1) if sizes else float("nan")


def _private_file(path: Path, data: bytes) -> Path:
    if "," in str(path):
        raise ProviderError(f"QEMU cannot take a path with a comma: {path}")
    path.touch(mode=0o600)
    path.write_bytes(data)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
