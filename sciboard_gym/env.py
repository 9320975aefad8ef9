"""``SciBoardEnv``: a real scientific app on a real desktop as a Gymnasium env."""

from __future__ import annotations

import functools
import string
import time
import zlib
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sciboard_gym import actions, set_of_marks
from sciboard_gym.apps import get_adapter
from sciboard_gym.guest_client import GuestError
from sciboard_gym.providers import Provider, ProviderError, make_provider
from sciboard_gym.tasks import Task, TaskError, get_task, load_app_tasks
from sciboard_gym.text_space import ObservationText

MAX_INSTRUCTION = 2000
MAX_ACTION = 2100
MAX_A11Y = 200_000
#: Characters the Text spaces admit: printable ASCII plus the maths/science symbols tasks use.
CHARSET = frozenset(string.printable) | frozenset("°±²³µ·×÷πΣΩαβγδθλσφω√∞≈≠≤≥→←∫∂Δ…–—‘’“”Å")
OBSERVATION_KEYS = ("screenshot", "a11y_tree", "som")
SPLITS = ("train", "test")


def task_split(task_id: str) -> str:
    """The fixed split of a task: a stable hash sends ~80% to "train", the rest to "test"."""
    return "test" if zlib.crc32(task_id.encode()) % 5 == 0 else "train"


