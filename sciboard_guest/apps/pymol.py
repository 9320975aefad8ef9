"""PyMOL on the desktop: launch with its XML-RPC server, readiness, setup steps and probes.

State is read through PyMOL's own XML-RPC server (``pymol -R``), which serves the
``cmd`` API: object names, atom counts over selections, shown representations,
colours, settings, the view matrix, measurements. Each probe makes fixed calls;
task files only supply names and selection expressions, validated in
:mod:`sciboard_guest.apps.pymol_rpc`.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from sciboard_guest.apps import AppContext, AppError, BadArgument, GuestApp, inplace, pymol_structures, visible_windows
from sciboard_guest.apps import pymol_rpc as rpc

DATA = Path("/usr/share/pymol/data")
DEMO_FILES = ("pept.pdb", "il2.pdb", "1tii.pdb")
REPRESENTATIONS = ("lines", "sticks", "spheres", "cartoon", "ribbon", "surface", "mesh", "dots", "nonbonded",
                   "nb_spheres", "labels", "everything")
#: Colours tasks may use (PyMOL's own colour names).
COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "white", "black", "grey", "gray",
           "salmon", "slate", "wheat", "violet", "purple", "pink", "lime", "teal", "marine", "forest",
           "firebrick", "olive", "brown", "carbon", "nitrogen", "oxygen", "sulfur", "hydrogen")
AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY")
SS_MODES = {"helix": 1, "antiparallel": 3, "parallel": 4, "sheet": 3, "extended": 0}

APP = GuestApp(
    name="pymol",
    argv=["pymol", "-R", "-k", "-q"],
    env={
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "QT_XCB_GL_INTEGRATION": "xcb_glx",
        "PYMOL_DATA": str(DATA),
        "PYMOL_RPCHOST": "127.0.0.1",
        # The command line is found and cleared through AT-SPI by the in-place reset.
        "QT_ACCESSIBILITY": "1",
        "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
    },
    install_hint="Install it with: apt-get install pymol (scripts/install.sh does this).",
    ready_timeout=90.0,
    # Measured (docs/env-reference.md, "Settle and input"): once PyMOL has taken an input in and stopped
    # computing, its drawing ends within this. Its feedback pane shows command output at its own 0.5 s
    # poll, later than any window.
    settle_quiet=0.05,
    settle_cpu=True,
    restore_checks_launch_state=True,
)


def _server(ctx: AppContext) -> xmlrpc.client.ServerProxy:
    port = ctx.state.get("rpc_port")
    if port is None:
        port = ctx.state["rpc_port"] = rpc.find_port(ctx.app_pid)
    return rpc.proxy(port)


class PymolRejected(AppError):
    """PyMOL answered with an error (e.g. a selection naming something that does not exist)."""


def call(ctx: AppContext, method: str, *args: Any) -> Any:
    """Call one of PyMOL's ``cmd`` functions (a fixed name from this module) over XML-RPC."""
    try:
        return getattr(_server(ctx), method)(*args)
    except xmlrpc.client.Fault as err:
        raise PymolRejected(f"PyMOL rejected {method}: {err.faultString.strip()[-300:]}") from None
    except (OSError, xmlrpc.client.ProtocolError) as err:
        raise AppError(f"PyMOL's XML-RPC server did not answer {method}: {err}") from None


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    problem = "no window yet"
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        if visible_windows(ctx, "pymol"):
            try:
                ctx.state.pop("rpc_port", None)
                if call(ctx, "ping") == 1:
                    call(ctx, "get_names", "all")
                    ctx.settle(quiet=0.3, timeout=8.0)
                    # A reinitialize marks three settings as set (at their start values), so the session an
                    # in-place reset is checked against is read after one.
                    call(ctx, "reinitialize")
                    _point_at_command_line(ctx)  # where the in-place reset leaves the pointer, out of the viewer
                    ctx.settle(quiet=0.3, timeout=8.0)
                    ctx.state["launch_session"] = _session(ctx)
                    ctx.state["launch_viewer"] = _viewer_pixels(ctx)
                    return
            except AppError as err:
                problem = str(err)
        time.sleep(0.1)
    raise AppError(f"PyMOL did not become ready in time ({problem})")


