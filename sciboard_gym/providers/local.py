"""The embedded local desktop: an Xvfb desktop on this host, run by a local guest agent.

By default each desktop runs in the pinned desktop tree inside a bubblewrap sandbox
(:mod:`sciboard_gym.providers.sandbox`): the guest (Debian 12's Python in the tree) starts
Xvfb, openbox, a D-Bus session bus and the AT-SPI bus, and launches the app with a fresh HOME
per episode. The host talks to the guest over a Unix socket in the desktop folder and reads
frames from Xvfb's memory-mapped framebuffer there; no TCP port is used. With
``sandbox=False`` the same guest runs on the host's own packages (development only).
Closing the provider stops all of it; nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from sciboard_guest import processes
from sciboard_guest.apps import AppNotInstalled
from sciboard_guest.protocol import LOG_NAME, SOCKET_NAME, TOKEN_NAME, ProtocolMismatch
from sciboard_guest.screen import Screen
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.providers import sandbox as sandboxing
from sciboard_gym.providers.base import Provider, ProviderError
from vm_images.trees import Tree, TreeMissing, cache_dir, desktop_tree, require_desktop_tree

GUEST_PYTHON = os.environ.get("SCIBOARD_GUEST_PYTHON", "/usr/bin/python3")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
#: Seconds a health check or a shutdown request may take: a guest that answers neither is frozen or gone.
QUICK_TIMEOUT = 10.0
#: How long a guest that stopped answering is given to exit before it is reported as hung, not dead.
DYING_WAIT = 2.0
#: Apps whose data is built once per tree, outside any desktop, then bound read-only into each sandbox:
#: app -> the command (run in the sandbox with the data folder writable) that builds it.
PREPARED_DATA = {"grass": [f"{sandboxing.PACKAGE_DIR}/sciboard_guest/apps/grass_data.py", "build"]}


def sandboxed_apps() -> list[str]:
    """The apps a sandboxed local desktop can run here: those in the built, up-to-date desktop tree."""
    tree = desktop_tree()
    return list(tree.manifest["apps"]) if tree.complete() else []


class LocalProvider(Provider):
    """A private Xvfb desktop on this machine (sandboxed unless ``sandbox=False``).

    With ``spare_app`` (the default) the guest keeps a spare copy of an app that has one (KAlgebra)
    starting in the background after each reset, for the next reset to adopt: resets skip the app's
    start-up, which then runs during the episode instead.
    """

    name = "local"

    def __init__(self, screen_size: tuple[int, int] = (1920, 1080), app: str | None = None,
                 start_timeout: float = 60.0, request_timeout: float = 120.0, sandbox: bool = True,
                 spare_app: bool = True):
        self.screen_size = tuple(screen_size)
        self.app = app
        self.spare_app = spare_app
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.sandbox = sandbox
        self.desktop_id = secrets.token_hex(8)
        self._proc: subprocess.Popen | None = None
        self._client: GuestClient | None = None
        self._workdir: Path | None = None
        self._screen: Screen | None = None
        self._tree: Tree | None = None
        if sandbox:
            sandboxing.check_host()
            try:
                self._tree = require_desktop_tree()
            except TreeMissing as err:
                raise ProviderError(str(err)) from None
            held = self._tree.manifest["apps"]
            if app is not None and app not in held:
                raise AppNotInstalled(
                    f"{app} is not installed in the sandboxed desktop's tree (it holds {', '.join(held)}; {app} needs "
                    f"an installer you download yourself). Build its VM image and use provider='libvirt' (see "
                    f"docs/vm.md), or install it on this host and use sandbox=False. {self._install_hint(app)}")
        else:
            warnings.warn("sandbox=False: the desktop runs on this host's own packages, unsandboxed; an agent can "
                          "reach this machine through the app (development only)", RuntimeWarning, stacklevel=3)

    @staticmethod
    def _install_hint(app: str) -> str:
        from sciboard_guest import apps

        try:
            return apps.get(app).install_hint
        except KeyError:
            return ""

    @property
    def client(self) -> GuestClient:
        if self._client is None:
            raise ProviderError("the local desktop is not started")
        return self._client

    def start(self) -> GuestClient:
        if self._client is not None and self._proc is not None and self._proc.poll() is None:
            return self._client
        self.close()
        self._workdir = Path(tempfile.mkdtemp(prefix=f"sciboard-{self.desktop_id}-"))
        token = secrets.token_urlsafe(24)
        token_file = self._workdir / TOKEN_NAME
        token_file.write_text(token)
        token_file.chmod(0o600)
        width, height = self.screen_size
        socket_path = self._workdir / SOCKET_NAME
        self._workdir.chmod(0o700)
        if self._tree is not None:
            box = sandboxing.Sandbox(self._tree.root, self._workdir, _PACKAGE_ROOT, data_dir=self._prepare_data(),
                                     env={processes.MARKER: self.desktop_id})
            inside = sandboxing.DESKTOP_DIR
            argv = box.argv(["/usr/bin/python3", "-m", "sciboard_guest", "--workdir", inside,
                             "--token-file", f"{inside}/{TOKEN_NAME}", "--delete-token-file",
                             "--socket", f"{inside}/{SOCKET_NAME}", "--screen", f"{width}x{height}",
                             "--exit-with-parent"])
            env = {"PATH": sandboxing.PATH}
        else:
            if shutil.which("Xvfb") is None:
                raise ProviderError("Xvfb is not installed on this host: sandbox=False runs on the host's own "
                                    "packages (install them with SCIBOARD_UNSANDBOXED=1 scripts/install.sh)")
            argv = [GUEST_PYTHON, "-m", "sciboard_guest", "--workdir", str(self._workdir), "--token-file",
                    str(token_file), "--delete-token-file", "--socket", str(socket_path), "--screen",
                    f"{width}x{height}", "--exit-with-parent"]
            env = {"PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(_PACKAGE_ROOT),
                   processes.MARKER: self.desktop_id, "LANG": "C.UTF-8"}
        with open(self._workdir / LOG_NAME, "ab") as log:
            self._proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while not socket_path.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                message = self._log_tail()
                self.close()
                raise ProviderError(f"the local desktop failed to start:\n{message}")
            time.sleep(0.02)
        self._client = GuestClient("localhost", 0, token, timeout=self.request_timeout, unix_socket=str(socket_path))
        try:
            health = self._client.handshake(timeout=QUICK_TIMEOUT)
        except (GuestError, ProtocolMismatch) as err:
            message = str(err)
            self.close()
            raise ProviderError(f"the local desktop's guest is not usable: {message}") from None
        # Same host: read Xvfb's memory-mapped framebuffer (reported by the guest) directly instead of over HTTP.
        if health.get("framebuffer"):
            framebuffer = self._workdir / health["framebuffer"]
            self._screen = Screen(display="", fbdir=framebuffer.parent, env={})
            self._client.frame_source = self._screen.rgb
        return self._client

    def _prepare_data(self) -> Path | None:
        """The app's prepared data for this tree (built once, sandboxed), to bind read-only; None if it has none."""
        if self._tree is None or self._workdir is None:
            return None
        data = cache_dir() / "desktop-data" / self._tree.digest
        command = PREPARED_DATA.get(self.app or "")
        if command is None:
            return data if data.is_dir() else None
        script = _PACKAGE_ROOT / Path(command[0]).relative_to(sandboxing.PACKAGE_DIR)
        stamp = data / f".prepared-{self.app}-{hashlib.sha256(script.read_bytes()).hexdigest()[:16]}"
        if stamp.exists():
            return data
        data.mkdir(parents=True, exist_ok=True)
        box = sandboxing.Sandbox(self._tree.root, self._workdir, _PACKAGE_ROOT, data_dir=data, data_writable=True)
        with open(self._workdir / f"prepare-{self.app}.log", "ab") as log:
            done = subprocess.run(box.argv(["/usr/bin/python3", *command]), env={"PATH": sandboxing.PATH},
                                  stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=900,
                                  check=False)
        if done.returncode != 0:
            raise ProviderError(f"preparing the {self.app} data failed (exit {done.returncode}):\n"
                                + self._log_tail(name=f"prepare-{self.app}.log"))
        stamp.touch()
        return data

    @property
    def guest_pid(self) -> int | None:
        """The host pid of the guest agent process (sandboxed: a descendant of bubblewrap); None if not running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
        family, grown = {self._proc.pid}, True
        while grown:
            new = {pid for pid, parent in parents.items() if parent in family} - family
            family |= new
            grown = bool(new)
        for pid in sorted(family):
            try:
                argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if Path(os.fsdecode(argv[0])).name.startswith("python") and argv[1:3] == [b"-m", b"sciboard_guest"]:
                return pid  # not bubblewrap, whose own argv ends with the same command
        return None

    def reset_app(self, app: str) -> dict:
        return self.client.launch(app, spare=self.spare_app)

    def alive(self) -> str | None:
        if self._proc is None or self._proc.poll() is not None:
            return "the guest agent died"
        try:
            health = self.client.health(timeout=QUICK_TIMEOUT)
        except GuestError as err:
            try:  # a guest that has died takes its sandbox down with it, a moment later
                self._proc.wait(DYING_WAIT)
            except subprocess.TimeoutExpired:
                return f"the guest agent does not answer: {err}"
            return "the guest agent died"
        dead = [name for name, up in health["components"].items() if not up]
        names = {"xvfb": "the X server", "wm": "the window manager", "dbus": "the session bus", "app": "the app"}
        if dead:
            return " and ".join(names.get(d, d) for d in dead) + " died"
        return None

    def close(self) -> None:
        if self._screen is not None:
            self._screen.close()
            self._screen = None
        if self._client is not None:
            if self._proc is not None and self._proc.poll() is None:
                self._client.shutdown(timeout=QUICK_TIMEOUT)
            self._client.close()
            self._client = None
        if self._proc is not None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            if self._proc.poll() is None:
                try:
                    os.killpg(self._proc.pid, 9)
                except ProcessLookupError:
                    pass
                self._proc.wait(5)
            self._proc = None
        _kill_tagged(self.desktop_id)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _log_tail(self, lines: int = 20, name: str = LOG_NAME) -> str:
        if self._workdir is None:
            return "(no guest log)"
        try:
            return "\n".join((self._workdir / name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no guest log)"

    def __del__(self) -> None:
        # No module globals here: at interpreter shutdown they may already be gone.
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110  (close() as far as it gets; nothing to report to)
            pass


def _kill_tagged(desktop_id: str) -> None:
    """Last resort: kill any process still carrying this desktop's tag."""
    processes.kill_tagged(desktop_id, exclude={os.getpid()})
