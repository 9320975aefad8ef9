"""TeXstudio on the desktop: launch, readiness, opening a project, and state probes.

TeXstudio's state is its document on disk: a setup step writes a named project
(:mod:`sciboard_guest.apps.texstudio_documents`) into ``~/paper`` of the fresh
HOME and has the running TeXstudio open it, as a second ``texstudio`` started
with a file does: that process hands the file to the first instance through
TeXstudio's single-instance socket and exits. The socket lives in the desktop's
own TMPDIR, so parallel desktops never hand documents to each other's instance.
Probes read the saved file and compile a temporary copy with a real ``pdflatex``
(and ``bibtex`` when the document asks for it), without shell escape and with a
timeout.

A reset happens in place: every document is closed without saving, dialogs and
menus are closed, HOME is put back, and the screen must then match the one read
at launch pixel for pixel; otherwise TeXstudio is relaunched.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sciboard_guest.apps import (
    AppContext,
    AppError,
    BadArgument,
    GuestApp,
    inplace,
    slowness,
    stretched,
    visible_windows,
    x_connection,
    xdotool,
    xdotool_numbers,
)
from sciboard_guest.apps.texstudio_documents import PROJECTS
from sciboard_guest.desktop import CLEAN_PATH

PAPER_DIR = "paper"
MAX_TEXT = 1 << 20
MAX_FILES = 50
RUN_TIMEOUT = 20.0

#: TeXstudio settings for a quiet, predictable editor: no session restore, no
#: LanguageTool (Java) start, no update check, no auto-completion or auto-closed
#: brackets (typed LaTeX lands verbatim), Qt's own file dialog, silent reloads.
_SETTINGS = {
    "Files\\RestoreSession": "false",
    "Files\\Use%20Native%20File%20Dialog": "false",
    "Editor\\SilentReload": "true",
    "Editor\\Completion": "false",
    "Editor\\Parentheses%20Completion": "false",
    "Editor\\Check%20Grammar": "false",
    "Editor\\Real-Time%20Spellchecking": "false",
    "Grammar\\Language%20Tool%20Autorun": "false",
    "Update\\AutoCheck": "false",
    "Preview\\Auto%20Preview": "0",
}


def _prepare(home: Path) -> None:
    """Write TeXstudio's settings and the empty project folder into a fresh HOME."""
    config = home / ".config" / "texstudio"
    config.mkdir(parents=True)
    lines = ["[General]", "IniMode=true", "", "[texmaker]"] + [f"{k}={v}" for k, v in _SETTINGS.items()]
    (config / "texstudio.ini").write_text("\n".join(lines) + "\n")
    (home / PAPER_DIR).mkdir()


APP = GuestApp(
    name="texstudio",
    argv=["texstudio", "--no-session"],
    env={"LIBGL_ALWAYS_SOFTWARE": "1", "QT_ACCESSIBILITY": "1", "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"},
    install_hint="Install it with: apt-get install --no-install-recommends texstudio texlive-latex-base "
                 "(scripts/install.sh does this).",
    ready_timeout=60.0,
    prepare=_prepare,
    restore_checks_launch_state=True,
    redraws_unchanged=True,  # its editor repaints whole (1573x660 px) at each caret blink
    # Measured (docs/env-reference.md, "Settle and input"): its drawing ends a median 12 ms after a key.
    settle_quiet=0.1,
)
#: The caret's blink period. Each blink repaints the whole editor (1573x660 px on a 1920x1080 screen); a
#: repaint at least EDITOR_REPAINT large is the editor's, not one line's.
CARET_BLINK = 0.5
EDITOR_REPAINT = (400, 200)
#: The main window's title while no document is open.
MAIN_TITLE = "TeXstudio"
#: TeXstudio's settings in HOME.
SETTINGS_FILE = ".config/texstudio/texstudio.ini"
#: Settings that opening a document through File > Open writes (the last document, the dialog's file filter):
#: they change in every episode and do not alter how TeXstudio behaves.
VOLATILE_SETTINGS = frozenset({"texmaker/Files\\Last%20Document", "texmaker/Files\\Default%20File%20Filter"})
#: Settings TeXstudio first writes once a document has been open (its search panel's), with their start values.
FIRST_DOCUMENT_SETTINGS = {
    f"texmaker/Search\\{key}": value for key, value in (
        ("Ask%20before%20Replace", "false"), ("Case%20Sensitive", "false"), ("Cursor", "true"),
        ("Escape%20Sequence", "false"), ("Find%20History", "@Invalid()"), ("Highlight", "true"),
        ("Regular%20Expression", "false"), ("Replace%20History", "@Invalid()"), ("Selection", "false"),
        ("Whole%20Words", "false"))
}
#: The button of TeXstudio's "save before closing?" question that drops the changes.
DISCARD_BUTTON = "Close without Saving"


