"""Checks compare meaning: numbers in usual notations, KAlgebra maths, canonical LaTeX; task parameters."""

from __future__ import annotations

import json

import pytest

from sciboard_gym import expressions
from sciboard_gym.apps import get_adapter
from sciboard_gym.apps.base import to_number
from sciboard_gym.apps.latex import canonical, contains_latex
from sciboard_gym.tasks import Task, TaskError, load_task_file


@pytest.mark.parametrize("text,value", [
    ("49,280", 49280), ("49280", 49280), ("1,234,567.89", 1234567.89), ("1.234.567,5", 1234567.5),
    ("1 234", 1234), ("3,5", 3.5), ("0,125", 0.125), ("1.000", 1.0), ("-2", -2), ("\u22127", -7), ("+4", 4),
    ("1e-3", 0.001), ("6.02E23", 6.02e23), ("1.2 \u00d7 10^5", 1.2e5), ("1.2*10**-3", 1.2e-3),
    ("2.05 \u00c5", 2.05), ("109.47\u00b0", 109.47), ("4382.48 hectares", 4382.48), ("= 12", 12),
    ("\u2248 23.14", 23.14), ("12.", 12), (".5", 0.5), (7, 7.0),
])
def test_numbers_in_usual_notations(text, value):
    assert to_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["3 or 4", "inf", "nan", "abc", "", "1,2,3", "x", True, None, "12-13"])
def test_not_a_number(text):
    assert to_number(text) is None


@pytest.mark.parametrize("a,b", [
    ("x^2-4", "-4+x^2"), ("x->x^2", "y->y*y"), ("x^2", "x*x"), ("2*x+1", "1+2x"), ("sin(x)", "cos(x-pi/2)"),
    ("x/2", "0.5*x"), ("x->x^2", "t->t^2"), ("(x,y)->x*y", "(a,b)->b*a"),
])
def test_same_function(a, b):
    assert expressions.same_function(a, b)[0]


@pytest.mark.parametrize("a,b", [
    ("x^2-4", "x^2+4"), ("x->x^2", "y->y*2"), ("x^2", "x^3"), ("sin(x)", "cos(x)"), ("x->x^2", "(x,y)->x^2"),
    ("x^2", "nonsense((("),
])
def test_different_function(a, b):
    assert not expressions.same_function(a, b)[0]


def test_values_shown_symbolically_are_evaluated():
    assert expressions.value_of("sqrt(169)") == 13
    assert expressions.value_of("(5^2+12^2)^(1/2)") == 13
    assert expressions.value_of("4/3*pi*radius^3", {"radius": "2.5"}) == pytest.approx(65.44984694978736)
    assert expressions.value_of("sq(7)", {"sq": "y->y*y"}) == 49
    assert expressions.value_of("gcd(84,120)") == 12 and expressions.value_of("lcm(21,6)") == 42
    assert expressions.value_of("rem(1000,7)") == 6 and expressions.value_of("factorial(5)") == 120


@pytest.mark.parametrize("text", ['__import__("os")', "open(1)", "x.y", "((((", "a;b", "().__class__", "1" * 3000])
def test_expression_parser_never_runs_code(text):
    with pytest.raises(expressions.MathError):
        expressions.value_of(text)


def test_expression_free_names():
    assert expressions.free_names(expressions.parse("x->x*a+sin(y)")) == {"a", "y"}


@pytest.mark.parametrize("document,text", [
    (r"The fitted \(K_m\) was 25 mM.", "The fitted $K_m$ was 25 mM."),
    (r"The fitted $K_{m}$ was 25~mM.", "The fitted $K_m$ was 25 mM."),
    ("The  fitted $K_m$\nwas 25 mM. % note", "The fitted $K_m$ was 25 mM."),
    (r"The fitted \begin{math}K_m\end{math} was 25 mM.", "The fitted $K_m$ was 25 mM."),
    (r"$$E = m c^{2}$$", r"\[E=mc^2\]"),
    (r"\frac12", r"\frac{1}{2}"),
    ("Text.\n\\begin{itemize} \\item A \\end{itemize}", "\\begin{itemize}"),
])
def test_latex_equal_after_normalisation(document, text):
    assert contains_latex(document, text)


@pytest.mark.parametrize("document,text", [
    ("The fitted K_m was 25 mM.", "The fitted $K_m$ was 25 mM."),
    (r"The fitted $K_{mx}$ was 25 mM.", "The fitted $K_m$ was 25 mM."),
    (r"The fitted $K_m$ was 52 mM.", "The fitted $K_m$ was 25 mM."),
    (r"% The fitted $K_m$ was 25 mM.", "The fitted $K_m$ was 25 mM."),
])
def test_latex_different_after_normalisation(document, text):
    assert not contains_latex(document, text)


