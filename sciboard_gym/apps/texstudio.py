"""TeXstudio (LaTeX editor): the Document Writing domain.

State is the document as saved on disk (:mod:`sciboard_guest.apps.texstudio`):
checks read its structure with :mod:`sciboard_gym.apps.latex` and judge
"it compiles" by a real pdflatex run of a temporary copy on the desktop.
Unsaved edits in the editor do not count.
"""

from __future__ import annotations

import re
from typing import Any

from sciboard_gym.apps.base import AppAdapter, CheckContext, CheckFailed
from sciboard_gym.apps.latex import (
    SECTION_LEVELS,
    Document,
    canonical,
    commands,
    contains_latex,
    fold,
    graphic_key,
    list_items,
    normalise,
    plain_words,
    tabular_shape,
)

ADAPTER = AppAdapter(name="texstudio", env_id="SciBoard-TeXstudio-v0", title="TeXstudio", domain="document writing")

_MATH_ENVIRONMENTS = ("equation", "equation*", "align", "align*", "gather", "gather*", "multline", "displaymath")


def _document(ctx: CheckContext) -> Document:
    """The saved document; the check fails (``CheckFailed``) when it is not on disk."""
    saved = ctx.probe("document")
    if not saved["exists"]:
        raise CheckFailed(f"the document {saved['name']} is not on disk")
    return Document(saved["text"])


def _level(level: str) -> None:
    if level not in SECTION_LEVELS:
        raise ValueError(f"level must be one of {SECTION_LEVELS}")


# --- compilation -------------------------------------------------------------------

@ADAPTER.check("compiles")
def compiles(ctx: CheckContext) -> tuple[bool, str]:
    """The saved document compiles with pdflatex without errors and yields a PDF."""
    result = ctx.probe("compile")
    if result["ok"]:
        return True, f"compiled to {result['pages']} page(s) ({' + '.join(result['runs'])})"
    return False, f"compilation failed: {'; '.join(result['errors']) or 'unknown error'}"


@ADAPTER.check("references_resolved")
def references_resolved(ctx: CheckContext) -> tuple[bool, str]:
    """After compiling, no reference or citation is undefined."""
    result = ctx.probe("compile")
    if not result["ok"]:
        return False, "the document does not compile"
    refs, cites = result["undefined_references"], result["undefined_citations"]
    ok = not refs and not cites
    return ok, "all references and citations resolved" if ok else f"undefined references {refs}, citations {cites}"


@ADAPTER.check("built_pdf")
def built_pdf(ctx: CheckContext, min_pages: int = 1) -> tuple[bool, str]:
    """TeXstudio's own build left a PDF newer than the saved source, with at least ``min_pages`` pages."""
    out = ctx.probe("build_output")
    if not out["pdf"]:
        return False, "no PDF was built next to the document"
    if not out["fresh"]:
        return False, "the PDF is older than the saved document"
    pages = out["pages"] or 0
    return pages >= min_pages, f"PDF with {out['pages']} page(s), expected at least {min_pages}"


# --- text ----------------------------------------------------------------------------

@ADAPTER.check("contains")
def contains(ctx: CheckContext, text: str) -> tuple[bool, str]:
    """The document body contains ``text``, both compared in :func:`~sciboard_gym.apps.latex.canonical`
    form (``\\(K_m\\)`` = ``$K_{m}$``, ``~`` = space, comments and extra whitespace ignored)."""
    doc = _document(ctx)
    hit = contains_latex(doc.body, text)
    return hit, f"{text!r} {'is' if hit else 'is not'} in the document body"


@ADAPTER.check("lacks")
def lacks(ctx: CheckContext, text: str) -> tuple[bool, str]:
    """The document no longer contains ``text`` anywhere (compared in canonical LaTeX form)."""
    doc = _document(ctx)
    hit = contains_latex(doc.text, text)
    return not hit, f"{text!r} {'is still' if hit else 'is not'} in the document"


@ADAPTER.check("emphasized")
def emphasized(ctx: CheckContext, text: str) -> tuple[bool, str]:
    """``text`` is set with \\emph or \\textit."""
    doc = _document(ctx)
    shown = [normalise(c.args[0]) for name in ("emph", "textit") for c in commands(doc.body, name)]
    return fold(text) in {fold(s) for s in shown}, f"emphasised texts {shown}, expected {text!r}"


@ADAPTER.check("footnote_contains")
def footnote_contains(ctx: CheckContext, text: str) -> tuple[bool, str]:
    """Some \\footnote contains ``text`` (case-insensitive, canonical LaTeX form)."""
    doc = _document(ctx)
    notes = [canonical(c.args[0]) for c in commands(doc.body, "footnote")]
    wanted = canonical(text).casefold()
    return any(wanted in n.casefold() for n in notes), f"footnotes {notes}, expected one containing {text!r}"


