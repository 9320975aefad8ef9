"""Comparison logic without a desktop: metrics, agent specs, the runner's resume and failure handling,
and the single-model baselines' parsing (fakes only; the real runs are in test_compare_desktop.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from compare_fakes import FakeBackend, FakeEnvFactory

from baselines.compare import CompareConfig, CompareError, plan_jobs, run_compare, select_tasks
from baselines.episodes import load_results
from baselines.generalist import GeneralistAgent
from baselines.metrics import OVERALL_APPS, OVERALL_TASKS, EpisodeOutcome, pass_at_k, summarise
from baselines.pools import InlinePool, ProcessPool
from baselines.specialist import SpecialistAgent
from baselines.specs import AgentSpecError, resolve, short_names

# --- metrics -------------------------------------------------------------------------------------

def outcomes(agent: str, app: str, per_task: dict[str, list[bool]]) -> list[EpisodeOutcome]:
    return [EpisodeOutcome(agent, app, f"{app}/{task}", ok) for task, runs in per_task.items() for ok in runs]


def test_pass_at_k_matches_codas_count():
    """15 of 31 tasks solved at least once in 8 runs: Pass@8 = 48.39 (CODA's own figure)."""
    per_task = {f"t{i}": [i < 15 and r == 3 for r in range(8)] for i in range(31)}
    score = summarise(outcomes("coda", "app", per_task), k=8)[0]
    assert round(100 * score.pass_at_k, 2) == 48.39
    assert score.tasks == 31 and score.runs == 31 * 8
    assert round(100 * score.avg_at_k, 2) == round(100 * 15 / (31 * 8), 2)  # successes / (tasks x k) = 6.05


def test_pass_at_k_unbiased_estimator_when_more_runs_than_k():
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - math.comb(4, 2) / math.comb(5, 2))  # 0.4
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # Pass@1 is the success rate
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(6, 4, 3) == 1.0  # fewer failures than k: some success is certain
    assert pass_at_k(3, 1, 3) == 1.0 and pass_at_k(2, 0, 4) == 0.0  # n <= k: solved at least once
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_avg_pass_and_overall_means():
    episodes = (outcomes("a", "x", {"t1": [True, True], "t2": [True, False], "t3": [False, False]})
                + outcomes("a", "y", {"u1": [False, True]}))
    scores = {s.app: s for s in summarise(episodes, k=2)}
    assert scores["x"].avg_at_k == pytest.approx(3 / 6)
    assert scores["x"].pass_at_k == pytest.approx(2 / 3)
    assert scores["y"].avg_at_k == pytest.approx(0.5) and scores["y"].pass_at_k == 1.0
    rates_x = [1.0, 0.5, 0.0]
    assert scores["x"].avg_at_k_se == pytest.approx(np.std(rates_x, ddof=1) / math.sqrt(3))
    assert scores["y"].avg_at_k_se == pytest.approx(math.sqrt(0.25 / 2))  # one task: binomial over its runs
    assert scores[OVERALL_APPS].avg_at_k == pytest.approx((0.5 + 0.5) / 2)
    assert scores[OVERALL_APPS].pass_at_k == pytest.approx((2 / 3 + 1) / 2)
    assert scores[OVERALL_APPS].avg_at_k_se == pytest.approx(
        math.sqrt(scores["x"].avg_at_k_se ** 2 + scores["y"].avg_at_k_se ** 2) / 2)
    assert scores[OVERALL_TASKS].avg_at_k == pytest.approx(4 / 8)  # every task counts once
    assert scores[OVERALL_TASKS].pass_at_k == pytest.approx(3 / 4)
    assert scores[OVERALL_TASKS].tasks == 4


def test_errors_count_as_failures_and_in_n_err():
    episodes = [EpisodeOutcome("a", "x", "x/t", True, 3, 1.0), EpisodeOutcome("a", "x", "x/t", False, 0, 0.5, "boom")]
    score = summarise(episodes, k=2)[0]
    assert score.n_err == 1 and score.avg_at_k == 0.5 and score.mean_steps == 1.5


