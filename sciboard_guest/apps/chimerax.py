"""UCSF ChimeraX on the desktop: launch with its REST server, setup steps and state probes.

ChimeraX is licence-gated (no Debian package): when it is missing, launching it
fails with :data:`INSTALL_HINT`. Each launch writes a one-line command file into
the fresh HOME that starts ChimeraX's documented REST server
(``remotecontrol rest start port N json true``) on a free loopback port. Setup
steps and probes send ChimeraX commands that THIS module builds from validated
values (:func:`command`); nothing from a request is passed through verbatim.
State is read with the documented ``info`` subcommands, whose log lines
(``model id #1 type AtomicStructure name pep``) are parsed here.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sciboard_guest.apps import AppContext, AppError, GuestApp

INSTALL_HINT = (
    "ChimeraX is licence-gated and not in Debian: accept the UCSF licence and download the Debian 12 .deb "
    "from https://www.cgl.ucsf.edu/chimerax/download.html, then install it with "
    "`apt-get install ./ucsf-chimerax_*.deb` (it provides the `chimerax` command on PATH). "
    "For a VM image, copy that .deb into the image recipe and install it there the same way."
)
START_FILE = "sciboard-start.cxc"
PORT_FILE = ".sciboard-rest-port"
REQUEST_TIMEOUT = 60.0

#: Commands this module may send, and nothing else.
VERBS = frozenset({"build", "color", "style", "show", "hide", "cartoon", "select", "info", "version", "close",
                   "surface", "remotecontrol"})
ATOM_ATTRIBUTES = frozenset({"color", "coord", "display", "draw_mode", "element", "name", "selected"})
RESIDUE_ATTRIBUTES = frozenset({"name", "number", "ribbon_display", "ribbon_color", "ss_type"})
MODEL_ATTRIBUTES = frozenset({"name", "display"})
COLORS = frozenset({"red", "blue", "yellow", "magenta", "cyan", "white", "black", "gray", "orange", "purple",
                    "tan", "salmon", "hotpink", "lightgreen", "cornflowerblue"})
STYLES = frozenset({"stick", "sphere", "ball"})
#: Backbone angles (phi, psi) for ``build start peptide``.
CONFORMATIONS = {"helix": (-57, -47), "strand": (-139, 135)}

_SPEC = re.compile(r"^(sel|(#\d{1,3}(\.\d{1,3})*)?(/[A-Za-z0-9]{1,4})?(:\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*"
                   r"|:[A-Za-z]{3})?(@[A-Za-z0-9']{1,4})?)$")
_TOKEN = re.compile(r"^[A-Za-z0-9_#/:@.,'*-]+$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}$")
_SEQUENCE = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]{2,40}$")


class CommandError(ValueError):
    """A value that cannot go into a ChimeraX command."""


def atom_spec(text: str) -> str:
    """``text`` if it is a plain ChimeraX atom specification (#1, #1/A:5-9@CA, :lys, sel), else CommandError."""
    if not isinstance(text, str) or not text or len(text) > 60 or not _SPEC.fullmatch(text):
        raise CommandError(f"not an atom specification we accept: {text!r}")
    return text


def command(verb: str, *tokens: str) -> str:
    """One ChimeraX command from an allowed verb and plain tokens (no separators, quotes or spaces)."""
    if verb not in VERBS:
        raise CommandError(f"command {verb!r} is not allowed")
    for token in tokens:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token) or len(token) > 300:
            raise CommandError(f"bad command token {token!r}")
    return " ".join((verb, *tokens))


def peptide_command(name: str, sequence: str, conformation: str = "helix", chain: str = "A",
                    position: tuple[float, float, float] | None = None) -> str:
    """``build start peptide`` for a new model ``name`` with one (phi, psi) pair per residue."""
    if not _NAME.fullmatch(name or ""):
        raise CommandError("name must be a letter followed by up to 19 letters, digits or _")
    if not _SEQUENCE.fullmatch(sequence or ""):
        raise CommandError("sequence must be 2-40 one-letter amino-acid codes")
    if conformation not in CONFORMATIONS:
        raise CommandError(f"conformation must be one of {sorted(CONFORMATIONS)}")
    if not re.fullmatch(r"[A-Z]", chain or ""):
        raise CommandError("chain must be one upper-case letter")
    phi, psi = CONFORMATIONS[conformation]
    tokens = ["start", "peptide", name, sequence] + [f"{phi},{psi}"] * len(sequence) + ["chainId", chain]
    if position is not None:
        tokens += ["position", ",".join(f"{float(v):g}" for v in position)]
    return command("build", *tokens)


