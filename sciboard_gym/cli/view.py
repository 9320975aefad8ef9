"""``sciboard view``: (re)build the static trajectory viewer of a comparison or run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("view", help="build viewer.html for a `sciboard compare` folder")
    parser.add_argument("folder", help="the --out folder of `sciboard compare`")
    parser.add_argument("--open", action="store_true", help="also open it in the default web browser")
    parser.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from baselines.viewer import build_viewer

    folder = Path(args.folder)
    if not (folder / "episodes").is_dir():
        print(f"error: {folder} holds no episodes/ folder (is it the --out folder of `sciboard compare`?)",
              file=sys.stderr)
        return 2
    path = build_viewer(folder)
    print(f"[sciboard] viewer: {path.resolve()}  (open it in a browser; no server needed)")
    if args.open:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    return 0
