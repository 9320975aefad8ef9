"""The ``sciboard`` command: list apps and tasks, run episodes, build VM images."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from sciboard_gym.apps import APPS, get_adapter
from sciboard_gym.tasks import TaskError, get_task, load_app_tasks, task_apps


def cmd_list(args: argparse.Namespace) -> int:
    from sciboard_guest.apps import AppError

    apps = [args.app] if args.app else sorted(APPS)
    with_tasks = set(task_apps())
    for app in apps:
        env_id = APPS[app][0]
        try:
            tasks = load_app_tasks(app) if app in with_tasks else ()
            get_adapter(app).preflight_local()
            status = "installed"
        except AppError:
            status = "not installed here"
        except (ImportError, TaskError) as err:
            status, tasks = f"broken: {err}", ()
        print(f"{env_id:28s} {len(tasks):3d} tasks   {status}")
        if args.tasks or args.app:
            for task in tasks:
                print(f"    {task.id:40s} {task.difficulty:6s} {task.max_steps:3d} steps  {task.instruction[:70]}")
    return 0


def _make_agent(name: str, task, env, seed: int | None):
    if name == "oracle":
        from baselines.oracle import OracleAgent

        return OracleAgent(task)
    if name == "random":
        from baselines.random_agent import RandomAgent

        return RandomAgent(env.unwrapped.screen_size, seed=seed)
    raise SystemExit(f"unknown agent {name!r}; choose oracle or random")


def cmd_run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from sciboard_gym.episode import run_episode
    from sciboard_gym.trajectory import TrajectoryRecorder

    try:
        task = get_task(args.task)
    except TaskError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    env_id = APPS[task.app][0]
    out = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{task.id.replace('/', '_')}-{args.agent}"
    print(f"[sciboard] {env_id}: task {task.id} with the {args.agent} agent ({args.provider} desktop)")
    env = gym.make(env_id, task=task.id, provider=args.provider)
    try:
        agent = _make_agent(args.agent, task, env, args.seed)
        bar = tqdm(total=env.unwrapped.max_steps or task.max_steps, desc="steps", unit="step", leave=False)

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
    print(f"[sciboard] trajectory saved to {out}/ (episode.json, steps.jsonl, frame_*.png)")
    if args.json:
        print(json.dumps(result.to_dict()))
    return 0 if (result.success or not args.check) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciboard", description="SciBoard Gym: scientific desktop apps as RL envs.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list apps (env ids) and their tasks")
    p_list.add_argument("--app", choices=sorted(APPS), help="only this app, with its tasks")
    p_list.add_argument("--tasks", action="store_true", help="also list every task")
    p_list.set_defaults(func=cmd_list)

    p_run = sub.add_parser("run", help="run one episode and save its trajectory")
    p_run.add_argument("--task", required=True, help="task id, e.g. kalgebra/assign-sum")
    p_run.add_argument("--agent", default="oracle", help="oracle or random")
    p_run.add_argument("--provider", default="local", help="where the desktop runs: local or libvirt")
    p_run.add_argument("--seed", type=int, default=0)
    p_run.add_argument("--out", default="runs", help="folder for trajectories (default: ./runs)")
    p_run.add_argument("--no-frames", action="store_true", help="do not save PNG frames")
    p_run.add_argument("--check", action="store_true", help="exit with status 1 unless the episode succeeds")
    p_run.add_argument("--json", action="store_true", help="also print the result as JSON")
    p_run.set_defaults(func=cmd_run)

    from vm_images.cli import add_vm_commands
    add_vm_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
