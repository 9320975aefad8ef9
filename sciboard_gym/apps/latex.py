"""A small, forgiving reader of LaTeX document structure (for TeXstudio's checks).

Not a TeX engine: it strips comments, reads brace groups, and finds the
commands and environments that tasks ask about (sections, tables, figures,
lists, citations, labels). Text is compared after :func:`canonical`, which
re-emits LaTeX parsed by pylatexenc in one normal form. Compilation itself is
judged by a real pdflatex run on the desktop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pylatexenc import latexwalker
from pylatexenc.latex2text import LatexNodes2Text

SECTION_LEVELS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
_REF_COMMANDS = ("ref", "eqref", "pageref", "autoref", "cref", "Cref", "nameref")
_CITE_COMMANDS = ("cite", "citep", "citet", "nocite", "parencite", "textcite", "autocite")


def normalise(text: str) -> str:
    """Collapse whitespace (``~`` counts as a space) and trim."""
    return re.sub(r"\s+", " ", text.replace("~", " ")).strip()


def fold(text: str) -> str:
    """:func:`normalise` and lower-case, for lenient comparisons of titles and captions."""
    return normalise(text).casefold()


def plain_words(text: str) -> str:
    """The words LaTeX ``text`` prints (pylatexenc's text rendering), :func:`fold`-ed, without a final ``.``,
    ``,`` or ``;``: ``\\textit{Arnica montana}.`` and ``{} arnica  montana`` are both ``arnica montana``."""
    return fold(LatexNodes2Text().latex_to_text(text)).rstrip(".,;").strip()


def graphic_key(path: str) -> str:
    """An ``\\includegraphics`` file without a leading ``./`` and without its extension."""
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    head, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{head}/{stem}" if head else stem


MATH_ENVIRONMENTS = ("equation", "equation*", "align", "align*", "gather", "gather*", "multline", "multline*",
                     "displaymath", "math", "eqnarray", "eqnarray*")


def canonical(text: str, math: bool = False) -> str:
    """LaTeX in one normal form, so that equal source compares equal as text.

    Parsed with pylatexenc, then re-emitted: inline maths ``$..$``, ``\\(..\\)`` and
    ``\\begin{math}`` all become ``$..$`` and display maths ``\\[..\\]``/``$$..$$`` become
    ``\\[..\\]``; comments are dropped; ``~`` is a space; runs of whitespace are one space;
    whitespace inside maths is dropped (except to end a command name); braces around a
    single token in maths (``K_{m}``) and around plain text (``{mM}``) are dropped;
    command arguments are always braced (``\\frac12`` = ``\\frac{1}{2}``).
    """
    nodes = latexwalker.LatexWalker(text, tolerant_parsing=True).get_latex_nodes()[0]
    return re.sub(r"\s+", " ", _emit(nodes, math)).strip()


def _emit(nodes: Any, math: bool) -> str:
    return "".join(_emit_node(node, math) for node in nodes or () if node is not None)


def _emit_node(node: Any, math: bool) -> str:
    if node.isNodeType(latexwalker.LatexCharsNode):
        return re.sub(r"\s+", "", node.chars) if math else node.chars
    if node.isNodeType(latexwalker.LatexCommentNode):
        return ""
    if node.isNodeType(latexwalker.LatexSpecialsNode):
        return ("" if math else " ") if node.specials_chars == "~" else node.specials_chars
    if node.isNodeType(latexwalker.LatexMathNode):
        inner = _emit(node.nodelist, True).strip()
        return f"\\[{inner}\\]" if node.displaytype == "display" else f"${inner}$"
    if node.isNodeType(latexwalker.LatexGroupNode):
        inner = _emit(node.nodelist, math)
        if node.delimiters[0] != "{":
            return node.delimiters[0] + inner + node.delimiters[1]
        parts = [n for n in node.nodelist or () if n is not None and not (
            n.isNodeType(latexwalker.LatexCharsNode) and not n.chars.strip())]
        single = len(inner.strip()) == 1 or (len(parts) == 1 and parts[0].isNodeType(latexwalker.LatexMacroNode))
        if (math and single) or (not math and "\\" not in inner and "{" not in inner) or not inner:
            return inner.strip() if math else inner
        return "{" + inner + "}"
    if node.isNodeType(latexwalker.LatexMacroNode):
        out = "\\" + node.macroname
        args = [arg for arg in (node.nodeargd.argnlist if node.nodeargd else []) if arg is not None]
        for arg in args:
            if arg.isNodeType(latexwalker.LatexGroupNode) and arg.delimiters[0] == "[":
                out += "[" + _emit(arg.nodelist, math) + "]"
            elif arg.isNodeType(latexwalker.LatexGroupNode):
                out += "{" + _emit(arg.nodelist, math) + "}"
            elif arg.isNodeType(latexwalker.LatexCharsNode) and arg.chars in ("*",):
                out += "*"
            else:
                out += "{" + _emit_node(arg, math) + "}"
        return out + (" " if not args and node.macroname[-1:].isalpha() else "")
    if node.isNodeType(latexwalker.LatexEnvironmentNode):
        name = node.environmentname
        if name == "math":
            return "$" + _emit(node.nodelist, True).strip() + "$"
        if name == "displaymath":
            return "\\[" + _emit(node.nodelist, True).strip() + "\\]"
        body = _emit(node.nodelist, math or name in MATH_ENVIRONMENTS)
        return f"\\begin{{{name}}}{body}\\end{{{name}}}"
    return node.latex_verbatim()


def contains_latex(haystack: str, needle: str) -> bool:
    """Whether ``needle`` occurs in ``haystack`` once both are in :func:`canonical` form, or as
    whitespace-normalised source (for a fragment that is not complete LaTeX, like ``\\begin{itemize}``)."""
    return canonical(needle) in canonical(haystack) or normalise(needle) in normalise(strip_comments(haystack))


def strip_comments(text: str) -> str:
    """Remove ``%`` comments (an escaped ``\\%`` stays)."""
    out = []
    for line in text.splitlines():
        cut = len(line)
        for match in re.finditer("%", line):
            backslashes = len(line[:match.start()]) - len(line[:match.start()].rstrip("\\"))
            if backslashes % 2 == 0:
                cut = match.start()
                break
        out.append(line[:cut])
    return "\n".join(out)


def read_group(text: str, pos: int, open_: str = "{", close: str = "}") -> tuple[str, int] | None:
    """The balanced group starting at ``text[pos] == open_``: (content, index after it), else None."""
    if pos >= len(text) or text[pos] != open_:
        return None
    depth, i = 0, pos
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == open_:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return text[pos + 1:i], i + 1
        i += 1
    return None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n":
        pos += 1
    return pos


@dataclass(frozen=True)
class Command:
    """One use of a command: where it starts and ends, its optional and mandatory arguments."""

    name: str
    start: int
    end: int
    optional: str | None
    args: tuple[str, ...]
    starred: bool = False


def commands(text: str, name: str, nargs: int = 1) -> list[Command]:
    """Every ``\\name[opt]{arg}...`` with ``nargs`` mandatory arguments (uses with missing groups are skipped)."""
    found = []
    for match in re.finditer(r"\\" + re.escape(name) + r"(?![A-Za-z@])(\*?)", text):
        pos = _skip_space(text, match.end())
        optional = None
        if pos < len(text) and text[pos] == "[":
            group = read_group(text, pos, "[", "]")
            if group is None:
                continue
            optional, pos = group
        args = []
        for _ in range(nargs):
            group = read_group(text, _skip_space(text, pos))
            if group is None:
                break
            args.append(group[0])
            pos = group[1]
        if len(args) == nargs:
            found.append(Command(name, match.start(), pos, optional, tuple(args), bool(match.group(1))))
    return found


@dataclass(frozen=True)
class Environment:
    name: str
    start: int
    end: int
    body: str
    options: str | None


def environments(text: str, name: str) -> list[Environment]:
    """Every complete ``\\begin{name} ... \\end{name}`` (nesting of the same name respected)."""
    pattern = re.compile(r"\\(begin|end)\s*\{" + re.escape(name) + r"\}")
    found, stack = [], []
    for match in pattern.finditer(text):
        if match.group(1) == "begin":
            stack.append(match)
        elif stack:
            begin = stack.pop()
            body_start = begin.end()
            options = None
            pos = _skip_space(text, body_start)
            if pos < len(text) and text[pos] == "[":
                group = read_group(text, pos, "[", "]")
                if group is not None:
                    options, body_start = group
            found.append(Environment(name, begin.start(), match.end(), text[body_start:match.start()], options))
    return sorted(found, key=lambda env: env.start)


class Document:
    """The structure of one LaTeX source, comments removed."""

    def __init__(self, source: str):
        self.source = source
        self.text = strip_comments(source)
        begin = re.search(r"\\begin\s*\{document\}", self.text)
        end = re.search(r"\\end\s*\{document\}", self.text)
        self.preamble = self.text[:begin.start()] if begin else self.text
        body_start = begin.end() if begin else 0
        body_end = end.start() if end and end.start() >= body_start else len(self.text)
        self.body = self.text[body_start:body_end]

    # --- preamble --------------------------------------------------------------
    def document_class(self) -> tuple[str, list[str]] | None:
        found = commands(self.preamble, "documentclass")
        if not found:
            return None
        return found[0].args[0].strip(), _split_list(found[0].optional or "")

    def packages(self) -> dict[str, list[str]]:
        loaded: dict[str, list[str]] = {}
        for cmd in commands(self.preamble, "usepackage") + commands(self.preamble, "RequirePackage"):
            for package in _split_list(cmd.args[0]):
                loaded[package] = _split_list(cmd.optional or "")
        return loaded

    def argument(self, name: str) -> str | None:
        """The argument of the last ``\\name{...}`` anywhere (e.g. title, author)."""
        found = commands(self.text, name)
        return found[-1].args[0] if found else None

    # --- body ------------------------------------------------------------------
    def sections(self) -> list[dict]:
        """Headings in order: {level, title, starred, body, start, end}.

        A body runs to the next heading of the same or a higher level.
        """
        heads = []
        for level in SECTION_LEVELS:
            heads += [(cmd, level) for cmd in commands(self.body, level)]
        heads.sort(key=lambda item: item[0].start)
        result = []
        for index, (cmd, level) in enumerate(heads):
            rank = SECTION_LEVELS.index(level)
            end = len(self.body)
            for later, later_level in heads[index + 1:]:
                if SECTION_LEVELS.index(later_level) <= rank:
                    end = later.start
                    break
            result.append({"level": level, "title": normalise(cmd.args[0]), "starred": cmd.starred,
                           "body": self.body[cmd.end:end], "start": cmd.start, "end": end})
        return result

    def labels(self) -> list[str]:
        return [c.args[0].strip() for c in commands(self.body, "label")]

    def references(self) -> list[str]:
        keys = []
        for name in _REF_COMMANDS:
            for cmd in commands(self.body, name):
                keys += _split_list(cmd.args[0])
        return keys

    def citations(self, text: str | None = None) -> list[str]:
        keys = []
        for name in _CITE_COMMANDS:
            for cmd in _cite_commands(self.body if text is None else text, name):
                keys += _split_list(cmd)
        return keys

    def bibitems(self) -> list[str]:
        return [match for match in re.findall(r"\\bibitem\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}", self.body)]

    def environments(self, name: str) -> list[Environment]:
        return environments(self.body, name)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cite_commands(text: str, name: str) -> list[str]:
    """The key lists of ``\\name[..][..]{keys}`` (natbib/biblatex allow two optional arguments)."""
    keys = []
    for match in re.finditer(r"\\" + name + r"(?![A-Za-z@])\*?", text):
        pos = _skip_space(text, match.end())
        for _ in range(2):
            if pos < len(text) and text[pos] == "[":
                group = read_group(text, pos, "[", "]")
                if group is None:
                    break
                pos = _skip_space(text, group[1])
        group = read_group(text, pos)
        if group is not None:
            keys.append(group[0])
    return keys


def list_items(body: str) -> list[str]:
    """The ``\\item`` texts of one list body, ignoring items of nested lists."""
    items: list[str] = []
    depth, current = 0, None
    for match in re.finditer(r"\\begin\s*\{[^}]*\}|\\end\s*\{[^}]*\}|\\item(?![A-Za-z@])(?:\s*\[[^\]]*\])?", body):
        token = match.group(0)
        if token.startswith("\\begin"):
            depth += 1
        elif token.startswith("\\end"):
            depth -= 1
        elif depth == 0:
            if current is not None:
                items.append(normalise(body[current:match.start()]))
            current = match.end()
    if current is not None:
        items.append(normalise(body[current:]))
    return items


def tabular_shape(body: str) -> tuple[int, list[list[str]]] | None:
    """(column count, rows of cell texts) of the first tabular in ``body``; rules are dropped."""
    match = re.search(r"\\begin\s*\{tabular\*?\}", body)
    if not match:
        return None
    envs = [env for env in environments(body, "tabular") if env.start == match.start()]
    if not envs:
        return None
    inner = envs[0].body
    pos = _skip_space(inner, 0)
    if inner[pos:pos + 1] == "[":
        group = read_group(inner, pos, "[", "]")
        pos = _skip_space(inner, group[1]) if group else pos
    spec = read_group(inner, pos)
    if spec is None:
        return None
    columns = count_columns(spec[0])
    content = re.sub(r"\\(hline|toprule|midrule|bottomrule)(?![A-Za-z])|\\cline\s*\{[^}]*\}", " ", inner[spec[1]:])
    rows = []
    for row in re.split(r"\\\\(?:\s*\[[^\]]*\])?", content):
        if normalise(row):
            rows.append([normalise(cell) for cell in row.split("&")])
    return columns, rows


def count_columns(spec: str) -> int:
    """Columns of a tabular spec: ``l``, ``c``, ``r``, ``p{..}``, ``m{..}``, ``b{..}``, ``X``; ``*{n}{..}`` expanded."""
    spec = re.sub(r"[@!><]\s*\{[^{}]*\}|[@!><]", "", spec)
    count, pos = 0, 0
    while pos < len(spec):
        char = spec[pos]
        if char == "*":
            times = read_group(spec, pos + 1)
            if times is None:
                break
            inner = read_group(spec, times[1])
            if inner is None:
                break
            count += int(times[0]) * count_columns(inner[0]) if times[0].strip().isdigit() else 0
            pos = inner[1]
            continue
        if char in "lcrX":
            count += 1
        elif char in "pmb":
            count += 1
            group = read_group(spec, pos + 1)
            if group is not None:
                pos = group[1]
                continue
        pos += 1
    return count
