"""Building the training configs (dataclasses) from recipe dictionaries, with errors that name the source."""

from __future__ import annotations

import dataclasses
from typing import Any


def config_from_dict(kind: Any, data: dict[str, Any], source: str) -> Any:
    """``kind(**data)``; unknown keys or wrong arguments raise ``ValueError`` naming ``source``."""
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return kind(**data)
    except TypeError as err:
        raise ValueError(f"{source}: {err}") from None
