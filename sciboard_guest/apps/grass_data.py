"""Deterministic GIS data for the GRASS GIS env, built by GRASS itself, without downloads.

The data is built once into a cache (``~/.cache/sciboard/grass/<key>``, the key
hashes this file and the GRASS version) and copied into each episode's HOME, so
an episode starts from a fresh, writable copy in a few milliseconds.

One projected location (UTM zone 33N, EPSG:32633) holds:

* ``PERMANENT`` (read-only reference data):
  rasters ``elevation`` (FCELL, seeded ``r.surf.fractal`` rescaled to 250-1700 m),
  ``landuse`` (CELL, 6 labelled classes from elevation and a second seeded
  fractal), ``rainfall`` (FCELL, ``r.mapcalc`` of elevation and easting),
  ``dem_gaps`` (elevation with 300 seeded ``r.random`` holes set to null);
  vectors ``towns`` (8 points), ``roads`` (6 lines), ``lakes`` (3 areas),
  ``districts`` (4 areas that tile the region) authored here as GeoJSON, and
  ``wells`` (60 seeded ``v.random`` points with a ``depth`` column).
* ``analysis``: the user's mapset, where the GUI starts; empty, with the
  default region (600000-612000 E, 5120000-5130000 N, 20 m cells, 600 x 500).

Randomness is seeded (``GRASS_RANDOM_SEED`` for ``r.surf.fractal``, ``seed=``
for ``r.random``/``v.random``), so two builds are identical. Run
``/usr/bin/python3 sciboard_guest/apps/grass_data.py build`` to fill the cache
ahead of time (a VM builds it at its first launch, before its snapshot); ``launch`` is the app's entry
point on the desktop: it copies the data into ``$HOME`` and execs the GUI.

Only the standard library is used here (the guest and the VM image run it).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

CLEAN_PATH = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PYTHON = "/usr/bin/python3"
LOCATION = "sciboard"
USER_MAPSET = "analysis"
EPSG = 32633
REGION = {"n": 5130000, "s": 5120000, "w": 600000, "e": 612000, "res": 20}
DATA_VERSION = 1

RASTERS = ("elevation", "landuse", "rainfall", "dem_gaps")
VECTORS = ("towns", "roads", "lakes", "districts", "wells")

LANDUSE_CLASSES = {1: "water", 2: "urban", 3: "cropland", 4: "forest", 5: "grassland", 6: "bare rock"}
LANDUSE_COLORS = {1: "30:110:200", 2: "200:60:60", 3: "235:220:120", 4: "30:120:50", 5: "140:200:90",
                  6: "150:150:150"}

TOWNS = [
    # name, easting, northing, population, founded
    ("Aldbrook", 602150, 5127400, 12400, 1214),
    ("Birchfield", 606800, 5128900, 3150, 1388),
    ("Carnmoor", 610400, 5126200, 8720, 1251),
    ("Dunwell", 603900, 5123100, 1980, 1502),
    ("Eastham", 609200, 5121700, 15600, 1190),
    ("Fernhill", 605300, 5125400, 640, 1677),
    ("Glenrock", 600900, 5121200, 2310, 1433),
    ("Hollowmere", 611300, 5129300, 4480, 1320),
]

ROADS = [
    # name, class, lanes, speed (km/h), vertices
    ("A7", "motorway", 4, 120, [(600000, 5124000), (604000, 5125200), (608000, 5124600), (612000, 5125800)]),
    ("B12", "primary", 2, 90, [(602150, 5127400), (606800, 5128900), (611300, 5129300)]),
    ("B19", "primary", 2, 90, [(603900, 5123100), (605300, 5125400), (606800, 5128900)]),
    ("C3", "secondary", 2, 70, [(609200, 5121700), (610400, 5126200)]),
    ("Ridge Track", "track", 1, 30, [(600900, 5121200), (602500, 5122000), (603900, 5123100)]),
    ("Mill Lane", "secondary", 2, 50, [(605300, 5125400), (607600, 5123400), (609200, 5121700)]),
]

LAKES = [
    # name, maximum depth (m), ring
    ("Silver Tarn", 18.5, [(604000, 5127000), (605200, 5127100), (605300, 5128000), (604300, 5128200)]),
    ("Black Loch", 42.0, [(607800, 5122200), (608900, 5122000), (609100, 5122900), (608200, 5123300)]),
    ("Reed Pond", 3.2, [(610800, 5123400), (611500, 5123500), (611400, 5124200), (610700, 5124000)]),
]

DISTRICTS = [
    # name, code, ring (the four tile the default region)
    ("Ashdale", "ASH", [(600000, 5125000), (606000, 5125500), (606000, 5130000), (600000, 5130000)]),
    ("Brackenridge", "BRK", [(606000, 5125500), (612000, 5124500), (612000, 5130000), (606000, 5130000)]),
    ("Coldwater", "CLD", [(600000, 5120000), (605500, 5120000), (606000, 5125500), (600000, 5125000)]),
    ("Dunmore", "DUN", [(605500, 5120000), (612000, 5120000), (612000, 5124500), (606000, 5125500)]),
]


class GrassError(RuntimeError):
    """A GRASS module failed (the message carries its error output)."""


@cache
def gisbase() -> str:
    """GRASS's installation directory (``grass --config path``)."""
    explicit = os.environ.get("SCIBOARD_GISBASE")
    if explicit:
        return explicit
    grass = shutil.which("grass", path=CLEAN_PATH)
    if grass is None:
        raise GrassError("GRASS GIS is not installed (no grass on PATH). Install it with: "
                         "apt-get install --no-install-recommends grass-core grass-gui (scripts/install.sh does this).")
    out = subprocess.run([grass, "--config", "path"], env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8",
                                                            "HOME": tempfile.gettempdir()},
                         capture_output=True, text=True, timeout=60, check=False)
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not Path(path, "bin").is_dir():
        raise GrassError(f"cannot find GRASS's installation: {out.stderr.strip()[:300]}")
    return path


