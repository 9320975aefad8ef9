"""Fuzzing the action parser, the guest's input validation and the task loader with hypothesis.

Every input must either be accepted (and then be well-formed) or be rejected with the
module's own error and a non-empty message: no other exception, ever. The normal suite
runs a few hundred inputs per target; ``scripts/fuzz.py`` runs the same targets with
``SCIBOARD_FUZZ_EXAMPLES`` (>= 10,000 in all) and reports how many inputs each saw.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sciboard_guest import inputs
from sciboard_gym import actions
from sciboard_gym.apps import get_adapter
from sciboard_gym.tasks import Task, TaskError, load_task_file

SCREEN = (1920, 1080)
EXAMPLES = int(os.environ.get("SCIBOARD_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: Inputs each target has checked in this process (scripts/fuzz.py reports them).
EXECUTED: Counter = Counter()

DEEP = "[" * 50_000 + "]" * 50_000
GOOD_TASK = {
    "id": "kalgebra/fuzzed", "app": "kalgebra", "instruction": "Store 2 plus 2 in a variable named four.",
    "max_steps": 5, "difficulty": "easy", "tags": ["fuzz"],
    "setup": [{"step": "calculate", "args": {"expression": "1+1"}}],
    "evaluate": [{"check": "variable_equals", "args": {"name": "four", "value": 4}}],
    "oracle": ['type("four:=2+2")', 'key("Return")', "done()"],
}

# --- strategies ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-10**400, 10**400) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
NUMBER_TEXT = st.one_of(
    st.integers(-10**7, 10**7).map(str),
    st.floats().map(repr),
    st.from_regex(r"[+-]?\d{0,120}(\.\d{0,6})?([eE][+-]?\d{1,5})?", fullmatch=True),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0x10", "1_000", "True", "None", "1" * 5000, ".", "+"]),
)
STRING_TEXT = st.one_of(
    st.text(max_size=40).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.text(max_size=40).map(lambda t: "'" + t + "'"),
    st.text(alphabet='"\\\'u0123456789abcdefnrtq', max_size=14).map(lambda t: '"' + t + '"'),
    st.text(max_size=10),
)
CALLS = st.builds(
    lambda name, args, sep, tail: f"{name}({sep.join(args)}){tail}",
    st.sampled_from(actions.ACTION_NAMES + ("clik", "__import__", "eval", "Click", "os.system", "")),
    st.lists(NUMBER_TEXT | STRING_TEXT, max_size=5),
    st.sampled_from([", ", ",", " , ", ",,", "", "\t,\n"]),
    st.sampled_from(["", " ", ")", "; rm -rf /", "\n", "(", " # x", "\x00"]),
)
VALID = st.one_of(
    st.builds(lambda x, y, n: f"{n}({x}, {y})", st.integers(0, 1919), st.integers(0, 1079),
              st.sampled_from(["click", "double_click", "right_click", "move"])),
    st.builds(lambda a, b, c, d: f"drag({a}, {b}, {c}, {d})", st.integers(0, 1919), st.integers(0, 1079),
              st.integers(0, 1919), st.integers(0, 1079)),
    st.builds(lambda x, y, dy: f"scroll({x}, {y}, {dy})", st.integers(0, 1919), st.integers(0, 1079),
              st.integers(-50, 50)),
    st.text(max_size=40).map(lambda t: f"type({json.dumps(t)})"),
    st.from_regex(r"[A-Za-z0-9_]{1,8}(\+[A-Za-z0-9_]{1,8}){0,2}", fullmatch=True).map(lambda k: f'key("{k}")'),
    st.floats(0, 10).map(lambda s: f"wait({s})"),
    st.sampled_from(["done()", "fail()"]),
    st.text(max_size=30).map(lambda t: f"answer({json.dumps(t)})"),
)


def _mutate(text: str, position: int, kind: str, char: str) -> str:
    index = position % (len(text) + 1)
    if kind == "insert":
        return text[:index] + char + text[index:]
    if kind == "delete":
        return text[:index] + text[index + 1:]
    if kind == "replace":
        return text[:index] + char + text[index + 1:]
    if kind == "truncate":
        return text[:index]
    return text[:index] + text + text[index:]


MUTATED = st.builds(_mutate, VALID, st.integers(0, 200),
                    st.sampled_from(["insert", "delete", "replace", "truncate", "duplicate"]),
                    st.sampled_from('()"\',\\ -+.e0129x\n\x00') | st.characters())
ACTION_TEXT = st.one_of(st.text(max_size=120), CALLS, VALID, MUTATED)
ACTION_DICT = st.one_of(
    st.fixed_dictionaries({"name": st.sampled_from(actions.ACTION_NAMES)},
                          optional={k: JSON for k in ("x", "y", "x1", "y1", "x2", "y2", "dy", "text", "keys",
                                                      "seconds", "extra")}),
    JSON,
)
TASK_CHANGES = st.dictionaries(
    st.sampled_from(sorted(GOOD_TASK) + ["code", "lambda", "Oracle"]),
    JSON | st.lists(ACTION_TEXT, max_size=4) | st.lists(
        st.fixed_dictionaries({"check": st.text(max_size=12) | st.sampled_from(["variable_equals", "answer_number"])},
                              optional={"args": JSON, "code": JSON}), max_size=3),
    max_size=3,
)
TASK_DATA = st.one_of(
    JSON,
    st.tuples(TASK_CHANGES, st.sets(st.sampled_from(sorted(GOOD_TASK)), max_size=2)).map(
        lambda change: {k: v for k, v in {**GOOD_TASK, **change[0]}.items() if k not in change[1]}),
)
TASK_BYTES = st.one_of(
    st.binary(max_size=300),
    TASK_DATA.map(lambda d: json.dumps(d, default=str).encode()),
    TASK_DATA.map(lambda d: json.dumps(d, default=str).encode()[: len(json.dumps(d, default=str)) // 2]),
    st.sampled_from([DEEP.encode(), b'{"id": NaN}', b"\xff\xfe{}", b"", b"null", json.dumps(GOOD_TASK).encode()]),
)

# --- targets -------------------------------------------------------------------------------


def _rejected(err: Exception) -> None:
    message = str(err)
    assert message.strip(), f"{type(err).__name__} without a message"
    assert "Traceback" not in message


@FUZZ
@given(ACTION_TEXT)
@example("click(" * 10_000)
@example("click(" + "9" * 5000 + ", 1)")
@example("wait(1e999)")
def test_parse_accepts_or_explains(text):
    EXECUTED["actions.parse"] += 1
    try:
        action = actions.parse(text, SCREEN)
    except actions.ActionError as err:
        _rejected(err)
        return
    assert all(0 <= x < SCREEN[0] and 0 <= y < SCREEN[1] for x, y in action.points())
    canonical = action.to_string()
    assert actions.parse(canonical, SCREEN).to_string() == canonical
    assert actions.from_dict(action.to_dict()) == action


@FUZZ
@given(ACTION_DICT)
@example({"name": "click", "x": 10**5000, "y": 1})
@example({"name": "wait", "seconds": float("nan")})
def test_from_dict_accepts_or_explains(data):
    EXECUTED["actions.from_dict"] += 1
    try:
        action = actions.from_dict(data)
    except actions.ActionError as err:
        _rejected(err)
        return
    assert action.to_dict() == {**data, **action.to_dict()}


@FUZZ
@given(ACTION_DICT)
def test_guest_keyboard_validation_accepts_or_explains(data):
    """The guest re-validates what reaches xdotool; an accepted command is an argv list ending the options."""
    EXECUTED["guest inputs.keyboard_command"] += 1
    try:
        argv = inputs.keyboard_command(data if isinstance(data, dict) else {"name": "type", "text": data})
    except inputs.InputError as err:
        _rejected(err)
        return
    assert argv[0] in ("type", "key") and "--" in argv and all(isinstance(a, str) for a in argv)


@FUZZ
@given(TASK_DATA)
def test_task_from_dict_accepts_or_explains(data):
    EXECUTED["Task.from_dict"] += 1
    try:
        task = Task.from_dict(data, source="fuzzed.json")
    except TaskError as err:
        _rejected(err)
        assert str(err).startswith("fuzzed.json: ")
        return
    assert Task.from_dict(task.to_dict()) == Task.from_dict(data)
    try:
        get_adapter("kalgebra").validate_task(task)
    except TaskError as err:
        _rejected(err)


_SCRATCH = tempfile.TemporaryDirectory(prefix="sciboard-fuzz-")  # removed when the process exits
_TASK_DIR = Path(_SCRATCH.name) / "kalgebra"
_TASK_DIR.mkdir()


@FUZZ
@given(TASK_BYTES)
def test_task_file_loads_or_explains(raw):
    EXECUTED["load_task_file"] += 1
    path = _TASK_DIR / "fuzzed.json"
    path.write_bytes(raw)
    try:
        task = load_task_file(path)
    except TaskError as err:
        _rejected(err)
        assert str(err).startswith(f"{path}: ")
        return
    assert task.id == "kalgebra/fuzzed"


TARGETS = {
    "actions.parse": test_parse_accepts_or_explains,
    "actions.from_dict": test_from_dict_accepts_or_explains,
    "guest inputs.keyboard_command": test_guest_keyboard_validation_accepts_or_explains,
    "Task.from_dict": test_task_from_dict_accepts_or_explains,
    "load_task_file": test_task_file_loads_or_explains,
}
