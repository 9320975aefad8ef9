"""PyMOL (open-source molecular viewer): the Biochemistry domain.

State is read through PyMOL's own XML-RPC server via the guest's probes
(:mod:`sciboard_guest.apps.pymol`): objects and their types, atom counts over
selections (including PyMOL's ``rep`` and ``color`` selectors), settings, the view
matrix, measurement objects, sequences, and files written to HOME. Answer checks
compare the agent's answer with what PyMOL itself computes on the current state.
"""

from __future__ import annotations

import re
from typing import Any

from sciboard_gym.apps.base import AppAdapter, CheckContext, CheckFailed, close_enough, to_number

ADAPTER = AppAdapter(name="pymol", env_id="SciBoard-PyMOL-v0", title="PyMOL", domain="biochemistry")

#: PyMOL colour names tasks may ask for, with their RGB as PyMOL defines them.
BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey50": (0.5, 0.5, 0.5),
               "blue": (0.0, 0.0, 1.0), "red": (1.0, 0.0, 0.0), "yellow": (1.0, 1.0, 0.0)}


def _count(ctx: CheckContext, selection: str) -> int | None:
    return ctx.probe("count_atoms", selection=selection)


def _types(ctx: CheckContext) -> dict[str, str]:
    return ctx.probe("object_types")


@ADAPTER.check("object_exists")
def object_exists(ctx: CheckContext, name: str, type: str = "object:molecule") -> tuple[bool, str]:
    """An object (or selection) ``name`` exists, of PyMOL type ``type`` ("" for any type)."""
    types = _types(ctx)
    if name not in types:
        return False, f"no object {name!r}; PyMOL has {sorted(types)}"
    ok = not type or types[name] == type
    return ok, f"{name!r} is {types[name]}, expected {type or 'any type'}"


