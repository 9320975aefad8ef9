"""App adapters (one per file) and the table of apps SciBoard Gym registers."""

from __future__ import annotations

import importlib

from sciboard_gym.apps.base import AppAdapter

#: app name -> (Gymnasium id, module holding ``ADAPTER``)
APPS: dict[str, tuple[str, str]] = {
    "kalgebra": ("SciBoard-KAlgebra-v0", "sciboard_gym.apps.kalgebra"),
    "grass": ("SciBoard-GRASS-v0", "sciboard_gym.apps.grass"),
    "texstudio": ("SciBoard-TeXstudio-v0", "sciboard_gym.apps.texstudio"),
    "chimerax": ("SciBoard-ChimeraX-v0", "sciboard_gym.apps.chimerax"),
    "pymol": ("SciBoard-PyMOL-v0", "sciboard_gym.apps.pymol"),
    "stellarium": ("SciBoard-Stellarium-v0", "sciboard_gym.apps.stellarium"),
    "celestia": ("SciBoard-Celestia-v0", "sciboard_gym.apps.celestia"),
}


def get_adapter(app: str) -> AppAdapter:
    """The host-side adapter of ``app``."""
    if app not in APPS:
        raise ValueError(f"unknown app {app!r}; known: {', '.join(sorted(APPS))}")
    return importlib.import_module(APPS[app][1]).ADAPTER
