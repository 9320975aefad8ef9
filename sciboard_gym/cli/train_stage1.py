"""``sciboard train stage1``: decoupled GRPO of a planner on one app, online, in rounds (resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from typing import Any

HELP = {
    "app": "the app whose training tasks are played (e.g. kalgebra)",
    "planner": "the planner to train: hub id or folder (e.g. Qwen/Qwen2.5-VL-7B-Instruct)",
    "executor": "the frozen executor: hub id, folder or http://host:port/v1#name (vLLM)",
    "out": "the run's folder; starting again with the same folder continues the run",
    "reward": "env (ground truth from the app), match (CODA's action match on labelled states) or judge",
    "group": "G: plans sampled per state",
    "rounds": "collect / train / evaluate rounds",
    "train_episodes": "episodes collected per round on the training split",
    "eval_episodes": "greedy episodes per round on the test split",
    "updates_per_round": "GRPO optimisation steps per round",
    "states_per_update": "states (groups) per optimisation step",
    "episodes": "extra recorded episode folders whose states are trained on every round (repeatable)",
    "lora_rank": "LoRA rank (0: full fine-tuning)",
    "continue_steps": "env reward: steps the current policy continues after the action before scoring",
    "max_steps": "step limit of collected episodes (default: each task's own)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from coda_agent.stage1 import Stage1Config

    parser = subparsers.add_parser("stage1", help="CODA Stage 1: decoupled GRPO of the planner on one app",
                                   description="Collect episodes with the current planner and the frozen executor, "
                                   "train the planner with decoupled GRPO, evaluate on the test split; repeat.")
    parser.add_argument("--config", help="a TOML recipe with the same keys as these flags (flags override it)")
    for item in dataclasses.fields(Stage1Config):
        flag = "--" + item.name.replace("_", "-")
        kind = _base_type(item.type)
        options: dict[str, Any] = {"dest": item.name, "default": None, "help": HELP.get(item.name)}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif kind is list:
            options["action"] = "append"
        elif kind is tuple:
            options.update(nargs=2, type=int, metavar=("W", "H"))
        else:
            options["type"] = kind
        parser.add_argument(flag, **options)
    parser.set_defaults(func=cmd_stage1)


def _base_type(annotation: Any) -> type:
    hints = {"int": int, "float": float, "str": str, "bool": bool}
    text = str(annotation)
    if text.startswith("list"):
        return list
    if text.startswith("tuple"):
        return tuple
    for name, kind in hints.items():
        if text.startswith(name):
            return kind
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return str


def cmd_stage1(args: argparse.Namespace) -> int:
    from coda_agent.stage1 import Stage1Config, Stage1Run

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Stage1Config)}
    try:
        if args.config:
            config = Stage1Config.from_toml(args.config, **values)
        else:
            missing = [name for name in ("app", "planner", "executor") if values[name] is None]
            if missing:
                print(f"error: give --{', --'.join(missing)} (or a --config recipe)", file=sys.stderr)
                return 2
            config = Stage1Config.from_dict({k: v for k, v in values.items() if v is not None}, source="flags")
        Stage1Run(config).run()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[stage1] interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    return 0
