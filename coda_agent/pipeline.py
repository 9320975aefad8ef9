"""The two-stage CODA recipe end to end: oracle bootstrap, Stage 1 per app, Stage 2, one comparison table.

A recipe (TOML, see docs/training.md) names the planner, the executor and the apps. The run::

    out/oracle/<app>/...          oracle runs of training tasks (successful trajectories with labels)
    out/stage1/<app>/...          one Stage 1 run per app (coda_agent.stage1): the app's expert planner
    out/stage2/...                Stage 2 (coda_agent.sft) on the pooled successes: the generalist planner
    out/eval/<planner>/...        each planner on every app's test split: a ``sciboard compare`` run
    out/table.md, out/table.csv   rows = planners, columns = apps: Avg@k and Pass@k (and every score row)

Every part skips what is already finished, so running the same recipe again continues it.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coda_agent.configs import config_from_dict
from coda_agent.images import DEFAULT_MAX_PIXELS, EXECUTOR_MAX_PIXELS
from sciboard_gym.trajectory import atomic_write_bytes

Printer = Callable[[str], None]
#: A recipe's planner or executor may be this name: the tiny random Qwen2.5-VL of :mod:`coda_agent.tiny`.
TINY = "tiny"


@dataclass
class EvalConfig:
    """The final comparison (``sciboard compare``'s code): ``k`` episodes per test task, optionally fewer
    tasks and shorter episodes. ``envs`` > 1 runs that many desktops in worker processes; with
    ``isolate`` each planner is evaluated in worker processes of its own, so only one planner's
    models are loaded at a time (``isolate = false`` runs everything in this process)."""

    k: int = 1
    tasks_per_app: int | None = None
    max_steps: int | None = None
    seed: int = 0
    envs: int = 1
    isolate: bool = True


@dataclass
class Recipe:
    """A two-stage run. ``stage1`` / ``stage2`` hold Stage1Config / Stage2Config keys shared by every app."""

    planner: str
    executor: str
    apps: list[str]
    out: str = "runs/coda"
    oracle_episodes: int = 0
    episodes: list[str] = field(default_factory=list)
    stage1: dict[str, Any] = field(default_factory=dict)
    stage2: dict[str, Any] = field(default_factory=dict)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    dtype: str = "auto"
    device: str = "cpu"
    planner_max_pixels: int = DEFAULT_MAX_PIXELS
    executor_max_pixels: int = EXECUTOR_MAX_PIXELS
    max_new_tokens: int = 256
    executor_max_new_tokens: int = 128
    provider: str = "local"

    def __post_init__(self) -> None:
        if isinstance(self.evaluate, dict):
            self.evaluate = config_from_dict(EvalConfig, self.evaluate, "evaluate")
        if not self.apps:
            raise ValueError("a recipe needs at least one app")
        from sciboard_gym.apps import APPS

        unknown = [app for app in self.apps if app not in APPS]
        if unknown:
            raise ValueError(f"unknown apps {unknown}; known: {sorted(APPS)}")

    @classmethod
    def from_toml(cls, path: str | Path) -> Recipe:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"{path}: cannot read the recipe: {err}") from None
        return config_from_dict(cls, data, str(path))


def resolve_model(name: str) -> str:
    """``"tiny"`` -> the cached tiny checkpoint's folder; anything else unchanged."""
    if name == TINY:
        from coda_agent.tiny import cached_tiny_qwen25vl

        return str(cached_tiny_qwen25vl())
    return name


# --- the table ---------------------------------------------------------------------------------


def markdown_table(scores: Sequence[Any], apps: Sequence[str], k: int) -> str:
    """Rows = planners, columns = apps (Avg@k / Pass@k in percent) and the unweighted means over the
    apps each planner has scores for, from :class:`baselines.metrics.Score` rows."""
    by = {(s.agent, s.app): s for s in scores}
    planners = list(dict.fromkeys(s.agent for s in scores))
    head = "| planner | " + " | ".join(f"{app} Avg@{k} | {app} Pass@{k}" for app in apps) + \
           f" | mean Avg@{k} | mean Pass@{k} |"
    lines = [head, "|" + "---|" * (2 * len(apps) + 3)]
    for planner in planners:
        found = [by.get((planner, app)) for app in apps]
        cells = ["- | -" if s is None else f"{100 * s.avg_at_k:.1f} | {100 * s.pass_at_k:.1f}" for s in found]
        scored = [s for s in found if s is not None]
        mean = (f"{100 * sum(s.avg_at_k for s in scored) / len(scored):.1f} | "
                f"{100 * sum(s.pass_at_k for s in scored) / len(scored):.1f}") if scored else "- | -"
        lines.append(f"| {planner} | " + " | ".join([*cells, mean]) + " |")
    return "\n".join(lines) + "\n"


def agent_spec(planner: str, executor: str, recipe: Recipe) -> str:
    """A CODA agent spec (TOML, as ``sciboard compare`` reads them) for ``planner`` with the recipe's executor."""
    def table(model: str, max_pixels: int, max_new_tokens: int) -> str:
        lines = [f"model = {json.dumps(model)}", f"max_pixels = {max_pixels}", f"max_new_tokens = {max_new_tokens}"]
        if not model.startswith(("http://", "https://")):
            lines += [f"dtype = {json.dumps(recipe.dtype)}", f"device = {json.dumps(recipe.device)}"]
        return "\n".join(lines)

    return (f'class = "coda"\n\n[planner]\n{table(planner, recipe.planner_max_pixels, recipe.max_new_tokens)}\n\n'
            f"[executor]\n{table(executor, recipe.executor_max_pixels, recipe.executor_max_new_tokens)}\n")


# --- the run --------------------------------------------------------------------------------------


class CODAPipeline:
    """Runs (or continues) a :class:`Recipe` in ``recipe.out``."""

    def __init__(self, recipe: Recipe, printer: Printer = print):
        self.recipe, self.print = recipe, printer
        self.out = Path(recipe.out)
        self.planner, self.executor = resolve_model(recipe.planner), resolve_model(recipe.executor)
        self._envs: dict[str, Any] = {}

    def run(self) -> list[Any]:
        """Every part of the recipe; returns the comparison's scores (:class:`baselines.metrics.Score`)."""
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            for app in self.recipe.apps:
                self.record_oracle(app)
            experts = {f"expert-{app}": self.expert(app, self.stage1(app)) for app in self.recipe.apps}
            planners = {"base": self.planner, **experts, "stage2": self.stage2()}
        finally:
            self.close()
        scores = [score for name, model in planners.items() for score in self.evaluate(name, model)]
        table = markdown_table(scores, self.recipe.apps, self.recipe.evaluate.k)
        atomic_write_bytes(self.out / "table.md", table.encode())
        atomic_write_bytes(self.out / "table.csv", _csv(scores))
        self.print(f"[coda] results on the test split (k = {self.recipe.evaluate.k}):\n{table}")
        return scores

    # --- parts ---------------------------------------------------------------------------------

    def env(self, app: str) -> Any:
        if app not in self._envs:
            import gymnasium as gym

            import sciboard_gym  # noqa: F401  (registers the envs)
            from sciboard_gym.apps import APPS

            self._envs[app] = gym.make(APPS[app][0], provider=self.recipe.provider)
        return self._envs[app]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def oracle_dir(self, app: str) -> Path:
        return self.out / "oracle" / app

    def record_oracle(self, app: str) -> None:
        """Oracle runs of the first ``oracle_episodes`` training tasks (labelled successful trajectories)."""
        from baselines.oracle import OracleAgent
        from sciboard_gym.env import task_split
        from sciboard_gym.tasks import load_app_tasks

        tasks = [t for t in load_app_tasks(app) if task_split(t.id) == "train"][:self.recipe.oracle_episodes]
        for task in tasks:
            record_episode(self.env, app, OracleAgent(task.variant(0)), task.id, 0,
                           self.oracle_dir(app) / task.id.replace("/", "_"))
        if tasks:
            self.print(f"[coda] {app}: {len(tasks)} oracle runs in {self.oracle_dir(app)}")

    def stage1(self, app: str) -> Path | None:
        """Stage 1 for ``app``; returns the expert's checkpoint (None when Stage 1 made no update)."""
        try:
            from coda_agent.stage1 import Stage1Config, Stage1Run
        except ImportError as err:
            raise ValueError(f"Stage 1 is not available ({err}); it needs coda_agent.stage1") from None
        recipe = self.recipe
        extra = [str(self.oracle_dir(app))] if self.oracle_dir(app).exists() else []
        values = {"dtype": recipe.dtype, "planner_device": recipe.device, "executor_device": recipe.device,
                  "planner_max_pixels": recipe.planner_max_pixels, "executor_max_pixels": recipe.executor_max_pixels,
                  "max_new_tokens": recipe.max_new_tokens, "executor_max_new_tokens": recipe.executor_max_new_tokens,
                  "provider": recipe.provider, **recipe.stage1}
        values.update(app=app, planner=self.planner, executor=self.executor, out=str(self.out / "stage1" / app),
                      episodes=list(values.get("episodes", [])) + extra)
        self.close()  # Stage 1 opens its own desktop for the app
        self.print(f"[coda] Stage 1 on {app}")
        run = Stage1Run(Stage1Config.from_dict(values, source=f"stage1 ({app})"), printer=self.print)
        run.run()
        return run.latest_checkpoint()

    def stage2(self) -> str:
        """Stage 2 on the pooled successes of every app's Stage 1 run, the oracle runs and ``episodes``."""
        from coda_agent.sft import Stage2Config, Stage2Run

        recipe = self.recipe
        runs = [str(p) for app in recipe.apps for p in (self.out / "stage1" / app / "rounds", self.oracle_dir(app))
                if p.exists()] + list(recipe.episodes)
        values = {"dtype": recipe.dtype, "device": recipe.device, "planner_max_pixels": recipe.planner_max_pixels,
                  **recipe.stage2}
        pool = {"apps": list(recipe.apps), **values.pop("pool", {})}
        values.update(planner=self.planner, runs=runs, out=str(self.out / "stage2"), pool=pool)
        planner_dir = self.out / "stage2" / "planner"
        result_file = self.out / "stage2" / "result.json"
        if result_file.exists() and "global_step" in json.loads(result_file.read_text()) and planner_dir.exists():
            self.print(f"[coda] Stage 2 is done: {planner_dir}")
            return str(planner_dir)
        self.print("[coda] Stage 2 on the pooled successes")
        return Stage2Run(Stage2Config.from_dict(values, source="stage2"), printer=self.print).run().planner

    def expert(self, app: str, checkpoint: Path | None) -> str:
        """The expert planner of ``app`` as a model folder (the base when Stage 1 made no update)."""
        if checkpoint is None:
            return self.planner
        folder = self.out / "stage1" / app / f"expert-{checkpoint.name}"
        if not (folder / "config.json").exists():
            backend = load_planner(self.planner, checkpoint, self.recipe.dtype, self.recipe.device)
            backend.model.save_pretrained(str(folder))
            backend.processor.save_pretrained(str(folder))
        return str(folder)

    def evaluate(self, name: str, model: str) -> list[Any]:
        """``name``'s episodes on every app's test split with ``sciboard compare``'s code (finished ones are kept)."""
        from baselines.compare import CompareConfig, EnvOptions, resolve_agents, run_compare
        from baselines.pools import ProcessPool

        recipe, config = self.recipe, self.recipe.evaluate
        folder = self.out / "eval" / name
        folder.mkdir(parents=True, exist_ok=True)
        spec = folder / "agent.toml"
        atomic_write_bytes(spec, agent_spec(model, self.executor, recipe).encode())
        compare = CompareConfig(agents=[f"{name}={spec}"], out=folder, apps=recipe.apps, k=config.k, split="test",
                                max_tasks=config.tasks_per_app, envs=config.envs, seed=config.seed,
                                env=EnvOptions(provider=recipe.provider, max_steps=config.max_steps))
        pool = ProcessPool(max(1, config.envs), resolve_agents(compare.agents), compare.env, folder) \
            if config.isolate else None
        self.print(f"[coda] evaluating {name} on the test split of {', '.join(recipe.apps)}")
        return run_compare(compare, pool=pool, progress=False).scores


def finished_success(folder: Path) -> bool | None:
    """The success of a finished episode recorded in ``folder``, None when there is none."""
    summary = folder / "episode.json"
    if summary.exists():
        episode = json.loads(summary.read_text())
        if episode.get("status") == "finished":
            return bool(episode.get("success"))
    return None


def record_episode(envs: Callable[[str], Any], app: str, agent: Any, task_id: str, seed: int, folder: Path,
                   max_steps: int | None = None) -> bool:
    """One recorded episode (kept if ``folder`` already holds a finished one); returns its success."""
    import shutil

    from sciboard_gym.episode import run_episode
    from sciboard_gym.trajectory import TrajectoryRecorder

    done = finished_success(folder)
    if done is not None:
        return done
    shutil.rmtree(folder, ignore_errors=True)
    env = envs(app)
    env.unwrapped.max_steps_override = max_steps
    try:
        return run_episode(env, agent, task=task_id, seed=seed, recorder=TrajectoryRecorder(folder)).success
    finally:
        env.unwrapped.max_steps_override = None


def load_backend(model: str, dtype: str, device: str) -> Any:
    from coda_agent.backends import make_backend

    return make_backend(model) if model.startswith(("http://", "https://")) else make_backend(
        model, dtype=dtype, device=device)


def load_planner(model: str, checkpoint: Path | None, dtype: str, device: str) -> Any:
    """A planner backend: ``model``, or ``model`` with a Stage 1 checkpoint's weights (full or LoRA)."""
    if checkpoint is None:
        return load_backend(model, dtype, device)
    from coda_agent.backends import TransformersBackend

    if (checkpoint / "adapter_config.json").exists():
        from peft import PeftModel

        backend = TransformersBackend(model, dtype=dtype, device=device)
        backend.model = PeftModel.from_pretrained(backend.model, str(checkpoint)).merge_and_unload()
        backend.model.eval()
        return backend
    return TransformersBackend(str(checkpoint), dtype=dtype, device=device)


def _csv(scores: Sequence[Any]) -> bytes:
    """Every score row (per planner and app, and the overall rows) as ``sciboard compare``'s summary.csv has them."""
    from baselines.metrics import SUMMARY_COLUMNS, score_row

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(SUMMARY_COLUMNS))
    writer.writeheader()
    for score in scores:
        writer.writerow(score_row(score))
    return buffer.getvalue().encode()
