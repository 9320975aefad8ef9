"""Host-side app adapters: env id, named evaluator checks, and task validation.

The desktop side of an app (launch, readiness, setup steps, state probes) lives
in :mod:`sciboard_guest.apps`; the host side judges tasks by calling those
probes through the guest. Checks are Python functions registered by name; task
files only name them with JSON arguments.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sciboard_guest import apps as guest_apps
from sciboard_gym.guest_client import GuestClient, GuestError
from sciboard_gym.tasks import Task, TaskError


class CheckFailed(Exception):
    """Raised inside a check when what it needs is missing (no document, an empty selection):
    the check fails with this message as its detail."""


@dataclass
class CheckContext:
    """What a check sees: cached probe reads through the guest, and the agent's final answer."""

    client: GuestClient
    answer: str | None
    task: Task
    #: What this check's ``at_reset`` reader saw right after setup (the truth of a live answer).
    at_reset: Any = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def probe(self, name: str, /, **args: Any) -> Any:
        key = f"{name}:{sorted(args.items())!r}"
        if key not in self._cache:
            self._cache[key] = self.client.probe(name, args)
        return self._cache[key]


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict; ``raised`` marks a check that crashed (a bug, reported, never a pass)."""

    check: str
    passed: bool
    detail: str
    raised: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "passed": self.passed, "detail": self.detail} | (
            {"raised": True} if self.raised else {})


Check = Callable[..., tuple[bool, str]]


class AppAdapter:
    """One app on the host: its env id and its named evaluator checks."""

    def __init__(self, name: str, env_id: str, title: str, domain: str):
        self.name, self.env_id, self.title, self.domain = name, env_id, title, domain
        self.checks: dict[str, Check] = dict(COMMON_CHECKS)
        self.reset_readers: dict[str, Callable[..., Any]] = {}

    def check(self, name: str, at_reset: Callable[..., Any] | None = None) -> Callable[[Check], Check]:
        """Decorator: register ``fn(ctx, **args) -> (passed, detail)`` as check ``name``.

        ``at_reset(ctx, **args)``, when given, runs right after the task's setup, before the agent
        acts; the check then finds its result in ``ctx.at_reset``. Answers about live state (where
        a planet is now) are judged against that, so the agent cannot change the world to make
        its answer true.
        """

        def register(fn: Check) -> Check:
            self.checks[name] = fn
            if at_reset is not None:
                self.reset_readers[name] = at_reset
            return fn

        return register

    @property
    def guest_app(self) -> guest_apps.GuestApp:
        return guest_apps.get(self.name)

    def preflight_local(self) -> None:
        """Raise a clear error when the app cannot run on this host's local desktop."""
        self.guest_app.check_installed()

    def validate_task(self, task: Task) -> None:
        """Check that the task names only known setup steps and checks, with fitting arguments."""
        guest = self.guest_app
        for index, step in enumerate(task.setup):
            _check_call(task, f"setup/{index}", "setup step", guest.setups, step.name, step.args, skip=1)
        for index, check in enumerate(task.evaluate):
            _check_call(task, f"evaluate/{index}", "check", self.checks, check.name, check.args, skip=1)

    def read_at_reset(self, task: Task, client: GuestClient) -> dict[int, Any]:
        """Run the ``at_reset`` readers of ``task``'s checks (after setup); {check index: what they saw}.

        A reader whose input is missing (``CheckFailed``, a refused probe) or that raises anything
        else (a bug in the reader) leaves None: its check then fails with a clear detail, and the
        reset goes on. A guest fault raises :class:`GuestError`.
        """
        ctx = CheckContext(client=client, answer=None, task=task)
        seen: dict[int, Any] = {}
        for index, check in enumerate(task.evaluate):
            if check.name in self.reset_readers:
                try:
                    seen[index] = self.reset_readers[check.name](ctx, **check.args)
                except CheckFailed:
                    seen[index] = None
                except GuestError as err:
                    if not 400 <= err.status < 500:
                        raise
                    seen[index] = None
                except Exception:  # noqa: BLE001  (a bug in a reader must not make reset fail)
                    seen[index] = None
        return seen

    def evaluate(self, task: Task, client: GuestClient, answer: str | None,
                 at_reset: dict[int, Any] | None = None) -> tuple[bool, list[CheckResult]]:
        """Run every check of ``task`` against the app's real state; all must pass.

        A probe the guest refuses (a 4xx answer) fails its check; a guest fault (no answer, or a 5xx
        from a broken probe) raises :class:`GuestError`. A check that raises anything else fails
        with ``raised=True`` and the exception as its detail. ``at_reset`` is what
        :meth:`read_at_reset` returned for this episode.
        """
        ctx = CheckContext(client=client, answer=answer, task=task)
        results = []
        for index, check in enumerate(task.evaluate):
            ctx.at_reset = (at_reset or {}).get(index)
            raised = False
            try:
                passed, detail = self.checks[check.name](ctx, **check.args)
            except CheckFailed as failed:
                passed, detail = False, str(failed)
            except GuestError as err:
                if not 400 <= err.status < 500:
                    raise
                passed, detail = False, f"could not read the app's state: {err}"
            except Exception as err:  # noqa: BLE001  (a bug in a check must not escape step or leave the episode open)
                passed, detail, raised = False, f"{type(err).__name__}: {err}", True
            results.append(CheckResult(check.name, bool(passed), detail, raised))
        return all(r.passed for r in results), results


