"""TeXstudio env: the LaTeX structure reader, log parsing, the real pdflatex compile, and the checks.

The live episodes (every oracle succeeds, an immediate done() fails) run in
tests/test_task_oracles.py; here the pure logic is tested, with real pdflatex
runs where compiling is the point.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sciboard_guest.apps.texstudio import bbl_keys, changed_settings, compile_project, parse_log, status_differences
from sciboard_guest.apps.texstudio_documents import PROJECTS
from sciboard_gym.apps import texstudio as checks
from sciboard_gym.apps.latex import Document, count_columns, list_items, read_group, strip_comments, tabular_shape
from sciboard_gym.tasks import Task, load_app_tasks

needs_latex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")

PAPER = r"""\documentclass[11pt,twocolumn]{article}
\usepackage[utf8]{inputenc}
\usepackage{graphicx,amsmath}
\title{A Study \and More}
\author{Ada Lovelace \and Alan Turing}
\begin{document}
\maketitle
\tableofcontents
\section{Intro}\label{sec:intro}
Text with \emph{stress} and a note\footnote{Small print.} % \section{Commented}
and 50\% of it cites~\cite[p.~3]{knuth84,lamport94}.
\subsection{Detail}
See Section~\ref{sec:intro}.
\begin{itemize}
\item First \begin{enumerate}\item nested\end{enumerate}
\item Second
\end{itemize}
\section*{Results}
\begin{table}[h]
\begin{tabular}{|l|r@{}c|}
\hline
Name & Value & X \\
\hline
a & 1 & y \\ b & 2 & z \\[2pt]
\end{tabular}
\caption{Some values}\label{tab:v}
\end{table}
\begin{figure}\includegraphics[width=3cm]{plot}\caption{A plot}\label{fig:p}\end{figure}
\begin{equation}E = m c^2\label{eq:e}\end{equation}
\begin{thebibliography}{9}\bibitem{knuth84} Knuth. \bibitem[L94]{lamport94} Lamport.\end{thebibliography}
\end{document}
"""


# --- the LaTeX reader ---------------------------------------------------------------------

def test_comments_are_removed_but_escaped_percent_stays():
    assert strip_comments(r"50\% done % gone") == r"50\% done "
    assert strip_comments("a\\\\% gone") == "a\\\\"


def test_read_group_balances_braces_and_skips_escapes():
    assert read_group(r"{a{b}\}c}rest", 0) == (r"a{b}\}c", 9)
    assert read_group("{open", 0) is None
    assert read_group("x{}", 0) is None


def test_document_structure():
    doc = Document(PAPER)
    assert doc.document_class() == ("article", ["11pt", "twocolumn"])
    assert set(doc.packages()) == {"inputenc", "graphicx", "amsmath"}
    titles = [(s["level"], s["title"], s["starred"]) for s in doc.sections()]
    assert titles == [("section", "Intro", False), ("subsection", "Detail", False), ("section", "Results", True)]
    intro = doc.sections()[0]
    assert "See Section" in intro["body"] and "Some values" not in intro["body"]
    assert doc.labels() == ["sec:intro", "tab:v", "fig:p", "eq:e"]
    assert doc.references() == ["sec:intro"]
    assert doc.citations() == ["knuth84", "lamport94"]
    assert doc.bibitems() == ["knuth84", "lamport94"]


def test_lists_tables_and_columns():
    doc = Document(PAPER)
    (outer,) = [env for env in doc.environments("itemize")]
    assert list_items(outer.body) == [r"First \begin{enumerate}\item nested\end{enumerate}", "Second"]
    (table,) = doc.environments("table")
    assert tabular_shape(table.body) == (3, [["Name", "Value", "X"], ["a", "1", "y"], ["b", "2", "z"]])
    assert count_columns("p{3cm}*{2}{c}|X") == 4
    assert count_columns(">{\\bfseries}l@{\\,}r") == 2


# --- pdflatex logs and real compiles -------------------------------------------------------

def test_parse_log():
    log = ("./a.tex:12: Undefined control sequence.\n"
           "LaTeX Warning: Reference `fig:x' on page 1 undefined on input line 5.\n"
           "LaTeX Warning: Citation `k1' on page 1 undefined on input line 6.\n"
           "Output written on a.pdf (3 pages, 1234 bytes).\n")
    parsed = parse_log(log)
    assert parsed == {"errors": ["line 12: Undefined control sequence."], "undefined_references": ["fig:x"],
                      "undefined_citations": ["k1"], "pages": 3}
    assert bbl_keys(r"\bibitem{a1} x \bibitem[Lx]{b2} y") == ["a1", "b2"]


def _write(project: str, folder: Path) -> str:
    spec = PROJECTS[project]
    (folder / spec.main).write_text(spec.text)
    for name, text in spec.side_files.items():
        (folder / name).write_text(text)
    for name, make in spec.side_binaries.items():
        (folder / name).write_bytes(make())
    return spec.main


@needs_latex
@pytest.mark.parametrize("project,ok", [("lab_report", True), ("figure_ready", True), ("unclosed_brace", False),
                                        ("mismatched_list", False), ("figure_no_package", False)])
def test_seeded_projects_compile_as_intended(tmp_path, project, ok):
    result = compile_project(tmp_path, _write(project, tmp_path))
    assert result["ok"] is ok, result
    assert bool(result["errors"]) is not ok


@needs_latex
def test_bibtex_runs_when_the_document_asks_for_it(tmp_path):
    main = _write("bibtex_paper", tmp_path)
    text = (tmp_path / main).read_text().replace("inhibitors.", r"inhibitors~\cite{blake1965}.")
    (tmp_path / main).write_text(text.replace(r"\end{document}", "\\bibliographystyle{plain}\n\\bibliography{refs}\n"
                                                                  "\\end{document}"))
    result = compile_project(tmp_path, main)
    assert result["ok"] and result["runs"] == ["pdflatex", "bibtex", "pdflatex", "pdflatex"]
    assert result["bibliography"] == ["blake1965"] and result["undefined_citations"] == []


@needs_latex
def test_compile_is_sandboxed_and_bounded(tmp_path):
    marker = tmp_path / "escaped"
    (tmp_path / "x.tex").write_text(
        "\\documentclass{article}\\begin{document}\\immediate\\write18{touch " + str(marker) + "}"
        "\\input{/etc/hostname}\\end{document}")
    result = compile_project(tmp_path, "x.tex")
    assert not marker.exists()
    assert not result["ok"] and "/etc/hostname" in result["errors"][0]
    (tmp_path / "loop.tex").write_text(r"\documentclass{article}\begin{document}\def\x{\x}\x\end{document}")
    looped = compile_project(tmp_path, "loop.tex", timeout=2.0)
    assert looped["timed_out"] and not looped["ok"]
    with pytest.raises(ValueError):
        compile_project(tmp_path, "../x.tex")


# --- checks on a fake probe context ----------------------------------------------------------

@dataclass
class FakeCheckContext:
    """Stands in for CheckContext: canned probe values, no desktop."""

    text: str
    compiled: dict[str, Any] = field(default_factory=lambda: {"ok": True, "errors": [], "pages": 1, "runs": [],
                                                               "undefined_references": [], "undefined_citations": [],
                                                               "bibliography": []})
    answer: str | None = None

    def probe(self, name: str, **args: Any) -> Any:
        if name == "document":
            return {"name": "paper.tex", "exists": True, "text": self.text}
        if name == "compile":
            return self.compiled
        raise KeyError(name)


@pytest.mark.parametrize("check,args,expected", [
    ("sections_are", {"titles": ["intro", "RESULTS"]}, True),
    ("sections_are", {"titles": ["Intro"]}, False),
    ("section_exists", {"title": "Detail", "level": "subsection", "parent": "Intro"}, True),
    ("section_exists", {"title": "Detail", "level": "subsection", "parent": "Results"}, False),
    ("section_contains", {"title": "Intro", "text": "Text with \\emph{stress}"}, True),
    ("contains", {"text": "Commented"}, False),
    ("lacks", {"text": "Commented"}, True),
    ("document_class", {"name": "article", "options": ["twocolumn"]}, True),
    ("document_class", {"name": "report"}, False),
    ("package_loaded", {"name": "amsmath"}, True),
    ("metadata", {"field": "author", "text": "Ada Lovelace, Alan Turing"}, True),
    ("metadata", {"field": "title", "text": "study", "exact": False}, True),
    ("emphasized", {"text": "Stress"}, True),
    ("footnote_contains", {"text": "small print"}, True),
    ("command_used", {"name": "tableofcontents"}, True),
    ("command_used", {"name": "listoffigures"}, False),
    ("list_items", {"items": ["nested"], "kind": "enumerate"}, True),
    ("table", {"caption": "values", "label": "tab:v", "columns": 3, "rows": [["b", "2", "z"]]}, True),
    ("table", {"caption": "values", "columns": 2}, False),
    ("figure", {"caption": "a plot", "graphic": "plot.png", "label": "fig:p"}, True),
    ("figure", {"caption": "a plot", "graphic": "other.png"}, False),
    ("figure", {"caption": "a plot", "graphic": "./plot.pdf"}, True),
    ("equation", {"contains": "E=mc^2", "label": "eq:e"}, True),
    ("label_referenced", {"label": "sec:intro"}, True),
    ("label_referenced", {"label": "tab:v"}, False),
    ("cites", {"key": "lamport94", "section": "Intro"}, True),
    ("cites", {"key": "lamport94", "section": "Results"}, False),
    ("bibliography_has", {"key": "knuth84"}, True),
    ("bibliography_has", {"key": "nobody"}, False),
    ("environment_contains", {"name": "equation", "text": "m c^2"}, True),
])
def test_checks(check, args, expected):
    passed, detail = checks.ADAPTER.checks[check](FakeCheckContext(PAPER), **args)
    assert passed is expected, detail


class FakeGuestClient:
    """A guest whose document was never saved."""

    def probe(self, name: str, args: dict[str, Any]) -> Any:
        assert name == "document"
        return {"name": "paper.tex", "exists": False}


def test_checks_fail_with_a_clear_detail_when_the_document_is_missing():
    task = Task.from_dict({
        "id": "texstudio/x", "app": "texstudio", "instruction": "Write a paper about anything at all.",
        "max_steps": 3, "oracle": ["done()"],
        "evaluate": [{"check": "contains", "args": {"text": "x"}}, {"check": "package_loaded", "args": {"name": "y"}}],
    })
    success, results = checks.ADAPTER.evaluate(task, FakeGuestClient(), None)
    assert not success
    assert [(r.passed, r.detail) for r in results] == [(False, "the document paper.tex is not on disk")] * 2


def test_compile_checks_report_errors_and_unresolved_references():
    ctx = FakeCheckContext(PAPER)
    ctx.compiled = {**ctx.compiled, "undefined_references": ["fig:x"]}
    assert checks.compiles(ctx)[0] and not checks.references_resolved(ctx)[0]
    ctx.compiled = {**ctx.compiled, "ok": False, "errors": ["line 3: Undefined control sequence."]}
    passed, detail = checks.compiles(ctx)
    assert not passed and "Undefined control sequence" in detail


def test_every_task_starts_from_a_known_project():
    tasks = load_app_tasks("texstudio")
    assert len(tasks) >= 20
    for task in tasks:
        assert task.setup and task.setup[0].name == "open_project" and task.setup[0].args["project"] in PROJECTS


_LAUNCH_INI = b"""[General]
IniMode=true

