"""Making the sandbox: a clear error where none can be made, and ``sandbox=False`` for development."""

from __future__ import annotations

import gymnasium as gym
import pytest

import sciboard_gym  # noqa: F401  (registers the envs)
from sciboard_guest.apps import GuestApp
from sciboard_gym.providers import sandbox


def test_make_fails_clearly_where_no_sandbox_can_be_made(monkeypatch):
    sandbox.check_host.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None)
    try:
        with pytest.raises(sandbox.SandboxUnavailable) as err:
            gym.make("SciBoard-KAlgebra-v0")
    finally:
        sandbox.check_host.cache_clear()
    message = str(err.value)
    assert "bubblewrap is not installed" in message
    assert "provider='libvirt'" in message and "sandbox=False" in message


def test_make_fails_clearly_where_user_namespaces_are_refused(monkeypatch, tmp_path):
    fake_bwrap = tmp_path / "bwrap"
    fake_bwrap.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake_bwrap.chmod(0o755)
    sandbox.check_host.cache_clear()
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: str(fake_bwrap))
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="No permissions to creating new namespace") as err:
            gym.make("SciBoard-KAlgebra-v0")
    finally:
        sandbox.check_host.cache_clear()
    assert "user namespaces" in str(err.value) and "sandbox=False" in str(err.value)


def test_sandbox_false_warns(monkeypatch):
    monkeypatch.setattr(GuestApp, "check_installed", lambda self: None)  # nothing starts here: the app may be absent
    with pytest.warns(RuntimeWarning, match="unsandboxed"):
        env = gym.make("SciBoard-KAlgebra-v0", sandbox=False)
    env.close()


def test_sandbox_false_is_for_the_local_provider_only():
    with pytest.raises(ValueError, match="local provider only"):
        gym.make("SciBoard-KAlgebra-v0", provider="libvirt", sandbox=False)
