"""GRASS GIS on the desktop: launch, readiness, setup steps and state probes.

The wxGUI runs in single-window mode on the ``analysis`` mapset of a fresh copy
of the data (:mod:`sciboard_guest.apps.grass_data`) under the episode's HOME.

State is read through GRASS itself. The GUI holds the lock of ``analysis``, so
probes never start a GRASS session there: they run GRASS modules directly with
their own GISRC in a private probe database (``$HOME/.sciboard-probe``) whose
location links to the real mapsets and adds a ``probe`` mapset of its own. Maps
are read there as ``name@mapset`` with the region set to the map itself (the
user's computational region is never touched); the GUI mapset's region is read
with a second GISRC that names ``analysis`` (``g.region -g`` takes no lock).
What the GUI itself shows is read where it is reachable: its preferences file
(``~/.grass8/wx.json``), workspace files it saved, its command history, and its
windows on the accessibility bus.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from sciboard_guest.apps import (
    AppContext,
    AppError,
    AppNotInstalled,
    BadArgument,
    GuestApp,
    log_tail,
    x_connection,
    xdotool,
)
from sciboard_guest.apps import grass_data as data
from sciboard_guest.desktop import CLEAN_PATH

MAPSETS_LINKED = ("PERMANENT", data.USER_MAPSET)
PROBE_MAPSET = "probe"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")
_MAPSET = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
KINDS = ("raster", "vector", "region", "raster_3d", "group")

# Where the single-window GUI puts things at 1920x1080 (used by setup steps only).
CATALOG_RELOAD_MAPSET = (60, 121)
IDLE_TIMEOUT = 60.0


class GrassApp(GuestApp):
    """The app is started through the data launcher (Debian's Python), so check for GRASS itself."""

    def check_installed(self) -> None:
        if shutil.which("grass", path=CLEAN_PATH) is None:
            raise AppNotInstalled(f"{self.name} is not installed on this desktop (grass not found). "
                                  f"{self.install_hint}")


def _prepare(home: Path) -> None:
    """Before the start: a fresh copy of the cached data (built on first use) and the GUI's preferences."""
    try:
        cache = data.ensure_cache()
    except data.GrassError as err:
        raise AppError(f"could not build the GRASS data: {err}") from None
    data.install(cache, home)


APP = GrassApp(
    name="grass",
    argv=[data.SYSTEM_PYTHON, str(Path(data.__file__).resolve()), "gui"],
    env={"LIBGL_ALWAYS_SOFTWARE": "1", "GTK_OVERLAY_SCROLLING": "0"},
    install_hint="Install it with: apt-get install --no-install-recommends grass-core grass-gui "
                 "(scripts/install.sh does this).",
    ready_timeout=90.0,
    prepare=_prepare,
    # wxGTK repaints late on a busy machine: a shorter quiet period can end before a click's effect shows.
    settle_quiet=0.4,
)


# --- running GRASS modules for probes ------------------------------------------------

def _gisdbase(ctx: AppContext) -> Path:
    return ctx.home / "grassdata"


def _probe_db(ctx: AppContext) -> Path:
    """The private probe database: links to the real mapsets plus a ``probe`` mapset (made once)."""
    root = ctx.home / ".sciboard-probe"
    location = root / data.LOCATION
    real = _gisdbase(ctx) / data.LOCATION
    if not real.is_dir():
        raise AppError(f"the GRASS location is missing under {ctx.home} (was the app started?)")
    if not (location / PROBE_MAPSET / "WIND").is_file():
        location.mkdir(parents=True, exist_ok=True)
        probe = location / PROBE_MAPSET
        probe.mkdir(exist_ok=True)
        shutil.copyfile(real / "PERMANENT" / "DEFAULT_WIND", probe / "WIND")
        (probe / "VAR").write_text("DB_DRIVER: sqlite\n"
                                   "DB_DATABASE: $GISDBASE/$LOCATION_NAME/$MAPSET/sqlite/sqlite.db\n")
        (probe / "sqlite").mkdir(exist_ok=True)
    # Link every real mapset (users may create new ones) so name@mapset resolves.
    for mapset in real.iterdir():
        link = location / mapset.name
        if mapset.is_dir() and mapset.name != PROBE_MAPSET and not link.exists():
            link.symlink_to(mapset, target_is_directory=True)
    return root


def _env(ctx: AppContext, mapset: str = PROBE_MAPSET) -> dict[str, str]:
    root = _probe_db(ctx)
    gisrc = root / f"gisrc-{mapset}"
    if not gisrc.exists():
        data.write_gisrc(gisrc, root, data.LOCATION, mapset)
    return data.module_env(gisrc, {"HOME": str(root), "TMPDIR": str(root)})


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@APP.busy
def running_command(ctx: AppContext) -> bool:
    """Whether the GUI runs a GRASS command (from the console, a dialog or a map render) right now.

    In a slow guest a module can run for seconds after the key that started it; a step ends once it has
    finished, so the next input does not reach a console that is still busy.
    """
    return ctx.app_pid is not None and any(_children(gui) for gui in _children(ctx.app_pid))


def wait_idle(ctx: AppContext, timeout: float = IDLE_TIMEOUT) -> bool:
    """Wait until the GUI runs no GRASS command (its process has no children); False on timeout.

    The wxGUI runs every module (from the console, a dialog or a map render) as a child
    process, so state read while one runs would be half-written.
    """
    if ctx.app_pid is None:
        return True
    deadline = time.monotonic() + timeout
    while True:
        if not running_command(ctx):  # grass -> wxgui.py -> modules
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _grass(ctx: AppContext, argv: list[str], mapset: str = PROBE_MAPSET, stdin: str | None = None,
           timeout: float = 60.0) -> str:
    wait_idle(ctx)
    try:
        return data.run(_env(ctx, mapset), argv, stdin=stdin, timeout=timeout)
    except data.GrassError as err:
        raise AppError(str(err)) from None


def _check_name(name: str, what: str = "map name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadArgument(f"{what} {name!r} is not a valid GRASS name")
    return name


def _check_mapset(mapset: str) -> str:
    if not isinstance(mapset, str) or not _MAPSET.match(mapset) or mapset == PROBE_MAPSET:
        raise BadArgument(f"mapset {mapset!r} is not a valid mapset name")
    return mapset


def _qualified(ctx: AppContext, kind: str, name: str, mapset: str) -> str | None:
    """``name@mapset`` if that map exists (``mapset=""``: the GUI mapset, then PERMANENT), else None."""
    _check_name(name)
    element = {"raster": "cell", "vector": "vector", "region": "windows"}[kind]
    candidates = [_check_mapset(mapset)] if mapset else [data.USER_MAPSET, "PERMANENT"]
    for candidate in candidates:
        base = _gisdbase(ctx) / data.LOCATION / candidate / element / name
        if base.exists():
            return f"{name}@{candidate}"
    return None


def _require(ctx: AppContext, kind: str, name: str, mapset: str) -> str:
    found = _qualified(ctx, kind, name, mapset)
    if found is None:
        where = f"mapset {mapset}" if mapset else f"mapsets {data.USER_MAPSET} or PERMANENT"
        raise AppError(f"{kind} map {name!r} does not exist in {where}")
    return found


def _numbers(found: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in found.items():
        try:
            number = float(value)
        except ValueError:
            out[key] = value
        else:
            out[key] = int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return out


def _region_to(ctx: AppContext, qualified: str) -> None:
    _grass(ctx, ["g.region", f"raster={qualified}"])


# --- readiness -------------------------------------------------------------------

def _main_window(ctx: AppContext) -> list[str]:
    return xdotool(ctx, ["search", "--onlyvisible", "--name", r" - GRASS GIS$"]).split()


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    """The main window is up with its map display and console, the splash screen is gone; then the screen settles.

    The GUI shows its splash screen for a fixed 3 s and builds the main window behind it in less
    (about 1.3 s here), so the splash is closed as soon as the main window is built instead of waited out.
    The pointer is first put where a new desktop has it, in the middle of the screen (over the empty map
    display), so the last episode's pointer leaves no hover highlight or tooltip in the start screen.
    """
    ctx.perform({"name": "move", "x": ctx.screen.width // 2, "y": ctx.screen.height // 2})
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        if _main_window(ctx) and _main_frame_built(ctx):
            _close_splash(ctx)
            if _only_main_window(ctx):  # the main window was found built just above
                ctx.settle(quiet=0.4, timeout=8.0)
                return
        time.sleep(0.1)
    raise AppError(f"GRASS GIS did not become ready in time; its log ends with:\n{log_tail(ctx.app_log, 12)}")


def _gui_app(ctx: AppContext):
    apps = [a for a in ctx.a11y.apps() if a.name == "wxgui.py"]
    return apps[-1] if apps else None


def _main_frame(app: Any) -> Any:
    frames = [child for child in app.children if child.role in ("frame", "window", "dialog")]
    main = [frame for frame in frames if frame.name.endswith("GRASS GIS")]
    return main[0] if len(main) == 1 else None


def _main_frame_built(ctx: AppContext) -> bool:
    """The main window's map display toolbar is on the accessibility bus (the splash may still be up)."""
    app = _gui_app(ctx)
    frame = None if app is None else _main_frame(app)
    return frame is not None and any(True for _ in frame.find(role="push button", name="Render map", max_depth=14))


def _only_main_window(ctx: AppContext) -> bool:
    """The main window is the GUI's only top-level window (the splash screen is gone)."""
    app = _gui_app(ctx)
    if app is None:
        return False
    frames = [child for child in app.children if child.role in ("frame", "window", "dialog")]
    return len(frames) == 1 and _main_frame(app) is not None


def _close_splash(ctx: AppContext) -> None:
    """Ask the splash screen (the GUI's visible window without a title) to close, as its window manager would.

    The window gets WM_DELETE_WINDOW, which wxPython handles like the end of the splash's own timer.
    A window that has already gone is no error.
    """
    for wid in xdotool(ctx, ["search", "--onlyvisible", "--classname", "wxgui.py"]).split():
        if not xdotool(ctx, ["getwindowname", wid]).strip():
            _send_delete_window(ctx, int(wid))


def _send_delete_window(ctx: AppContext, wid: int) -> None:
    from Xlib import X
    from Xlib.error import CatchError
    from Xlib.protocol import event

    with x_connection(ctx.env) as x:
        window = x.create_resource_object("window", wid)
        message = event.ClientMessage(window=window, client_type=x.intern_atom("WM_PROTOCOLS"),
                                      data=(32, [x.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]))
        window.send_event(message, event_mask=X.NoEventMask, onerror=CatchError())
        x.sync()


# --- probes: maps -------------------------------------------------------------------

@APP.probe("maps")
def maps(ctx: AppContext, kind: str = "raster", mapset: str = data.USER_MAPSET) -> list[str]:
    """Names of the maps of ``kind`` (raster, vector, region, raster_3d, group) in ``mapset``."""
    if kind not in KINDS:
        raise BadArgument(f"kind must be one of {KINDS}")
    out = _grass(ctx, ["g.list", f"type={kind}", f"mapset={_check_mapset(mapset)}"])
    return sorted(line.strip() for line in out.splitlines() if line.strip())


@APP.probe("mapsets")
def mapsets(ctx: AppContext) -> list[str]:
    """The mapsets of the location (the GUI's database, not the probe's)."""
    location = _gisdbase(ctx) / data.LOCATION
    return sorted(p.name for p in location.iterdir() if (p / "WIND").is_file())


@APP.probe("raster_info")
def raster_info(ctx: AppContext, map: str, mapset: str = "") -> dict[str, Any]:
    """``r.info``: datatype, bounds, resolution, rows/cols, min/max, title, units, map type."""
    qualified = _require(ctx, "raster", map, mapset)
    found = _numbers(data.parse_key_values(_grass(ctx, ["r.info", "-g", f"map={qualified}"])))
    found.update(_numbers(data.parse_key_values(_grass(ctx, ["r.info", "-r", f"map={qualified}"]))))
    found.update(data.parse_key_values(_grass(ctx, ["r.info", "-e", f"map={qualified}"])))
    found["mapset"] = qualified.split("@")[1]
    return found


@APP.probe("raster_stats")
def raster_stats(ctx: AppContext, map: str, mapset: str = "", extended: bool = False) -> dict[str, Any]:
    """``r.univar`` over the map's own extent: n, null_cells, min, max, mean, stddev, sum (+ median, quartiles)."""
    qualified = _require(ctx, "raster", map, mapset)
    _region_to(ctx, qualified)
    flags = "-ge" if extended else "-g"
    return _numbers(data.parse_key_values(_grass(ctx, ["r.univar", flags, f"map={qualified}"])))


@APP.probe("raster_counts")
def raster_counts(ctx: AppContext, map: str, mapset: str = "") -> dict[str, int]:
    """Cell counts per value of an integer raster over its own extent (``r.stats -c``), nulls as "*"."""
    qualified = _require(ctx, "raster", map, mapset)
    _region_to(ctx, qualified)
    counts: dict[str, int] = {}
    for line in _grass(ctx, ["r.stats", "-c", f"input={qualified}", "separator=|"]).splitlines():
        value, _, count = line.partition("|")
        if count.strip():
            counts[value.strip()] = int(count)
    if len(counts) > 10000:
        raise AppError(f"{map} has too many distinct values for raster_counts")
    return counts


@APP.probe("raster_categories")
def raster_categories(ctx: AppContext, map: str, mapset: str = "") -> dict[str, str]:
    """The category labels of a raster: {value: label}."""
    qualified = _require(ctx, "raster", map, mapset)
    labels: dict[str, str] = {}
    for line in _grass(ctx, ["r.category", f"map={qualified}", "separator=|"]).splitlines():
        value, _, label = line.partition("|")
        if value.strip():
            labels[value.strip()] = label.strip()
    return labels


@APP.probe("raster_value")
def raster_value(ctx: AppContext, map: str, east: float, north: float, mapset: str = "") -> float | None:
    """The value of a raster at a point (``r.what``); None for null or outside the map."""
    qualified = _require(ctx, "raster", map, mapset)
    _region_to(ctx, qualified)
    out = _grass(ctx, ["r.what", f"map={qualified}", f"coordinates={float(east)},{float(north)}", "separator=|"])
    value = out.strip().split("|")[-1] if out.strip() else "*"
    try:
        return float(value)
    except ValueError:
        return None


@APP.probe("raster_color")
def raster_color(ctx: AppContext, map: str, value: float, mapset: str = "") -> str | None:
    """The colour a raster's colour table gives ``value``, as ``R:G:B`` (``r.what.color``)."""
    qualified = _require(ctx, "raster", map, mapset)
    out = _grass(ctx, ["r.what.color", "-i", f"input={qualified}", "format=%d:%d:%d"], stdin=f"{float(value)!r}\n")
    color = out.strip().split(":", 1)[-1].strip() if out.strip() else ""
    return color if re.fullmatch(r"\d+:\d+:\d+", color) else None


@APP.probe("vector_info")
def vector_info(ctx: AppContext, map: str, mapset: str = "") -> dict[str, Any]:
    """``v.info``: topology counts (points, lines, areas, ...), bounding box and attribute columns."""
    qualified = _require(ctx, "vector", map, mapset)
    found = _numbers(data.parse_key_values(_grass(ctx, ["v.info", "-t", f"map={qualified}"])))
    found.update(_numbers(data.parse_key_values(_grass(ctx, ["v.info", "-g", f"map={qualified}"]))))
    columns: dict[str, str] = {}
    try:
        out = _grass(ctx, ["v.info", "-c", f"map={qualified}"])
    except AppError:
        out = ""  # no attribute table
    for line in out.splitlines():
        kind, sep, column = line.partition("|")
        if sep and not line.startswith("Displaying"):
            columns[column.strip()] = kind.strip()
    found["columns"] = columns
    found["mapset"] = qualified.split("@")[1]
    return found


@APP.probe("vector_attributes")
def vector_attributes(ctx: AppContext, map: str, mapset: str = "", layer: int = 1) -> list[dict[str, Any]]:
    """The attribute table of a vector map's layer as a list of records (``v.db.select``)."""
    qualified = _require(ctx, "vector", map, mapset)
    out = _grass(ctx, ["v.db.select", f"map={qualified}", f"layer={int(layer)}", "format=json"])
    records = json.loads(out).get("records", [])
    if len(records) > 20000:
        raise AppError(f"{map} has too many records to read")
    return records


#: ``v.to.db -p`` options the ``vector_measures`` probe reads: the units it asks for and the columns printed.
MEASURES = {"coor": ("", ("cat", "x", "y", "z")), "area": ("meters", ("cat", "area")),
            "length": ("meters", ("cat", "length"))}


@APP.probe("vector_measures")
def vector_measures(ctx: AppContext, map: str, option: str, mapset: str = "") -> list[dict[str, float]]:
    """Per-feature geometry (``v.to.db -p``): ``coor`` gives cat, x, y, z; ``area`` (m²) and ``length`` (m)
    give cat and the value. A header line, when GRASS prints one, is skipped."""
    if option not in MEASURES:
        raise BadArgument(f"option must be one of {sorted(MEASURES)}")
    qualified = _require(ctx, "vector", map, mapset)
    units, columns = MEASURES[option]
    argv = ["v.to.db", "-p", f"map={qualified}", f"option={option}", "separator=|"]
    out = _grass(ctx, argv + ([f"units={units}"] if units else []))
    rows = []
    for line in out.splitlines():
        fields = line.split("|")
        try:
            rows.append({key: float(value) for key, value in zip(columns, fields, strict=True)})
        except ValueError:
            continue  # a header or a message, not a feature
    if len(rows) > 20000:
        raise AppError(f"{map} has too many features to measure")
    return rows


@APP.probe("region")
def region(ctx: AppContext, map: str = "", mapset: str = "") -> dict[str, Any]:
    """The GUI mapset's computational region (``g.region -g``), or the saved region ``name``."""
    if map:
        qualified = _require(ctx, "region", map, mapset)
        _grass(ctx, ["g.region", f"region={qualified}"])
        return _numbers(data.parse_key_values(_grass(ctx, ["g.region", "-g"])))
    target = _check_mapset(mapset) if mapset else data.USER_MAPSET
    if not (_gisdbase(ctx) / data.LOCATION / target / "WIND").is_file():
        raise AppError(f"mapset {target} does not exist")
    return _numbers(data.parse_key_values(_grass(ctx, ["g.region", "-g"], mapset=target)))


# --- probes: files the GUI or modules wrote ----------------------------------------------

def _home_file(ctx: AppContext, path: str) -> Path:
    """``path`` under the episode's HOME; symlinks are resolved and must stay inside it."""
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in Path(path).parts:
        raise BadArgument("path must be relative to the episode's HOME (no '..')")
    home = ctx.home.resolve()
    target = (home / path).resolve()
    if not target.is_relative_to(home):
        raise BadArgument(f"{path!r} leads outside the episode's HOME")
    return target


@APP.probe("file_info")
def file_info(ctx: AppContext, path: str) -> dict[str, Any]:
    """Whether a file under HOME exists, its size and its first bytes' kind (png, tiff, text...)."""
    target = _home_file(ctx, path)
    if not target.is_file():
        return {"exists": False}
    head = target.open("rb").read(16)
    kind = ("png" if head.startswith(b"\x89PNG") else "tiff" if head[:4] in (b"II*\x00", b"MM\x00*")
            else "pdf" if head.startswith(b"%PDF") else "text")
    return {"exists": True, "size": target.stat().st_size, "kind": kind}


@APP.probe("file_raster_stats")
def file_raster_stats(ctx: AppContext, path: str) -> dict[str, Any]:
    """Import a raster file under HOME into the probe mapset (``r.in.gdal``) and return its ``r.univar``."""
    target = _home_file(ctx, path)
    if not target.is_file():
        raise AppError(f"{path} does not exist")
    try:
        _grass(ctx, ["r.in.gdal", "-o", "--overwrite", f"input={target}", "output=probe_import"], timeout=120)
        _grass(ctx, ["g.region", "raster=probe_import"])
        stats = _numbers(data.parse_key_values(_grass(ctx, ["r.univar", "-g", "map=probe_import"])))
        stats.update(_numbers(data.parse_key_values(_grass(ctx, ["r.info", "-g", "map=probe_import"]))))
        return stats
    finally:
        _cleanup(ctx, "raster", "probe_import")


@APP.probe("file_vector_info")
def file_vector_info(ctx: AppContext, path: str) -> dict[str, Any]:
    """Import a vector file under HOME into the probe mapset (``v.in.ogr``): counts and attributes."""
    target = _home_file(ctx, path)
    if not target.exists():
        raise AppError(f"{path} does not exist")
    try:
        _grass(ctx, ["v.in.ogr", "-o", "--overwrite", f"input={target}", "output=probe_import"], timeout=120)
        found = _numbers(data.parse_key_values(_grass(ctx, ["v.info", "-t", "map=probe_import"])))
        out = _grass(ctx, ["v.db.select", "map=probe_import", "format=json"])
        found["records"] = json.loads(out).get("records", [])[:5000]
        return found
    finally:
        _cleanup(ctx, "vector", "probe_import")


def _cleanup(ctx: AppContext, kind: str, name: str) -> None:
    try:
        _grass(ctx, ["g.remove", "-f", f"type={kind}", f"name={name}"])
    except AppError:
        pass


@APP.probe("file_text")
def file_text(ctx: AppContext, path: str, max_chars: int = 20000) -> str | None:
    """The text of a file under HOME (first ``max_chars`` characters), None if it does not exist."""
    target = _home_file(ctx, path)
    if not target.is_file():
        return None
    with target.open("r", errors="replace") as handle:
        return handle.read(max(0, min(int(max_chars), 200000)))


@APP.probe("workspace")
def workspace(ctx: AppContext, path: str) -> dict[str, Any]:
    """A workspace file (.gxw) the GUI saved: its map displays and their layers."""
    target = _home_file(ctx, path)
    if not target.is_file():
        return {"exists": False, "displays": []}
    try:
        root = ET.fromstring(target.read_bytes())
    except ET.ParseError as err:
        raise AppError(f"{path} is not a readable workspace file: {err}") from None
    displays = []
    for display in root.iter("display"):
        layers = []
        for layer in display.iter("layer"):
            name = layer.get("name") or ""
            task = layer.find("task")
            layers.append({"type": layer.get("type"), "name": name, "checked": layer.get("checked") == "1",
                           "opacity": float(layer.get("opacity") or 1.0),
                           "module": task.get("name") if task is not None else None})
        displays.append({"name": display.get("name"), "layers": layers})
    return {"exists": True, "displays": displays}


@APP.probe("gui_settings")
def gui_settings(ctx: AppContext) -> dict[str, Any]:
    """The GUI's saved preferences (``~/.grass8/wx.json``)."""
    target = ctx.home / ".grass8" / "wx.json"
    try:
        return json.loads(target.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@APP.probe("command_history")
def command_history(ctx: AppContext, mapset: str = data.USER_MAPSET) -> list[str]:
    """Commands run from the GUI (console and module dialogs) in ``mapset``, oldest first."""
    target = _gisdbase(ctx) / data.LOCATION / _check_mapset(mapset) / ".wxgui_history"
    try:
        return [line.strip() for line in target.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []


@APP.probe("gui_windows")
def gui_windows(ctx: AppContext) -> list[dict[str, Any]]:
    """The GUI's top-level windows on the accessibility bus: role, title, showing."""
    app = _gui_app(ctx)
    if app is None:
        raise AppError("the GRASS GUI is not on the accessibility bus")
    return [{"role": child.role, "name": child.name, "showing": child.showing} for child in app.children]


# --- setup steps --------------------------------------------------------------------------

@APP.setup("set_region")
def set_region(ctx: AppContext, n: float, s: float, e: float, w: float, res: float) -> None:
    """Set the GUI mapset's computational region (``g.region`` in ``analysis``)."""
    values = {"n": n, "s": s, "e": e, "w": w, "res": res}
    for key, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BadArgument(f"set_region: {key} must be a number")
    if not (n > s and e > w and res > 0):
        raise BadArgument("set_region needs n > s, e > w and res > 0")
    _grass(ctx, ["g.region", *[f"{k}={v!r}" for k, v in values.items()]], mapset=data.USER_MAPSET)


@APP.setup("copy_map")
def copy_map(ctx: AppContext, kind: str, name: str, new_name: str = "") -> None:
    """Copy a PERMANENT raster or vector into the GUI mapset (``g.copy``), e.g. to make it editable."""
    if kind not in ("raster", "vector"):
        raise BadArgument("kind must be raster or vector")
    source = _require(ctx, kind, name, "PERMANENT")
    target = _check_name(new_name or name)
    _grass(ctx, ["g.copy", f"{kind}={source},{target}"], mapset=data.USER_MAPSET)
    # The Data catalog lists maps made outside the GUI after a reload of the mapset.
    ctx.click(*CATALOG_RELOAD_MAPSET)
    ctx.settle(quiet=0.3, timeout=5.0)
