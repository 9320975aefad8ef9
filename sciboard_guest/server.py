"""The guest agent's HTTP server (one request at a time, token required)."""

from __future__ import annotations

import hmac
import json
import math
import os
import socket
import struct
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from sciboard_guest import apps, inputs, memory
from sciboard_guest.a11y import Accessibility, render_text
from sciboard_guest.app_cpu import TreeCpu
from sciboard_guest.apps import inplace
from sciboard_guest.desktop import SPARE_INSTANCE, Desktop
from sciboard_guest.protocol import AUTH_HEADER, AUTH_SCHEME, FRAMEBUFFER, PROTOCOL_VERSION
from sciboard_guest.screen import Screen
from sciboard_guest.settle import DamageMonitor

#: The settle quiet window when neither the request nor a running app names one.
DEFAULT_QUIET = 0.2
MAX_BODY = 1 << 20
MAX_DISCARD = 64 << 20
#: Seconds a connection may stall (idle keep-alive, a half-sent request, an unread reply) before it is closed.
IO_TIMEOUT = 60.0


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Guest:
    """The guest's state: its desktop, screen, a11y access and the running app."""

    def __init__(self, desktop: Desktop):
        self.desktop = desktop
        self._screen: Screen | None = None
        self._damage: DamageMonitor | None = None
        self._input_device: inputs.InputDevice | None = None
        self._a11y: Accessibility | None = None
        self.app: apps.GuestApp | None = None
        self.app_state: dict[str, Any] = {}
        self._launch_state: dict[str, Any] = {}
        self._ready_spare: tuple[int, list[str]] | None = None  # a spare's pid and its iconic windows, once found
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def start(self) -> None:
        self.desktop.start()
        self._screen = Screen(self.desktop.env["DISPLAY"], self.desktop.fbdir, self.desktop.env)
        try:
            self._damage = DamageMonitor(self.desktop.env["DISPLAY"], self.desktop.env)
        except RuntimeError:  # an X server without DAMAGE: settle by comparing frames
            self._damage = None
        self._a11y = Accessibility(self.desktop.env)
        self._input_device = inputs.InputDevice(self.desktop.env, self.screen_size)

    @property
    def screen(self) -> Screen:
        if self._screen is None:
            raise HttpError(503, "the desktop has not started")
        return self._screen

    @property
    def a11y(self) -> Accessibility:
        if self._a11y is None:
            raise HttpError(503, "the desktop has not started")
        return self._a11y

    @property
    def running_app(self) -> apps.GuestApp:
        """The launched app (409 if none)."""
        if self.app is None:
            raise HttpError(409, "no app is running; POST /app/launch first")
        return self.app

    @property
    def screen_size(self) -> tuple[int, int]:
        return self.screen.width, self.screen.height

    def context(self) -> apps.AppContext:
        if self.app is None or self.desktop._home is None:
            raise HttpError(409, "no app is running; POST /app/launch first")
        return apps.AppContext(
            env=self.desktop.env | {"HOME": str(self.desktop._home)}, home=self.desktop._home, screen=self.screen,
            a11y=self.a11y, perform=self.perform, settle=self.settle, state=self.app_state,
            app_pid=self.desktop.pid("app"), app_exit_status=lambda: self.desktop.exit_status("app"),
            app_log=self.desktop.log_path("app"), repainted=self.repainted,
        )

    def repainted(self, width: int, height: int, timeout: float) -> bool:
        """Wait until the screen is drawn on over an area at least ``width`` x ``height`` (see
        :meth:`DamageMonitor.wait_for_area`); without DAMAGE, wait ``timeout``. Whether it was."""
        if self._damage is None:
            time.sleep(timeout)
            return False
        return self._damage.wait_for_area(width, height, timeout)

    def settle(self, quiet: float = 0.2, timeout: float = 3.0, first_change: float = 0.0,
               method: str = "damage", at_least: float = 0.0, changed_frames: bool = False,
               barrier: Callable[[], object] | None = None, app_cpu: bool = False) -> tuple[bool, float]:
        """Wait until the screen stops changing: on DAMAGE events (with ``changed_frames``, only those that
        changed the frame count; with ``app_cpu``, only once the app's processes stopped computing too), or
        (``method="poll"``, kept for the benchmark's side-by-side figures) by comparing whole frames every
        30 ms. ``barrier`` runs before the wait (see :meth:`app_caught_up`)."""
        if method == "poll" or self._damage is None:
            if barrier is not None:
                barrier()
            return self.screen.settle(quiet=quiet, timeout=timeout, first_change=first_change)
        app_pid = self.desktop.pid("app") if app_cpu else None
        return self._damage.settle(quiet=quiet, timeout=timeout, first_change=first_change, at_least=at_least,
                                   frame=self.screen.raw_bgrx if changed_frames else None, barrier=barrier,
                                   cpu=TreeCpu(app_pid) if app_pid is not None else None)

    def app_caught_up(self) -> bool:
        """Wait (bounded) until the running app has taken in the input sent before (see
        :meth:`Accessibility.caught_up`): an app busy with other work, or with the input's own handler,
        draws its effect late. Whether it did in time."""
        if not self.desktop.alive("app"):
            return True
        deadline = time.monotonic() + apps.stretched(apps.CATCH_UP_TIMEOUT)
        try:
            if self.a11y.caught_up(deadline, prompt=apps.PROMPT_ANSWER * apps.slowness()):
                return True
            problem = "did not answer accessibility calls in time"
        except Exception as err:  # noqa: BLE001  (a broken accessibility bus must not fail the step)
            problem = f"could not be asked over the accessibility bus ({type(err).__name__}: {err})"
        print(f"[{self.app.name if self.app else 'app'}] {problem}; settling without it", file=sys.stderr, flush=True)
        return False

    def wait_while_busy(self, busy: Callable[[apps.AppContext], bool]) -> bool:
        """Wait (bounded) while ``busy(ctx)`` says the app still works; whether it was busy at all."""
        ctx = self.context()
        deadline = time.monotonic() + apps.stretched(apps.BUSY_TIMEOUT)
        was_busy = False
        while busy(ctx) and time.monotonic() < deadline:
            was_busy = True
            time.sleep(0.1)
        return was_busy

    def perform(self, action: Any, via: str = "xtest") -> None:
        """Run one input action (a JSON object, validated by the input device)."""
        if self._input_device is None:
            raise HttpError(503, "the desktop has not started")
        self._input_device.perform(action, via=via)

    def require_desktop(self) -> None:
        """Raise 503 if a desktop process (X server, window manager, a bus; not the app) has died."""
        dead = [name for name, up in self.desktop.component_status().items() if not up and name != "app"]
        if dead:
            raise HttpError(503, f"the desktop is broken ({', '.join(dead)} died); restart it")

    def launch(self, name: Any, fresh: bool = False, spare: bool = True) -> dict[str, Any]:
        """Launch app ``name``, or (unless ``fresh``) restore it in place when it is already running.

        With ``spare`` (the default), a fresh launch adopts the app's spare when one is ready
        (:attr:`GuestApp.spare_argv`) and starts the next one in the background; without, no spare is kept.
        """
        self.require_desktop()
        app = apps.get(name)
        app.check_installed()
        start = time.monotonic()
        if not fresh and self.app is app and app._restore is not None and self.desktop.alive("app"):
            self.app_state = dict(self._launch_state)  # what the app's steps and probes knew right after launch
            try:
                app._restore(self.context())
                return {"app": name, "launch_seconds": round(time.monotonic() - start, 3), "restored": True}
            except Exception as err:  # noqa: BLE001  (any failure: a fresh launch; the reason goes to the guest's log)
                reason = str(err) if isinstance(err, apps.AppError) else f"{type(err).__name__}: {err}"
                print(f"[{name}] in-place reset failed, relaunching: {reason}", file=sys.stderr, flush=True)
        self.app = None
        spare_windows = self.spare_windows(app) if spare else []
        if spare_windows:
            self.desktop.adopt_spare()
        else:
            self.desktop.discard_spare()
            self.desktop.launch(app.argv, app.env, prepare=app.prepare)
        self.a11y.ignored_pids = frozenset()  # an adopted spare is the app now; there is no other
        self.app = app
        self.app_state = {}
        ctx = self.context()
        for window in spare_windows:  # the window manager maps, raises and focuses it
            apps.xdotool(ctx, ["windowactivate", window])
        app.wait_ready(ctx)
        if app.restore_checks_launch_state:
            inplace.record_launch_state(ctx, app.window_class or app.name)
        if app._restore is not None:
            self._launch_state = dict(self.app_state)
        seconds = time.monotonic() - start
        self._ready_spare = None
        if spare and app.spare_argv is not None:
            self.desktop.start_spare(app.spare_argv, app.env, prepare=app.prepare)
            self.a11y.ignored_pids = frozenset({self.desktop.any_spare_pid or 0})
        return {"app": name, "launch_seconds": round(seconds, 3), "from_spare": bool(spare_windows)}

    def spare_windows(self, app: apps.GuestApp) -> list[str]:
        """The iconic windows of a spare of ``app`` that has come up: empty when there is none to adopt."""
        pid = None if app.spare_argv is None else self.desktop.spare_pid(app.spare_argv, app.env)
        if pid is None:
            return []
        if self._ready_spare is None or self._ready_spare[0] != pid:  # found once, they stay while it waits
            try:
                found = apps.iconic_windows(self.desktop.env, pid, SPARE_INSTANCE)
            except Exception as err:  # noqa: BLE001  (a broken X server: no spare to adopt; a relaunch will say why)
                print(f"[{app.name}] cannot look for the spare's windows: {type(err).__name__}: {err}",
                      file=sys.stderr, flush=True)
                found = []
            self._ready_spare = (pid, found) if found else None
        return self._ready_spare[1] if self._ready_spare is not None else []

    def status(self, spare: bool = False) -> dict[str, Any]:
        """The desktop's health; with ``spare``, also whether a spare of the app is ready to be adopted
        (which asks the X server, so the plain health check does not)."""
        owns_framebuffer = self.desktop.fbdir is not None
        found = {
            "ok": True, "protocol": PROTOCOL_VERSION, "display": self.desktop.display,
            # Relative to the desktop folder; None when the X server is not our Xvfb (read frames over HTTP).
            "framebuffer": str(FRAMEBUFFER) if owns_framebuffer else None,
            "screen": list(self.screen_size), "app": self.app.name if self.app else None,
            "app_alive": self.desktop.alive("app"), "components": self.desktop.component_status(),
            "spare_running": self.desktop.any_spare_pid is not None,
        }
        if spare:
            found["spare_ready"] = self.app is not None and bool(self.spare_windows(self.app))
        return found


