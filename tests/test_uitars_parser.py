"""The UI-TARS output parser: every action form, both coordinate conventions, and bad output."""

from __future__ import annotations

import pytest

from coda_agent.uitars import CoordinateFrame, parse_uitars, split_thought
from sciboard_gym import actions

# The model saw a 980x560 image of a 1960x1120 screen: absolute coordinates scale by 2.
ABS = CoordinateFrame("absolute", (980, 560), (1960, 1120))
REL = CoordinateFrame("relative", (980, 560), (1920, 1080))


@pytest.mark.parametrize("reply, expected", [
    ("Thought: the OK button.\nAction: click(start_box='(100,200)')", "click(200, 400)"),
    ("Action: click(start_box='<|box_start|>(100,200)<|box_end|>')", "click(200, 400)"),
    ("click(point='<point>100 200</point>')", "click(200, 400)"),
    ("Action: click(start_box='[90,190,110,210]')", "click(200, 400)"),
    ("Action: click(start_box='<bbox>90 190 110 210</bbox>')", "click(200, 400)"),
    ("Action: left_double(start_box='(10,20)')", "double_click(20, 40)"),
    ("Action: right_single(start_box='(10,20)')", "right_click(20, 40)"),
    ("Action: drag(start_box='(10,20)', end_box='(30,40)')", "drag(20, 40, 60, 80)"),
    ("Action: drag(start_point='<point>10 20</point>', end_point='<point>30 40</point>')", "drag(20, 40, 60, 80)"),
    ("Action: hotkey(key='ctrl s')", 'key("ctrl+s")'),
    ("Action: hotkey(key='Enter')", 'key("Return")'),
    ("Action: hotkey(key='ctrl shift arrowleft')", 'key("ctrl+shift+Left")'),
    ("Action: press(key='esc')", 'key("Escape")'),
    ("Action: hotkey(key='f5')", 'key("F5")'),
    ("Action: type(content='x:=3')", 'type("x:=3")'),
    ("Action: type(content='plot sin(x)\\n')", 'type("plot sin(x)\\n")'),
    ("Action: type(content='it's done')", 'type("it\'s done")'),
    ("Action: type(content=\"say \\\"hi\\\"\")", 'type("say \\"hi\\"")'),
    ("Action: scroll(start_box='(10,20)', direction='down')", "scroll(20, 40, 5)"),
    ("Action: scroll(direction='up')", "scroll(980, 560, -5)"),
    ("Action: wait()", "wait(5)"),
    ("Action: finished()", "done()"),
    ("Action: finished(content='all set')", "done()"),
    ("Action: call_user()", "fail()"),
    ("Thought: t\nAction: click(start_box='(1,2)')\n\nclick(start_box='(3,4)')", "click(2, 4)"),
])
def test_absolute_replies(reply: str, expected: str) -> None:
    assert parse_uitars(reply, ABS).to_string() == expected


def test_relative_coordinates_scale_from_thousandths() -> None:
    assert parse_uitars("Action: click(start_box='(500,500)')", REL).to_string() == "click(960, 540)"
    assert parse_uitars("Action: click(start_box='(1000,1000)')", REL).to_string() == "click(1919, 1079)"


def test_points_just_past_the_edge_are_clamped_far_ones_refused() -> None:
    assert parse_uitars("Action: click(start_box='(985,-3)')", ABS).to_string() == "click(1959, 0)"
    with pytest.raises(actions.ActionError, match="outside"):
        parse_uitars("Action: click(start_box='(2000,10)')", ABS)


@pytest.mark.parametrize("reply, reason", [
    ("", "no action call"),
    ("Thought: I am not sure what to do.", "no action call"),
    ("Action: click()", "missing start_box"),
    ("Action: click(start_box='(12)')", "expected a point"),
    ("Action: scroll(start_box='(1,2)', direction='left')", "not supported"),
    ("Action: long_press(start_box='(1,2)')", "no counterpart"),
    ("Action: type(content='')", "empty content"),
    ("Action: hotkey(key='')", "no key"),
    ("Action: hotkey(key='ctrl;rm')", "key names"),
    ("Action: type(content='a\x01b')", "control characters"),
])
def test_bad_replies_raise_action_errors(reply: str, reason: str) -> None:
    with pytest.raises(actions.ActionError, match=reason):
        parse_uitars(reply, ABS)


def test_split_thought() -> None:
    assert split_thought("Thought: open the menu\nAction: click(start_box='(1,2)')") == (
        "open the menu", "click(start_box='(1,2)')")
    assert split_thought("click(start_box='(1,2)')") == ("", "click(start_box='(1,2)')")
    assert split_thought("Reflection: ok\nAction: wait()") == ("ok", "wait()")
