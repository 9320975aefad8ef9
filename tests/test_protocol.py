"""Host and guest agree through sciboard_guest.protocol: the host refuses a guest of another protocol version."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from sciboard_guest import protocol
from sciboard_guest.server import UnixHTTPServer
from sciboard_gym.guest_client import GuestClient


class FakeOldGuestHandler(BaseHTTPRequestHandler):
    """Answers /health like a guest of protocol version 1 (before the Unix socket and the framebuffer report)."""

    def do_GET(self) -> None:
        body = json.dumps({"ok": True, "protocol": 1, "components": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


def test_check_version_accepts_ours_and_refuses_others():
    protocol.check_version(protocol.PROTOCOL_VERSION)
    for other in (1, None, "2", protocol.PROTOCOL_VERSION + 1):
        with pytest.raises(protocol.ProtocolMismatch, match="speaks protocol"):
            protocol.check_version(other)


def test_handshake_over_a_unix_socket_refuses_a_guest_of_another_version(tmp_path: Path):
    path = tmp_path / protocol.SOCKET_NAME
    server = UnixHTTPServer(str(path), FakeOldGuestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    client = GuestClient("localhost", 0, "t" * 32, timeout=10, unix_socket=str(path))
    try:
        assert client.health()["protocol"] == 1
        with pytest.raises(protocol.ProtocolMismatch, match=f"this host speaks {protocol.PROTOCOL_VERSION}"):
            client.handshake()
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def test_framebuffer_path_is_relative_to_the_desktop_folder():
    assert not protocol.FRAMEBUFFER.is_absolute() and protocol.FRAMEBUFFER.name == "Xvfb_screen0"
