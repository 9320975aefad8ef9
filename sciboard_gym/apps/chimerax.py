"""UCSF ChimeraX (molecular visualisation): the Biochemistry domain.

State is read through ChimeraX's REST server with its documented ``info``
subcommands (:mod:`sciboard_guest.apps.chimerax`): open models, chains,
per-residue and per-atom attributes (colour, display, draw mode, ribbon) and the
selection. ChimeraX is licence-gated; where it is missing, ``gym.make`` fails in
:meth:`AppAdapter.preflight_local` with the guest's install hint.
"""

from __future__ import annotations

import math
import re

from sciboard_gym.apps.base import AppAdapter, CheckContext, CheckFailed, to_number

ADAPTER = AppAdapter(name="chimerax", env_id="SciBoard-ChimeraX-v0", title="UCSF ChimeraX", domain="biochemistry")

#: RGB of the colour names tasks use (ChimeraX follows the CSS/X11 colour names).
RGB = {
    "red": (255, 0, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0), "magenta": (255, 0, 255),
    "cyan": (0, 255, 255), "white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128),
    "orange": (255, 165, 0), "purple": (128, 0, 128), "tan": (210, 180, 140), "salmon": (250, 128, 114),
    "hotpink": (255, 105, 180), "lightgreen": (144, 238, 144), "cornflowerblue": (100, 149, 237),
}
DRAW_MODES = {"sphere": "0", "ball": "1", "stick": "2"}


def parse_rgb(value: str) -> tuple[int, ...] | None:
    """ChimeraX's ``r,g,b,a`` attribute text (0-255) -> (r, g, b), or None."""
    parts = value.split(",")
    if len(parts) not in (3, 4) or not all(p.strip().isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts[:3])


def _rgb(name: str) -> tuple[int, int, int]:
    if name not in RGB:
        raise ValueError(f"color must be one of {sorted(RGB)}")
    return RGB[name]


def _close(a: tuple[int, ...] | None, b: tuple[int, ...], tolerance: int = 3) -> bool:
    return a is not None and all(abs(x - y) <= tolerance for x, y in zip(a, b))


def _values(ctx: CheckContext, kind: str, spec: str, attribute: str) -> list[str]:
    """``attribute`` of every atom or residue (``kind``) of ``spec``; the check fails if there are none."""
    values = [item["value"] for item in ctx.probe(kind, spec=spec, attribute=attribute)]
    if not values:
        raise CheckFailed(f"no {kind} in {spec}")
    return values


def _summary(values: list[str], limit: int = 5) -> str:
    distinct = sorted(set(values))
    return ", ".join(distinct[:limit]) + (" ..." if len(distinct) > limit else "")


# --- models ----------------------------------------------------------------------------

@ADAPTER.check("structure_count")
def structure_count(ctx: CheckContext, count: int) -> tuple[bool, str]:
    """Exactly ``count`` atomic structures are open."""
    structures = [m for m in ctx.probe("models") if m["type"] == "AtomicStructure"]
    return len(structures) == count, f"{len(structures)} atomic structure(s) open, expected {count}"


@ADAPTER.check("model_named")
def model_named(ctx: CheckContext, spec: str, name: str) -> tuple[bool, str]:
    """Model ``spec`` (e.g. #1) exists and is called ``name``."""
    found = {m["spec"]: m["name"] for m in ctx.probe("models")}
    if spec not in found:
        return False, f"there is no model {spec}; open: {sorted(found)}"
    return found[spec] == name, f"model {spec} is named {found[spec]!r}, expected {name!r}"


@ADAPTER.check("model_shown")
def model_shown(ctx: CheckContext, spec: str, shown: bool) -> tuple[bool, str]:
    """Model ``spec`` is shown (or hidden, with ``shown=false``)."""
    found = {m["spec"]: m["shown"] for m in ctx.probe("models")}
    if spec not in found:
        return False, f"there is no model {spec}"
    return found[spec] is shown, f"model {spec} shown={found[spec]}, expected {shown}"


@ADAPTER.check("model_type_present")
def model_type_present(ctx: CheckContext, type: str, present: bool = True) -> tuple[bool, str]:
    """A model of class ``type`` (e.g. MolecularSurface) is (or is not) open."""
    types = sorted({m["type"] for m in ctx.probe("models")})
    return (type in types) is present, f"model types {types}, expected {type} present={present}"


