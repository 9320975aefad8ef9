"""docs/agents.md: the third-party agent example and the tiny-model CODA command run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "agents.md").read_text()
pytestmark = pytest.mark.desktop


def block_after(marker: str, language: str) -> str:
    match = re.search(re.escape(marker) + rf"\s*```{language}\n(.*?)```", DOC, re.DOTALL)
    assert match, f"no ```{language} block after {marker!r} in docs/agents.md"
    return match.group(1)


def test_third_party_agent_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example_agent.py"
    script.write_text(block_after("<!-- docs-test: third-party-agent -->", "python"))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "kalgebra/assign-sum: success=True reward=1.0" in done.stdout
    assert "refused:" not in done.stdout


def test_tiny_model_coda_command_runs_as_documented(tmp_path: Path) -> None:
    commands = block_after("<!-- docs-test: tiny-coda -->", "bash")
    commands = commands.replace(".venv/bin/python", sys.executable)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    episode, summary = lines[0], lines[-1]
    assert summary == {"episodes": 1, "successes": int(episode["success"])}
    assert episode["task_id"].startswith("kalgebra/") and episode["steps"] >= 1 and episode["error"] is None
    assert len(episode["executed"]) == episode["steps"]
