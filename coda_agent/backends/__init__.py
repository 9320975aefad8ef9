"""Model backends behind one small interface (:class:`Backend`).

- :class:`TransformersBackend`: local weights through Hugging Face transformers.
- :class:`OpenAIBackend`: an OpenAI-compatible server (vLLM, ``python -m coda_agent.server``).

Heavy imports (torch, transformers, requests) happen when a backend is created.
"""

from coda_agent.backends.base import Backend, BackendError, Conversation, Message, Part
from coda_agent.backends.openai_backend import OpenAIBackend
from coda_agent.backends.transformers_backend import TransformersBackend


def make_backend(spec: str, **options) -> Backend:
    """A backend from a short spec: ``http://host:port/v1#model-name`` or a model path / hub id."""
    if spec.startswith(("http://", "https://")):
        base_url, _, model = spec.partition("#")
        if not model:
            raise ValueError("an HTTP backend spec needs the served model name: http://host:port/v1#model")
        return OpenAIBackend(base_url, model, **options)
    return TransformersBackend(spec, **options)


__all__ = ["Backend", "BackendError", "Conversation", "Message", "OpenAIBackend", "Part", "TransformersBackend",
           "make_backend"]
