"""The pinned desktop tree: recipes, digest and the built tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vm_images.recipe import load
from vm_images.trees import SANDBOX_UID, SANDBOX_USER, desktop_tree, tree_apps, tree_digest

ROOT = Path(__file__).resolve().parents[1]


def test_tree_holds_every_app_built_from_debian_packages_only():
    assert tree_apps() == ["grass", "kalgebra", "pymol", "stellarium", "texstudio"]


def test_tree_packages_are_the_vm_recipe_without_kernel_and_boot_services():
    recipe = load("kalgebra")
    assert "kalgebra" in recipe.desktop_packages and "xvfb" in recipe.desktop_packages
    assert recipe.kernel in recipe.packages and recipe.kernel not in recipe.desktop_packages
    assert "systemd-sysv" in recipe.packages and "systemd-sysv" not in recipe.desktop_packages
    assert set(recipe.desktop_packages) < set(recipe.packages)


def test_digest_is_stable_and_names_the_tree():
    assert tree_digest() == tree_digest() and len(tree_digest()) == 16
    assert desktop_tree().path.name == tree_digest()


def test_built_tree_has_the_apps_the_sandbox_user_and_a_manifest():
    tree = desktop_tree()
    assert tree.complete(), "scripts/install.sh builds the tree (sciboard tree build)"
    manifest = tree.manifest
    assert manifest["apps"] == tree_apps() and manifest["suite"] == "bookworm"
    for package in ("kalgebra", "grass-gui", "pymol", "stellarium", "texstudio", "xvfb", "openbox", "python3-pyatspi"):
        assert package in manifest["packages"], package
    assert f"{SANDBOX_USER}:x:{SANDBOX_UID}:" in (tree.root / "etc" / "passwd").read_text()
    assert (tree.root / "usr" / "bin" / "Xvfb").exists() and (tree.root / "usr" / "bin" / "kalgebra").exists()


def test_tree_cli_reports_the_built_tree():
    out = subprocess.run([sys.executable, "-m", "sciboard_gym.cli", "tree", "path"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert str(desktop_tree().path) in out.stdout and "kalgebra" in out.stdout
