"""``sciboard vm ...`` and ``sciboard tree ...``: build, list, prune and locate VM images and the desktop tree.

``add_vm_commands(subparsers)`` adds the ``vm`` command to the ``sciboard`` CLI and
``add_tree_commands(subparsers)`` the ``tree`` command; ``python -m vm_images ...`` runs the same
commands on their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vm_images import images_dir
from vm_images.builder import BuildError, build, build_all, built_images, image_for, prune
from vm_images.recipe import RecipeError, apps
from vm_images.tree_builder import build_tree, prune_trees
from vm_images.trees import desktop_tree


def add_vm_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``vm build|list|prune|path`` to an argparse subparsers object; each sets ``func``."""
    vm = subparsers.add_parser("vm", help="build and inspect the VM images of the libvirt provider")
    commands = vm.add_subparsers(dest="vm_command", required=True)
    build_cmd = commands.add_parser("build", help="build (or reuse) the VM image of an app, or of all apps")
    build_cmd.add_argument("app", nargs="?", choices=apps())
    build_cmd.add_argument("--all", action="store_true",
                           help="every app's image (those that need an installer only if it is given)")
    build_cmd.add_argument("--installer", type=Path, help="the installer file you downloaded (ChimeraX, Celestia)")
    build_cmd.add_argument("--installer-for", nargs=2, action="append", default=[], metavar=("APP", "FILE"),
                           help="with --all: the installer of APP (repeatable)")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if an up-to-date image exists")
    build_cmd.set_defaults(func=_reporting(_build))
    list_cmd = commands.add_parser("list", help="list the built images")
    list_cmd.add_argument("--json", action="store_true")
    list_cmd.set_defaults(func=_reporting(_list))
    prune_cmd = commands.add_parser("prune", help="delete the images that are not their app's newest build")
    prune_cmd.set_defaults(func=_reporting(_prune))
    path_cmd = commands.add_parser("path", help="print the image directory of an app (built or not)")
    path_cmd.add_argument("app", choices=apps())
    path_cmd.add_argument("--installer", type=Path)
    path_cmd.set_defaults(func=_reporting(_path))
    return vm


def add_tree_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``tree build|path|prune`` (the local desktop's pinned tree) to an argparse subparsers object."""
    tree = subparsers.add_parser("tree", help="build and inspect the pinned tree the local desktops run in")
    commands = tree.add_subparsers(dest="tree_command", required=True)
    build_cmd = commands.add_parser("build", help="build (or reuse) the desktop tree of the current recipes")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if an up-to-date tree exists")
    build_cmd.set_defaults(func=_reporting(_tree_build))
    path_cmd = commands.add_parser("path", help="print the tree's directory and whether it is built")
    path_cmd.set_defaults(func=_reporting(_tree_path))
    prune_cmd = commands.add_parser("prune", help="delete the trees built from older recipes")
    prune_cmd.set_defaults(func=_reporting(_tree_prune))
    return tree


def _tree_build(args: argparse.Namespace) -> int:
    print(build_tree(force=args.force).path)
    return 0


def _tree_path(args: argparse.Namespace) -> int:
    tree = desktop_tree()
    if not tree.complete():
        print(f"{tree.path} (not built; run: sciboard tree build)")
        return 1
    manifest = tree.manifest
    print(f"{tree.path} (apps: {', '.join(manifest['apps'])}; {manifest['size_mib']} MiB; "
          f"built {manifest['built_at']} in {manifest['build_seconds']:.0f}s)")
    return 0


def _tree_prune(args: argparse.Namespace) -> int:
    for path in prune_trees():
        print(f"deleted {path}")
    return 0


def _reporting(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn a build or recipe error into a message and exit status 2 (no traceback)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (BuildError, RecipeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    return run


def _build(args: argparse.Namespace) -> int:
    if args.all == bool(args.app):
        raise RecipeError("name one app or pass --all")
    if not args.all:
        if args.installer_for:
            raise RecipeError("--installer-for goes with --all; for one app use --installer")
        print(build(args.app, args.installer, force=args.force).path)
        return 0
    if args.installer is not None:
        raise RecipeError("with --all, give installers as --installer-for APP FILE")
    installers = {app: Path(path) for app, path in args.installer_for}
    unknown = sorted(set(installers) - set(apps()))
    if unknown:
        raise RecipeError(f"no recipe for {', '.join(unknown)}; known: {', '.join(apps())}")
    started = time.monotonic()
    for app, result in build_all(installers, force=args.force).items():
        print(f"{app:<11} {result if isinstance(result, str) else result.path}")
    print(f"all images in {time.monotonic() - started:.0f}s")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = []
    for image in built_images():
        manifest = image.manifest
        size = round(image.own_bytes() / (1 << 20), 1)  # an overlay's kernel and initrd are its layer's
        rows.append({"app": image.app, "digest": image.digest, "size_mib": size, "built_at": manifest["built_at"],
                     "build_seconds": manifest["build_seconds"], "path": str(image.path)})
    if args.json:
        print(json.dumps(rows, indent=1))
    elif not rows:
        print(f"no images built yet under {images_dir()}; try: sciboard vm build kalgebra")
    else:
        for row in rows:
            print(f"{row['app']:<11} {row['digest']}  {row['size_mib']:>8.1f} MiB  built {row['built_at']} "
                  f"in {row['build_seconds']:.0f}s  {row['path']}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    for image in prune():
        print(f"deleted {image.path}")
    return 0


def _path(args: argparse.Namespace) -> int:
    print(image_for(args.app, args.installer).path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vm_images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_vm_commands(commands)
    add_tree_commands(commands)
    args = parser.parse_args(argv)
    return args.func(args)
