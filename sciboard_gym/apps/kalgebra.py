"""KAlgebra (KDE's calculator and function plotter): the Algebra domain.

State is read through the guest's AT-SPI probes (:mod:`sciboard_guest.apps.kalgebra`):
the session's variables with full precision, the 2D function list, the 2D
viewport and the selected tab.
"""

from __future__ import annotations

import re

from sciboard_gym.apps.base import AppAdapter, CheckContext, close_enough, to_number

ADAPTER = AppAdapter(name="kalgebra", env_id="SciBoard-KAlgebra-v0", title="KAlgebra", domain="algebra")


def _normalise(expression: str) -> str:
    return re.sub(r"\s+", "", expression)


@ADAPTER.check("variable_equals")
def variable_equals(ctx: CheckContext, name: str, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """Variable ``name`` exists and its value is ``value`` (relative tolerance)."""
    variables = ctx.probe("variables")
    if name not in variables:
        return False, f"variable {name!r} is not defined"
    number = to_number(variables[name])
    if number is None:
        return False, f"{name} = {variables[name]!r} is not a number"
    return close_enough(number, value, tolerance), f"{name} = {number:.10g}, expected {value:.10g}"


@ADAPTER.check("variable_defined")
def variable_defined(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """A variable ``name`` exists (any value, including functions)."""
    variables = ctx.probe("variables")
    return name in variables, f"{name!r} {'is' if name in variables else 'is not'} defined"


@ADAPTER.check("variable_text")
def variable_text(ctx: CheckContext, name: str, text: str) -> tuple[bool, str]:
    """Variable ``name`` is shown as ``text`` (whitespace ignored), e.g. a lambda ``x->x^2``."""
    variables = ctx.probe("variables")
    if name not in variables:
        return False, f"variable {name!r} is not defined"
    shown = variables[name]
    return _normalise(shown) == _normalise(text), f"{name} = {shown!r}, expected {text!r}"


@ADAPTER.check("last_result")
def last_result(ctx: CheckContext, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """The calculator's last result (``ans``) is ``value``."""
    return variable_equals(ctx, "ans", value, tolerance)


@ADAPTER.check("function_plotted")
def function_plotted(ctx: CheckContext, expression: str) -> tuple[bool, str]:
    """The 2D graph lists a function whose expression is ``expression`` (whitespace ignored)."""
    functions = ctx.probe("functions_2d")
    shown = [f["expression"] for f in functions]
    hit = _normalise(expression) in {_normalise(s) for s in shown}
    return hit, f"2D functions {shown}, expected {expression!r}"


@ADAPTER.check("function_count")
def function_count(ctx: CheckContext, count: int) -> tuple[bool, str]:
    """Exactly ``count`` functions are in the 2D graph list."""
    functions = ctx.probe("functions_2d")
    return len(functions) == count, f"{len(functions)} functions in the 2D list, expected {count}"


@ADAPTER.check("current_tab")
def current_tab(ctx: CheckContext, tab: str) -> tuple[bool, str]:
    """The main tab ``tab`` is selected."""
    shown = ctx.probe("current_tab")
    return shown == tab, f"tab {shown!r}, expected {tab!r}"


@ADAPTER.check("viewport_2d")
def viewport_2d(ctx: CheckContext, left: float, top: float, width: float, height: float,
                tolerance: float = 1e-6) -> tuple[bool, str]:
    """The 2D viewport is (left, top, width, height)."""
    shown = ctx.probe("viewport_2d")
    expected = {"left": left, "top": top, "width": width, "height": height}
    ok = all(close_enough(shown[k], v, tolerance) for k, v in expected.items())
    return ok, f"viewport {shown}, expected {expected}"


@ADAPTER.check("input_contains")
def input_contains(ctx: CheckContext, text: str) -> tuple[bool, str]:
    """Some visible text field contains ``text`` (whitespace ignored)."""
    texts = ctx.probe("texts")
    hit = any(_normalise(text) in _normalise(t) for t in texts)
    return hit, f"visible text fields {texts}, expected one containing {text!r}"


@ADAPTER.check("function_3d")
def function_3d(ctx: CheckContext, expression: str) -> tuple[bool, str]:
    """The 3D tab is shown with ``expression`` entered in its function line (whitespace ignored).

    KAlgebra's accessibility tree does not expose the drawn surface itself, only the
    3D function line; this check reads that line.
    """
    tab = ctx.probe("current_tab")
    if tab != "3D Graph":
        return False, f"tab {tab!r}, expected the 3D Graph tab"
    texts = ctx.probe("texts")
    hit = any(_normalise(t) == _normalise(expression) for t in texts)
    return hit, f"3D function line {texts}, expected {expression!r}"
