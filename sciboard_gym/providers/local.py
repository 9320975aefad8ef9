"""The embedded local desktop: an Xvfb desktop on this host, run by a local guest agent.

Each provider starts ``python3 -m sciboard_guest`` (Debian's Python, which has
python3-pyatspi) in its own process group. The guest starts Xvfb (a free display
number, picked by Xvfb itself), openbox, a D-Bus session bus and the AT-SPI bus,
and launches the app with a fresh HOME per episode. Closing the provider stops
all of it; nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sciboard_guest import processes
from sciboard_guest.screen import Screen
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.providers.base import Provider, ProviderError

GUEST_PYTHON = os.environ.get("SCIBOARD_GUEST_PYTHON", "/usr/bin/python3")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: Seconds a health check or a shutdown request may take: a guest that answers neither is frozen or gone.
QUICK_TIMEOUT = 10.0


class LocalProvider(Provider):
    """A private Xvfb desktop on this machine."""

    name = "local"

    def __init__(self, screen_size: tuple[int, int] = (1920, 1080), app: str | None = None,
                 start_timeout: float = 60.0, request_timeout: float = 120.0):
        self.screen_size = tuple(screen_size)
        self.app = app
        self.start_timeout = start_timeout
        self.request_timeout = request_timeout
        self.desktop_id = secrets.token_hex(8)
        self._proc: subprocess.Popen | None = None
        self._client: GuestClient | None = None
        self._workdir: Path | None = None
        self._screen: Screen | None = None

    @property
    def client(self) -> GuestClient:
        if self._client is None:
            raise ProviderError("the local desktop is not started")
        return self._client

    def start(self) -> GuestClient:
        if self._client is not None and self._proc is not None and self._proc.poll() is None:
            return self._client
        self.close()
        if shutil.which("Xvfb") is None:
            raise ProviderError("Xvfb is not installed: run scripts/install.sh (or apt-get install xvfb openbox)")
        self._workdir = Path(tempfile.mkdtemp(prefix=f"sciboard-{self.desktop_id}-"))
        token = secrets.token_urlsafe(24)
        token_file = self._workdir / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        port_file = self._workdir / "port"
        width, height = self.screen_size
        env = {
            "PATH": "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": _PACKAGE_ROOT,
            "SCIBOARD_DESKTOP": self.desktop_id,
            "LANG": "C.UTF-8",
        }
        with open(self._workdir / "guest.log", "ab") as log:
            self._proc = subprocess.Popen(
                [GUEST_PYTHON, "-m", "sciboard_guest", "--workdir", str(self._workdir / "desktop"),
                 "--token-file", str(token_file), "--port-file", str(port_file), "--screen", f"{width}x{height}",
                 "--exit-with-parent"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while not port_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                message = self._log_tail()
                self.close()
                raise ProviderError(f"the local desktop failed to start:\n{message}")
            time.sleep(0.02)
        self._client = GuestClient("127.0.0.1", int(port_file.read_text()), token, timeout=self.request_timeout)
        # Same host: read Xvfb's memory-mapped framebuffer directly instead of over HTTP.
        self._screen = Screen(display="", fbdir=self._workdir / "desktop" / "fb", env={})
        self._client.frame_source = self._screen.rgb
        return self._client

    def reset_app(self, app: str) -> dict:
        return self.client.launch(app)

    def alive(self) -> str | None:
        if self._proc is None or self._proc.poll() is not None:
            return "the guest agent died"
        try:
            health = self.client.health(timeout=QUICK_TIMEOUT)
        except GuestError as err:
            return f"the guest agent does not answer: {err}"
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

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self._workdir / "guest.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no guest log)"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: close() as far as it gets
            self.close()


def _kill_tagged(desktop_id: str) -> None:
    """Last resort: kill any process still carrying this desktop's tag."""
    processes.kill_tagged(desktop_id, exclude={os.getpid()})
