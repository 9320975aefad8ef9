"""The Ray actor pool on a local Ray cluster with real KAlgebra desktops, one of its actors killed mid-episode."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from baselines.oracle import OracleAgent
from sciboard_gym.distributed import EnvPool, EpisodeRequest, PoolError
from sciboard_gym.tasks import Task

pytestmark = [pytest.mark.desktop, pytest.mark.xdist_group("ray")]
ray = pytest.importorskip("ray")
TASK = "kalgebra/assign-sum"
SMALL = {"screen_size": (800, 600), "settle_quiet": 0.05, "settle_timeout": 1.0}


def oracle(task: Task, seed: int | None) -> OracleAgent:
    return OracleAgent(task)


class KillOnceAgent(OracleAgent):
    """Plays the oracle, but the first time (no marker file yet) it kills its own actor mid-episode,
    after writing the pids of that actor's desktop processes to the marker."""

    def __init__(self, task: Task, marker: str):
        super().__init__(task)
        self.marker = Path(marker)

    def act(self, observation: Mapping[str, Any]) -> str:
        if self._next == 1 and not self.marker.exists():
            children = [p.pid for p in psutil.Process().children(recursive=True)]
            self.marker.write_text(json.dumps({"actor": os.getpid(), "desktop": children}))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().act(observation)


class KillOnce:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __call__(self, task: Task, seed: int | None) -> KillOnceAgent:
        return KillOnceAgent(task, self.marker)


def still_running(pids: list[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return procs


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import the tests folder
    ray.init(num_cpus=2, resources={"desktop": 2}, include_dashboard=False, log_to_driver=False,
             object_store_memory=300 * 2**20)
    yield
    ray.shutdown()


def test_episodes_stream_back_once_each_and_a_killed_actor_is_replaced(local_ray: None, tmp_path: Path) -> None:
    marker = tmp_path / "killed.json"
    requests = [EpisodeRequest("oracle", TASK, 0), EpisodeRequest("killer", TASK, 1),
                EpisodeRequest("oracle", TASK, 2), EpisodeRequest("oracle", TASK, 3)]
    with EnvPool(env_kwargs=SMALL) as pool:
        assert pool.size == 2 and len(set(pool.workers)) == 2
        outcomes = list(pool.run_episodes({"oracle": oracle, "killer": KillOnce(marker)}, requests))
        assert sorted(o.index for o in outcomes) == [0, 1, 2, 3]  # nothing lost, nothing twice
        assert all(o.error is None and o.result is not None and o.result.success for o in outcomes), outcomes
        attempts = {o.index: o.attempts for o in outcomes}
        assert attempts == {0: 1, 1: 2, 2: 1, 3: 1} and pool.replaced == 1
        killed = json.loads(marker.read_text())
        assert all(killed["actor"] != int(worker.split(":")[1]) for worker in pool.workers)
        _, alive = psutil.wait_procs(still_running(killed["desktop"]), timeout=20)
        assert not alive, f"the killed actor's desktop outlived it: {alive}"
        with pytest.raises(PoolError, match="no factory"):
            list(pool.run_episodes({}, requests[:1]))


def test_trainers_step_the_envs_and_a_dead_env_truncates(local_ray: None) -> None:
    with EnvPool("SciBoard-KAlgebra-v0", env_kwargs={"task": TASK, **SMALL}) as pool:
        first = pool.reset(seeds=[0, 1])
        assert [info["task_id"] for _, info in first] == [TASK, TASK]
        steps = pool.step(['type("total:=17+25+58\\n")', "done()"])
        assert [s[2] for s in steps] == [False, True] and steps[1][1] == 0.0
        pool.reset(seeds=[2], indices=[1])  # env 1's episode ended
        ray.kill(pool.actors[0], no_restart=True)
        obs, reward, terminated, truncated, info = pool.step(["done()", "done()"])[0]
        assert truncated and not terminated and reward == 0.0 and "died" in info["error"]
        assert obs["screenshot"].shape == (600, 800, 3)
        obs, info = pool.reset(seeds=[5], indices=[0])[0]
        assert info["task_id"] == TASK and pool.replaced == 1
