"""Stellarium on the desktop: launch, readiness, in-place reset, setup steps and state probes.

All state goes through Stellarium's RemoteControl plugin (its documented HTTP API):
``/api/main/status`` (time, location, field of view), ``/api/main/view`` (view
direction), ``/api/objects/info`` (the selected object), ``/api/stelproperty/list``
and ``/set`` (display flags, dialog visibility). Each launch writes a fresh
``~/.stellarium/config.ini`` with the plugin on a free port and a random password,
and with the frame rate capped so an idle sky costs little CPU.

Stellarium 0.22's plugin listens on all interfaces (it has no bind-address
setting); the per-launch password is what keeps other hosts out.
"""

from __future__ import annotations

import base64
import configparser
import io
import json
import math
import re
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sciboard_guest.apps import AppContext, AppError, BadArgument, GuestApp, slowness, stretched, visible_windows

DEFAULT_CONFIG = Path("/usr/share/stellarium/data/default_cfg.ini")
#: Idle / interactive frame rates. Stellarium shows an input's effect only at its next idle-rate frame
#: (and a 1920x1080 llvmpipe frame takes up to ~1 s on a busy machine), so the guest's settle trusts an
#: unchanged screen only after FIRST_CHANGE_WAIT; once frames change it wants SETTLE_QUIET without a
#: changed frame. A transition (the ground or the atmosphere fading) draws its frames at the idle rate, one
#: every 0.5 s, so SETTLE_QUIET is longer than that; the idle frames that change nothing do not count
#: (``redraws_unchanged``). A slow guest (a VM without KVM) draws its idle frames :func:`slowness` times
#: less often (see :func:`idle_fps`), and its settle waits stretch as much.
MIN_FPS, MAX_FPS = 2, 5
SETTLE_QUIET = 0.7
FIRST_CHANGE_WAIT = 1.6
UNIX_EPOCH_JD = 2440587.5
SECONDS_PER_DAY = 86400.0
#: The longest a RemoteControl call waits, stretched by the guest's slowness (:func:`stretched`). A call
#: is answered between two frames of Stellarium's main loop; in a VM without KVM a frame can take most
#: of a minute (measured: 52 s once, zoomed onto a planet, where calls took 5 s before and after).
REMOTE_TIMEOUT = 15.0
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .'()+\-]{0,59}")
#: Properties an in-place reset never touches: the plugin that serves us, and read-only state.
#: worldAdaptationLuminance follows the scene's brightness (the eye's adaptation) by itself.
_NOT_RESTORED = ("RemoteControl.", "actionShow_Remote_Control", "StelToneReproducer.worldAdaptationLuminance")


@dataclass(frozen=True)
class Baseline:
    """The state every episode starts from."""

    location: str = "Paris, Western Europe"
    utc: str = "2024-10-15T20:00:00"
    fov: float = 60.0
    azimuth: float = 180.0
    altitude: float = 20.0
    flags: tuple[tuple[str, Any], ...] = (("StelCore.flagUseCTZ", True), ("StelCore.currentTimeZone", "UTC"))


BASELINE = Baseline()


def idle_fps() -> float:
    """Stellarium's idle frame rate: MIN_FPS, divided by the guest's slowness.

    Under TCG a software-rendered frame costs the guest's CPU seconds: at MIN_FPS it would draw
    without pause, and with every frame an X DAMAGE event no quiet window (stretched there too)
    would ever pass. Fewer idle frames leave the gaps between them longer than the quiet window.
    """
    return MIN_FPS / slowness()