@ADAPTER.check("model_name_present")
def model_name_present(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """Some model (or submodel, e.g. 'distances') has the name ``name``."""
    names = sorted({m["name"] for m in ctx.probe("models")})
    return name in names, f"model names {names}, expected {name!r}"


@ADAPTER.check("chains_are")
def chains_are(ctx: CheckContext, chains: list) -> tuple[bool, str]:
    """The open chains are exactly ``chains`` (specs such as #1/A), in any order."""
    shown = ctx.probe("chains")
    return sorted(shown) == sorted(str(c) for c in chains), f"chains {shown}, expected {chains}"


# --- residues and atoms ------------------------------------------------------------------

@ADAPTER.check("residue_names")
def residue_names(ctx: CheckContext, spec: str, names: list) -> tuple[bool, str]:
    """The residues of ``spec``, in order, have the names ``names`` (e.g. ["TRP"])."""
    shown = [r["value"] for r in ctx.probe("residues", spec=spec, attribute="name")]
    return shown == [str(n).upper() for n in names], f"residues of {spec}: {shown}, expected {names}"


@ADAPTER.check("residue_count")
def residue_count(ctx: CheckContext, spec: str, count: int) -> tuple[bool, str]:
    """``spec`` has exactly ``count`` residues."""
    found = ctx.probe("residues", spec=spec, attribute="name")
    return len(found) == count, f"{len(found)} residue(s) in {spec}, expected {count}"


@ADAPTER.check("atoms_colored")
def atoms_colored(ctx: CheckContext, spec: str, color: str, every: bool = True) -> tuple[bool, str]:
    """All atoms of ``spec`` have colour ``color`` (``every=false``: none of them has it)."""
    want = _rgb(color)
    values = _values(ctx, "atoms", spec, "color")
    hits = [_close(parse_rgb(v), want) for v in values]
    ok = all(hits) if every else not any(hits)
    verb = "all" if every else "none"
    return ok, f"{sum(hits)}/{len(values)} atoms of {spec} are {color} (wanted {verb}); colours {_summary(values)}"


@ADAPTER.check("atoms_style")
def atoms_style(ctx: CheckContext, spec: str, style: str) -> tuple[bool, str]:
    """All atoms of ``spec`` are drawn as ``style`` (stick, sphere or ball)."""
    if style not in DRAW_MODES:
        raise ValueError(f"style must be one of {sorted(DRAW_MODES)}")
    values = _values(ctx, "atoms", spec, "draw_mode")
    ok = all(v == DRAW_MODES[style] for v in values)
    return ok, f"draw modes of {spec}: {_summary(values)} (sphere=0, ball=1, stick=2), expected {style}"


@ADAPTER.check("atoms_shown")
def atoms_shown(ctx: CheckContext, spec: str, shown: bool) -> tuple[bool, str]:
    """All atoms of ``spec`` are displayed (or all hidden, with ``shown=false``)."""
    values = _values(ctx, "atoms", spec, "display")
    ok = all(v == str(shown) for v in values)
    return ok, f"atom display of {spec}: {_summary(values)}, expected {shown}"


@ADAPTER.check("cartoon_shown")
def cartoon_shown(ctx: CheckContext, spec: str, shown: bool) -> tuple[bool, str]:
    """The cartoon (ribbon) of every residue of ``spec`` is shown (or hidden)."""
    values = _values(ctx, "residues", spec, "ribbon_display")
    ok = all(v == str(shown) for v in values)
    return ok, f"ribbon display of {spec}: {_summary(values)}, expected {shown}"


@ADAPTER.check("cartoon_colored")
def cartoon_colored(ctx: CheckContext, spec: str, color: str) -> tuple[bool, str]:
    """The cartoon of every residue of ``spec`` has colour ``color``."""
    want = _rgb(color)
    values = _values(ctx, "residues", spec, "ribbon_color")
    ok = all(_close(parse_rgb(v), want) for v in values)
    return ok, f"ribbon colours of {spec}: {_summary(values)}, expected {color}"


@ADAPTER.check("selection_is")
def selection_is(ctx: CheckContext, residues: list) -> tuple[bool, str]:
    """Exactly the residues ``residues`` (specs such as #1/A:5) are selected."""
    shown = sorted(r["spec"] for r in ctx.probe("selected_residues"))
    return shown == sorted(str(r) for r in residues), f"selected residues {shown}, expected {sorted(residues)}"


@ADAPTER.check("selection_names")
def selection_names(ctx: CheckContext, name: str, count: int) -> tuple[bool, str]:
    """Exactly ``count`` residues are selected and all are named ``name`` (e.g. LYS)."""
    found = ctx.probe("selected_residues")
    names = [r["value"] for r in found]
    ok = len(found) == count and all(n == name.upper() for n in names)
    return ok, f"{len(found)} selected residue(s) named {_summary(names)}, expected {count} x {name.upper()}"


@ADAPTER.check("selection_count")
def selection_count(ctx: CheckContext, count: int) -> tuple[bool, str]:
    """Exactly ``count`` residues are selected (any names)."""
    found = ctx.probe("selected_residues")
    return len(found) == count, f"{len(found)} residue(s) selected, expected {count}"


def parse_coord(value: str) -> tuple[float, float, float] | None:
    """An atom's ``coord`` attribute as ChimeraX prints it (``1.2,3.4,5.6`` or ``[1.2 3.4 5.6]``)."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", value)]
    return (numbers[0], numbers[1], numbers[2]) if len(numbers) == 3 else None


def _coord(ctx: CheckContext, spec: str) -> tuple[float, float, float]:
    values = _values(ctx, "atoms", spec, "coord")
    point = parse_coord(values[0]) if len(values) == 1 else None
    if point is None:
        raise CheckFailed(f"{spec} is not one atom with a position ({values[:3]})")
    return point


@ADAPTER.check("answer_distance")
def answer_distance(ctx: CheckContext, atom1: str, atom2: str, tolerance: float = 0.05) -> tuple[bool, str]:
    """The answer is the distance (Å) between the atoms ``atom1`` and ``atom2`` as ChimeraX places
    them now, within ``tolerance``; units after the number (``5.4 Å``) are fine."""
    if ctx.answer is None:
        return False, "no answer was given"
    given = to_number(ctx.answer)
    if given is None:
        return False, f"the answer {ctx.answer!r} is not a number"
    truth = math.dist(_coord(ctx, atom1), _coord(ctx, atom2))
    return abs(given - truth) <= tolerance, f"answer {given:g}, ChimeraX places the atoms {truth:.3f} Å apart"
