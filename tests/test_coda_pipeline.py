"""The two-stage recipe: its format, the table, and a shortened end-to-end run on KAlgebra."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from coda_agent.pipeline import CODAPipeline, Recipe, markdown_table

REPO = Path(__file__).resolve().parents[1]


def test_recipes_parse_and_bad_recipes_are_refused(tmp_path: Path) -> None:
    for name in ("coda-cpu-demo.toml", "coda-gpu.toml"):
        recipe = Recipe.from_toml(REPO / "recipes" / name)
        assert recipe.apps and recipe.evaluate.k >= 1
    bad = tmp_path / "bad.toml"
    bad.write_text('planner = "tiny"\nexecutor = "tiny"\napps = ["kalgebra"]\nstage3 = {}\n')
    with pytest.raises(ValueError, match="unknown keys \\['stage3'\\]"):
        Recipe.from_toml(bad)
    bad.write_text('planner = "tiny"\nexecutor = "tiny"\napps = ["notepad"]\n')
    with pytest.raises(ValueError, match="unknown apps"):
        Recipe.from_toml(bad)
    bad.write_text("planner = ")
    with pytest.raises(ValueError, match="cannot read the recipe"):
        Recipe.from_toml(bad)


def test_table_has_planners_as_rows_and_apps_as_columns() -> None:
    from baselines.metrics import EpisodeOutcome, summarise

    outcomes = [EpisodeOutcome("base", "a", "a/x", True), EpisodeOutcome("base", "a", "a/x", False),
                EpisodeOutcome("base", "a", "a/y", False), EpisodeOutcome("base", "a", "a/y", False),
                EpisodeOutcome("base", "b", "b/z", True), EpisodeOutcome("base", "b", "b/z", True),
                EpisodeOutcome("stage2", "a", "a/x", True), EpisodeOutcome("stage2", "a", "a/x", True)]
    table = markdown_table(summarise(outcomes, k=2), ["a", "b"], 2)
    assert "| planner | a Avg@2 | a Pass@2 | b Avg@2 | b Pass@2 | mean Avg@2 | mean Pass@2 |" in table
    assert "| base | 25.0 | 50.0 | 100.0 | 100.0 | 62.5 | 75.0 |" in table
    assert "| stage2 | 100.0 | 100.0 | - | - | 100.0 | 100.0 |" in table


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_two_stage_recipe_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Oracle runs, Stage 1, Stage 2 and the table on one app at the smallest size (the full
    two-app demo is recipes/coda-cpu-demo.toml)."""
    import torch

    torch.set_num_threads(1)
    recipe = Recipe(
        planner="tiny", executor="tiny", apps=["kalgebra"], out=str(tmp_path / "coda"), oracle_episodes=3,
        dtype="float32", planner_max_pixels=112 * 112 * 4, executor_max_pixels=112 * 112 * 4, max_new_tokens=8,
        executor_max_new_tokens=8,
        stage1={"reward": "match", "group": 2, "rounds": 1, "train_episodes": 1, "eval_episodes": 0,
                "updates_per_round": 1, "max_steps": 2, "learning_rate": 1e-4},
        stage2={"max_steps": 3, "learning_rate": 3e-3, "save_steps": 3, "eval_fraction": 0.4},
        evaluate={"k": 1, "tasks_per_app": 1, "max_steps": 2, "isolate": False},  # type: ignore[arg-type]
    )
    scores = CODAPipeline(recipe).run()
    assert {s.agent for s in scores} == {"base", "expert-kalgebra", "stage2"}
    out = capsys.readouterr().out
    assert "| planner | kalgebra Avg@1 | kalgebra Pass@1 | mean Avg@1 | mean Pass@1 |" in out
    assert "held-out loss after" in out and "| stage2 | " in out
    assert (tmp_path / "coda" / "table.md").read_text() in out
    assert (tmp_path / "coda" / "stage2" / "pool" / "README.md").exists()
    # a second run finds everything done and prints the same table without training again
    again = CODAPipeline(recipe).run()
    assert again == scores


def test_train_commands_report_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sciboard_gym.cli import main

    assert main(["train", "stage2", "--planner", "tiny-planner", "--out", str(tmp_path / "s2")]) == 2
    assert "give --from" in capsys.readouterr().err
    assert main(["train", "stage2", "--planner", "p", "--from", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "s2")]) == 2
    assert "no such folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "stage2", "--planner", "p", "--from", str(empty), "--out", str(tmp_path / "s2")]) == 2
    assert "no steps to train on" in capsys.readouterr().err
    assert main(["train", "coda", "--recipe", str(tmp_path / "none.toml")]) == 2
    assert "cannot read the recipe" in capsys.readouterr().err
