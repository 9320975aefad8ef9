"""In-memory stand-ins for a desktop, for testing the env contract in milliseconds (unit tests only).

``FakeProvider`` is a real :class:`~sciboard_gym.providers.Provider`; its ``FakeGuest`` answers the
calls ``SciBoardEnv`` makes of a guest client from memory: frames that change with each input, setup
steps and inputs recorded, probe values (or errors) set by the test, and a desktop that can be
"killed" so every call fails as an unreachable guest would. Pass an instance as ``provider=``, or
``provider="fakes:FakeProvider"`` through ``gym.make``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sciboard_gym.guest_client import GuestError, GuestUnreachable
from sciboard_gym.providers import Provider, ProviderError

FAKE_TREE: dict[str, Any] = {
    "role": "desktop", "name": "", "children": [
        {"role": "frame", "name": "Fake", "showing": True, "box": [0, 0, 64, 48], "children": [
            {"role": "push button", "name": "OK", "showing": True, "box": [4, 4, 20, 10], "children": []},
        ]},
    ],
}


class FakeGuest:
    """A guest client whose desktop lives in memory."""

    def __init__(self, screen_size: tuple[int, int], probes: dict[str, Any]):
        self.width, self.height = screen_size
        #: probe name -> the value it returns, or an exception instance it raises
        self.probes = probes
        self.inputs: list[dict[str, Any]] = []
        self.setups: list[tuple[str, dict[str, Any]]] = []
        self.launched: list[str] = []
        #: what died, once the desktop is "killed": every call then fails as if the guest were gone
        self.dead: str | None = None
        #: whether a step's settle ends before its timeout (False: the screen keeps changing)
        self.settles = True

    def _answer(self) -> None:
        if self.dead is not None:
            raise GuestUnreachable(f"fake guest unreachable: {self.dead}")

    def health(self, timeout: float | None = None) -> dict[str, Any]:
        self._answer()
        return {"ok": True, "components": {"xvfb": True, "wm": True, "dbus": True, "app": True}}

    def screenshot(self) -> np.ndarray:
        """A frame that depends only on what happened since launch (deterministic per episode)."""
        self._answer()
        frame = np.zeros((self.height, self.width, 3), np.uint8)
        frame[:, :, 0] = len(self.inputs) % 256
        frame[:, :, 1] = len(self.setups) % 256
        return frame

    def settle(self, quiet: float = 0.2, timeout: float = 3.0) -> dict[str, Any]:
        self._answer()
        return {"settled": True, "seconds": 0.0, "app_alive": True}

    def input(self, action: dict[str, Any], settle: tuple[float, float] | None = None) -> dict[str, Any] | None:
        self._answer()
        self.inputs.append(action)
        return {"settled": self.settles, "seconds": 0.0, "app_alive": True} if settle is not None else None

    def a11y_text(self, app: str | None = None) -> str:
        self._answer()
        return "[frame] 'Fake'\n  [push button] 'OK' @(4,4,20,10)"

    def a11y_tree(self, app: str | None = None, showing_only: bool = False) -> dict[str, Any]:
        self._answer()
        return FAKE_TREE

    def launch(self, app: str) -> dict[str, Any]:
        self._answer()
        self.launched.append(app)
        self.inputs.clear()
        self.setups.clear()
        return {"app": app, "launch_seconds": 0.0}

    def setup(self, step: str, args: dict[str, Any] | None = None) -> Any:
        self._answer()
        self.setups.append((step, dict(args or {})))
        return None

    def probe(self, probe: str, args: dict[str, Any] | None = None) -> Any:
        self._answer()
        if probe not in self.probes:
            raise GuestError(400, f"guest POST /probe -> 400: unknown probe {probe!r}")
        value = self.probes[probe]
        if isinstance(value, Exception):
            raise value
        return value

    def close(self) -> None:
        pass


class FakeProvider(Provider):
    """A provider whose desktop is a :class:`FakeGuest`; ``kill()`` breaks it like a crashed X server."""

    name = "fake"

    def __init__(self, screen_size: tuple[int, int] = (64, 48), app: str | None = None,
                 probes: dict[str, Any] | None = None):
        self.screen_size = (int(screen_size[0]), int(screen_size[1]))
        self.app = app
        self.probes: dict[str, Any] = dict(probes or {})
        self.guest: FakeGuest | None = None
        self.starts = 0
        self.closes = 0

    @property
    def client(self) -> FakeGuest:  # type: ignore[override]
        if self.guest is None:
            raise ProviderError("the fake desktop is not started")
        return self.guest

    def start(self) -> FakeGuest:  # type: ignore[override]
        if self.guest is None:
            self.guest = FakeGuest(self.screen_size, self.probes)
            self.starts += 1
        return self.guest

    def reset_app(self, app: str) -> dict[str, Any]:
        return self.client.launch(app)

    def alive(self) -> str | None:
        if self.guest is None:
            return "the fake desktop is not started"
        return self.guest.dead

    def close(self) -> None:
        if self.guest is not None:
            self.closes += 1
        self.guest = None

    def kill(self, what: str = "the X server") -> None:
        """Break the running desktop: ``alive()`` names ``what``, every guest call fails."""
        self.client.dead = f"{what} died"
