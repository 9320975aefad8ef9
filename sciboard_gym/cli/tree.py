"""``sciboard tree ...``: the local desktop tree commands of ``vm_images``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from vm_images.cli import add_tree_commands

    add_tree_commands(subparsers)
