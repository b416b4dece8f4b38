"""MkDocs hooks: the navigation, home-page chapter list and results page come from the registry
and the run records, so the site cannot drift from the results; notebook pages are made light,
readable and linked.

Registered in ``mkdocs.yml`` under ``hooks:``. Pages mark where generated content goes with
``<!-- chapters-table -->``, ``<!-- results-table -->``, ``<!-- results-chart -->``, ``<!-- race-chart -->``,
``<!-- reference-table -->`` and ``<!-- benchmark-table -->``.

Each chapter page gets a header with the chapter's recorded numbers (the conclusion's: what it compares)
and links to its notebook (download, Colab, repository). mkdocs-jupyter embeds ~600 KB of notebook CSS
in every page and has no option to turn that off: the hook moves it into one shared stylesheet, which
only notebook pages link, without the rules for classes that no page has (JupyterLab's editor, toolbars
and widgets: about 90% of it). It moves inline plots into image files (re-encoding any over
``IMAGE_BUDGET`` bytes) with alt text, replaces the notebook copy widgets with Material's own code blocks
and copy button, and folds long outputs and source listings. Nothing here imports TensorFlow.

Formulas (``$...$`` inline, ``$$...$$`` display, as in Jupyter) in Markdown cells become MathML when the
site is built (latex2mathml): browsers draw MathML themselves, so the pages need no MathJax and no CDN.
Which dollars delimit formulas is read from the notebook as nbconvert reads it (``\\$`` stays a dollar
sign). A formula that does not convert cleanly fails the build, naming the page and the formula.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import posixpath
import re
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.utils import get_relative_url

from cifar_lessons.chapters import CHAPTERS

log = logging.getLogger("mkdocs.hooks.cifar_lessons")

NOTEBOOK_CSS = "assets/stylesheets/notebook.css"
# A notebook output longer than this many lines is folded into a <details> block; so is a source
# listing (IPython.display.Code) longer than LONG_LISTING_LINES.
LONG_OUTPUT_LINES = 20
LONG_LISTING_LINES = 40
# Analysis chapters (registry ``uses``) whose page compares every chapter rather than studying one model.
COMPARES_EVERY_CHAPTER = {"conclusion"}
# Images over this many bytes are re-encoded (palette PNG, at most MAX_IMAGE_WIDTH pixels wide).
IMAGE_BUDGET = 200_000
MAX_IMAGE_WIDTH = 1400

_state: dict = {"css": {}, "files": {}, "oversized": [], "classes": set(), "formula_errors": []}


def chapters_table_markdown(results_dir=None) -> str:
    """Home-page list: each chapter with its technique and recorded test accuracy (site)."""
    from cifar_lessons.report import comparison_rows

    accuracy = {row["id"]: row["test_accuracy"] for row in comparison_rows(results_dir)}
    lines = ["| Chapter | Technique | Test accuracy |", "|---|---|---:|"]
    for chapter in CHAPTERS:
        link = f"[{int(chapter.id)}. {chapter.title}](chapters/{chapter.notebook.name})"
        value = accuracy.get(chapter.id)
        shown = f"{100 * value:.1f}%" if value is not None else ("-" if chapter.trains else "")
        lines.append(f"| {link} | {chapter.technique} | {shown} |")
    return "\n".join(lines)


def results_chart_markdown(results_dir=None) -> str:
    """The accuracy chart over seeds as an inline PNG, drawn for the ~700 px content column (site)."""
    import matplotlib

    matplotlib.use("Agg")
    from cifar_lessons.plots import chapter_accuracies
    from cifar_lessons.report import comparison_rows

    rows = [row for row in comparison_rows(results_dir) if row["values"]]
    if not rows:
        return "*No chapter has a recorded run yet.*"
    figure = chapter_accuracies([f"{r['id']} {r['title']}" for r in rows], [r["values"] for r in rows],
                                [r["milestone"] for r in rows])
    return _figure_markdown(figure, "Test accuracy by chapter: each seed, mean ± one standard deviation, "
                                    "and the milestone")


def _figure_markdown(figure, alt: str) -> str:
    """A matplotlib figure as an inline PNG for the ~700 px content column, closed afterwards (site)."""
    import matplotlib.pyplot as plt

    width_px = 700  # CSS pixels: 7 inches at 100 px per inch, so 10-point text shows at about 14 px
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=2 * width_px / figure.get_figwidth(), transparent=True)  # sharp on HiDPI
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f'![{alt}](data:image/png;base64,{encoded}){{ .results-chart width="{width_px}" }}'


def race_chart_markdown(results_dir=None) -> str:
    """Chapter 11's race against chapter 8 (validation accuracy against minutes, one machine) with its caption."""
    import matplotlib

    matplotlib.use("Agg")
    from cifar_lessons import race

    if not race.race_path(results_dir).is_file():
        return "*No race recorded yet (results/11/race.json).*"
    summary = race.race_summary(results_dir)
    figure = race.race_chart(results_dir)
    chart = _figure_markdown(figure, "Validation accuracy against wall-clock and CPU minutes: chapter 8's race run "
                                     "and chapter 11's runs")
    hosts = summary["hosts"]
    machines = (f"All ran on one machine: {hosts[0]}." if len(hosts) == 1 else
                f"They ran on different machines ({'; '.join(hosts)}), so their times do not compare.")
    return (f"{chart}\n\nChapter 8's race run is `results/{summary['baseline_run']}`; chapter 11's runs are "
            + ", ".join(f"`results/{run}`" for run in summary["runs"])
            + f". {machines} The dotted line is the {summary['target']:.0%} validation accuracy "
            "that chapter 8's clock stops at; chapter 11's clock runs to its evaluated, saved model.")