def config_overrides(port: int, password: str) -> dict[str, dict[str, str]]:
    """The settings we change in Stellarium's default config (section -> key -> value)."""
    plugins = {name: "false" for name in ("Oculars", "Satellites", "SolarSystemEditor", "Exoplanets",
                                          "MeteorShowers", "Novae", "FOV")}
    return {
        "video": {"fullscreen": "false", "minimum_fps": f"{idle_fps():g}", "maximum_fps": str(MAX_FPS)},
        "plugins_load_at_startup": {**plugins, "RemoteControl": "true"},
        "RemoteControl": {"autostart": "true", "port": str(port), "use_password": "true", "password": password,
                          "enable_cors": "false"},
        "search": {"flag_search_online": "false"},
        "stars": {"flag_star_twinkle": "false"},
        # No FPS counter: its text changes every frame, so the screen would never look settled.
        "gui": {"auto_hide_horizontal_toolbar": "false", "auto_hide_vertical_toolbar": "false", "flag_show_fps": "false"},
        "init_location": {"location": BASELINE.location},
        "navigation": {"startup_time_mode": "Preset", "preset_sky_time": f"{jd_from_utc(BASELINE.utc):.6f}",
                       "init_fov": f"{BASELINE.fov:g}"},
        "main": {"check_requirements": "false"},
    }


def build_config(default_text: str, port: int, password: str) -> str:
    """Stellarium's default config text with our overrides applied (keys keep their case)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(default_text)
    for section, values in config_overrides(port, password).items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def read_remote_settings(config_text: str) -> tuple[int, str]:
    """(port, password) of the RemoteControl plugin from a config text."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(config_text)
    try:
        return int(parser.get("RemoteControl", "port")), parser.get("RemoteControl", "password")
    except (configparser.Error, ValueError) as err:
        raise AppError(f"Stellarium's config has no usable RemoteControl settings: {err}") from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        return int(sock.getsockname()[1])


def prepare_home(home: Path) -> None:
    """Write ~/.stellarium/config.ini: RemoteControl on a free port with a random password."""
    try:
        default_text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    except OSError as err:
        raise AppError(f"Stellarium's default config is missing ({DEFAULT_CONFIG}): {err}") from None
    folder = home / ".stellarium"
    # A user data folder, so Stellarium keeps its recent-search list here and not (as root) in
    # /usr/share; the list is kept empty so one episode's searches do not show in the next.
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "recentObjectSearches.json").write_text(
        json.dumps({"recentObjectSearches": {"maxSize": 0, "recentList": []}}))
    (folder / "config.ini").write_text(build_config(default_text, _free_port(), secrets.token_urlsafe(18)))


APP = GuestApp(
    name="stellarium",
    argv=["stellarium"],
    env={"LIBGL_ALWAYS_SOFTWARE": "1", "QT_QPA_PLATFORM": "xcb"},
    install_hint="Install it with: apt-get install stellarium (scripts/install.sh does this).",
    ready_timeout=120.0,
    prepare=prepare_home,
    settle_quiet=SETTLE_QUIET,
    first_change_wait=FIRST_CHANGE_WAIT,
    redraws_unchanged=True,
)


# --- pure conversions (unit-tested) ------------------------------------------------

def jd_from_utc(utc: str) -> float:
    """Julian day of an ISO 8601 UTC time ('2024-10-15T20:00:00', optional 'Z')."""
    if not isinstance(utc, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?)?Z?", utc):
        raise BadArgument(f"time must be ISO 8601 UTC like 2024-10-15T20:00:00, got {utc!r}")
    moment = datetime.fromisoformat(utc.rstrip("Z").replace(" ", "T")).replace(tzinfo=UTC)
    return moment.timestamp() / SECONDS_PER_DAY + UNIX_EPOCH_JD