def _windows(ctx: AppContext) -> dict[str, str]:
    """Visible TeXstudio windows: {window id: title} ("" for a window whose title cannot be read)."""
    return {wid: _title(ctx, wid) for wid in visible_windows(ctx, "texstudio")}


def _active_title(ctx: AppContext) -> str:
    """The title of the window that has the keyboard focus ('' if none)."""
    return xdotool(ctx, ["getactivewindow", "getwindowname"]).strip()


def _wait_for_focus(ctx: AppContext, title: str, timeout: float) -> bool:
    """Wait until the focused window's title ends with ``title`` (keys typed now reach it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _active_title(ctx).endswith(title):
            return True
        time.sleep(0.05)
    return False


def _focused_main_window(ctx: AppContext) -> int | None:
    """The id of TeXstudio's main window if it is visible and has the focus."""
    wid = xdotool(ctx, ["getactivewindow"]).strip()
    title = _windows(ctx).get(wid, "") if wid else ""
    return int(wid) if title.endswith("TeXstudio") else None


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    # TeXstudio can map and drop a short-lived window at start-up: wait until the main window
    # holds the focus and answers pings.
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        window_id = _focused_main_window(ctx)
        if window_id is not None:
            try:
                wait_idle(ctx, timeout=5.0, window_id=window_id)
            except AppError:
                pass
            else:
                _record_launch_state(ctx, window_id)
                return
        time.sleep(0.05)
    raise AppError("TeXstudio's main window did not get the focus in time")


def _record_launch_state(ctx: AppContext, main: int) -> None:
    """Write the settings and remember the pointer position, the status bar and a digest of the settled screen
    above it, for the in-place reset's checks. If that fails, the launch stands and resets relaunch."""
    try:
        _save_settings(ctx, main)
        _record_launch_screen(ctx)
    except AppError as err:
        print(f"[texstudio] resets will relaunch: {err}", file=sys.stderr, flush=True)


def _record_launch_screen(ctx: AppContext) -> None:
    ctx.settle(quiet=0.2, timeout=3.0)
    ctx.state["launch_pointer"] = _pointer(ctx)
    top, items = _status_bar(ctx)
    ctx.state["launch_status"] = (top, items)
    ctx.state["launch_screen"] = _screen_digest(ctx, top)


def _pointer(ctx: AppContext) -> tuple[int, int]:
    position = xdotool_numbers(ctx, ["getmouselocation", "--shell"], "X", "Y")
    if position is None:
        raise AppError("the pointer position cannot be read")
    return position[0], position[1]


def _screen_digest(ctx: AppContext, rows: int) -> str:
    """A digest of the screen's top ``rows`` rows."""
    return hashlib.sha256(ctx.screen.rgb()[:rows].tobytes()).hexdigest()


def _status_bar(ctx: AppContext) -> tuple[int, list[tuple[str, str]]]:
    """The main window's status bar: its top row on screen and its items as (role, name)."""
    for child in _main_frame_children(ctx):
        if child.role == "status bar" and child.box is not None:
            return child.box[1], [(item.role, item.name.strip()) for item in child.children]
    raise AppError("TeXstudio's status bar is not on the accessibility bus")


