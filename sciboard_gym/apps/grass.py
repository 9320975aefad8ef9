"""GRASS GIS (the wxGUI on a prepared location): the GIS domain.

State is read through GRASS itself by the guest's probes
(:mod:`sciboard_guest.apps.grass`): maps and their metadata (``r.info``,
``r.univar``, ``r.stats``, ``r.category``, ``r.what``, ``r.what.color``,
``v.info``, ``v.db.select``), the GUI mapset's computational region and saved
regions, files written under HOME (imported back through ``r.in.gdal`` /
``v.in.ogr``), workspace files and preferences the GUI saved, and the GUI's
command history. Maps are looked up in the GUI mapset (``analysis``) unless a
check names another ``mapset``.
"""

from __future__ import annotations

from typing import Any

from sciboard_gym.apps.base import AppAdapter, CheckContext, CheckFailed, close_enough, to_number

ADAPTER = AppAdapter(name="grass", env_id="SciBoard-GRASS-v0", title="GRASS GIS", domain="gis")

USER_MAPSET = "analysis"
EXTENDED_STATS = ("median", "first_quartile", "third_quartile", "percentile_90")
REGION_KEYS = ("n", "s", "e", "w", "nsres", "ewres", "rows", "cols", "cells")


def _fmt(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else repr(value)


def _compare(shown: Any, expected: Any, tolerance: float) -> bool:
    """Numbers within a relative/absolute tolerance; everything else as trimmed text."""
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        number = to_number(shown)
        return number is not None and close_enough(number, float(expected), tolerance)
    if shown is None:
        return expected is None
    return str(shown).strip() == str(expected).strip()


def _stats(ctx: CheckContext, name: str, stat: str, mapset: str) -> Any:
    extended = stat in EXTENDED_STATS
    return ctx.probe("raster_stats", map=name, mapset=mapset, extended=extended).get(stat)


def _answer(ctx: CheckContext) -> float | None:
    return None if ctx.answer is None else to_number(ctx.answer)


# --- maps -----------------------------------------------------------------------------

@ADAPTER.check("map_exists")
def map_exists(ctx: CheckContext, name: str, kind: str = "raster", mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """A map ``name`` of ``kind`` (raster, vector, region, group) exists in ``mapset``."""
    names = ctx.probe("maps", kind=kind, mapset=mapset)
    return name in names, f"{kind} maps in {mapset}: {names}"


@ADAPTER.check("raster_exists")
def raster_exists(ctx: CheckContext, name: str, mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """A raster map ``name`` exists in ``mapset``."""
    return map_exists(ctx, name, "raster", mapset)


@ADAPTER.check("vector_exists")
def vector_exists(ctx: CheckContext, name: str, mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """A vector map ``name`` exists in ``mapset``."""
    return map_exists(ctx, name, "vector", mapset)


@ADAPTER.check("map_absent")
def map_absent(ctx: CheckContext, name: str, kind: str = "raster", mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """No map ``name`` of ``kind`` is left in ``mapset`` (removed or renamed)."""
    names = ctx.probe("maps", kind=kind, mapset=mapset)
    return name not in names, f"{kind} maps in {mapset}: {names}"


@ADAPTER.check("map_count")
def map_count(ctx: CheckContext, count: int, kind: str = "raster", mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """Exactly ``count`` maps of ``kind`` are in ``mapset``."""
    names = ctx.probe("maps", kind=kind, mapset=mapset)
    return len(names) == count, f"{len(names)} {kind} maps in {mapset} ({names}), expected {count}"


@ADAPTER.check("mapset_exists")
def mapset_exists(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The location has a mapset ``name``."""
    found = ctx.probe("mapsets")
    return name in found, f"mapsets {found}"


# --- rasters ----------------------------------------------------------------------------

@ADAPTER.check("raster_stat")
def raster_stat(ctx: CheckContext, name: str, stat: str, value: float, tolerance: float = 1e-6,
                mapset: str = "") -> tuple[bool, str]:
    """``r.univar`` statistic ``stat`` (n, null_cells, min, max, mean, stddev, sum, median, ...) of a raster."""
    shown = _stats(ctx, name, stat, mapset)
    if shown is None:
        return False, f"{name} has no statistic {stat!r}"
    return _compare(shown, value, tolerance), f"{name} {stat} = {_fmt(shown)}, expected {_fmt(value)} ± {tolerance:g}"


@ADAPTER.check("raster_info")
def raster_info(ctx: CheckContext, name: str, key: str, value: Any, tolerance: float = 1e-6,
                mapset: str = "") -> tuple[bool, str]:
    """``r.info`` field ``key`` (datatype, rows, cols, nsres, north, title, units, ...) of a raster is ``value``."""
    return _info_field(ctx, "raster_info", "r.info", name, key, value, tolerance, mapset)


@ADAPTER.check("raster_count")
def raster_count(ctx: CheckContext, name: str, value: str, count: int, tolerance: int = 0,
                 mapset: str = "") -> tuple[bool, str]:
    """An integer raster has ``count`` cells (± ``tolerance``) of ``value`` ("*" counts nulls)."""
    counts = ctx.probe("raster_counts", map=name, mapset=mapset)
    shown = counts.get(str(value), 0)
    return abs(shown - count) <= tolerance, f"{name}: {shown} cells of {value}, expected {count} ± {tolerance}"


@ADAPTER.check("raster_values")
def raster_values(ctx: CheckContext, name: str, values: list, mapset: str = "") -> tuple[bool, str]:
    """The distinct non-null values of an integer raster are exactly ``values``."""
    counts = ctx.probe("raster_counts", map=name, mapset=mapset)
    shown = sorted(k for k in counts if k != "*")
    expected = sorted(str(v) for v in values)
    return shown == expected, f"{name} values {shown}, expected {expected}"


@ADAPTER.check("raster_value_at")
def raster_value_at(ctx: CheckContext, name: str, east: float, north: float, value: float | None,
                    tolerance: float = 1e-6, mapset: str = "") -> tuple[bool, str]:
    """The raster's value at (east, north) is ``value`` (null: ``None``)."""
    shown = ctx.probe("raster_value", map=name, east=east, north=north, mapset=mapset)
    if value is None:
        return shown is None, f"{name} at ({east}, {north}) = {shown!r}, expected null"
    ok = shown is not None and close_enough(shown, value, tolerance)
    return ok, f"{name} at ({east}, {north}) = {shown!r}, expected {value!r}"


@ADAPTER.check("raster_label")
def raster_label(ctx: CheckContext, name: str, value: str, label: str, mapset: str = "") -> tuple[bool, str]:
    """Category ``value`` of the raster carries ``label`` (case-insensitive)."""
    labels = ctx.probe("raster_categories", map=name, mapset=mapset)
    shown = labels.get(str(value))
    ok = shown is not None and shown.strip().lower() == label.strip().lower()
    return ok, f"{name} category {value} label {shown!r}, expected {label!r}"


@ADAPTER.check("raster_color")
def raster_color(ctx: CheckContext, name: str, value: float, color: str, tolerance: int = 0,
                 mapset: str = "") -> tuple[bool, str]:
    """The raster's colour table paints ``value`` as ``color`` ("R:G:B", each channel ± ``tolerance``)."""
    shown = ctx.probe("raster_color", map=name, value=value, mapset=mapset)
    if shown is None:
        return False, f"{name} has no colour for {value}"
    ok = all(abs(int(a) - int(b)) <= tolerance for a, b in zip(shown.split(":"), color.split(":")))
    return ok, f"{name} colour at {value} = {shown}, expected {color}"


# --- vectors ------------------------------------------------------------------------------

@ADAPTER.check("vector_topology")
def vector_topology(ctx: CheckContext, name: str, key: str, value: int, tolerance: int = 0,
                    mapset: str = "") -> tuple[bool, str]:
    """``v.info -t`` count ``key`` (points, lines, boundaries, centroids, areas, ...) is ``value`` ± ``tolerance``."""
    info = ctx.probe("vector_info", map=name, mapset=mapset)
    shown = info.get(key)
    ok = isinstance(shown, (int, float)) and abs(shown - value) <= tolerance
    return ok, f"{name} {key} = {shown!r}, expected {value} ± {tolerance}"


@ADAPTER.check("vector_info")
def vector_info(ctx: CheckContext, name: str, key: str, value: Any, tolerance: float = 1e-6,
                mapset: str = "") -> tuple[bool, str]:
    """A ``v.info`` field (topology count or bounding box: north, south, east, west) of a vector is ``value``."""
    return _info_field(ctx, "vector_info", "v.info", name, key, value, tolerance, mapset)


def _info_field(ctx: CheckContext, probe: str, module: str, name: str, key: str, value: Any, tolerance: float,
                mapset: str) -> tuple[bool, str]:
    """Field ``key`` of the ``probe`` (r.info / v.info output) of map ``name`` is ``value``."""
    info = ctx.probe(probe, map=name, mapset=mapset)
    if key not in info:
        return False, f"{module} of {name} has no {key!r}"
    return _compare(info[key], value, tolerance), f"{name} {key} = {info[key]!r}, expected {value!r}"


@ADAPTER.check("vector_column")
def vector_column(ctx: CheckContext, name: str, column: str, type: str | list = "", mapset: str = "") -> tuple[bool, str]:
    """The vector's attribute table has ``column`` (of SQL ``type`` when given, e.g. INTEGER, DOUBLE PRECISION,
    or of one of a list of types)."""
    columns = ctx.probe("vector_info", map=name, mapset=mapset)["columns"]
    if column not in columns:
        return False, f"{name} columns {sorted(columns)} lack {column!r}"
    types = {type.upper()} if isinstance(type, str) else {str(t).upper() for t in type}
    ok = not type or columns[column].upper() in types
    return ok, f"{name}.{column} is {columns[column]}" + (f", expected {type}" if type else "")


def _records(ctx: CheckContext, name: str, mapset: str) -> list[dict[str, Any]]:
    return ctx.probe("vector_attributes", map=name, mapset=mapset)


@ADAPTER.check("attribute_value")
def attribute_value(ctx: CheckContext, name: str, key_column: str, key: Any, column: str, value: Any,
                    tolerance: float = 1e-6, mapset: str = "") -> tuple[bool, str]:
    """In the record whose ``key_column`` is ``key``, ``column`` holds ``value`` (numbers within ``tolerance``)."""
    rows = [r for r in _records(ctx, name, mapset) if _compare(r.get(key_column), key, 0.0)]
    if len(rows) != 1:
        return False, f"{len(rows)} records of {name} have {key_column} = {key!r}, expected one"
    shown = rows[0].get(column)
    return _compare(shown, value, tolerance), f"{name}[{key_column}={key!r}].{column} = {shown!r}, expected {value!r}"


@ADAPTER.check("attribute_all")
def attribute_all(ctx: CheckContext, name: str, column: str, low: float | None = None, high: float | None = None,
                  mapset: str = "") -> tuple[bool, str]:
    """Every record has a number in ``column`` (no nulls), within [low, high] where given."""
    rows = _records(ctx, name, mapset)
    read = [to_number(r.get(column)) for r in rows]
    values = [v for v in read if v is not None]
    if not rows or len(values) != len(read):
        return False, f"{name}.{column}: {len(rows)} records, not all numbers: {read[:10]}"
    ok = all((low is None or v >= low) and (high is None or v <= high) for v in values)
    return ok, f"{name}.{column} ranges {_lo(values):g}..{_hi(values):g}, wanted [{low}, {high}]"


#: How many features ``attribute_matches_raster`` compares with the raster (spread over the table).
MATCH_SAMPLE = 8


@ADAPTER.check("attribute_matches_raster")
def attribute_matches_raster(ctx: CheckContext, name: str, column: str, raster: str, tolerance: float = 1e-4,
                             mapset: str = "") -> tuple[bool, str]:
    """Every record of the point map has a number in ``column``, and at up to MATCH_SAMPLE points spread over
    the map it equals ``raster``'s value there (within ``tolerance``): the column was sampled from that raster."""
    rows = {int(r["cat"]): to_number(r.get(column)) for r in _records(ctx, name, mapset) if "cat" in r}
    if not rows or any(v is None for v in rows.values()):
        return False, f"{name}.{column}: not every record holds a number ({list(rows.values())[:10]})"
    points = _measures(ctx, name, "coor", mapset)
    cats = sorted(set(rows) & set(points))
    if not cats:
        return False, f"{name} has no point features with attributes"
    sample = cats[:: max(1, len(cats) // MATCH_SAMPLE)][:MATCH_SAMPLE]
    for cat in sample:
        value = ctx.probe("raster_value", map=raster, east=points[cat]["x"], north=points[cat]["y"])
        if value is None or not close_enough(float(rows[cat] or 0.0), value, tolerance):
            return False, f"{name}.{column} of cat {cat} is {rows[cat]}, {raster} there is {value}"
    return True, f"{name}.{column} matches {raster} at cats {sample}"


def _lo(values: list) -> float:
    return float(min(values))


def _hi(values: list) -> float:
    return float(max(values))


@ADAPTER.check("attribute_stat")
def attribute_stat(ctx: CheckContext, name: str, column: str, stat: str, value: float, tolerance: float = 1e-6,
                   mapset: str = "") -> tuple[bool, str]:
    """An aggregate (count, sum, mean, min, max) of numeric ``column`` over all records is ``value``."""
    numbers = [n for n in (to_number(r.get(column)) for r in _records(ctx, name, mapset)) if n is not None]
    shown = _aggregate(numbers, stat)
    if shown is None:
        return False, f"{name}.{column} has no {stat} ({len(numbers)} numbers)"
    return close_enough(shown, value, tolerance), f"{name}.{column} {stat} = {shown:.10g}, expected {value:.10g}"


def _aggregate(numbers: list[float], stat: str) -> float | None:
    if stat == "count":
        return float(len(numbers))
    if not numbers:
        return None
    return {"sum": sum(numbers), "mean": sum(numbers) / len(numbers), "min": _lo(numbers),
            "max": _hi(numbers)}.get(stat)


@ADAPTER.check("record_count")
def record_count(ctx: CheckContext, name: str, count: int, mapset: str = "") -> tuple[bool, str]:
    """The vector's attribute table has ``count`` records."""
    rows = _records(ctx, name, mapset)
    return len(rows) == count, f"{name} has {len(rows)} records, expected {count}"


@ADAPTER.check("attribute_set")
def attribute_set(ctx: CheckContext, name: str, column: str, values: list, mapset: str = "") -> tuple[bool, str]:
    """The set of ``column`` values over all records is exactly ``values`` (text compare)."""
    shown = sorted({_key(r.get(column)) for r in _records(ctx, name, mapset)})
    expected = sorted({_key(v) for v in values})
    return shown == expected, f"{name}.{column} values {shown}, expected {expected}"


def _key(value: Any) -> str:
    """A comparable text for a value: numbers by value (300 == 300.0), text trimmed."""
    number = None if isinstance(value, str) and not value.strip() else to_number(value)
    return f"{number:.10g}" if number is not None else str(value).strip()


# --- region -------------------------------------------------------------------------------

@ADAPTER.check("region_equals")
def region_equals(ctx: CheckContext, n: float | None = None, s: float | None = None, e: float | None = None,
                  w: float | None = None, nsres: float | None = None, ewres: float | None = None,
                  rows: int | None = None, cols: int | None = None, cells: int | None = None,
                  tolerance: float = 1e-6, name: str = "", mapset: str = "") -> tuple[bool, str]:
    """The computational region (or the saved region ``name``) has the given bounds, resolution and size."""
    given = {"n": n, "s": s, "e": e, "w": w, "nsres": nsres, "ewres": ewres, "rows": rows, "cols": cols,
             "cells": cells}
    expected = {k: v for k, v in given.items() if v is not None}
    if not expected:
        return False, f"region_equals needs some of {REGION_KEYS}"
    shown = ctx.probe("region", map=name, mapset=mapset)
    bad = {k: shown.get(k) for k, v in expected.items() if not _compare(shown.get(k), v, tolerance)}
    what = f"region {name}" if name else "computational region"
    return not bad, f"{what}: " + (f"mismatched {bad}, expected {expected}" if bad else f"matches {expected}")


# --- files and the GUI ---------------------------------------------------------------------

@ADAPTER.check("file_exists")
def file_exists(ctx: CheckContext, path: str, kind: str = "", min_size: int = 1) -> tuple[bool, str]:
    """A file ``path`` (relative to HOME) exists, at least ``min_size`` bytes, of ``kind`` (png, tiff, pdf, text)."""
    info = ctx.probe("file_info", path=path)
    if not info.get("exists"):
        return False, f"~/{path} does not exist"
    ok = info["size"] >= min_size and (not kind or info["kind"] == kind)
    return ok, f"~/{path}: {info['size']} bytes, {info['kind']}"


@ADAPTER.check("file_raster_stat")
def file_raster_stat(ctx: CheckContext, path: str, stat: str, value: float,
                     tolerance: float = 1e-6) -> tuple[bool, str]:
    """A raster file under HOME, read back by GRASS (``r.in.gdal``), has ``r.univar``/``r.info`` ``stat``."""
    if not ctx.probe("file_info", path=path).get("exists"):
        return False, f"~/{path} does not exist"
    stats = ctx.probe("file_raster_stats", path=path)
    shown = stats.get(stat)
    return _compare(shown, value, tolerance), f"~/{path} {stat} = {shown!r}, expected {value!r}"


@ADAPTER.check("file_vector_count")
def file_vector_count(ctx: CheckContext, path: str, key: str, value: int) -> tuple[bool, str]:
    """A vector file under HOME, read back by GRASS (``v.in.ogr``), has ``value`` features of ``key`` (points...)."""
    if not ctx.probe("file_info", path=path).get("exists"):
        return False, f"~/{path} does not exist"
    info = ctx.probe("file_vector_info", path=path)
    return info.get(key) == value, f"~/{path} {key} = {info.get(key)!r}, expected {value}"


@ADAPTER.check("file_contains")
def file_contains(ctx: CheckContext, path: str, texts: list) -> tuple[bool, str]:
    """The text file ``path`` under HOME contains every string in ``texts``."""
    text = ctx.probe("file_text", path=path)
    if text is None:
        return False, f"~/{path} does not exist"
    missing = [t for t in texts if str(t) not in text]
    return not missing, f"~/{path} lacks {missing}" if missing else f"~/{path} contains {texts}"


@ADAPTER.check("workspace_layers")
def workspace_layers(ctx: CheckContext, path: str, layers: list) -> tuple[bool, str]:
    """The workspace file ``path`` (saved by the GUI) shows every map in ``layers`` in one display."""
    found = ctx.probe("workspace", path=path)
    if not found.get("exists"):
        return False, f"workspace ~/{path} does not exist"
    for display in found["displays"]:
        names = {layer["name"].split("@")[0] for layer in display["layers"]} | {
            layer["name"] for layer in display["layers"]}
        if all(str(name) in names for name in layers):
            return True, f"display {display['name']!r} shows {sorted(names)}"
    shown = [[layer["name"] for layer in d["layers"]] for d in found["displays"]]
    return False, f"workspace displays show {shown}, expected {layers}"


@ADAPTER.check("gui_setting")
def gui_setting(ctx: CheckContext, path: str, value: Any) -> tuple[bool, str]:
    """The GUI's saved preference at ``path`` ("group/key/subkey", in ~/.grass8/wx.json) is ``value``."""
    node: Any = ctx.probe("gui_settings")
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return False, f"preference {path} is not saved"
        node = node[part]
    if isinstance(value, list) and isinstance(node, list):
        ok = [str(v) for v in node] == [str(v) for v in value]
    elif isinstance(value, bool) or isinstance(node, bool):
        ok = node == value
    else:
        ok = _compare(node, value, 1e-9)
    return ok, f"preference {path} = {node!r}, expected {value!r}"


@ADAPTER.check("history_contains")
def history_contains(ctx: CheckContext, module: str | list, mapset: str = USER_MAPSET) -> tuple[bool, str]:
    """The GUI ran ``module`` (or, given a list, any of those modules) from its console or a module
    dialog in ``mapset``: evidence that an answer was worked out in GRASS."""
    wanted = {module} if isinstance(module, str) else {str(m) for m in module}
    history = ctx.probe("command_history", mapset=mapset)
    ok = any(line.split()[0] in wanted for line in history if line.split())
    return ok, f"GUI history: {history[-8:]}, expected one of {sorted(wanted)}"


# --- answers checked against what GRASS computes now ------------------------------------------

@ADAPTER.check("answer_raster_stat")
def answer_raster_stat(ctx: CheckContext, name: str, stat: str, tolerance: float = 1e-3,
                       mapset: str = "") -> tuple[bool, str]:
    """The answer is the raster's ``r.univar`` ``stat``, as GRASS computes it from the map now."""
    given = _answer(ctx)
    shown = _stats(ctx, name, stat, mapset)
    if given is None or shown is None:
        return False, f"answer {ctx.answer!r}, {name} {stat} = {shown!r}"
    return close_enough(given, float(shown), tolerance), f"answer {given:g}, {name} {stat} = {float(shown):.10g}"


@ADAPTER.check("answer_raster_count")
def answer_raster_count(ctx: CheckContext, name: str, value: str, tolerance: float = 1e-9, scale: float = 1.0,
                        mapset: str = "") -> tuple[bool, str]:
    """The answer is the number of cells of ``value`` in the raster, times ``scale`` (e.g. cell area)."""
    given = _answer(ctx)
    counts = ctx.probe("raster_counts", map=name, mapset=mapset)
    expected = counts.get(str(value), 0) * scale
    if given is None:
        return False, f"the answer {ctx.answer!r} is not a number"
    return close_enough(given, expected, tolerance), f"answer {given:g}, expected {expected:g}"


@ADAPTER.check("answer_attribute")
def answer_attribute(ctx: CheckContext, name: str, key_column: str, key: Any, column: str,
                     tolerance: float = 1e-6, mapset: str = "") -> tuple[bool, str]:
    """The answer is ``column`` of the record whose ``key_column`` is ``key`` (number or text)."""
    rows = [r for r in _records(ctx, name, mapset) if _compare(r.get(key_column), key, 0.0)]
    if len(rows) != 1 or ctx.answer is None:
        return False, f"answer {ctx.answer!r}; {len(rows)} records with {key_column} = {key!r}"
    expected = rows[0].get(column)
    if isinstance(expected, (int, float)):
        given = _answer(ctx)
        ok = given is not None and close_enough(given, float(expected), tolerance)
    else:
        ok = ctx.answer.strip().lower() == str(expected).strip().lower()
    return ok, f"answer {ctx.answer!r}, expected {expected!r}"


@ADAPTER.check("answer_record_count")
def answer_record_count(ctx: CheckContext, name: str, column: str, above: float, mapset: str = "") -> tuple[bool, str]:
    """The answer is the number of the vector's records whose numeric ``column`` exceeds ``above``,
    counted from the attribute table now."""
    numbers = [n for n in (to_number(r.get(column)) for r in _records(ctx, name, mapset)) if n is not None]
    expected, given = sum(n > above for n in numbers), _answer(ctx)
    if given is None:
        return False, f"the answer {ctx.answer!r} is not a number"
    return given == expected, f"answer {given:g}, {expected} records of {name} have {column} > {above:g}"


@ADAPTER.check("answer_attribute_stat")
def answer_attribute_stat(ctx: CheckContext, name: str, column: str, stat: str, tolerance: float = 1e-6,
                          mapset: str = "") -> tuple[bool, str]:
    """The answer is an aggregate (count, sum, mean, min, max) of ``column`` over the vector's records."""
    numbers = [n for n in (to_number(r.get(column)) for r in _records(ctx, name, mapset)) if n is not None]
    expected, given = _aggregate(numbers, stat), _answer(ctx)
    if expected is None or given is None:
        return False, f"answer {ctx.answer!r}, {name}.{column} {stat} = {expected!r}"
    return close_enough(given, expected, tolerance), f"answer {given:g}, expected {expected:.10g}"


@ADAPTER.check("answer_topology")
def answer_topology(ctx: CheckContext, name: str, key: str, mapset: str = "") -> tuple[bool, str]:
    """The answer is the vector's ``v.info -t`` count ``key`` (points, lines, areas, ...)."""
    expected = ctx.probe("vector_info", map=name, mapset=mapset).get(key)
    given = _answer(ctx)
    if given is None or not isinstance(expected, (int, float)):
        return False, f"answer {ctx.answer!r}, {name} {key} = {expected!r}"
    return given == expected, f"answer {given:g}, expected {expected}"


@ADAPTER.check("answer_region")
def answer_region(ctx: CheckContext, key: str, tolerance: float = 1e-6) -> tuple[bool, str]:
    """The answer is the computational region's ``key`` (rows, cols, cells, nsres, ...)."""
    expected = ctx.probe("region").get(key)
    given = _answer(ctx)
    if given is None or not isinstance(expected, (int, float)):
        return False, f"answer {ctx.answer!r}, region {key} = {expected!r}"
    return close_enough(given, float(expected), tolerance), f"answer {given:g}, expected {expected}"


# --- answers about single features, judged against the maps as they were at reset ------------

#: Area units an answer may be asked in, as square metres per unit.
AREA_UNITS = {"square_meters": 1.0, "hectares": 1e4, "square_kilometers": 1e6, "acres": 4046.8564224}


def _feature_cat(ctx: CheckContext, name: str, key_column: str, key: Any, mapset: str) -> int:
    rows = [r for r in _records(ctx, name, mapset) if _compare(r.get(key_column), key, 0.0)]
    if len(rows) != 1 or "cat" not in rows[0]:
        raise CheckFailed(f"{len(rows)} records of {name} have {key_column} = {key!r}, expected one")
    return int(rows[0]["cat"])


def _measures(ctx: CheckContext, name: str, option: str, mapset: str) -> dict[int, dict[str, float]]:
    return {int(m["cat"]): m for m in ctx.probe("vector_measures", map=name, option=option, mapset=mapset)}


def _raster_at_points(ctx: CheckContext, vector: str, raster: str, label_column: str,
                      mapset: str = "") -> dict[str, float | None]:
    """{label: raster value at the point} for every point feature of ``vector``."""
    points = _measures(ctx, vector, "coor", mapset)
    labels = {int(r["cat"]): str(r.get(label_column)) for r in _records(ctx, vector, mapset) if "cat" in r}
    return {labels.get(cat, str(cat)): ctx.probe("raster_value", map=raster, east=p["x"], north=p["y"])
            for cat, p in sorted(points.items())}


def _raster_at_feature_reader(ctx: CheckContext, vector: str, raster: str, key_column: str, key: Any,
                              tolerance: float = 1e-6, mapset: str = "") -> float | None:
    point = _measures(ctx, vector, "coor", mapset).get(_feature_cat(ctx, vector, key_column, key, mapset))
    if point is None:
        raise CheckFailed(f"the feature of {vector} with {key_column} = {key!r} is not a point")
    return ctx.probe("raster_value", map=raster, east=point["x"], north=point["y"])


@ADAPTER.check("answer_raster_at_feature", at_reset=_raster_at_feature_reader)
def answer_raster_at_feature(ctx: CheckContext, vector: str, raster: str, key_column: str, key: Any,
                             tolerance: float = 1e-6, mapset: str = "") -> tuple[bool, str]:
    """The answer is ``raster``'s value at the point of ``vector`` whose ``key_column`` is ``key``
    (e.g. the elevation at a town), as GRASS read it when the episode began."""
    expected, given = ctx.at_reset, _answer(ctx)
    if expected is None or given is None:
        return False, f"answer {ctx.answer!r}, {raster} at {key!r} = {expected!r}"
    return close_enough(given, expected, tolerance), f"answer {given:g}, {raster} at {key} = {expected:.10g}"


def _extreme_reader(ctx: CheckContext, vector: str, raster: str, label_column: str, extreme: str = "max",
                    mapset: str = "") -> dict[str, float | None]:
    return _raster_at_points(ctx, vector, raster, label_column, mapset)


@ADAPTER.check("answer_feature_extreme", at_reset=_extreme_reader)
def answer_feature_extreme(ctx: CheckContext, vector: str, raster: str, label_column: str, extreme: str = "max",
                           mapset: str = "") -> tuple[bool, str]:
    """The answer names (``label_column``, case-insensitive, a trailing full stop ignored) the point of
    ``vector`` where ``raster`` is highest (``extreme`` "max") or lowest ("min"), as read at reset."""
    if extreme not in ("max", "min"):
        raise ValueError("extreme must be max or min")
    values = {label: v for label, v in (ctx.at_reset or {}).items() if v is not None}
    if ctx.answer is None or not values:
        return False, f"answer {ctx.answer!r}; {raster} at the points of {vector}: {values}"
    pick = max if extreme == "max" else min
    expected = pick(values, key=lambda label: values[label])
    given = ctx.answer.strip().rstrip(".").strip().lower()
    return given == expected.lower(), f"answer {ctx.answer!r}, the {extreme} of {raster} is at {expected}"


def _area_reader(ctx: CheckContext, vector: str, key_column: str, key: Any, units: str = "hectares",
                 tolerance: float = 1e-6, mapset: str = "") -> float | None:
    if units not in AREA_UNITS:
        raise CheckFailed(f"units must be one of {sorted(AREA_UNITS)}")
    area = _measures(ctx, vector, "area", mapset).get(_feature_cat(ctx, vector, key_column, key, mapset))
    return None if area is None else area["area"] / AREA_UNITS[units]


@ADAPTER.check("answer_feature_area", at_reset=_area_reader)
def answer_feature_area(ctx: CheckContext, vector: str, key_column: str, key: Any, units: str = "hectares",
                        tolerance: float = 1e-6, mapset: str = "") -> tuple[bool, str]:
    """The answer is the area, in ``units``, of the area feature of ``vector`` whose ``key_column`` is
    ``key``, as GRASS measured it when the episode began."""
    expected, given = ctx.at_reset, _answer(ctx)
    if expected is None or given is None:
        return False, f"answer {ctx.answer!r}, area of {key!r} = {expected!r} {units}"
    return close_enough(given, expected, tolerance), f"answer {given:g}, area of {key} = {expected:.10g} {units}"
