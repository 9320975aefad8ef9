"""Tiny random Qwen2.5-VL models, built offline, saved and reloaded through the real loading code."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

torch.set_num_threads(1)  # tiny models gain nothing from threads; the machine is shared

from coda_agent import Cerebellum, Cerebrum, CODAAgent, Message, TransformersBackend
from coda_agent.images import model_image
from coda_agent.tiny import FIRST_SPECIAL_ID, SPECIAL_TOKENS, build_tiny_qwen25vl

PIXELS = 112 * 112 * 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A checkpoint built here from scratch."""
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-qwen25vl"))


@pytest.fixture(scope="module")
def backend(checkpoint: Path) -> TransformersBackend:
    """The checkpoint loaded like any hub model."""
    return TransformersBackend(str(checkpoint), dtype="float32", device="cpu")


def screen(seed: int) -> np.ndarray:
    return (np.random.RandomState(seed).rand(400, 640, 3) * 255).astype(np.uint8)


def test_checkpoint_has_real_qwen_vocabulary_and_processor(backend: TransformersBackend) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration

    tokenizer = backend.processor.tokenizer
    assert isinstance(backend.model, Qwen2_5_VLForConditionalGeneration)
    assert type(backend.processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    assert not hasattr(backend.processor, "video_processor")
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(
        range(FIRST_SPECIAL_ID, FIRST_SPECIAL_ID + len(SPECIAL_TOKENS)))
    text = "Thought: click the Plot tab at (120, 45). 你好"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) // 2  # real BPE merges, not bytes


def test_encode_expands_image_placeholders(backend: TransformersBackend) -> None:
    image = model_image(screen(0), PIXELS)
    batch = backend.encode([[Message.of("user", image, "what now?")],
                            [Message.of("user", image, "and now?"), Message.of("assistant", "ok"),
                             Message.of("user", image, "next")]])
    grid = batch["image_grid_thw"]
    assert grid.shape == (3, 3)
    image_tokens = (batch["input_ids"] == backend.model.config.image_token_id).sum(dim=1).tolist()
    per_image = int(grid[0].prod()) // 4
    assert image_tokens == [per_image, 2 * per_image]
    assert batch["attention_mask"][0, 0] == 0  # left padding for generation


def test_batched_generation_for_a_group(backend: TransformersBackend) -> None:
    conversation = [Message.of("user", model_image(screen(1), PIXELS), "Plan the next step.")]
    greedy = backend.generate([conversation], max_new_tokens=8)
    group = backend.generate([conversation] * 4, max_new_tokens=8, temperature=1.0)
    assert len(group) == 4 and all(isinstance(text, str) for text in group)
    assert len(set(group)) > 1  # sampled, not four copies
    assert backend.generate([conversation], max_new_tokens=8) == greedy  # greedy is deterministic
    other = [Message.of("user", model_image(screen(2), PIXELS), "Plan the next step.")]
    assert backend.generate([other], max_new_tokens=8) != greedy  # the image matters


def test_coda_agent_with_tiny_models_survives_its_own_output(backend: TransformersBackend) -> None:
    agent = CODAAgent(Cerebrum(backend, max_new_tokens=16, max_pixels=PIXELS, temperature=1.0),
                      Cerebellum(backend, max_new_tokens=16, max_pixels=PIXELS, temperature=1.0))
    agent.reset("Compute the sum of 17, 25 and 58.")
    for step in range(3):
        action = agent.act({"screenshot": screen(step), "instruction": "Compute the sum."})
        assert isinstance(action, str)
    assert len(agent.cerebrum.history) == 3
    assert all(s.grounding is None or s.grounding.action or s.grounding.error for s in agent.steps)


def test_hub_layout_checkpoint_loads_the_same_way(checkpoint: Path, backend: TransformersBackend, tmp_path) -> None:
    """Hub repos (Qwen2.5-VL, UI-TARS-1.5) keep the image processor in preprocessor_config.json,
    the template in chat_template.json and name Qwen2_5_VLProcessor: that layout loads too."""
    hub = Path(shutil.copytree(checkpoint, tmp_path / "hub-layout"))
    image_processor = json.loads((hub / "processor_config.json").read_text())["image_processor"]
    (hub / "preprocessor_config.json").write_text(json.dumps({**image_processor,
                                                               "processor_class": "Qwen2_5_VLProcessor"}))
    (hub / "chat_template.json").write_text(json.dumps({"chat_template": (hub / "chat_template.jinja").read_text()}))
    (hub / "processor_config.json").unlink()
    (hub / "chat_template.jinja").unlink()
    tokenizer_config = json.loads((hub / "tokenizer_config.json").read_text())
    tokenizer_config.update(processor_class="Qwen2_5_VLProcessor", tokenizer_class="Qwen2Tokenizer")
    (hub / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    reloaded = TransformersBackend(str(hub), dtype="float32")
    assert type(reloaded.processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    conversation = [Message.of("user", model_image(screen(4), PIXELS), "Next?")]
    assert reloaded.generate([conversation], max_new_tokens=8) == backend.generate([conversation], max_new_tokens=8)
