"""Decoupled GRPO with tiny real models: TRL's GRPOTrainer updates the planner, the executor stays frozen."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch = pytest.importorskip("torch")
pytest.importorskip("trl")
torch.set_num_threads(1)

from PIL import Image
from trl import GRPOConfig

from coda_agent import Cerebellum, Cerebrum, TransformersBackend
from coda_agent.data import StepSample
from coda_agent.grpo import DecoupledGRPOTrainer, planner_dataset, planner_prompt
from coda_agent.rewards import ActionMatchReward
from coda_agent.tiny import cached_tiny_qwen25vl

PIXELS = 112 * 112 * 4


def sample(task_id: str, instruction: str, screenshot: Image.Image, **fields: Any) -> StepSample:
    values: dict[str, Any] = {"app": "kalgebra", "seed": 0, "episode_dir": "episodes/0", "step": 1, "history": [],
                              "prev_screenshot": None, "thought": None, "plan": None, "planner_reply": None,
                              "action": 'type("x:=1")', "prefix": [], "episode_success": True,
                              "label": 'type("x:=1")'}
    values.update(fields)
    return StepSample(task_id=task_id, instruction=instruction, screenshot=screenshot, **values)


def shot(seed: int) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(200, 320, 3) * 255).astype(np.uint8))


def samples() -> list[StepSample]:
    return [sample("kalgebra/a", "Define x as 1.", shot(1)),
            sample("kalgebra/b", "Plot sin.", shot(2), prev_screenshot=shot(3), step=2,
                   history=["Thought: open the plot tab | Action: click Plot"], prefix=['click(10, 10)'])]


def weights(model: Any) -> dict[str, Any]:
    return {name: p.detach().clone() for name, p in model.state_dict().items()}


def test_prompt_is_the_cerebrum_conversation() -> None:
    cerebrum = Cerebrum(backend=None, max_pixels=PIXELS)  # type: ignore[arg-type]
    second = samples()[1]
    messages, images = planner_prompt(cerebrum, second)
    assert [m["role"] for m in messages] == ["system", "user"]
    texts = [p["text"] for p in messages[1]["content"] if p["type"] == "text"]
    assert "Plot sin." in texts[0] and "click Plot" in texts[0]
    assert texts[1:3] == ["Previous screen:", "Current screen:"]
    assert len(images) == 2 and images[1].size[0] * images[1].size[1] <= PIXELS


def test_training_updates_the_planner_and_never_the_executor(tmp_path) -> None:
    checkpoint = str(cached_tiny_qwen25vl())
    planner = TransformersBackend(checkpoint, dtype="float32")
    executor = Cerebellum(TransformersBackend(checkpoint, dtype="float32"), max_pixels=PIXELS, max_new_tokens=8)
    executor_before = weights(executor.backend.model)
    planner_before = weights(planner.model)
    seen: list[dict[str, Any]] = []

    def longer_is_better(prompts, completions, grounded, plan, **columns):  # a TRL-style reward
        seen.append({"grounded": grounded, "plan": plan, "task_id": columns["task_id"]})
        return [float(len(p)) / 10 for p in plan]

    dataset = planner_dataset(samples(), Cerebrum(planner, max_pixels=PIXELS))
    config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                        max_completion_length=6, max_steps=2, learning_rate=5e-3, use_cpu=True, report_to=[],
                        logging_steps=1, save_strategy="no", temperature=1.0, seed=0)
    trainer = DecoupledGRPOTrainer(model=planner.model, processing_class=planner.processor, args=config,
                                   reward_funcs=[ActionMatchReward(), longer_is_better], train_dataset=dataset,
                                   executor=executor)
    trainer.train()
    logs = {k for entry in trainer.state.log_history for k in entry}
    assert {"rewards/action_match/mean", "rewards/longer_is_better/mean", "grounding/failed"} <= logs
    assert len(seen) == 2 and all(len(s["grounded"]) == 4 for s in seen)
    assert all(set(s["task_id"]) <= {"kalgebra/a", "kalgebra/b"} for s in seen)
    after = weights(executor.backend.model)
    assert all(torch.equal(executor_before[k], after[k]) for k in executor_before)  # bit-identical
    assert not any(p.requires_grad for p in executor.backend.model.parameters())
    planner_after = weights(trainer.model)
    assert any(not torch.equal(planner_before[k], planner_after[k]) for k in planner_before)
