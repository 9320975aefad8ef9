"""CODA Stage 2: supervised fine-tuning of one generalist planner on the experts' pooled successes.

The successful episodes of several apps' Stage 1 runs (and any other recorded episodes, e.g.
oracle runs) are pooled (:func:`pool_episodes`), every step becomes a chat sample that is
exactly the Cerebrum's prompt (:meth:`~coda_agent.cerebrum.Cerebrum.conversation`, images
included) with the planner's ``Thought: ... Action: ...`` reply as the assistant turn
(:func:`sft_rows`), and TRL's ``SFTTrainer`` trains a fresh planner with the loss on the
reply tokens only (:func:`sft_collator`). One run lives in one output folder::

    out/config.json          the run's configuration (a :class:`Stage2Config`)
    out/pool/                the pooled step samples: a Hugging Face dataset folder with a README card
    out/trainer/checkpoint-S TRL/transformers checkpoints (model or LoRA adapter, optimiser, RNG)
    out/planner/             the trained planner (LoRA merged), loadable like any checkpoint
    out/trainer/runs/        TensorBoard logs (loss, held-out loss per app)
    out/result.json          held-out loss per app before and after training

Starting again with the same folder continues the run from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coda_agent.backends.base import chat_template_messages
from coda_agent.cerebrum import Cerebrum
from coda_agent.configs import config_from_dict
from coda_agent.data import (
    Episode,
    StepSample,
    episode_samples,
    find_episodes,
    load_episode,
    planner_conversation,
    to_dataset,
)
from coda_agent.data import planner_target as planner_reply
from coda_agent.images import DEFAULT_MAX_PIXELS
from sciboard_gym.trajectory import atomic_write_bytes, atomic_write_json

Printer = Callable[[str], None]


@dataclass
class PoolConfig:
    """Which recorded episodes are pooled.

    An episode is kept when its app is listed (all apps if ``apps`` is empty), it succeeded
    (``only_success``: by the env's evaluator; by ``judge``'s verdict for episodes the env
    did not evaluate, or for every episode when ``judge_all``), it has at most
    ``max_episode_steps`` steps, and (``dedupe``) no kept episode of the same task executed
    the same actions.
    """

    apps: list[str] = field(default_factory=list)
    only_success: bool = True
    judge: str | None = None
    judge_all: bool = False
    judge_samples: int = 3
    judge_voting: str = "unanimous"
    max_episode_steps: int | None = None
    dedupe: bool = True


@dataclass
class PoolReport:
    """What pooling found, kept and dropped (and why), per app."""

    found: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    success_source: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        apps = ", ".join(f"{app} {self.kept[app]} episodes / {self.steps[app]} steps" for app in sorted(self.kept))
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items())) or "none"
        return f"pooled {sum(self.kept.values())} of {self.found} episodes ({apps or 'none'}); dropped: {dropped}"


def pool_episodes(roots: Iterable[str | Path], config: PoolConfig,
                  judge: Any = None, printer: Printer = print) -> tuple[list[Episode], PoolReport]:
    """The episodes under ``roots`` that pass ``config``'s filters, and a report.

    ``judge`` (a :class:`coda_agent.judge.Judge`) is needed when ``config.judge_all`` is set or
    an episode has no evaluator verdict (no checks); it is built from ``config.judge`` if not given.
    """
    report = PoolReport()
    kept: list[Episode] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for folder in find_episodes(list(roots)):
        report.found += 1
        episode = load_episode(folder)
        if config.apps and episode.app not in config.apps:
            report.dropped["other app"] += 1
            continue
        if config.max_episode_steps is not None and len(episode.steps) > config.max_episode_steps:
            report.dropped["too many steps"] += 1
            continue
        key = (episode.task_id, tuple(episode.executed_actions()))
        if config.dedupe and key in seen:
            report.dropped["duplicate"] += 1
            continue
        if config.only_success:
            evaluated = bool(episode.summary.get("checks"))
            source = "env" if evaluated and not config.judge_all else "judge"
            if evaluated and not episode.success:
                report.dropped["failed (env)"] += 1
                continue
            if source == "judge":
                judge = judge or _make_judge(config)
                if not judge.judge_episode(episode).success:
                    report.dropped["failed (judge)"] += 1
                    continue
            report.success_source[source] += 1
        seen.add(key)
        kept.append(episode)
        report.kept[episode.app] += 1
        report.steps[episode.app] += len(episode.steps)
    printer(f"[stage2] {report.summary()}")
    return kept, report


def _make_judge(config: PoolConfig) -> Any:
    if not config.judge:
        raise ValueError("some episodes have no evaluator verdict (or judge_all is set): give a judge model")
    from coda_agent.backends import make_backend
    from coda_agent.judge import Judge

    return Judge(make_backend(config.judge), samples=config.judge_samples, voting=config.judge_voting)  # type: ignore[arg-type]


def pooled_samples(episodes: Sequence[Episode], skip_rejected: bool = True) -> list[StepSample]:
    """Every step of the pooled episodes (without the steps the env rejected, when ``skip_rejected``)."""
    samples = []
    for episode in episodes:
        rejected = {r["step"] for r in episode.steps if (r.get("info") or {}).get("action_error")}
        samples += [s for s in episode_samples(episode) if not (skip_rejected and s.step in rejected)]
    return samples


def export_pool(samples: Sequence[StepSample], folder: str | Path, report: PoolReport,
                config: PoolConfig) -> Path:
    """Save the pooled samples as a Hugging Face dataset folder (``datasets.load_from_disk``) with a card."""
    folder = Path(folder)
    to_dataset(samples).save_to_disk(str(folder))
    episodes = Counter(app for app, _ in {(s.app, s.episode_dir) for s in samples})
    steps = Counter(s.app for s in samples)
    lines = [
        "---", "task_categories:", "- image-text-to-text", "tags:", "- computer-use", "- sciboard-gym", "---", "",
        "# Pooled successful trajectories (CODA Stage 2)", "",
        "Steps of recorded SciBoard Gym episodes, pooled for supervised fine-tuning of a planner. One row per",
        "executed action: the task, the planner history before it, the previous and current screenshots, the",
        "planner's reply (when recorded), the executed action, the episode's outcome and the label.", "",
        "Load it with `datasets.load_from_disk(\"<this folder>\")`; `coda_agent.data.from_dataset` turns rows",
        "back into step samples.", "", "| app | episodes | steps |", "|---|---|---|",
        *[f"| {app} | {episodes[app]} | {steps[app]} |" for app in sorted(steps)],
        f"| total | {sum(episodes.values())} | {sum(steps.values())} |", "",
        "## How episodes were chosen", "",
        f"- success: {'required' if config.only_success else 'not required'}; verdicts from "
        + (", ".join(f"{src} ({n} episodes)" for src, n in sorted(report.success_source.items())) or "none"),
        "  (`env` = the app's evaluator, `judge` = a VLM judge's vote)",
        (f"- apps: {', '.join(config.apps) if config.apps else 'all'}; at most "
         f"{config.max_episode_steps or 'any number of'} steps; duplicates {'removed' if config.dedupe else 'kept'}"),
        f"- found {report.found} episodes; dropped: "
        + (", ".join(f"{reason} {n}" for reason, n in sorted(report.dropped.items())) or "none"), "",
    ]
    atomic_write_bytes(folder / "README.md", "\n".join(lines).encode())
    return folder


# --- chat samples and loss masking ----------------------------------------------------------


def sft_row(sample: StepSample, cerebrum: Cerebrum) -> dict[str, Any]:
    """One prompt-completion row: the Cerebrum's prompt (messages with image placeholders, images)
    and the planner's reply as the assistant turn."""
    prompt, images = chat_template_messages(planner_conversation(sample, cerebrum))
    completion = [{"role": "assistant", "content": [{"type": "text", "text": planner_reply(sample)}]}]
    return {"prompt": prompt, "completion": completion, "images": images, "app": sample.app,
            "task_id": sample.task_id}


