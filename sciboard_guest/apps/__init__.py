"""Guest-side app definitions: how an app is launched on the desktop, when it is
ready, and its NAMED setup steps and state probes.

Each app lives in its own module here and exposes ``APP``. Requests can only
name registered steps and probes, with JSON arguments checked against the
function's annotations; nothing else is reachable.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN_APPS = ("kalgebra", "grass", "pymol", "stellarium", "texstudio", "chimerax", "celestia")


class AppError(RuntimeError):
    """An app-level failure: not installed, not ready, a probe that cannot be read."""


class AppNotInstalled(AppError):
    """The app's program is missing on this desktop."""


class AppExited(AppError):
    """The app's process ended while the guest waited for it (e.g. during its readiness wait)."""


class BadArgument(ValueError):
    """A request names an unknown step/probe or passes an argument it refuses: the caller's
    mistake (HTTP 400). Any other exception out of a step or probe is a guest bug (HTTP 500)."""


@dataclass
class AppContext:
    """What setup steps and probes may use: the desktop's env, screen, input and a11y."""

    env: dict[str, str]
    home: Path
    screen: Any
    a11y: Any
    perform: Callable[[dict], None]
    settle: Callable[..., Any]
    app_pid: int | None = None
    state: dict[str, Any] = field(default_factory=dict)
    #: The app process's exit status (None while it runs) and its log: for :meth:`ensure_app_running`.
    app_exit_status: Callable[[], int | None] = lambda: None
    app_log: Path | None = None
    #: ``repainted(width, height, timeout)``: wait until an area at least that large is drawn; whether it was.
    repainted: Callable[[int, int, float], bool] = lambda width, height, timeout: False

    def ensure_app_running(self) -> None:
        """Raise :class:`AppExited` (naming the exit status and the end of the app's log) if the app has exited."""
        status = self.app_exit_status()
        if status is not None:
            raise AppExited(f"the app {describe_exit(status)}; its log ends with:\n{log_tail(self.app_log)}")

    def key(self, keys: str) -> None:
        self.perform({"name": "key", "keys": keys})

    def type(self, text: str) -> None:
        self.perform({"name": "type", "text": text})

    def click(self, x: int, y: int) -> None:
        self.perform({"name": "click", "x": int(x), "y": int(y)})


