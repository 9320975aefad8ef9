"""CODA Stage 1, online: collect episodes with the current planner, train it with decoupled GRPO, evaluate, repeat.

One run lives in one output folder::

    out/config.json                 the run's configuration (a :class:`Stage1Config`)
    out/state.json                  where the run is: round, phase, task cursor
    out/rounds/NNN/train/...        episodes collected on the app's training split in round NNN
    out/rounds/NNN/eval/...         evaluation episodes on the test split after round NNN's update
    out/trainer/checkpoint-S/       TRL/transformers checkpoints (model, optimiser, scheduler, RNG) after each round
    out/log.csv                     one row per round
    out/trainer/runs/, out/tensorboard/   TensorBoard: TRL's per-step metrics; per-round scalars

Starting again with the same folder continues the run: finished episodes are kept, training
resumes from the last checkpoint, and the task cursor (which training task and seed come next)
carries on.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coda_agent.images import DEFAULT_MAX_PIXELS, EXECUTOR_MAX_PIXELS
from coda_agent.interrupts import honour_interrupt, remembered_interrupts
from sciboard_gym.trajectory import atomic_write_json

REWARDS = ("env", "match", "judge")
LOG_FIELDS = ("round", "train_episodes", "train_success", "states", "global_step", "group_reward",
              "eval_episodes", "eval_success", "seconds")
EVAL_SEED_OFFSET = 1_000_000


@dataclass
class Stage1Config:
    """Everything a Stage 1 run needs; the CLI flags and TOML recipe keys have the same names."""

    app: str
    planner: str
    executor: str
    out: str = "runs/stage1"
    reward: str = "env"
    group: int = 4
    rounds: int = 3
    train_episodes: int = 8
    eval_episodes: int = 4
    updates_per_round: int = 8
    states_per_update: int = 1
    learning_rate: float = 1e-6
    beta: float = 0.0
    epsilon: float = 0.2
    temperature: float = 1.0
    max_new_tokens: int = 256
    executor_max_new_tokens: int = 128
    max_steps: int | None = None
    lora_rank: int = 0
    planner_device: str = "cpu"
    executor_device: str = "cpu"
    dtype: str = "auto"
    planner_max_pixels: int = DEFAULT_MAX_PIXELS
    executor_max_pixels: int = EXECUTOR_MAX_PIXELS
    coordinates: str = "absolute"
    provider: str = "local"
    screen_size: tuple[int, int] = (1920, 1080)
    episodes: list[str] = field(default_factory=list)
    continue_steps: int = 0
    judge: str | None = None
    use_vllm: bool = False
    vllm_server_base_url: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if self.group < 2:
            raise ValueError("group must be at least 2 (advantages are relative within a group)")
        for name in ("rounds", "updates_per_round", "states_per_update"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        self.screen_size = (int(self.screen_size[0]), int(self.screen_size[1]))
        self.episodes = list(self.episodes)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> Stage1Config:
        """A config from a TOML recipe (top-level keys = field names); ``overrides`` win."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"{path}: cannot read the recipe: {err}") from None
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}}, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Stage1Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as err:
            raise ValueError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunState:
    """Where a run is: the round, its phase (collect, train, evaluate), and the training-task cursor."""

    round: int = 0
    phase: str = "collect"
    cursor: int = 0
    round_cursor: int = 0

    @classmethod
    def load(cls, path: Path) -> RunState:
        return cls(**json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        atomic_write_json(path, dataclasses.asdict(self))


class Stage1Run:
    """One Stage 1 run in ``config.out`` (new or continued). ``printer`` receives progress lines."""

    def __init__(self, config: Stage1Config, printer: Callable[[str], None] = print):
        from sciboard_gym.env import task_split
        from sciboard_gym.tasks import load_app_tasks

        self.config, self.print = config, printer
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_config()
        tasks = load_app_tasks(config.app)
        self.train_tasks = [t.id for t in tasks if task_split(t.id) == "train"]
        self.test_tasks = [t.id for t in tasks if task_split(t.id) == "test"]
        if not self.train_tasks:
            raise ValueError(f"{config.app} has no training tasks")
        self.state = RunState.load(self.out / "state.json")
        self._env: Any = None
        self._reward: Any = None

    # --- setup ------------------------------------------------------------------------

    def _check_config(self) -> None:
        saved_path = self.out / "config.json"
        current = json.loads(json.dumps(self.config.to_dict()))
        if saved_path.exists():
            saved = json.loads(saved_path.read_text())
            changed = sorted(k for k in current if k not in ("rounds", "out") and saved.get(k) != current[k])
            if changed:
                self.print(f"[stage1] continuing {self.out} with changed settings: {', '.join(changed)}")
        atomic_write_json(saved_path, current)

    def _load_models(self) -> None:
        from coda_agent.backends import OpenAIBackend, TransformersBackend
        from coda_agent.cerebellum import Cerebellum

        cfg = self.config
        self.print(f"[stage1] loading the planner {cfg.planner} and the executor {cfg.executor}")
        checkpoint = self.latest_checkpoint()
        full_checkpoint = checkpoint is not None and (checkpoint / "config.json").exists()
        self.planner = TransformersBackend(str(checkpoint) if full_checkpoint else cfg.planner, dtype=cfg.dtype,
                                           device=cfg.planner_device)
        if cfg.lora_rank > 0:
            from peft import LoraConfig, PeftModel, get_peft_model

            model: Any
            if checkpoint is not None and not full_checkpoint:
                model = PeftModel.from_pretrained(self.planner.model, str(checkpoint), is_trainable=True)
            else:
                lora = LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank, lora_dropout=0.0,
                                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
                model = get_peft_model(self.planner.model, lora)
            self.planner = TransformersBackend.from_model(model, self.planner.processor, cfg.planner)
        if checkpoint is not None:
            self.print(f"[stage1] planner weights from {checkpoint}")
        if cfg.executor.startswith(("http://", "https://")):
            base_url, _, name = cfg.executor.partition("#")
            executor_backend: Any = OpenAIBackend(base_url, name)
        else:
            executor_backend = TransformersBackend(cfg.executor, dtype=cfg.dtype, device=cfg.executor_device)
        self.executor = Cerebellum(executor_backend, coordinates=cfg.coordinates,  # type: ignore[arg-type]
                                   max_pixels=cfg.executor_max_pixels, max_new_tokens=cfg.executor_max_new_tokens)

    def cerebrum(self, temperature: float) -> Any:
        from coda_agent.cerebrum import Cerebrum

        return Cerebrum(self.planner, max_new_tokens=self.config.max_new_tokens, temperature=temperature,
                        max_pixels=self.config.planner_max_pixels)

    def env(self) -> Any:
        if self._env is None:
            import gymnasium as gym

            import sciboard_gym  # noqa: F401  (registers the envs)
            from sciboard_gym.apps import APPS

            self._env = gym.make(APPS[self.config.app][0], provider=self.config.provider,
                                 screen_size=self.config.screen_size, max_steps=self.config.max_steps)
        return self._env

    def reward(self) -> Any:
        if self._reward is None:
            from coda_agent.rewards import ActionMatchReward, EnvOutcomeReward, make_local_env

            cfg = self.config
            if cfg.reward == "env":
                self._reward = EnvOutcomeReward(
                    lambda app, size: make_local_env(app, size, cfg.provider),
                    policy=self.agent(cfg.temperature) if cfg.continue_steps else None,
                    continue_steps=cfg.continue_steps, printer=self.print)
            elif cfg.reward == "match":
                self._reward = ActionMatchReward()
            else:
                self._reward = self._judge_reward()
        return self._reward

    def _judge_reward(self) -> Any:
        from coda_agent.backends import make_backend
        from coda_agent.judge import Judge, JudgeReward

        if not self.config.judge:
            raise ValueError("--reward judge needs --judge MODEL (a VLM: hub id, folder or http://host:port/v1#name)")
        return JudgeReward(Judge(make_backend(self.config.judge)))

    def agent(self, temperature: float) -> Any:
        from coda_agent.agent import CODAAgent

        return CODAAgent(self.cerebrum(temperature), self.executor)

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        """Run (or continue) rounds until ``config.rounds`` are done."""
        if self.state.round >= self.config.rounds:
            self.print(f"[stage1] {self.out}: all {self.config.rounds} rounds are done")
            return
        self._load_models()
        try:
            with remembered_interrupts():
                while self.state.round < self.config.rounds:
                    started = time.monotonic()
                    row: dict[str, Any] = {"round": self.state.round}
                    if self.state.phase == "collect":
                        self.collect()
                        self._advance("train")
                    if self.state.phase == "train":
                        self.train(row)
                        self._advance("evaluate")
                    if self.state.phase == "evaluate":
                        self.evaluate(row)
                        row.update(self._round_summary(), seconds=round(time.monotonic() - started, 1))
                        self._log(row)
                        self.state.round += 1
                        self.state.round_cursor = self.state.cursor
                        self._advance("collect")
        finally:
            self.close()

    def _advance(self, phase: str) -> None:
        """Save that the run is at ``phase`` (a safe point: a Ctrl-C that was swallowed stops the run here)."""
        self.state.phase = phase
        self.state.save(self.out / "state.json")
        honour_interrupt()

    def round_dir(self, kind: str, index: int | None = None) -> Path:
        return self.out / "rounds" / f"{self.state.round if index is None else index:03d}" / kind

    def collect(self) -> None:
        """Play ``train_episodes`` episodes of training tasks with the current planner (sampling)."""
        from tqdm import tqdm

        cfg = self.config
        folder = self.round_dir("train")
        agent = self.agent(cfg.temperature)
        bar = tqdm(range(cfg.train_episodes), desc=f"round {self.state.round}: collect", unit="episode")
        for index in bar:
            position = self.state.round_cursor + index
            task = self.train_tasks[position % len(self.train_tasks)]
            result = self._episode(agent, folder / f"{index:03d}-{task.replace('/', '_')}", task, cfg.seed + position)
            bar.set_postfix_str(f"{task}: {'success' if result else 'failure'}")
            self.state.cursor = position + 1
            self.state.save(self.out / "state.json")
            honour_interrupt()

    def _episode(self, agent: Any, folder: Path, task: str, seed: int) -> bool:
        """One recorded episode, or the finished one already in ``folder``."""
        from sciboard_gym.episode import run_episode
        from sciboard_gym.trajectory import TrajectoryRecorder

        summary = folder / "episode.json"
        if summary.exists():
            episode = json.loads(summary.read_text())
            if episode.get("status") == "finished":
                return bool(episode.get("success"))
        shutil.rmtree(folder, ignore_errors=True)
        self.planner.model.eval()
        return run_episode(self.env(), agent, task=task, seed=seed, recorder=TrajectoryRecorder(folder)).success

    def train(self, row: dict[str, Any]) -> None:
        """``updates_per_round`` GRPO updates on the states of this round's episodes (and ``config.episodes``)."""
        from trl import GRPOConfig

        from coda_agent.backends import TransformersBackend
        from coda_agent.data import find_episodes, step_samples
        from coda_agent.grpo import DecoupledGRPOTrainer, planner_dataset

        cfg = self.config
        roots = [self.round_dir("train")] + [Path(p) for p in cfg.episodes]
        samples = step_samples(find_episodes(roots), apps=[cfg.app])
        if cfg.reward == "match":
            samples = [s for s in samples if s.label is not None]
        row["states"] = len(samples)
        if not samples:
            self.print(f"[stage1] round {self.state.round}: no states to train on; skipping the update")
            return
        dataset = planner_dataset(samples, self.cerebrum(cfg.temperature))
        target = (self.state.round + 1) * cfg.updates_per_round
        vllm: dict[str, Any] = {"vllm_server_base_url": cfg.vllm_server_base_url} if cfg.vllm_server_base_url else {}
        args = GRPOConfig(
            output_dir=str(self.out / "trainer"), per_device_train_batch_size=cfg.group * cfg.states_per_update,
            num_generations=cfg.group, max_completion_length=cfg.max_new_tokens, max_steps=target,
            learning_rate=cfg.learning_rate, lr_scheduler_type="constant", beta=cfg.beta, epsilon=cfg.epsilon,
            temperature=cfg.temperature, seed=cfg.seed, logging_steps=1, save_strategy="steps",
            save_steps=cfg.updates_per_round, ignore_data_skip=True, report_to=["tensorboard"],
            use_cpu=cfg.planner_device == "cpu",
            gradient_checkpointing=False, use_vllm=cfg.use_vllm, vllm_mode="server", **vllm,
        )
        trainer = DecoupledGRPOTrainer(model=self.planner.model, processing_class=self.planner.processor, args=args,
                                       reward_funcs=[self.reward()], train_dataset=dataset, executor=self.executor)
        checkpoint = self.latest_checkpoint()
        self.print(f"[stage1] round {self.state.round}: {len(samples)} states, updates to step {target}"
                   + (f" (from {checkpoint.name})" if checkpoint else ""))
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        rewards = [e["reward"] for e in trainer.state.log_history
                   if "reward" in e and e.get("step", 0) > target - cfg.updates_per_round]
        row["global_step"] = trainer.state.global_step
        row["group_reward"] = round(sum(rewards) / len(rewards), 4) if rewards else None
        self.planner = TransformersBackend.from_model(trainer.model, self.planner.processor, cfg.planner)

    def evaluate(self, row: dict[str, Any]) -> None:
        """Greedy episodes on the test split (the same tasks and seeds every round)."""
        from tqdm import tqdm

        tasks = self.test_tasks or self.train_tasks
        folder = self.round_dir("eval")
        agent = self.agent(0.0)
        successes = 0
        for index in tqdm(range(self.config.eval_episodes), desc=f"round {self.state.round}: evaluate",
                          unit="episode"):
            task = tasks[index % len(tasks)]
            successes += self._episode(agent, folder / f"{index:03d}-{task.replace('/', '_')}", task,
                                       self.config.seed + EVAL_SEED_OFFSET + index)
            honour_interrupt()
        row["eval_episodes"] = self.config.eval_episodes
        row["eval_success"] = round(successes / self.config.eval_episodes, 4) if self.config.eval_episodes else None

    def _round_summary(self) -> dict[str, Any]:
        folder = self.round_dir("train")
        results = [json.loads(p.read_text()) for p in sorted(folder.glob("*/episode.json"))]
        successes = sum(bool(r.get("success")) for r in results)
        return {"train_episodes": len(results), "train_success": round(successes / len(results), 4) if results else None}

    def _log(self, row: dict[str, Any]) -> None:
        path = self.out / "log.csv"
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k) for k in LOG_FIELDS})
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(self.out / "tensorboard" / "rounds")) as board:
            for key in ("train_success", "group_reward", "eval_success"):
                if row.get(key) is not None:
                    board.add_scalar(f"stage1/{key}", row[key], row["round"])
        self.print("[stage1] " + ", ".join(f"{k} {row.get(k)}" for k in LOG_FIELDS))

    def latest_checkpoint(self) -> Path | None:
        """The newest complete trainer checkpoint of this run."""
        found = [p for p in (self.out / "trainer").glob("checkpoint-*") if (p / "trainer_state.json").exists()]
        return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._reward is not None and hasattr(self._reward, "close"):
            self._reward.close()
            self._reward = None
