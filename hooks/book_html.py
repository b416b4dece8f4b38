"""How the site hook edits a notebook page's HTML: lighter, readable, and linked to the book's style.

mkdocs-jupyter embeds ~600 KB of notebook CSS in every page and has no option to turn that off: the CSS is
collected here into one shared stylesheet, which only notebook pages link, without the rules for classes
that no page has (JupyterLab's editor, toolbars and widgets: about 90% of it). Inline plots become image
files (re-encoded when over ``IMAGE_BUDGET`` bytes), each a <figure> with a numbered caption from its code cell's
first comment line, which is its alt text too; the notebook copy widgets give way to
Material's own code blocks and copy button; long outputs and source listings are folded; printed prose is
marked ``nb-prose`` so that it wraps on phones too (extra.css).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import posixpath
import re

# A notebook output longer than this many lines is folded into a <details> block; so is a source
# listing (IPython.display.Code) longer than LONG_LISTING_LINES.
LONG_OUTPUT_LINES = 20
LONG_LISTING_LINES = 40
# Images over this many bytes are re-encoded (palette PNG, at most MAX_IMAGE_WIDTH pixels wide).
IMAGE_BUDGET = 200_000
MAX_IMAGE_WIDTH = 1400

# What one build collects across pages: CSS rules, image files, re-encoded images, classes in use.
STATE: dict = {"css": {}, "files": {}, "oversized": [], "classes": set()}


def reset() -> None:
    """Forget the previous build (``mkdocs serve`` rebuilds in one process)."""
    STATE.update(css={}, files={}, oversized=[], classes=set())


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
# Printed text that is prose wraps at every width (extra.css: pre.nb-prose); everything else keeps each line on
# one row and, on a phone, scrolls sideways, because wrapping would garble its columns. Not prose: a line with a
# run of spaces or a tab inside it, or one that is indented (aligned columns, pprint's continuation lines,
# classification reports); box drawing (Keras' model summary, progress bars); a Markdown table row (starting or
# ending with a pipe: "a | b" between words is a sentence's separator).
# Keras' fit log ("352/352 - 70s - 199ms/step - accuracy: 0.6 - loss: 1.1 - val_accuracy: ...", and "Epoch 3/15"
# above it) is single-spaced, but it is a table all the same: one row per epoch, the same fields at the same
# places, read down the page from epoch to epoch. Wrapped at a phone's 50 or so characters each epoch would take two
# or three rows, broken at different fields, and the columns would be lost; so it scrolls, as on a terminal.
PROSE_CLASS = "nb-prose"
_BOX_DRAWING = re.compile("[\u2500-\u257f]")
_KERAS_LOG_LINE = re.compile(r"\d+/\d+ (?:- |\[)|Epoch \d+/\d+$")  # verbose 2; Keras 2's [====>...]
_IMAGE = re.compile(r'src="data:image/(png|jpeg);base64,([^"]+)"')
# Cell tags (the "parameters" chip): notebook tooling, nothing for a reader.
_CELL_TOOLBAR = re.compile(r'<div class="celltoolbar">\s*<div class="button_container[^"]*">.*?</div>\s*</div>', re.S)
# nbconvert's MathJax loader (its URL is empty: mkdocs-jupyter's custom_mathjax_url) and, on pages without a
# diagram, its Mermaid loader (from a CDN): formulas are MathML (below) and the site reads offline.
_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?jp-Mermaid.*?</script>\s*'
                      r"<!-- End of mermaid configuration -->", re.S)
# nbconvert's heading anchors, made Material's: the same look as on the other pages, and left out of the
# search index's titles (which would otherwise end in a pilcrow).
_ANCHOR_LINK = re.compile(r'<a class="anchor-link" href="(#[^"]*)">\u00b6</a>')
# A chapter's link to another chapter names its notebook (so it works in Jupyter and Colab); on the site the
# page is the notebook's .html.
_CHAPTER_LINK = re.compile(r'href="((?:\d\d|[A-Z])_\w+)\.ipynb(#[^"]*)?"')


def _collect_css(match) -> str:
    css = match.group(1).strip()
    css = _UI_ICONS.sub("", css)  # JupyterLab's toolbar icons (80 KB of inline SVG): a static page has no toolbar
    if css and not css.startswith("["):  # mkdocs-jupyter also appends a list's repr: not CSS
        STATE["css"].setdefault(css, None)
    return ""


def is_prose(text: str) -> bool:
    """Whether printed text reads as sentences, which may wrap, rather than as columns, which must not."""
    lines = [line.rstrip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines or _BOX_DRAWING.search(text):
        return False
    for line in lines:
        if line[0].isspace() or "  " in line or "\t" in line:  # indented, or aligned inside the line
            return False
        if line.startswith("|") or line.endswith("|"):  # a Markdown table row
            return False
        if _KERAS_LOG_LINE.match(line):  # a fit log: see above
            return False
    return True


def _mark_prose(match) -> str:
    """The <pre> tag's attributes, with PROSE_CLASS added where it is a printed text output that is prose."""
    attrs = match.group("attrs")
    if match.group("listing") is not None or 'class="jp-RenderedText' not in match.group("open"):
        return attrs  # source listings are code; HTML outputs (Rich's model summary) style their own <pre>
    if not is_prose(html.unescape(re.sub(r"<[^>]+>", "", match.group("body")))):  # ANSI colours are <span>s
        return attrs
    if re.search(r'\bclass="', attrs):
        return re.sub(r'\bclass="', f'class="{PROSE_CLASS} ', attrs, count=1)
    return f' class="{PROSE_CLASS}"{attrs}'


