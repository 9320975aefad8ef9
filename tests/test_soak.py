"""A short soak in the normal suite (the long one is ``scripts/soak.py --episodes 200``).

Random-agent episodes on mixed KAlgebra tasks with the app, the X server and the guest
agent killed in turn: no episode may raise, every kill must be reported, and processes,
file descriptors, threads and memory must stay flat.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("sciboard_soak", Path(__file__).resolve().parents[1] / "scripts" / "soak.py")
soak = sys.modules["sciboard_soak"] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(soak)


@pytest.mark.soak
@pytest.mark.desktop
def test_short_soak_keeps_going_reports_faults_and_leaks_nothing():
    report = soak.soak(episodes=14, apps=["kalgebra"], max_steps=4, fault_every=2, seed=7, screen_size=(800, 600),
                       warmup=2)
    summary = report.to_dict(warmup=2)
    assert summary["crashes"] == []
    assert summary["episodes"] == 14 and summary["steps"] >= 14
    assert summary["faults_injected"] == 4 and summary["faults_reported"] == 4, summary["unreported_faults"]
    assert {"the app died", "the guest agent died"} <= set(summary["errors"]), summary["errors"]
    assert any("the X server" in error for error in summary["errors"]), summary["errors"]
    assert summary["leaks"] == [], summary["resources"]
    assert summary["resources"]["processes"]["end"] > 0
