"""The import graph runs one way: the env core never imports the agents, the trainers or the image builder."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the env core (``sciboard_gym`` outside its command line) must never import.
CORE_FORBIDDEN = ("baselines", "coda_agent", "vm_images.builder", "vm_images.cli")
#: The guest runs alone on the desktop (Debian's Python, no project dependencies).
GUEST_FORBIDDEN = ("sciboard_gym", "baselines", "coda_agent", "vm_images", "gymnasium")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def violations(files: list[Path], forbidden: tuple[str, ...], root: Path = ROOT) -> list[str]:
    found = []
    for path in files:
        for name in sorted(imported_modules(path)):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def core_files() -> list[Path]:
    return [p for p in (ROOT / "sciboard_gym").rglob("*.py") if "cli" not in p.relative_to(ROOT).parts[1:2]]


def test_core_imports_no_agents_trainers_or_builder() -> None:
    assert core_files(), "no core files found"
    assert violations(core_files(), CORE_FORBIDDEN) == []


def test_guest_imports_nothing_from_the_host_side() -> None:
    assert violations(sorted((ROOT / "sciboard_guest").rglob("*.py")), GUEST_FORBIDDEN) == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import vm_images\n\ndef f():\n    from baselines.oracle import OracleAgent\n"
                   "    from vm_images import builder\n")
    found = violations([bad], CORE_FORBIDDEN, root=tmp_path)
    assert found == ["bad.py imports baselines.oracle", "bad.py imports baselines.oracle.OracleAgent",
                     "bad.py imports vm_images.builder"]


@pytest.mark.parametrize("module", ["sciboard_gym", "sciboard_gym.env", "sciboard_gym.providers.libvirt",
                                    "sciboard_gym.episode", "sciboard_gym.wrappers"])
def test_importing_the_core_loads_none_of_them(module: str) -> None:
    code = (f"import sys, {module}\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in ('baselines', 'coda_agent')"
            f" or m in ('vm_images.builder', 'vm_images.cli'))\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_host_checks_import_no_guest_app_module() -> None:
    """Checks read state through probes; they never reach into a guest app module's internals."""
    host_apps = sorted((ROOT / "sciboard_gym" / "apps").glob("*.py"))
    guest_app_modules = tuple(f"sciboard_guest.apps.{p.stem}" for p in (ROOT / "sciboard_guest" / "apps").glob("*.py")
                              if p.stem != "__init__")
    assert violations(host_apps, guest_app_modules) == []
