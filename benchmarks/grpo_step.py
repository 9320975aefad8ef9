"""Where a decoupled GRPO update spends its time, against plain TRL ``GRPOTrainer``, side by side in one run.

    .venv/bin/python benchmarks/grpo_step.py [--updates 6] [--group 4] [--states 2] [--tokens 16]

Three trainers on the same tiny planner (:mod:`coda_agent.tiny`), the same rows (the
Cerebrum's prompt with a screenshot) and the same group size:

- ``plain TRL``: ``trl.GRPOTrainer`` with a trivial reward (completion length);
- ``decoupled, no-model grounder``: :class:`~coda_agent.grpo.DecoupledGRPOTrainer` with a
  grounder that needs no model and the same trivial reward: our own overhead;
- ``decoupled, tiny executor``: the same with a tiny Qwen2.5-VL Cerebellum grounding every
  plan and :class:`~coda_agent.rewards.ActionMatchReward`.

Per update: generation (TRL's ``_generate``), grounding (the executor's batched call), reward
(the reward functions) and the rest (log-probabilities, loss, backward, optimiser step). The
first update of each trainer is a warm-up and not counted. All three score log-probabilities
at completion positions only (:func:`~coda_agent.grpo.score_completion_tokens_only`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image


class PassThroughGrounder:
    """Grounds every plan as ``wait(1)`` without a model (isolates the decoupled path's own cost)."""

    def ground_batch(self, plans: Sequence[str], observations: Sequence[Mapping[str, Any]]) -> list[Any]:
        from coda_agent.cerebellum import Grounding

        return [Grounding(plan, plan, action="wait(1)") for plan in plans]


def timed(function: Callable[..., Any], bucket: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - started)

    wrapper.__name__ = getattr(function, "__name__", "wrapped")
    return wrapper


def length_reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
    from coda_agent.rewards import completion_text

    return [len(completion_text(c)) / 100 for c in completions]


def measure(name: str, make_trainer: Callable[[list[Callable[..., Any]]], Any], executor: Any,
            updates: int) -> dict[str, float]:
    from transformers import TrainerCallback

    times: dict[str, list[float]] = defaultdict(list)
    reward = timed(length_reward if executor is None or isinstance(executor, PassThroughGrounder)
                   else _match_reward(), times["reward"])
    trainer = make_trainer([reward])
    trainer._generate = timed(trainer._generate, times["generation"])
    if executor is not None:
        executor.ground_batch = timed(executor.ground_batch, times["grounding"])

    class StepClock(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            for bucket in times.values():
                bucket.clear()
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            total = time.perf_counter() - self.started
            parts = {k: sum(v) for k, v in times.items()}
            rows.append({"total": total, **parts, "rest": total - sum(parts.values())})

    rows: list[dict[str, float]] = []
    trainer.add_callback(StepClock())
    trainer.train()
    counted = rows[1:] or rows
    summary = {key: statistics.median(r.get(key, 0.0) for r in counted)
               for key in ("total", "generation", "grounding", "reward", "rest")}
    print(f"  {name:<32} " + "  ".join(f"{k} {1000 * v:8.1f} ms" for k, v in summary.items()))
    return summary


def _match_reward() -> Callable[..., Any]:
    from coda_agent.rewards import ActionMatchReward

    return ActionMatchReward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=6, help="updates per trainer (the first is a warm-up)")
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--states", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=16, help="max completion tokens")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from coda_agent import Cerebellum, Cerebrum, TransformersBackend
    from coda_agent.data import StepSample
    from coda_agent.grpo import DecoupledGRPOTrainer, planner_rows, score_completion_tokens_only
    from coda_agent.tiny import cached_tiny_qwen25vl

    torch.set_num_threads(1)
    score_completion_tokens_only()  # the same CPU log-probability path for all three trainers
    checkpoint = str(cached_tiny_qwen25vl())
    pixels = 112 * 112 * 4
    samples = [StepSample(
        task_id=f"kalgebra/demo-{i}", app="kalgebra", instruction=f"Compute {i} + {i} in the calculator.", seed=i,
        episode_dir="-", step=1, history=[], screenshot=Image.fromarray(
            (np.random.RandomState(i).rand(800, 1280, 3) * 255).astype(np.uint8)),
        prev_screenshot=None, thought=None, plan=None, planner_reply=None, action='type("1+1")', prefix=[],
        episode_success=True, label=f'type("{i}+{i}\\n")') for i in range(args.states)]
    out = tempfile.mkdtemp(prefix="grpo-step-")

    def config() -> Any:
        return GRPOConfig(output_dir=out, per_device_train_batch_size=args.group * args.states,
                          num_generations=args.group, max_completion_length=args.tokens, max_steps=args.updates,
                          learning_rate=1e-4, temperature=1.0, logging_steps=1, save_strategy="no", report_to=[],
                          use_cpu=True, seed=0, gradient_checkpointing=False, disable_tqdm=True)

    print(f"[grpo-step] tiny Qwen2.5-VL planner, {args.states} states x G={args.group}, "
          f"{args.tokens} completion tokens, median of {args.updates - 1} updates (1 thread)")
    results = {}
    for name, executor in (("plain TRL", None), ("decoupled, no-model grounder", PassThroughGrounder()),
                           ("decoupled, tiny executor", "tiny")):
        planner = TransformersBackend(checkpoint, dtype="float32")
        dataset = datasets.Dataset.from_list(planner_rows(samples, Cerebrum(planner, max_pixels=pixels)))
        if executor == "tiny":
            executor = Cerebellum(TransformersBackend(checkpoint, dtype="float32"), max_pixels=pixels,
                                  max_new_tokens=args.tokens)

        def make(rewards: list[Callable[..., Any]], executor: Any = executor, planner: Any = planner,
                 dataset: Any = dataset) -> Any:
            common = {"model": planner.model, "processing_class": planner.processor, "args": config(),
                      "reward_funcs": rewards, "train_dataset": dataset}
            return GRPOTrainer(**common) if executor is None else DecoupledGRPOTrainer(**common, executor=executor)

        results[name] = measure(name, make, executor, args.updates)
    base = results["plain TRL"]["total"]
    for name in list(results)[1:]:
        print(f"[grpo-step] {name}: {results[name]['total'] / base:.2f}x the plain TRL update "
              f"(+{1000 * (results[name]['total'] - base):.1f} ms)")


if __name__ == "__main__":
    main()
