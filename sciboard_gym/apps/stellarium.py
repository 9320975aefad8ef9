"""Stellarium (planetarium): the Astronomy domain.

State is read through the guest's probes (:mod:`sciboard_guest.apps.stellarium`), which
talk to Stellarium's RemoteControl HTTP API: simulation time and clock rate, observer
location, field of view, view direction, the selected object (and any object's live
data), and every boolean display property (grids, lines, labels, landscape, dialogs).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sciboard_gym.apps.base import AppAdapter, CheckContext, CheckFailed, to_number

ADAPTER = AppAdapter(name="stellarium", env_id="SciBoard-Stellarium-v0", title="Stellarium", domain="astronomy")

#: How far the simulation time may be from the desktop's clock and still be "now": Stellarium advances its
#: time once per drawn frame, seconds apart in a slow VM. Any time a task sets by hand is days away.
NOW_TOLERANCE = 60.0
#: Dialog names tasks use -> the Stellarium action that shows the dialog.
WINDOWS = {
    "search": "actionShow_Search_Window_Global",
    "location": "actionShow_Location_Window_Global",
    "date_time": "actionShow_DateTime_Window_Global",
    "sky_and_viewing": "actionShow_SkyView_Window_Global",
    "configuration": "actionShow_Configuration_Window_Global",
    "astronomical_calculations": "actionShow_AstroCalc_Window_Global",
    "help": "actionShow_Help_Window_Global",
}

#: The 88 IAU constellations: abbreviation -> name.
CONSTELLATIONS = {
    "And": "Andromeda", "Ant": "Antlia", "Aps": "Apus", "Aqr": "Aquarius", "Aql": "Aquila", "Ara": "Ara",
    "Ari": "Aries", "Aur": "Auriga", "Boo": "Bootes", "Cae": "Caelum", "Cam": "Camelopardalis", "Cnc": "Cancer",
    "CVn": "Canes Venatici", "CMa": "Canis Major", "CMi": "Canis Minor", "Cap": "Capricornus", "Car": "Carina",
    "Cas": "Cassiopeia", "Cen": "Centaurus", "Cep": "Cepheus", "Cet": "Cetus", "Cha": "Chamaeleon",
    "Cir": "Circinus", "Col": "Columba", "Com": "Coma Berenices", "CrA": "Corona Australis",
    "CrB": "Corona Borealis", "Crv": "Corvus", "Crt": "Crater", "Cru": "Crux", "Cyg": "Cygnus", "Del": "Delphinus",
    "Dor": "Dorado", "Dra": "Draco", "Equ": "Equuleus", "Eri": "Eridanus", "For": "Fornax", "Gem": "Gemini",
    "Gru": "Grus", "Her": "Hercules", "Hor": "Horologium", "Hya": "Hydra", "Hyi": "Hydrus", "Ind": "Indus",
    "Lac": "Lacerta", "Leo": "Leo", "LMi": "Leo Minor", "Lep": "Lepus", "Lib": "Libra", "Lup": "Lupus",
    "Lyn": "Lynx", "Lyr": "Lyra", "Men": "Mensa", "Mic": "Microscopium", "Mon": "Monoceros", "Mus": "Musca",
    "Nor": "Norma", "Oct": "Octans", "Oph": "Ophiuchus", "Ori": "Orion", "Pav": "Pavo", "Peg": "Pegasus",
    "Per": "Perseus", "Phe": "Phoenix", "Pic": "Pictor", "Psc": "Pisces", "PsA": "Piscis Austrinus", "Pup": "Puppis",
    "Pyx": "Pyxis", "Ret": "Reticulum", "Sge": "Sagitta", "Sgr": "Sagittarius", "Sco": "Scorpius", "Scl": "Sculptor",
    "Sct": "Scutum", "Ser": "Serpens", "Sex": "Sextans", "Tau": "Taurus", "Tel": "Telescopium", "Tri": "Triangulum",
    "TrA": "Triangulum Australe", "Tuc": "Tucana", "UMa": "Ursa Major", "UMi": "Ursa Minor", "Vel": "Vela",
    "Vir": "Virgo", "Vol": "Volans", "Vul": "Vulpecula",
}


def _angle_between(az1: float, alt1: float, az2: float, alt2: float) -> float:
    """Great-circle distance in degrees between two horizontal directions."""
    a1, h1, a2, h2 = (math.radians(v) for v in (az1, alt1, az2, alt2))
    cosine = math.sin(h1) * math.sin(h2) + math.cos(h1) * math.cos(h2) * math.cos(a1 - a2)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def _moment(utc: str) -> datetime:
    """An ISO 8601 UTC time ('2024-10-15T20:00:00', optional 'Z'); Stellarium's far past and future fail the check."""
    try:
        return datetime.fromisoformat(str(utc).rstrip("Z").replace(" ", "T"))
    except ValueError:
        raise CheckFailed(f"not an ISO 8601 UTC time: {utc!r}") from None


def _names(info: dict[str, Any]) -> set[str]:
    return {str(info.get(key, "")).strip().lower() for key in ("name", "localized-name") if info.get(key)}


@ADAPTER.check("time_is")
def time_is(ctx: CheckContext, utc: str, tolerance_minutes: float = 1.0) -> tuple[bool, str]:
    """The simulation time is ``utc`` (ISO 8601, UTC) within ``tolerance_minutes``."""
    state = ctx.probe("status")
    minutes = abs((_moment(state["utc"]) - _moment(utc)).total_seconds()) / 60
    return minutes <= tolerance_minutes, f"time {state['utc']} UTC, expected {utc} ± {tolerance_minutes:g} min"


@ADAPTER.check("time_rate")
def time_rate(ctx: CheckContext, min_rate: float, max_rate: float) -> tuple[bool, str]:
    """The clock runs at between ``min_rate`` and ``max_rate`` simulated seconds per real second."""
    rate = ctx.probe("status")["time_rate"]
    return min_rate <= rate <= max_rate, f"clock rate {rate:g} s/s, expected {min_rate:g}..{max_rate:g}"


@ADAPTER.check("time_is_now")
def time_is_now(ctx: CheckContext) -> tuple[bool, str]:
    """The simulation shows the present moment of the desktop's clock (within NOW_TOLERANCE seconds) and its
    clock runs at real-time speed (1 s/s), so it keeps following the computer's clock.

    Stellarium's own "is time now" flag is not used: it compares the time of its last drawn frame with the
    clock within one second, and a slow guest (a VM without KVM) draws a frame every few seconds."""
    state = ctx.probe("status")
    real_time = abs(float(state["time_rate"]) - 1.0) < 0.01
    behind = float(state["seconds_from_now"])
    return abs(behind) <= NOW_TOLERANCE and real_time, (
        f"time {state['utc']} UTC, {behind:+.1f} s from the desktop's clock (at most {NOW_TOLERANCE:g} s); "
        f"clock rate {float(state['time_rate']):g} s/s, expected 1")