def test_canonical_math_ignores_spaces():
    assert canonical(r"K_{\mathrm{m}} = V / 2", math=True) == canonical(r"K_\mathrm{m}=V/2", math=True)


# --- parameters ------------------------------------------------------------------------

PARAMETERISED = {
    "id": "kalgebra/example", "app": "kalgebra",
    "instruction": "What is the greatest common divisor of {a} and {b}? Answer with the number.",
    "max_steps": 5,
    "parameters": {"a": {"int": [10, 99]}, "b": {"int": [10, 99], "differs_from": ["a"]},
                   "g": {"formula": "gcd(a,b)"}, "place": {"choices": [{"name": "Tokyo", "lat": 35.7}, {"name": "Lima",
                                                                                                       "lat": -12}]}},
    "setup": [{"step": "calculate", "args": {"expression": "here:={place.lat}"}}],
    "evaluate": [{"check": "answer_number", "args": {"value": "{g}"}},
                 {"check": "value_computed", "args": {"value": "{g}"}}],
    "oracle": ['type("gcd({a},{b})")', 'key("Return")', 'answer("{g}")'],
    "alternatives": [{"actions": ['type("gcd({b},{a})")', 'key("Return")', 'answer("{g}")'], "expect": "pass"},
                     {"actions": ['answer("{g}")'], "expect": "fail", "note": "answer alone"}],
}


def test_parameters_are_drawn_from_the_seed_and_substituted():
    task = Task.from_dict(PARAMETERISED)
    first, again, other = task.variant(3), task.variant(3), task.variant(4)
    assert first == again and first.values != other.values
    a, b, g = (first.values[k] for k in "abg")
    assert a != b and isinstance(g, int) and a % g == 0 and b % g == 0
    assert first.instruction == f"What is the greatest common divisor of {a} and {b}? Answer with the number."
    assert first.evaluate[0].args == {"value": g}          # a whole-string reference keeps its type
    assert first.oracle == (f'type("gcd({a},{b})")', 'key("Return")', f'answer("{g}")')
    assert first.setup[0].args["expression"] == f"here:={first.values['place']['lat']}"
    assert first.alternatives[0].actions[0] == f'type("gcd({b},{a})")'
    assert task.variant_count() == 90 * 90 * 2
    get_adapter("kalgebra").validate_task(first)


def test_a_task_without_parameters_is_its_own_variant():
    task = Task.from_dict({k: v for k, v in PARAMETERISED.items() if k not in ("parameters", "setup")}
                          | {"instruction": "A fixed question about two numbers."})
    assert task.variant(1) is task and task.variant_count() == 1


@pytest.mark.parametrize("change,field", [
    ({"parameters": {"a": {"int": [5, 1]}}}, "parameters/a"),
    ({"parameters": {"a": {"int": [1, 5], "choices": [1]}}}, "parameters/a"),
    ({"parameters": {"unused": {"choices": [1, 2]}}}, "parameters/unused"),
    ({"parameters": {"a": {"formula": "__import__('os')"}}}, "parameters/a"),
    ({"parameters": {"a": {"int": [1, 1]}, "b": {"int": [1, 1], "differs_from": ["a"]}}}, "parameters/b"),
    ({"alternatives": [{"actions": ['type("x")'], "expect": "pass"}]}, "alternatives/0/actions"),
    ({"alternatives": [{"actions": ["done()"], "expect": "maybe"}]}, "alternatives/0/expect"),
])
def test_broken_parameters_name_the_field(tmp_path, change, field):
    data = {**PARAMETERISED, **change}
    if "parameters" in change and "a" in change["parameters"] and "b" not in change["parameters"]:
        data = {**data, "instruction": "Compute {a} in KAlgebra please.", "evaluate": [{"check": "answer_number",
                "args": {"value": "{a}"}}], "oracle": ['answer("{a}")'], "setup": [], "alternatives": []}
    if "unused" in change.get("parameters", {}):
        data = {**data, "instruction": "A question without parameters."}
    folder = tmp_path / "kalgebra"
    folder.mkdir()
    (folder / "example.json").write_text(json.dumps(data))
    with pytest.raises(TaskError, match=f"field '{field}"):
        load_task_file(folder / "example.json")


# --- live answers are judged against the state at reset --------------------------------

class FakeClient:
    """Answers probes from a dict that a test changes between reset and evaluation."""

    def __init__(self, state):
        self.state = state

    def probe(self, name, args):
        return self.state[name]


