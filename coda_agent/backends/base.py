"""The small interface every model backend implements, and the message type it takes."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from PIL import Image

#: One piece of a message: text, or an image (already resized by the caller).
Part: TypeAlias = str | Image.Image


class BackendError(RuntimeError):
    """A backend could not produce an answer (server unreachable, bad response, ...)."""


@dataclass(frozen=True)
class Message:
    """One chat message: a role (``system``, ``user``, ``assistant``) and its parts in order."""

    role: str
    parts: tuple[Part, ...]

    @classmethod
    def of(cls, role: str, *parts: Part) -> Message:
        return cls(role, tuple(parts))

    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]


Conversation = Sequence[Message]


@runtime_checkable
class Backend(Protocol):
    """A chat model that sees images: one reply per conversation.

    ``generate`` takes several conversations at once so that a group (e.g. G samples of one
    state for GRPO, or G plans to ground) runs as one batch where the backend can batch.
    ``temperature=0`` is greedy decoding.
    """

    def generate(self, conversations: Sequence[Conversation], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]: ...


def chat_template_messages(conversation: Conversation) -> tuple[list[dict], list[Image.Image]]:
    """Hugging Face chat-template messages (image placeholders) and the images in order."""
    messages, images = [], []
    for message in conversation:
        content = []
        for part in message.parts:
            if isinstance(part, Image.Image):
                content.append({"type": "image"})
                images.append(part)
            else:
                content.append({"type": "text", "text": part})
        messages.append({"role": message.role, "content": content})
    return messages, images


def openai_messages(conversation: Conversation) -> list[dict]:
    """OpenAI chat-completions messages, images inlined as PNG data URLs."""
    messages = []
    for message in conversation:
        content = []
        for part in message.parts:
            if isinstance(part, Image.Image):
                content.append({"type": "image_url", "image_url": {"url": png_data_url(part)}})
            else:
                content.append({"type": "text", "text": part})
        messages.append({"role": message.role, "content": content})
    return messages


def png_data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_from_data_url(url: str) -> Image.Image:
    """Decode a ``data:image/...;base64,`` URL (the only image form our server accepts)."""
    header, _, payload = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64")) or not payload:
        raise ValueError("images must be inline base64 data URLs (data:image/png;base64,...)")
    image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
    image.load()
    return image.convert("RGB")
