"""Desktop providers: ``local`` (an Xvfb desktop on this host) and ``libvirt`` (a VM), or your own
``"module:Class"``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sciboard_gym.providers.base import Provider, ProviderError

#: provider name -> "module:class"
PROVIDERS: dict[str, str] = {
    "local": "sciboard_gym.providers.local:LocalProvider",
    "libvirt": "sciboard_gym.providers.libvirt:LibvirtProvider",
}


def make_provider(name: str, app: str, screen_size: tuple[int, int], **options: Any) -> Provider:
    """Build the provider ``name`` for ``app``: a registered name or a ``"module:Class"`` path to a
    :class:`Provider` subclass (called with ``screen_size``, ``app`` and ``options``)."""
    target = PROVIDERS.get(name) or (name if ":" in name else None)
    if target is None:
        raise ProviderError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))} or 'module:Class'")
    module, _, cls = target.partition(":")
    try:
        provider_cls = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as err:
        raise ProviderError(f"cannot load provider {name!r}: {err}") from err
    if not (isinstance(provider_cls, type) and issubclass(provider_cls, Provider)):
        raise ProviderError(f"provider {name!r} is not a sciboard_gym.providers.Provider subclass")
    build: Callable[..., Provider] = provider_cls
    return build(screen_size=screen_size, app=app, **options)


__all__ = ["PROVIDERS", "Provider", "ProviderError", "make_provider"]
