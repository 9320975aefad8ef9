"""``sciboard train stage1``: configuration, and an interrupted run that continues where it stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coda_agent.stage1 import Stage1Config
from sciboard_gym.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_recipe_and_flags(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('app = "kalgebra"\nplanner = "p"\nexecutor = "http://127.0.0.1:8000/v1#uitars"\n'
                      'group = 8\nscreen_size = [1280, 800]\nepisodes = ["runs/oracle"]\n')
    config = Stage1Config.from_toml(recipe, group=4, reward=None)
    assert (config.group, config.reward, config.screen_size, config.episodes) == (4, "env", (1280, 800),
                                                                                  ["runs/oracle"])
    recipe.write_text('app = "kalgebra"\nplanner = "p"\nexecutor = "e"\ngroups = 8\n')
    with pytest.raises(ValueError, match="unknown keys \\['groups'\\]"):
        Stage1Config.from_toml(recipe)
    with pytest.raises(ValueError, match="group must be at least 2"):
        Stage1Config(app="kalgebra", planner="p", executor="e", group=1)


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "stage1", "--app", "kalgebra"]) == 2
    assert "--planner, --executor" in capsys.readouterr().err
    assert main(["train", "stage1", "--app", "kalgebra", "--planner", "p", "--executor", "e", "--reward", "vote",
                 "--out", str(tmp_path)]) == 2
    assert "reward must be one of" in capsys.readouterr().err
    assert main(["train", "stage1", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the recipe" in capsys.readouterr().err


def rows(out: Path) -> list[dict[str, str]]:
    path = out / "log.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_interrupted_run_continues(tmp_path: Path) -> None:
    from coda_agent.tiny import cached_tiny_qwen25vl

    tiny = str(cached_tiny_qwen25vl())
    out = tmp_path / "run"
    command = [sys.executable, "-m", "sciboard_gym.cli", "train", "stage1", "--app", "kalgebra", "--planner", tiny,
               "--executor", tiny, "--out", str(out), "--group", "2", "--rounds", "3", "--train-episodes", "1",
               "--eval-episodes", "1", "--updates-per-round", "1", "--max-steps", "2", "--max-new-tokens", "8",
               "--executor-max-new-tokens", "8", "--planner-max-pixels", "50176", "--executor-max-pixels", "50176",
               "--screen-size", "1280", "800", "--learning-rate", "1e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    while not rows(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)  # round 0 is logged: interrupt a later round (a busy machine may finish one more)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 130, output
    logged = len(rows(out))
    assert logged in (1, 2) and [r["round"] for r in rows(out)] == [str(i) for i in range(logged)]
    episode = next((out / "rounds" / "000" / "train").glob("*/episode.json"))
    stamp = episode.stat().st_mtime_ns
    state = json.loads((out / "state.json").read_text())
    assert state["round"] == logged and state["round_cursor"] == logged

    second = subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert [r["round"] for r in rows(out)] == ["0", "1", "2"]
    assert episode.stat().st_mtime_ns == stamp  # round 0 was not played again
    assert f"from checkpoint-{logged}" in second.stdout  # training resumed from the last finished round's checkpoint
    trainer_state = json.loads((out / "trainer" / "checkpoint-3" / "trainer_state.json").read_text())
    assert trainer_state["global_step"] == 3
    assert [e["step"] for e in trainer_state["log_history"] if "loss" in e] == [1, 2, 3]
    tasks = [next((out / "rounds" / f"{r:03d}" / "train").glob("*/episode.json")).parent.name for r in range(3)]
    assert tasks[1].startswith("000-kalgebra_answer-gcd")  # the task cursor moves on to the next training task
    assert len({name.split("-", 1)[1] for name in tasks}) == 3
    assert json.loads((out / "state.json").read_text())["round"] == 3