def on_config(config, **kwargs):
    """Build the Chapters section of the navigation from the registry.

    The shared notebook stylesheet is not in ``extra_css``: only notebook pages link it (on_post_page).
    """
    chapters = [{f"{int(c.id)}. {c.title}": f"chapters/{c.notebook.name}"} for c in CHAPTERS]
    config["nav"] = [{"Home": "index.md"}, {"Chapters": chapters}, {"Results": "results.md"}]
    return config


def on_pre_build(config, **kwargs):
    _state.update(css={}, files={}, oversized=[], classes=set(), formula_errors=[])


def _repository(config) -> tuple[str, str]:
    """The repository URL and branch from ``repo_url`` and ``edit_uri`` (edit/BRANCH/docs/)."""
    repo_url = (config.get("repo_url") or "").rstrip("/")
    match = re.match(r"edit/([^/]+)/", config.get("edit_uri") or "")
    return repo_url, match.group(1) if match else "main"


def _notebook_chapter(page):
    if not page.file.src_uri.endswith(".ipynb"):
        return None
    name = posixpath.basename(page.file.src_uri)
    return next((c for c in CHAPTERS if c.notebook.name == name), None)


def on_page_context(context, page, config, **kwargs):
    """Notebook pages edit the notebook in chapters/ (docs/chapters is a link to it)."""
    chapter = _notebook_chapter(page)
    repo_url, branch = _repository(config)
    if chapter is not None and repo_url:
        page.edit_url = f"{repo_url}/edit/{branch}/chapters/{chapter.notebook.name}"
    return context


def _machine(record: dict) -> str:
    hardware = record["hardware"]
    gpus = ", ".join(hardware["gpus"]) or "no GPU"
    precision = record.get("precision", record["config"]["precision"])
    return f"{hardware['cpu']}, {hardware['cores']} cores, {gpus}, {precision}"


def _comparison_facts(rows: list[dict]) -> list[tuple[str, str]]:
    """The header of a page that compares every training chapter: what it compares, not one model's numbers."""
    from cifar_lessons.chapters import step_chapters

    step_ids = {chapter.id for chapter in step_chapters()}
    steps = [int(row["id"]) for row in rows if row["id"] in step_ids]
    parts = ([f"{steps[0]}-{steps[-1]}" if len(steps) > 1 else str(steps[0])] if steps else [])
    parts += [str(int(row["id"])) for row in rows if row["id"] not in step_ids]
    shown = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
    facts = [("Compares", f"every training chapter ({shown}): test accuracy over seeds, gains and training time")]
    recorded = [row for row in rows if row["record"]]
    if recorded:
        seeds = sum(row["n"] or 0 for row in recorded)
        facts.append(("Runs", f"{len(recorded)} of {len(rows)} chapters recorded, {seeds} runs counting every seed; "
                              'all the numbers are on the <a href="../results.html">Results</a> page'))
    else:
        facts.append(("Runs", "no chapter has a recorded run yet: <code>cifar-lessons train 01</code>"))
    return facts


