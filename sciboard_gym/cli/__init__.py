"""The ``sciboard`` command.

The command line sits above the env core: it may import ``baselines``, ``coda_agent`` and
the ``vm_images`` builder, which the rest of ``sciboard_gym`` never does. Each command lives
in its own module with a ``register(subparsers)`` function that adds its parser and sets
``func`` (a callable taking the parsed arguments and returning an exit status).
"""

from __future__ import annotations

import argparse
import sys

from sciboard_gym.cli import compare, judge_eval, listing, run, train, tree, view, vm

COMMANDS = (listing, run, compare, view, tree, vm, judge_eval, train)


def build_parser() -> argparse.ArgumentParser:
    """The ``sciboard`` argument parser with every command registered."""
    parser = argparse.ArgumentParser(prog="sciboard", description="SciBoard Gym: scientific desktop apps as RL envs.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``sciboard`` with ``argv`` (default: the process arguments); return the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
