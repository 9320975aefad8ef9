"""Celestia on the desktop, driven and read through Celestia's own Lua (CELX) scripting.

Celestia has no network API. Each launch writes a copy of the installed
``celestia.cfg`` into the fresh HOME with two documented directives changed:
``LuaHook`` loads our bridge (:data:`BRIDGE_SCRIPT`, fixed Lua text) at start-up,
whose ``tick`` callback runs every frame, and ``ScriptSystemAccessPolicy "allow"``
gives it Lua's ``io``/``os`` libraries. The bridge polls
``~/.sciboard-celestia/request`` and answers in ``.../response``: one command per
request, built here from validated values (never taken from a task verbatim),
answered as ``key=value`` lines. No patched Celestia is needed.

Celestia is not packaged for Debian 12, so this module was written against
Celestia's documented interfaces and has not run against a live Celestia here
(see docs/apps/celestia.md); everything that does not need Celestia is
unit-tested.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Any

from sciboard_guest.apps import AppContext, AppError, BadArgument, GuestApp, visible_windows

SYSTEM_CONFIG = Path("/usr/share/celestia/celestia.cfg")
BRIDGE_DIR = ".sciboard-celestia"
BRIDGE_TIMEOUT = 10.0
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 '()+\-/.]{0,59}")
#: Celestia's render flags (celx ``celestia:getrenderflags`` keys) tasks may set or check.
RENDER_FLAGS = ("orbits", "constellations", "boundaries", "grid", "ecliptic", "galaxies", "nebulae",
                "atmospheres", "cloudmaps", "nightmaps", "markers", "planets", "stars", "comettails")
#: Celestia's label flags (celx ``celestia:getlabelflags`` keys).
LABEL_FLAGS = ("planets", "moons", "stars", "constellations", "galaxies", "spacecraft", "asteroids",
               "comets", "locations", "nebulae", "openclusters", "dwarfplanets", "minormoons")
#: The state every episode starts from: looking at Earth from near it, clock running in real time.
BASELINE: dict[str, Any] = {"select": "Sol/Earth", "time_jd": 2460599.3333333335, "timescale": 1.0,
            "render_on": ("planets", "stars", "galaxies", "nebulae", "atmospheres", "cloudmaps", "nightmaps"),
            "render_off": ("orbits", "constellations", "boundaries", "grid", "ecliptic", "markers"),
            "label_off": LABEL_FLAGS}

#: The bridge: a loop in Celestia's Lua (CELX) that answers our file-based requests.
BRIDGE_SCRIPT = r"""-- SciBoard Gym bridge for Celestia: a Lua hook (celestia.cfg LuaHook) whose tick()
-- answers one command per request file. Needs ScriptSystemAccessPolicy "allow" for io/os.
local dir = os.getenv("HOME") .. "/.sciboard-celestia/"