def sft_rows(samples: Sequence[StepSample], cerebrum: Cerebrum) -> list[dict[str, Any]]:
    return [sft_row(sample, cerebrum) for sample in samples]


def held_out(task_id: str, fraction: float) -> bool:
    """Stable choice of held-out tasks: a hash of the task id puts about ``fraction`` of them aside."""
    return zlib.crc32(f"sft:{task_id}".encode()) % 1000 < fraction * 1000


def split_rows(rows: Sequence[dict[str, Any]], fraction: float) -> tuple[list[dict[str, Any]], dict[str, list]]:
    """(training rows, held-out rows per app); every app with two or more tasks keeps one task aside."""
    tasks_by_app: dict[str, list[str]] = {}
    for row in rows:
        tasks_by_app.setdefault(row["app"], [])
        if row["task_id"] not in tasks_by_app[row["app"]]:
            tasks_by_app[row["app"]].append(row["task_id"])
    aside: set[str] = set()
    for tasks in tasks_by_app.values():
        chosen = [t for t in tasks if held_out(t, fraction)] if fraction > 0 else []
        if fraction > 0 and not chosen and len(tasks) >= 2:
            chosen = [min(tasks, key=lambda t: zlib.crc32(t.encode()))]
        if len(chosen) == len(tasks):
            chosen = chosen[:-1]
        aside.update(chosen)
    train = [r for r in rows if r["task_id"] not in aside]
    evaluation: dict[str, list] = {}
    for row in rows:
        if row["task_id"] in aside:
            evaluation.setdefault(row["app"], []).append(row)
    return train, evaluation


