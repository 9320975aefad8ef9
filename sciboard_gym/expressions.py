"""Maths expressions in KAlgebra's syntax: parse, evaluate numerically, compare.

A small recursive-descent parser turns KAlgebra text (``x->x^2``, ``(x,y)->x*y``,
``sqrt(169)``, ``-4+x^2``, ``2x``) into a tree of tuples; a whitelist evaluator computes
it with :mod:`math`. Nothing is ever passed to ``eval`` and no name outside the
whitelist (or the session's own variables) is looked up, so app text cannot run code.

Expressions are equal when they agree numerically at sample points; lambdas are
compared by position of their parameters, so ``x->x^2`` equals ``y->y*y``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Node = tuple[Any, ...]


class MathError(ValueError):
    """Text that is not an expression this module understands, or that cannot be evaluated."""


_TOKEN = re.compile(r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>->|:=|\*\*|[-+*/^(),]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip().replace("\u2212", "-").replace("\u00d7", "*").replace("\u00b7", "*")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise MathError(f"unexpected {text[pos:pos + 10]!r} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    """expr := params '->' expr | sum; sum := product (('+'|'-') product)*;
    product := unary (('*'|'/')? unary)*  (juxtaposition multiplies, as in ``2x``);
    unary := '-' unary | power; power := call ('^' unary)?; call := atom ('(' args ')')*."""

    def __init__(self, text: str):
        self.items = _tokens(text)
        self.pos = 0
        if len(self.items) > 2000:
            raise MathError("expression too long")

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        item = self.peek()
        if item is None or (value is not None and item[1] != value):
            raise MathError(f"expected {value or 'more'} at token {self.pos}")
        self.pos += 1
        return item

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek() is not None:
            raise MathError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def expr(self, depth: int) -> Node:
        if depth > 60:
            raise MathError("nested too deeply")
        start = self.pos
        params = self._lambda_params()
        if params is not None:
            return ("lambda", params, self.expr(depth + 1))
        self.pos = start
        return self.sum(depth)

    def _lambda_params(self) -> tuple[str, ...] | None:
        item = self.peek()
        if item is None:
            return None
        if item[0] == "name":
            self.pos += 1
            return (item[1],) if self.peek() == ("op", "->") and self.take() else None
        if item == ("op", "("):
            self.pos += 1
            names = []
            while (nxt := self.peek()) is not None and nxt[0] == "name":
                names.append(nxt[1])
                self.pos += 1
                if self.peek() == ("op", ","):
                    self.pos += 1
                    continue
                break
            if names and self.peek() == ("op", ")"):
                self.pos += 1
                if self.peek() == ("op", "->"):
                    self.pos += 1
                    return tuple(names)
        return None

    def sum(self, depth: int) -> Node:
        node = self.product(depth)
        while (item := self.peek()) in (("op", "+"), ("op", "-")):
            self.pos += 1
            node = ("+" if item == ("op", "+") else "-", node, self.product(depth))
        return node

    def product(self, depth: int) -> Node:
        node = self.unary(depth)
        while (item := self.peek()) is not None:
            if item in (("op", "*"), ("op", "/")):
                self.pos += 1
                node = (item[1], node, self.unary(depth))
            elif item[0] in ("number", "name") or item == ("op", "("):
                node = ("*", node, self.power(depth))
            else:
                break
        return node

    def unary(self, depth: int) -> Node:
        if self.peek() in (("op", "-"), ("op", "+")):
            sign = self.take()[1]
            operand = self.unary(depth + 1)
            return ("neg", operand) if sign == "-" else operand
        return self.power(depth)

    def power(self, depth: int) -> Node:
        base = self.call(depth)
        if self.peek() in (("op", "^"), ("op", "**")):
            self.pos += 1
            return ("^", base, self.unary(depth + 1))
        return base

    def call(self, depth: int) -> Node:
        node = self.atom(depth)
        while self.peek() == ("op", "(") and node[0] in ("name", "call"):
            self.pos += 1
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.expr(depth + 1))
                while self.peek() == ("op", ","):
                    self.pos += 1
                    args.append(self.expr(depth + 1))
            self.take(")")
            node = ("call", node, tuple(args))
        return node

    def atom(self, depth: int) -> Node:
        kind, value = self.take()
        if kind == "number":
            return ("num", float(value))
        if kind == "name":
            return ("name", value)
        if value == "(":
            inner = self.expr(depth + 1)
            self.take(")")
            return inner
        raise MathError(f"unexpected {value!r}")


def parse(text: str) -> Node:
    """Parse KAlgebra text (an expression or a lambda) into a tree; raises :class:`MathError`."""
    if not isinstance(text, str) or not text.strip():
        raise MathError("empty expression")
    if len(text) > 2000:
        raise MathError("expression too long")
    return _Parser(text).parse()


def _root(x: float, n: float) -> float:
    if x < 0 and float(n).is_integer() and int(n) % 2 == 1:
        return -((-x) ** (1.0 / n))
    return x ** (1.0 / n)


def _gcd(*values: float) -> float:
    return float(math.gcd(*(_integer(v) for v in values)))


def _lcm(*values: float) -> float:
    return float(math.lcm(*(_integer(v) for v in values)))


def _integer(value: float) -> int:
    if not float(value).is_integer():
        raise MathError(f"{value} is not an integer")
    return int(value)


def _factorial(value: float) -> float:
    n = _integer(value)
    if n < 0 or n > 170:
        raise MathError("factorial out of range")
    return float(math.factorial(n))


#: KAlgebra's built-in functions (MathML names and their usual aliases) this module evaluates.
FUNCTIONS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "sec": lambda x: 1 / math.cos(x),
    "csc": lambda x: 1 / math.sin(x), "cot": lambda x: 1 / math.tan(x),
    "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "sqrt": math.sqrt, "root": _root, "exp": math.exp, "ln": math.log, "log": math.log10,
    "abs": abs, "floor": math.floor, "ceiling": math.ceil, "ceil": math.ceil,
    "power": lambda x, y: x ** y, "rem": lambda x, y: float(math.fmod(_integer(x), _integer(y))),
    "quotient": lambda x, y: float(int(_integer(x) / _integer(y))), "gcd": _gcd, "lcm": _lcm,
    "factorial": _factorial, "min": min, "max": max,
    "plus": lambda *a: math.fsum(a), "times": lambda *a: math.prod(a), "minus": lambda x, y=None: -x if y is None
    else x - y, "divide": lambda x, y: x / y,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "euler": math.e, "true": 1.0, "false": 0.0}


@dataclass(frozen=True)
class Lambda:
    """A function value: parameter names, body, and the names it was defined among."""

    params: tuple[str, ...]
    body: Node
    scope: Mapping[str, Any]

    def __call__(self, *args: float) -> float:
        if len(args) != len(self.params):
            raise MathError(f"function of {len(self.params)} argument(s) called with {len(args)}")
        return _number(evaluate(self.body, {**self.scope, **dict(zip(self.params, args))}))


def _number(value: Any) -> float:
    if isinstance(value, Lambda):
        raise MathError("a function where a number was expected")
    return float(value)


def evaluate(node: Node, names: Mapping[str, Any] | None = None, _depth: int = 0) -> Any:
    """Evaluate a tree: a float, or a :class:`Lambda` for ``x->...``. ``names`` maps variable
    names to numbers, Lambdas or KAlgebra text (parsed on use). Raises :class:`MathError`."""
    if _depth > 200:
        raise MathError("evaluation nested too deeply")
    names = names or {}
    kind = node[0]
    try:
        if kind == "num":
            return node[1]
        if kind == "name":
            return _lookup(node[1], names, _depth)
        if kind == "lambda":
            return Lambda(node[1], node[2], names)
        if kind == "neg":
            return -_number(evaluate(node[1], names, _depth + 1))
        if kind == "call":
            target = node[1]
            args = [_number(evaluate(arg, names, _depth + 1)) for arg in node[2]]
            if target[0] == "name" and target[1] not in names and target[1] in FUNCTIONS:
                return float(FUNCTIONS[target[1]](*args))
            function = evaluate(target, names, _depth + 1)
            if not isinstance(function, Lambda):
                raise MathError(f"{target} is not a function")
            return function(*args)
        left, right = (_number(evaluate(n, names, _depth + 1)) for n in node[1:3])
        if kind == "+":
            return left + right
        if kind == "-":
            return left - right
        if kind == "*":
            return left * right
        if kind == "/":
            return left / right
        if kind == "^":
            result = left ** right
            if isinstance(result, complex):
                raise MathError("complex result")
            return float(result)
    except (ArithmeticError, ValueError, TypeError, RecursionError) as err:
        raise MathError(f"cannot evaluate: {err}") from None
    raise MathError(f"unknown node {kind!r}")


def _lookup(name: str, names: Mapping[str, Any], depth: int) -> Any:
    if name in names:
        value = names[name]
        if isinstance(value, str):
            return evaluate(parse(value), {k: v for k, v in names.items() if k != name}, depth + 1)
        return value
    if name in CONSTANTS:
        return CONSTANTS[name]
    raise MathError(f"unknown name {name!r}")


def value_of(text: str, names: Mapping[str, Any] | None = None) -> float:
    """The number KAlgebra text stands for (``sqrt(169)`` -> 13.0), using session ``names``."""
    return _number(evaluate(parse(text), names))


def free_names(node: Node, bound: frozenset[str] = frozenset()) -> set[str]:
    """Variable names used but not bound (functions and constants excluded)."""
    kind = node[0]
    if kind == "name":
        return set() if node[1] in bound or node[1] in CONSTANTS else {node[1]}
    if kind == "lambda":
        return free_names(node[2], bound | set(node[1]))
    if kind == "call":
        target = node[1]
        inner = set() if target[0] == "name" and target[1] in FUNCTIONS else free_names(target, bound)
        return inner.union(*(free_names(arg, bound) for arg in node[2])) if node[2] else inner
    return set().union(*(free_names(child, bound) for child in node[1:] if isinstance(child, tuple)))


def as_function(text: str, variables: tuple[str, ...] = ("x",),
                names: Mapping[str, Any] | None = None) -> Callable[..., float]:
    """KAlgebra text as a function of ``len(variables)`` numbers: a lambda by its own
    parameters, a plain expression by the names in ``variables`` (``x^2`` -> x ↦ x²)."""
    node = parse(text)
    scope = dict(names or {})
    if node[0] == "lambda":
        function: Lambda = evaluate(node, scope)
        return function
    unknown = free_names(node) - set(variables) - set(scope)
    if unknown:
        raise MathError(f"unknown names {sorted(unknown)} in {text!r}")
    return Lambda(tuple(variables), node, scope)


#: Sample points for comparing functions: irregular, both signs, away from common poles.
SAMPLES = (-2.71, -1.37, -0.61, 0.29, 0.83, 1.61, 2.47, 3.91)


def same_function(a: str, b: str, variables: tuple[str, ...] = ("x",), names: Mapping[str, Any] | None = None,
                  tolerance: float = 1e-6) -> tuple[bool, str]:
    """Whether two KAlgebra texts are the same function (or number): equal at sample points.

    Points where neither side is defined are skipped; where only one side is defined the
    texts differ. At least three agreeing points are needed.
    """
    try:
        fa, fb = as_function(a, variables, names), as_function(b, variables, names)
    except MathError as err:
        return False, str(err)
    arity = len(fa.params) if isinstance(fa, Lambda) else len(variables)
    if isinstance(fb, Lambda) and len(fb.params) != arity:
        return False, f"{a!r} takes {arity} argument(s), {b!r} takes {len(fb.params)}"
    agreeing = 0
    for index in range(len(SAMPLES)):
        point = tuple(SAMPLES[(index + 3 * k) % len(SAMPLES)] for k in range(arity))
        results: list[float | None] = []
        for function in (fa, fb):
            try:
                results.append(_number(function(*point)))
            except MathError:
                results.append(None)
        va, vb = results
        if va is None and vb is None:
            continue
        if va is None or vb is None or not math.isclose(va, vb, rel_tol=tolerance, abs_tol=tolerance):
            return False, f"{a!r} and {b!r} differ at {point}: {va} vs {vb}"
        agreeing += 1
    if agreeing < 3:
        return False, f"{a!r} and {b!r} are defined at too few sample points to compare"
    return True, f"{a!r} equals {b!r} at {agreeing} sample points"