@dataclass
class GuestApp:
    """One app as the guest sees it."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    install_hint: str = ""
    #: Files the app needs besides its program (e.g. its data), checked with the program.
    data_files: tuple[str, ...] = ()
    ready_timeout: float = 60.0
    prepare: Callable[[Path], None] | None = None
    #: The shortest quiet period that proves this app's screen has settled (an app that redraws at a
    #: low idle frame rate shows an input's effect only at its next frame); /settle never waits less.
    settle_quiet: float = 0.0
    #: How late an input's effect may reach this app's screen: /settle trusts an unchanged screen only after this.
    first_change_wait: float = 0.0
    #: After typed text, /settle lasts at least this long: an app that draws something of its own a while
    #: after typing stops (a result preview, a completion list) shows it within this time.
    text_wait: float = 0.0
    #: Whether the app redraws large areas on a timer that change nothing or only a caret (Stellarium's sky,
    #: TeXstudio's whole editor at each caret blink): a step's settle then counts only drawing that changed
    #: the frame by more than a caret, so its quiet window may be longer than the timer's interval.
    redraws_unchanged: bool = False
    #: Whether a step's settle also waits until the app's processes stop computing (:class:`~sciboard_guest.settle.Computing`):
    #: for an app that draws from another process (a web view's renderer), whose screen can stay quiet for a
    #: while before a result is drawn. Its quiet window can then be shorter. Not on a slow guest (a VM without
    #: KVM), whose quiet windows are stretched anyway.
    settle_cpu: bool = False
    #: The X window class of the app's windows (default: its name), for the in-place reset's window checks.
    window_class: str = ""
    #: How to start a spare copy of the app whose windows the window manager keeps iconic and unfocused
    #: (they carry the X instance name :data:`~sciboard_guest.desktop.SPARE_INSTANCE`, e.g. Qt's ``-name``
    #: option). When set, every launch starts a spare in the background and the next fresh launch adopts it
    #: instead of starting the app: a relaunch without the app's start-up time.
    spare_argv: list[str] | None = None
    #: Whether the restore step checks HOME and the windows against their state at launch
    #: (:mod:`sciboard_guest.apps.inplace`): the guest records that state only for such apps.
    restore_checks_launch_state: bool = False
    _ready: Callable[[AppContext, float], None] | None = None
    _restore: Callable[[AppContext], None] | None = None
    _busy: Callable[[AppContext], bool] | None = None
    setups: dict[str, Callable[..., Any]] = field(default_factory=dict)
    probes: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def ready(self, fn: Callable[[AppContext, float], None]) -> Callable[[AppContext, float], None]:
        """Decorator: ``fn(ctx, deadline)`` returns when the app accepts input, else raises AppError."""
        self._ready = fn
        return fn

    def restore(self, fn: Callable[[AppContext], None]) -> Callable[[AppContext], None]:
        """Decorator: ``fn(ctx)`` puts the RUNNING app back into its just-launched state in place
        (a fast reset instead of a relaunch); it raises AppError when it cannot, and the app is relaunched."""
        self._restore = fn
        return fn

    def busy(self, fn: Callable[[AppContext], bool]) -> Callable[[AppContext], bool]:
        """Decorator: ``fn(ctx)`` says whether the app is still working on an input (e.g. a command it runs);
        a step's settle does not end while it is (bounded by :data:`BUSY_TIMEOUT`)."""
        self._busy = fn
        return fn

    def setup(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a named setup step ``fn(ctx, **args)``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.setups[name] = fn
            return fn

        return register

    def probe(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a named state probe ``fn(ctx, **args) -> JSON value``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.probes[name] = fn
            return fn

        return register

    def check_installed(self) -> None:
        if shutil.which(self.argv[0], path=_app_path(self.env)) is None:
            raise AppNotInstalled(f"{self.name} is not installed on this desktop ({self.argv[0]} not found). "
                                  f"{self.install_hint}")
        for data in self.data_files:
            if not Path(data).is_file():
                raise AppNotInstalled(f"{self.name}'s program is installed but its data is not ({data} is missing). "
                                      f"{self.install_hint}")

    def wait_ready(self, ctx: AppContext) -> None:
        """Return when the app accepts input; :class:`AppExited` at once if it exits while starting,
        :class:`AppError` when its readiness timeout passes."""
        deadline = time.monotonic() + self.ready_timeout * slowness()
        ctx.ensure_app_running()
        if self._ready is None:
            return
        try:
            self._ready(ctx, deadline)  # its polling loop calls ctx.ensure_app_running() on every round
        except AppExited as err:
            raise AppExited(f"{self.name} could not start: {err}") from None
        except AppError:
            ctx.ensure_app_running()  # a timeout because the app died: say so
            raise


def xdotool(ctx: AppContext, argv: list[str]) -> str:
    """``xdotool`` (an argv list) on the app's display: its output, or "" when it fails."""
    return xdotool_on(ctx.env, argv)


def xdotool_on(env: dict[str, str], argv: list[str]) -> str:
    """``xdotool`` (an argv list) on the display of a desktop's ``env``: its output, or "" when it fails."""
    result = subprocess.run(["xdotool", *argv], env=env, capture_output=True, text=True, timeout=10, check=False)
    return result.stdout if result.returncode == 0 else ""


@contextmanager
def x_connection(env: dict[str, str]) -> Iterator[Any]:
    """A python-xlib connection to the X display of a desktop's ``env`` (with its Xauthority), closed after
    the block."""
    from Xlib import display

    if env.get("XAUTHORITY"):
        os.environ["XAUTHORITY"] = env["XAUTHORITY"]
    conn = display.Display(env["DISPLAY"])
    try:
        yield conn
    finally:
        conn.close()


def xdotool_numbers(ctx: AppContext, argv: list[str], *names: str) -> tuple[int, ...] | None:
    """The integer fields ``names`` of an ``xdotool ... --shell`` answer (``X=12`` lines), or None when
    xdotool failed or a field is missing or not a number (e.g. the window went away)."""
    fields = dict(line.split("=", 1) for line in xdotool(ctx, argv).splitlines() if "=" in line)
    try:
        return tuple(int(fields[name]) for name in names)
    except (KeyError, ValueError):
        return None


def visible_windows(ctx: AppContext, window_class: str) -> list[str]:
    """The ids of the visible X windows of class ``window_class`` (none: an empty list)."""
    return xdotool(ctx, ["search", "--onlyvisible", "--class", window_class]).split()


def iconic_windows(env: dict[str, str], pid: int, instance: str) -> list[str]:
    """The ids of process ``pid``'s windows of X instance name ``instance`` that the window manager keeps
    iconic (ICCCM ``WM_STATE``), on the desktop of ``env``."""
    from Xlib import Xutil
    from Xlib.error import XError

    found = xdotool_on(env, ["search", "--pid", str(pid), "--classname", instance]).split()
    iconic = []
    with x_connection(env) as conn:
        for wid in found:
            try:
                state = conn.create_resource_object("window", int(wid)).get_wm_state()
            except XError:  # the window went away meanwhile
                continue
            if state is not None and state.state == Xutil.IconicState:
                iconic.append(wid)
    return iconic


#: The longest a step's settle waits for a busy app (:meth:`GuestApp.busy`), stretched by :func:`slowness`
#: up to BUSY_TIMEOUT_MAX (below the provider's request timeout).
BUSY_TIMEOUT, BUSY_TIMEOUT_MAX = 20.0, 90.0
#: The longest a step's settle waits for the app to answer an accessibility call (see
#: :meth:`sciboard_guest.server.Guest.app_caught_up`), stretched by :func:`slowness` up to BUSY_TIMEOUT_MAX.
CATCH_UP_TIMEOUT = 10.0
#: An app whose main thread answers an accessibility call within this (stretched by :func:`slowness`) was idle.
PROMPT_ANSWER = 0.05


def slowness() -> float:
    """How many times longer than on a local desktop this guest's waits may take: ``SCIBOARD_READY_SCALE``
    (set by the libvirt provider: 6 in a VM without KVM), 1 otherwise."""
    return float(os.environ.get("SCIBOARD_READY_SCALE", "1"))


def stretched(seconds: float) -> float:
    """A wait of ``seconds`` on a local desktop, stretched by :func:`slowness` up to BUSY_TIMEOUT_MAX."""
    return min(seconds * slowness(), BUSY_TIMEOUT_MAX)


def describe_exit(status: int) -> str:
    """``exited with code N`` or ``was killed by signal SIGNAME`` for a Popen return code."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = str(-status)
        return f"was killed by signal {name}"
    return f"exited with code {status}"


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ("(no log)" when there is none)."""
    if path is None:
        return "(no log)"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


def _app_path(env: dict[str, str]) -> str:
    from sciboard_guest.desktop import CLEAN_PATH

    return env.get("PATH", CLEAN_PATH)


def get(name: Any) -> GuestApp:
    """The registered app ``name`` (imported from this package only)."""
    if not isinstance(name, str) or name not in KNOWN_APPS:
        raise AppError(f"unknown app {name!r}; known: {', '.join(KNOWN_APPS)}")
    module = importlib.import_module(f"sciboard_guest.apps.{name}")
    return module.APP


def call_named(table: dict[str, Callable[..., Any]], kind: str, name: Any, ctx: AppContext, args: Any) -> Any:
    """Call a registered step/probe after checking the argument names and JSON types."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name) or name not in table:
        raise BadArgument(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
    if not isinstance(args, dict):
        raise BadArgument(f"{kind} {name}: args must be a JSON object")
    fn = table[name]
    params = list(inspect.signature(fn).parameters.values())[1:]
    allowed = {p.name: p for p in params}
    unknown = set(args) - set(allowed)
    if unknown:
        raise BadArgument(f"{kind} {name}: unknown argument(s) {sorted(unknown)}; takes {sorted(allowed)}")
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in args]
    if missing:
        raise BadArgument(f"{kind} {name}: missing argument(s) {missing}")
    hints = inspect.get_annotations(fn, eval_str=True)
    for key, value in args.items():
        expected = hints.get(key)
        if expected in (str, int, float, bool) and not _json_type_ok(value, expected):
            raise BadArgument(f"{kind} {name}: argument {key!r} must be {expected.__name__}, got {type(value).__name__}")
    return fn(ctx, **args)


def _json_type_ok(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
