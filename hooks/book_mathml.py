"""Formulas on the book's site: LaTeX in notebook Markdown cells becomes MathML when the site is built.

Formulas are written as in Jupyter (``$...$`` inline, ``$$...$$`` display) and converted with latex2mathml:
browsers draw MathML themselves, so the pages need no MathJax and no CDN. Which dollars delimit formulas is
read from the notebook as nbconvert reads it (``\\$`` stays a dollar sign). A formula that does not convert
cleanly is reported, and the build fails naming the page and the formula (book_site.on_post_build).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path


class FormulaError(ValueError):
    """A formula that latex2mathml cannot convert, or converts into broken MathML."""


# Number of parts each MathML layout element takes: a missing TeX argument shows as a missing part.
_MATHML_PARTS = {"mfrac": 2, "msub": 2, "msup": 2, "mover": 2, "munder": 2, "mroot": 2, "msubsup": 3,
                 "munderover": 3}
# Where latex2mathml's MathML differs from TeX, fixed around it (each checked in Chromium):
# - \mathrm on a single letter loses its upright style (\mathrm{d} comes out italic): made \text.
_UPRIGHT_LETTER = re.compile(r"\\mathrm\s*\{\s*([A-Za-z])\s*\}")
# - \bigl( and \bigr) come out alike, as operators spaced like "+" ("| acc(x) |"), and \bigl\{ as a literal
#   "\{": each \big delimiter is swapped for a placeholder and drawn as TeX draws it.
_BIG = re.compile(r"\\(big|Big|bigg|Bigg)([lrm]?)(?![A-Za-z])\s*(\\[{}|]|\\[A-Za-z]+|[()\[\]|./<>])")
_BIG_SIZES = {"big": "1.2em", "Big": "1.623em", "bigg": "2.047em", "Bigg": "2.470em"}
_DELIMITERS = {"\\{": "{", "\\}": "}", "\\|": "\u2016", "\\vert": "|", "\\lvert": "|", "\\rvert": "|",
               "\\Vert": "\u2016", "\\lVert": "\u2016", "\\rVert": "\u2016", "\\langle": "\u27e8", "<": "\u27e8",
               "\\rangle": "\u27e9", ">": "\u27e9", "\\lfloor": "\u230a", "\\rfloor": "\u230b", "\\lceil": "\u2308",
               "\\rceil": "\u2309", "(": "(", ")": ")", "[": "[", "]": "]", "|": "|", "/": "/", ".": ""}
_BIG_PLACEHOLDER = re.compile(r"<mtext>BIGDELIM(\d+)</mtext>")
# - \operatorname{acc}, \max and \log come out as operators (<mo>acc</mo>), spaced like "+"; TeX sets them as
#   identifiers (a multi-letter <mi> is upright).
_WORD_OPERATOR = re.compile(r"<mo>([A-Za-z]{2,})</mo>")
# - "/" and "." are ordinary symbols in TeX, with no space around them ("1/2", "x."); capital Greek letters
#   are upright; \sim is a relation, not a tilde.
_SYMBOL_FIXES = {"<mo>&#x0002F;</mo>": '<mo lspace="0em" rspace="0em">&#x0002F;</mo>',
                 "<mo>&#x0002E;</mo>": '<mo lspace="0em" rspace="0em">&#x0002E;</mo>',
                 "<mi>&#x0007E;</mi>": "<mo>&#x0223C;</mo>"}
_CAPITAL_GREEK = re.compile(r"<mi>(&#x003(?:9[1-9A-F]|A[013-9]);)</mi>")


def _big_delimiter(size: str, kind: str, delimiter: str) -> str:
    """A \big-family delimiter as MathML: fixed height, opening (l), closing (r), relation (m) or ordinary."""
    if not delimiter:
        return '<mspace width="0.1em" />'  # \bigl. : TeX's null delimiter space
    form = {"l": ' fence="true" form="prefix"', "r": ' fence="true" form="postfix"', "m": ' form="infix"'}.get(kind, "")
    spacing = "" if kind == "m" else ' lspace="0em" rspace="0em"'
    return (f'<mo{form}{spacing} stretchy="true" symmetric="true" minsize="{size}" maxsize="{size}">'
            f"{html.escape(delimiter)}</mo>")


def latex_to_mathml(tex: str, display: bool = False) -> str:
    """One formula as MathML (display: a block of its own); FormulaError if it does not convert cleanly."""
    import xml.etree.ElementTree as ElementTree

    from latex2mathml.converter import convert

    bigs: list[str] = []

    def placeholder(match):
        if match.group(3) not in _DELIMITERS:
            return match.group(0)
        bigs.append(_big_delimiter(_BIG_SIZES[match.group(1)], match.group(2), _DELIMITERS[match.group(3)]))
        return f"\\text{{BIGDELIM{len(bigs) - 1}}}"

    source = _BIG.sub(placeholder, _UPRIGHT_LETTER.sub(r"\\text{\1}", tex))
    try:
        mathml = convert(source, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises its own exception types, and IndexError and the like
        raise FormulaError(f"latex2mathml cannot convert it: {type(error).__name__} {error}".rstrip()) from error
    mathml = _BIG_PLACEHOLDER.sub(lambda m: bigs[int(m.group(1))], mathml)
    mathml = _WORD_OPERATOR.sub(r"<mi>\1</mi>", mathml)
    mathml = _CAPITAL_GREEK.sub(r'<mi mathvariant="normal">\1</mi>', mathml)
    for wrong, right in _SYMBOL_FIXES.items():
        mathml = mathml.replace(wrong, right)
    try:
        root = ElementTree.fromstring(mathml)
    except ElementTree.ParseError as error:
        raise FormulaError(f"latex2mathml wrote malformed MathML ({error})") from error
    for element in root.iter():
        tag, text = element.tag.rsplit("}", 1)[-1], (element.text or "").strip()
        if "\\" in text or "BIGDELIM" in text:
            raise FormulaError(f"latex2mathml does not know {text!r}")
        if tag in ("mi", "mo", "mn") and text == "&":
            raise FormulaError("an alignment '&' outside an environment that aligns (latex2mathml handles "
                               "align, align*, split, cases and the matrices, not aligned)")
        if tag in _MATHML_PARTS and len(element) != _MATHML_PARTS[tag]:
            raise FormulaError(f"<{tag}> with {len(element)} parts instead of {_MATHML_PARTS[tag]} "
                               "(a missing argument, or a stray \\limits?)")
        if tag == "mo" and (len(element) or not (text or element.get("fence"))):
            raise FormulaError("an empty or nested operator (\\operatorname with spacing or a star, or \\mathop)")
    return mathml


def notebook_formulas(path) -> dict[str | None, list[tuple[bool, str]]]:
    """Each Markdown cell's formulas, (display, TeX) in order, by cell id, found as nbconvert finds them.

    nbconvert renders an escaped dollar (``\\$``) as a plain one, so the built page alone cannot tell it from
    a formula's delimiter: the hook converts only what this list names.
    """
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class Recorder(IPythonRenderer):
        def __init__(self):
            super().__init__(escape=False)
            self.found: list[tuple[bool, str]] = []

        def block_math(self, body):
            self.found.append((True, body))
            return super().block_math(body)

        def inline_math(self, body):
            self.found.append((False, body))
            return super().inline_math(body)

        def latex_environment(self, name, body):
            self.found.append((True, f"\\begin{{{name}}}{body}\\end{{{name}}}"))
            return super().latex_environment(name, body)

    formulas: dict[str | None, list[tuple[bool, str]]] = {}
    for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        recorder = Recorder()
        MarkdownWithMath(renderer=recorder).render(source)
        if recorder.found:
            formulas.setdefault(cell.get("id"), []).extend(recorder.found)
    return formulas


# Where nbconvert left a formula in a Markdown cell's HTML: $$...$$, \begin{env}...\end{env}, $...$.
_HTML_FORMULA = re.compile(r"(?<!\\)\$\$(?P<display>.*?)(?<!\\)\$\$"
                           r"|(?P<environment>\\begin\{(?P<name>[a-z]*\*?)\}.*?\\end\{(?P=name)\})"
                           r"|(?<![$\\])\$(?P<inline>.+?)(?<![$\\])\$", re.S)
_TAG = re.compile(r"<!--.*?-->|<(/?)([A-Za-z][\w-]*)\b[^>]*>", re.S)
_CELL_ID = re.compile(r'\bid="cell-id=([^"]+)"')
_VERBATIM = {"code", "pre", "kbd", "samp", "script", "style", "textarea", "math"}


def _mathml_in_text(text: str, expected: list[tuple[bool, str]], failures: list[tuple[str, str]]) -> str:
    """A text node with the expected formulas (consumed from the front of the list) as MathML."""
    out, position = [], 0
    while expected and (match := _HTML_FORMULA.search(text, position)):
        tex = html.unescape(next(group for group in match.group("display", "environment", "inline")
                                 if group is not None))
        display = match.group("inline") is None
        if (display, tex) != expected[0]:  # a literal dollar (\$ in the notebook), not a delimiter
            out.append(text[position:match.start() + 1])
            position = match.start() + 1
            continue
        expected.pop(0)
        try:
            mathml = latex_to_mathml(tex, display)
            markup = f'<span class="math-display">{mathml}</span>' if display else mathml
        except FormulaError as error:
            failures.append((tex, str(error)))
            markup = f'<code class="math-error">{html.escape(match.group(0), quote=False)}</code>'
        out.append(text[position:match.start()] + markup)
        position = match.end()
    return "".join(out) + text[position:]


def formulas_to_mathml(content: str, formulas: dict[str | None, list[tuple[bool, str]]]) -> tuple[str, list]:
    """A notebook page's HTML with the formulas of its Markdown cells as MathML, never in code or outputs.

    Returns the HTML and the problems: (TeX, what went wrong), a formula that did not convert or that the page
    did not show.
    """
    queues = {cell: list(found) for cell, found in formulas.items()}
    failures: list[tuple[str, str]] = []
    out, position, cell, depth, verbatim = [], 0, None, 0, 0
    for tag in _TAG.finditer(content):
        text = content[position:tag.start()]
        if depth and not verbatim and ("$" in text or "\\begin{" in text):
            text = _mathml_in_text(text, queues.setdefault(cell, []), failures)
        out += [text, tag.group(0)]
        position = tag.end()
        name, closing = (tag.group(2) or "").lower(), tag.group(1) == "/"
        if not depth:
            if name == "div" and not closing:
                if found := _CELL_ID.search(tag.group(0)):
                    cell = found.group(1)
                depth = 1 if "jp-MarkdownOutput" in tag.group(0) else 0
        elif name == "div":
            depth += -1 if closing else 1
            if not depth and cell is not None:  # the cell's Markdown ends: its formulas should all be found
                failures += [(tex, "not found on the page") for _, tex in queues.pop(cell, [])]
        elif name in _VERBATIM:
            verbatim = max(0, verbatim + (-1 if closing else 1))
    out.append(content[position:])
    failures += [(tex, "not found on the page") for _, tex in queues.pop(None, [])]  # cells without an id
    return "".join(out), failures