def chapter_header_html(chapter, config, results_dir=None) -> str:
    """The facts and links that open a chapter page, from the run records (site)."""
    from cifar_lessons.report import _gain_text, _mean_sd, comparison_rows

    rows = {row["id"]: row for row in comparison_rows(results_dir)}
    compares = chapter.slug in COMPARES_EVERY_CHAPTER  # one model's numbers would mislead there
    row = None if compares else rows.get(chapter.uses or chapter.id)
    if compares:
        facts = _comparison_facts(list(rows.values()))
    elif chapter.uses:
        studied = f" ({html.escape(rows[chapter.uses]['title'])})" if chapter.uses in rows else ""
        facts = [("Studies", f"the model of chapter {int(chapter.uses)}{studied}")]
    else:
        facts = [("Technique", html.escape(chapter.technique))]
    if row and row["record"]:
        record = row["record"]
        main_run = f"{100 * record['test_accuracy']:.1f}%"
        if row["n"] and row["n"] > 1:
            accuracy = f"{_mean_sd(row['summary'])} over {row['n']} seeds (main run {main_run})"
        else:
            accuracy = f"{main_run} (one seed)"
        if row["status"] != "ok":
            accuracy += f" ({row['status']} record)"
        facts.append(("Test accuracy", accuracy))
        if not chapter.uses:
            gain = "the baseline" if row["gain"] is None else f"{_gain_text(row)} points against the previous chapter"
            if row.get("verdict"):
                gain += f" ({html.escape(row['verdict'])})"
            facts.append(("Gain", gain))
        facts.append(("Training", f"{row['wall_time_s'] / 60:.1f} min, {row['epochs']} of at most "
                                  f"{row['max_epochs']} epochs (main run)"))
        facts.append(("Machine", html.escape(_machine(record))))
    elif not compares:
        command = f"cifar-lessons train {chapter.uses or chapter.id}"
        facts.append(("Test accuracy", f"no recorded run yet: <code>{command}</code>"))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in facts)
    name = chapter.notebook.name
    links = [f'<a class="md-button" href="{name}" download '
             'title="code and text without outputs: run it to see them">Download the notebook</a>']
    repo_url, branch = _repository(config)
    if repo_url:
        path = f"{branch}/chapters/{name}"
        if repo_url.startswith("https://github.com/"):
            colab = "https://colab.research.google.com/github/" + repo_url.removeprefix("https://github.com/")
            links.append(f'<a class="md-button" href="{colab}/blob/{path}">Open in Colab</a>')
        links.append(f'<a class="md-button" href="{repo_url}/blob/{path}">View in the repository</a>')
    return (f'<div class="chapter-header" data-search-exclude><dl>{items}</dl>'
            f'<p class="chapter-links">{" ".join(links)}</p></div>')


_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
_UI_ICONS = re.compile(r"--jp-icon-[\w-]+:\s*url\([^)]*\);?")
_SCRIPT = re.compile(r"<script[^>]*>(.*?)</script>", re.S)
_CLIPBOARD = re.compile(r'<div class="zeroclipboard-container">.*?</clipboard-copy>\s*</div>', re.S)
_CLIPBOARD_TEXT = re.compile(r'<div class="clipboard-copy-txt"[^>]*>.*?</div>', re.S)
_CODE = re.compile(r'<div class="highlight-ipynb hl-(\w+)"><pre>(<span></span>)?(.*?)</pre></div>', re.S)
_PROMPT = re.compile(r'<div class="(jp-(?:Input|Output)Prompt [^"]*)">')
# An output's <pre>, or a source listing's (IPython.display.Code: <div class="highlight"><pre>); not Markdown cells.
_TEXT_OUTPUT = re.compile(r'(?P<open><div class="jp-Rendered(?:Text|HTMLCommon)(?![^"]*jp-MarkdownOutput)'
                          r'[^"]*"[^>]*>\s*)(?P<listing><div class="highlight">\s*)?'
                          r'<pre(?P<attrs>[^>]*)>(?P<body>.*?)</pre>(?(listing)\s*</div>)', re.S)
