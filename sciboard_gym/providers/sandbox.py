"""The bubblewrap sandbox a local desktop runs in.

Every process of the desktop (Xvfb, window manager, buses, the app, the guest agent) runs in the
pinned desktop tree (:mod:`vm_images.trees`) under ``bwrap``: its own user namespace with an
unprivileged uid, the tree read-only, a private HOME and /tmp, its own network namespace with
loopback only, its own PID, IPC and UTS namespaces, and no way to outlive the process that started it.
The only host paths it sees are the desktop folder (read-write: the guest's socket, the framebuffer,
episode HOMEs), the guest package (read-only) and the apps' prepared data (read-only).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from sciboard_gym.providers.base import ProviderError
from vm_images.trees import SANDBOX_UID, SANDBOX_USER

#: Where the host's paths appear inside the sandbox.
DESKTOP_DIR = "/run/sciboard/desktop"
PACKAGE_DIR = "/run/sciboard/lib"
DATA_DIR = "/run/sciboard/data"
HOME = f"/home/{SANDBOX_USER}"
PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxUnavailable(ProviderError):
    """This host cannot make the sandbox (no bubblewrap, or user namespaces are off)."""


def _unavailable(cause: str) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"cannot sandbox the local desktop: {cause}. Either run the desktop in a VM "
        "(gym.make(..., provider='libvirt')), or run it unsandboxed on this host's own packages "
        "(gym.make(..., sandbox=False): development only, an agent can then reach this machine).")


@functools.cache
def check_host() -> str:
    """The path of ``bwrap`` once a trial sandbox has worked; :class:`SandboxUnavailable` if it cannot."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise _unavailable("bubblewrap is not installed (apt-get install bubblewrap; scripts/install.sh does it)")
    trial = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--ro-bind", "/", "/",
                            "--die-with-parent", "true"], capture_output=True, text=True, timeout=30, check=False)
    if trial.returncode != 0:
        detail = trial.stderr.strip().splitlines()[-1] if trial.stderr.strip() else f"exit {trial.returncode}"
        raise _unavailable(f"bubblewrap cannot create user, network and PID namespaces here ({detail}; "
                           "are unprivileged user namespaces disabled, e.g. kernel.unprivileged_userns_clone=0 "
                           "or inside a container without them?)")
    return bwrap


@dataclass
class Sandbox:
    """How one desktop's sandbox is made: the tree, the desktop folder and the read-only extras."""

    tree: Path
    desktop_dir: Path
    package_dir: Path
    data_dir: Path | None = None
    data_writable: bool = False
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, command: list[str]) -> list[str]:
        """``bwrap ... -- command``: ``command`` runs in the sandbox with a clean environment."""
        argv = [check_host(), "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                "--die-with-parent", "--new-session", "--clearenv",
                "--ro-bind", str(self.tree), "/", "--dev", "/dev", "--proc", "/proc",
                "--tmpfs", "/tmp", "--perms", "1777", "--dir", "/tmp/.X11-unix",
                "--tmpfs", "/run", "--tmpfs", HOME,
                "--bind", str(self.desktop_dir), DESKTOP_DIR,
                "--ro-bind", str(self.package_dir / "sciboard_guest"), f"{PACKAGE_DIR}/sciboard_guest"]
        if self.data_dir is not None:
            argv += ["--bind" if self.data_writable else "--ro-bind", str(self.data_dir), DATA_DIR]
        env = {"PATH": PATH, "HOME": HOME, "USER": SANDBOX_USER, "LANG": "C.UTF-8", "PYTHONPATH": PACKAGE_DIR,
               "SCIBOARD_CACHE": DATA_DIR, **self.env}
        for key, value in env.items():
            argv += ["--setenv", key, value]
        return [*argv, "--chdir", HOME, "--", *command]
