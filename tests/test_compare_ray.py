"""`sciboard compare --ray`: comparison episodes on the desktops of a (local) Ray cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from baselines.compare import CompareConfig, run_compare, select_tasks

pytestmark = [pytest.mark.desktop, pytest.mark.xdist_group("ray")]
ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def local_ray(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    ray.init(num_cpus=2, resources={"desktop": 2}, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_compare_runs_on_ray_actors_and_resumes(local_ray: None, tmp_path: Path) -> None:
    tasks = select_tasks(["kalgebra"], pattern="assign-*")
    config = CompareConfig(agents=["oracle", "random"], out=tmp_path, envs=2, ray="auto")
    seen = []
    result = run_compare(config, progress=False, tasks=tasks, on_record=seen.append)
    assert len(seen) == 4 and {r.agent for r in seen} == {"oracle", "random"}
    oracle = [r for r in result.records if r.agent == "oracle"]
    assert all(r.success and r.error is None and r.steps == 3 for r in oracle)
    assert (tmp_path / "summary.md").exists() and (tmp_path / "viewer.html").exists()
    for record in result.records:  # the trajectories came back from the actors
        folder = tmp_path / record.folder
        steps = (folder / "steps.jsonl").read_text().splitlines()
        assert (folder / "result.json").exists() and len(steps) == record.steps
        assert (folder / "episode.json").exists() and len(list(folder.glob("*.png"))) == record.steps + 1
    again = []
    run_compare(config, progress=False, tasks=tasks, on_record=again.append)
    assert again == []  # every episode already has its result