@ADAPTER.check("location_is")
def location_is(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The observer's location is called ``name`` (case-insensitive)."""
    place = ctx.probe("status")["location"]
    return place["name"].strip().lower() == name.strip().lower(), \
        f"location {place['name']!r} ({place['region']}), expected {name!r}"


@ADAPTER.check("location_near")
def location_near(ctx: CheckContext, latitude: float, longitude: float,
                  tolerance_degrees: float = 0.1) -> tuple[bool, str]:
    """The observer stands within ``tolerance_degrees`` of (latitude, longitude) on Earth."""
    place = ctx.probe("status")["location"]
    dlon = abs(((place["longitude"] - longitude) + 180) % 360 - 180)
    ok = place["planet"] == "Earth" and abs(place["latitude"] - latitude) <= tolerance_degrees \
        and dlon <= tolerance_degrees
    return ok, (f"observer at lat {place['latitude']:.4f}, lon {place['longitude']:.4f} on {place['planet']}, "
                f"expected {latitude:g}, {longitude:g} ± {tolerance_degrees:g}°")


@ADAPTER.check("planet_is")
def planet_is(ctx: CheckContext, planet: str) -> tuple[bool, str]:
    """The observer stands on ``planet``."""
    place = ctx.probe("status")["location"]
    return place["planet"].lower() == planet.lower(), f"observer on {place['planet']}, expected {planet}"


@ADAPTER.check("fov_between")
def fov_between(ctx: CheckContext, min_degrees: float, max_degrees: float) -> tuple[bool, str]:
    """The field of view is between ``min_degrees`` and ``max_degrees``."""
    fov = ctx.probe("status")["fov"]
    return min_degrees <= fov <= max_degrees, f"field of view {fov:.4g}°, expected {min_degrees:g}..{max_degrees:g}°"


@ADAPTER.check("selected_object")
def selected_object(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The selected object is ``name`` (English or localized name, case-insensitive)."""
    info = ctx.probe("selected")
    if info is None:
        return False, f"nothing is selected, expected {name!r}"
    return name.strip().lower() in _names(info), f"selected {info.get('name')!r}, expected {name!r}"


@ADAPTER.check("nothing_selected")
def nothing_selected(ctx: CheckContext) -> tuple[bool, str]:
    """No object is selected."""
    info = ctx.probe("selected")
    return info is None, "nothing is selected" if info is None else f"{info.get('name')!r} is selected"


@ADAPTER.check("flags")
def flags(ctx: CheckContext, values: dict) -> tuple[bool, str]:
    """Each named boolean property (e.g. ``ConstellationMgr.linesDisplayed``) has the given value."""
    live = ctx.probe("flags")
    wrong = {name: live.get(name, "missing") for name, want in values.items() if live.get(name) is not want}
    return not wrong, "all flags as expected" if not wrong else f"flags not as expected: {wrong}, wanted {values}"


@ADAPTER.check("window_open")
def window_open(ctx: CheckContext, window: str, open: bool = True) -> tuple[bool, str]:
    """Stellarium's dialog ``window`` (see WINDOWS) is open (or closed with ``open=False``)."""
    if window not in WINDOWS:
        return False, f"unknown window {window!r}; known: {sorted(WINDOWS)}"
    shown = ctx.probe("flags").get(WINDOWS[window])
    return shown is open, f"{window} window {'open' if shown else 'closed'}, expected {'open' if open else 'closed'}"


@ADAPTER.check("property_equals")
def property_equals(ctx: CheckContext, name: str, value: Any) -> tuple[bool, str]:
    """Stellarium's property ``name`` equals ``value`` (strings case-insensitive)."""
    live = ctx.probe("property", name=name)
    same = live.lower() == str(value).lower() if isinstance(live, str) else live == value
    return same, f"{name} = {live!r}, expected {value!r}"


@ADAPTER.check("view_near")
def view_near(ctx: CheckContext, azimuth: float, altitude: float, tolerance_degrees: float = 2.0) -> tuple[bool, str]:
    """The view centre points within ``tolerance_degrees`` of (azimuth from north, altitude)."""
    live = ctx.probe("view")
    off = _angle_between(live["azimuth"], live["altitude"], azimuth, altitude)
    return off <= tolerance_degrees, (f"view az {live['azimuth']:.2f}° alt {live['altitude']:.2f}°, "
                                      f"{off:.2f}° from the expected az {azimuth:g}° alt {altitude:g}°")


@ADAPTER.check("view_toward_object")
def view_toward_object(ctx: CheckContext, name: str, tolerance_degrees: float = 2.0) -> tuple[bool, str]:
    """The view centre points within ``tolerance_degrees`` of the object ``name`` (where it is now)."""
    info = ctx.probe("object_info", target=name)
    if info is None:
        return False, f"Stellarium does not know {name!r}"
    live = ctx.probe("view")
    off = _angle_between(live["azimuth"], live["altitude"], float(info["azimuth"]), float(info["altitude"]))
    return off <= tolerance_degrees, f"view is {off:.2f}° from {name}, expected within {tolerance_degrees:g}°"


def _object_at_reset(ctx: CheckContext, name: str, **_: Any) -> dict[str, Any] | None:
    """Stellarium's data for ``name`` right after setup, before the agent acts."""
    info = ctx.probe("object_info", target=name)
    return dict(info) if info is not None else None


@ADAPTER.check("answer_object_value", at_reset=_object_at_reset)
def answer_object_value(ctx: CheckContext, name: str, field: str, tolerance: float) -> tuple[bool, str]:
    """The agent answered with Stellarium's value of ``field`` for object ``name`` (± tolerance),
    as it was when the episode began: changing the time or place afterwards does not move the truth.
    The answer may carry units or a degree sign (``0.72 mag``)."""
    if ctx.answer is None:
        return False, "no answer was given"
    info = ctx.at_reset
    if info is None or to_number(info.get(field)) is None:
        return False, f"Stellarium had no numeric {field!r} for {name!r} at the start"
    truth, given = to_number(info[field]), to_number(ctx.answer)
    if given is None or truth is None:
        return False, f"the answer {ctx.answer!r} is not a number"
    return abs(given - truth) <= tolerance, f"answer {given:g}, Stellarium said {field} = {truth:.4g} (± {tolerance:g})"


@ADAPTER.check("time_paused")
def time_paused(ctx: CheckContext) -> tuple[bool, str]:
    """The clock is paused."""
    rate = ctx.probe("status")["time_rate"]
    return rate == 0, f"clock rate {rate:g} s/s, expected paused"


@ADAPTER.check("answer_above_horizon", at_reset=_object_at_reset)
def answer_above_horizon(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The agent answered yes if object ``name`` was above the horizon when the episode began
    (per Stellarium), else no; ``yes``/``Yes.``/``y``/``true`` and ``no``/``No.``/``n``/``false`` are read."""
    if ctx.answer is None:
        return False, "no answer was given"
    info = ctx.at_reset
    if info is None:
        return False, f"Stellarium did not know {name!r} at the start"
    truth = "yes" if float(info["altitude"]) > 0 else "no"
    given = {"y": "yes", "true": "yes", "n": "no", "false": "no"}.get(word := ctx.answer.strip().rstrip(".!").lower(),
                                                                       word)
    return given == truth, f"answer {ctx.answer!r}; {name} was at altitude {float(info['altitude']):.1f}°, so {truth!r}"


@ADAPTER.check("answer_constellation", at_reset=_object_at_reset)
def answer_constellation(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The agent named the constellation object ``name`` was in when the episode began (Stellarium's
    IAU name, abbreviation or full name, case-insensitive)."""
    if ctx.answer is None:
        return False, "no answer was given"
    info = ctx.at_reset
    if info is None or not info.get("iauConstellation"):
        return False, f"Stellarium had no constellation for {name!r} at the start"
    abbreviation = str(info["iauConstellation"]).strip()
    accepted = {abbreviation.lower(), CONSTELLATIONS.get(abbreviation, abbreviation).lower()}
    given = ctx.answer.strip().rstrip(".").lower()
    return given in accepted, f"answer {ctx.answer!r}; {name} was in {sorted(accepted)}"
