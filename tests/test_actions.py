"""The action language: parsing, validation, round trips, and fuzzing with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sciboard_gym import actions
from sciboard_gym.actions import ActionError

SCREEN = (1920, 1080)


@pytest.mark.parametrize("text,expected", [
    ("click(10, 20)", actions.Click(10, 20)),
    ("  double_click( 1 ,2 ) ", actions.DoubleClick(1, 2)),
    ("right_click(0, 0)", actions.RightClick(0, 0)),
    ("move(1919, 1079)", actions.Move(1919, 1079)),
    ("drag(1, 2, 3, 4)", actions.Drag(1, 2, 3, 4)),
    ("scroll(5, 5, -3)", actions.Scroll(5, 5, -3)),
    ('type("x:=3")', actions.Type("x:=3")),
    ("type('single')", actions.Type("single")),
    ('type("quote \\" and \\\\ and \\n")', actions.Type('quote " and \\ and \n')),
    ('type("\\u03c0")', actions.Type("π")),
    ('key("ctrl+shift+s")', actions.Key("ctrl+shift+s")),
    ("wait(0.5)", actions.Wait(0.5)),
    ("done()", actions.Done()),
    ("fail()", actions.Fail()),
    ('answer("42")', actions.Answer("42")),
    ("click(10.4, 20.6)", actions.Click(10, 21)),
])
def test_parse_valid(text, expected):
    assert actions.parse(text, SCREEN) == expected


@pytest.mark.parametrize("text,fragment", [
    ("", "empty action"),
    ("click", "expected a call"),
    ("explode(1)", "unknown action 'explode'"),
    ("click(1)", "takes 2 argument"),
    ("click(1, 2", "missing ')'"),
    ("click(1, 2) extra", "unexpected text"),
    ('click("a", 2)', "must be a number"),
    ("type(42)", "quoted string"),
    ('type("")', "must not be empty"),
    ('type("open', "unterminated string"),
    ('key("ctrl s")', "key names joined"),
    ('key("rm -rf /; echo")', "key names joined"),
    ("wait(99)", "between 0 and"),
    ("scroll(1, 1, 0)", "non-zero"),
    ("click(5000, 10)", "outside the 1920x1080 screen"),
    ("click(-1, 10)", "outside"),
    ("__import__('os')", "unknown action"),
    ('type("\\q")', "unknown escape"),
])
def test_parse_invalid_has_clear_message(text, fragment):
    with pytest.raises(ActionError) as err:
        actions.parse(text, SCREEN)
    assert fragment in str(err.value)


def test_describe_lists_every_action():
    text = actions.describe()
    for name in actions.ACTION_NAMES:
        assert f"{name}(" in text


ACTION_OBJECTS = st.one_of(
    st.builds(actions.Click, st.integers(0, 1919), st.integers(0, 1079)),
    st.builds(actions.Drag, st.integers(0, 1919), st.integers(0, 1079), st.integers(0, 1919), st.integers(0, 1079)),
    st.builds(actions.Scroll, st.integers(0, 1919), st.integers(0, 1079),
              st.integers(-50, 50).filter(lambda v: v != 0)),
    st.builds(actions.Type, st.text(st.characters(min_codepoint=32, blacklist_categories=("Cs",)), min_size=1,
                                     max_size=50)),
    st.builds(actions.Key, st.from_regex(r"[A-Za-z0-9_]{1,8}(\+[A-Za-z0-9_]{1,8}){0,2}", fullmatch=True)),
    st.builds(actions.Answer, st.text(st.characters(min_codepoint=32, blacklist_categories=("Cs",)), max_size=30)),
)


@given(ACTION_OBJECTS)
def test_round_trip_through_text_and_dict(action):
    assert actions.parse(action.to_string(), SCREEN) == action
    assert actions.from_dict(action.to_dict()) == action


@settings(max_examples=500)
@given(st.text(max_size=80))
def test_random_strings_never_crash(text):
    try:
        actions.parse(text, SCREEN)
    except ActionError as err:
        assert str(err)


@settings(max_examples=300)
@given(st.sampled_from(actions.ACTION_NAMES), st.lists(
    st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.text(max_size=10)), max_size=5))
def test_random_calls_never_crash(name, args):
    rendered = ", ".join(repr(a) for a in args)
    try:
        actions.parse(f"{name}({rendered})", SCREEN)
    except ActionError as err:
        assert str(err)
