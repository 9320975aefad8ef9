"""GRASS GIS env: the data builder, probe argument checks and parsing, host checks, and a live episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sciboard_guest.apps import grass as guest
from sciboard_guest.apps import grass_data as data
from sciboard_gym.apps import get_adapter
from sciboard_gym.apps import grass as adapter
from sciboard_gym.apps.base import CheckContext
from sciboard_gym.tasks import Task, TaskError, load_app_tasks

HAVE_GRASS = shutil.which("grass", path=data.CLEAN_PATH) is not None
needs_grass = pytest.mark.skipif(not HAVE_GRASS, reason="GRASS GIS is not installed (scripts/install.sh)")


# --- the authored data -----------------------------------------------------------

def _shoelace(ring: list[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]))) / 2


def _inside_region(x: float, y: float) -> bool:
    r = data.REGION
    return r["w"] <= x <= r["e"] and r["s"] <= y <= r["n"]


def test_authored_layers_are_valid_geojson_inside_the_region():
    sources = {name: json.loads(text) for name, text in data.vector_sources().items()}
    assert set(sources) == {"towns", "roads", "lakes", "districts"}
    counts = {name: len(fc["features"]) for name, fc in sources.items()}
    assert counts == {"towns": 8, "roads": 6, "lakes": 3, "districts": 4}
    for fc in sources.values():
        for feature in fc["features"]:
            geometry = feature["geometry"]
            points = ([geometry["coordinates"]] if geometry["type"] == "Point" else geometry["coordinates"]
                      if geometry["type"] == "LineString" else geometry["coordinates"][0])
            assert all(_inside_region(x, y) for x, y in points), feature["properties"]
            if geometry["type"] == "Polygon":
                assert points[0] == points[-1]  # closed rings


def test_districts_tile_the_region_and_lake_areas_are_known():
    r = data.REGION
    total = sum(_shoelace(ring) for _, _, ring in data.DISTRICTS)
    assert total == (r["n"] - r["s"]) * (r["e"] - r["w"])
    # The lake-area task's answers (its seeded variants) follow from the authored rings.
    assert {name: _shoelace(ring) / 10000 for name, _, ring in data.LAKES} == {
        "Silver Tarn": 116.5, "Black Loch": 109.0, "Reed Pond": 47.0}
    assert sum(pop for _, _, _, pop, _ in data.TOWNS) == 49280


def test_parse_key_values_reads_shell_style_output():
    text = 'north=5130000\nsouth=5120000\ntitle="Elevation (synthetic terrain)"\nnoise line\n=x\n'
    assert data.parse_key_values(text) == {"north": "5130000", "south": "5120000",
                                           "title": "Elevation (synthetic terrain)"}


def test_numbers_keep_ints_ints_and_text_text():
    assert guest._numbers({"rows": "500", "nsres": "20", "mean": "991.87", "datatype": "FCELL", "big": "1e3"}) == {
        "rows": 500, "nsres": 20, "mean": 991.87, "datatype": "FCELL", "big": 1000.0}


def test_module_env_is_clean_and_points_at_grass(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIBOARD_GISBASE", "/opt/grass")
    data.gisbase.cache_clear()
    try:
        env = data.module_env(tmp_path / "rc", {"PYTHONPATH": "/venv", "VIRTUAL_ENV": "/venv", "GISRC": "x",
                                                 "HOME": "/h", "DISPLAY": ":5"})
    finally:
        data.gisbase.cache_clear()
    assert env["GISBASE"] == "/opt/grass" and env["GISRC"] == str(tmp_path / "rc")
    assert env["PYTHONPATH"] == "/opt/grass/etc/python" and "VIRTUAL_ENV" not in env
    assert env["PATH"].startswith("/opt/grass/bin:/opt/grass/scripts:") and env["GRASS_PYTHON"] == "/usr/bin/python3"
    assert env["HOME"] == "/h" and env["DISPLAY"] == ":5"


# --- probe and setup argument checks (no GRASS needed) --------------------------------

@pytest.mark.parametrize("name", ["a;b", "../x", "x y", "1abc", "", "a" * 101, None, "elevation@PERMANENT"])
def test_map_names_are_checked(name):
    with pytest.raises(ValueError):
        guest._check_name(name)


@pytest.mark.parametrize("mapset", ["../etc", "a/b", "probe", "", None])
def test_mapsets_are_checked(mapset):
    with pytest.raises(ValueError):
        guest._check_mapset(mapset)


class FakeCtx:
    def __init__(self, home: Path):
        self.home = home


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../../b", ""])
def test_files_must_stay_under_home(tmp_path, path):
    with pytest.raises(ValueError):
        guest._home_file(FakeCtx(tmp_path), path)


def test_workspace_probe_parses_saved_layers(tmp_path):
    (tmp_path / "w.gxw").write_text(
        '<?xml version="1.0"?><gxw><display name="Map Display 1">'
        '<layer type="raster" name="elevation@PERMANENT" checked="1" opacity="1.000000"><task name="d.rast"/></layer>'
        '<group name="g"><layer type="vector" name="roads@PERMANENT" checked="0" opacity="0.5"/></group>'
        "</display></gxw>")
    found = guest.workspace(FakeCtx(tmp_path), "w.gxw")
    assert found["exists"] and found["displays"][0]["layers"] == [
        {"type": "raster", "name": "elevation@PERMANENT", "checked": True, "opacity": 1.0, "module": "d.rast"},
        {"type": "vector", "name": "roads@PERMANENT", "checked": False, "opacity": 0.5, "module": None}]
    assert guest.workspace(FakeCtx(tmp_path), "missing.gxw") == {"exists": False, "displays": []}


@pytest.mark.parametrize("args", [{"n": 1, "s": 2, "e": 3, "w": 0, "res": 1},
                                  {"n": 2, "s": 1, "e": 3, "w": 0, "res": 0},
                                  {"n": "2", "s": 1, "e": 3, "w": 0, "res": 1}])
def test_set_region_rejects_bad_bounds_before_running_grass(tmp_path, args):
    with pytest.raises((ValueError, TypeError)):
        guest.set_region(FakeCtx(tmp_path), **args)


def test_no_setup_step_types_commands_into_the_console():
    assert "console_command" not in guest.APP.setups


# --- host checks against canned probe answers -----------------------------------------

class CannedClient:
    def __init__(self, answers: dict[str, object]):
        self.answers, self.calls = answers, []

    def probe(self, name, args):
        self.calls.append((name, args))
        return self.answers[name]


def check(_check: str, answers: dict, answer: str | None = None, **args):
    task = Task.from_dict({"id": "grass/t", "app": "grass", "instruction": "A canned task for a check.",
                           "max_steps": 2, "evaluate": [{"check": _check, "args": args}], "oracle": ["done()"]})
    ctx = CheckContext(client=CannedClient(answers), answer=answer, task=task)
    return adapter.ADAPTER.checks[_check](ctx, **args)


REGION = {"n": 5130000, "s": 5120000, "e": 612000, "w": 600000, "nsres": 20, "ewres": 20, "rows": 500, "cols": 600,
          "cells": 300000}


def test_region_equals_reports_the_mismatch():
    ok, detail = check("region_equals", {"region": REGION}, nsres=100, n=5130000)
    assert not ok and "nsres" in detail and "'n'" not in detail.split("expected")[0]
    assert check("region_equals", {"region": REGION}, rows=500, cols=600)[0]
    assert not check("region_equals", {"region": REGION})[0]


def test_attribute_set_compares_numbers_by_value():
    records = [{"cat": 1, "level": 300.0}, {"cat": 2, "level": 400}]
    assert check("attribute_set", {"vector_attributes": records}, name="c", column="level", values=[300, 400.0])[0]
    assert not check("attribute_set", {"vector_attributes": records}, name="c", column="level", values=[300])[0]


def test_attribute_value_needs_exactly_one_matching_record():
    records = [{"name": "A7", "length_m": 12396.99489}, {"name": "B12", "length_m": 9403.69}]
    assert check("attribute_value", {"vector_attributes": records}, name="roads", key_column="name", key="A7",
                 column="length_m", value=12397.0, tolerance=1e-5)[0]
    ok, detail = check("attribute_value", {"vector_attributes": records + records}, name="roads", key_column="name",
                       key="A7", column="length_m", value=12397.0, tolerance=1e-5)
    assert not ok and "2 records" in detail


def test_answers_are_compared_with_what_grass_computes():
    stats = {"raster_stats": {"mean": 991.873072261505, "null_cells": 300}}
    assert check("answer_raster_stat", stats, answer="991.87", name="elevation", stat="mean", tolerance=1e-4)[0]
    assert not check("answer_raster_stat", stats, answer="992.5", name="elevation", stat="mean", tolerance=1e-4)[0]
    assert not check("answer_raster_stat", stats, answer=None, name="elevation", stat="mean")[0]
    counts = {"raster_counts": {"4": 109562, "5": 56900}}
    assert check("answer_raster_count", counts, answer="4382.48", name="landuse", value="4", scale=0.04)[0]


TOWN_RECORDS = [{"cat": 1, "name": "Aldbrook"}, {"cat": 2, "name": "Eastham"}, {"cat": 3, "name": "Fernhill"}]
TOWN_POINTS = [{"cat": 1.0, "x": 602150.0, "y": 5127400.0, "z": 0.0}, {"cat": 2.0, "x": 609200.0, "y": 5121700.0,
               "z": 0.0}, {"cat": 3.0, "x": 605300.0, "y": 5125400.0, "z": 0.0}]
LAKE_RECORDS = [{"cat": 1, "name": "Silver Tarn"}, {"cat": 2, "name": "Black Loch"}]
LAKE_AREAS = [{"cat": 1.0, "area": 1165000.0}, {"cat": 2.0, "area": 1090000.0}]


class FakeTownsClient:
    """Canned points and areas, and rasters that are functions of the easting (``raster_value`` per point):
    elevation = (east - 600000) / 10 + 1, rainfall 499 more."""

    def __init__(self, records: list | None = None):
        self.records = records

    def probe(self, name, args):
        if name == "vector_attributes":
            return self.records or (TOWN_RECORDS if args["map"] == "towns" else LAKE_RECORDS)
        if name == "vector_measures":
            return TOWN_POINTS if args["option"] == "coor" else LAKE_AREAS
        if name == "raster_value":
            return (args["east"] - 600000) / 10 + (1 if args["map"] == "elevation" else 500)
        raise AssertionError(name)


def _read_then_check(check_name: str, answer: str, client=None, **args):
    task = Task.from_dict({"id": "grass/t", "app": "grass", "instruction": "A canned task for a check.",
                           "max_steps": 2, "evaluate": [{"check": check_name, "args": args}], "oracle": ["done()"]})
    client = client or FakeTownsClient()
    seen = adapter.ADAPTER.read_at_reset(task, client)
    return adapter.ADAPTER.evaluate(task, client, answer, seen)[1][0]


def test_answers_about_one_feature_are_read_at_reset():
    at = {"vector": "towns", "raster": "elevation", "key_column": "name", "key": "Fernhill", "tolerance": 1e-5}
    assert _read_then_check("answer_raster_at_feature", "531 m", **at).passed          # (605300-600000)/10 + 1
    assert not _read_then_check("answer_raster_at_feature", "921", **at).passed         # Eastham's value
    result = _read_then_check("answer_raster_at_feature", "531", **{**at, "key": "Nowhere"})
    assert not result.passed and not result.raised
    extreme = {"vector": "towns", "raster": "elevation", "label_column": "name"}
    assert _read_then_check("answer_feature_extreme", "Eastham.", **extreme).passed
    assert _read_then_check("answer_feature_extreme", "aldbrook", **extreme, extreme="min").passed
    assert not _read_then_check("answer_feature_extreme", "Eastham or Fernhill", **extreme).passed
    area = {"vector": "lakes", "key_column": "name", "key": "Black Loch"}
    assert _read_then_check("answer_feature_area", "109 ha", **area).passed
    assert _read_then_check("answer_feature_area", "1.09", **area, units="square_kilometers").passed
    assert not _read_then_check("answer_feature_area", "116.5", **area).passed


def test_attribute_matches_raster_samples_the_points():
    wells = [{"cat": 1, "elevation": 216.0}, {"cat": 2, "elevation": 921.0}, {"cat": 3, "elevation": 531.0}]
    args = {"name": "wells", "column": "elevation", "raster": "elevation"}
    assert check_points("attribute_matches_raster", wells, **args)[0]
    wrong = [dict(w, elevation=w["elevation"] + 499) for w in wells]               # the rainfall raster's values
    assert not check_points("attribute_matches_raster", wrong, **args)[0]
    assert not check_points("attribute_matches_raster", [dict(w, elevation=None) for w in wells], **args)[0]


def check_points(check_name: str, records: list, **args):
    task = Task.from_dict({"id": "grass/t", "app": "grass", "instruction": "A canned task for a check.",
                           "max_steps": 2, "evaluate": [{"check": check_name, "args": args}], "oracle": ["done()"]})
    ctx = CheckContext(client=FakeTownsClient(records), answer=None, task=task)
    return adapter.ADAPTER.checks[check_name](ctx, **args)


def test_gui_setting_walks_the_preferences_path():
    prefs = {"gui_settings": {"display": {"autoZooming": {"enabled": True}}}}
    assert check("gui_setting", prefs, path="display/autoZooming/enabled", value=True)[0]
    assert not check("gui_setting", prefs, path="display/autoZooming/enabled", value=False)[0]
    assert not check("gui_setting", prefs, path="manager/askOnRemoveLayer/enabled", value=False)[0]


# --- tasks ---------------------------------------------------------------------------

def test_at_least_thirty_tasks_of_mixed_kinds():
    tasks = load_app_tasks("grass")
    assert len(tasks) >= 30
    tags = {tag for task in tasks for tag in task.tags}
    assert {"gui", "console", "answer", "mixed"} <= tags
    assert {task.difficulty for task in tasks} == {"easy", "medium", "hard"}


def test_broken_grass_task_is_rejected_with_the_field():
    adapter_ = get_adapter("grass")
    good = {k: v for k, v in load_app_tasks("grass")[0].to_dict().items() if k != "alternatives"}
    bad_check = {**good, "evaluate": [{"check": "raster_exist", "args": {"name": "slope"}}]}
    with pytest.raises(TaskError, match=r"evaluate/0.*unknown check 'raster_exist'"):
        adapter_.validate_task(Task.from_dict(bad_check, source="bad.json"))
    bad_args = {**good, "evaluate": [{"check": "region_equals", "args": {"north": 5}}]}
    with pytest.raises(TaskError, match=r"evaluate/0.*unknown \['north'\]"):
        adapter_.validate_task(Task.from_dict(bad_args, source="bad.json"))
    bad_setup = {**good, "setup": [{"step": "copy_map", "args": {"kind": "raster"}}]}
    with pytest.raises(TaskError, match=r"setup/0.*missing \['name'\]"):
        adapter_.validate_task(Task.from_dict(bad_setup, source="bad.json"))


# --- building the data with GRASS ---------------------------------------------------------

@needs_grass
def test_data_build_is_deterministic(tmp_path):
    first = data.build(tmp_path / "a")
    second = data.build(tmp_path / "b")
    assert first == second
    assert first["rasters"]["elevation"]["min"] == "250" and first["rasters"]["elevation"]["max"] == "1700"
    assert first["rasters"]["dem_gaps"]["null_cells"] == "300"
    assert first["vectors"]["wells"]["topology"]["points"] == "60"
    assert [r["name"] for r in first["vectors"]["towns"]["records"]] == [t[0] for t in data.TOWNS]
    mapset = tmp_path / "a" / "grassdata" / data.LOCATION
    assert sorted(p.name for p in mapset.iterdir()) == ["PERMANENT", data.USER_MAPSET]
    assert not list(mapset.glob("*/.gislock"))


@needs_grass
def test_install_gives_a_fresh_writable_copy(tmp_path):
    cache = data.ensure_cache(tmp_path / "cache")
    assert data.ensure_cache(tmp_path / "cache") == cache  # built once
    home = tmp_path / "home"
    home.mkdir()
    mapset = data.install(cache, home)
    assert mapset == home / "grassdata" / data.LOCATION / data.USER_MAPSET and (mapset / "WIND").is_file()
    prefs = json.loads((home / ".grass8" / "wx.json").read_text())
    assert prefs["general"]["singleWindow"]["enabled"] is True
    (mapset / "WIND").write_text("changed")
    assert (cache / "grassdata" / data.LOCATION / data.USER_MAPSET / "WIND").read_text() != "changed"


# --- a live episode -----------------------------------------------------------------------

@pytest.mark.desktop
@needs_grass
def test_probes_read_while_the_gui_holds_its_lock(live_env):
    env = live_env("grass")
    _, reset_info = env.reset(seed=0, options={"task": "grass/region-cells-answer"})
    res, cells = reset_info["parameters"]["r"]["res"], reset_info["parameters"]["r"]["cells"]
    client = env.provider.client
    region = client.probe("region", {})
    assert (region["rows"], region["cols"], region["cells"]) == (6000 // res, 5000 // res, cells)  # the set_region
    info = client.probe("raster_info", {"map": "elevation"})
    assert info["datatype"] == "FCELL" and info["mapset"] == "PERMANENT" and info["rows"] == 500
    assert client.probe("raster_stats", {"map": "landuse"})["n"] == 300000  # the map's extent, not the region's
    assert client.probe("raster_categories", {"map": "landuse"})["6"] == "bare rock"
    assert client.probe("vector_info", {"map": "districts"})["areas"] == 4
    assert client.probe("maps", {"kind": "vector", "mapset": "PERMANENT"}) == sorted(data.VECTORS)
    windows = client.probe("gui_windows", {})
    assert [w["name"] for w in windows] == [f"{data.LOCATION}/{data.USER_MAPSET} - GRASS GIS"]
    _, reward, terminated, _, info = env.step(f'answer("{cells}")')
    passed = {check["check"]: check["passed"] for check in info["checks"]}
    assert terminated and passed["answer_region"], info["checks"]  # the probe read the region under the lock
    assert not passed["history_contains"] and reward == 0.0  # but the answer alone shows no work in GRASS
