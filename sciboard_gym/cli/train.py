"""``sciboard train``: training the CODA planner. Each stage is a sub-module with ``register(subparsers)``."""

from __future__ import annotations

import argparse

from sciboard_gym.cli import train_coda, train_stage1, train_stage2

STAGES = (train_stage1, train_stage2, train_coda)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the CODA planner (see docs/training.md)")
    stages = parser.add_subparsers(dest="stage", required=True)
    for stage in STAGES:
        stage.register(stages)
