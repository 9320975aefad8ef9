"""``sciboard train coda``: the two-stage CODA recipe end to end, ending in one comparison table."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "coda", help="CODA end to end: Stage 1 per app, Stage 2 on the pooled successes, one table",
        description="Record oracle runs, run Stage 1 for each app of the recipe, pool the successes, run Stage 2, "
                    "then evaluate the base planner, every expert and the final planner on every app's test split "
                    "(Avg@k and Pass@k). Running the same recipe again continues where it stopped.")
    parser.add_argument("--recipe", required=True, help="the TOML recipe (see docs/training.md)")
    parser.add_argument("--out", help="the run's folder (overrides the recipe's out)")
    parser.set_defaults(func=cmd_coda)


def cmd_coda(args: argparse.Namespace) -> int:
    from coda_agent.data import TrajectoryError
    from coda_agent.pipeline import CODAPipeline, Recipe

    try:
        recipe = Recipe.from_toml(args.recipe)
        if args.out:
            recipe.out = args.out
        CODAPipeline(recipe).run()
    except (ValueError, TrajectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[coda] interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    return 0
