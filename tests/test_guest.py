"""The guest agent over real HTTP: token, binding, named-only endpoints, bad requests, raw frames."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from sciboard_guest import protocol
from sciboard_gym.guest_client import GuestClient, GuestError

pytestmark = pytest.mark.desktop


def raw(client: GuestClient, method: str, path: str, body: bytes | None = None, token: str | None = "keep",
        headers: dict | None = None):
    conn = client.connect_raw()
    hdrs = dict(headers or {})
    if token == "keep":
        hdrs["Authorization"] = client._auth
    elif token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


@pytest.mark.parametrize("token", [None, "", "wrong-token-wrong-token", "Bearer"])
def test_requests_without_the_right_token_are_refused(desktop, token):
    _, client = desktop
    for method, path in [("GET", "/health"), ("GET", "/screenshot"), ("POST", "/probe"), ("POST", "/shutdown")]:
        status, data = raw(client, method, path, body=b"{}" if method == "POST" else None, token=token)
        assert status == 401, (method, path)
        assert json.loads(data)["error"] == "missing or wrong token"
    assert client.health()["ok"]  # still serving, and the desktop was not shut down


def test_listens_on_a_private_unix_socket_in_the_desktop_folder(desktop):
    provider, client = desktop
    path = Path(client.unix_socket)
    assert path.parent == provider._workdir and path.name == protocol.SOCKET_NAME
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not (path.parent / protocol.TOKEN_NAME).exists(), "the token file is deleted once the guest has read it"


def test_only_named_probes_and_steps_exist(desktop):
    _, client = desktop
    with pytest.raises(GuestError, match="unknown probe 'eval'") as err:
        client.probe("eval", {"code": "__import__('os').system('id')"})
    assert err.value.status == 400
    with pytest.raises(GuestError, match="unknown setup step"):
        client.setup("../../bin/sh")
    with pytest.raises(GuestError, match="unknown argument"):
        client.probe("variables", {"command": "id"})
    with pytest.raises(GuestError, match="must be str"):
        client.setup("calculate", {"expression": ["a", "b"]})
    for path in ["/exec", "/run", "/shell", "/file?path=/etc/passwd", "/../etc/passwd"]:
        assert raw(client, "POST", path, b"{}")[0] == 404
    with pytest.raises(GuestError, match="unknown app"):
        client.launch("bash")


def test_malformed_and_oversized_requests_get_4xx(desktop):
    _, client = desktop
    assert raw(client, "POST", "/probe", b"{not json")[0] == 400
    assert raw(client, "POST", "/probe", b"[1, 2]")[0] == 400
    assert raw(client, "POST", "/input", json.dumps({"action": {"name": "key", "keys": "a;id"}}).encode())[0] == 400
    assert raw(client, "POST", "/input", json.dumps({"action": {"name": "click", "x": 5000, "y": 1}}).encode())[0] == 400
    status, _ = raw(client, "POST", "/probe", b"x" * (2 << 20))
    assert status == 413
    assert client.health()["ok"]


def test_raw_screenshot_matches_png_and_input_works(desktop):
    _, client = desktop
    frame = client.screenshot()
    assert frame.shape == (600, 800, 3) and frame.dtype == np.uint8
    png = client.screenshot_png()
    assert png.startswith(b"\x89PNG")
    from io import BytesIO

    from PIL import Image

    decoded = np.asarray(Image.open(BytesIO(client.screenshot_png())).convert("RGB"))
    differing = (decoded != client.screenshot()).any(axis=-1).mean()
    assert differing < 0.001  # the same frame, up to a caret blink between the two grabs
    client.input({"name": "type", "text": "q:=6*7\nw:=q+1\n"})  # each newline is an Enter key press
    client.settle(0.2, 3.0)
    variables = client.probe("variables")
    assert (variables["q"], variables["w"]) == ("42", "43")
