"""KAlgebra (KDE's calculator and function plotter): the Algebra domain.

State is read through the guest's AT-SPI probes (:mod:`sciboard_guest.apps.kalgebra`):
the session's variables with full precision, the 2D function list, the 2D
viewport and the selected tab.
"""

from __future__ import annotations

import re

from sciboard_gym import expressions
from sciboard_gym.apps.base import AppAdapter, CheckContext, close_enough, to_number

ADAPTER = AppAdapter(name="kalgebra", env_id="SciBoard-KAlgebra-v0", title="KAlgebra", domain="algebra")

#: Constants every KAlgebra session lists among its variables.
BUILT_IN = frozenset({"i", "true", "false", "pi", "euler", "e"})


def _normalise(expression: str) -> str:
    return re.sub(r"\s+", "", expression)


def _session(ctx: CheckContext) -> dict[str, str]:
    """The session's variables as {name: KAlgebra text}, for evaluating names in expressions."""
    return dict(ctx.probe("variables"))


def _value(ctx: CheckContext, name: str) -> float | None:
    """The number variable ``name`` holds: its text read as a number, or evaluated as mathematics."""
    variables = _session(ctx)
    number = to_number(variables[name])
    if number is not None:
        return number
    try:
        return expressions.value_of(variables[name], {k: v for k, v in variables.items() if k != name})
    except expressions.MathError:
        return None


@ADAPTER.check("variable_equals")
def variable_equals(ctx: CheckContext, name: str, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """Variable ``name`` holds the number ``value`` (relative tolerance).

    Accepts the value however KAlgebra shows it: as a number, or symbolically (``sqrt(169)``,
    ``4/3*pi*radius^3``), which is evaluated with the session's other variables.
    """
    variables = _session(ctx)
    if name not in variables:
        return False, f"variable {name!r} is not defined"
    number = _value(ctx, name)
    if number is None:
        return False, f"{name} = {variables[name]!r} is not a number"
    return close_enough(number, value, tolerance), f"{name} = {number:.10g}, expected {value:.10g}"


@ADAPTER.check("variable_defined")
def variable_defined(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """A variable ``name`` exists (any value, including functions)."""
    variables = ctx.probe("variables")
    return name in variables, f"{name!r} {'is' if name in variables else 'is not'} defined"


@ADAPTER.check("variable_function")
def variable_function(ctx: CheckContext, name: str, function: str) -> tuple[bool, str]:
    """Variable ``name`` is the function ``function`` (a KAlgebra lambda such as ``x->x^2``).

    Compared as mathematics at sample points: any parameter name and any equal body pass
    (``y->y*y``, ``t->t^2``); a function of another arity or with other values fails.
    """
    variables = _session(ctx)
    if name not in variables:
        return False, f"variable {name!r} is not defined"
    others = {k: v for k, v in variables.items() if k != name}
    same, detail = expressions.same_function(variables[name], function, names=others)
    return same, f"{name} = {variables[name]!r}: {detail}"


@ADAPTER.check("last_result")
def last_result(ctx: CheckContext, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """The calculator's last result (``ans``) is ``value`` (shown as a number or symbolically)."""
    return variable_equals(ctx, "ans", value, tolerance)


@ADAPTER.check("value_computed")
def value_computed(ctx: CheckContext, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """Some variable of the session (``ans``, the last result, included; built-in constants not) holds ``value``:
    evidence that the number was computed in KAlgebra, not only stated in an answer."""
    variables = _session(ctx)
    holding = [name for name in variables if name not in BUILT_IN and (number := _value(ctx, name)) is not None
               and close_enough(number, value, tolerance)]
    return bool(holding), (f"{value:.10g} is held by {holding}" if holding
                           else f"no variable holds {value:.10g}; variables {variables}")


@ADAPTER.check("function_plotted")
def function_plotted(ctx: CheckContext, expression: str) -> tuple[bool, str]:
    """The 2D graph lists a function equal to ``expression`` as a function of x.

    Compared as mathematics at sample points, with the session's variables and functions
    known: ``-4+x^2`` passes for ``x^2-4``, ``x->x*x`` for ``x^2``; ``x^2+4`` fails.
    """
    functions = ctx.probe("functions_2d")
    shown = [f["expression"] for f in functions]
    names = _session(ctx)
    for text in shown:
        same, _ = expressions.same_function(text, expression, names=names)
        if same:
            return True, f"2D function {text!r} equals {expression!r}"
    return False, f"2D functions {shown}, none equal to {expression!r}"


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
    """The 3D tab is shown with a function of x and y equal to ``expression`` in its function line.

    Compared as mathematics at sample points (``y^2*(-1)+x^2`` passes for ``x^2-y^2``).
    KAlgebra's accessibility tree does not expose the drawn surface itself, only the
    3D function line; this check reads that line.
    """
    tab = ctx.probe("current_tab")
    if tab != "3D Graph":
        return False, f"tab {tab!r}, expected the 3D Graph tab"
    texts = ctx.probe("texts")
    names = _session(ctx)
    for text in texts:
        if expressions.same_function(text, expression, ("x", "y"), names)[0]:
            return True, f"3D function line {text!r} equals {expression!r}"
    return False, f"3D function line {texts}, expected {expression!r}"