def test_live_answer_truth_is_fixed_at_reset():
    adapter = get_adapter("stellarium")
    task = Task.from_dict({
        "id": "stellarium/example", "app": "stellarium", "instruction": "Is Mars above the horizon? yes or no.",
        "max_steps": 3, "evaluate": [{"check": "answer_above_horizon", "args": {"name": "Mars"}}],
        "oracle": ['answer("yes")']})
    client = FakeClient({"object_info": {"altitude": 20.0}})
    seen = adapter.read_at_reset(task, client)
    client.state["object_info"] = {"altitude": -20.0}        # the agent moved the clock: Mars has set
    assert adapter.evaluate(task, client, "Yes.", seen)[0]
    assert not adapter.evaluate(task, client, "no", seen)[0]


def test_a_reader_that_raises_leaves_its_check_failing_and_the_reset_going_on():
    adapter = get_adapter("stellarium")
    task = Task.from_dict({
        "id": "stellarium/example", "app": "stellarium", "instruction": "Is Mars above the horizon? yes or no.",
        "max_steps": 3, "evaluate": [{"check": "answer_above_horizon", "args": {"name": "Mars"}}],
        "oracle": ['answer("yes")']})
    client = FakeClient({"object_info": 5})   # a reply the reader cannot use
    seen = adapter.read_at_reset(task, client)
    assert seen == {0: None}
    client.state["object_info"] = {"altitude": 20.0}
    passed, results = adapter.evaluate(task, client, "yes", seen)
    assert not passed and results[0].detail


# --- the env draws the variant from the reset seed (on a FakeProvider: no desktop) ---------

def test_reset_seed_picks_the_variant_and_info_reports_it():
    from fakes import FakeProvider

    from sciboard_gym.env import SciBoardEnv

    provider = FakeProvider(probes={"variables": {}})
    env = SciBoardEnv(app="kalgebra", task="kalgebra/answer-gcd", provider=provider, screen_size=(64, 48))
    _, first = env.reset(seed=11)
    a, b, v = (first["parameters"][k] for k in "abv")
    assert f"of {a} and {b}?" in first["instruction"] and env.task.values == first["parameters"]
    assert env.reset(seed=11)[1]["parameters"] == first["parameters"]
    assert len({json.dumps(env.reset(seed=s)[1]["parameters"]) for s in range(6)}) > 1
    env.reset(seed=11)
    provider.probes["variables"] = {"ans": str(v)}               # computed in KAlgebra, then answered
    assert env.step(f'answer("{v}")')[1] == 1.0
    env.reset(seed=11)
    provider.probes["variables"] = {}                             # the answer alone
    assert env.step(f'answer("{v}")')[1] == 0.0
    env.close()


# --- free-text answers -----------------------------------------------------------------

@pytest.mark.parametrize("answer,ok", [("Eastham", True), ("eastham.", True), (" 'Eastham' ", True), ("“Eastham”", True),
                                       ("Eastham!", True), ("Eastham or Fernhill", False), ("Easthams", False)])
def test_answer_text_ignores_quotes_case_and_a_final_full_stop(answer, ok):
    task = Task.from_dict({"id": "kalgebra/t", "app": "kalgebra", "instruction": "Name the highest town, please.",
                           "max_steps": 2, "evaluate": [{"check": "answer_text", "args": {"text": "Eastham"}}],
                           "oracle": ['answer("Eastham")']})
    passed, _ = get_adapter("kalgebra").evaluate(task, FakeClient({}), answer)
    assert passed is ok


@pytest.mark.parametrize("answer,ok", [("DCAW", True), ("d-c-a-w", True), ("DCA W.", True), ("D, C, A, W", True),
                                       ("WACD", False), ("DCA", False)])
def test_sequence_answers_in_usual_notations(answer, ok):
    task = Task.from_dict({"id": "pymol/t", "app": "pymol", "instruction": "Read the sequence of pept, please.",
                           "max_steps": 2, "evaluate": [{"check": "answer_sequence", "args": {"selection": "pept"}}],
                           "oracle": ['answer("DCAW")']})
    passed, _ = get_adapter("pymol").evaluate(task, FakeClient({"sequence": "DCAW"}), answer)
    assert passed is ok


@pytest.mark.parametrize("latex,words", [
    (r"\textit{Arnica montana}", "arnica montana"), (r"{} Arnica  montana.", "arnica montana"),
    (r"Arnica~\emph{montana};", "arnica montana"), ("Hydrogen peroxide", "hydrogen peroxide"),
])
def test_list_items_compare_the_words_they_print(latex, words):
    from sciboard_gym.apps.latex import plain_words

    assert plain_words(latex) == words


@pytest.mark.parametrize("path,key", [("plot.png", "plot"), ("./plot.png", "plot"), ("plot", "plot"),
                                      ("figs/plot.pdf", "figs/plot"), ("./figs/plot", "figs/plot")])
def test_graphics_compare_without_extension_or_leading_dot(path, key):
    from sciboard_gym.apps.latex import graphic_key

    assert graphic_key(path) == key
