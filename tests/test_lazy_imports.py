"""The env core imports neither Ray nor Stable-Baselines3 nor torch: they load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_heavy_optional_packages() -> None:
    code = ("import sys, sciboard_gym, sciboard_gym.env, sciboard_gym.distributed, sciboard_gym.wrappers; "
            "print(sorted(m for m in ('ray', 'stable_baselines3', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