@cache
def grass_version() -> str:
    """The installed GRASS version, e.g. ``8.2.1`` (from ``$GISBASE/etc/VERSIONNUMBER``)."""
    try:
        return Path(gisbase(), "etc", "VERSIONNUMBER").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def write_gisrc(path: Path, gisdbase: Path, location: str, mapset: str) -> Path:
    """A GISRC file pointing at ``gisdbase/location/mapset`` (no lock is taken)."""
    path.write_text(f"GISDBASE: {gisdbase}\nLOCATION_NAME: {location}\nMAPSET: {mapset}\nGUI: text\n")
    return path


def module_env(gisrc: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment GRASS modules need, on Debian's Python and a clean PATH."""
    root = gisbase()
    env = {k: v for k, v in (base or {}).items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GRASS", "GIS"))}
    env.update({
        "GISBASE": root,
        "GISRC": str(gisrc),
        "PATH": f"{root}/bin:{root}/scripts:{CLEAN_PATH}",
        "LD_LIBRARY_PATH": f"{root}/lib",
        "PYTHONPATH": f"{root}/etc/python",
        "GRASS_PYTHON": SYSTEM_PYTHON,
        "GRASS_MESSAGE_FORMAT": "plain",
        "GRASS_VERBOSE": "0",
        "GRASS_SKIP_MAPSET_OWNER_CHECK": "1",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    })
    env.setdefault("HOME", tempfile.gettempdir())
    return env


def run(env: dict[str, str], argv: list[str], stdin: str | None = None, timeout: float = 120.0) -> str:
    """Run one GRASS module (an argv list, never a shell string); its stdout, or GrassError."""
    try:
        out = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise GrassError(f"{argv[0]}: no such GRASS module") from None
    except subprocess.TimeoutExpired:
        raise GrassError(f"{argv[0]} did not finish in {timeout:g} s") from None
    if out.returncode != 0:
        message = " ".join(line for line in out.stderr.splitlines() if line.strip())
        raise GrassError(f"{' '.join(argv)[:200]} failed: {message[:600]}")
    return out.stdout


# --- building -------------------------------------------------------------------

def _feature_collection(features: list[tuple[dict, dict]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": geom} for geom, props in features]})


def _ring(points: list[tuple[int, int]]) -> list[list[int]]:
    return [list(p) for p in points] + [list(points[0])]


def vector_sources() -> dict[str, str]:
    """The authored vector layers as GeoJSON text (coordinates in the location's CRS)."""
    return {
        "towns": _feature_collection([
            ({"type": "Point", "coordinates": [e, n]}, {"name": name, "population": pop, "founded": year})
            for name, e, n, pop, year in TOWNS]),
        "roads": _feature_collection([
            ({"type": "LineString", "coordinates": [list(v) for v in vertices]},
             {"name": name, "class": kind, "lanes": lanes, "speed": speed})
            for name, kind, lanes, speed, vertices in ROADS]),
        "lakes": _feature_collection([
            ({"type": "Polygon", "coordinates": [_ring(ring)]}, {"name": name, "max_depth": depth})
            for name, depth, ring in LAKES]),
        "districts": _feature_collection([
            ({"type": "Polygon", "coordinates": [_ring(ring)]}, {"name": name, "code": code})
            for name, code, ring in DISTRICTS]),
    }


def build(dest: Path) -> dict:
    """Build the location into ``dest/grassdata``; returns (and writes) its manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    gisdbase = dest / "grassdata"
    gisdbase.mkdir()
    scratch = Path(tempfile.mkdtemp(prefix="sciboard-grass-build-"))
    try:
        env0 = {"PATH": CLEAN_PATH, "HOME": str(scratch), "LANG": "C.UTF-8"}
        run(env0, ["grass", "-e", "-c", f"EPSG:{EPSG}", str(gisdbase / LOCATION)])
        env = module_env(write_gisrc(scratch / "rc", gisdbase, LOCATION, "PERMANENT"), env0)
        region = [f"{k}={v}" for k, v in REGION.items()]
        run(env, ["g.region", "-s", *region])  # -s: also the location's default region
        run(env, ["g.region", *region])
        _build_rasters(env)
        _build_vectors(env, scratch)
        run(env0, ["grass", "-e", "-c", str(gisdbase / LOCATION / USER_MAPSET)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for junk in gisdbase.glob(f"{LOCATION}/*/.tmp"):
        shutil.rmtree(junk, ignore_errors=True)
    for lock in gisdbase.glob(f"{LOCATION}/*/.gislock"):
        lock.unlink()
    manifest = describe(gisdbase)
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def _build_rasters(env: dict[str, str]) -> None:
    seeded = dict(env, GRASS_RANDOM_SEED="4242")
    run(seeded, ["r.surf.fractal", "output=terrain_raw", "dimension=2.05"])
    run(dict(env, GRASS_RANDOM_SEED="777"), ["r.surf.fractal", "output=texture_raw", "dimension=2.4"])
    lo, hi = _range(env, "terrain_raw")
    tlo, thi = _range(env, "texture_raw")
    run(env, ["r.mapcalc", f"expression=elevation = float(250.0 + (terrain_raw - {lo!r}) / ({hi - lo!r}) * 1450.0)"])
    run(env, ["r.mapcalc", f"expression=texture = (texture_raw - {tlo!r}) / ({thi - tlo!r})"])
    run(env, ["r.mapcalc", ("expression=landuse = int(if(elevation < 500, 1, if(elevation < 760 && texture > 0.55, 2, "
                            "if(elevation < 860, 3, if(elevation < 1180 && texture > 0.3, 4, "
                            "if(elevation < 1380, 5, 6))))))")])
    run(env, ["r.mapcalc", "expression=rainfall = float(600.0 + 0.55 * elevation + 60.0 * sin((x() - 600000) / 40.0))"])
    run(env, ["r.random", "input=elevation", "npoints=300", "raster=gap_cells", "seed=23"])
    run(env, ["r.mapcalc", "expression=dem_gaps = if(isnull(gap_cells), elevation, null())"])
    run(env, ["g.remove", "-f", "type=raster", "name=terrain_raw,texture_raw,texture,gap_cells"])
    run(env, ["r.category", "map=landuse", "separator=:", "rules=-"],
        stdin="".join(f"{k}:{v}\n" for k, v in LANDUSE_CLASSES.items()))
    run(env, ["r.colors", "map=landuse", "rules=-"], stdin="".join(f"{k} {v}\n" for k, v in LANDUSE_COLORS.items()))
    for name in ("elevation", "dem_gaps"):
        run(env, ["r.colors", f"map={name}", "color=elevation"])
    run(env, ["r.colors", "map=rainfall", "color=bcyr"])
    titles = {"elevation": ("Elevation (synthetic terrain)", "m"), "landuse": ("Land use classes", ""),
              "rainfall": ("Mean annual rainfall", "mm"), "dem_gaps": ("Elevation with data gaps", "m")}
    for name, (title, units) in titles.items():
        run(env, ["r.support", f"map={name}", f"title={title}", *( [f"units={units}"] if units else [])])


def _range(env: dict[str, str], name: str) -> tuple[float, float]:
    stats = parse_key_values(run(env, ["r.info", "-r", f"map={name}"]))
    return float(stats["min"]), float(stats["max"])


def _build_vectors(env: dict[str, str], scratch: Path) -> None:
    for name, text in vector_sources().items():
        source = scratch / f"{name}.geojson"
        source.write_text(text)
        run(env, ["v.in.ogr", "-o", f"input={source}", f"output={name}"])
    run(env, ["v.random", "output=wells", "npoints=60", "seed=11", "column=depth", "column_type=double",
              "zmin=5", "zmax=120"])
    run(env, ["v.db.update", "map=wells", "column=depth", "query_column=round(depth, 1)"])


def parse_key_values(text: str) -> dict[str, str]:
    """``key=value`` lines (shell-style output of ``-g`` flags) as a dict."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            found[key.strip()] = value.strip().strip('"')
    return found


def describe(gisdbase: Path) -> dict:
    """A fingerprint of the built data: raster stats, vector counts and attributes."""
    scratch = Path(tempfile.mkdtemp(prefix="sciboard-grass-describe-"))
    try:
        env = module_env(write_gisrc(scratch / "rc", gisdbase, LOCATION, "PERMANENT"),
                         {"PATH": CLEAN_PATH, "HOME": str(scratch)})
        found: dict = {"grass": grass_version(), "data_version": DATA_VERSION, "rasters": {}, "vectors": {}}
        for name in RASTERS:
            stats = parse_key_values(run(env, ["r.univar", "-g", f"map={name}"]))
            found["rasters"][name] = {k: stats[k] for k in ("n", "null_cells", "min", "max", "mean", "sum")}
        for name in VECTORS:
            topo = parse_key_values(run(env, ["v.info", "-t", f"map={name}"]))
            rows = json.loads(run(env, ["v.db.select", f"map={name}", "format=json"]))["records"]
            found["vectors"][name] = {"topology": topo, "records": rows}
        return found
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the cache ------------------------------------------------------------------

def cache_root() -> Path:
    return Path(os.environ.get("SCIBOARD_CACHE", Path("~/.cache/sciboard").expanduser())) / "grass"


def cache_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(grass_version().encode())
    return digest.hexdigest()[:16]


def ensure_cache(root: Path | None = None) -> Path:
    """The cached build for this data version and GRASS, built now if missing (one builder at a time)."""
    root = Path(root) if root else cache_root()
    target = root / cache_key()
    if (target / "manifest.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "manifest.json").is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            build(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for stale in root.iterdir():  # builds of older data versions or another GRASS
            if stale != target and stale.is_dir() and len(stale.name) == 16 and not stale.name.startswith("."):
                shutil.rmtree(stale, ignore_errors=True)
    return target


def install(cache: Path, home: Path) -> Path:
    """A fresh episode HOME: the cached location copied to ``home/grassdata`` and the GUI's preferences.

    Returns the user mapset's path.
    """
    gisdbase = home / "grassdata"
    shutil.copytree(cache / "grassdata", gisdbase, symlinks=True)
    config = home / ".grass8"
    config.mkdir(exist_ok=True)
    (config / "wx.json").write_text(json.dumps(gui_settings(), indent=2))
    (home / ".tmp").mkdir(exist_ok=True)
    return gisdbase / LOCATION / USER_MAPSET


def gui_settings() -> dict:
    """wxGUI preferences written into a fresh HOME before the GUI starts.

    * single-window mode: layer manager, map display and console in one window,
      which suits a window manager that maximises every window;
    * a language override: without it GRASS's start-up turns C.UTF-8 into
      ``LANG=en_US`` (Python's locale normalisation), a locale Debian does not
      have, and wxPython greets every episode with a "Cannot set locale" dialog;
    * the data catalog's lazy-loading question answered: when loading the catalog takes over 5 s
      (a busy machine, a VM without KVM) GRASS otherwise shows it as a bar above the catalog tree,
      which moves the tree down.
    """
    return {"general": {"singleWindow": {"enabled": True}}, "language": {"locale": {"lc_all": "C.UTF-8"}},
            "datacatalog": {"lazyLoading": {"enabled": False, "asked": True}}}


def exec_gui(home: Path, cache_dir: Path | None = None) -> None:
    """The app's entry point on the desktop: exec the GRASS GUI on the user mapset under ``home``.

    The data is normally installed by the guest before the start (``install``);
    a HOME without it gets it here. Temporary files go under ``home`` so they
    vanish with the episode's HOME.
    """
    mapset = home / "grassdata" / LOCATION / USER_MAPSET
    if not mapset.is_dir():
        install(ensure_cache(cache_dir), home)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "GISBASE", "GISRC", "GRASS_"))}
    env.update({"PATH": f"{_no_toolchain(home)}:{CLEAN_PATH}", "GRASS_PYTHON": SYSTEM_PYTHON,
                "TMPDIR": str(home / ".tmp"), "HOME": str(home)})
    (home / ".tmp").mkdir(exist_ok=True)
    os.execvpe("grass", ["grass", "--gui", str(mapset)], env)


def _no_toolchain(home: Path) -> Path:
    """A directory whose ``gcc``, ``cc`` and ``ld`` fail at once, to put first on the GUI's PATH.

    The wxGUI loads GRASS's C libraries through ``ctypes.util.find_library``, which
    (for libraries outside ldconfig's cache, as GRASS's are) runs gcc and ld once
    per library and name pattern. Where a toolchain is installed that alone takes
    10 s of the GUI's start-up here; without one, ctypes falls back to
    LD_LIBRARY_PATH at once, which finds the same libraries.
    """
    shims = home / ".tmp" / "no-toolchain"
    shims.mkdir(parents=True, exist_ok=True)
    false = shutil.which("false", path=CLEAN_PATH) or "/bin/false"
    for name in ("gcc", "cc", "ld"):
        if not (shims / name).exists():
            (shims / name).symlink_to(false)
    return shims


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grass_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="cache root (default ~/.cache/sciboard/grass)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the data into the cache (if missing) and print its path")
    sub.add_parser("gui", help="start the GRASS GUI on the data under $HOME (copied there if missing)")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(ensure_cache(args.cache))
        return 0
    exec_gui(Path(os.environ["HOME"]), args.cache)
    return 1


if __name__ == "__main__":
    sys.exit(main())
