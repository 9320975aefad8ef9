"""A Ray actor pool of SciBoard envs: one env (one desktop) per actor, across the hosts of a Ray cluster.

Each actor asks for one unit of a custom ``desktop`` resource, so a host runs as many desktops as
it declared (``ray start ... --resources='{"desktop": 4}'``, see docs/scale.md). Two ways to use it:

- evaluation: :meth:`EnvPool.run_episodes` plays (agent, task, seed) requests and streams one
  :class:`EpisodeOutcome` per request back as each finishes;
- training: :meth:`EnvPool.reset` / :meth:`EnvPool.step` drive every actor's env in parallel.

An actor that dies (its process or its host) is replaced; its episode is retried on whichever
actor is free next, and every request yields exactly one outcome. Ray is imported only when a
pool is made (install it with the ``dist`` extra).
"""

from __future__ import annotations

import collections
import functools
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from sciboard_gym.agent import Agent
from sciboard_gym.episode import EpisodeResult
from sciboard_gym.tasks import Task

#: Builds the agent for one episode from the task and the episode's seed; must pickle (module-level
#: function, class or ``functools.partial``), since it runs in the actors.
AgentFactory = Callable[[Task, "int | None"], Agent]


@dataclass(frozen=True)
class EpisodeRequest:
    """One episode to play: ``agent`` names a factory passed to :meth:`EnvPool.run_episodes`."""

    agent: str
    task: str
    seed: int | None = None


@dataclass
class EpisodeOutcome:
    """What came of a request: the result, or the error that ended it after ``attempts`` tries."""

    index: int
    request: EpisodeRequest
    result: EpisodeResult | None
    error: str | None
    attempts: int
    worker: str


class PoolError(RuntimeError):
    """The pool cannot run (no Ray, no desktops in the cluster, a misuse of the API)."""


class EnvWorker:
    """The actor body: one env at a time, made with ``env_kwargs`` for the app of each task."""

    def __init__(self, env_kwargs: Mapping[str, Any], env_id: str | None = None):
        import sciboard_gym  # noqa: F401  (registers the envs in the actor's process)

        self.env_kwargs = dict(env_kwargs)
        self.env: Any = None
        self.env_id: str | None = None
        #: Whatever work run through :meth:`call` keeps between items; values with ``close()`` are closed.
        self.state: dict[str, Any] = {}
        if env_id is not None:
            self.env_for(env_id)

    def where(self) -> str:
        """``host:pid`` of this actor."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def env_for(self, env_id: str) -> Any:
        """This actor's env, made (or switched to another app) with the pool's ``env_kwargs``."""
        import gymnasium as gym

        if self.env_id != env_id:
            if self.env is not None:
                self.env.close()
                self.env, self.env_id = None, None
            self.env, self.env_id = gym.make(env_id, **self.env_kwargs), env_id
        return self.env

    def call(self, fn: Callable[[EnvWorker, Any], Any], item: Any) -> Any:
        """``fn(self, item)``: any work that needs this actor's desktop (see :meth:`EnvPool.map`)."""
        return fn(self, item)

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        return self._require().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self._require().step(action)

    def _require(self) -> Any:
        if self.env is None:
            raise PoolError("this pool was made without env_id: it runs episodes, it cannot step")
        return self.env

    def close(self) -> None:
        for value in self.state.values():
            if callable(getattr(value, "close", None)):
                value.close()
        self.state.clear()
        if self.env is not None:
            self.env.close()
            self.env = None


def play_episode(agents: Mapping[str, AgentFactory], worker: EnvWorker, request: EpisodeRequest) -> EpisodeResult:
    """One requested episode on ``worker``'s env for the task's app."""
    from sciboard_gym.apps import APPS
    from sciboard_gym.episode import run_episode
    from sciboard_gym.tasks import get_task

    task = get_task(request.task)
    env = worker.env_for(APPS[task.app][0])
    instance = task.variant(request.seed) if request.seed is not None else task  # what reset(seed) will play
    return run_episode(env, agents[request.agent](instance, request.seed), request.task, request.seed)


