"""A model behind an OpenAI-compatible chat-completions server (vLLM, our own server, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from coda_agent.backends.base import BackendError, Conversation, openai_messages


class OpenAIBackend:
    """Calls ``POST {base_url}/chat/completions`` with images inlined as PNG data URLs.

    ``base_url`` includes the version prefix, e.g. ``http://127.0.0.1:8000/v1``; ``model``
    is the served model name. Conversations of one ``generate`` call are sent concurrently
    (up to ``concurrency`` at a time) so a batching server (vLLM) can batch them.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 300.0,
                 concurrency: int = 8, retries: int = 2):
        import requests

        self.base_url = base_url.rstrip("/")
        self.name = model
        self.timeout, self.concurrency, self.retries = timeout, max(1, concurrency), retries
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def generate(self, conversations: Sequence[Conversation], *, max_new_tokens: int = 256,
                 temperature: float = 0.0) -> list[str]:
        """One reply per conversation; raises :class:`BackendError` when the server fails."""
        if len(conversations) <= 1:
            return [self._complete(c, max_new_tokens, temperature) for c in conversations]
        with ThreadPoolExecutor(min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(lambda c: self._complete(c, max_new_tokens, temperature), conversations))

    def _complete(self, conversation: Conversation, max_new_tokens: int, temperature: float) -> str:
        import requests

        body: dict[str, Any] = {"model": self.name, "messages": openai_messages(conversation), "max_tokens": max_new_tokens,
                "temperature": temperature}
        problem = ""
        for _ in range(self.retries + 1):
            try:
                response = self.session.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout)
            except requests.RequestException as err:
                problem = f"cannot reach {self.base_url}: {err}"
                continue
            if response.status_code >= 500:
                problem = f"server error {response.status_code}: {response.text[:300]}"
                continue
            if response.status_code != 200:
                raise BackendError(f"{self.base_url} refused the request ({response.status_code}): "
                                   f"{response.text[:300]}")
            try:
                content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError) as err:
                raise BackendError(f"unexpected response from {self.base_url}: {response.text[:300]}") from err
            return content or ""
        raise BackendError(problem)