# --- REST replies and info lines -----------------------------------------------------

@dataclass
class Reply:
    """A parsed ``json true`` REST reply."""

    json_values: list[Any] = field(default_factory=list)
    python_values: list[Any] = field(default_factory=list)
    log: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def lines(self, level: str = "info") -> list[str]:
        """The reply's log messages of ``level``, split into stripped, non-empty lines."""
        out = []
        for message in self.log.get(level, []):
            out += [line.strip() for line in str(message).splitlines() if line.strip()]
        return out


def parse_reply(body: bytes | str) -> Reply:
    """Parse ChimeraX's JSON reply: {"python values", "json values", "log messages", "error"}."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AppError(f"ChimeraX's REST server did not answer in JSON (was it started with json true?): {err}")
    if not isinstance(data, dict) or "log messages" not in data:
        raise AppError(f"unexpected ChimeraX REST reply: {str(data)[:200]}")
    error = data.get("error")
    if isinstance(error, dict):
        error = f"{error.get('type', 'Error')}: {error.get('message', '')}".strip()
    elif error is not None:
        error = str(error)
    log = data.get("log messages") or {}
    return Reply(json_values=list(data.get("json values") or []), python_values=list(data.get("python values") or []),
                 log={str(k): list(v) for k, v in log.items() if isinstance(v, list)}, error=error or None)


def _unquote(value: str) -> str:
    """Undo ChimeraX's quoting of attribute values that contain spaces."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


_MODEL_LINE = re.compile(r"^model id (\S+) type (\S+) (\S+) (.*)$")
_ITEM_LINE = re.compile(r"^(chain|residue|atom) id (\S+) (\S+) (.*?)(?: index \d+)?$")


def parse_models(lines: list[str]) -> list[dict[str, str]]:
    """``info models`` lines -> [{spec, type, attribute, value}]."""
    found = []
    for line in lines:
        match = _MODEL_LINE.match(line)
        if match:
            found.append({"spec": match.group(1), "type": match.group(2), "attribute": match.group(3),
                          "value": _unquote(match.group(4))})
    return found


def parse_items(lines: list[str], kind: str) -> list[dict[str, str]]:
    """``info chains|residues|atoms|selection`` lines of ``kind`` -> [{spec, attribute, value}]."""
    found = []
    for line in lines:
        match = _ITEM_LINE.match(line)
        if match and match.group(1) == kind:
            found.append({"spec": match.group(2), "attribute": match.group(3), "value": _unquote(match.group(4))})
    return found


# --- the app -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(home: Path) -> None:
    """A command file that starts the REST server on a free port, and that port for the probes."""
    port = _free_port()
    (home / START_FILE).write_text(command("remotecontrol", "rest", "start", "port", str(port), "json", "true") + "\n")
    (home / PORT_FILE).write_text(str(port))


APP = GuestApp(
    name="chimerax",
    argv=["chimerax", "--cmd", f"open {START_FILE}"],
    env={"QTWEBENGINE_DISABLE_SANDBOX": "1", "LIBGL_ALWAYS_SOFTWARE": "1", "QT_QUICK_BACKEND": "software"},
    install_hint=INSTALL_HINT,
    ready_timeout=180.0,
    prepare=_prepare,
)


def run(ctx: AppContext, text: str, timeout: float = REQUEST_TIMEOUT) -> Reply:
    """Send one command built by :func:`command` to this launch's ChimeraX; raise AppError on its error."""
    port = int((ctx.home / PORT_FILE).read_text())
    url = f"http://127.0.0.1:{port}/run?" + urllib.parse.urlencode({"command": text})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            reply = parse_reply(response.read())
    except (urllib.error.URLError, OSError) as err:
        raise AppError(f"ChimeraX's REST server on port {port} is not reachable: {err}") from err
    if reply.error:
        raise AppError(f"ChimeraX refused {text.split()[0]!r}: {reply.error}")
    return reply


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    last = "no answer yet"
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        try:
            run(ctx, command("version"), timeout=5.0)
        except AppError as err:
            last = str(err)
            time.sleep(0.25)
            continue
        ctx.settle(quiet=0.5, timeout=10.0)
        return
    raise AppError(f"ChimeraX's REST server did not come up in time ({last})")