@dataclass
class Outcome:
    """What came of ``fn(worker, item)`` in :meth:`EnvPool.map`: its value, or the error after ``attempts``."""

    index: int
    item: Any
    value: Any
    error: str | None
    attempts: int
    worker: str


class EnvPool:
    """``size`` actors, each holding one SciBoard env, placed by the cluster's ``desktop`` resource.

    ``address``: a Ray cluster to join (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``); without
    it and without a running Ray in this process, a local Ray starts with ``size`` desktops.
    ``size`` defaults to every ``desktop`` the cluster declares. ``env_id`` (for :meth:`reset` /
    :meth:`step`) makes every actor's env up front; episodes pick the env of each task's app.
    ``env_kwargs`` go to ``gym.make`` (e.g. ``{"provider": "libvirt"}``). ``max_attempts`` bounds the
    tries of an episode whose actor keeps dying.
    """

    def __init__(self, env_id: str | None = None, size: int | None = None, *, address: str | None = None,
                 env_kwargs: Mapping[str, Any] | None = None, resource: str = "desktop", num_cpus: float = 0.0,
                 max_attempts: int = 3):
        ray = _ray()
        if not ray.is_initialized():
            if address is not None:
                ray.init(address=address)
            else:
                ray.init(resources={resource: size or 1}, include_dashboard=False)
        available = int(ray.cluster_resources().get(resource, 0))
        size = available if size is None else size
        if size < 1:
            raise PoolError(f"the Ray cluster declares no {resource!r} resource: start each host with "
                            f"ray start ... --resources='{{\"{resource}\": N}}' (N desktops it can hold)")
        if size > available:
            raise PoolError(f"asked for {size} desktops but the cluster declares {available} {resource!r}")
        if max_attempts < 1:
            raise PoolError(f"max_attempts must be at least 1, got {max_attempts}")
        self.env_id, self.size, self.max_attempts = env_id, size, max_attempts
        self._remote = ray.remote(EnvWorker).options(num_cpus=num_cpus, resources={resource: 1}, max_restarts=0)
        self._env_kwargs = dict(env_kwargs or {})
        self.actors: list[Any] = [self._spawn() for _ in range(size)]
        self.workers: list[str] = ray.get([actor.where.remote() for actor in self.actors])
        self.replaced = 0
        self._last: list[Any] = [None] * size

    def _spawn(self) -> Any:
        return self._remote.remote(self._env_kwargs, self.env_id)

    def _replace(self, slot: int) -> None:
        ray = _ray()
        ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self._spawn()
        self.workers[slot] = ray.get(self.actors[slot].where.remote())
        self.replaced += 1

    # --- evaluation -------------------------------------------------------------------

    def run_episodes(self, agents: Mapping[str, AgentFactory],
                     requests: Sequence[EpisodeRequest]) -> Iterator[EpisodeOutcome]:
        """Play every request on the actors; yield one outcome per request as each finishes.

        An episode whose actor died is retried (up to ``max_attempts`` tries) on the next free
        actor; an error raised inside an episode (a broken task, an agent factory that fails)
        is its outcome, not retried.
        """
        unknown = sorted({r.agent for r in requests} - set(agents))
        if unknown:
            raise PoolError(f"requests name agents with no factory: {', '.join(unknown)}")
        for done in self.map(functools.partial(play_episode, dict(agents)), requests):
            yield EpisodeOutcome(done.index, done.item, done.value, done.error, done.attempts, done.worker)

    def map(self, fn: Callable[[EnvWorker, Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        """Run ``fn(worker, item)`` for every item on the actors (one at a time each); yield as each ends.

        ``fn`` must pickle; it gets the actor's :class:`EnvWorker` (``worker.env_for(env_id)``,
        ``worker.state``). An item whose actor died is retried on the next free actor, up to
        ``max_attempts`` tries; an exception raised by ``fn`` is that item's ``error``.
        """
        ray = _ray()
        fn_ref = ray.put(fn)
        queue = collections.deque(range(len(items)))
        attempts: collections.Counter[int] = collections.Counter()
        free = list(range(self.size))
        running: dict[Any, tuple[int, int]] = {}
        while queue or running:
            while queue and free:
                index, slot = queue.popleft(), free.pop(0)
                attempts[index] += 1
                running[self.actors[slot].call.remote(fn_ref, items[index])] = (slot, index)
            [ref], _ = ray.wait(list(running), num_returns=1)
            slot, index = running.pop(ref)
            item, worker = items[index], self.workers[slot]
            try:
                value = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                self._replace(slot)
                free.append(slot)
                if attempts[index] < self.max_attempts:
                    queue.appendleft(index)
                    continue
                yield Outcome(index, item, None, f"its worker died {attempts[index]} times; last: "
                              f"{_first_line(err)}", attempts[index], worker)
                continue
            except ray.exceptions.RayTaskError as err:
                free.append(slot)
                yield Outcome(index, item, None, _first_line(err.cause if err.cause else err), attempts[index], worker)
                continue
            free.append(slot)
            yield Outcome(index, item, value, None, attempts[index], worker)

    # --- training ---------------------------------------------------------------------

    def reset(self, seeds: Sequence[int | None] | None = None, options: dict[str, Any] | None = None,
              indices: Sequence[int] | None = None) -> list[tuple[Any, dict[str, Any]]]:
        """Reset the envs at ``indices`` (default: all) in parallel; ``seeds`` one per index."""
        ray = _ray()
        indices = list(range(self.size)) if indices is None else list(indices)
        seeds = [None] * len(indices) if seeds is None else list(seeds)
        if len(seeds) != len(indices):
            raise PoolError(f"{len(seeds)} seeds for {len(indices)} envs")
        self._require_env_id()
        results: dict[int, tuple[Any, dict[str, Any]]] = {}
        todo = dict(zip(indices, seeds))
        for attempt in range(self.max_attempts):
            refs = {slot: self.actors[slot].reset.remote(seed, options) for slot, seed in todo.items()}
            for slot, ref in refs.items():
                try:
                    results[slot] = ray.get(ref)
                    del todo[slot]
                except ray.exceptions.RayActorError:
                    if attempt + 1 == self.max_attempts:
                        raise
                    self._replace(slot)
            if not todo:
                break
        for slot, (obs, _) in results.items():
            self._last[slot] = obs
        return [results[slot] for slot in indices]

    def step(self, actions: Sequence[Any]) -> list[tuple[Any, float, bool, bool, dict[str, Any]]]:
        """One step in every env at once (``actions[i]`` to env ``i``).

        An env whose actor died comes back truncated with ``info["error"]`` and its last
        observation; its actor is replaced, so the next :meth:`reset` of it works.
        """
        ray = _ray()
        self._require_env_id()
        if len(actions) != self.size:
            raise PoolError(f"{len(actions)} actions for {self.size} envs")
        refs = [actor.step.remote(action) for actor, action in zip(self.actors, actions)]
        results: list[tuple[Any, float, bool, bool, dict[str, Any]]] = []
        for slot, ref in enumerate(refs):
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                worker = self.workers[slot]
                self._replace(slot)
                result = (self._last[slot], 0.0, False, True,
                          {"error": f"the env's worker {worker} died: {_first_line(err)}", "success": False})
            self._last[slot] = result[0]
            results.append(result)
        return results

    def _require_env_id(self) -> None:
        if self.env_id is None:
            raise PoolError("make the pool with env_id=... to reset and step its envs")

    def close(self) -> None:
        """Close every env and end the actors (the Ray cluster keeps running)."""
        ray = _ray()
        closing = [actor.close.remote() for actor in self.actors]
        for actor, ref in zip(self.actors, closing):
            try:
                ray.get(ref)
            except ray.exceptions.RayError:
                pass  # a dead actor's desktop stopped with it
            ray.kill(actor, no_restart=True)
        self.actors = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise PoolError("the Ray pool needs ray: pip install 'sciboard-gym[dist]'") from err
    return ray


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
