"""Local inference with Hugging Face transformers (``AutoModelForImageTextToText``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from coda_agent.backends.base import Conversation, chat_template_messages

#: Model types whose processor we build image-only (their stock processor needs torchvision for video).
IMAGE_ONLY_TYPES = {"qwen2_vl", "qwen2_5_vl"}


class TransformersBackend:
    """A vision-language model loaded from a local folder or a hub id.

    ``model`` is anything ``from_pretrained`` takes (``Qwen/Qwen2.5-VL-32B-Instruct``,
    ``ByteDance-Seed/UI-TARS-1.5-7B``, ``/path/to/checkpoint``). ``dtype`` is ``"auto"``
    (the checkpoint's), ``"bfloat16"``, ``"float16"`` or ``"float32"``; ``device`` is
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (spread over all GPUs with accelerate).
    ``max_pixels`` caps the image processor's resize. Conversations in one ``generate`` call
    run as one left-padded batch.
    """

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "cpu", max_pixels: int | None = None,
                 attn_implementation: str | None = None, trust_remote_code: bool = False):
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

        from coda_agent.backends.processor import QwenVLImageOnlyProcessor

        config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        processor_class = QwenVLImageOnlyProcessor if config.model_type in IMAGE_ONLY_TYPES else AutoProcessor
        self.processor = processor_class.from_pretrained(model, trust_remote_code=trust_remote_code)
        if max_pixels is not None:
            self.processor.image_processor.size = {**self.processor.image_processor.size, "longest_edge": max_pixels}
        self.processor.tokenizer.padding_side = "left"
        torch_dtype: Any = dtype if dtype == "auto" else getattr(torch, dtype)
        kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        if device == "auto":
            kwargs["device_map"] = "auto"
        self.model = AutoModelForImageTextToText.from_pretrained(model, **kwargs)
        if device != "auto":
            self.model.to(device)  # type: ignore[arg-type]  # transformers types .to() for dtypes only
        self.model.eval()
        self.name = model
        self._lock = threading.Lock()

    @classmethod
    def from_model(cls, model: Any, processor: Any, name: str = "in-memory") -> TransformersBackend:
        """A backend around an already loaded model and processor (e.g. the policy a trainer is updating)."""
        backend = cls.__new__(cls)
        backend.model, backend.processor, backend.name = model, processor, name
        backend._lock = threading.Lock()
        return backend

    @property
    def device(self):
        return self.model.device

    def encode(self, conversations: Sequence[Conversation], add_generation_prompt: bool = True):
        """The model inputs (a ``BatchFeature`` on the model's device) for a batch of conversations."""
        texts, images = [], []
        for conversation in conversations:
            messages, conversation_images = chat_template_messages(conversation)
            texts.append(self.processor.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt))
            images.extend(conversation_images)
        batch = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        return batch.to(self.model.device)

    def generate(self, conversations: Sequence[Conversation], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]:
        """One reply per conversation (sampling when ``temperature > 0``)."""
        import torch

        if not conversations:
            return []
        inputs = self.encode(conversations)
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            options.update(temperature=temperature, top_p=1.0, top_k=0)
        with self._lock, torch.inference_mode():
            output = self.model.generate(**inputs, **options)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)