def utc_from_jd(jd: float) -> str:
    """ISO 8601 UTC text (to the second) of a Julian day; 'JD <value>' outside years 1..9999."""
    try:
        moment = datetime.fromtimestamp(round((jd - UNIX_EPOCH_JD) * SECONDS_PER_DAY), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return f"JD {jd:.6f}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def parse_vector(text: Any) -> tuple[float, float, float]:
    """Stellarium's vector text '[x, y, z]' as three floats."""
    try:
        values = json.loads(text) if isinstance(text, str) else text
        x, y, z = (float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise AppError(f"not a 3-vector from Stellarium: {text!r}") from err
    return x, y, z


def altaz_vector(azimuth: float, altitude: float) -> tuple[float, float, float]:
    """Stellarium's horizontal frame (x south, y east, z zenith) from azimuth (from north, eastwards)."""
    az, alt = math.radians(azimuth), math.radians(altitude)
    return (-math.cos(alt) * math.cos(az), math.cos(alt) * math.sin(az), math.sin(alt))


def vector_azalt(vector: tuple[float, float, float]) -> tuple[float, float]:
    """(azimuth from north eastwards, altitude) in degrees of a horizontal-frame vector."""
    x, y, z = vector
    norm = math.sqrt(x * x + y * y + z * z) or 1.0
    azimuth = math.degrees(math.atan2(y, -x)) % 360.0
    return azimuth, math.degrees(math.asin(max(-1.0, min(1.0, z / norm))))


def vector_radec(vector: tuple[float, float, float]) -> tuple[float, float]:
    """(right ascension in hours, declination in degrees) of an equatorial vector."""
    x, y, z = vector
    norm = math.sqrt(x * x + y * y + z * z) or 1.0
    return (math.degrees(math.atan2(y, x)) % 360.0) / 15.0, math.degrees(math.asin(max(-1.0, min(1.0, z / norm))))


def check_name(name: Any, what: str = "object name") -> str:
    """An object or location name we are willing to pass on (letters, digits, spaces, . ' ( ) + -)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadArgument(f"{what} must be 1-60 characters of letters, digits, spaces and .'()+-, got {name!r}")
    return name


def select_script(name: str) -> str:
    """The Stellarium script that selects ``name`` ('' clears the selection); ``name`` is checked first."""
    if name:
        check_name(name)
    return f"core.selectObjectByName({json.dumps(name)}, true);"


# --- the RemoteControl client -------------------------------------------------------

class RemoteControl:
    """A small client of Stellarium's RemoteControl HTTP API (basic auth, empty user)."""

    def __init__(self, port: int, password: str, timeout: float = 10.0):
        self.base = f"http://127.0.0.1:{port}/api/"
        self.auth = "Basic " + base64.b64encode(f":{password}".encode()).decode()
        self.timeout = timeout

    def _call(self, path: str, params: dict[str, Any] | None, post: bool) -> bytes:
        query = urllib.parse.urlencode({k: _wire(v) for k, v in (params or {}).items()})
        url = self.base + path + ("" if post or not query else "?" + query)
        request = urllib.request.Request(url, data=query.encode() if post else None, method="POST" if post else "GET",
                                         headers={"Authorization": self.auth})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as err:
            raise RemoteError(err.code, err.read().decode(errors="replace").strip()) from None
        except (OSError, urllib.error.URLError) as err:
            raise AppError(f"Stellarium's RemoteControl does not answer: {err}") from None

    def get(self, path: str, **params: Any) -> Any:
        raw = self._call(path, params, post=False)
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    def post(self, path: str, **params: Any) -> str:
        text = self._call(path, params, post=True).decode(errors="replace").strip()
        if text.startswith("error"):
            raise AppError(f"Stellarium refused {path}: {text}")
        return text


class RemoteError(AppError):
    """An HTTP error status from the RemoteControl API."""

    def __init__(self, status: int, message: str):
        super().__init__(f"RemoteControl answered {status}: {message}")
        self.status = status


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


def _rc(ctx: AppContext) -> RemoteControl:
    if "rc" not in ctx.state:
        try:
            text = (ctx.home / ".stellarium" / "config.ini").read_text(encoding="utf-8")
        except OSError as err:
            raise AppError(f"Stellarium's config is missing: {err}") from None
        ctx.state["rc"] = RemoteControl(*read_remote_settings(text), timeout=stretched(REMOTE_TIMEOUT))
    return ctx.state["rc"]


# --- readiness and the baseline -----------------------------------------------------

def _window_visible(ctx: AppContext) -> bool:
    return bool(visible_windows(ctx, "stellarium"))


#: The dialogs the tasks open. Stellarium builds a dialog the first time it is shown, which in a slow
#: guest (a VM without KVM) takes longer than the step's settle waits: the click after the key that
#: opens it would land on the sky. A slow guest builds them once at launch, before its snapshot.
PREBUILT_DIALOGS = ("Search", "Location", "DateTime", "SkyView", "Configuration", "AstroCalc")


def _prebuild_dialogs(rc: RemoteControl) -> None:
    """Show and hide each of PREBUILT_DIALOGS (each call returns once Stellarium's main loop ran it)."""
    for dialog in PREBUILT_DIALOGS:
        for _ in range(2):
            rc.post("stelaction/do", id=f"actionShow_{dialog}_Window_Global")


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    rc = _rc(ctx)
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        if _window_visible(ctx):
            try:
                rc.get("main/status")
            except AppError:
                pass
            else:
                break
        time.sleep(0.2)
    else:
        raise AppError("Stellarium did not become ready in time (no window or no RemoteControl answer)")
    if slowness() > 1:
        _prebuild_dialogs(rc)
    for name, value in BASELINE.flags:
        rc.post("stelproperty/set", id=name, value=value)
    _apply_baseline(ctx)
    ctx.state["props"] = {name: item["value"] for name, item in _property_list(ctx).items()
                          if _restorable(name, item)}
    ctx.settle(quiet=SETTLE_QUIET, timeout=10.0, first_change=FIRST_CHANGE_WAIT, changed_frames=True)


def _restorable(name: str, item: dict[str, Any]) -> bool:
    return bool(item.get("isWritable")) and not name.startswith(_NOT_RESTORED)


def _apply_baseline(ctx: AppContext, timeout: float = 15.0) -> None:
    """Clock paused at the baseline time, baseline place, nothing selected, baseline view.

    Sets only what differs (each call waits for Stellarium's main loop), and repeats until a
    round finds nothing to change: a view animation still running can undo a first attempt."""
    deadline = time.monotonic() + timeout * slowness()
    while (changed := _baseline_round(ctx)) is not None:
        if time.monotonic() > deadline:
            raise AppError(f"Stellarium did not reach the start state: {changed}")
        time.sleep(0.2)


def _baseline_round(ctx: AppContext) -> str | None:
    """One pass towards the baseline; returns what it had to change (None: already there)."""
    rc, changed = _rc(ctx), []
    if selected(ctx) is not None:
        _run_script(ctx, select_script(""))
        changed.append("selection")
    state, jd = status(ctx), jd_from_utc(BASELINE.utc)
    if state["location"]["name"] != BASELINE.location.split(",")[0]:
        rc.post("location/setlocationfields", id=BASELINE.location)
        changed.append(f"location {state['location']['name']!r}")
    if state["jd"] != jd or state["time_rate"] != 0:
        rc.post("main/time", time=repr(jd), timerate=0)
        changed.append(f"time {state['utc']} at rate {state['time_rate']}")
    if abs(state["fov"] - BASELINE.fov) > 0.01:
        rc.post("main/fov", fov=BASELINE.fov)
        changed.append(f"field of view {state['fov']}")
    direction = view(ctx)
    az, alt = direction["azimuth"], direction["altitude"]
    if abs(((az - BASELINE.azimuth + 180) % 360) - 180) > 0.05 or abs(alt - BASELINE.altitude) > 0.2:
        rc.post("main/view", altAz=list(altaz_vector(BASELINE.azimuth, BASELINE.altitude)))
        changed.append(f"view direction az {az:.2f} alt {alt:.2f}")
    return ", ".join(changed) or None


def _wait_for(condition: Any, message: str, timeout: float) -> None:
    """Poll ``condition`` (None when met, else what is missing) until ``timeout`` (stretched on a slow guest)."""
    deadline = time.monotonic() + timeout * slowness()
    problem = condition()
    while problem is not None:
        if time.monotonic() > deadline:
            raise AppError(f"{message}: {problem}")
        time.sleep(0.1)
        problem = condition()


@APP.restore
def _restore(ctx: AppContext) -> None:
    """Put the running Stellarium back into its start state (dialogs, flags, time, place, view)."""
    try:
        wanted = ctx.state["props"]
        rc = _rc(ctx)
        rc.post("main/time", timerate=0)
        for _ in range(3):
            changed = _changed_properties(ctx, wanted)
            if not changed:
                break
            for name in changed:
                try:
                    rc.post("stelproperty/set", id=name, value=wanted[name])
                except AppError:
                    pass  # checked again on the next pass
        else:
            raise AppError(f"could not restore properties {changed[:5]}")
        _apply_baseline(ctx)
    except Exception as err:  # anything unexpected means: relaunch instead (logged to the guest's log)
        print(f"[stellarium] in-place reset failed, relaunching: {type(err).__name__}: {err}",
              file=sys.stderr, flush=True)
        raise err if isinstance(err, AppError) else AppError(f"in-place reset failed: {err}") from err


def _changed_properties(ctx: AppContext, wanted: dict[str, Any]) -> list[str]:
    live = _property_list(ctx)
    # Dialogs first, so closing them cannot undo a flag we just set.
    names = [n for n in wanted if n in live and live[n]["value"] != wanted[n]]
    return sorted(names, key=lambda n: (not n.endswith("_Window_Global"), n))


def _property_list(ctx: AppContext) -> dict[str, dict[str, Any]]:
    listing = _rc(ctx).get("stelproperty/list")
    if not isinstance(listing, dict):
        raise AppError("Stellarium's property list is unreadable")
    return listing


def _run_script(ctx: AppContext, code: str, timeout: float = 10.0) -> None:
    """Run one of OUR scripts (built from checked values) and wait until it has finished."""
    rc = _rc(ctx)
    _wait_for(lambda: None if not rc.get("scripts/status").get("scriptIsRunning") else "a script is running",
              "Stellarium is busy with a script", timeout)
    rc.post("scripts/direct", code=code)
    time.sleep(0.1)
    _wait_for(lambda: None if not rc.get("scripts/status").get("scriptIsRunning") else "still running",
              "our Stellarium script did not finish", timeout)


# --- probes ----------------------------------------------------------------------

@APP.probe("status")
def status(ctx: AppContext) -> dict[str, Any]:
    """Time (JD, UTC text, rate in seconds per second, seconds ahead of this desktop's clock), location,
    field of view and time zone."""
    raw = _rc(ctx).get("main/status")
    now = UNIX_EPOCH_JD + time.time() / SECONDS_PER_DAY
    try:
        clock, place = raw["time"], raw["location"]
        return {
            "jd": float(clock["jday"]),
            "utc": utc_from_jd(float(clock["jday"])),
            "time_rate": round(float(clock["timerate"]) * SECONDS_PER_DAY, 9),
            "seconds_from_now": round((float(clock["jday"]) - now) * SECONDS_PER_DAY, 3),
            "time_zone": clock.get("timeZone", ""),
            "location": {"name": place["name"], "region": place.get("region", ""), "planet": place["planet"],
                         "latitude": float(place["latitude"]), "longitude": float(place["longitude"]),
                         "altitude": float(place["altitude"])},
            "fov": float(raw["view"]["fov"]),
        }
    except (KeyError, TypeError, ValueError) as err:
        raise AppError(f"unexpected status from Stellarium: {err}") from None


@APP.probe("view")
def view(ctx: AppContext) -> dict[str, float]:
    """The view direction: azimuth/altitude (degrees) and J2000 right ascension (hours)/declination."""
    raw = _rc(ctx).get("main/view")
    if not isinstance(raw, dict):
        raise AppError(f"unexpected view direction from Stellarium: {raw!r}")
    azimuth, altitude = vector_azalt(parse_vector(raw.get("altAz")))
    ra, dec = vector_radec(parse_vector(raw.get("j2000")))
    return {"azimuth": azimuth, "altitude": altitude, "ra_hours": ra, "dec": dec}


def _object_info(ctx: AppContext, name: str | None) -> dict[str, Any] | None:
    params = {"format": "json"} | ({"name": name} if name else {})
    try:
        info = _rc(ctx).get("objects/info", **params)
    except RemoteError as err:
        if err.status == 404:
            return None
        raise
    if not isinstance(info, dict):
        raise AppError(f"unexpected object info from Stellarium: {str(info)[:200]}")
    return info


@APP.probe("selected")
def selected(ctx: AppContext) -> dict[str, Any] | None:
    """The selected object's info (name, type, coordinates, magnitude...) or None."""
    return _object_info(ctx, None)


@APP.probe("object_info")
def object_info(ctx: AppContext, target: str) -> dict[str, Any] | None:
    """Stellarium's info about the object ``target`` right now (None if it does not know it)."""
    return _object_info(ctx, check_name(target))


@APP.probe("flags")
def flags(ctx: AppContext) -> dict[str, bool]:
    """Every boolean Stellarium property (display flags, dialog visibility) by name."""
    return {name: item["value"] for name, item in _property_list(ctx).items() if isinstance(item.get("value"), bool)}


@APP.probe("property")
def property_value(ctx: AppContext, name: str) -> Any:
    """The value of one Stellarium property (e.g. StelCore.currentProjectionTypeKey)."""
    listing = _property_list(ctx)
    if name not in listing:
        raise BadArgument(f"Stellarium has no property {name!r}")
    return listing[name]["value"]


# --- setup steps -------------------------------------------------------------------

@APP.setup("set_time")
def set_time(ctx: AppContext, utc: str, rate: float = 0.0) -> None:
    """Set the simulation time (ISO UTC) and the clock rate in seconds per second (0 = paused)."""
    if not -1e7 <= rate <= 1e7:
        raise BadArgument("rate must be within ±1e7 seconds per second")
    jd = jd_from_utc(utc)
    _rc(ctx).post("main/time", time=repr(jd), timerate=rate / SECONDS_PER_DAY)
    _wait_for(lambda: None if abs(status(ctx)["jd"] - jd) < 1e-4 else "time not set", "could not set the time", 5.0)


@APP.setup("set_location")
def set_location(ctx: AppContext, location: str) -> None:
    """Move the observer to a place of Stellarium's list, e.g. 'Tokyo, Eastern Asia'."""
    name = check_name(location.split(",")[0], "location")
    _rc(ctx).post("location/setlocationfields", id=location)
    _wait_for(lambda: None if status(ctx)["location"]["name"] == name else "not there yet",
              f"could not move to {location!r}", 5.0)


@APP.setup("set_fov")
def set_fov(ctx: AppContext, degrees: float) -> None:
    """Set the field of view in degrees."""
    if not 0.001 <= degrees <= 360:
        raise BadArgument("degrees must be within 0.001..360")
    _rc(ctx).post("main/fov", fov=degrees)
    _wait_for(lambda: None if abs(status(ctx)["fov"] - degrees) < 0.01 else "zooming", "could not set the fov", 5.0)


@APP.setup("look_at")
def look_at(ctx: AppContext, azimuth: float, altitude: float) -> None:
    """Point the view at an azimuth (from north, eastwards) and altitude, in degrees."""
    if not -90 <= altitude <= 90:
        raise BadArgument("altitude must be within -90..90")
    _rc(ctx).post("main/view", altAz=list(altaz_vector(azimuth % 360.0, altitude)))


@APP.setup("select_object")
def select_object(ctx: AppContext, name: str) -> None:
    """Select (and point at) a sky object Stellarium knows, e.g. 'Mars' or 'M31'."""
    if _object_info(ctx, check_name(name)) is None:
        raise BadArgument(f"Stellarium does not know an object called {name!r}")
    _run_script(ctx, select_script(name))
    _wait_for(lambda: None if selected(ctx) is not None else "nothing selected", f"could not select {name!r}", 5.0)


@APP.setup("set_flag")
def set_flag(ctx: AppContext, name: str, value: bool) -> None:
    """Set a boolean display property, e.g. ConstellationMgr.linesDisplayed."""
    listing = _property_list(ctx)
    item = listing.get(name)
    if item is None or not isinstance(item.get("value"), bool) or not _restorable(name, item):
        raise BadArgument(f"{name!r} is not a writable boolean Stellarium property")
    _rc(ctx).post("stelproperty/set", id=name, value=value)
    _wait_for(lambda: None if flags(ctx).get(name) is value else "not yet", f"could not set {name}", 5.0)