local function line(out, key, value) out[#out + 1] = key .. "=" .. tostring(value) end

local function flags(out, prefix, tbl)
  for name, on in pairs(tbl) do line(out, prefix .. name, on) end
end

local function state(out)
  local obs = celestia:getobserver()
  local t = celestia:gettime()
  line(out, "time_tdb", string.format("%.8f", t))
  local u = celestia:tdbtoutc(t)
  line(out, "utc", string.format("%04d-%02d-%02dT%02d:%02d:%02d", u.year, u.month, u.day, u.hour, u.minute,
                                  math.floor(u.seconds)))
  line(out, "timescale", celestia:gettimescale())
  line(out, "paused", celestia:getpaused())
  line(out, "fov_degrees", math.deg(obs:getfov()))
  local sel = celestia:getselection()
  if sel ~= nil and sel:type() ~= "null" then
    line(out, "selection", sel:name())
    line(out, "selection_type", sel:type())
    line(out, "selection_radius_km", sel:radius())
    line(out, "distance_km", obs:getposition():distanceto(sel:getposition(t)))
  end
  flags(out, "render.", celestia:getrenderflags())
  flags(out, "label.", celestia:getlabelflags())
end

local function find(name)
  local obj = celestia:find(name)
  if obj == nil or obj:type() == "null" then error("unknown object " .. name) end
  return obj
end

local function run(cmd, arg, out)
  if cmd == "state" then state(out)
  elseif cmd == "select" then celestia:select(find(arg)); state(out)
  elseif cmd == "unselect" then celestia:select(nil); state(out)
  elseif cmd == "goto" then local obj = find(arg); celestia:select(obj)
    celestia:getobserver():gotodistance(obj, 6 * obj:radius(), 0); state(out)
  elseif cmd == "settime" then celestia:settime(tonumber(arg)); state(out)
  elseif cmd == "timescale" then celestia:settimescale(tonumber(arg)); celestia:setpaused(false); state(out)
  elseif cmd == "render" then local name, on = arg:match("^(%w+) (%a+)$")
    celestia:setrenderflags({[name] = (on == "true")}); state(out)
  elseif cmd == "label" then local name, on = arg:match("^(%w+) (%a+)$")
    celestia:setlabelflags({[name] = (on == "true")}); state(out)
  else error("unknown command " .. cmd) end
end

local hook = {}

function hook:tick(dt)
  local f = io.open(dir .. "request", "r")
  if f == nil then return false end
  local id = f:read("*l"); local cmd = f:read("*l"); local arg = f:read("*l") or ""
  f:close(); os.remove(dir .. "request")
  local out = {}
  line(out, "id", id)
  local ok, err = pcall(run, cmd, arg, out)
  if not ok then out = {}; line(out, "id", id); line(out, "error", err) end
  local w = io.open(dir .. "response.tmp", "w"); w:write(table.concat(out, "\n"), "\n"); w:close()
  os.rename(dir .. "response.tmp", dir .. "response")
  return false
end

celestia:setluahook(hook)
"""


def build_config(system_text: str, bridge_path: str) -> str:
    """The installed celestia.cfg with our LuaHook and ScriptSystemAccessPolicy directives."""
    if not re.search(r"Configuration\s*\{", system_text) or "}" not in system_text:
        raise AppError("celestia.cfg does not look like Celestia's configuration (no 'Configuration {' block)")
    if '"' in bridge_path or "\n" in bridge_path:
        raise AppError(f"unusable bridge path {bridge_path!r}")
    kept = [ln for ln in system_text.splitlines()
            if not re.match(r"\s*(LuaHook|ScriptSystemAccessPolicy)\b", ln)]
    text = "\n".join(kept)
    end = text.rindex("}")
    extra = f'  LuaHook "{bridge_path}"\n  ScriptSystemAccessPolicy "allow"\n'
    return text[:end] + extra + text[end:] + "\n"


def build_request(request_id: int, command: str, argument: str = "") -> str:
    """The request file for one bridge command (validated: known command, safe argument)."""
    if command in ("state", "unselect"):
        if argument:
            raise BadArgument(f"{command} takes no argument")
    elif command in ("select", "goto"):
        check_name(argument)
    elif command in ("settime", "timescale"):
        value = float(argument)
        if not math.isfinite(value) or (command == "timescale" and abs(value) > 1e9) or \
                (command == "settime" and not 0 < value < 1e8):
            raise BadArgument(f"{command}: value {argument!r} out of range")
    elif command in ("render", "label"):
        name, _, on = argument.partition(" ")
        known = RENDER_FLAGS if command == "render" else LABEL_FLAGS
        if name not in known or on not in ("true", "false"):
            raise BadArgument(f"{command}: expected '<flag> true|false' with a flag of {known}, got {argument!r}")
    else:
        raise BadArgument(f"unknown bridge command {command!r}")
    return f"{int(request_id)}\n{command}\n{argument}\n"


def parse_response(text: str, request_id: int) -> dict[str, Any]:
    """A bridge answer (``key=value`` lines) as a dict; raises AppError on an error or a stale answer."""
    values: dict[str, Any] = {}
    for raw in text.splitlines():
        key, sep, value = raw.partition("=")
        if not sep:
            continue
        values[key.strip()] = value.strip() if key.strip() == "id" else _value(value.strip())
    if values.get("id") != str(request_id):
        raise AppError(f"Celestia's bridge answered request {values.get('id')!r}, expected {request_id}")
    if "error" in values:
        raise AppError(f"Celestia refused the command: {values['error']}")
    state: dict[str, Any] = {"render": {}, "label": {}}
    for key, value in values.items():
        group, dot, name = key.partition(".")
        if dot and group in ("render", "label"):
            state[group][name] = value
        elif key != "id":
            state[key] = value
    return state


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def check_name(name: Any) -> str:
    """An object name or Celestia path we pass on ('Mars', 'Sol/Earth/Moon', 'Titan')."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadArgument(f"object name must be 1-60 characters of letters, digits, spaces and '()+-/., got {name!r}")
    return name


def prepare_home(home: Path) -> None:
    """Write the bridge script and our celestia.cfg into the fresh HOME."""
    try:
        system_text = SYSTEM_CONFIG.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise AppError(f"Celestia's configuration is missing ({SYSTEM_CONFIG}): {err}") from None
    folder = home / BRIDGE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bridge.lua").write_text(BRIDGE_SCRIPT)
    (folder / "celestia.cfg").write_text(build_config(system_text, str(folder / "bridge.lua")))


APP = GuestApp(
    name="celestia",
    argv=["celestia-qt", "--nosplash", "--conf", "{home}/" + BRIDGE_DIR + "/celestia.cfg"],
    env={"LIBGL_ALWAYS_SOFTWARE": "1", "QT_QPA_PLATFORM": "xcb"},
    install_hint=("Celestia is not packaged for Debian 12: install Celestia 1.7 (its Qt front end, "
                  "celestia-qt, with data in /usr/share/celestia) from https://celestiaproject.space "
                  "or your distribution, then re-run."),
    ready_timeout=120.0,
    data_files=(str(SYSTEM_CONFIG),),
    prepare=prepare_home,
    settle_quiet=0.3,
)


def call(ctx: AppContext, command: str, argument: str = "", timeout: float = BRIDGE_TIMEOUT) -> dict[str, Any]:
    """Send one command to the bridge and return the state it reports."""
    folder = ctx.home / BRIDGE_DIR
    request_id = ctx.state["next_id"] = ctx.state.get("next_id", 0) + 1
    text = build_request(request_id, command, argument)
    response = folder / "response"
    response.unlink(missing_ok=True)
    tmp = folder / "request.tmp"
    tmp.write_text(text)
    os.replace(tmp, folder / "request")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if response.exists():
            return parse_response(response.read_text(errors="replace"), request_id)
        time.sleep(0.05)
    raise AppError("Celestia's bridge script does not answer (is ScriptSystemAccessPolicy honoured?)")


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        if visible_windows(ctx, "celestia"):
            try:
                call(ctx, "state", timeout=2.0)
            except AppError:
                pass
            else:
                _apply_baseline(ctx)
                ctx.settle(quiet=0.3, timeout=10.0)
                return
        time.sleep(0.2)
    raise AppError("Celestia did not become ready in time (no window or no answer from the bridge script)")


def _apply_baseline(ctx: AppContext) -> None:
    for name in BASELINE["render_on"]:
        call(ctx, "render", f"{name} true")
    for name in BASELINE["render_off"]:
        call(ctx, "render", f"{name} false")
    for name in BASELINE["label_off"]:
        call(ctx, "label", f"{name} false")
    call(ctx, "settime", repr(BASELINE["time_jd"]))
    call(ctx, "timescale", repr(BASELINE["timescale"]))
    call(ctx, "goto", BASELINE["select"])


@APP.restore
def _restore(ctx: AppContext) -> None:
    """Back to the start state in place (flags, time, clock rate, view on Earth)."""
    _apply_baseline(ctx)
    ctx.settle(quiet=0.3, timeout=5.0)


@APP.probe("state")
def state(ctx: AppContext) -> dict[str, Any]:
    """Time (TDB JD, UTC), clock rate, selection and distance to it, fov, render and label flags."""
    return call(ctx, "state")


@APP.setup("select_object")
def select_object(ctx: AppContext, name: str) -> None:
    """Select an object by name or path ('Mars', 'Sol/Jupiter/Io')."""
    call(ctx, "select", name)


@APP.setup("go_to")
def go_to(ctx: AppContext, name: str) -> None:
    """Select an object and move the observer close to it."""
    call(ctx, "goto", name)


@APP.setup("set_time")
def set_time(ctx: AppContext, jd: float) -> None:
    """Set the simulation time (Julian date, TDB)."""
    call(ctx, "settime", repr(float(jd)))


@APP.setup("set_timescale")
def set_timescale(ctx: AppContext, timescale: float) -> None:
    """Set the clock rate (simulated seconds per real second)."""
    call(ctx, "timescale", repr(float(timescale)))


@APP.setup("set_render_flag")
def set_render_flag(ctx: AppContext, name: str, value: bool) -> None:
    """Turn one of Celestia's render flags (orbits, constellations, grid...) on or off."""
    call(ctx, "render", f"{name} {'true' if value else 'false'}")


@APP.setup("set_label_flag")
def set_label_flag(ctx: AppContext, name: str, value: bool) -> None:
    """Turn one of Celestia's label flags (planets, moons, stars...) on or off."""
    call(ctx, "label", f"{name} {'true' if value else 'false'}")
