"""``sciboard compare``: agents side by side on the same tasks (Avg@k, Pass@k, a plot and a viewer)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="run agents on the same tasks k times each; write tables, a plot and a trajectory viewer",
        description="Every (agent, task, repeat) runs once; running the same command again resumes an "
                    "interrupted run. Agents: oracle, random, a shipped spec name (coda-tiny, coda-vllm, ...), "
                    "a TOML spec file, or module:Class; prefix LABEL= to name one.")
    parser.add_argument("--agents", required=True, help="comma-separated agent specs, e.g. oracle,random,coda-tiny")
    parser.add_argument("--apps", help="comma-separated apps (default: every app installed here; with libvirt, every app)")
    parser.add_argument("--k", type=int, default=1, help="runs per agent and task (default 1)")
    parser.add_argument("--split", choices=("train", "test"), help="only tasks of this split")
    parser.add_argument("--tasks", help="glob on task ids, e.g. 'kalgebra/assign-*' or 'answer-*'")
    parser.add_argument("--max-tasks", type=int, help="at most this many tasks per app (first by id)")
    parser.add_argument("--provider", default="local", choices=("local", "libvirt"), help="where desktops run")
    parser.add_argument("--envs", type=int, default=1, help="desktops in parallel (one worker process each)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run the episodes on a Ray cluster's desktops (auto, HOST:6379, ray://HOST:10001; "
                             "'' starts a local Ray); --envs then sets the number of actors")
    parser.add_argument("--max-steps", type=int, help="override the tasks' step limits")
    parser.add_argument("--seed", type=int, default=0, help="seed of repeat 0 (repeat r uses seed + r)")
    parser.add_argument("--retry-errors", action="store_true",
                        help="run again the episodes that ended in an error (agent, desktop or worker failure)")
    parser.add_argument("--no-frames", action="store_true", help="do not save screenshots")
    parser.add_argument("--out", required=True, help="output folder (reuse it to resume)")
    parser.set_defaults(func=cmd_compare)


def _names(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def cmd_compare(args: argparse.Namespace) -> int:
    from baselines.compare import CompareConfig, CompareError, EnvOptions, run_compare
    from baselines.metrics import markdown_table

    config = CompareConfig(
        agents=_names(args.agents) or [], out=Path(args.out), apps=_names(args.apps), k=args.k, split=args.split,
        tasks=args.tasks, max_tasks=args.max_tasks, envs=args.envs, ray=args.ray, seed=args.seed,
        save_frames=not args.no_frames, retry_errors=args.retry_errors,
        env=EnvOptions(provider=args.provider, max_steps=args.max_steps))
    try:
        result = run_compare(config)
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print()
    print(markdown_table(result.scores), end="")
    print()
    for name in ("episodes", "summary_md", "plot", "viewer"):
        print(f"[sciboard] {name.replace('_md', '')}: {result.outputs[name]}")
    return 0