_IMAGE = re.compile(r'src="data:image/(png|jpeg);base64,([^"]+)"')
# Cell tags (the "parameters" chip): notebook tooling, nothing for a reader.
_CELL_TOOLBAR = re.compile(r'<div class="celltoolbar">\s*<div class="button_container[^"]*">.*?</div>\s*</div>', re.S)
# nbconvert's MathJax loader (its URL is empty: mkdocs-jupyter's custom_mathjax_url) and, on pages without a
# diagram, its Mermaid loader (from a CDN): formulas are MathML (below) and the site reads offline.
_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?jp-Mermaid.*?</script>\s*'
                      r"<!-- End of mermaid configuration -->", re.S)
_HEADING_OR_IMAGE = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>|<img\b[^>]*>", re.S)
_NO_ALT = 'alt="No description has been provided for this image"'


def _collect_css(match) -> str:
    css = match.group(1).strip()
    css = _UI_ICONS.sub("", css)  # JupyterLab's toolbar icons (80 KB of inline SVG): a static page has no toolbar
    if css and not css.startswith("["):  # mkdocs-jupyter also appends a list's repr: not CSS
        _state["css"].setdefault(css, None)
    return ""


def _fold_long_output(match) -> str:
    """A long output, or a long source listing, folded behind a one-line summary."""
    lines = match.group("body").rstrip("\n").count("\n") + 1
    block = f"<pre{match.group('attrs')}>{match.group('body')}</pre>"
    listing = match.group("listing") is not None
    if listing:
        block = f'<div class="highlight">{block}</div>'
    if lines <= (LONG_LISTING_LINES if listing else LONG_OUTPUT_LINES):
        return match.group("open") + block
    what = "Source" if listing else "Output"
    return (f'{match.group("open")}<details class="nb-output"><summary>{what}: {lines} lines (click to show)</summary>'
            f"{block}</details>")


def _text(fragment: str) -> str:
    """An HTML fragment's text: tags, permalink signs and repeated spaces removed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).replace("\u00b6", " ").split())


def _describe_figures(content: str) -> str:
    """Figures without alt text get one: the nearest heading above them and their number on the page."""
    heading, number = "", 0

    def describe(match):
        nonlocal heading, number
        if match.group(1):
            heading = _text(match.group(2))
            return match.group(0)
        number += 1
        if _NO_ALT not in match.group(0):
            return match.group(0)
        alt = f"{heading}: figure {number}" if heading else f"Figure {number}"
        return match.group(0).replace(_NO_ALT, f'alt="{html.escape(alt)}"')

    return _HEADING_OR_IMAGE.sub(describe, content)


def _image_file(data: bytes, kind: str, label: str) -> tuple[bytes, str]:
    """The image as a file's bytes, re-encoded if it is over IMAGE_BUDGET."""
    if len(data) <= IMAGE_BUDGET:
        return data, kind
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.width > MAX_IMAGE_WIDTH:
        image = image.resize((MAX_IMAGE_WIDTH, round(image.height * MAX_IMAGE_WIDTH / image.width)), Image.LANCZOS)
    if image.mode == "RGBA":
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    else:
        image = image.convert("RGB").quantize(256)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    _state["oversized"].append((label, len(data), len(buffer.getvalue())))
    return buffer.getvalue(), "png"


def _images_to_files(content: str, page, stem: str) -> str:
    """Inline data: images become files next to the page (cached, zoomable without copying them)."""
    folder = posixpath.dirname(page.file.dest_uri)

    def to_file(match):
        index = len([key for key in _state["files"] if posixpath.basename(key).startswith(f"{stem}-")]) + 1
        label = f"{page.file.src_uri} figure {index}"
        data, kind = _image_file(base64.b64decode(match.group(2)), match.group(1), label)
        relative = f"figures/{stem}-{index}.{'jpg' if kind == 'jpeg' else kind}"
        _state["files"][posixpath.join(folder, relative) if folder else relative] = data
        return f'src="{relative}"'

    return _IMAGE.sub(to_file, content)


# ---------- Formulas: LaTeX in Markdown cells becomes MathML when the site is built ----------

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


