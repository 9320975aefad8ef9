"""HTTP client of the guest agent (the service in :mod:`sciboard_guest`)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np

from sciboard_guest.protocol import AUTH_HEADER, AUTH_SCHEME, check_version


class GuestError(RuntimeError):
    """The guest answered with an error (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class GuestUnreachable(GuestError):
    """The guest did not answer at all (it, or its desktop, is gone)."""

    def __init__(self, message: str):
        super().__init__(0, message)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (the local desktop's guest listens on one in the desktop folder)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class GuestClient:
    """Talks to one guest over a kept-alive HTTP connection (TCP, or a Unix socket), sending its token."""

    def __init__(self, host: str, port: int, token: str, timeout: float = 120.0,
                 frame_source: Callable[[], np.ndarray] | None = None, unix_socket: str | None = None):
        self.host, self.port, self.timeout = host, port, timeout
        self.unix_socket = unix_socket
        self.address = unix_socket if unix_socket is not None else f"{host}:{port}"
        self._auth = f"{AUTH_SCHEME} {token}"
        self._conn: http.client.HTTPConnection | None = None
        #: Reads frames without HTTP when the desktop's framebuffer is on this host (local provider).
        self.frame_source = frame_source
        #: Extra fields of every settle request. Empty: the guest's DAMAGE-event settle. The benchmark sets
        #: ``{"method": "poll"}`` to measure the older frame-comparing settle side by side.
        self.settle_options: dict[str, Any] = {}
        #: Extra fields of every input request (the benchmark's ``{"via": "xdotool"}``: the older input path).
        self.input_options: dict[str, Any] = {}
        #: Extra fields of every launch request (the benchmark's ``{"fresh": True}``: relaunch, never restore).
        self.launch_options: dict[str, Any] = {}

    def _request(self, method: str, path: str, body: dict | None = None,
                 timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {AUTH_HEADER: self._auth}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        wait = self.timeout if timeout is None else timeout
        # Only a GET may be sent twice: a POST whose answer was lost may have acted (typed, clicked) already.
        tries = 2 if method == "GET" else 1
        for attempt in range(1, tries + 1):
            try:
                if self._conn is not None and _dropped(self._conn):
                    self.close()  # the server closed the kept-alive connection while idle: reconnect first
                if self._conn is None:
                    self._conn = self._connect(wait)
                self._conn.timeout = wait
                self._conn.sock.settimeout(wait)
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as err:
                self.close()
                if attempt == tries or isinstance(err, socket.timeout):
                    raise GuestUnreachable(f"guest at {self.address} unreachable: {err}") from err
        raise AssertionError("unreachable")

    def connect_raw(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        """A new connection of its own to the guest (for raw HTTP; the client keeps using its own)."""
        return self._connect(timeout)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.unix_socket is not None:
            conn: http.client.HTTPConnection = UnixHTTPConnection(self.unix_socket, timeout)
            conn.connect()
            return conn
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn.connect()
        # Headers and body are separate writes: without TCP_NODELAY each POST waits ~40 ms.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def handshake(self, timeout: float | None = None) -> dict[str, Any]:
        """The guest's ``/health``, after checking it speaks our protocol version
        (:class:`~sciboard_guest.protocol.ProtocolMismatch` if not)."""
        health = self.health(timeout=timeout)
        check_version(health.get("protocol"))
        return health

    def call(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> Any:
        """A JSON request (``timeout`` overrides the client's for this one); raises :class:`GuestError` on a
        non-200 answer and :class:`GuestUnreachable` when there is none in time."""
        status, _, data = self._request(method, path, body, timeout)
        try:
            decoded = json.loads(data) if data else None
        except json.JSONDecodeError:
            decoded = {"error": data[:300].decode(errors="replace")}
        if status != 200:
            message = decoded.get("error") if isinstance(decoded, dict) else str(decoded)
            raise GuestError(status, f"guest {method} {path} -> {status}: {message}")
        return decoded

    def health(self, timeout: float | None = None, spare: bool = False) -> dict[str, Any]:
        """The desktop's health; with ``spare``, also ``spare_ready``: whether a spare copy of the app is
        ready for the next relaunch to adopt."""
        return self.call("GET", "/health?spare=1" if spare else "/health", timeout=timeout)

    def wait_for_spare(self, timeout: float = 60.0) -> bool:
        """Wait until the spare copy of the app started in the background (if any) is ready; whether it is."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health(spare=True)
            if not health["spare_running"] or health["spare_ready"] or time.monotonic() >= deadline:
                return bool(health["spare_ready"])
            time.sleep(0.1)

    def screenshot(self) -> np.ndarray:
        """The current frame as an (H, W, 3) uint8 RGB array (shared framebuffer or raw HTTP, no PNG)."""
        if self.frame_source is not None:
            return self.frame_source()
        return self.screenshot_http()

    def screenshot_http(self) -> np.ndarray:
        """The current frame, always over HTTP as raw BGRX bytes."""
        status, headers, data = self._request("GET", "/screenshot")
        if status != 200:
            raise GuestError(status, f"screenshot failed: {data[:300].decode(errors='replace')}")
        width, height = int(headers["x-width"]), int(headers["x-height"])
        bgrx = np.frombuffer(data, np.uint8).reshape(height, width, 4)
        return bgrx[:, :, 2::-1].copy()

    def screenshot_png(self) -> bytes:
        status, _, data = self._request("GET", "/screenshot?format=png")
        if status != 200:
            raise GuestError(status, "png screenshot failed")
        return data

    def _settle_body(self, quiet: float | None, timeout: float) -> dict[str, Any]:
        # quiet=None: the running app's own quiet window (measured per app).
        return {"timeout": timeout, **({} if quiet is None else {"quiet": quiet}), **self.settle_options}

    def settle(self, quiet: float | None = None, timeout: float = 3.0) -> dict[str, Any]:
        """Wait until the screen has been quiet for ``quiet`` seconds (None: the app's own window)."""
        return self.call("POST", "/settle", self._settle_body(quiet, timeout))

    def input(self, action: dict[str, Any], settle: tuple[float | None, float] | None = None) -> dict[str, Any] | None:
        """Perform ``action``; with ``settle=(quiet, timeout)`` also wait for the screen in the same request
        and return the settle result."""
        body: dict[str, Any] = {"action": action, **self.input_options}
        if settle is not None:
            body["settle"] = self._settle_body(*settle)
        return self.call("POST", "/input", body).get("settle")

    def a11y_text(self, app: str | None = None) -> str:
        query = "/a11y?" + urlencode({"format": "text"} | ({"app": app} if app else {}))
        return self.call("GET", query)["text"]

    def a11y_tree(self, app: str | None = None, showing_only: bool = False) -> dict[str, Any]:
        query = ({"app": app} if app else {}) | ({"showing": "1"} if showing_only else {})
        return self.call("GET", "/a11y" + ("?" + urlencode(query) if query else ""))

    def launch(self, app: str, spare: bool = True) -> dict[str, Any]:
        """Launch ``app`` (or reset it: see the guest's ``/app/launch``); ``spare=False``: keep no spare
        copy of it in the background for the next relaunch."""
        return self.call("POST", "/app/launch", {"app": app, "spare": spare, **self.launch_options})

    def stop_app(self) -> None:
        self.call("POST", "/app/stop", {})

    def setup(self, step: str, args: dict[str, Any] | None = None) -> Any:
        return self.call("POST", "/setup", {"step": step, "args": args or {}})["value"]

    def probe(self, probe: str, args: dict[str, Any] | None = None) -> Any:
        return self.call("POST", "/probe", {"probe": probe, "args": args or {}})["value"]

    def trim_memory(self) -> dict[str, Any]:
        """Ask the guest kernel to drop its clean page cache (a VM, before its memory snapshot)."""
        return self.call("POST", "/memory/trim", {})

    def shutdown(self, timeout: float | None = None) -> None:
        try:
            self.call("POST", "/shutdown", {}, timeout=timeout)
        except GuestError:
            pass
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True if the peer has closed this idle connection (it reads as ready: EOF or a reset)."""
    if conn.sock is None:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
