"""The desktop session a guest owns: X server, window manager, buses and the app."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sciboard_guest import processes
from sciboard_guest.protocol import FRAMEBUFFER

CLEAN_PATH = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The X instance name (WM_CLASS) of a spare app's windows: the window manager maps them iconic and unfocused.
SPARE_INSTANCE = "sciboard-spare"
#: No key or mouse bindings (none are configured), so nothing on the desktop can bring up an iconic window;
#: the guest does it (``_NET_ACTIVE_WINDOW``) when it adopts a spare.
_OPENBOX_RC = f"""<?xml version="1.0" encoding="UTF-8"?>
<openbox_config xmlns="http://openbox.org/3.4/rc">
  <focus><focusNew>yes</focusNew><followMouse>no</followMouse></focus>
  <desktops><number>1</number></desktops>
  <applications>
    <application class="*" type="normal"><maximized>yes</maximized><focus>yes</focus></application>
    <application name="{SPARE_INSTANCE}"><iconic>yes</iconic><focus>no</focus></application>
  </applications>
</openbox_config>
"""


class DesktopError(RuntimeError):
    """A desktop component failed to start or died."""


@dataclass
class Spare:
    """A copy of an app started in the background with its own fresh HOME, for the next launch to adopt."""

    key: tuple[tuple[str, ...], tuple[tuple[str, str], ...]]
    proc: subprocess.Popen
    home: Path
    log: Path


@dataclass
class Desktop:
    """One X desktop with its own buses and a fresh HOME per app launch.

    With ``display=None`` the desktop starts its own Xvfb (the local provider);
    otherwise it attaches to an existing X display (e.g. the VM's X session).
    """

    workdir: Path
    desktop_id: str
    screen_size: tuple[int, int] = (1920, 1080)
    display: str | None = None
    xauthority: str | None = None
    fbdir: Path | None = None
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)
    _home: Path | None = None
    _launches: int = 0
    _spare: Spare | None = None

    def start(self) -> None:
        """Start X (if owned), the session bus, the accessibility bus and the window manager."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        runtime = self.workdir / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        base_home = self.workdir / "session-home"
        base_home.mkdir(exist_ok=True)
        tmp = self.workdir / "tmp"  # the desktop's own: e.g. Qt's single-instance sockets live there
        tmp.mkdir(mode=0o700, exist_ok=True)
        self._env = {
            "PATH": CLEAN_PATH,
            "HOME": str(base_home),
            "XDG_RUNTIME_DIR": str(runtime),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # Deterministic Qt hashing: the same widget/model order in every launch.
            "QT_HASH_SEED": "0",
            processes.MARKER: self.desktop_id,
        }
        self.display = self.display or self._start_xvfb()
        self._env["DISPLAY"] = self.display
        if self.xauthority:
            self._env["XAUTHORITY"] = self.xauthority
        self._start_buses()
        openbox_dir = base_home / ".config" / "openbox"
        openbox_dir.mkdir(parents=True, exist_ok=True)
        (openbox_dir / "rc.xml").write_text(_OPENBOX_RC)
        self._procs["wm"] = processes.spawn(
            ["openbox", "--config-file", str(openbox_dir / "rc.xml")], self._env, self.workdir / "openbox.log"
        )

    def _start_xvfb(self) -> str:
        """Start Xvfb on a free display; returns the display name (``:N``)."""
        width, height = self.screen_size
        self.fbdir = self.workdir / FRAMEBUFFER.parent
        self.fbdir.mkdir(exist_ok=True)
        self.xauthority = str(self.workdir / "Xauthority")
        cookie = secrets.token_bytes(16)
        _write_xauthority(Path(self.xauthority), cookie)
        read_fd, write_fd = os.pipe()
        proc = processes.spawn(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-fbdir", str(self.fbdir),
             "-nolisten", "tcp", "-auth", self.xauthority, "-noreset", "+extension", "RANDR"],
            self._env, self.workdir / "xvfb.log", pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self._procs["xvfb"] = proc
        number = _read_line(read_fd, timeout=20.0)
        if not number:
            raise DesktopError(f"Xvfb did not start: {_tail(self.workdir / 'xvfb.log')}")
        # Add an entry for this exact display: some clients (python-xlib) ignore wildcard entries.
        _write_xauthority(Path(self.xauthority), cookie, number)
        return f":{number}"

    def _start_buses(self) -> None:
        read_fd, write_fd = os.pipe()
        self._procs["dbus"] = processes.spawn(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--print-address={write_fd}"],
            self._env, self.workdir / "dbus.log", pass_fds=(write_fd,),
        )
        os.close(write_fd)
        address = _read_line(read_fd, timeout=10.0)
        if not address:
            raise DesktopError(f"dbus-daemon did not start: {_tail(self.workdir / 'dbus.log')}")
        self._env["DBUS_SESSION_BUS_ADDRESS"] = address
        # Start the accessibility bus now, so the app registers with it at launch.
        subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.a11y.Bus", "/org/a11y/bus",
             "org.a11y.Bus.GetAddress"],
            env=self._env, check=False, capture_output=True, timeout=15,
        )

    @property
    def env(self) -> dict[str, str]:
        """The environment desktop clients run with (DISPLAY, buses, tag)."""
        return dict(self._env)

    def launch(self, argv: list[str], extra_env: dict[str, str], name: str = "app",
               prepare: Callable[[Path], None] | None = None) -> Path:
        """Launch ``argv`` with a fresh HOME (filled by ``prepare(home)`` before the start); returns that HOME.

        A ``{home}`` in an argument is replaced by that HOME's path (for files ``prepare`` wrote there).
        """
        self.stop_app(name)
        self._procs[name], self._home = self._spawn_at_home(argv, extra_env, prepare, self.log_path(name))
        return self._home

    def _spawn_at_home(self, argv: list[str], extra_env: dict[str, str], prepare: Callable[[Path], None] | None,
                       log: Path) -> tuple[subprocess.Popen, Path]:
        self._launches += 1
        home = self.workdir / f"home-{self._launches}"
        home.mkdir()
        if prepare is not None:
            prepare(home)
        env = {**self._env, "HOME": str(home), **extra_env}
        argv = [arg.replace("{home}", str(home)) for arg in argv]
        return processes.spawn(argv, env, log, cwd=str(home)), home

    def start_spare(self, argv: list[str], extra_env: dict[str, str],
                    prepare: Callable[[Path], None] | None = None) -> None:
        """Start a spare copy of an app (``argv`` must give its windows the X instance name
        :data:`SPARE_INSTANCE`), replacing any other spare; :meth:`adopt_spare` makes it the app."""
        self.discard_spare()
        log = self.workdir / "spare.log"
        proc, home = self._spawn_at_home(argv, extra_env, prepare, log)
        self._spare = Spare(key=_spare_key(argv, extra_env), proc=proc, home=home, log=log)

    def spare_pid(self, argv: list[str], extra_env: dict[str, str]) -> int | None:
        """The process of the running spare started with these ``argv`` and ``extra_env``, if there is one."""
        spare = self._spare
        if spare is None or spare.key != _spare_key(argv, extra_env) or spare.proc.poll() is not None:
            return None
        return spare.proc.pid

    @property
    def any_spare_pid(self) -> int | None:
        return None if self._spare is None else self._spare.proc.pid

    def adopt_spare(self) -> Path:
        """Make the spare the app (stopping the app before it); returns its HOME."""
        spare, self._spare = self._spare, None
        if spare is None:
            raise DesktopError("there is no spare app to adopt")
        self.stop_app("app")
        os.replace(spare.log, self.log_path("app"))  # the spare goes on writing to it under the app's log name
        self._procs["app"], self._home = spare.proc, spare.home
        return spare.home

    def discard_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            self._stop_spare(spare)

    @staticmethod
    def _stop_spare(spare: Spare) -> None:
        processes.stop(spare.proc)
        shutil.rmtree(spare.home, ignore_errors=True)
        spare.log.unlink(missing_ok=True)

    def pid(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return None if proc is None else proc.pid

    def alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def exit_status(self, name: str) -> int | None:
        """The return code of the process ``name`` if it has ended (negative: killed by that signal), else None."""
        proc = self._procs.get(name)
        return None if proc is None else proc.poll()

    def log_path(self, name: str) -> Path:
        """Where the output of the process ``name`` goes."""
        return self.workdir / f"{name}.log"

    def component_status(self) -> dict[str, bool]:
        """Which of the desktop's processes are running."""
        return {name: proc.poll() is None for name, proc in self._procs.items()}

    def stop_app(self, name: str = "app") -> None:
        proc = self._procs.pop(name, None)
        processes.stop(proc)
        if self._home is not None and name == "app":
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def reap(self) -> None:
        own = {p.pid for p in self._procs.values()}
        processes.reap_orphans(own if self._spare is None else {*own, self._spare.proc.pid})

    def shutdown(self) -> None:
        """Stop everything this desktop started, including daemons that detached."""
        self.discard_spare()
        for name in [n for n in self._procs if n not in ("xvfb", "dbus")]:
            self.stop_app(name)
        for name in ("dbus", "xvfb"):
            processes.stop(self._procs.pop(name, None))
        processes.kill_tagged(self.desktop_id, exclude={os.getpid()})
        self.reap()


def _spare_key(argv: list[str], extra_env: dict[str, str]) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    return tuple(argv), tuple(sorted(extra_env.items()))


def _read_line(fd: int, timeout: float) -> str:
    """Read one line from a pipe fd, or '' on timeout/EOF."""
    import select

    data = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode().strip()


def _write_xauthority(path: Path, cookie: bytes, display_number: str | None = None) -> None:
    """An Xauthority file with one MIT cookie for any display, plus this host's ``display_number``."""

    def counted(value: bytes) -> bytes:
        return struct.pack(">H", len(value)) + value

    def entry(family: int, address: bytes, number: bytes) -> bytes:
        return (struct.pack(">H", family) + counted(address) + counted(number) + counted(b"MIT-MAGIC-COOKIE-1")
                + counted(cookie))

    data = entry(0xFFFF, b"", b"")
    if display_number is not None:
        data += entry(256, socket.gethostname().encode(), display_number.encode())
    path.write_bytes(data)
    path.chmod(0o600)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