def status_differences(launch: list[tuple[str, str]], live: list[tuple[str, str]]) -> list[str]:
    """The status bar items that differ from launch, except the encoding button: it keeps showing the last
    closed document's encoding where a fresh TeXstudio shows "Encoding" (opening a document sets it)."""
    if len(launch) != len(live):
        return [f"{len(live)} items instead of {len(launch)}"]
    return [f"{was} -> {now}" for was, now in zip(launch, live, strict=True)
            if was != now and was != ("push button", "Encoding")]


@APP.restore
def _restore(ctx: AppContext) -> None:
    """Put the running TeXstudio back into its just-launched state: close menus, dialogs and every document
    (dropping unsaved changes), put HOME back, and check the windows and the whole screen against launch.
    Changed settings, or anything that still looks different, raise AppError (a relaunch follows)."""
    if "launch_screen" not in ctx.state:
        raise AppError("TeXstudio's state at launch was not recorded")
    main = inplace.launch_focus(ctx)
    _close_documents(ctx, main)
    if _recent_files(ctx):
        _menu_command(ctx, main, "alt+f", "r", *["Up"] * 4)  # File > Open Recent > Clear file list (4th from the end)
        if _recent_files(ctx):
            raise AppError("TeXstudio's list of recent files could not be cleared")
    _save_settings(ctx, int(main))
    changed = changed_settings(ctx.state[inplace.HOME_KEY].get(SETTINGS_FILE) or b"",
                                (ctx.home / SETTINGS_FILE).read_bytes())
    if changed:
        raise AppError(f"TeXstudio's settings changed: {changed[:5]}")
    inplace.restore_home(ctx)
    inplace.clear_selections(ctx)
    x, y = ctx.state["launch_pointer"]
    ctx.perform({"name": "move", "x": x, "y": y})
    inplace.check_windows(ctx, "texstudio")
    ctx.settle(quiet=0.2, timeout=3.0)
    top, items = ctx.state["launch_status"]
    live_top, live_items = _status_bar(ctx)
    changed = status_differences(items, live_items) if live_top == top else [f"status bar at row {live_top}"]
    if changed:
        raise AppError(f"TeXstudio's status bar differs from launch: {changed}")
    if _screen_digest(ctx, top) != ctx.state["launch_screen"]:
        raise AppError("TeXstudio does not look as at launch after closing its documents")


def _close_documents(ctx: AppContext, main: str, timeout: float = 10.0) -> None:
    """Close open menus and dialogs (answering "save?" with :data:`DISCARD_BUTTON`) and every document, until
    the main window has the focus and no document is open."""
    deadline = time.monotonic() + timeout
    ctx.key("Escape")  # an open menu holds the keyboard
    while True:
        active, title = inplace.active_window(ctx), _title(ctx, main)
        if active == main and title == MAIN_TITLE:
            return
        if time.monotonic() > deadline:
            raise AppError(f"TeXstudio's documents and dialogs could not be closed (title {title!r})")
        if active != main:
            button = _dialog_button(ctx, DISCARD_BUTTON)
            if button is not None and button.box is not None:
                bx, by, width, height = button.box
                ctx.click(bx + width // 2, by + height // 2)
            else:
                ctx.key("Escape")
        else:
            ctx.key("ctrl+w")
        wait_idle(ctx, timeout=5.0, window_id=int(main))
        _wait_for_change(ctx, main, (active, title))


def _menu_command(ctx: AppContext, main: str | int, *keys: str) -> None:
    """Press ``keys`` (a menu path) and wait until TeXstudio has handled them."""
    for key in keys:
        ctx.key(key)
    ctx.key("Return")
    wait_idle(ctx, timeout=5.0, window_id=int(main))


def _save_settings(ctx: AppContext, main: int) -> None:
    """Options > Save Current Settings (4th entry): TeXstudio writes the settings it holds in memory."""
    path = ctx.home / SETTINGS_FILE
    before = path.stat().st_mtime_ns if path.is_file() else None
    _menu_command(ctx, main, "alt+o", *["Down"] * 3)
    deadline = time.monotonic() + 3.0 * slowness()
    while (path.stat().st_mtime_ns if path.is_file() else None) == before:
        if time.monotonic() > deadline:
            raise AppError("TeXstudio did not write its settings (Options > Save Current Settings)")
        time.sleep(0.02)


def changed_settings(before: bytes, after: bytes) -> list[str]:
    """The settings (``section/key``) whose values differ, except :data:`VOLATILE_SETTINGS`; a setting
    of :data:`FIRST_DOCUMENT_SETTINGS` that ``before`` lacks must have its start value."""
    old, new = _settings(before), _settings(after)
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key) and key not in VOLATILE_SETTINGS
                  and not (key not in old and new[key] == FIRST_DOCUMENT_SETTINGS.get(key)))


