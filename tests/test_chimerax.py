"""ChimeraX env: everything that can be tested without ChimeraX (it is licence-gated, not installed here).

Command building, REST reply and ``info`` line parsing, the REST client against
a FakeChimeraXRest loopback server that answers in the documented JSON shape,
the host checks on canned probe values, and the clear failure of gym.make where
ChimeraX is missing. None of this shows that ChimeraX itself accepts our
commands: that needs a machine with ChimeraX (see docs/apps/chimerax.md).
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

import gymnasium as gym
import pytest

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_guest.apps import AppContext, AppError, AppNotInstalled
from sciboard_guest.apps import chimerax as guest
from sciboard_gym.apps import chimerax as host
from sciboard_gym.apps import get_adapter
from sciboard_gym.tasks import load_app_tasks

# --- command building -------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["#1", "#1/A", "#1/A:5", "#1/A:5-9", "#1/A:1-4,6-17", "#1/A:10@CA", "#2.1", ":lys",
                                  "sel", "/B:3"])
def test_atom_specs_accepted(spec):
    assert guest.atom_spec(spec) == spec


@pytest.mark.parametrize("spec", ["", "#1 red", "#1;close", "#1/A:5; runscript x.py", "sel | #2", "'#1'", "#1\n",
                                  ":lysine", "#1/A:5@" + "C" * 10, None, 5])
def test_atom_specs_rejected(spec):
    with pytest.raises(guest.CommandError):
        guest.atom_spec(spec)


def test_commands_use_only_allowed_verbs_and_plain_tokens():
    assert guest.command("color", "#1", "red") == "color #1 red"
    for verb in ("shell", "runscript", "open", "save", "pyscript"):
        with pytest.raises(guest.CommandError):
            guest.command(verb, "x")
    for token in ("a b", "x;y", '"q"', "", "a\nb"):
        with pytest.raises(guest.CommandError):
            guest.command("color", token)


def test_peptide_command_has_one_angle_pair_per_residue():
    text = guest.peptide_command("helix1", "AKE", "strand", "B", (25.0, 0.0, 0.0))
    assert text == "build start peptide helix1 AKE -139,135 -139,135 -139,135 chainId B position 25,0,0"
    for bad in [("1abc", "AKE"), ("ok", "AKX"), ("ok", "A"), ("ok", "AKE" * 20)]:
        with pytest.raises(guest.CommandError):
            guest.peptide_command(*bad)
    with pytest.raises(guest.CommandError):
        guest.peptide_command("ok", "AKE", "coil")


def test_prepare_writes_the_rest_start_command_and_port(tmp_path):
    guest.APP.prepare(tmp_path)
    port = int((tmp_path / guest.PORT_FILE).read_text())
    assert (tmp_path / guest.START_FILE).read_text() == f"remotecontrol rest start port {port} json true\n"
    assert guest.APP.argv == ["chimerax", "--cmd", f"open {guest.START_FILE}"]


# --- reply and info-line parsing ---------------------------------------------------------------

def test_parse_reply_in_the_documented_shape():
    body = json.dumps({"python values": [None], "json values": [None],
                       "log messages": {"info": ["model id #1 type AtomicStructure name helix1\n"], "warning": []},
                       "error": None})
    reply = guest.parse_reply(body)
    assert reply.error is None and reply.lines() == ["model id #1 type AtomicStructure name helix1"]
    failed = guest.parse_reply(json.dumps({"log messages": {}, "error": {"type": "UserError", "message": "No atoms"}}))
    assert failed.error == "UserError: No atoms"
    with pytest.raises(AppError, match="JSON"):
        guest.parse_reply(b"<html>plain text log</html>")
    with pytest.raises(AppError):
        guest.parse_reply(json.dumps([1, 2]))


def test_parse_info_lines():
    lines = ["model id #1 type AtomicStructure name \"my helix\"", "model id #1.1 type PseudobondGroup name distances",
             "chain id #1/A chain_id A", "residue id #1/A:5 name ALA index 4", "residue id #1/A:6 ribbon_display True",
             "atom id #1/A:5@CA color 255,0,0,255", "something else"]
    assert guest.parse_models(lines) == [
        {"spec": "#1", "type": "AtomicStructure", "attribute": "name", "value": "my helix"},
        {"spec": "#1.1", "type": "PseudobondGroup", "attribute": "name", "value": "distances"}]
    assert guest.parse_items(lines, "residue") == [{"spec": "#1/A:5", "attribute": "name", "value": "ALA"},
                                                   {"spec": "#1/A:6", "attribute": "ribbon_display", "value": "True"}]
    assert guest.parse_items(lines, "atom") == [{"spec": "#1/A:5@CA", "attribute": "color", "value": "255,0,0,255"}]
    assert guest.parse_items(lines, "chain") == [{"spec": "#1/A", "attribute": "chain_id", "value": "A"}]


# --- the REST client against a fake server ---------------------------------------------------

class FakeChimeraXRest:
    """A loopback HTTP server that answers /run like ChimeraX's REST server with json true."""

    def __init__(self, replies: dict[str, dict[str, Any]]):
        self.replies, self.commands = replies, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                command = parse_qs(url.query)["command"][0]
                fake.commands.append(command)
                reply = fake.replies.get(command.split()[0] if command.split()[0] != "info" else command,
                                         {"log messages": {}, "error": None})
                body = json.dumps({"python values": [], "json values": [], **reply}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _context(home: Path, port: int) -> AppContext:
    (home / guest.PORT_FILE).write_text(str(port))
    return AppContext(env={}, home=home, screen=None, a11y=None, perform=lambda action: None,
                      settle=lambda **kw: (True, 0.0))


def test_probes_and_setup_steps_over_rest(tmp_path):
    info = {
        "info models": {"log messages": {"info": ["model id #1 type AtomicStructure name helix1"]}, "error": None},
        "info models attribute display": {"log messages": {"info": ["model id #1 type AtomicStructure display True"]},
                                          "error": None},
        "info residues #1/A:5-6 attribute name": {
            "log messages": {"info": ["residue id #1/A:5 name LYS index 4\nresidue id #1/A:6 name GLU index 5"]},
            "error": None},
        "color": {"log messages": {}, "error": {"type": "UserError", "message": "Unknown color"}},
    }
    with FakeChimeraXRest(info) as fake:
        ctx = _context(tmp_path, fake.server.server_address[1])
        assert guest.models(ctx) == [{"spec": "#1", "type": "AtomicStructure", "name": "helix1", "shown": True}]
        assert guest.residues(ctx, "#1/A:5-6") == [{"spec": "#1/A:5", "value": "LYS"}, {"spec": "#1/A:6", "value": "GLU"}]
        guest.select(ctx, "#1/A:5")
        with pytest.raises(AppError, match="Unknown color"):
            guest.color(ctx, "#1", "red")
        with pytest.raises(guest.CommandError):
            guest.color(ctx, "#1", "red; shell rm -rf /")
        with pytest.raises(guest.CommandError):
            guest.atoms(ctx, "#1", "bfactor")
    assert fake.commands == ["info models", "info models attribute display", "info residues #1/A:5-6 attribute name",
                             "select #1/A:5", "color #1 red"]


def test_unreachable_rest_server_is_a_clear_app_error(tmp_path):
    with FakeChimeraXRest({}) as fake:
        port = fake.server.server_address[1]
    with pytest.raises(AppError, match="not reachable"):
        guest.run(_context(tmp_path, port), "version", timeout=2.0)


# --- host checks on canned probe values -----------------------------------------------------------

@dataclass
class FakeCheckContext:
    """Stands in for CheckContext: canned answers in the guest probes' format."""

    answer: str | None = None

    def probe(self, name: str, **args: Any) -> Any:
        if name == "models":
            return [{"spec": "#1", "type": "AtomicStructure", "name": "helix1", "shown": True},
                    {"spec": "#1.1", "type": "MolecularSurface", "name": "helix1_A SES surface", "shown": True},
                    {"spec": "#2", "type": "AtomicStructure", "name": "strand2", "shown": False}]
        if name == "chains":
            return ["#1/A", "#2/B"]
        if name == "atoms" and args["attribute"] == "coord":
            coords = {"#1/A:1@CA": "1.0,2.0,3.0", "#1/A:10@CA": "[1.0 2.0 17.74]"}
            return [{"spec": args["spec"], "value": coords[args["spec"]]}] if args["spec"] in coords else []
        if name == "atoms":
            values = {"color": ["255,0,0,255", "255,0,0,255"], "draw_mode": ["2", "2"], "display": ["True", "False"]}
            return [{"spec": f"{args['spec']}@X{i}", "value": v} for i, v in enumerate(values[args["attribute"]])]
        if name == "residues":
            values = {"name": ["LYS", "TRP"], "ribbon_display": ["False", "False"],
                      "ribbon_color": ["0,0,255,255", "0,0,254,255"]}
            return [{"spec": f"#1/A:{i + 5}", "value": v} for i, v in enumerate(values[args["attribute"]])]
        if name == "selected_residues":
            return [{"spec": "#1/A:6", "value": "LYS"}, {"spec": "#1/A:11", "value": "LYS"}]
        raise KeyError(name)


@pytest.mark.parametrize("check,args,expected", [
    ("structure_count", {"count": 2}, True),
    ("model_named", {"spec": "#1", "name": "helix1"}, True),
    ("model_named", {"spec": "#3", "name": "helix1"}, False),
    ("model_shown", {"spec": "#2", "shown": False}, True),
    ("model_type_present", {"type": "MolecularSurface"}, True),
    ("model_type_present", {"type": "MolecularSurface", "present": False}, False),
    ("model_name_present", {"name": "distances"}, False),
    ("chains_are", {"chains": ["#2/B", "#1/A"]}, True),
    ("residue_names", {"spec": "#1/A:5-6", "names": ["lys", "trp"]}, True),
    ("residue_count", {"spec": "#1", "count": 3}, False),
    ("atoms_colored", {"spec": "#1", "color": "red"}, True),
    ("atoms_colored", {"spec": "#1", "color": "red", "every": False}, False),
    ("atoms_colored", {"spec": "#1", "color": "blue", "every": False}, True),
    ("atoms_style", {"spec": "#1", "style": "stick"}, True),
    ("atoms_style", {"spec": "#1", "style": "sphere"}, False),
    ("atoms_shown", {"spec": "#1", "shown": True}, False),
    ("cartoon_shown", {"spec": "#1", "shown": False}, True),
    ("cartoon_colored", {"spec": "#1", "color": "blue"}, True),
    ("selection_is", {"residues": ["#1/A:11", "#1/A:6"]}, True),
    ("selection_is", {"residues": ["#1/A:6"]}, False),
    ("selection_names", {"name": "lys", "count": 2}, True),
    ("selection_names", {"name": "lys", "count": 3}, False),
    ("selection_count", {"count": 2}, True),
    ("selection_count", {"count": 3}, False),
])
def test_checks(check, args, expected):
    passed, detail = host.ADAPTER.checks[check](FakeCheckContext(), **args)
    assert passed is expected, detail


@pytest.mark.parametrize("answer,expected", [("14.74", True), ("14.7 \u00c5", True), ("14,74", True), ("12.9", False),
                                             (None, False), ("far", False)])
def test_answer_distance_reads_atom_positions(answer, expected):
    ctx = FakeCheckContext()
    ctx.answer = answer
    passed, detail = host.answer_distance(ctx, "#1/A:1@CA", "#1/A:10@CA")
    assert passed is expected, detail


def test_answer_distance_fails_clearly_without_the_atom():
    ctx = FakeCheckContext()
    ctx.answer = "14.74"
    with pytest.raises(host.CheckFailed, match="no atoms in #1/A:2@CA"):
        host.answer_distance(ctx, "#1/A:2@CA", "#1/A:10@CA")


def test_colour_tables_agree_and_parse():
    assert set(host.RGB) == guest.COLORS and set(host.DRAW_MODES) == guest.STYLES
    assert host.parse_rgb("255,165,0,255") == (255, 165, 0)
    assert host.parse_rgb("red") is None
    with pytest.raises(ValueError):
        host.atoms_colored(FakeCheckContext(), "#1", "chartreuse")


# --- tasks and the missing-app failure ----------------------------------------------------------

def test_tasks_validate_against_the_guest_steps_and_host_checks():
    tasks = load_app_tasks("chimerax")
    assert len(tasks) >= 20
    adapter = get_adapter("chimerax")
    for task in tasks:
        adapter.validate_task(task)
        for step in task.setup:
            for key in ("spec",):
                if key in step.args:
                    guest.atom_spec(step.args[key])


@pytest.mark.skipif(shutil.which("chimerax") is not None, reason="ChimeraX is installed here")
def test_make_fails_clearly_without_chimerax():
    assert "SciBoard-ChimeraX-v0" in gym.registry
    with pytest.raises(AppNotInstalled) as err:
        gym.make("SciBoard-ChimeraX-v0")
    message = str(err.value)
    assert "chimerax is not installed" in message
    assert ".deb" in message and "apt-get install" in message and "VM image" in message


class FakeEmptyGuest:
    """A guest whose ChimeraX has no atoms or residues matching any spec."""

    def probe(self, name: str, args: dict[str, Any]) -> Any:
        assert name in ("atoms", "residues")
        return []


def test_checks_on_an_empty_spec_fail_with_a_clear_detail():
    from sciboard_gym.tasks import Task

    task = Task.from_dict({
        "id": "chimerax/x", "app": "chimerax", "instruction": "Colour the first residue red please.",
        "max_steps": 3, "oracle": ["done()"],
        "evaluate": [{"check": "atoms_shown", "args": {"spec": "#1/A:1", "shown": True}},
                     {"check": "cartoon_shown", "args": {"spec": "#1/A:1", "shown": True}}],
    })
    success, results = host.ADAPTER.evaluate(task, FakeEmptyGuest(), None)
    assert not success
    assert [(r.passed, r.detail) for r in results] == [(False, "no atoms in #1/A:1"), (False, "no residues in #1/A:1")]