def _session(ctx: AppContext) -> dict[str, Any]:
    """PyMOL's whole session (objects, selections, settings, colours, view, scenes, wizard, movie)."""
    session = call(ctx, "get_session", "", 0)
    if not isinstance(session, dict):
        raise AppError("PyMOL's session is unreadable")
    return session


@APP.restore
def _restore(ctx: AppContext) -> None:
    """Put the running PyMOL back into its just-launched state with ``reinitialize``, verified against the
    session read at launch; an open dialog or menu, a moved window or any difference means a relaunch."""
    inplace.check_windows(ctx, "pymol", timeout=0.0)
    call(ctx, "set_wizard")
    _reinitialize(ctx)  # an empty viewer: clicking it below only moves the focus
    call(ctx, "cd", str(ctx.home))
    inplace.restore_home(ctx)
    clicked = _clear_command_lines(ctx)
    ctx.settle(quiet=0.2 if clicked else 0.1, timeout=3.0)  # a pointer move alone redraws nothing
    if _session_changes(ctx):
        # The pointer's move finished a gesture the episode left open over the viewer (PyMOL can miss a
        # button release when it is slow), which turned the view.
        _reinitialize(ctx)
    inplace.check_windows(ctx, "pymol", timeout=1.0)
    if _viewer_pixels(ctx) != ctx.state["launch_viewer"]:
        raise AppError("PyMOL's viewer does not look as at launch after reinitialize")


def _reinitialize(ctx: AppContext) -> None:
    """Run ``reinitialize`` and wait until the session equals the one read at launch (else AppError)."""
    call(ctx, "reinitialize")
    deadline = time.monotonic() + 2.0
    while changed := _session_changes(ctx):  # the viewport part follows the next redraw
        if time.monotonic() > deadline:
            raise AppError(f"PyMOL's session differs from launch after reinitialize: {changed}")
        ctx.settle(quiet=0.1, timeout=1.0)


def _session_changes(ctx: AppContext) -> list[str]:
    """The parts of PyMOL's session that differ from the one read at launch."""
    wanted, live = ctx.state["launch_session"], _session(ctx)
    changed = sorted(key for key in set(wanted) | set(live) if wanted.get(key) != live.get(key))
    if "settings" in changed:  # name the settings (by PyMOL's index), e.g. for the guest log
        before = {entry[0]: entry for entry in wanted.get("settings") or []}
        after = {entry[0]: entry for entry in live.get("settings") or []}
        changed += [f"setting {i}: {before.get(i)} -> {after.get(i)}"
                    for i in sorted(set(before) | set(after)) if before.get(i) != after.get(i)][:5]
    return changed


def _main_frame(ctx: AppContext) -> Any:
    app = next((a for a in ctx.a11y.apps() if a.name == "PyMOL"), None)
    for frame in app.children if app is not None else []:
        if frame.role == "frame" and frame.name.startswith("PyMOL"):
            return frame
    raise AppError("PyMOL's main window is not on the accessibility bus")


def _viewer_box(ctx: AppContext) -> tuple[int, int, int, int]:
    """The 3D viewer's screen box (the main window's largest filler)."""
    boxes = [child.box for child in _main_frame(ctx).children if child.role == "filler" and child.box]
    if not boxes:
        raise AppError("PyMOL's viewer is not reachable")
    return max(boxes, key=lambda box: box[2] * box[3])


def _viewer_pixels(ctx: AppContext) -> str:
    """A digest of the viewer's pixels (molecules, background, internal command line and object panel)."""
    x, y, width, height = _viewer_box(ctx)
    return hashlib.sha256(ctx.screen.rgb()[y:y + height, x:x + width].tobytes()).hexdigest()


def _viewer_as_at_launch(ctx: AppContext) -> bool:
    """Whether the viewer, once it has drawn, looks as at launch. A viewer that already matches after a short
    quiet window is done (``reinitialize`` redraws it in one frame); any other waits for a longer one."""
    ctx.settle(quiet=0.05, timeout=3.0)
    if _viewer_pixels(ctx) == ctx.state["launch_viewer"]:
        return True
    ctx.settle(quiet=0.2, timeout=3.0)
    return _viewer_pixels(ctx) == ctx.state["launch_viewer"]


