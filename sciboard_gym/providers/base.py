"""The provider contract: where a desktop lives and how it is started, reset and stopped."""

from __future__ import annotations

import abc

from sciboard_gym.guest_client import GuestClient


class ProviderError(RuntimeError):
    """A desktop could not be started or died (the message says what and why)."""


class Provider(abc.ABC):
    """Owns one desktop and hands back a :class:`GuestClient` for it."""

    name: str = ""

    @abc.abstractmethod
    def start(self) -> GuestClient:
        """Bring the desktop up (idempotent) and return its guest client."""

    @abc.abstractmethod
    def reset_app(self, app: str) -> dict:
        """Give ``app`` a fresh state (fresh HOME / snapshot revert); returns timing info."""

    @abc.abstractmethod
    def alive(self) -> str | None:
        """None if the desktop is healthy, else a message naming what died."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the desktop and remove everything it started (idempotent)."""

    @property
    @abc.abstractmethod
    def client(self) -> GuestClient:
        """The guest client of a started desktop."""