# --- agent specs ---------------------------------------------------------------------------------

def test_short_names_and_shipped_specs_resolve():
    for name in short_names():
        assert resolve(name).name == name
    assert resolve("coda-vllm").options["planner"]["model"].startswith("http://")
    assert resolve("mine=oracle").name == "mine"


def test_unknown_and_broken_specs_get_clear_errors(tmp_path: Path):
    with pytest.raises(AgentSpecError, match="unknown agent 'gpt-9'.*short name.*TOML.*module:Class"):
        resolve("gpt-9")
    with pytest.raises(AgentSpecError, match="cannot import module 'no_such_module'"):
        resolve("no_such_module:Agent")
    with pytest.raises(AgentSpecError, match="not an agent"):
        resolve("compare_fakes:NotAnAgent")
    with pytest.raises(AgentSpecError, match="does not exist"):
        resolve(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text('class = "coda"\n[planner]\nmodel = "http://h:1/v1#p"\n')
    with pytest.raises(AgentSpecError, match="needs a \\[executor\\] table"):
        resolve(str(bad))
    bad.write_text('class = "coda"\n[planner]\nmodel = "http://h:1/v1#p"\ndevice = "cuda"\n'
                   '[executor]\nmodel = "tiny"\n')
    with pytest.raises(AgentSpecError, match="do not apply to an HTTP model"):
        resolve(str(bad))
    bad.write_text("class = [")
    with pytest.raises(AgentSpecError, match="not a readable TOML"):
        resolve(str(bad))


def test_toml_spec_for_a_third_party_class(tmp_path: Path):
    spec_file = tmp_path / "mine.toml"
    spec_file.write_text('name = "copycat"\nclass = "compare_fakes:OracleCopyAgent"\n[options]\ncrash_on = "none"\n')
    spec = resolve(str(spec_file))
    assert (spec.name, spec.cls, spec.options) == ("copycat", "compare_fakes:OracleCopyAgent", {"crash_on": "none"})


# --- the runner ----------------------------------------------------------------------------------

def kalgebra_tasks(n: int = 3):
    return select_tasks(["kalgebra"], pattern="kalgebra/a*", max_tasks=n)


def read_rows(out: Path) -> list[dict[str, str]]:
    with (out / "episodes.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_compare_runs_every_episode_once_and_writes_outputs(tmp_path: Path):
    config = CompareConfig(agents=["oracle", "random", "compare_fakes:OracleCopyAgent"], out=tmp_path, k=2,
                           env=FakeEnvFactory())  # type: ignore[arg-type]
    tasks = select_tasks(["kalgebra"], pattern="assign-*")
    assert [t.id for t in tasks] == ["kalgebra/assign-product", "kalgebra/assign-sum"]
    result = run_compare(config, progress=False, tasks=tasks)
    rows = read_rows(tmp_path)
    assert len(rows) == 3 * 2 * 2
    assert len({(r["agent"], r["task"], r["repeat"]) for r in rows}) == len(rows)
    by_agent = {s.agent: s for s in result.scores}
    assert by_agent["oracle"].avg_at_k == 1.0 and by_agent["random"].avg_at_k == 0.0
    # the third-party agent crashes on one task: a failure with its error, counted in n_err
    crashed = [r for r in rows if r["agent"] == "OracleCopyAgent" and r["task"] == "kalgebra/assign-product"]
    assert crashed and all(r["success"] == "False" and "cannot do products" in r["error"] for r in crashed)
    assert by_agent["OracleCopyAgent"].n_err == 2
    for name in ("summary.csv", "summary.md", "plot.png", "viewer.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| oracle | kalgebra | 2 | 4 | 100.00" in (tmp_path / "summary.md").read_text()


class InterruptingPool(InlinePool):
    """Stops the run (as Ctrl-C would) after ``after`` episodes, with one more episode half-written."""

    def __init__(self, *args, after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = after

    def run(self, jobs):
        for count, record in enumerate(super().run(jobs), 1):
            yield record
            if count == self.after:
                half = self.out / jobs[count].folder
                half.mkdir(parents=True)
                (half / "episode.json").write_text('{"status": "running"}')
                raise KeyboardInterrupt


def test_interrupted_compare_resumes_and_counts_every_episode_once(tmp_path: Path):
    from baselines.compare import resolve_agents

    tasks = kalgebra_tasks(2)
    config = CompareConfig(agents=["oracle", "random"], out=tmp_path, k=2, env=FakeEnvFactory())  # type: ignore
    pool = InterruptingPool(resolve_agents(config.agents), config.env, tmp_path, after=3)
    with pytest.raises(KeyboardInterrupt):
        run_compare(config, pool=pool, progress=False, tasks=tasks)
    assert len(read_rows(tmp_path)) == 3
    first = {r.key: (tmp_path / r.folder / "result.json").stat().st_mtime_ns for r in load_results(tmp_path)}
    seen = []
    run_compare(config, progress=False, tasks=tasks, on_record=seen.append)
    rows = read_rows(tmp_path)
    assert len(rows) == 2 * 2 * 2 == len({(r["agent"], r["task"], r["repeat"]) for r in rows})
    assert len(seen) == 8 - 3 and not {r.key for r in seen} & set(first)  # finished ones were not re-run
    assert all((tmp_path / r.folder / "result.json").stat().st_mtime_ns == first[r.key]
               for r in load_results(tmp_path) if r.key in first)
    # a third run has nothing left to do
    again = []
    run_compare(config, progress=False, tasks=tasks, on_record=again.append)
    assert again == [] and len(read_rows(tmp_path)) == 8


def test_env_failures_and_dead_workers_are_recorded_and_the_run_goes_on(tmp_path: Path):
    tasks = kalgebra_tasks(3)
    config = CompareConfig(agents=["oracle"], out=tmp_path, envs=2,
                           env=FakeEnvFactory(die_on=tasks[0].id, break_on=tasks[1].id))  # type: ignore
    result = run_compare(config, progress=False, tasks=tasks)
    rows = {r["task"]: r for r in read_rows(tmp_path)}
    assert "worker process died" in rows[tasks[0].id]["error"]
    assert "fake desktop is broken" in rows[tasks[1].id]["error"]
    assert rows[tasks[2].id]["success"] == "True" and not rows[tasks[2].id]["error"]
    assert result.scores[0].n_err == 2


def test_a_label_cannot_change_its_spec_in_one_folder(tmp_path: Path):
    config = CompareConfig(agents=["me=oracle"], out=tmp_path, env=FakeEnvFactory())  # type: ignore
    run_compare(config, progress=False, tasks=kalgebra_tasks(1))
    with pytest.raises(CompareError, match="already holds results of agent 'me'"):
        run_compare(CompareConfig(agents=["me=random"], out=tmp_path, env=FakeEnvFactory()),  # type: ignore
                    progress=False, tasks=kalgebra_tasks(1))
    with pytest.raises(CompareError, match="both called 'oracle'"):
        run_compare(CompareConfig(agents=["oracle", "oracle"], out=tmp_path), progress=False)


def test_plan_gives_every_agent_the_same_seed_per_repeat():
    jobs = plan_jobs(["a", "b"], kalgebra_tasks(2), k=3, seed=10)
    assert len(jobs) == 12
    assert {(j.task, j.repeat): j.seed for j in jobs if j.agent == "a"} == \
        {(j.task, j.repeat): j.seed for j in jobs if j.agent == "b"}
    assert sorted({j.seed for j in jobs}) == [10, 11, 12]


def test_process_pool_needs_a_worker():
    with pytest.raises(ValueError):
        ProcessPool(0, {}, FakeEnvFactory(), Path("."))


# --- single-model baselines ----------------------------------------------------------------------

SCREEN = np.zeros((1080, 1920, 3), np.uint8)


def test_generalist_maps_model_image_coordinates_to_the_screen():
    backend = FakeBackend(["Thought: the OK button.\nAction: click(650, 365)", "Action: drag(0, 0, 1316, 730)",
                           "I would click somewhere", 'Action: answer("42")'])
    agent = GeneralistAgent(backend, max_pixels=1280 * 28 * 28)
    agent.reset("press OK")
    obs = {"screenshot": SCREEN, "instruction": "press OK"}
    image = backend_image_size = agent.conversation(obs)[1].parts[1].size  # type: ignore[union-attr]
    assert image == (1316, 728)
    assert f"{backend_image_size[0]}x{backend_image_size[1]}" in agent.conversation(obs)[0].parts[0]
    assert agent.act(obs) == f"click({round(650 / 1316 * 1920)}, {round(365 / 728 * 1080)})"
    assert agent.last_info["thought"] == "the OK button."
    assert agent.act(obs) == "drag(0, 0, 1919, 1079)"  # clamped to the screen's last pixel
    assert agent.act(obs) == "I would click somewhere" and agent.last_info["parse_error"]
    assert "refused" in agent.history[-1]
    assert agent.act(obs) == 'answer("42")'


def test_specialist_speaks_uitars_and_maps_finished_content_to_an_answer():
    backend = FakeBackend(["Thought: open it\nAction: left_double(start_box='(100,50)')",
                           "Action: finished(content='17')", "Action: finished(content='')",
                           "Action: launch_rocket()", "Action: call_user()"])
    agent = SpecialistAgent(backend, max_pixels=960 * 540, history_images=1)
    agent.reset("what is 8+9?")
    obs = {"screenshot": SCREEN, "instruction": "what is 8+9?"}
    first = agent.act(obs)
    width, height = backend.seen[0][-1].parts[0].size
    assert first == f"double_click({round(100 / width * 1920)}, {round(50 / height * 1080)})"
    assert "what is 8+9?" in backend.seen[0][0].parts[0]
    assert agent.act(obs) == 'answer("17")'
    roles = [m.role for m in backend.seen[1]]
    assert roles == ["user", "user", "assistant", "user"]  # task, previous screen, previous reply, current screen
    assert agent.act(obs) == "done()"
    assert agent.act(obs) == "launch_rocket()" and "no counterpart" in agent.last_info["parse_error"]
    assert agent.act(obs) == "fail()"


def test_tiny_model_agents_run_through_compare(tmp_path: Path, monkeypatch):
    """CODA, generalist and specialist specs on the tiny offline model: built, run, their step info recorded."""
    import json

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = CompareConfig(agents=["coda-tiny", "generalist-tiny", "specialist-tiny"], out=tmp_path,
                           env=FakeEnvFactory(max_steps=2))  # type: ignore[arg-type]
    result = run_compare(config, progress=False, tasks=select_tasks(["kalgebra"], pattern="assign-sum"))
    assert [s.agent for s in result.scores] == ["coda-tiny", "generalist-tiny", "specialist-tiny"]
    for record in result.records:
        assert record.error is None and record.steps >= 1
        steps = [json.loads(line) for line in (tmp_path / record.folder / "steps.jsonl").read_text().splitlines()]
        keys = {"coda-tiny": "planner_reply", "generalist-tiny": "reply", "specialist-tiny": "reply"}
        assert all(keys[record.agent] in step["agent"] for step in steps)


def test_cli_rejects_an_unknown_agent_before_starting_anything(tmp_path: Path, capsys):
    from sciboard_gym.cli import main

    status = main(["compare", "--agents", "oracle,gpt-9", "--apps", "kalgebra", "--out", str(tmp_path / "run")])
    assert status == 2
    assert "unknown agent 'gpt-9'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert main(["run", "--task", "kalgebra/assign-sum", "--agent", "nope:Nothing"]) == 2
    assert "cannot import module 'nope'" in capsys.readouterr().err


def test_viewer_embeds_steps_with_overlays_and_cannot_be_broken_out_of(tmp_path: Path):
    from baselines.viewer import action_overlay, build_viewer

    assert action_overlay("drag(1, 2, 30, 40)") == {"name": "drag", "x1": 1, "y1": 2, "x2": 30, "y2": 40}
    assert action_overlay("not an action") is None
    config = CompareConfig(agents=["oracle", "compare_fakes:OracleCopyAgent"], out=tmp_path, env=FakeEnvFactory())
    run_compare(config, progress=False, tasks=select_tasks(["kalgebra"], pattern="assign-*"))
    result = next(tmp_path.glob("episodes/oracle/kalgebra/assign-sum/r0/steps.jsonl"))
    result.write_text(result.read_text().replace('"agent": {}', '"agent": {"thought": "</script><b>x</b>"}'))
    page = build_viewer(tmp_path).read_text()
    assert page.count("</script>") == 1 and "\\u003c/script>\\u003cb>x" in page
    assert '"frame": "episodes/oracle/kalgebra/assign-sum/r0/frame_0001.png"' in page


KILLABLE_RUN = """
import sys
from pathlib import Path
from compare_fakes import FakeEnvFactory
from baselines.compare import CompareConfig, run_compare, select_tasks
config = CompareConfig(agents=["oracle", "random"], out=Path(sys.argv[1]), k=2, envs=2,
                       env=FakeEnvFactory(step_seconds=0.3))
run_compare(config, progress=False, tasks=select_tasks(["kalgebra"], pattern="assign-*"))
"""


def test_a_killed_parallel_run_leaves_no_workers_and_resumes(tmp_path: Path):
    """SIGKILL the runner mid-run: its worker processes end with it; the rerun counts each episode once."""
    import os
    import subprocess
    import sys
    import time

    import psutil

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)])}
    command = [sys.executable, "-c", KILLABLE_RUN, str(tmp_path)]
    first = subprocess.Popen(command, env=env, cwd=root)
    deadline = time.monotonic() + 120
    try:
        while not (tmp_path / "episodes.csv").exists() or len(read_rows(tmp_path)) < 2:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        workers = psutil.Process(first.pid).children(recursive=True)
        assert workers
    finally:
        first.kill()
        first.wait()
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    done_before = len(read_rows(tmp_path))
    assert 2 <= done_before < 8
    subprocess.run(command, env=env, cwd=root, check=True, timeout=120)
    rows = read_rows(tmp_path)
    assert len(rows) == 8 == len({(r["agent"], r["task"], r["repeat"]) for r in rows})


def test_retry_errors_runs_failed_episodes_again(tmp_path: Path):
    tasks = kalgebra_tasks(2)
    broken = CompareConfig(agents=["oracle"], out=tmp_path, env=FakeEnvFactory(break_on=tasks[0].id))  # type: ignore
    run_compare(broken, progress=False, tasks=tasks)
    assert [r["error"] != "" for r in read_rows(tmp_path)] == [True, False]
    seen = []
    run_compare(CompareConfig(agents=["oracle"], out=tmp_path, env=FakeEnvFactory()),  # type: ignore
                progress=False, tasks=tasks, on_record=seen.append)
    assert seen == []  # an errored episode is finished: a plain resume keeps it
    run_compare(CompareConfig(agents=["oracle"], out=tmp_path, env=FakeEnvFactory(), retry_errors=True),  # type: ignore
                progress=False, tasks=tasks, on_record=seen.append)
    assert [r.task for r in seen] == [tasks[0].id]
    assert [r["success"] for r in read_rows(tmp_path)] == ["True", "True"]