@event_priority(50)  # before mkdocs-glightbox wraps the images in links
def on_page_content(html_content, page, config, files, **kwargs):
    """Images as files on every page; on notebook pages also shared CSS, code blocks, formulas as MathML,
    folded outputs, described figures and a header."""
    chapter = _notebook_chapter(page)
    if chapter is None:
        return _images_to_files(html_content, page, posixpath.splitext(page.file.name)[0])
    content = _STYLE.sub(_collect_css, html_content)
    content = _SCRIPT.sub(lambda m: "" if "clipboard" in m.group(1) else m.group(0), content)
    content = _MATHJAX.sub("", content)
    if 'class="jp-Mermaid' not in content:
        content = _MERMAID.sub("", content)
    content = _CLIPBOARD.sub("", content)
    content = _CLIPBOARD_TEXT.sub("", content)
    content = _CELL_TOOLBAR.sub("", content)
    content = _CODE.sub(lambda m: f'<div class="highlight language-{m.group(1)}"><pre><span></span>'
                                  f"<code>{m.group(3)}</code></pre></div>", content)
    content = _PROMPT.sub(r'<div class="\1" data-search-exclude>', content)
    content, failures = formulas_to_mathml(content, notebook_formulas(page.file.abs_src_path))
    for tex, problem in failures:
        log.error(f"{page.file.src_uri}: formula {tex!r}: {problem}")
        _state["formula_errors"].append((page.file.src_uri, tex, problem))
    content = _TEXT_OUTPUT.sub(_fold_long_output, content)
    content = _images_to_files(content, page, chapter.notebook.stem)
    content = _describe_figures(content)
    header = chapter_header_html(chapter, config)
    end_of_title = content.find("</h1>")
    if end_of_title >= 0:
        content = content[:end_of_title + 5] + header + content[end_of_title + 5:]
    else:
        content = header + content
    return content


def on_post_page(output, page, config, **kwargs):
    """Notebook pages link the shared notebook stylesheet, before the book's own (which overrides it)."""
    if _notebook_chapter(page) is None:
        return output
    _state["classes"].update(name for value in re.findall(r'\bclass="([^"]*)"', output) for name in value.split())
    link = f'<link rel="stylesheet" href="{get_relative_url(NOTEBOOK_CSS, page.url)}">'
    extra = [get_relative_url(str(path), page.url) for path in config["extra_css"]]
    first = min((i for i in (output.find(f'<link rel="stylesheet" href="{href}">') for href in extra) if i >= 0),
                default=output.find("</head>"))
    return output[:first] + link + output[first:]


# ---------- The shared notebook stylesheet, without the rules for JupyterLab's editor and toolbars ----------

def _css_statements(css: str) -> list[tuple[str, str | None]]:
    """Top-level (prelude, block) pairs of a stylesheet; block None for a statement ending in ';'."""
    statements, position, size = [], 0, len(css)

    def skip(index: int) -> int:  # past a string or a comment starting at index, if one does
        if css[index] in "\"'":
            end = index + 1
            while end < size and css[end] != css[index]:
                end += 2 if css[end] == "\\" else 1
            return end + 1
        if css.startswith("/*", index):
            end = css.find("*/", index + 2)
            return size if end < 0 else end + 2
        return index

    while position < size:
        end = position
        while end < size and css[end] not in "{;}":
            end = skip(end) if skip(end) != end else end + 1
        if end >= size:
            break
        prelude = re.sub(r"/\*.*?\*/", "", css[position:end], flags=re.S).strip()
        if css[end] != "{":  # ';' ends an at-statement; a stray '}' is skipped
            if css[end] == ";" and prelude:
                statements.append((prelude, None))
            position = end + 1
            continue
        depth, close = 1, end + 1
        while close < size and depth:
            if skip(close) != close:
                close = skip(close)
                continue
            depth += {"{": 1, "}": -1}.get(css[close], 0)
            close += 1
        statements.append((prelude, css[end + 1:close - 1]))
        position = close
    return statements


def _split_selectors(prelude: str) -> list[str]:
    """A selector list split at its top-level commas (not those inside :is(...) or [attr="a,b"])."""
    parts, depth, start, quote = [], 0, 0, None
    for index, char in enumerate(prelude):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and not depth:
            parts.append(prelude[start:index].strip())
            start = index + 1
    return [*parts, prelude[start:].strip()]


