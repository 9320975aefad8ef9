"""KAlgebra on the desktop: launch, readiness, setup steps and AT-SPI state probes.

KAlgebra exposes its state through Qt's AT-SPI bridge: the Variables dock
(name/value table, full precision, ``ans`` = last result), the 2D Functions dock
(function list and viewport spin boxes) and the tab bar.
"""

from __future__ import annotations

import time
from typing import Any

from sciboard_guest.a11y import Element
from sciboard_guest.apps import AppContext, AppError, BadArgument, GuestApp, visible_windows
from sciboard_guest.desktop import SPARE_INSTANCE

APP = GuestApp(
    name="kalgebra",
    argv=["kalgebra"],
    env={
        "QTWEBENGINE_DISABLE_SANDBOX": "1",
        "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
        "QT_ACCESSIBILITY": "1",
        "QT_QUICK_BACKEND": "software",
        "LIBGL_ALWAYS_SOFTWARE": "1",
        "KDE_FULL_SESSION": "",
    },
    install_hint="Install it with: apt-get install kalgebra (scripts/install.sh does this).",
    # Qt's -name sets the X instance name of its windows (docs/apps/kalgebra.md, "Reset").
    spare_argv=["kalgebra", "-name", SPARE_INSTANCE],
    ready_timeout=60.0,
    # Measured: typed text gets a "Result: ..." preview above the input line about 0.5 s after the
    # last keystroke (then a short fade-in); an observation taken before it is stale.
    text_wait=0.7,
    # Measured (docs/env-reference.md, "Settle and input"): once KAlgebra has taken an input in, its
    # drawing ends within this, provided its processes stopped computing too: its console is a web view
    # drawn from a renderer process, which can lay out a result while the screen is quiet for 50 ms.
    settle_quiet=0.04,
    settle_cpu=True,
)

TABS = ("Calculator", "2D Graph", "3D Graph", "Dictionary")
_TAB_KEYS = {"Calculator": "alt+c", "2D Graph": "alt+2", "3D Graph": "alt+3", "Dictionary": "alt+i"}


def _app(ctx: AppContext) -> Element:
    app = ctx.a11y.app("kalgebra", ctx.app_pid)
    if app is None:
        raise AppError("KAlgebra is not on the accessibility bus")
    return app


def _dock(ctx: AppContext, title: str) -> Element:
    """KAlgebra's main window (``title=""``) or one of its docks (Variables, Functions, ...)."""
    for main in _app(ctx).children:
        if main.role != "frame":
            continue
        if title == "":
            return main
        for dock in main.children:
            if dock.role == "frame" and dock.name == title:
                return dock
    raise AppError(f"KAlgebra's {title or 'main'} window is not reachable")


def _tab_list(ctx: AppContext) -> Element:
    for node in _dock(ctx, "").find(role="page tab list", skip_roles=("list", "combo box", "menu bar")):
        if any(child.name == "Calculator" for child in node.children):
            return node
    raise AppError("the main tab bar is not reachable")


@APP.ready
def _ready(ctx: AppContext, deadline: float) -> None:
    while time.monotonic() < deadline:
        ctx.ensure_app_running()
        if visible_windows(ctx, "kalgebra"):
            try:
                _tab_list(ctx)
                _dock(ctx, "Variables")
            except AppError:
                pass
            else:
                return  # its first paint may still go on: the env's settle after the task's setup waits for it
        time.sleep(0.05)
    raise AppError("KAlgebra did not become ready in time")


def _pairs(table: Element) -> list[tuple[str, str]]:
    cells = [child.name for child in table.children if child.role == "table cell"]
    return list(zip(cells[0::2], cells[1::2]))


@APP.probe("variables")
def variables(ctx: AppContext) -> dict[str, str]:
    """All variables of the session as {name: value text} (``ans`` is the last result)."""
    for table in _dock(ctx, "Variables").find(role="tree"):
        return dict(_pairs(table))
    raise AppError("the Variables panel is not reachable")


@APP.probe("functions_2d")
def functions_2d(ctx: AppContext) -> list[dict[str, Any]]:
    """Functions in the 2D graph list: [{name, expression}]."""
    for table in _dock(ctx, "Functions").find(role="tree"):
        return [{"name": name, "expression": expr} for name, expr in _pairs(table)]
    raise AppError("the 2D Functions panel is not reachable")


@APP.probe("viewport_2d")
def viewport_2d(ctx: AppContext) -> dict[str, float]:
    """The 2D viewport spin boxes: {top, left, width, height}."""
    found = {}
    for node in _dock(ctx, "Functions").find(role="spin button"):
        key = node.name.rstrip(":").lower()
        if key in ("top", "left", "width", "height") and node.value is not None:
            found[key] = node.value
    if len(found) != 4:
        raise AppError("the 2D viewport controls are not reachable")
    return found


@APP.probe("current_tab")
def current_tab(ctx: AppContext) -> str:
    """The name of the selected main tab (Calculator, 2D Graph, 3D Graph, Dictionary)."""
    return _tab_list(ctx).name


@APP.probe("texts")
def texts(ctx: AppContext) -> list[str]:
    """The contents of all showing text fields (input lines, editors)."""
    return [node.text for node in _dock(ctx, "").find(role="text") if node.text and node.showing]


@APP.setup("open_tab")
def open_tab(ctx: AppContext, tab: str) -> None:
    """Switch to one of the main tabs by its mnemonic."""
    if tab not in _TAB_KEYS:
        raise BadArgument(f"tab must be one of {list(_TAB_KEYS)}")
    ctx.key(_TAB_KEYS[tab])
    ctx.settle(quiet=0.2, timeout=3.0)


@APP.setup("calculate")
def calculate(ctx: AppContext, expression: str) -> None:
    """Enter an expression in the calculator console (e.g. to define ``r := 4``)."""
    if not expression or len(expression) > 500 or "\n" in expression:
        raise BadArgument("expression must be one non-empty line of at most 500 characters")
    before = variables(ctx).get("ans")
    ctx.type(expression)
    ctx.key("Return")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and variables(ctx).get("ans") == before and ":=" not in expression:
        time.sleep(0.05)
    ctx.settle(quiet=0.2, timeout=3.0, at_least=APP.text_wait)  # the input line's preview changes too


@APP.setup("plot_2d")
def plot_2d(ctx: AppContext, expression: str) -> None:
    """Add ``expression`` to the 2D graph, then return to the calculator tab."""
    if not expression or len(expression) > 200 or "\n" in expression:
        raise BadArgument("expression must be one non-empty line of at most 200 characters")
    before = len(functions_2d(ctx))
    open_tab(ctx, "2D Graph")
    ctx.type(expression)
    ctx.key("Return")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and len(functions_2d(ctx)) == before:
        time.sleep(0.05)
    if len(functions_2d(ctx)) == before:
        raise AppError(f"KAlgebra did not accept the 2D function {expression!r}")
    open_tab(ctx, "Calculator")