def _fold_long_output(match) -> str:
    """A long output, or a long source listing, folded behind a one-line summary; printed prose marked."""
    lines = match.group("body").rstrip("\n").count("\n") + 1
    block = f"<pre{_mark_prose(match)}>{match.group('body')}</pre>"
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


# ---------- Numbered captions: "Figure 7.2: ..." under every figure of a notebook page ----------
# A figure's caption is written by a person beside the code that draws it: the first line of the figure's code cell,
# when that line is a comment of one sentence ("# Training and validation loss and accuracy, with the cuts."). A
# comment whose first line wraps on to the next ("# The filters (...). Each is drawn with its own") is not one; nor is
# "#@save". A figure whose cell has no caption is captioned with its section's heading, and the build says which.
_CAPTION_COMMENT = re.compile(r"#\s*([^\s#@!%].*[.?!])")
_FIGURE_MIMES = ("image/png", "image/jpeg")  # the outputs nbconvert draws as an <img> (the pairing checks it)
_HEADING_OR_FIGURE = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1>"
                                r'|(<div class="jp-RenderedImage\b[^>]*>\s*)(<img\b[^>]*>)', re.S)
FIGURE_CLASS = "nb-figure"


@dataclasses.dataclass(frozen=True)
class Figure:
    """An image output of a notebook: its cell's caption (None: it has none), its place among the cell's images."""

    caption: str | None
    cell: int  # the cell's index in the notebook
    part: int = 1
    parts: int = 1


def figure_caption(source: str) -> str | None:
    """The caption a code cell gives its figures: its first line, when that is a one-sentence comment."""
    lines = source.strip().splitlines()
    match = _CAPTION_COMMENT.fullmatch(lines[0].strip()) if lines else None
    return " ".join(match.group(1).split()) if match else None


def notebook_figures(path) -> list[Figure]:
    """Every image output of the notebook, in order, with its cell's caption."""
    import nbformat

    figures = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        images = [output for output in cell.get("outputs", [])
                  if any(mime in output.get("data", {}) for mime in _FIGURE_MIMES)]
        caption = figure_caption(cell.source)
        figures += [Figure(caption, index, part, len(images)) for part in range(1, len(images) + 1)]
    return figures


def page_figure_count(content: str) -> int:
    """How many figures (image outputs) a notebook page shows."""
    return sum(1 for match in _HEADING_OR_FIGURE.finditer(content) if match.group(4))


