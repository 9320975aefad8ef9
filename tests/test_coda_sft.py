"""CODA Stage 2: pooling, the dataset export, assistant-only loss masking, and a resumable SFT run."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from coda_agent.cerebrum import Cerebrum
from coda_agent.data import StepSample, find_episodes, from_dataset
from coda_agent.sft import (
    PoolConfig,
    Stage2Config,
    Stage2Run,
    export_pool,
    pool_episodes,
    pooled_samples,
    sft_collator,
    sft_row,
)

PIXELS = 112 * 112 * 4


class FakeBackend:
    """Never asked to generate: the planner here only builds prompts."""

    def generate(self, conversations: Sequence, *, max_new_tokens: int = 256, temperature: float = 0.0) -> list[str]:
        raise AssertionError("not used")


def sample(step: int = 2) -> StepSample:
    screen = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8))
    return StepSample(
        task_id="kalgebra/assign-sum", app="kalgebra", instruction="Set total to 17+25+58.", seed=0,
        episode_dir="ep", step=step, history=["Thought: - | Action: click(5, 5) | executed click(5, 5)"],
        screenshot=screen, prev_screenshot=screen.rotate(90) if step > 1 else None,
        thought="Type the assignment", plan="Type the assignment",
        planner_reply='Thought: Type the assignment\nAction: type "total:=17+25+58" into the console',
        action='type("total:=17+25+58")', prefix=["click(5, 5)"], episode_success=True, label=None)


def test_loss_is_on_the_reply_tokens_only() -> None:
    """A real tokenised sample with two screenshots (tiny Qwen2.5-VL and its real processor)."""
    from coda_agent.backends.processor import QwenVLImageOnlyProcessor
    from coda_agent.tiny import cached_tiny_qwen25vl

    processor = QwenVLImageOnlyProcessor.from_pretrained(str(cached_tiny_qwen25vl()))
    row = sft_row(sample(), Cerebrum(FakeBackend(), max_pixels=PIXELS))
    assert len(row["images"]) == 2
    batch = sft_collator(processor)([row])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    image_positions = [i for i, t in enumerate(ids) if t == image_token]
    assert len(image_positions) > 8 and all(labels[i] == -100 for i in image_positions)
    trained = [i for i, label in enumerate(labels) if label != -100]
    assert trained == list(range(trained[0], len(ids)))  # one block at the end: the reply
    assert all(labels[i] == ids[i] for i in trained)
    reply = processor.tokenizer.decode([ids[i] for i in trained])
    assert reply.startswith("Thought: Type the assignment\nAction: type") and reply.rstrip().endswith("<|im_end|>")
    prompt = processor.tokenizer.decode(ids[:trained[0]])
    assert "Set total to 17+25+58." in prompt and "Previous screen:" in prompt and "Thought: Type" not in prompt


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_pool_filters_and_exported_dataset_loads_back(recorded_episodes: Path, tmp_path: Path) -> None:
    import datasets

    runs = tmp_path / "runs"
    shutil.copytree(recorded_episodes, runs)
    first = find_episodes(runs)[0]
    shutil.copytree(first, runs / "again")  # the same task and actions: a duplicate
    episodes, report = pool_episodes([runs], PoolConfig())
    assert len(episodes) == 3 and report.dropped == {"failed (env)": 2, "duplicate": 1}
    assert report.success_source == {"env": 3}
    short, _ = pool_episodes([runs], PoolConfig(only_success=False, dedupe=False, max_episode_steps=2))
    assert {len(e.steps) for e in short} == {2}
    assert pool_episodes([runs], PoolConfig(apps=["pymol"]))[0] == []
    samples = pooled_samples(episodes)
    folder = export_pool(samples, tmp_path / "pool", report, PoolConfig())
    loaded = datasets.load_from_disk(str(folder))
    assert len(loaded) == len(samples) == report.steps["kalgebra"]
    assert [s.action for s in from_dataset(loaded)] == [s.action for s in samples]
    card = (folder / "README.md").read_text()
    assert f"| kalgebra | 3 | {len(samples)} |" in card and "env (3 episodes)" in card


class Interrupt:
    """A trainer callback that stops the process (KeyboardInterrupt) when a step is reached."""

    def __init__(self, at_step: int):
        from transformers import TrainerCallback

        self.at_step, self.steps, self.start_weights = at_step, [], None
        outer = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                outer.start_weights = float(model.get_input_embeddings().weight.detach().double().sum())

            def on_step_end(self, args, state, control, **kwargs):
                outer.steps.append(state.global_step)
                if state.global_step == outer.at_step:
                    raise KeyboardInterrupt

        self.callback = Callback()


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_stage2_lowers_held_out_loss_and_resumes(recorded_episodes: Path, tmp_path: Path) -> None:
    """Interrupted after a checkpoint, the same command with the same folder continues the same run."""
    import torch

    from coda_agent.backends import TransformersBackend
    from coda_agent.tiny import cached_tiny_qwen25vl

    torch.set_num_threads(1)
    config = Stage2Config(planner=str(cached_tiny_qwen25vl()), runs=[str(recorded_episodes)], out=str(tmp_path / "s2"),
                          max_steps=6, save_steps=3, learning_rate=3e-3, planner_max_pixels=PIXELS, dtype="float32",
                          eval_fraction=0.3)
    first = Interrupt(at_step=4)
    with pytest.raises(KeyboardInterrupt):
        Stage2Run(config, callbacks=[first.callback]).run()
    assert first.steps == [1, 2, 3, 4] and (tmp_path / "s2" / "trainer" / "checkpoint-3").is_dir()
    second = Interrupt(at_step=-1)
    result = Stage2Run(config, callbacks=[second.callback]).run()
    assert second.steps == [4, 5, 6] and result.global_step == 6
    saved = TransformersBackend(str(tmp_path / "s2" / "trainer" / "checkpoint-3"), dtype="float32").model
    assert second.start_weights == pytest.approx(float(saved.get_input_embeddings().weight.double().sum()))
    assert second.start_weights != pytest.approx(first.start_weights)  # the checkpoint's weights, not the base's
    assert set(result.loss_before) == {"kalgebra"}
    print(f"held-out loss before {result.loss_before}, after {result.loss_after}")
    assert result.loss_after["kalgebra"] < result.loss_before["kalgebra"]
    planner = TransformersBackend(result.planner, dtype="float32")
    assert Cerebrum(planner, max_pixels=PIXELS, max_new_tokens=4).propose(
        {"screenshot": sample().screenshot, "instruction": "x"})[0].raw is not None