def _settings(text: bytes) -> dict[str, str]:
    """An ini file as {section/key: value}."""
    found, section = {}, ""
    for line in text.decode(errors="replace").splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, value = line.split("=", 1)
            found[f"{section}/{key}"] = value
    return found


def _recent_files(ctx: AppContext) -> list[str]:
    """The entries of File > Open Recent that name a file (read from the menu through AT-SPI, closed or not)."""
    for bar in _main_frame_children(ctx):
        if bar.role == "menu bar":
            return [entry.name for entry in _menu(bar, "File", "Open Recent") if entry.name[:1].isdigit()]
    raise AppError("TeXstudio's menu bar is not on the accessibility bus")


def _menu(parent: Any, *path: str) -> list[Any]:
    """The entries of the (sub)menu reached through the menu items named ``path``."""
    for name in path:
        item = next((child for child in parent.children if child.role == "menu item" and child.name == name), None)
        popup = next((child for child in item.children if child.role == "popup menu"), None) if item else None
        if popup is None:
            raise AppError(f"TeXstudio's menu entry {name!r} is not reachable")
        parent = popup
    return parent.children


def _title(ctx: AppContext, window: str) -> str:
    return xdotool(ctx, ["getwindowname", window]).strip()


def _wait_for_change(ctx: AppContext, main: str, before: tuple[str, str], timeout: float = 1.0) -> None:
    """Wait (bounded) until the focused window or the main window's title is no longer ``before``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (inplace.active_window(ctx), _title(ctx, main)) == before:
        time.sleep(0.02)


def _main_frame_children(ctx: AppContext) -> list[Any]:
    """The children of the main window's accessible frame (none when it is not on the accessibility bus)."""
    app = ctx.a11y.app("TeXstudio", ctx.app_pid)
    for window in app.children if app is not None else []:
        if window.role == "frame" and window.name.endswith(MAIN_TITLE):
            return list(window.children)
    return []


def _dialog_button(ctx: AppContext, name: str) -> Any:
    """The push button ``name`` in one of TeXstudio's open dialogs (None when there is none)."""
    app = ctx.a11y.app("TeXstudio", ctx.app_pid)
    for window in app.children if app is not None else []:
        if window.role == "frame" and window.name.endswith(MAIN_TITLE):
            continue  # the main window
        for button in window.find(role="push button", name=name):
            return button
    return None