def quiet_window(app: apps.GuestApp | None, asked: float | None) -> float:
    """The quiet window a settle gets: the one asked for (0-5 s) or, without one, the app's own measured
    window (else DEFAULT_QUIET); never shorter than the app's own."""
    own = app.settle_quiet if app is not None else 0.0
    quiet = (own or DEFAULT_QUIET) if asked is None else min(max(asked, 0.0), 5.0)
    return max(quiet, own)


def watches_cpu(app: apps.GuestApp | None) -> bool:
    """Whether a step's settle also waits for the app's processes to stop computing (``settle_cpu``). Not on a
    slow guest: its settle already waits a stretched window (the libvirt provider's), and there an idle
    app's timers cost several times the CPU."""
    return app is not None and app.settle_cpu and apps.slowness() <= 1.0


def _seconds(body: dict, key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HttpError(400, f"{key} must be a finite number of seconds, got {value!r}"[:200])
    return float(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (numbers must be finite)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range (numbers must be finite)")
    return value


def png_bytes(rgb) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG with the standard library only."""
    height, width, _ = rgb.shape
    rows = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


def make_handler(guest: Guest, token: str) -> type[BaseHTTPRequestHandler]:
    expected = f"{AUTH_SCHEME} {token}".encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
        server_version = "sciboard-guest"
        timeout = IO_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            pass

        def setup(self) -> None:
            if self.request.family == socket.AF_UNIX:  # no Nagle on a Unix socket (TCP_NODELAY would fail)
                self.disable_nagle_algorithm = False  # type: ignore[misc]  # per connection, not per class
            super().setup()

        def address_string(self) -> str:  # a Unix socket's peer has no address
            return str(self.client_address[0]) if self.client_address else "unix"

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            try:
                self._authorize()
                url = urlparse(self.path)
                route = ROUTES.get((method, url.path))
                if route is None:
                    raise HttpError(404, f"no such endpoint: {method} {url.path}")
                # Read the request before taking the lock: a slow or stalled client delays only itself.
                body = self._read_json() if method == "POST" else {}
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with guest.lock:  # one request at a time: AT-SPI, xdotool and the app are not re-entrant
                    result = route(self, body, query)
                if isinstance(result, tuple):
                    self._send(200, result[0], result[1], result[2])
                else:
                    self._send(200, json.dumps(result).encode(), "application/json")
            except HttpError as err:
                self._send_error(err.status, str(err))
            except apps.AppNotInstalled as err:
                self._send_error(424, str(err))
            except (apps.BadArgument, inputs.InputError) as err:  # the request's fault
                self._send_error(400, str(err))
            except apps.AppError as err:
                self._send_error(409, str(err))
            except Exception as err:  # noqa: BLE001  (a bug in the guest, e.g. in a probe: a fault; the server lives on)
                self._send_error(500, f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")

        def _authorize(self) -> None:
            given = (self.headers.get(AUTH_HEADER) or "").encode()
            if not hmac.compare_digest(given, expected):
                self._drain()
                raise HttpError(401, "missing or wrong token")

        def _drain(self) -> None:
            length = self.headers.get("Content-Length")
            if length and length.isdigit():
                self._discard(int(length))
            elif length:
                self.close_connection = True

        def _discard(self, length: int) -> None:
            """Read and drop a body (so the client gets our answer); close instead if it is huge."""
            if length > MAX_DISCARD:
                self.close_connection = True
                return
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)

        def _read_json(self) -> dict[str, Any]:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit():
                raise HttpError(400, "bad Content-Length")
            if int(length) > MAX_BODY:
                self._discard(int(length))
                raise HttpError(413, f"request body too large (> {MAX_BODY} bytes)")
            raw = self.rfile.read(int(length)) if int(length) else b"{}"
            try:
                data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
            except (ValueError, RecursionError) as err:  # incl. JSONDecodeError, UnicodeDecodeError
                raise HttpError(400, f"body is not valid JSON: {err}") from None
            if not isinstance(data, dict):
                raise HttpError(400, "body must be a JSON object")
            return data

        def _send(self, status: int, payload: bytes, content_type: str, headers: dict | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, str(value))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client went away (or stalled past IO_TIMEOUT) while we answered
                self.close_connection = True

        def _send_error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        # --- endpoints -----------------------------------------------------------

        def ep_health(self, body: dict, query: dict) -> Any:
            return guest.status(spare=query.get("spare") == "1")

        def ep_screenshot(self, body: dict, query: dict) -> Any:
            width, height = guest.screen_size
            if query.get("format") == "png":
                return png_bytes(guest.screen.rgb()), "image/png", {}
            raw = guest.screen.raw_bgrx()
            return bytes(raw), "application/octet-stream", {"X-Width": width, "X-Height": height, "X-Format": "BGRX"}

        def ep_settle(self, body: dict, query: dict, typed: bool = False) -> Any:
            app = guest.app
            quiet = quiet_window(app, _seconds(body, "quiet", 0.0) if "quiet" in body else None)
            timeout = min(max(_seconds(body, "timeout", 3.0), 0.0), 30.0)
            method = body.get("method", "damage")
            if method not in ("damage", "poll"):
                raise HttpError(400, 'method must be "damage" or "poll"')
            first_change = at_least = 0.0
            if app is not None:
                late = apps.slowness()  # a slow guest (a VM without KVM) draws an input's effect later
                first_change = app.first_change_wait * late
                at_least = app.text_wait * late if typed else 0.0
                timeout = max(timeout, 2 * quiet, first_change + quiet, at_least + 2 * quiet)
            start = time.monotonic()
            changed = app is not None and app.redraws_unchanged
            cpu = watches_cpu(app)
            settled, _ = guest.settle(quiet=quiet, timeout=timeout, first_change=first_change, method=method,
                                      at_least=at_least, changed_frames=changed, app_cpu=cpu,
                                      barrier=guest.app_caught_up if app is not None else None)
            waited = time.monotonic() - start
            if app is not None and app._busy is not None and guest.wait_while_busy(app._busy):
                # The app finished work it was doing (e.g. a command): what that draws is part of the step.
                settled, _ = guest.settle(quiet=quiet, timeout=timeout, method=method, changed_frames=changed,
                                          app_cpu=cpu)
                waited = time.monotonic() - start
            return {"settled": settled, "seconds": round(waited, 3), "app_alive": guest.desktop.alive("app")}

        def ep_input(self, body: dict, query: dict) -> Any:
            guest.require_desktop()
            if not guest.desktop.alive("app") and guest.app is not None:
                raise HttpError(409, f"the app ({guest.app.name}) is not running")
            via = body.get("via", "xtest")
            if via not in inputs.KEYBOARD_PATHS:
                raise HttpError(400, f"via must be one of {list(inputs.KEYBOARD_PATHS)}")
            guest.perform(body.get("action"), via=via)
            settle = body.get("settle")
            if isinstance(settle, dict):
                action = body.get("action")
                typed = isinstance(action, dict) and action.get("name") == "type"
                result = {"ok": True, "settle": self.ep_settle(settle, query, typed=typed)}
            else:
                result = {"ok": True}
            guest.require_desktop()  # a component that died under the input is a fault, not a quiet success
            return result

        def ep_a11y(self, body: dict, query: dict) -> Any:
            as_text = query.get("format") == "text"
            tree = guest.a11y.snapshot(query.get("app"), only_showing=as_text or query.get("showing") == "1")
            if as_text:
                return {"text": render_text(tree)}
            return tree.to_dict()

        def ep_launch(self, body: dict, query: dict) -> Any:
            fresh, spare = body.get("fresh", False), body.get("spare", True)
            if not isinstance(fresh, bool) or not isinstance(spare, bool):
                raise HttpError(400, "fresh and spare must be true or false")
            return guest.launch(body.get("app"), fresh=fresh, spare=spare)

        def ep_stop_app(self, body: dict, query: dict) -> Any:
            guest.desktop.stop_app()
            guest.desktop.discard_spare()
            guest.app = None
            return {"ok": True}

        def ep_setup(self, body: dict, query: dict) -> Any:
            ctx = guest.context()
            value = apps.call_named(guest.running_app.setups, "setup step", body.get("step"), ctx, body.get("args", {}))
            return {"ok": True, "value": value}

        def ep_probe(self, body: dict, query: dict) -> Any:
            ctx = guest.context()
            if not guest.desktop.alive("app"):
                raise HttpError(409, f"the app ({guest.running_app.name}) is not running")
            value = apps.call_named(guest.running_app.probes, "probe", body.get("probe"), ctx, body.get("args", {}))
            return {"value": value}

        def ep_trim_memory(self, body: dict, query: dict) -> Any:
            return memory.drop_page_cache()

        def ep_shutdown(self, body: dict, query: dict) -> Any:
            guest.stopping.set()
            return {"ok": True}

    ROUTES = {
        ("GET", "/health"): Handler.ep_health,
        ("GET", "/screenshot"): Handler.ep_screenshot,
        ("POST", "/settle"): Handler.ep_settle,
        ("POST", "/input"): Handler.ep_input,
        ("GET", "/a11y"): Handler.ep_a11y,
        ("POST", "/app/launch"): Handler.ep_launch,
        ("POST", "/app/stop"): Handler.ep_stop_app,
        ("POST", "/setup"): Handler.ep_setup,
        ("POST", "/probe"): Handler.ep_probe,
        ("POST", "/memory/trim"): Handler.ep_trim_memory,
        ("POST", "/shutdown"): Handler.ep_shutdown,
    }
    return Handler


class UnixHTTPServer(ThreadingHTTPServer):
    """The guest's HTTP server on a Unix socket (the local desktop: no TCP port anywhere)."""

    address_family = socket.AF_UNIX
    #: A full backlog refuses a Unix socket's connect at once (TCP would retry): leave room for bursts.
    request_queue_size = 128

    def __init__(self, path: str, handler: type[BaseHTTPRequestHandler]):
        self.path = path
        super().__init__(path, handler)  # type: ignore[arg-type]  # socketserver takes a path for AF_UNIX

    def server_bind(self) -> None:  # HTTPServer's would look up a host name and port
        self.socket.bind(self.path)
        os.chmod(self.path, 0o600)


def serve(guest: Guest, token: str, bind: str = "127.0.0.1", port: int = 0, port_file: Path | None = None,
          unix_socket: Path | None = None, exit_with_parent: bool = False) -> None:
    """Serve (a thread per connection, requests serialised) until /shutdown or SIGTERM, then tear down.

    With ``unix_socket`` the server listens there (it appears under that name only once it accepts
    connections); otherwise on TCP ``bind:port``, writing the chosen port to ``port_file``.
    """
    server: ThreadingHTTPServer
    if unix_socket is not None:
        pending = unix_socket.with_name(unix_socket.name + ".pending")
        pending.unlink(missing_ok=True)
        server = UnixHTTPServer(str(pending), make_handler(guest, token))
        pending.rename(unix_socket)  # listening already: a client that sees the name can connect
    else:
        server = ThreadingHTTPServer((bind, port), make_handler(guest, token))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    if port_file is not None and unix_socket is None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(server.server_address[1]))
        tmp.rename(port_file)
    try:
        parent = os.getppid()
        while not guest.stopping.wait(0.5):
            with guest.lock:
                guest.desktop.reap()
            if exit_with_parent and os.getppid() != parent:
                break  # the env that owned this desktop is gone: do not leave an orphaned desktop running
    finally:
        server.shutdown()
        server.server_close()
        if unix_socket is not None:
            unix_socket.unlink(missing_ok=True)
        with guest.lock:
            guest.desktop.shutdown()