def sft_collator(processor: Any) -> Any:
    """TRL's vision-language collator with the loss on the completion (the planner's reply) only:
    every prompt token, image tokens included, gets the label -100."""
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    return DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Stage2Config:
    """A Stage 2 run; the CLI flags and the recipe's ``[stage2]`` keys have the same names."""

    planner: str
    runs: list[str]
    out: str = "runs/stage2"
    pool: PoolConfig = field(default_factory=PoolConfig)
    eval_fraction: float = 0.2
    skip_rejected: bool = True
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 1e-5
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    lora_rank: int = 0
    lora_alpha: int | None = None
    save_steps: int = 50
    eval_steps: int | None = None
    warmup_steps: float = 0.0
    dtype: str = "auto"
    device: str = "cpu"
    planner_max_pixels: int = DEFAULT_MAX_PIXELS
    history_steps: int = 8
    gradient_checkpointing: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.pool, dict):
            self.pool = config_from_dict(PoolConfig, self.pool, "pool")
        if not self.runs:
            raise ValueError("give at least one folder of recorded episodes to pool (runs / --from)")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        self.runs = [str(r) for r in self.runs]

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Stage2Config:
        return config_from_dict(cls, data, source)

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> Stage2Config:
        """A config from a TOML file (top-level keys = field names, ``[pool]`` table); ``overrides`` win."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"{path}: cannot read the recipe: {err}") from None
        return cls.from_dict({**data, **{k: v for k, v in overrides.items() if v is not None}}, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Stage2Result:
    """Held-out loss per app before and after training, where the planner was saved, and the pool."""

    loss_before: dict[str, float]
    loss_after: dict[str, float]
    planner: str
    pool: str
    train_rows: int
    global_step: int


class Stage2Run:
    """One Stage 2 run in ``config.out`` (new or continued): pool, export, train, save the planner."""

    def __init__(self, config: Stage2Config, printer: Printer = print, callbacks: Sequence[Any] = ()):
        self.config, self.print, self.callbacks = config, printer, list(callbacks)
        self.out = Path(config.out)

    def run(self) -> Stage2Result:
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "config.json", cfg.to_dict())
        episodes, report = pool_episodes(cfg.runs, cfg.pool, printer=self.print)
        samples = pooled_samples(episodes, cfg.skip_rejected)
        if not samples:
            raise ValueError(f"no steps to train on: {report.summary()}")
        pool_dir = export_pool(samples, self.out / "pool", report, cfg.pool)
        checkpoint = self.latest_checkpoint()
        backend = self._load_planner(checkpoint)
        cerebrum = Cerebrum(backend, history_steps=cfg.history_steps, max_pixels=cfg.planner_max_pixels)
        train_rows, eval_rows = split_rows(sft_rows(samples, cerebrum), cfg.eval_fraction)
        if not train_rows:
            raise ValueError("every pooled task was held out; pool more tasks or lower eval_fraction")
        eval_sets = {app: Dataset.from_list(rows) for app, rows in sorted(eval_rows.items())}
        self.print(f"[stage2] {len(train_rows)} training steps; held out: "
                   + (", ".join(f"{app} {len(rows)}" for app, rows in sorted(eval_rows.items())) or "none"))
        args = SFTConfig(
            output_dir=str(self.out / "trainer"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation_steps, learning_rate=cfg.learning_rate,
            warmup_steps=cfg.warmup_steps, logging_steps=1, save_strategy="steps", save_steps=cfg.save_steps,
            eval_strategy="steps" if (cfg.eval_steps and eval_sets) else "no", eval_steps=cfg.eval_steps,
            completion_only_loss=True, max_length=None, seed=cfg.seed, report_to=["tensorboard"],
            use_cpu=cfg.device == "cpu",
            gradient_checkpointing=cfg.gradient_checkpointing, remove_unused_columns=False,
            dataset_kwargs={"skip_prepare_dataset": True},
        )
        trainer = SFTTrainer(model=backend.model, args=args, train_dataset=Dataset.from_list(train_rows),
                             eval_dataset=eval_sets or None, processing_class=backend.processor,
                             data_collator=sft_collator(backend.processor),
                             peft_config=self._lora() if checkpoint is None else None,
                             callbacks=self.callbacks)
        result_path = self.out / "result.json"
        saved = json.loads(result_path.read_text()) if result_path.exists() else {}
        before = saved.get("loss_before") or self._held_out_loss(trainer, eval_sets)
        atomic_write_json(result_path, {**saved, "loss_before": before})
        self.print("[stage2] held-out loss before: " + _losses(before)
                   + (f"; continuing from {checkpoint.name}" if checkpoint else ""))
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        after = self._held_out_loss(trainer, eval_sets)
        self.print(f"[stage2] held-out loss after: {_losses(after)}")
        planner_dir = self._save_planner(trainer, backend.processor)
        result = Stage2Result(before, after, str(planner_dir), str(pool_dir), len(train_rows),
                              trainer.state.global_step)
        atomic_write_json(result_path, dataclasses.asdict(result))
        return result

    def _load_planner(self, checkpoint: Path | None) -> Any:
        """The planner to train: the configured one, or the weights of this run's last checkpoint
        (a full model through ``from_pretrained``, or the base with the checkpoint's LoRA adapter)."""
        from coda_agent.backends import TransformersBackend

        cfg = self.config
        full = checkpoint is not None and (checkpoint / "config.json").exists()
        source = str(checkpoint) if full else cfg.planner
        self.print(f"[stage2] loading the planner {source}")
        backend = TransformersBackend(source, dtype=cfg.dtype, device=cfg.device)
        if checkpoint is not None and not full:
            from peft import PeftModel

            adapted: Any = PeftModel.from_pretrained(backend.model, str(checkpoint), is_trainable=True)
            backend.model = adapted
        backend.processor.tokenizer.padding_side = "right"
        return backend

    def _lora(self) -> Any:
        if self.config.lora_rank <= 0:
            return None
        from peft import LoraConfig

        rank = self.config.lora_rank
        return LoraConfig(r=rank, lora_alpha=self.config.lora_alpha or 2 * rank, lora_dropout=0.0,
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")

    @staticmethod
    def _held_out_loss(trainer: Any, eval_sets: dict[str, Any]) -> dict[str, float]:
        if not eval_sets:
            return {}
        metrics = trainer.evaluate()
        return {app: round(float(metrics[f"eval_{app}_loss"]), 5) for app in eval_sets}

    def _save_planner(self, trainer: Any, processor: Any) -> Path:
        """The trained planner as a plain checkpoint folder (LoRA merged into the weights)."""
        folder = self.out / "planner"
        model = trainer.model
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        model.save_pretrained(str(folder))
        processor.save_pretrained(str(folder))
        return folder

    def latest_checkpoint(self) -> Path | None:
        """The newest complete trainer checkpoint of this run."""
        found = [p for p in (self.out / "trainer").glob("checkpoint-*") if (p / "trainer_state.json").exists()]
        return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None


def _losses(losses: dict[str, float]) -> str:
    return ", ".join(f"{app} {loss:.4f}" for app, loss in sorted(losses.items())) or "(nothing held out)"