def _command_line(ctx: AppContext) -> tuple[Any, Any]:
    """The ``PyMOL>`` label and the command input line right of it, through AT-SPI."""
    for parent in _main_frame(ctx).find(role="frame"):
        children = parent.children
        for label, field in itertools.pairwise(children):
            if label.role == "label" and label.name == "PyMOL>" and field.role == "text":
                return label, field
    raise AppError("PyMOL's command line is not reachable")


def _point_at_command_line(ctx: AppContext, found: tuple[Any, Any] | None = None) -> Any:
    """Move the pointer onto the ``PyMOL>`` label (no tooltip there; out of the viewer); returns the
    command line. ``found``: what :func:`_command_line` just returned, if nothing changed since (else
    it is looked up again)."""
    label, field = found or _command_line(ctx)
    if field.box is None or label.box is None:
        raise AppError("PyMOL's command line has no position")
    x, y, width, height = label.box
    ctx.perform({"name": "move", "x": x + width // 2, "y": y + height // 2})
    return field


def _clear_command_lines(ctx: AppContext) -> bool:
    """Empty the viewer's own command line (ctrl+a, ctrl+k there) if the viewer does not look as at launch,
    and the command input line, and give the input line the keyboard focus, as at launch; the pointer
    ends on the ``PyMOL>`` label. Returns whether any click or key was sent (else only the pointer moved).

    Inputs are sent only when needed: with its command line empty, ctrl+a in the viewer is PyMOL's
    "select all" (it makes a selection ``sele``), which would fail the restore's checks, and a click
    can finish a gesture the episode left open.
    """
    viewer_line = not _viewer_as_at_launch(ctx)
    if viewer_line:
        x, y, width, height = _viewer_box(ctx)
        ctx.click(x + width // 3, y + height // 2)  # an empty viewer: the click only moves the focus
        ctx.key("ctrl+a")
        ctx.key("ctrl+k")
    found = _command_line(ctx)
    _, field = found
    if not viewer_line and field.focused and not field.text:
        _point_at_command_line(ctx, found)  # a jump to a point outside the viewer, which cannot drag it
        return False
    if field.box is None:
        raise AppError("PyMOL's command line has no position")
    x, y, width, height = field.box
    ctx.click(x + width // 2, y + height // 2)
    if field.text:
        ctx.key("ctrl+a")
        ctx.key("BackSpace")
    if _point_at_command_line(ctx).text:
        raise AppError("PyMOL's command line could not be cleared")
    return True


# --- argument checks ------------------------------------------------------------

def _fragment_names() -> set[str]:
    return {f.stem for f in (DATA / "chempy" / "fragments").glob("*.pkl")}


def _one_of(value: str, allowed: tuple[str, ...] | set[str] | dict, what: str) -> str:
    if value not in allowed:
        raise BadArgument(f"{what} must be one of {sorted(allowed)}, got {value!r}")
    return value


def _file_name(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", value):
        raise BadArgument(f"file must be a plain file name (letters, digits, _ . -), got {value!r}")
    return value


def _setting_name(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9_]{1,49}", value):
        raise BadArgument(f"setting must be a PyMOL setting name, got {value!r}")
    return value


def _names(ctx: AppContext, kind: str = "public") -> list[str]:
    return list(call(ctx, "get_names", kind, 0))


# --- setup steps ------------------------------------------------------------------

@APP.setup("build_peptide")
def build_peptide(ctx: AppContext, sequence: str, name: str, ss: str = "extended") -> None:
    """Build a peptide with PyMOL's ``fab`` (one-letter ``sequence``; ss: helix, sheet or extended)."""
    if not isinstance(sequence, str) or not 1 <= len(sequence) <= 40 or set(sequence) - AMINO_ACIDS:
        raise BadArgument("sequence must be 1-40 one-letter amino-acid codes")
    _one_of(ss, SS_MODES, "ss")
    call(ctx, "fab", sequence, rpc.check_name(name), "peptide", 1, "", "", -1, 1, -1, SS_MODES[ss])
    call(ctx, "dss", name)


@APP.setup("fragment")
def fragment(ctx: AppContext, fragment: str, name: str) -> None:
    """Load one of PyMOL's bundled fragments (``benzene``, ``ala``, ...) as object ``name``."""
    call(ctx, "fragment", _one_of(fragment, _fragment_names(), "fragment"), rpc.check_name(name))


@APP.setup("load_demo")
def load_demo(ctx: AppContext, file: str, name: str) -> None:
    """Load one of PyMOL's bundled demo structures (pept.pdb, il2.pdb, 1tii.pdb)."""
    path = DATA / "demo" / _one_of(file, DEMO_FILES, "file")
    call(ctx, "load", str(path), rpc.check_name(name))


@APP.setup("write_file")
def write_file(ctx: AppContext, file: str) -> None:
    """Write one of our own small structure files into HOME (without loading it)."""
    builder = pymol_structures.FILES[_one_of(file, pymol_structures.FILES, "file")]
    (ctx.home / file).write_text(builder())


@APP.setup("load_file")
def load_file(ctx: AppContext, file: str, name: str) -> None:
    """Write one of our own structure files into HOME and load it as object ``name``."""
    write_file(ctx, file)
    call(ctx, "load", str(ctx.home / file), rpc.check_name(name))


@APP.setup("show_as")
def show_as(ctx: AppContext, representation: str, selection: str) -> None:
    """Show ``selection`` only as ``representation``."""
    call(ctx, "show_as", _one_of(representation, REPRESENTATIONS, "representation"), rpc.check_selection(selection))


@APP.setup("show")
def show(ctx: AppContext, representation: str, selection: str) -> None:
    """Add ``representation`` for ``selection``."""
    call(ctx, "show", _one_of(representation, REPRESENTATIONS, "representation"), rpc.check_selection(selection))


@APP.setup("color")
def color(ctx: AppContext, colour: str, selection: str) -> None:
    """Colour ``selection`` with one of PyMOL's named colours."""
    call(ctx, "color", _one_of(colour, COLOURS, "colour"), rpc.check_selection(selection))


@APP.setup("select")
def select(ctx: AppContext, name: str, selection: str) -> None:
    """Create the named selection ``name``."""
    call(ctx, "select", rpc.check_name(name), rpc.check_selection(selection))


@APP.setup("distance")
def distance(ctx: AppContext, name: str, atom1: str, atom2: str) -> None:
    """Create the distance measurement ``name`` between two single-atom selections."""
    call(ctx, "distance", rpc.check_name(name), rpc.check_selection(atom1), rpc.check_selection(atom2))


@APP.setup("orient")
def orient(ctx: AppContext, selection: str) -> None:
    """Orient the view on ``selection``."""
    call(ctx, "orient", rpc.check_selection(selection))


# --- probes -----------------------------------------------------------------------

@APP.probe("names")
def names(ctx: AppContext, kind: str = "public", enabled_only: bool = False) -> list[str]:
    """Names PyMOL knows: kind ``public`` (objects and selections), ``public_objects`` or
    ``public_selections``; with ``enabled_only`` only those shown."""
    _one_of(kind, ("public", "public_objects", "public_selections"), "kind")
    return list(call(ctx, "get_names", kind, 1 if enabled_only else 0))


@APP.probe("object_types")
def object_types(ctx: AppContext) -> dict[str, str]:
    """Every public object and selection with its type (``object:molecule``, ``object:measurement``,
    ``selection``, ...)."""
    return {name: call(ctx, "get_type", name) for name in _names(ctx)}


@APP.probe("count_atoms")
def count_atoms(ctx: AppContext, selection: str) -> int | None:
    """Atoms in ``selection``; None when PyMOL cannot evaluate it (e.g. a name that does not exist)."""
    try:
        return int(call(ctx, "count_atoms", rpc.check_selection(selection)))
    except PymolRejected:
        return None


@APP.probe("view")
def view(ctx: AppContext) -> list[float]:
    """PyMOL's 18-number view: rotation (9), camera position (3), origin of rotation (3), clipping
    (2), orthoscopic flag (1)."""
    return [float(v) for v in call(ctx, "get_view")]


@APP.probe("extent")
def extent(ctx: AppContext, selection: str) -> list[list[float]] | None:
    """The bounding box of ``selection`` as [[min x, y, z], [max x, y, z]]; None if it is empty."""
    if not count_atoms(ctx, selection):
        return None
    return [[float(v) for v in corner] for corner in call(ctx, "get_extent", selection)]


@APP.probe("setting")
def setting(ctx: AppContext, key: str, object: str = "") -> str:
    """Setting ``key``'s value as PyMOL prints it (globally, or for ``object``)."""
    if object:
        rpc.check_name(object, "object")
    return str(call(ctx, "get_setting_text", _setting_name(key), object))


@APP.probe("colour_rgb")
def colour_rgb(ctx: AppContext, colour: str) -> list[float]:
    """The RGB (0..1) of a PyMOL colour name, as PyMOL defines it."""
    return [float(v) for v in call(ctx, "get_color_tuple", rpc.check_name(colour, "colour"))]


@APP.probe("sequence")
def sequence(ctx: AppContext, selection: str) -> str:
    """The one-letter sequence of ``selection`` (all chains joined), from PyMOL's FASTA export."""
    if not count_atoms(ctx, selection):
        return ""
    fasta = call(ctx, "get_fastastr", selection)
    return "".join(line.strip() for line in fasta.splitlines() if line and not line.startswith(">"))


@APP.probe("chains")
def chains(ctx: AppContext, selection: str) -> list[str]:
    """Chain identifiers in ``selection``."""
    if not count_atoms(ctx, selection):
        return []
    return list(call(ctx, "get_chains", selection))


@APP.probe("measurements")
def measurements(ctx: AppContext) -> dict[str, list[float]]:
    """Every distance measurement object with the lengths (Å) of its dashed lines.

    Read from PyMOL's own session data of the object: each distance set stores the end
    points of its lines.
    """
    found: dict[str, list[float]] = {}
    for name, kind in object_types(ctx).items():
        if kind != "object:measurement":
            continue
        session = call(ctx, "get_session", name, 1)
        lengths: list[float] = []
        for entry in session.get("names") or []:
            if not entry or entry[0] != name:
                continue
            for dset in entry[5][2] or []:
                if not dset or not dset[0]:
                    continue  # an angle or dihedral set
                points = dset[1]
                for i in range(0, int(dset[0]) * 3 - 5, 6):
                    lengths.append(round(math.dist(points[i:i + 3], points[i + 3:i + 6]), 4))
        found[name] = lengths
    return found


@APP.probe("distance")
def measure_distance(ctx: AppContext, atom1: str, atom2: str) -> float | None:
    """PyMOL's distance (Å) between two single-atom selections; None if either is not one atom."""
    if count_atoms(ctx, atom1) != 1 or count_atoms(ctx, atom2) != 1:
        return None
    return float(call(ctx, "get_distance", atom1, atom2))


@APP.probe("angle")
def measure_angle(ctx: AppContext, atom1: str, atom2: str, atom3: str) -> float | None:
    """PyMOL's angle (degrees) atom1-atom2-atom3; None if a selection is not one atom."""
    if any(count_atoms(ctx, a) != 1 for a in (atom1, atom2, atom3)):
        return None
    return float(call(ctx, "get_angle", atom1, atom2, atom3))


@APP.probe("file_info")
def file_info(ctx: AppContext, file: str) -> dict[str, Any]:
    """A file in HOME: whether it exists, its size, atom records (PDB/SDF/MOL2) or image size (PNG)."""
    path = ctx.home / _file_name(file)
    if not path.is_file():
        return {"exists": False}
    data = path.read_bytes()
    info: dict[str, Any] = {"exists": True, "size": len(data)}
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        info["width"] = int.from_bytes(data[16:20], "big")
        info["height"] = int.from_bytes(data[20:24], "big")
    elif path.suffix.lower() in (".pdb", ".ent"):
        lines = data.decode(errors="replace").splitlines()
        info["atoms"] = sum(1 for line in lines if line.startswith(("ATOM  ", "HETATM")))
    return info
