"""`sciboard compare` on real KAlgebra desktops: killed mid-run and resumed, a third-party agent,
the plot, and the viewer rendered in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

pytestmark = [pytest.mark.desktop, pytest.mark.xdist_group("compare")]

ROOT = Path(__file__).resolve().parents[1]
AGENTS = "oracle,random,copycat=compare_fakes:OracleCopyAgent"


def compare_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "sciboard_gym.cli", "compare", "--agents", AGENTS, "--apps", "kalgebra",
            "--tasks", "assign-*", "--k", "2", "--envs", "2", "--out", str(out)]


def rows(out: Path) -> list[dict[str, str]]:
    path = out / "episodes.csv"
    if not path.exists():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Start a comparison, SIGKILL it after three finished episodes, then run the same command again."""
    out = tmp_path_factory.mktemp("compare")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    first = subprocess.Popen(compare_command(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while len(rows(out)) < 3:
            assert first.poll() is None, "the first run ended before it could be killed"
            assert time.monotonic() < deadline, "no three episodes within 240 s"
            time.sleep(0.2)
        workers = psutil.Process(first.pid).children(recursive=True)
    finally:
        first.kill()
        first.wait()
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"processes outlived the killed run: {[p.pid for p in alive]}"
    before = {(r["agent"], r["task"], r["repeat"]) for r in rows(out)}
    stamps = {(r["agent"], r["task"], r["repeat"]): (out / r["folder"] / "result.json").stat().st_mtime_ns
              for r in rows(out)}
    second = subprocess.run(compare_command(out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                            check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    return out, before, stamps, second.stdout


def test_killed_compare_resumes_and_counts_every_episode_once(resumed_run):
    out, before, stamps, stdout = resumed_run
    assert len(before) >= 3
    final = rows(out)
    keys = [(r["agent"], r["task"], r["repeat"]) for r in final]
    assert len(keys) == len(set(keys)) == 3 * 2 * 2
    for r in final:  # the episodes finished before the kill were kept, not run again
        key = (r["agent"], r["task"], r["repeat"])
        if key in stamps:
            assert (out / r["folder"] / "result.json").stat().st_mtime_ns == stamps[key]
    by = {(r["agent"], r["task"], r["repeat"]): r for r in final}
    assert all(by[("oracle", t, rep)]["success"] == "True"
               for t in ("kalgebra/assign-product", "kalgebra/assign-sum") for rep in ("0", "1"))
    # the third-party agent (module:Class) ran on the real desktop: solved one task, crashed on the other
    assert by[("copycat", "kalgebra/assign-sum", "0")]["success"] == "True"
    crashed = by[("copycat", "kalgebra/assign-product", "0")]
    assert crashed["success"] == "False" and "cannot do products" in crashed["error"]
    assert "| oracle | kalgebra | 2 | 4 | 100.00 ± 0.00 | 100.00 | 0 |" in stdout
    assert "| copycat | kalgebra | 2 | 4 | 50.00" in stdout
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert {s["agent"] for s in summary} == {"oracle", "random", "copycat"}
    with Image.open(out / "plot.png") as plot:
        assert plot.size[0] > 400 and plot.size[1] > 300
    steps = [json.loads(line) for line in (out / by[("oracle", "kalgebra/assign-sum", "0")]["folder"]
                                            / "steps.jsonl").read_text().splitlines()]
    assert [s["action"] for s in steps] == ['type("total:=17+25+58")', 'key("Return")', "done()"]


def test_viewer_renders_and_steps_in_headless_chromium(resumed_run):
    from headless_chromium import HeadlessChromium

    out = resumed_run[0]
    browser = HeadlessChromium()
    try:
        browser.open((out / "viewer.html").resolve().as_uri())
        browser.wait_for("document.querySelectorAll('#episode-table tbody tr').length === 12")
        assert browser.evaluate("document.querySelectorAll('#summary-table tbody tr').length") == 3
        browser.evaluate("document.getElementById('filter-agent').value = 'oracle';"
                         "document.getElementById('filter-agent').dispatchEvent(new Event('change'))")
        browser.wait_for("document.querySelectorAll('#episode-table tbody tr').length === 4")
        browser.evaluate("[...document.querySelectorAll('#episode-table a')]"
                         ".find(a => a.textContent === 'kalgebra/assign-sum').click()")
        browser.wait_for("document.querySelector('.step-counter')")
        assert browser.evaluate("document.querySelector('.step-counter').textContent") == "step 1 / 3"
        browser.wait_for("document.querySelector('.step-image').naturalWidth === 1920")
        assert "total:=17+25+58" in browser.evaluate("document.querySelector('.overlay').textContent")
        browser.evaluate("document.querySelector('.next-step').click()")
        browser.wait_for("document.querySelector('.step-counter').textContent === 'step 2 / 3'")
        assert 'key("Return")' in browser.evaluate("document.querySelector('.step-details').textContent")
        browser.evaluate("document.querySelector('.next-step').click()")
        browser.wait_for("document.querySelector('.checks')")
        assert "variable_equals" in browser.evaluate("document.querySelector('.checks').textContent")
        shot = browser.screenshot(out / "viewer-episode.png")
        browser.evaluate("location.hash = '#/compare?task=kalgebra/assign-product&a=oracle&b=copycat'")
        browser.wait_for("document.querySelectorAll('#compare-panes .pane').length === 2")
        assert "cannot do products" in browser.evaluate("document.getElementById('compare-panes').textContent")
        assert browser.console == [], browser.console
    finally:
        browser.close()
    with Image.open(shot) as image:
        assert image.size[0] >= 800 and len(set(image.convert("L").getdata())) > 20  # a drawn page, not blank
