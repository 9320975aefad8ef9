"""What in-place resets share: the app's HOME and its windows as they were just after launch.

The guest records both once the app is ready (:func:`record_launch_state`); an app's restore step
puts HOME back (:func:`restore_home`) and checks that the app shows the same windows with the same
geometry and focus (:func:`check_windows`), raising AppError so that the guest relaunches instead.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from sciboard_guest.apps import AppContext, AppError, visible_windows, x_connection, xdotool, xdotool_numbers

#: Files larger than this are remembered by size and modification time only (a changed one cannot be restored).
MAX_KEPT_BYTES = 4 << 20
#: ctx.state keys of the records.
HOME_KEY, WINDOWS_KEY = "launch_home", "launch_windows"


def snapshot_home(home: Path) -> dict[str, Any]:
    """Every path below ``home``: directories as None, files as their bytes (or (size, mtime) when large)."""
    found: dict[str, Any] = {}
    for path in sorted(home.rglob("*")):
        rel = str(path.relative_to(home))
        if path.is_symlink():
            found[rel] = ("link", str(path.readlink()))
        elif path.is_dir():
            found[rel] = None
        elif path.is_file():
            stat = path.stat()
            found[rel] = path.read_bytes() if stat.st_size <= MAX_KEPT_BYTES else (stat.st_size, stat.st_mtime_ns)
    return found


def restore_home(ctx: AppContext) -> None:
    """Put HOME back as it was after launch: remove what was added, rewrite what changed."""
    wanted = ctx.state.get(HOME_KEY)
    if wanted is None:
        raise AppError("no record of HOME at launch")
    live = snapshot_home(ctx.home)
    for rel in sorted(set(live) - set(wanted), reverse=True):  # children before their folders
        path = ctx.home / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    for rel, content in sorted(wanted.items()):
        path = ctx.home / rel
        if live.get(rel, ...) == content:
            continue
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, bytes):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            raise AppError(f"cannot restore {rel} in HOME (a large file or a link that changed)")
    if snapshot_home(ctx.home) != wanted:
        raise AppError("HOME differs from its state at launch after restoring it")


def windows(ctx: AppContext, window_class: str) -> dict[str, tuple[int, int, int, int]]:
    """The app's visible windows: {window id: (x, y, width, height)}."""
    found = {}
    for wid in visible_windows(ctx, window_class):
        box = xdotool_numbers(ctx, ["getwindowgeometry", "--shell", wid], "X", "Y", "WIDTH", "HEIGHT")
        if box is not None:  # else the window went away meanwhile
            found[wid] = (box[0], box[1], box[2], box[3])
    return found


def active_window(ctx: AppContext) -> str:
    return xdotool(ctx, ["getactivewindow"]).strip()


def launch_focus(ctx: AppContext) -> str:
    """The id of the window that had the focus at launch (the app's main window)."""
    return ctx.state[WINDOWS_KEY][1]


def record_launch_state(ctx: AppContext, window_class: str) -> None:
    """Remember HOME, the visible windows and the focused window of the just-launched app."""
    ctx.state[HOME_KEY] = snapshot_home(ctx.home)
    ctx.state[WINDOWS_KEY] = (windows(ctx, window_class), active_window(ctx))


def check_windows(ctx: AppContext, window_class: str, timeout: float = 2.0) -> None:
    """Raise AppError unless the app shows exactly its launch windows (same ids and geometry) and the
    same window has the focus; waits up to ``timeout`` for windows being closed to go."""
    wanted, focused = ctx.state[WINDOWS_KEY]
    deadline = time.monotonic() + timeout
    while True:
        live, active = windows(ctx, window_class), active_window(ctx)
        if live == wanted and active == focused:
            return
        if time.monotonic() > deadline:
            raise AppError(f"the app's windows differ from launch: {live} (focus {active}) != {wanted} "
                           f"(focus {focused})")
        time.sleep(0.05)



def clear_selections(ctx: AppContext) -> None:
    """Empty the clipboard and the primary selection (a fresh desktop has neither): text an episode copied
    cannot be pasted in the next one. Raises AppError if the app keeps one."""
    from Xlib import X
    from Xlib.protocol import request

    with x_connection(ctx.env) as conn:
        atoms = [conn.intern_atom(name) for name in ("CLIPBOARD", "PRIMARY")]
        for atom in atoms:
            request.SetSelectionOwner(display=conn.display, window=X.NONE, selection=atom, time=X.CurrentTime)
        conn.sync()
        if any(conn.get_selection_owner(atom) != X.NONE for atom in atoms):
            raise AppError("the clipboard could not be emptied")
