"""``sciboard vm ...``: the VM image commands of ``vm_images``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from vm_images.cli import add_vm_commands

    add_vm_commands(subparsers)
