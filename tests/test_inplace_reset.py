"""In-place resets: a change made in one episode is gone in the next (read through the app's probes) and the
reset really happened in place (the launch reply says ``restored``). One desktop per app, several changes
per episode."""

from __future__ import annotations

import pytest

from sciboard_guest.protocol import LOG_NAME
from sciboard_gym.guest_client import GuestClient
from sciboard_gym.providers.local import LocalProvider

pytestmark = pytest.mark.desktop


def _desktop(app: str) -> tuple[LocalProvider, GuestClient, dict]:
    provider = LocalProvider()
    client = provider.start()
    reply = client.launch(app)
    assert "restored" not in reply  # the first launch is a real one
    return provider, client, reply


def _assert_restored(provider: LocalProvider, reply: dict) -> None:
    """The launch reply says the reset was in place (else the guest log says why it relaunched)."""
    if reply.get("restored") is not True:
        log = (provider._workdir / LOG_NAME).read_text(errors="replace") if provider._workdir else ""
        raise AssertionError(f"relaunched instead of restored: {reply}; guest log: {log[-1500:]}")


def _type_line(client: GuestClient, text: str, enter: bool = True) -> None:
    client.input({"name": "type", "text": text}, settle=(None, 3.0))
    if enter:
        client.input({"name": "key", "keys": "Return"}, settle=(None, 3.0))


def test_pymol_changes_are_gone_after_an_in_place_reset():
    provider, client, _ = _desktop("pymol")
    try:
        start = {"view": client.probe("view"), "bg": client.probe("setting", {"key": "bg_rgb"})}
        client.setup("load_demo", {"file": "pept.pdb", "name": "pept"})
        client.setup("write_file", {"file": "zinc_site.pdb"})
        client.setup("color", {"colour": "red", "selection": "pept"})
        client.setup("select", {"name": "near", "selection": "pept and resi 1-3"})
        client.setup("orient", {"selection": "near"})
        _type_line(client, "set bg_rgb, white")
        _type_line(client, "save copy.pdb, pept")
        client.input({"name": "click", "x": 900, "y": 600}, settle=(None, 3.0))  # the viewer takes the keys
        _type_line(client, "delete near", enter=False)  # left typed, never run
        assert client.probe("names") and client.probe("file_info", {"file": "copy.pdb"})["exists"]
        _assert_restored(provider, client.launch("pymol"))
        assert client.probe("names") == []
        assert client.probe("count_atoms", {"selection": "all"}) == 0
        assert client.probe("view") == start["view"]
        assert client.probe("setting", {"key": "bg_rgb"}) == start["bg"]
        for file in ("copy.pdb", "zinc_site.pdb"):
            assert client.probe("file_info", {"file": file}) == {"exists": False}
        # The half-typed command is gone: a new one runs on its own.
        client.setup("load_demo", {"file": "pept.pdb", "name": "pept"})
        _type_line(client, "select only_one, pept and resi 1")
        assert client.probe("names", {"kind": "public_selections"}) == ["only_one"]
        # Whether this one is restored in place or (when the restore cannot be verified) relaunched,
        # the next episode starts clean.
        client.launch("pymol")
        assert client.probe("names") == []
        assert client.probe("file_info", {"file": "copy.pdb"}) == {"exists": False}
    finally:
        provider.close()