def _do(ctx: AppContext, text: str) -> None:
    run(ctx, text)
    ctx.settle(quiet=0.3, timeout=5.0)


@APP.setup("build_peptide")
def build_peptide(ctx: AppContext, name: str, sequence: str, conformation: str = "helix", chain: str = "A",
                  x: float = 0.0) -> None:
    """Build a new peptide model from its sequence; a non-zero ``x`` centres it at (x, 0, 0) Å."""
    _do(ctx, peptide_command(name, sequence, conformation, chain, (float(x), 0.0, 0.0) if x else None))


@APP.setup("color")
def color(ctx: AppContext, spec: str, color: str) -> None:
    """Colour the atoms, cartoon and surfaces of ``spec``."""
    if color not in COLORS:
        raise CommandError(f"color must be one of {sorted(COLORS)}")
    _do(ctx, command("color", atom_spec(spec), color))


@APP.setup("style")
def style(ctx: AppContext, spec: str, style: str) -> None:
    """Draw the atoms of ``spec`` as stick, sphere or ball."""
    if style not in STYLES:
        raise CommandError(f"style must be one of {sorted(STYLES)}")
    _do(ctx, command("style", atom_spec(spec), style))


@APP.setup("display")
def display(ctx: AppContext, spec: str, target: str, shown: bool) -> None:
    """Show or hide the ``atoms`` or the ``cartoon`` of ``spec``."""
    if target == "atoms":
        _do(ctx, command("show" if shown else "hide", atom_spec(spec), "atoms"))
    elif target == "cartoon":
        _do(ctx, command("cartoon", atom_spec(spec)) if shown else command("cartoon", "hide", atom_spec(spec)))
    else:
        raise CommandError("target must be atoms or cartoon")


@APP.setup("select")
def select(ctx: AppContext, spec: str) -> None:
    """Select ``spec``."""
    _do(ctx, command("select", atom_spec(spec)))


def _info(ctx: AppContext, *tokens: str) -> list[str]:
    return run(ctx, command("info", *tokens)).lines()


@APP.probe("models")
def models(ctx: AppContext) -> list[dict[str, Any]]:
    """Open models: [{spec, type, name, shown}] from ``info models`` (name and display attributes)."""
    names = parse_models(_info(ctx, "models"))
    shown = {m["spec"]: m["value"] for m in parse_models(_info(ctx, "models", "attribute", "display"))}
    return [{"spec": m["spec"], "type": m["type"], "name": m["value"], "shown": shown.get(m["spec"]) == "True"}
            for m in names]


@APP.probe("chains")
def chains(ctx: AppContext) -> list[str]:
    """Chain specs (#1/A, ...) from ``info chains``."""
    return [item["spec"] for item in parse_items(_info(ctx, "chains"), "chain")]


@APP.probe("residues")
def residues(ctx: AppContext, spec: str, attribute: str = "name") -> list[dict[str, str]]:
    """``info residues <spec> attribute <attribute>``: [{spec, value}]."""
    if attribute not in RESIDUE_ATTRIBUTES:
        raise CommandError(f"attribute must be one of {sorted(RESIDUE_ATTRIBUTES)}")
    items = parse_items(_info(ctx, "residues", atom_spec(spec), "attribute", attribute), "residue")
    return [{"spec": i["spec"], "value": i["value"]} for i in items]


@APP.probe("atoms")
def atoms(ctx: AppContext, spec: str, attribute: str) -> list[dict[str, str]]:
    """``info atoms <spec> attribute <attribute>``: [{spec, value}]."""
    if attribute not in ATOM_ATTRIBUTES:
        raise CommandError(f"attribute must be one of {sorted(ATOM_ATTRIBUTES)}")
    items = parse_items(_info(ctx, "atoms", atom_spec(spec), "attribute", attribute), "atom")
    return [{"spec": i["spec"], "value": i["value"]} for i in items]


@APP.probe("selected_residues")
def selected_residues(ctx: AppContext) -> list[dict[str, str]]:
    """``info selection level residue``: the selected residues [{spec, value: residue name}]."""
    items = parse_items(_info(ctx, "selection", "level", "residue"), "residue")
    return [{"spec": i["spec"], "value": i["value"]} for i in items]