def caption_figures(content: str, figures: list[Figure], prefix: str) -> tuple[str, list[str]]:
    """Each figure of the page, paired in order with the notebook's image outputs, as a <figure> with a numbered
    <figcaption> ("Figure {prefix}.{n}: caption") and the caption as its alt text.

    Returns the page and the numbers of the figures captioned with their section's heading (their cell has no
    caption). Raises ValueError, and captions nothing, when the page and the notebook count different figures.
    """
    shown = page_figure_count(content)
    if shown != len(figures):
        raise ValueError(f"the page shows {shown} figure(s) but the notebook has {len(figures)} image output(s), so "
                         "captions cannot be paired with figures; is an image output drawn as something else than "
                         "<img> (HTML, SVG), or an <img> not an output?")
    heading, number, from_headings = "", 0, []

    def caption(match):
        nonlocal heading, number
        if match.group(1):
            heading = _text(match.group(2))
            return match.group(0)
        figure = figures[number]
        number += 1
        label = f"Figure {prefix}.{number}"
        text = figure.caption
        if text is None:
            from_headings.append(f"{prefix}.{number} (cell {figure.cell})")
            text = heading
        if figure.parts > 1:  # one cell, several figures: the same caption, told apart
            end = text[-1] if text[-1:] in (".", "?", "!") else ""
            text = f"{text[:len(text) - len(end)]} ({figure.part} of {figure.parts}){end}".strip()
        image = re.sub(r'\salt="[^"]*"', "", match.group(4), count=1)
        image = image.replace("<img", f'<img alt="{html.escape(text or label)}"', 1)
        words = f'<span class="{FIGURE_CLASS}-number">{label}{":" if text else ""}</span> {html.escape(text)}'
        return (f'{match.group(3)}<figure class="{FIGURE_CLASS}">{image}'
                f"<figcaption>{words.rstrip()}</figcaption></figure>")

    return _HEADING_OR_FIGURE.sub(caption, content), from_headings


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
    STATE["oversized"].append((label, len(data), len(buffer.getvalue())))
    return buffer.getvalue(), "png"


def images_to_files(content: str, page, stem: str) -> str:
    """Inline data: images become files next to the page (cached, zoomable without copying them)."""
    folder = posixpath.dirname(page.file.dest_uri)

    def to_file(match):
        index = len([key for key in STATE["files"] if posixpath.basename(key).startswith(f"{stem}-")]) + 1
        label = f"{page.file.src_uri} figure {index}"
        data, kind = _image_file(base64.b64decode(match.group(2)), match.group(1), label)
        relative = f"figures/{stem}-{index}.{'jpg' if kind == 'jpeg' else kind}"
        STATE["files"][posixpath.join(folder, relative) if folder else relative] = data
        return f'src="{relative}"'

    return _IMAGE.sub(to_file, content)


def clean_notebook_page(content: str) -> str:
    """A notebook page without its inline CSS (collected), clipboard widgets, MathJax and (when unused) Mermaid
    loaders and cell toolbars; code cells as Material code blocks, prompts left out of search."""
    content = _STYLE.sub(_collect_css, content)
    content = _SCRIPT.sub(lambda m: "" if "clipboard" in m.group(1) else m.group(0), content)
    content = _MATHJAX.sub("", content)
    if 'class="jp-Mermaid' not in content:
        content = _MERMAID.sub("", content)
    content = _CLIPBOARD.sub("", content)
    content = _CLIPBOARD_TEXT.sub("", content)
    content = _CELL_TOOLBAR.sub("", content)
    content = _CHAPTER_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', content)
    content = _ANCHOR_LINK.sub('<a class="headerlink" href="\\1" title="Permanent link">\u00b6</a>', content)
    content = _CODE.sub(lambda m: f'<div class="highlight language-{m.group(1)}"><pre><span></span>'
                                  f"<code>{m.group(3)}</code></pre></div>", content)
    return _PROMPT.sub(r'<div class="\1" data-search-exclude>', content)


def fold_long_outputs(content: str) -> str:
    """Every output and source listing longer than its limit, folded behind a one-line summary; every printed
    output that is prose marked PROSE_CLASS (it wraps on phones too)."""
    return _TEXT_OUTPUT.sub(_fold_long_output, content)


def collect_classes(output: str) -> None:
    """Note the classes a finished page uses: the shared stylesheet keeps only rules that can match."""
    STATE["classes"].update(name for value in re.findall(r'\bclass="([^"]*)"', output) for name in value.split())


def shared_stylesheet() -> str:
    """The notebook CSS of every page, once, pruned to the classes the pages use."""
    full = "\n".join(STATE["css"])
    return prune_css(full, STATE["classes"]) if STATE["classes"] else full


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
