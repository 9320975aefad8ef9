"""In-place resets: a change made in one episode is gone in the next (read through the app's probes) and the
reset really happened in place (the launch reply says ``restored``). One desktop per app, several changes
per episode."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciboard_guest.apps.texstudio import PAPER_DIR
from sciboard_guest.apps.texstudio_documents import PROJECTS
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


def _home(provider: LocalProvider) -> Path:
    """The app's HOME of the current launch, seen from the host (each launch gets a new one)."""
    assert provider._workdir is not None
    return max(provider._workdir.glob("home-*"), key=lambda path: int(path.name.split("-")[1]))


def _key(client: GuestClient, keys: str) -> None:
    client.input({"name": "key", "keys": keys}, settle=(None, 3.0))


def _texstudio_title(client: GuestClient) -> str:
    tree = client.a11y_tree("TeXstudio")
    return next(window["name"] for app in tree["children"] for window in app["children"] if window["role"] == "frame")


def test_texstudio_changes_are_gone_after_an_in_place_reset():
    provider, client, _ = _desktop("texstudio")
    try:
        home = _home(provider)
        lab = PROJECTS["lab_report"]
        client.setup("open_project", {"project": "lab_report"})
        _type_line(client, "A saved sentence.", enter=False)
        _key(client, "ctrl+s")
        _key(client, "shift+Home")
        _key(client, "ctrl+c")  # the clipboard now holds the sentence
        _key(client, "ctrl+n")
        _type_line(client, "An unsaved new document.")
        client.setup("open_project", {"project": "field_notes"})
        _type_line(client, "An unsaved edit.")
        _key(client, "ctrl+o")  # a dialog left open
        assert "A saved sentence." in (home / PAPER_DIR / lab.main).read_text()
        _assert_restored(provider, client.launch("texstudio"))
        assert _home(provider) == home and list((home / PAPER_DIR).iterdir()) == []
        assert _texstudio_title(client) == "TeXstudio"  # no document open
        # The next episode: its project opens alone, unchanged, and nothing copied before can be pasted.
        client.setup("open_project", {"project": "lab_report"})
        assert client.probe("document")["text"] == lab.text
        _key(client, "ctrl+v")
        _key(client, "ctrl+s")
        assert client.probe("document")["text"] == lab.text
        _key(client, "ctrl+w")
        assert _texstudio_title(client) == "TeXstudio"  # it was the only document
        # A compile leaves its output in the Messages panel and a setting written: not restorable in place,
        # so TeXstudio is relaunched (the reason goes to the guest log), and the next episode starts clean.
        client.setup("open_project", {"project": "lab_report"})
        _key(client, "F6")
        assert client.probe("build_output")["pdf"]
        reply = client.launch("texstudio")
        assert "restored" not in reply
        log = (provider._workdir / LOG_NAME).read_text(errors="replace")
        assert "[texstudio] in-place reset failed, relaunching" in log
        client.setup("open_project", {"project": "lab_report"})
        assert client.probe("build_output")["pdf"] is False
        _assert_restored(provider, client.launch("texstudio"))
    finally:
        provider.close()
