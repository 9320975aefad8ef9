"""``sciboard list``: apps, their env ids and tasks, and whether each app is installed here."""

from __future__ import annotations

import argparse

from sciboard_gym.apps import APPS, get_adapter
from sciboard_gym.tasks import TaskError, load_app_tasks, task_apps


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list apps (env ids) and their tasks")
    parser.add_argument("--app", choices=sorted(APPS), help="only this app, with its tasks")
    parser.add_argument("--tasks", action="store_true", help="also list every task")
    parser.set_defaults(func=cmd_list)


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
