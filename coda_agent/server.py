"""A small OpenAI-compatible chat-completions server around :class:`TransformersBackend`.

vLLM is the server to use on GPUs. This one exists because ``transformers serve`` drops the
images of a Qwen2.5-VL checkpoint where torchvision is missing (its ``AutoProcessor`` needs
the video processor and falls back to the bare tokenizer); this server loads checkpoints
exactly as :class:`TransformersBackend` does, with the image-only processor. Images must be inline ``data:`` URLs; the
server never fetches remote URLs. Run::

    python -m coda_agent.server --model ByteDance-Seed/UI-TARS-1.5-7B --port 8001 --dtype bfloat16 --device cuda
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from coda_agent.backends.base import Backend, Message, Part, image_from_data_url

MAX_NEW_TOKENS = 4096


class RequestError(ValueError):
    """A request the server refuses (HTTP 400)."""


def conversation_from_openai(messages: Any) -> list[Message]:
    """OpenAI chat messages (text and ``image_url`` data-URL parts) -> our :class:`Message` list."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    conversation = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestError("each message needs a role: system, user or assistant")
        content = message.get("content") or ""
        items = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(items, list):
            raise RequestError("message content must be a string or a list of parts")
        parts: list[Part] = []
        for item in items:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text" and isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif kind == "image_url":
                url = item.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                try:
                    parts.append(image_from_data_url(str(url)))
                except (ValueError, OSError) as err:
                    raise RequestError(f"bad image: {err}") from err
            else:
                raise RequestError(f"unsupported content part: {str(item)[:80]}")
        conversation.append(Message(message["role"], tuple(parts)))
    return conversation


def create_app(backend: Backend, model_name: str):
    """The FastAPI app: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``."""
    from fastapi import Body, FastAPI, HTTPException

    app = FastAPI(title="coda_agent model server")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "local"}]}

    @app.post("/v1/chat/completions")
    def chat_completions(request: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008  (FastAPI idiom)
        try:
            if request.get("stream"):
                raise RequestError("streaming is not supported")
            conversation = conversation_from_openai(request.get("messages"))
            n = int(_option(request, "n", 1))
            max_tokens = int(_option(request, "max_tokens", _option(request, "max_completion_tokens", 256)))
            temperature = float(_option(request, "temperature", 1.0))
            if not (1 <= n <= 64 and 1 <= max_tokens <= MAX_NEW_TOKENS and 0 <= temperature <= 5):
                raise RequestError(f"need 1<=n<=64, 1<=max_tokens<={MAX_NEW_TOKENS}, 0<=temperature<=5")
        except (RequestError, TypeError, ValueError) as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        replies = backend.generate([conversation] * n, max_new_tokens=max_tokens, temperature=temperature)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model_name,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        for i, text in enumerate(replies)],
        }

    return app


def _option(request: dict[str, Any], key: str, default: Any) -> Any:
    value = request.get(key)
    return default if value is None else value


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from coda_agent.backends.transformers_backend import TransformersBackend

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint folder or hub id")
    parser.add_argument("--served-model-name", help="name clients send as 'model' (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="auto", help="auto, bfloat16, float16 or float32")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--max-pixels", type=int, help="cap on image pixels after resizing")
    args = parser.parse_args(argv)
    backend = TransformersBackend(args.model, dtype=args.dtype, device=args.device, max_pixels=args.max_pixels)
    uvicorn.run(create_app(backend, args.served_model_name or args.model), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