class SciBoardEnv(gym.Env):
    """One scientific app on one desktop.

    Observations are a Dict with ``screenshot`` ((H, W, 3) uint8 RGB), ``instruction`` (the
    task text) and, when asked for, ``a11y_tree`` (the app's accessibility tree as text) and
    ``som`` (set-of-marks: ``som_screenshot`` with numbered widget boxes, ``som_marks`` legend).
    Actions are strings of the action language (:mod:`sciboard_gym.actions`); for plan steps
    grounded by an executor model, wrap the env in :class:`sciboard_gym.wrappers.PlanActions`
    (the env itself holds no model, so it pickles and vectorises). The reward is 0 until the last step, then 1.0 if the task's
    evaluator finds the app in the wanted state, else 0.0.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}  # noqa: RUF012 (a plain attribute in gym.Env)

    def __init__(
        self,
        app: str,
        task: str | Task | None = None,
        split: str | None = None,
        provider: str | Provider = "local",
        observation: Sequence[str] = ("screenshot",),
        screen_size: tuple[int, int] = (1920, 1080),
        max_steps: int | None = None,
        action_mode: str = "gui",
        executor: Any = None,
        render_mode: str | None = None,
        settle_quiet: float | None = None,
        settle_timeout: float = 3.0,
        tasks_dir: str | None = None,
        provider_options: dict[str, Any] | None = None,
        sandbox: bool = True,
    ) -> None:
        self._config: dict[str, Any] = {
            "app": app, "task": task, "split": split, "provider": provider, "observation": tuple(observation),
            "screen_size": screen_size, "max_steps": max_steps, "render_mode": render_mode,
            "settle_quiet": settle_quiet, "settle_timeout": settle_timeout, "tasks_dir": tasks_dir,
            "provider_options": provider_options, "sandbox": sandbox,
        }
        self.adapter = get_adapter(app)
        self.app = app
        unknown = set(observation) - set(OBSERVATION_KEYS)
        if unknown or "screenshot" not in observation:
            raise ValueError(f"observation must include 'screenshot' and may add {OBSERVATION_KEYS[1:]}; "
                             f"unknown: {sorted(unknown)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if action_mode != "gui" or executor is not None:
            raise ValueError("the env takes GUI actions only; for plan mode wrap it: "
                             "sciboard_gym.wrappers.PlanActions(gym.make(...), executor)")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.observation_keys = tuple(observation)
        self.screen_size = (int(screen_size[0]), int(screen_size[1]))
        self.max_steps_override = max_steps
        self.render_mode = render_mode
        self.settle_quiet, self.settle_timeout = settle_quiet, settle_timeout
        self.tasks_dir = tasks_dir
        self.tasks = self._select_tasks(task, split)
        if isinstance(provider, Provider):
            self.provider = provider
        else:
            options = dict(provider_options or {})
            if provider == "local":
                options.setdefault("sandbox", sandbox)
                if not options["sandbox"]:
                    self.adapter.preflight_local()
            elif not sandbox:
                raise ValueError(f"sandbox=False applies to the local provider only (a {provider} desktop is a VM)")
            self.provider = make_provider(provider, app, self.screen_size, **options)

        width, height = self.screen_size
        obs_spaces: dict[str, spaces.Space] = {
            "screenshot": spaces.Box(0, 255, (height, width, 3), np.uint8),
            "instruction": ObservationText(MAX_INSTRUCTION, charset=CHARSET),
        }
        if "a11y_tree" in self.observation_keys:
            obs_spaces["a11y_tree"] = ObservationText(MAX_A11Y, min_length=0, charset=CHARSET)
        if "som" in self.observation_keys:
            obs_spaces["som_screenshot"] = spaces.Box(0, 255, (height, width, 3), np.uint8)
            obs_spaces["som_marks"] = ObservationText(MAX_A11Y, min_length=0, charset=CHARSET)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Text(MAX_ACTION, min_length=1, charset=frozenset(string.printable))

        self.task: Task | None = None
        self._frame: np.ndarray | None = None
        self._steps = 0
        self._over = True
        self._history: list[str] = []
        self._at_reset: dict[int, Any] = {}

    # --- task selection --------------------------------------------------------------

    def _select_tasks(self, task: str | Task | None, split: str | None) -> list[Task]:
        if task is not None:
            return [self._resolve_task(task)]
        chosen = [t for t in load_app_tasks(self.app, self.tasks_dir) if split is None or task_split(t.id) == split]
        if not chosen:
            raise TaskError(f"no {self.app} tasks" + (f" in split {split!r}" if split else ""))
        for item in chosen:
            self._resolve_task(item)
        return chosen

    def _resolve_task(self, task: str | Task) -> Task:
        """The task for an id (looked up in ``tasks_dir`` when given) or a Task; refuses other apps' tasks."""
        if isinstance(task, str):
            task = self._lookup(task)
        elif not isinstance(task, Task):
            raise TaskError(f"a task must be a task id or a Task, got {type(task).__name__}")
        if task.app != self.app:
            raise TaskError(f"task {task.id!r} is for {task.app}, not {self.app}: make a {task.app} env for it")
        self.adapter.validate_task(task)
        return task

    def _lookup(self, task_id: str) -> Task:
        if self.tasks_dir is not None:
            for item in load_app_tasks(self.app, self.tasks_dir):
                if item.id == task_id:
                    return item
            raise TaskError(f"unknown task {task_id!r} in {self.tasks_dir}")
        return get_task(task_id)

    # --- Gymnasium API ----------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode: ``options={"task": id or Task}`` picks one (of this app), else one is sampled.

        A task with parameters is played as ``task.variant(seed)`` (a random variant without a seed).
        """
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            task = self._resolve_task(options["task"])
        else:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        # reset(seed=s) plays task.variant(s), so a runner that builds an agent for that instance
        # (the oracle, say) before the reset knows which one the env will play.
        task = task.variant(seed if seed is not None else int(self.np_random.integers(2**31)))
        started = time.monotonic()
        launch = self._prepare_desktop(task)
        self.task = task
        self._steps = 0
        self._over = False
        self._history = []
        self._frame = self.provider.client.screenshot()
        info = {
            "task_id": task.id, "instruction": task.instruction, "max_steps": self.max_steps,
            "reset_seconds": round(time.monotonic() - started, 3), "launch_seconds": launch.get("launch_seconds"),
            "parameters": dict(task.values),
        }
        return self._observe(), info

    def _prepare_desktop(self, task: Task) -> dict[str, Any]:
        """Fresh app state for ``task`` (and what its checks read at reset); restarts the desktop once if it is broken."""
        for attempt in (0, 1):
            try:
                self.provider.start()
                launch = self.provider.reset_app(self.app)
                for step in task.setup:
                    self.provider.client.setup(step.name, step.args)
                self.provider.client.settle(self.settle_quiet, self.settle_timeout)
                self._at_reset = self.adapter.read_at_reset(task, self.provider.client)
                return launch
            except (GuestError, ProviderError) as err:
                problem = self.provider.alive()
                if attempt == 1 or (problem is None and isinstance(err, GuestError) and err.status in (400, 424)):
                    raise ProviderError(f"could not prepare {self.app} for {task.id}: {err}") from err
                self.provider.close()
        raise AssertionError("unreachable")

    @property
    def max_steps(self) -> int:
        if self.max_steps_override is not None:
            return int(self.max_steps_override)
        return self.task.max_steps if self.task else 0

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Run one action; on the last step (terminal action or ``max_steps``) evaluate the task."""
        if self._over or self.task is None:
            raise RuntimeError("call reset() before step(); the episode is over")
        self._steps += 1
        info: dict[str, Any] = {"task_id": self.task.id, "action_error": None, "step": self._steps}
        try:
            parsed, info["executed"] = self._resolve(action, info)
            if parsed is not None and not parsed.terminal:
                info["settle_seconds"], info["settled"] = self._perform(parsed)
            self._frame = self.provider.client.screenshot()
            terminated = parsed is not None and parsed.terminal
            truncated = not terminated and self._steps >= self.max_steps
            reward = self._evaluate(self.task, parsed, info) if terminated or truncated else 0.0
        except (GuestError, ProviderError) as err:
            return self._fault(err, info)
        return self._observe(), reward, terminated, truncated, info

    def _evaluate(self, task: Task, parsed: actions.Action | None, info: dict[str, Any]) -> float:
        """Judge the app's state and end the episode; a guest fault raises (the caller truncates)."""
        answer = parsed.text if isinstance(parsed, actions.Answer) else None
        success, results = self.adapter.evaluate(task, self.provider.client, answer, self._at_reset)
        if problem := self.provider.alive():  # the desktop broke before or during evaluation: a fault
            raise ProviderError(problem)
        info.update(success=success, checks=[r.to_dict() for r in results], answer=answer)
        if broken := [f"check {r.check!r} raised {r.detail}" for r in results if r.raised]:
            info["error"] = "; ".join(broken)
        self._over = True
        return 1.0 if success else 0.0

    def _resolve(self, action: Any, info: dict[str, Any]) -> tuple[actions.Action | None, str | None]:
        """Turn the agent's action into one typed action; errors go to ``info``."""
        try:
            parsed = actions.parse(action, self.screen_size)
        except actions.ActionError as err:
            info["action_error"] = str(err)
            return None, None
        self._history.append(parsed.to_string())
        return parsed, parsed.to_string()

    def _perform(self, parsed: actions.Action) -> tuple[float, bool | None]:
        """Execute a GUI action and wait for the screen to settle; returns the settle time and whether the
        screen stopped changing before the settle's timeout (None after ``wait()``, which does not settle)."""
        client = self.provider.client
        if isinstance(parsed, actions.Wait):
            time.sleep(parsed.seconds)
            return 0.0, None
        settled = client.input(parsed.to_dict(), settle=(self.settle_quiet, self.settle_timeout)) or {}
        if not settled.get("app_alive", True):
            raise ProviderError(self.provider.alive() or "the app died")
        return float(settled.get("seconds", 0.0)), bool(settled.get("settled", True))

    def _fault(self, err: Exception, info: dict[str, Any]) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """The desktop broke mid-episode: truncate, say what died, keep the last frame."""
        problem = self.provider.alive() or str(err)
        info.update(error=problem, success=False, checks=[])
        self._over = True
        return self._observe(), 0.0, False, True, info

    def _observe(self) -> dict[str, Any]:
        obs: dict[str, Any] = {
            "screenshot": self._frame if self._frame is not None else np.zeros((*self.screen_size[::-1], 3), np.uint8),
            "instruction": self.task.instruction if self.task else "",
        }
        if "a11y_tree" in self.observation_keys:
            try:
                text = self.provider.client.a11y_text(self.app)
            except GuestError as err:
                text = f"(accessibility tree unavailable: {err})"
            obs["a11y_tree"] = "".join(c if c in CHARSET else "?" for c in text[:MAX_A11Y])
        if "som" in self.observation_keys:
            try:
                marks = set_of_marks.marks_from_tree(self.provider.client.a11y_tree(self.app, showing_only=True),
                                                     self.screen_size)
            except GuestError:
                marks = []
            obs["som_screenshot"] = set_of_marks.draw_marks(obs["screenshot"], marks)
            obs["som_marks"] = "".join(c if c in CHARSET else "?" for c in set_of_marks.legend(marks)[:MAX_A11Y])
        return obs

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return None if self._frame is None else self._frame.copy()
        return None

    def close(self) -> None:
        provider = getattr(self, "provider", None)
        if provider is not None:
            provider.close()
        super().close()

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        """An env pickles as its configuration: the copy starts its own desktop at its first reset."""
        return functools.partial(type(self), **self._config), ()

    # --- conveniences --------------------------------------------------------------

    @property
    def history(self) -> list[str]:
        """The actions executed in this episode, in the action language."""
        return list(self._history)

    def describe_actions(self) -> str:
        """The action language, ready for a prompt."""
        return actions.describe()


