"""``sciboard list``: apps, their env ids and tasks, and where each app is installed here."""

from __future__ import annotations

import argparse

from sciboard_gym.apps import APPS, get_adapter
from sciboard_gym.tasks import TaskError, load_app_tasks, task_apps


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list apps (env ids) and their tasks")
    parser.add_argument("--app", choices=sorted(APPS), help="only this app, with its tasks")
    parser.add_argument("--tasks", action="store_true", help="also list every task")
    parser.set_defaults(func=cmd_list)


def _where(app: str, in_tree: set[str]) -> str:
    """Where ``app`` can run here: the sandboxed tree, the host's own packages (sandbox=False), or nowhere."""
    from sciboard_guest.apps import AppError

    places = ["in the sandboxed tree"] if app in in_tree else []
    try:
        get_adapter(app).preflight_local()
        places.append("on this host (sandbox=False)")
    except AppError:
        pass
    return ", ".join(places) if places else "not installed here"


def cmd_list(args: argparse.Namespace) -> int:
    from sciboard_gym.providers.local import sandboxed_apps

    in_tree = set(sandboxed_apps())
    apps = [args.app] if args.app else sorted(APPS)
    with_tasks = set(task_apps())
    for app in apps:
        env_id = APPS[app][0]
        try:
            tasks = load_app_tasks(app) if app in with_tasks else ()
            status = _where(app, in_tree)
        except (ImportError, TaskError) as err:
            status, tasks = f"broken: {err}", ()
        print(f"{env_id:28s} {len(tasks):3d} tasks   {status}")
        if args.tasks or args.app:
            for task in tasks:
                print(f"    {task.id:40s} {task.difficulty:6s} {task.max_steps:3d} steps  {task.instruction[:70]}")
    return 0