def _check_call(task: Task, where: str, kind: str, table: dict[str, Callable[..., Any]], name: str,
                args: dict[str, Any], skip: int) -> None:
    if name not in table:
        raise TaskError(f"{task.source}: field '{where}': unknown {kind} {name!r} for {task.app}; "
                        f"known: {', '.join(sorted(table))}")
    params = list(inspect.signature(table[name]).parameters.values())[skip:]
    allowed = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    unknown = set(args) - allowed
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in args
               and p.kind is not inspect.Parameter.VAR_KEYWORD]
    if unknown or missing:
        raise TaskError(f"{task.source}: field '{where}': {kind} {name!r} takes {sorted(allowed)}; "
                        f"unknown {sorted(unknown)}, missing {missing}")


# --- checks every app has ------------------------------------------------------

_LEADING = re.compile(r"^(?:[=≈~]|approx(?:imately)?\.?|about)\s*", re.IGNORECASE)
_SCIENTIFIC = re.compile(r"^(?P<mantissa>.*?)\s*(?:[eE](?P<e>[+-]?\d+)|[x×*·]\s*10\s*(?:\^|\*\*)\s*\(?(?P<p>[+-]?\d+)\)?)$")
_UNIT = re.compile(r"(?:\s*[A-Za-zµμÅ°%'\"/²³.]+)+$")
_GROUPED = re.compile(r"^\d{1,3}(?:(?P<sep>[,.\u2009\u202f\u00a0 '_])\d{3})(?:(?P=sep)\d{3})*$")


def _plain_number(text: str) -> float | None:
    """A sign, digits (thousands groups allowed) and a decimal part; no exponent or unit."""
    sign = -1.0 if text.startswith("-") else 1.0
    text = text[1:].lstrip() if text[:1] in "+-" else text
    if not text:
        return None
    whole, point, fraction = text, "", ""
    # The decimal mark is the last '.' or ',' unless it ends a grouped integer (``49,280``, ``1.234.567``).
    for index in range(len(text) - 1, -1, -1):
        if text[index] in ".,":
            head, tail = text[:index], text[index + 1:]
            thousands = (len(tail) == 3 and tail.isdigit() and head not in ("", "0")
                         and (text[index] == "," or text.count(".") > 1) and _GROUPED.match(text) is not None)
            if not thousands:
                whole, point, fraction = head, text[index], tail
            break
    if point and not fraction.isdigit():
        return None
    if whole and not whole.isdigit():
        grouped = _GROUPED.match(whole)
        if grouped is None or (point and grouped.group("sep") == point):
            return None
        whole = re.sub(r"\D", "", whole)
    if not whole and not fraction:
        return None
    return sign * float(f"{whole or '0'}.{fraction or '0'}")


def to_number(text: Any) -> float | None:
    """Read a number the way people write it; None if the text is not one number.

    Accepts: a sign (``-``, ``+``, ``−``), thousands separators (``49,280``, ``1 234 567``,
    ``1'000``, ``1.234.567,5``), a decimal comma when it cannot be a thousands group
    (``3,5``), scientific notation (``1.2e-3``, ``1.2 × 10^5``, ``1.2*10**5``), a leading
    ``=``/``≈``/``~``/"about", and trailing units or words without digits (``2.05 Å``,
    ``109.5°``, ``12 ha``, ``49280 people``). Rejects text with a second number (``3 or 4``),
    ``inf`` and ``nan``.
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return float(text) if math.isfinite(text) else None
    if not isinstance(text, str):
        return None
    cleaned = text.strip().replace("\u2212", "-").replace("\u2013", "-")
    cleaned = _LEADING.sub("", cleaned).rstrip()
    cleaned = _UNIT.sub("", cleaned) if re.search(r"\d", cleaned) else cleaned
    exponent = 0
    scientific = _SCIENTIFIC.match(cleaned)
    if scientific and (scientific.group("e") or scientific.group("p")):
        cleaned, exponent = scientific.group("mantissa").strip(), int(scientific.group("e") or scientific.group("p"))
    value = _plain_number(cleaned)
    if value is None:
        return None
    try:
        value *= 10.0 ** exponent
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def close_enough(value: float, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance * max(1.0, abs(expected))


def answer_number(ctx: CheckContext, value: float, tolerance: float = 1e-6) -> tuple[bool, str]:
    """The agent answered with a number equal to ``value`` (relative/absolute ``tolerance``)."""
    if ctx.answer is None:
        return False, "no answer was given"
    number = to_number(ctx.answer)
    if number is None:
        return False, f"the answer {ctx.answer!r} is not a number"
    return close_enough(number, value, tolerance), f"answer {number:g}, expected {value:g} ± {tolerance:g}"


def _bare(text: str) -> str:
    """An answer without surrounding whitespace, quotes or a final full stop or exclamation mark."""
    return text.strip().strip("\"'“”‘’").strip().rstrip(".!").strip()


def answer_text(ctx: CheckContext, text: str, case_sensitive: bool = False) -> tuple[bool, str]:
    """The agent answered with ``text`` (case-insensitive by default; surrounding whitespace and quotes and a
    final full stop do not matter)."""
    if ctx.answer is None:
        return False, "no answer was given"
    given, expected = _bare(ctx.answer), _bare(text)
    if not case_sensitive:
        given, expected = given.lower(), expected.lower()
    return given == expected, f"answer {ctx.answer!r}, expected {text!r}"


def answer_one_of(ctx: CheckContext, texts: list) -> tuple[bool, str]:
    """The agent's answer is one of ``texts`` (case-insensitive, compared like :func:`answer_text`)."""
    if ctx.answer is None:
        return False, "no answer was given"
    given = _bare(ctx.answer).lower()
    return given in {_bare(str(t)).lower() for t in texts}, f"answer {ctx.answer!r}, expected one of {texts}"


COMMON_CHECKS: dict[str, Check] = {
    "answer_number": answer_number,
    "answer_text": answer_text,
    "answer_one_of": answer_one_of,
}