def _main_window(ctx: AppContext, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        for wid, title in _windows(ctx).items():
            if title.endswith("TeXstudio"):
                return int(wid)
        if time.monotonic() > deadline:
            raise AppError("TeXstudio's main window is not there")
        time.sleep(0.1)


def wait_idle(ctx: AppContext, timeout: float = 30.0, window_id: int | None = None) -> None:
    """Return once TeXstudio has handled every input event sent so far (e.g. a ctrl+s save).

    A busy app can lag the screen-settle heuristic by seconds. X delivers events to a
    client in order, and Qt answers a _NET_WM_PING as it reads it; the key events read
    in that same pass reach the widgets at the end of the pass. So the answer to a
    second ping, sent after the first was answered, proves the earlier keys were handled.
    """
    from Xlib import X, protocol
    from Xlib.error import XError

    window_id = _main_window(ctx) if window_id is None else window_id
    with x_connection(ctx.env) as conn:
        deadline = time.monotonic() + timeout
        try:
            root = conn.screen().root
            root.change_attributes(event_mask=X.StructureNotifyMask)  # Qt answers with this mask
            protocols, ping = conn.intern_atom("WM_PROTOCOLS"), conn.intern_atom("_NET_WM_PING")
            window = conn.create_resource_object("window", window_id)
            for round_ in range(2):
                stamp = (int(time.monotonic() * 1000) + round_) & 0x7FFFFFFF
                window.send_event(protocol.event.ClientMessage(window=window, client_type=protocols,
                                                               data=(32, [ping, stamp, window_id, 0, 0])),
                                  event_mask=X.NoEventMask)
                conn.flush()
                if not _await_pong(conn, protocols, ping, stamp, deadline):
                    raise AppError(f"TeXstudio did not answer within {timeout:g} s (busy or hung)")
        except XError as err:  # e.g. the window went away
            raise AppError(f"TeXstudio's window {window_id} cannot be pinged: {err}") from err


def _await_pong(conn: Any, protocols: int, ping: int, stamp: int, deadline: float) -> bool:
    from Xlib import X

    while time.monotonic() < deadline:
        while conn.pending_events():
            reply = conn.next_event()
            if (reply.type == X.ClientMessage and reply.client_type == protocols
                    and list(reply.data[1][:2]) == [ping, stamp]):
                return True
        time.sleep(0.01)
    return False


def _project_dir(ctx: AppContext) -> Path:
    return ctx.home / PAPER_DIR


def _main_name(ctx: AppContext) -> str:
    name = ctx.state.get("main")
    if name is None:
        raise AppError("no project is open; the task must start with the open_project setup step")
    return name


@APP.setup("open_project")
def open_project(ctx: AppContext, project: str) -> str:
    """Write project ``project`` into ~/paper and have the running TeXstudio open its main file."""
    if project not in PROJECTS:
        raise BadArgument(f"unknown project {project!r}; known: {', '.join(sorted(PROJECTS))}")
    spec = PROJECTS[project]
    folder = _project_dir(ctx)
    (folder / spec.main).write_text(spec.text)
    for name, text in spec.side_files.items():
        (folder / name).write_text(text)
    for name, make in spec.side_binaries.items():
        (folder / name).write_bytes(make())
    path = folder / spec.main
    _hand_over(ctx, path)
    if not _wait_for_focus(ctx, f"{path} - TeXstudio", 15.0):
        raise AppError(f"TeXstudio did not open {path}")
    ctx.state["main"] = spec.main
    wait_idle(ctx)
    _wait_for_check_marks(ctx)
    return str(path)


def _wait_for_check_marks(ctx: AppContext) -> None:
    """Wait until the editor shows the syntax check's marks of the document just opened (e.g. an environment
    closed by the wrong ``\\end``). TeXstudio stores them as its check ends but draws them only at the
    editor's next repaint, which its caret's blink brings (measured: 0.47-0.53 s after the document took
    the focus); an observation before that lacks them. The check runs in a thread of its own: first its
    end is waited for (a slow guest may check past the first blink), then the editor's next repaint."""
    ctx.settle(quiet=0.05, timeout=stretched(3.0), app_cpu=True)
    if not ctx.repainted(*EDITOR_REPAINT, stretched(2 * CARET_BLINK)):
        print("[texstudio] the editor did not repaint after opening the document; the first observation "
              "may lack its syntax check's marks", file=sys.stderr, flush=True)


def _hand_over(ctx: AppContext, path: Path) -> None:
    """Start TeXstudio's own command line with FILE beside the running instance: it passes the file to that
    instance and exits."""
    timeout = 15.0 * slowness()
    try:
        done = subprocess.run([*APP.argv, str(path)], env=ctx.env | APP.env, cwd=str(ctx.home),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:  # it found no instance to hand the file to and started as one
        raise AppError(f"TeXstudio did not take {path.name} from a second texstudio within {timeout:g} s") from err
    if done.returncode != 0:
        raise AppError(f"texstudio {path.name} exited with code {done.returncode}: "
                       f"{done.stdout.decode(errors='replace')[-300:]}")


@APP.probe("document")
def document(ctx: AppContext) -> dict[str, Any]:
    """The main document as saved on disk: {name, exists, text}."""
    name = _main_name(ctx)
    wait_idle(ctx)
    path = _project_dir(ctx) / name
    if not path.is_file():
        return {"name": name, "exists": False, "text": ""}
    raw = path.read_bytes()[:MAX_TEXT]
    return {"name": name, "exists": True, "text": raw.decode("utf-8", errors="replace")}


@APP.probe("build_output")
def build_output(ctx: AppContext) -> dict[str, Any]:
    """What TeXstudio's own build left next to the document: PDF present, newer than the source, pages."""
    name = _main_name(ctx)
    wait_idle(ctx)
    _wait_for_build(ctx)
    folder = _project_dir(ctx)
    source, pdf, log = (folder / name), folder / (Path(name).stem + ".pdf"), folder / (Path(name).stem + ".log")
    exists = pdf.is_file()
    fresh = exists and source.is_file() and pdf.stat().st_mtime >= source.stat().st_mtime
    pages = parse_log(log.read_text(errors="replace"))["pages"] if log.is_file() else None
    return {"pdf": exists, "fresh": fresh, "pages": pages}


_TEX_TOOLS = frozenset({"pdflatex", "latex", "xelatex", "lualatex", "bibtex", "biber", "latexmk", "makeindex"})


def _running_tex_tools(root_pid: int) -> list[str]:
    """Names of TeX tools running below process ``root_pid`` (from /proc)."""
    parents, names = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm, rest = (entry / "stat").read_text().rsplit(")", 1)
            except OSError:
                continue
            parents[int(entry.name)] = int(rest.split()[1])
            names[int(entry.name)] = comm.split("(", 1)[1]
    found = []
    for pid, name in names.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != root_pid:
            ancestor = parents.get(ancestor)
        if ancestor == root_pid and name in _TEX_TOOLS:
            found.append(name)
    return found


def _wait_for_build(ctx: AppContext, timeout: float = 60.0) -> None:
    """Wait (bounded) until no compile started from TeXstudio is still running."""
    if ctx.app_pid is None:
        return
    deadline = time.monotonic() + timeout
    while _running_tex_tools(ctx.app_pid) and time.monotonic() < deadline:
        time.sleep(0.1)


@APP.probe("compile")
def compile_probe(ctx: AppContext) -> dict[str, Any]:
    """Compile a temporary copy of ~/paper with pdflatex (see :func:`compile_project`)."""
    name = _main_name(ctx)
    wait_idle(ctx)
    folder = _project_dir(ctx)
    digest = _digest(folder)
    cached = ctx.state.get("compile")
    if cached is not None and cached[0] == digest:
        return cached[1]
    result = compile_project(folder, name)
    ctx.state["compile"] = (digest, result)
    return result


def _digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.is_symlink():
            sha.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


# --- compiling -------------------------------------------------------------------

def compile_project(folder: Path, main: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
    """Compile ``folder/main`` in a temporary copy: pdflatex, bibtex if asked for, pdflatex twice.

    Returns {ok, errors, undefined_references, undefined_citations, pages, bibliography, runs,
    timed_out}. Shell escape is off and TeX may only read and write inside the copy.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+\.tex", main):
        raise BadArgument(f"bad main file name {main!r}")
    stem = main[:-4]
    with tempfile.TemporaryDirectory(prefix="sciboard-latex-") as tmp:
        work = Path(tmp)
        files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()][:MAX_FILES]
        for path in files:
            shutil.copyfile(path, work / path.name)
        env = {"PATH": CLEAN_PATH, "HOME": tmp, "LANG": "C.UTF-8", "openin_any": "p", "openout_any": "p",
               "shell_escape": "f", "max_print_line": "1000"}
        latex = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                 "-file-line-error", main]
        runs: list[str] = []
        if not (work / main).is_file():
            return _result(False, [f"{main} does not exist"], {}, runs, False, [])
        timed_out = False
        plan = ["pdflatex", "pdflatex"]
        while plan:
            step = plan.pop(0)
            argv = latex if step == "pdflatex" else ["bibtex", stem]
            runs.append(step)
            try:
                done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL, check=False)
            except subprocess.TimeoutExpired:
                timed_out = True
                break
            if step == "pdflatex" and done.returncode != 0:
                break
            if runs == ["pdflatex"] and _wants_bibtex(work / f"{stem}.aux"):
                plan[:0] = ["bibtex", "pdflatex"]
        log_path = work / f"{stem}.log"
        log = parse_log(log_path.read_text(errors="replace")) if log_path.is_file() else {}
        errors = list(log.get("errors", []))
        if timed_out:
            errors.append(f"the LaTeX run timed out after {timeout:g} s")
        pdf = (work / f"{stem}.pdf").is_file()
        if not pdf and not errors:
            errors.append("no PDF was produced")
        bbl = work / f"{stem}.bbl"
        bibliography = bbl_keys(bbl.read_text(errors="replace")) if bbl.is_file() else []
        return _result(pdf and not errors, errors, log, runs, timed_out, bibliography)


def _wants_bibtex(aux: Path) -> bool:
    return aux.is_file() and "\\bibdata" in aux.read_text(errors="replace")


def _result(ok: bool, errors: list[str], log: dict[str, Any], runs: list[str], timed_out: bool,
            bibliography: list[str]) -> dict[str, Any]:
    return {
        "ok": ok, "errors": errors[:20], "undefined_references": log.get("undefined_references", []),
        "undefined_citations": log.get("undefined_citations", []), "pages": log.get("pages"),
        "bibliography": bibliography, "runs": runs, "timed_out": timed_out,
    }


_FILE_LINE_ERROR = re.compile(r"^(?:\./)?[^\s:]+\.(?:tex|sty|cls|bbl):(\d+): (.+)$")
_UNDEFINED = re.compile(r"LaTeX Warning: (Reference|Citation) `([^']*)' on page \S+ undefined")
_OUTPUT = re.compile(r"Output written on .*? \((\d+) pages?")


def parse_log(text: str) -> dict[str, Any]:
    """Errors, undefined references/citations and the page count from a pdflatex log."""
    errors: list[str] = []
    refs: list[str] = []
    cites: list[str] = []
    for line in text.splitlines():
        match = _FILE_LINE_ERROR.match(line)
        if "==> Fatal error occurred" in line:
            continue
        if match:
            errors.append(f"line {match.group(1)}: {match.group(2).strip()}")
        elif line.startswith("! ") and not errors:
            errors.append(line[2:].strip())
        for kind, key in _UNDEFINED.findall(line):
            target = refs if kind == "Reference" else cites
            if key not in target:
                target.append(key)
    pages = _OUTPUT.search(text)
    return {"errors": errors, "undefined_references": refs, "undefined_citations": cites,
            "pages": int(pages.group(1)) if pages else None}


def bbl_keys(text: str) -> list[str]:
    """The entry keys of a BibTeX-generated .bbl file, in order."""
    return re.findall(r"\\bibitem(?:\[[^\]]*\])?\{([^}]+)\}", text)
