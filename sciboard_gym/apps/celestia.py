"""Celestia (3D space simulator): the Astronomy domain of the CODA benchmark.

State is read through Celestia's own Lua scripting: the guest
(:mod:`sciboard_guest.apps.celestia`) loads a bridge as Celestia's ``LuaHook`` and
asks it for the simulation time, clock rate, selection, distance to the selection,
field of view and the render/label flags. Celestia is not packaged for Debian 12;
without it, ``gym.make("SciBoard-Celestia-v0")`` fails at construction with
:class:`~sciboard_guest.apps.AppNotInstalled` saying how to install it.
"""

from __future__ import annotations

from sciboard_gym.apps.base import AppAdapter, CheckContext

ADAPTER = AppAdapter(name="celestia", env_id="SciBoard-Celestia-v0", title="Celestia", domain="astronomy")


def _state(ctx: CheckContext) -> dict:
    return ctx.probe("state")


@ADAPTER.check("selection_is")
def selection_is(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The selected object is called ``name`` (case-insensitive)."""
    shown = _state(ctx).get("selection")
    ok = isinstance(shown, str) and shown.strip().lower() == name.strip().lower()
    return ok, f"selection {shown!r}, expected {name!r}"


@ADAPTER.check("near_selection")
def near_selection(ctx: CheckContext, name: str, max_radii: float) -> tuple[bool, str]:
    """``name`` is selected and the observer is within ``max_radii`` of its radius from its centre."""
    state = _state(ctx)
    if str(state.get("selection", "")).lower() != name.lower():
        return False, f"selection {state.get('selection')!r}, expected {name!r}"
    distance, radius = state.get("distance_km"), state.get("selection_radius_km")
    if not isinstance(distance, float) or not isinstance(radius, float) or radius <= 0:
        return False, f"no distance to {name} reported"
    detail = f"{distance:.0f} km from {name} ({distance / radius:.1f} radii), expected within {max_radii:g} radii"
    return distance <= max_radii * radius, detail


@ADAPTER.check("timescale_between")
def timescale_between(ctx: CheckContext, min_rate: float, max_rate: float) -> tuple[bool, str]:
    """The clock runs at between ``min_rate`` and ``max_rate`` (0 when paused)."""
    state = _state(ctx)
    rate = 0.0 if state.get("paused") is True else state.get("timescale")
    ok = isinstance(rate, float) and min_rate <= rate <= max_rate
    return ok, f"clock rate {rate!r}, expected {min_rate:g}..{max_rate:g}"


@ADAPTER.check("render_flag")
def render_flag(ctx: CheckContext, name: str, value: bool) -> tuple[bool, str]:
    """Celestia's render flag ``name`` (orbits, constellations, grid...) is ``value``."""
    return _flag(ctx, "render", name, value)


@ADAPTER.check("label_flag")
def label_flag(ctx: CheckContext, name: str, value: bool) -> tuple[bool, str]:
    """Celestia's label flag ``name`` (planets, moons, stars...) is ``value``."""
    return _flag(ctx, "label", name, value)


def _flag(ctx: CheckContext, group: str, name: str, value: bool) -> tuple[bool, str]:
    """Celestia's ``group`` flag (render or label) ``name`` is ``value``; a flag Celestia does not report fails."""
    flags = _state(ctx)[group]
    if name not in flags:
        return False, f"Celestia reports no {group} flag {name!r}; it reports: {sorted(flags)}"
    shown = flags[name]
    return shown is value, f"{group} flag {name} = {shown!r}, expected {value}"


@ADAPTER.check("fov_between")
def fov_between(ctx: CheckContext, min_degrees: float, max_degrees: float) -> tuple[bool, str]:
    """The field of view is between ``min_degrees`` and ``max_degrees``."""
    fov = _state(ctx).get("fov_degrees")
    ok = isinstance(fov, float) and min_degrees <= fov <= max_degrees
    return ok, f"field of view {fov!r}°, expected {min_degrees:g}..{max_degrees:g}°"
