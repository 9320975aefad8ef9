"""Decoupled GRPO (CODA Stage 1): train the planner while a frozen executor grounds its plans.

TRL's :class:`~trl.GRPOTrainer` does the optimisation (sampling G completions per prompt,
group-normalised advantages, the clipped policy-gradient loss on completion tokens, the
optional KL to a reference, vLLM generation, PEFT, DeepSpeed, logging). What is decoupled
lives here:

- :func:`planner_dataset`: one row per recorded state, the prompt built exactly as
  :meth:`Cerebrum.conversation` builds it (task, history, previous and current screenshots),
  plus the columns the rewards need.
- :class:`DecoupledGRPOTrainer`: before the rewards run, every completion is parsed as a
  planner reply and grounded by the frozen :class:`~coda_agent.cerebellum.Cerebellum` in one
  batched call; the rewards (:mod:`coda_agent.rewards`) receive the grounded actions as the
  ``grounded`` column. The executor never receives gradients.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from PIL import Image

from coda_agent.backends.base import chat_template_messages
from coda_agent.cerebellum import Grounding
from coda_agent.cerebrum import Cerebrum, parse_plan
from coda_agent.data import StepSample, planner_conversation
from coda_agent.rewards import completion_text

try:
    from trl import GRPOTrainer
except ImportError as err:  # the trainer needs the ``train`` extra
    raise ImportError("coda_agent.grpo needs TRL: pip install 'sciboard-gym[agent,train]'") from err


class Executor(Protocol):
    """A frozen grounder: :class:`~coda_agent.cerebellum.Cerebellum`, or anything with ``ground_batch``."""

    def ground_batch(self, plans: Sequence[str], observations: Sequence[Mapping[str, Any]]) -> list[Grounding]: ...


def planner_prompt(cerebrum: Cerebrum, sample: StepSample) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """The planner's prompt for ``sample`` as TRL takes it: chat messages with image placeholders, and the images."""
    return chat_template_messages(planner_conversation(sample, cerebrum))


def planner_rows(samples: Sequence[StepSample], cerebrum: Cerebrum) -> list[dict[str, Any]]:
    """One GRPO row per state: ``prompt`` and ``images`` for the planner, the rest for the executor and rewards."""
    rows = []
    for sample in samples:
        prompt, images = planner_prompt(cerebrum, sample)
        screenshot = sample.screenshot.convert("RGB")
        rows.append({
            "prompt": prompt, "images": images, "screenshot": screenshot, "screen_size": list(screenshot.size),
            "instruction": sample.instruction, "history": list(sample.history),
            "app": sample.app, "task_id": sample.task_id, "seed": sample.seed, "prefix": list(sample.prefix),
            "label": sample.label, "step": sample.step, "episode_dir": str(sample.episode_dir),
        })
    return rows


def planner_dataset(samples: Sequence[StepSample], cerebrum: Cerebrum) -> Any:
    """:func:`planner_rows` as a Hugging Face ``datasets.Dataset`` (images as ``Image`` features)."""
    import datasets

    return datasets.Dataset.from_list(planner_rows(samples, cerebrum))


class DecoupledGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` whose rewards score the frozen executor's grounding of each plan.

    Takes every ``GRPOTrainer`` argument (the planner as ``model``, ``reward_funcs``,
    ``args=GRPOConfig(...)``, ``train_dataset`` from :func:`planner_dataset`, ``peft_config``)
    plus ``executor``. Each completion is parsed as a planner reply (``Thought: ... Action:
    ...``); its plan (or terminal action) goes to ``executor.ground_batch`` with the row's
    observation (``screenshot``, ``instruction``), all completions of a batch in one call.
    Reward functions then receive ``grounded`` (the action, or ``None``) and ``plan`` columns.
    Logged per step: the grounded actions in the completions table, ``grounding/failed`` (share not grounded),
    ``grounding/seconds``, and TRL's per-reward means.
    """

    def __init__(self, *args: Any, executor: Executor, **kwargs: Any):
        self.executor = executor
        _freeze(executor)
        score_completion_tokens_only()
        super().__init__(*args, **kwargs)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        steps = [parse_plan(completion_text(c)) for c in completions]
        started = time.monotonic()
        groundings = self.executor.ground_batch([s.env_action for s in steps],
                                                [{"screenshot": x["screenshot"], "instruction": x["instruction"]}
                                                 for x in inputs])
        self._log_metric("grounding/seconds", time.monotonic() - started)
        self._log_metric("grounding/failed", sum(g.action is None for g in groundings) / max(1, len(groundings)))
        self._log_completion_extra("grounded", [g.action or f"(not grounded: {g.error})" for g in groundings])
        grounded_inputs = [{**x, "grounded": g.action, "plan": s.plan}
                           for x, g, s in zip(inputs, groundings, steps, strict=True)]
        return super()._calculate_rewards(grounded_inputs, prompts, completions, completion_ids_list)


def _freeze(executor: Any) -> None:
    """No gradients for a model-backed executor (its weights stay bit-identical)."""
    model = getattr(getattr(executor, "backend", None), "model", None)
    if model is not None and hasattr(model, "parameters"):
        model.eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)


def score_completion_tokens_only() -> None:
    """On CPU, let TRL compute log-probabilities at the completion positions only.

    Off Triton devices TRL's fused LM head scores every position, prompt included, so that
    tile shapes stay fixed for graph compilers; in eager CPU runs that multiplies the work by
    the prompt length (three tiny-model updates: 66.8 s before, 2.3 s after). The values are
    the same: positions outside the completion are masked out either way.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "compact_on_cpu", False):
        return

    def compact(device: Any) -> bool:
        return device.type == "cpu" or bool(original(device))

    compact.compact_on_cpu = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact

