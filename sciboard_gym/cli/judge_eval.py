"""``sciboard judge-eval``: a VLM judge's precision and recall against the env's ground truth."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "judge-eval", help="measure a judge's precision and recall on recorded episodes",
        description="Judge every step of the recorded episodes under RUN_DIR, predict each episode's success "
                    "(every step judged correct and the task ended with done()/answer()) and compare with the "
                    "env's evaluator. Positive = success.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders holding recorded episode folders")
    parser.add_argument("--judge", required=True, help="judge model: a path / hub id, or http://host:port/v1#model")
    parser.add_argument("--samples", type=int, default=3, help="verdicts sampled per step (default 3)")
    parser.add_argument("--voting", choices=("majority", "unanimous"), default="majority")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--max-pixels", type=int, default=None, help="cap on screenshot pixels shown to the judge")
    parser.add_argument("--app", action="append", help="only episodes of this app (repeatable)")
    parser.add_argument("--dtype", default="auto", help="local models: auto, bfloat16, float16, float32")
    parser.add_argument("--device", default="cpu", help="local models: cpu, cuda, cuda:N or auto")
    parser.add_argument("--json", action="store_true", help="also print the scores as JSON")
    parser.set_defaults(func=cmd_judge_eval)


def cmd_judge_eval(args: argparse.Namespace) -> int:
    from coda_agent.backends import make_backend
    from coda_agent.data import TrajectoryError, find_episodes, load_episode
    from coda_agent.images import DEFAULT_MAX_PIXELS
    from coda_agent.judge import Judge, JudgeScores

    try:
        episodes = [load_episode(folder) for folder in find_episodes(args.runs)]
    except TrajectoryError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    episodes = [e for e in episodes if not args.app or e.app in args.app]
    if not episodes:
        print("error: no finished episodes found", file=sys.stderr)
        return 2
    options = {} if args.judge.startswith(("http://", "https://")) else {"dtype": args.dtype, "device": args.device}
    judge = Judge(make_backend(args.judge, **options), samples=args.samples, voting=args.voting,
                  temperature=args.temperature, max_new_tokens=args.max_new_tokens,
                  max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
    print(f"[judge-eval] {len(episodes)} episodes, judge {args.judge}, {args.samples} samples, {args.voting} voting")
    predicted, truth = [], []
    for episode in episodes:
        verdict = judge.judge_episode(episode)
        predicted.append(verdict.success)
        truth.append(episode.success)
        wrong = "-" if verdict.first_wrong_step is None else verdict.first_wrong_step
        print(f"    {episode.task_id:40s} env {'success' if episode.success else 'failure':7s} "
              f"judge {'success' if verdict.success else 'failure':7s} first wrong step {wrong}")
    scores = JudgeScores.of(predicted, truth)
    print(f"[judge-eval] {scores.summary()} over {len(episodes)} episodes")
    if args.json:
        print(json.dumps({"precision": scores.precision, "recall": scores.recall, "episodes": len(episodes),
                          "true_positives": scores.true_positives, "false_positives": scores.false_positives,
                          "false_negatives": scores.false_negatives, "true_negatives": scores.true_negatives}))
    return 0