@ADAPTER.check("object_absent")
def object_absent(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """No object or selection is called ``name``."""
    types = _types(ctx)
    return name not in types, f"PyMOL has {sorted(types)}; {name!r} must be gone"


@ADAPTER.check("object_count")
def object_count(ctx: CheckContext, count: int, type: str = "object:molecule") -> tuple[bool, str]:
    """Exactly ``count`` objects of PyMOL type ``type`` exist."""
    found = sorted(n for n, t in _types(ctx).items() if t == type)
    return len(found) == count, f"{len(found)} {type} objects {found}, expected {count}"


@ADAPTER.check("object_with_atoms")
def object_with_atoms(ctx: CheckContext, atoms: int) -> tuple[bool, str]:
    """Some molecule object has exactly ``atoms`` atoms."""
    sizes = {n: _count(ctx, n) for n, t in _types(ctx).items() if t == "object:molecule"}
    return atoms in sizes.values(), f"molecule objects and their atoms {sizes}, expected one with {atoms}"


@ADAPTER.check("object_enabled")
def object_enabled(ctx: CheckContext, name: str, enabled: bool = True) -> tuple[bool, str]:
    """Object ``name`` exists and is shown (``enabled``) or hidden in the object panel."""
    if name not in _types(ctx):
        return False, f"no object {name!r}"
    shown = name in ctx.probe("names", kind="public_objects", enabled_only=True)
    state = {True: "enabled", False: "disabled"}
    return shown == enabled, f"{name!r} is {state[shown]}, expected {state[bool(enabled)]}"


@ADAPTER.check("atom_count")
def atom_count(ctx: CheckContext, selection: str, count: int) -> tuple[bool, str]:
    """``selection`` has exactly ``count`` atoms."""
    found = _count(ctx, selection)
    if found is None:
        return False, f"PyMOL cannot evaluate {selection!r}"
    return found == count, f"{found} atoms in {selection!r}, expected {count}"


@ADAPTER.check("atom_count_between")
def atom_count_between(ctx: CheckContext, selection: str, minimum: int, maximum: int) -> tuple[bool, str]:
    """``selection`` has between ``minimum`` and ``maximum`` atoms (inclusive)."""
    found = _count(ctx, selection)
    if found is None:
        return False, f"PyMOL cannot evaluate {selection!r}"
    return minimum <= found <= maximum, f"{found} atoms in {selection!r}, expected {minimum}..{maximum}"


@ADAPTER.check("selection_matches")
def selection_matches(ctx: CheckContext, name: str, selection: str) -> tuple[bool, str]:
    """A named selection ``name`` holds exactly the (non-empty) atoms of ``selection``."""
    kind = _types(ctx).get(name)
    if kind != "selection":
        return False, f"{name!r} is {'missing' if kind is None else kind}, expected a named selection"
    have, want = _count(ctx, name), _count(ctx, selection)
    both = _count(ctx, f"{name} and ({selection})")
    ok = bool(want) and have == want == both
    return ok, f"{name!r} has {have} atoms, {both} of them in {selection!r} ({want} atoms)"


def _all_in(ctx: CheckContext, selection: str, subset: str) -> tuple[int, int | None]:
    """(atoms in ``selection``, of them in ``subset``); the check fails if ``selection`` is empty."""
    total = _count(ctx, selection)
    if not total:
        raise CheckFailed(f"{selection!r} is empty or unknown")
    return total, _count(ctx, f"({selection}) and {subset}")


@ADAPTER.check("representation_shown")
def representation_shown(ctx: CheckContext, selection: str, representation: str) -> tuple[bool, str]:
    """Every atom of the non-empty ``selection`` has ``representation`` switched on."""
    total, shown = _all_in(ctx, selection, f"rep {representation}")
    return shown == total, f"{shown} of {total} atoms in {selection!r} show {representation}"


@ADAPTER.check("representation_hidden")
def representation_hidden(ctx: CheckContext, selection: str, representation: str) -> tuple[bool, str]:
    """No atom of the non-empty ``selection`` has ``representation`` switched on."""
    total, shown = _all_in(ctx, selection, f"rep {representation}")
    return shown == 0, f"{shown} of {total} atoms in {selection!r} show {representation}, expected none"


@ADAPTER.check("coloured")
def coloured(ctx: CheckContext, selection: str, colour: str) -> tuple[bool, str]:
    """Every atom of the non-empty ``selection`` has PyMOL colour ``colour``."""
    total, hit = _all_in(ctx, selection, f"color {colour}")
    return hit == total, f"{hit} of {total} atoms in {selection!r} are {colour}"


@ADAPTER.check("not_coloured")
def not_coloured(ctx: CheckContext, selection: str, colour: str) -> tuple[bool, str]:
    """No atom of the non-empty ``selection`` has PyMOL colour ``colour``."""
    total, hit = _all_in(ctx, selection, f"color {colour}")
    return hit == 0, f"{hit} of {total} atoms in {selection!r} are {colour}, expected none"


def _rgb(text: str) -> tuple[float, float, float] | None:
    """PyMOL's printed colour setting ('0xffffff' or '[ 1.0, 1.0, 1.0 ]') as RGB in 0..1."""
    text = text.strip()
    if text.lower().startswith("0x"):
        value = int(text, 16)
        return ((value >> 16) & 255) / 255, ((value >> 8) & 255) / 255, (value & 255) / 255
    parts = [to_number(p) for p in text.strip("[]").split(",")]
    match parts:
        case [float() as r, float() as g, float() as b]:
            return r, g, b
    return None


@ADAPTER.check("background")
def background(ctx: CheckContext, colour: str) -> tuple[bool, str]:
    """The viewer's background colour is ``colour`` (one of BACKGROUNDS)."""
    if colour not in BACKGROUNDS:
        return False, f"unknown background colour {colour!r}; known: {sorted(BACKGROUNDS)}"
    text = ctx.probe("setting", key="bg_rgb")
    rgb = _rgb(text) or tuple(ctx.probe("colour_rgb", colour=text.strip()))
    ok = all(abs(a - b) < 0.02 for a, b in zip(rgb, BACKGROUNDS[colour]))
    return ok, f"background {text}, expected {colour}"


_SWITCHES = {"on": 1.0, "true": 1.0, "yes": 1.0, "off": 0.0, "false": 0.0, "no": 0.0}


def _setting_number(value: Any) -> float | None:
    """A setting value as a number; PyMOL's switches print as 'on'/'off' or '1'/'0'."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in _SWITCHES:
        return _SWITCHES[value.strip().lower()]
    return to_number(value)


@ADAPTER.check("setting_equals")
def setting_equals(ctx: CheckContext, name: str, value: Any, object: str = "",
                   tolerance: float = 1e-3) -> tuple[bool, str]:
    """Setting ``name`` (globally, or for ``object``) is ``value`` (numbers within ``tolerance``)."""
    text = ctx.probe("setting", key=name, object=object)
    number, expected = _setting_number(text), _setting_number(value)
    if expected is not None and number is not None:
        ok = close_enough(number, expected, tolerance)
    else:
        ok = text.strip().lower() == str(value).strip().lower()
    return ok, f"{name}{' of ' + object if object else ''} = {text!r}, expected {value!r}"


@ADAPTER.check("measurement")
def measurement(ctx: CheckContext, length: float, tolerance: float = 0.05, name: str = "") -> tuple[bool, str]:
    """A distance measurement object (``name``, or any) shows a line of ``length`` Å."""
    found = ctx.probe("measurements")
    pool = {name: found.get(name, [])} if name else found
    hit = any(abs(v - length) <= tolerance for values in pool.values() for v in values)
    return hit, f"measurements {found}, expected {name or 'one'} with {length:g} ± {tolerance:g} Å"


@ADAPTER.check("sequence_is")
def sequence_is(ctx: CheckContext, selection: str, sequence: str) -> tuple[bool, str]:
    """The one-letter sequence of ``selection`` is ``sequence``."""
    found = ctx.probe("sequence", selection=selection)
    return found == sequence, f"sequence of {selection!r} is {found!r}, expected {sequence!r}"


@ADAPTER.check("view_centred_on")
def view_centred_on(ctx: CheckContext, selection: str, tolerance: float = 0.5) -> tuple[bool, str]:
    """The view's origin of rotation lies in ``selection``'s bounding box (grown by ``tolerance`` Å).

    PyMOL's center/orient/zoom put the origin at the atoms' mean position, which lies inside
    their bounding box; use a small selection (a residue, a ligand) to make this strict.
    """
    box = ctx.probe("extent", selection=selection)
    if box is None:
        return False, f"{selection!r} is empty or unknown"
    origin = ctx.probe("view")[12:15]
    inside = all(lo - tolerance <= v <= hi + tolerance for v, lo, hi in zip(origin, box[0], box[1]))
    corners = [[round(v, 2) for v in corner] for corner in box]
    return inside, f"origin {[round(v, 2) for v in origin]}, box of {selection!r} {corners}"


@ADAPTER.check("pdb_saved")
def pdb_saved(ctx: CheckContext, file: str, atoms: int) -> tuple[bool, str]:
    """A PDB file ``file`` in HOME holds exactly ``atoms`` ATOM/HETATM records."""
    info = ctx.probe("file_info", file=file)
    if not info.get("exists"):
        return False, f"{file} does not exist in HOME"
    return info.get("atoms") == atoms, f"{file} has {info.get('atoms')} atom records, expected {atoms}"


@ADAPTER.check("image_saved")
def image_saved(ctx: CheckContext, file: str, width: int = 0, height: int = 0) -> tuple[bool, str]:
    """A PNG ``file`` exists in HOME (of ``width`` x ``height`` pixels when given)."""
    info = ctx.probe("file_info", file=file)
    if not info.get("exists") or "width" not in info:
        return False, f"{file} is not a PNG image in HOME ({info})"
    ok = (not width or info["width"] == width) and (not height or info["height"] == height)
    return ok, f"{file} is {info['width']}x{info['height']}, expected {width or 'any'}x{height or 'any'}"


# --- answers checked against what PyMOL computes -------------------------------------

def _answer(ctx: CheckContext) -> tuple[float | None, str]:
    if ctx.answer is None:
        return None, "no answer was given"
    number = to_number(ctx.answer)
    return number, "" if number is not None else f"the answer {ctx.answer!r} is not a number"


@ADAPTER.check("answer_atom_count")
def answer_atom_count(ctx: CheckContext, selection: str) -> tuple[bool, str]:
    """The answer is the number of atoms PyMOL counts in ``selection``."""
    number, problem = _answer(ctx)
    if number is None:
        return False, problem
    found = _count(ctx, selection)
    return found is not None and number == found, f"answer {number:g}, PyMOL counts {found} in {selection!r}"


@ADAPTER.check("answer_distance")
def answer_distance(ctx: CheckContext, atom1: str, atom2: str, tolerance: float = 0.05) -> tuple[bool, str]:
    """The answer is PyMOL's distance (Å) between two atoms, within ``tolerance``."""
    number, problem = _answer(ctx)
    if number is None:
        return False, problem
    found = ctx.probe("distance", atom1=atom1, atom2=atom2)
    if found is None:
        return False, f"{atom1!r} and {atom2!r} are not single atoms"
    return abs(number - found) <= tolerance, f"answer {number:g}, PyMOL measures {found:.3f} Å"


@ADAPTER.check("answer_angle")
def answer_angle(ctx: CheckContext, atom1: str, atom2: str, atom3: str, tolerance: float = 0.5) -> tuple[bool, str]:
    """The answer is PyMOL's angle (degrees) atom1-atom2-atom3, within ``tolerance``."""
    number, problem = _answer(ctx)
    if number is None:
        return False, problem
    found = ctx.probe("angle", atom1=atom1, atom2=atom2, atom3=atom3)
    if found is None:
        return False, "the three selections are not single atoms"
    return abs(number - found) <= tolerance, f"answer {number:g}, PyMOL measures {found:.2f}°"


@ADAPTER.check("answer_sequence")
def answer_sequence(ctx: CheckContext, selection: str) -> tuple[bool, str]:
    """The answer is the one-letter sequence PyMOL reports for ``selection``, in either case; spaces, hyphens
    and commas between letters and a final full stop are ignored (``DCAW``, ``d-c-a-w``, ``DCA W.``)."""
    if ctx.answer is None:
        return False, "no answer was given"
    found = ctx.probe("sequence", selection=selection)
    given = re.sub(r"[\s,\-]+", "", ctx.answer.strip().rstrip(".")).upper()
    return bool(found) and given == found, f"answer {given!r}, PyMOL's sequence {found!r}"


@ADAPTER.check("answer_chains")
def answer_chains(ctx: CheckContext, selection: str) -> tuple[bool, str]:
    """The answer is the number of chains PyMOL finds in ``selection``."""
    number, problem = _answer(ctx)
    if number is None:
        return False, problem
    found = ctx.probe("chains", selection=selection)
    return bool(found) and number == len(found), f"answer {number:g}, PyMOL finds chains {found}"