def _selector_can_match(selector: str, classes: set[str]) -> bool:
    """False where the selector needs a class that no page has (kept where that cannot be told for sure).

    Material's script adds classes of its own (md-typeset__scrollwrap around tables...): those always count.
    """
    if "\\" in selector:  # escaped characters in class names: keep
        return True
    plain = re.sub(r"\[[^\]]*\]", "", selector)
    while "(" in plain:  # :not(.x) matches without .x; :is(.x, .y) needs only one: ignore what is inside
        stripped = re.sub(r"\([^()]*\)", "", plain)
        if stripped == plain:
            break
        plain = stripped
    return all(name in classes or name.startswith("md-") for name in re.findall(r"\.(-?[_a-zA-Z][\w-]*)", plain))


def prune_css(css: str, classes: set[str]) -> str:
    """The stylesheet without the selectors that need a class no page uses (nested in @media too)."""
    kept = []
    for prelude, block in _css_statements(css):
        if block is None:
            kept.append(f"{prelude};")
        elif prelude.startswith("@"):
            if re.match(r"@(media|supports|layer|container)\b", prelude):
                block = prune_css(block, classes)
                if block.strip():
                    kept.append(f"{prelude}{{{block}}}")
            else:  # @font-face, @keyframes, @page: whole
                kept.append(f"{prelude}{{{block}}}")
        else:
            selectors = [s for s in _split_selectors(prelude) if s and _selector_can_match(s, classes)]
            if selectors:
                kept.append(f"{','.join(selectors)}{{{block.strip()}}}")
    return "\n".join(kept)


def on_post_build(config, **kwargs):
    """Write the shared notebook stylesheet and the notebooks' images; name images that were too big.

    Fails the build if a formula did not convert (each one was logged where it was found).
    """
    if _state["formula_errors"]:
        listed = "\n".join(f"  {page}: {tex!r}: {problem}" for page, tex, problem in _state["formula_errors"])
        raise PluginError(f"{len(_state['formula_errors'])} formula(s) did not convert to MathML:\n{listed}")
    site = Path(config["site_dir"])
    css = site / NOTEBOOK_CSS
    css.parent.mkdir(parents=True, exist_ok=True)
    full = "\n".join(_state["css"])
    css.write_text(prune_css(full, _state["classes"]) if _state["classes"] else full)
    for relative, data in _state["files"].items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # Material ships source maps, and search support for other languages than English (lunr/min, and a Thai
    # word splitter): an English book served to readers needs neither.
    search = config["plugins"].get("material/search")
    languages = set(search.config.lang or ["en"]) if search is not None else {"en"}
    unused = list(site.glob("assets/**/*.map"))
    if languages == {"en"}:
        unused += [*site.glob("assets/javascripts/lunr/min/*"), site / "assets/javascripts/lunr/wordcut.js"]
    for path in unused:
        path.unlink(missing_ok=True)
    strip_downloadable_notebooks(site)
    for label, before, after in _state["oversized"]:
        log.info(f"{label}: {before // 1000} KB is over {IMAGE_BUDGET // 1000} KB, re-encoded to {after // 1000} KB; "
                 "draw it smaller in the notebook")


def strip_downloadable_notebooks(site: Path) -> None:
    """The notebooks a reader downloads from the site keep code and prose, not outputs (Chapter 1).

    A downloaded notebook is there to be run; its outputs (every figure again) are on the page above
    and in the repository's copy, and would double the site's size.
    """
    for notebook in site.glob("chapters/*.ipynb"):
        content = json.loads(notebook.read_text())
        for cell in content.get("cells", []):
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Replace the markers with tables and charts generated from the run records."""
    from cifar_lessons.reference import reference_markdown
    from cifar_lessons.report import accuracy_table_markdown, benchmark_markdown

    replacements = {
        "<!-- chapters-table -->": chapters_table_markdown,
        "<!-- results-table -->": accuracy_table_markdown,
        "<!-- results-chart -->": results_chart_markdown,
        "<!-- race-chart -->": race_chart_markdown,
        "<!-- reference-table -->": lambda: reference_markdown()
        or "*No reference run recorded yet (results/11/reference).*",
        "<!-- benchmark-table -->": lambda: benchmark_markdown()
        or "*Not measured yet: run `python scripts/benchmark.py` on an idle machine.*",
    }
    for marker, render in replacements.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
