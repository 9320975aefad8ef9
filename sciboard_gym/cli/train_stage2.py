"""``sciboard train stage2``: SFT of one planner on the pooled successful episodes of several runs (resumable)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: Flags of Stage2Config fields (the pool's filters are flags of their own below).
FLAGS: dict[str, tuple[type, str]] = {
    "out": (str, "the run's folder; starting again with the same folder continues the run"),
    "epochs": (float, "passes over the pooled steps"),
    "max_steps": (int, "optimisation steps (overrides --epochs when positive)"),
    "learning_rate": (float, "peak learning rate"),
    "batch_size": (int, "steps per device batch"),
    "gradient_accumulation_steps": (int, "batches per optimisation step"),
    "lora_rank": (int, "LoRA rank (0: full fine-tuning)"),
    "save_steps": (int, "checkpoint every N optimisation steps"),
    "eval_steps": (int, "held-out evaluation every N steps (default: before and after training only)"),
    "eval_fraction": (float, "share of each app's tasks held out for the evaluation loss"),
    "dtype": (str, "auto, bfloat16, float16 or float32"),
    "device": (str, "cpu, cuda, cuda:N or auto"),
    "planner_max_pixels": (int, "screenshot size cap of the planner's prompt (as at inference)"),
    "history_steps": (int, "history lines in the planner's prompt (as at inference)"),
    "seed": (int, "random seed"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stage2", help="CODA Stage 2: SFT of one planner on the pooled successes of several runs",
        description="Pool the successful episodes under the --from folders (Stage 1 runs, oracle runs, "
                    "comparisons), export them as a Hugging Face dataset (OUT/pool), fine-tune the planner on "
                    "exactly its own prompts (loss on its replies only) and save it to OUT/planner.")
    parser.add_argument("--config", help="a TOML file with the same keys (a [pool] table for the filters)")
    parser.add_argument("--from", dest="runs", action="append", metavar="RUN_DIR",
                        help="folder of recorded episodes to pool (repeatable)")
    parser.add_argument("--planner", help="the planner to fine-tune: hub id or folder")
    for name, (kind, text) in FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, help=text)
    parser.add_argument("--app", dest="apps", action="append", help="pool only this app (repeatable)")
    parser.add_argument("--include-failures", action="store_true", help="pool failed episodes too")
    parser.add_argument("--judge", help="judge model for episodes the env did not evaluate")
    parser.add_argument("--judge-all", action="store_true", help="also require the judge's approval for every episode")
    parser.add_argument("--max-episode-steps", type=int, help="drop episodes longer than this")
    parser.add_argument("--keep-duplicates", action="store_true", help="keep episodes repeating another's actions")
    parser.set_defaults(func=cmd_stage2)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~coda_agent.sft.Stage2Config` of the parsed flags (over the --config file, if any)."""
    from coda_agent.sft import Stage2Config

    values: dict[str, Any] = {name: getattr(args, name) for name in FLAGS}
    values.update(planner=args.planner, runs=args.runs)
    pool = {"apps": args.apps, "judge": args.judge, "max_episode_steps": args.max_episode_steps,
            "only_success": False if args.include_failures else None, "judge_all": args.judge_all or None,
            "dedupe": False if args.keep_duplicates else None}
    pool = {k: v for k, v in pool.items() if v is not None}
    if args.config:
        import tomllib
        from pathlib import Path

        try:
            base = tomllib.loads(Path(args.config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"{args.config}: cannot read: {err}") from None
        pool = {**base.pop("pool", {}), **pool}
        values = {**base, **{k: v for k, v in values.items() if v is not None}}
    values = {k: v for k, v in values.items() if v is not None}
    missing = [flag for flag, key in (("--planner", "planner"), ("--from", "runs")) if not values.get(key)]
    if missing:
        raise ValueError(f"give {' and '.join(missing)}")
    return Stage2Config.from_dict({**values, "pool": pool}, source=args.config or "flags")


def cmd_stage2(args: argparse.Namespace) -> int:
    from coda_agent.data import TrajectoryError
    from coda_agent.sft import Stage2Run

    try:
        result = Stage2Run(config_from_args(args)).run()
    except (ValueError, TrajectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[stage2] interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    print(f"[stage2] planner saved to {result.planner}; pooled dataset in {result.pool}")
    return 0
