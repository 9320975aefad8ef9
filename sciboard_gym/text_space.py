"""``ObservationText``: a ``Text`` space that ``AsyncVectorEnv`` can pass through shared memory.

Gymnasium's ``AsyncVectorEnv(shared_memory=True)`` (the default of ``gym.make_vec(...,
vectorization_mode="async")``) reads every observation field from shared memory once, when the
vector env is built: arrays stay live views, but a ``Text`` field becomes a tuple of the strings
present at that moment, so every later instruction would read as the initial, empty one. Our
observation texts use this subclass, whose batched value is a tuple that decodes the shared
buffer each time it is read (a copy is a plain tuple of the strings at that moment).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Self

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import read_from_shared_memory


class ObservationText(spaces.Text):
    """A Text space whose values survive Gymnasium's shared-memory vector envs."""


class LiveTexts(tuple):
    """The strings in a shared buffer of ``n`` texts, decoded on every read."""

    _space: spaces.Text
    _memory: Any
    _n: int

    def __new__(cls, space: spaces.Text, memory: Any, n: int) -> Self:
        live = super().__new__(cls)
        live._space, live._memory, live._n = space, memory, n
        return live

    def _decode(self, index: int) -> str:
        size = self._space.max_length
        codes = np.frombuffer(self._memory.get_obj(), dtype=np.int32)[index * size:(index + 1) * size]
        chars, count = self._space.character_list, len(self._space.character_list)
        return "".join(chars[code] for code in codes if code < count)

    def snapshot(self) -> tuple[str, ...]:
        """The texts now, as a plain tuple."""
        return tuple(self._decode(i) for i in range(self._n))

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())

    def __getitem__(self, index: Any) -> Any:
        return self.snapshot()[index]

    def __contains__(self, item: object) -> bool:
        return item in self.snapshot()

    def __eq__(self, other: object) -> bool:
        return self.snapshot() == other

    def __ne__(self, other: object) -> bool:
        return self.snapshot() != other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.snapshot())

    def __copy__(self) -> tuple[str, ...]:
        return self.snapshot()

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return copy.deepcopy(self.snapshot(), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return tuple, (self.snapshot(),)


@read_from_shared_memory.register(ObservationText)
def _read_live_texts(space: ObservationText, shared_memory: Any, n: int = 1) -> LiveTexts:
    return LiveTexts(space, shared_memory, n)