@ADAPTER.check("command_used")
def command_used(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The argument-less command ``\\name`` (e.g. tableofcontents) appears in the body."""
    doc = _document(ctx)
    count = len(commands(doc.body, name, nargs=0))
    return count > 0, f"\\{name} used {count} time(s)"


# --- preamble ------------------------------------------------------------------------

@ADAPTER.check("document_class")
def document_class(ctx: CheckContext, name: str, options: list | None = None) -> tuple[bool, str]:
    """The class is ``name`` and its options include all of ``options``."""
    doc = _document(ctx)
    found = doc.document_class()
    if found is None:
        return False, "no \\documentclass"
    have, opts = found
    ok = have == name and all(str(o) in opts for o in options or [])
    return ok, f"class {have} [{', '.join(opts)}], expected {name} with {options or []}"


@ADAPTER.check("package_loaded")
def package_loaded(ctx: CheckContext, name: str) -> tuple[bool, str]:
    """The preamble loads package ``name``."""
    doc = _document(ctx)
    loaded = sorted(doc.packages())
    return name in loaded, f"packages {loaded}, expected {name}"


@ADAPTER.check("metadata")
def metadata(ctx: CheckContext, field: str, text: str, exact: bool = True) -> tuple[bool, str]:
    """\\title / \\author / \\date is ``text`` (or contains it with ``exact=false``); case-insensitive."""
    if field not in ("title", "author", "date"):
        raise ValueError("field must be title, author or date")
    doc = _document(ctx)
    value = doc.argument(field)
    if value is None:
        return False, f"no \\{field}"
    shown = ", ".join(normalise(part) for part in re.split(r"\\and(?![A-Za-z])", value))
    ok = fold(shown) == fold(text) if exact else fold(text) in fold(shown)
    return ok, f"{field} {shown!r}, expected {'' if exact else 'to contain '}{text!r}"


# --- structure -----------------------------------------------------------------------

@ADAPTER.check("sections_are")
def sections_are(ctx: CheckContext, titles: list, level: str = "section") -> tuple[bool, str]:
    """The ``level`` headings are exactly ``titles``, in order (case-insensitive)."""
    _level(level)
    doc = _document(ctx)
    shown = [s["title"] for s in doc.sections() if s["level"] == level]
    return [fold(t) for t in shown] == [fold(str(t)) for t in titles], f"{level}s {shown}, expected {titles}"


@ADAPTER.check("section_exists")
def section_exists(ctx: CheckContext, title: str, level: str = "section", parent: str | None = None) -> tuple[bool, str]:
    """A ``level`` heading ``title`` exists (inside the section ``parent`` when given)."""
    _level(level)
    doc = _document(ctx)
    sections = doc.sections()
    hits = [s for s in sections if s["level"] == level and fold(s["title"]) == fold(title)]
    if parent is not None:
        owners = [s for s in sections if fold(s["title"]) == fold(parent)]
        hits = [h for h in hits if any(o["start"] < h["start"] < o["end"] for o in owners)]
    shown = [(s["level"], s["title"]) for s in sections]
    where = f" under {parent!r}" if parent else ""
    return bool(hits), f"headings {shown}, expected {level} {title!r}{where}"


@ADAPTER.check("section_contains")
def section_contains(ctx: CheckContext, title: str, text: str) -> tuple[bool, str]:
    """The body of the section ``title`` contains ``text``, both in canonical LaTeX form (inline
    maths as ``$..$`` or ``\\(..\\)``, optional braces, whitespace and comments do not matter)."""
    doc = _document(ctx)
    for section in doc.sections():
        if fold(section["title"]) == fold(title):
            hit = contains_latex(section["body"], text)
            return hit, f"{text!r} {'is' if hit else 'is not'} in section {title!r}"
    return False, f"there is no section {title!r}"


@ADAPTER.check("environment_contains")
def environment_contains(ctx: CheckContext, name: str, text: str) -> tuple[bool, str]:
    """Some ``name`` environment (e.g. abstract) contains ``text`` (case-insensitive, canonical LaTeX form)."""
    doc = _document(ctx)
    bodies = [canonical(env.body) for env in doc.environments(name)]
    if not bodies:
        return False, f"there is no {name} environment"
    wanted = canonical(text).casefold()
    return any(wanted in b.casefold() for b in bodies), f"{name} environments {bodies}, expected {text!r}"


@ADAPTER.check("list_items")
def list_items_check(ctx: CheckContext, items: list, kind: str = "itemize") -> tuple[bool, str]:
    """Some ``kind`` list (itemize/enumerate/description) has exactly ``items``, in order, comparing the words
    each item prints (case, formatting such as ``\\textit`` and a final full stop do not matter)."""
    if kind not in ("itemize", "enumerate", "description"):
        raise ValueError("kind must be itemize, enumerate or description")
    doc = _document(ctx)
    lists = [list_items(env.body) for env in doc.environments(kind)]
    wanted = [plain_words(str(i)) for i in items]
    ok = any([plain_words(i) for i in found] == wanted for found in lists)
    return ok, f"{kind} lists {lists}, expected {items}"


@ADAPTER.check("table")
def table(ctx: CheckContext, caption: str, label: str | None = None, columns: int | None = None,
          rows: list | None = None) -> tuple[bool, str]:
    """A table float whose caption contains ``caption``, with ``label``, a tabular of ``columns``
    columns, and ``rows`` (lists of cell texts, header included) among its rows."""
    doc = _document(ctx)
    seen = []
    for env in doc.environments("table"):
        captions = [normalise(c.args[0]) for c in commands(env.body, "caption")]
        labels = [c.args[0].strip() for c in commands(env.body, "label")]
        shape = tabular_shape(env.body)
        seen.append({"captions": captions, "labels": labels, "columns": shape[0] if shape else None,
                     "rows": shape[1] if shape else []})
        if not any(fold(caption) in fold(c) for c in captions):
            continue
        if label is not None and label not in labels:
            continue
        if shape is None or (columns is not None and shape[0] != columns):
            continue
        have = [[fold(cell) for cell in row] for row in shape[1]]
        if all([fold(str(cell)) for cell in row] in have for row in rows or []):
            return True, f"table {captions} with {shape[0]} columns and {len(shape[1])} rows"
    return False, f"tables {seen}, expected caption {caption!r}, label {label}, {columns} columns, rows {rows}"


@ADAPTER.check("figure")
def figure(ctx: CheckContext, caption: str, graphic: str, label: str | None = None) -> tuple[bool, str]:
    """A figure float that includes ``graphic`` (extension and a leading ``./`` optional), with a caption
    containing ``caption``."""
    doc = _document(ctx)
    seen = []
    for env in doc.environments("figure"):
        captions = [normalise(c.args[0]) for c in commands(env.body, "caption")]
        labels = [c.args[0].strip() for c in commands(env.body, "label")]
        graphics = [c.args[0].strip() for c in commands(env.body, "includegraphics")]
        seen.append({"captions": captions, "labels": labels, "graphics": graphics})
        if (any(fold(caption) in fold(c) for c in captions)
                and any(graphic_key(g) == graphic_key(graphic) for g in graphics)
                and (label is None or label in labels)):
            return True, f"figure {captions} showing {graphics}"
    return False, f"figures {seen}, expected caption {caption!r} showing {graphic!r} labelled {label}"


@ADAPTER.check("equation")
def equation(ctx: CheckContext, contains: str, label: str | None = None) -> tuple[bool, str]:
    """A displayed equation containing the maths ``contains``, labelled ``label`` when given.

    Both sides are compared as canonical maths: spaces, braces around one token
    (``c^{2}`` = ``c^2``) and argument bracing (``\\frac12`` = ``\\frac{1}{2}``) do not matter.
    """
    doc = _document(ctx)
    seen = []
    wanted = canonical(contains, math=True)
    for name in _MATH_ENVIRONMENTS:
        for env in doc.environments(name):
            labels = [c.args[0].strip() for c in commands(env.body, "label")]
            seen.append({"environment": name, "body": normalise(env.body)})
            if wanted in canonical(env.body, math=True) and (label is None or label in labels):
                return True, f"{name} environment {normalise(env.body)!r}"
    return False, f"equations {seen}, expected one containing {contains!r} labelled {label}"


@ADAPTER.check("label_referenced")
def label_referenced(ctx: CheckContext, label: str) -> tuple[bool, str]:
    """\\label{label} is defined and referred to by a \\ref-like command."""
    doc = _document(ctx)
    defined, used = label in doc.labels(), label in doc.references()
    return defined and used, f"label {label!r} defined: {defined}, referenced: {used}"


@ADAPTER.check("cites")
def cites(ctx: CheckContext, key: str, section: str | None = None) -> tuple[bool, str]:
    """The body (or the section ``section``) cites ``key``."""
    doc = _document(ctx)
    text = None
    if section is not None:
        bodies = [s["body"] for s in doc.sections() if fold(s["title"]) == fold(section)]
        if not bodies:
            return False, f"there is no section {section!r}"
        text = bodies[0]
    keys = doc.citations(text)
    where = f"section {section!r}" if section else "the document"
    return key in keys, f"{where} cites {keys}, expected {key!r}"


@ADAPTER.check("bibliography_has")
def bibliography_has(ctx: CheckContext, key: str) -> tuple[bool, str]:
    """The reference list has an entry ``key`` (a \\bibitem, or an entry BibTeX wrote when compiling)."""
    doc = _document(ctx)
    items = doc.bibitems()
    if key in items:
        return True, f"\\bibitem{{{key}}} is in the document"
    built: list[Any] = ctx.probe("compile")["bibliography"]
    return key in built, f"bibliography entries {items + built}, expected {key!r}"
