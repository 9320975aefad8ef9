"""Desktop providers: ``local`` (an Xvfb desktop on this host) and ``libvirt`` (a VM)."""

from __future__ import annotations

import importlib
from typing import Any

from sciboard_gym.providers.base import Provider, ProviderError

#: provider name -> "module:class"
PROVIDERS: dict[str, str] = {
    "local": "sciboard_gym.providers.local:LocalProvider",
    "libvirt": "sciboard_gym.providers.libvirt:LibvirtProvider",
}


def make_provider(name: str, app: str, screen_size: tuple[int, int], **options: Any) -> Provider:
    """Build the provider called ``name`` for ``app``."""
    if name not in PROVIDERS:
        raise ProviderError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}")
    module, _, cls = PROVIDERS[name].partition(":")
    provider_cls = getattr(importlib.import_module(module), cls)
    return provider_cls(screen_size=screen_size, app=app, **options)


__all__ = ["PROVIDERS", "Provider", "ProviderError", "make_provider"]
