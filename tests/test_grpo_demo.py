"""A shortened run of the CPU GRPO demonstration (benchmarks/grpo_demo.py) on a real KAlgebra desktop."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("trl")
DEMO = Path(__file__).resolve().parents[1] / "benchmarks" / "grpo_demo.py"


@pytest.mark.desktop
@pytest.mark.xdist_group("kalgebra")
def test_mean_group_reward_goes_up(tmp_path: Path) -> None:
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("grpo_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    curve = demo.run_demo(tasks=3, updates=10, group=8, warmup_steps=20, learning_rate=7e-4, out=tmp_path)
    assert len(curve) == 10
    start, end = sum(curve[:2]) / 2, sum(curve[-3:]) / 3
    assert start <= 0.6  # three candidates: a planner without preference scores about 1/3
    assert end > start + 0.15, curve
