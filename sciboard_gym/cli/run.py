"""``sciboard run``: one episode of an agent on a task, recorded as a trajectory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sciboard_gym.apps import APPS
from sciboard_gym.tasks import TaskError, get_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run one episode and save its trajectory")
    parser.add_argument("--task", required=True, help="task id, e.g. kalgebra/assign-sum")
    parser.add_argument("--agent", default="oracle",
                        help="agent spec: oracle, random, a shipped spec (coda-tiny, ...), a TOML file or module:Class")
    parser.add_argument("--provider", default="local", help="where the desktop runs: local or libvirt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs", help="folder for trajectories (default: ./runs)")
    parser.add_argument("--no-frames", action="store_true", help="do not save PNG frames")
    parser.add_argument("--check", action="store_true", help="exit with status 1 unless the episode succeeds")
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    parser.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from baselines.episodes import safe_name
    from baselines.specs import AgentSpecError, EpisodeContext, resolve
    from sciboard_gym.episode import run_episode
    from sciboard_gym.trajectory import TrajectoryRecorder

    try:
        task = get_task(args.task)
        spec = resolve(args.agent)
    except (TaskError, AgentSpecError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    env_id = APPS[task.app][0]
    out = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{task.id.replace('/', '_')}-{safe_name(spec.name)}"
    print(f"[sciboard] {env_id}: task {task.id} with the {spec.name} agent ({args.provider} desktop)")
    env = gym.make(env_id, task=task.id, provider=args.provider)
    try:
        core: Any = env.unwrapped
        width, height = core.screen_size
        agent = spec.build(EpisodeContext(task, (width, height), args.seed))
        bar = tqdm(total=core.max_steps or task.max_steps, desc="steps", unit="step", leave=False)

        def on_step(index: int, action: str, info: dict) -> None:
            bar.update(1)
            bar.set_postfix_str(action[:40] + (f"  [error: {info['action_error'][:40]}]" if info.get("action_error") else ""))

        recorder = TrajectoryRecorder(out, save_frames=not args.no_frames)
        result = run_episode(env, agent, task=task.id, seed=args.seed, recorder=recorder, on_step=on_step)
        bar.close()
    finally:
        env.close()
    verdict = "SUCCESS" if result.success else "FAILURE"
    print(f"[sciboard] {verdict}: reward {result.reward:.1f} after {result.steps} steps in {result.seconds:.1f} s")
    for check in result.checks:
        print(f"    {'ok  ' if check['passed'] else 'FAIL'} {check['check']}: {check['detail']}")
    if result.error:
        print(f"    error: {result.error}")
    if result.agent_error:
        print(f"    the agent crashed: {result.agent_error}")
    print(f"[sciboard] trajectory saved to {out}/ (episode.json, steps.jsonl, frame_*.png)")
    if args.json:
        print(json.dumps(result.to_dict()))
    return 0 if (result.success or not args.check) else 1