[texmaker]
Editor\\Completion=false
Files\\Last%20Document=
Files\\Recent%20Files=@Invalid()
"""


def test_settings_compared_for_an_in_place_reset():
    assert changed_settings(_LAUNCH_INI, _LAUNCH_INI) == []
    # Opening a document writes the last document and the search panel's start values: not a change.
    opened = _LAUNCH_INI + b"Files\\Last%20Document=/home/paper/a.tex\nSearch\\Case%20Sensitive=false\n"
    assert changed_settings(_LAUNCH_INI, opened) == []
    # A changed option, a search setting that is not its start value, a recent file: changes.
    changed = _LAUNCH_INI.replace(b"Completion=false", b"Completion=true")
    assert changed_settings(_LAUNCH_INI, changed) == ["texmaker/Editor\\Completion"]
    searched = _LAUNCH_INI + b"Search\\Case%20Sensitive=true\n"
    assert changed_settings(_LAUNCH_INI, searched) == ["texmaker/Search\\Case%20Sensitive"]
    recent = _LAUNCH_INI.replace(b"Recent%20Files=@Invalid()", b"Recent%20Files=/home/paper/a.tex")
    assert changed_settings(_LAUNCH_INI, recent) == ["texmaker/Files\\Recent%20Files"]


def test_status_bar_may_differ_only_in_its_encoding_button():
    launch = [("label", ""), ("push button", "<none>"), ("push button", "Encoding"), ("label", "Ready")]
    assert status_differences(launch, [*launch[:2], ("push button", "UTF-8"), launch[3]]) == []
    assert status_differences(launch, [*launch[:3], ("label", "Compiling")]) == [
        "('label', 'Ready') -> ('label', 'Compiling')"]
    assert status_differences(launch, launch[:3]) == ["3 items instead of 4"]
