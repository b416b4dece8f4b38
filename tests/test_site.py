"""The site builds strictly offline, has a page per chapter, and shows the recorded numbers."""

from __future__ import annotations

import functools
import html
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import types

import nbformat
import pytest
import yaml
from book_html import IMAGE_BUDGET, LONG_LISTING_LINES
from book_mathml import FormulaError, formulas_to_mathml, latex_to_mathml, notebook_formulas
from book_site import NOTEBOOK_CSS

from cifar_lessons.book.chapters import CHAPTERS, PAGES, REPO_ROOT, get_chapter, training_chapters
from cifar_lessons.book.runs import chapter_status

# Screenshots the browser tests take (CI artifacts; build/ is ignored by git).
SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
PAGE_BUDGET = 600_000
# Figures are drawn at twice their size on the page (sharp on HiDPI screens and when zoomed): about 3.3 MB of
# the site, against 1.5 MB at 1x.
SITE_BUDGET = 8_000_000
# The shared notebook stylesheet, once the rules for JupyterLab's editor, toolbars and widgets are dropped.
NOTEBOOK_CSS_BUDGET = 150_000
BUILD_LOGS = {}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    # Material 9.8.2+ prints an end-of-life banner on every build; scripts/setup.sh turns it off the same way.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    BUILD_LOGS[site_dir] = result.stderr + result.stdout
    return site_dir


def mkdocs_config() -> dict:
    """mkdocs.yml, read without its !ENV-style tags."""
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((REPO_ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def test_build_is_quiet_and_does_not_load_tensorflow(site):
    """The build reads records, not models: no TensorFlow or Keras log lines, no warnings."""
    log = BUILD_LOGS[site]
    for marker in ("tensorflow", "oneDNN", "cuda", "WARNING"):
        assert marker not in log, f"the build printed {marker!r}:\n{log[-2000:]}"


def test_page_and_site_weight(site):
    """Shared CSS loaded once, figures as files: no page over the budget and the site under its own."""
    pages = {path.relative_to(site): path.stat().st_size for path in site.rglob("*.html")}
    heavy = {str(path): size for path, size in pages.items() if size > PAGE_BUDGET}
    assert not heavy, f"pages over {PAGE_BUDGET // 1000} KB: {heavy}"
    total = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    assert total < SITE_BUDGET, f"the site weighs {total / 1e6:.1f} MB (budget {SITE_BUDGET / 1e6:.0f} MB)"
    for path in site.rglob("*.html"):
        assert path.read_text().count("jp-OutputArea-output{") == 0, f"{path.name} embeds the notebook CSS"
    figures = {p.name: p.stat().st_size for p in (site / "chapters" / "figures").glob("*") if p.is_file()}
    assert figures, "no figure files: the hook did not move the notebooks' plots out of the pages"
    big = {name: size for name, size in figures.items() if size > IMAGE_BUDGET}
    assert not big, f"figures over {IMAGE_BUDGET // 1000} KB: {big}"


def test_notebook_css_only_on_notebook_pages(site):
    """The shared notebook stylesheet is linked by chapter pages (before extra.css, which overrides it) only,
    and carries no rules for JupyterLab's editor and toolbars."""
    for page in ("index.html", "results.html", "404.html"):
        assert "notebook.css" not in (site / page).read_text(), f"{page} links the notebook stylesheet"
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        links = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
        assert f"../{NOTEBOOK_CSS}" in links, f"chapter {chapter.id} does not link the notebook stylesheet"
        assert links.index(f"../{NOTEBOOK_CSS}") < links.index("../stylesheets/extra.css")
    css = (site / NOTEBOOK_CSS).read_text()
    assert len(css.encode()) < NOTEBOOK_CSS_BUDGET, f"notebook.css weighs {len(css.encode()) // 1000} KB"
    assert ".jupyter-wrapper .jp-OutputArea" in css  # pruned, not emptied
    for unused in (".CodeMirror-cursor", ".jp-Toolbar", ".jp-DragImage"):
        assert unused not in css, f"notebook.css still has rules for {unused}"


def test_notebook_tooling_is_not_shown(site):
    """No cell-tag chips ("parameters"), MathJax or Mermaid loaders, or CDN scripts on chapter pages."""
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        for marker in ('class="celltoolbar"', 'class="cell-tag"', "text/x-mathjax-config", '<script src="">',
                       "cdnjs.cloudflare.com"):
            assert marker not in page, f"chapter {chapter.id} still has {marker!r}"


# ---------- Numbered captions: every figure is "Figure 7.2: ..." with the first comment line of its cell ----------

# Chapter 9 is being rewritten: its figure cells may still lack a caption comment (the build captions those with
# their section's heading and names them). Every other chapter's figure cells start with one.
CAPTIONS_FROM_HEADINGS = set()


@pytest.mark.parametrize("source, caption", [
    ("# Images per class in the training and test sets.\nplots.class_balance(y);", "Images per class in the training "
                                                                                 "and test sets."),
    ("\n#   Does it   help?  \nplot()", "Does it help?"),
    ("#No space after the hash.\nplot()", "No space after the hash."),
    ("plot()\n# A comment further down is not a caption.", None),
    ("# The filters (the layer holds their negatives). Each is drawn with its own\n# weights stretched.", None),
    ("#@save\ndef f(): pass", None),
    ("#!/usr/bin/env python.", None),
    ("%%time\nplot()", None),
    ("# model.fit(x)\nplot()", None),
    ("", None),
], ids=["sentence", "spaces and a question", "no space", "code first", "a wrapped comment", "#@save", "shebang",
        "magic", "commented-out code", "empty"])
def test_a_cells_caption_is_its_first_line_when_a_one_sentence_comment(source, caption):
    from book_html import figure_caption

    assert figure_caption(source) == caption


def _output_image(src):
    return (f'<div class="jp-RenderedImage jp-OutputArea-output" tabindex="0">\n'
            f'<img alt="No description has been provided for this image" class="" src="{src}"/>\n</div>')


def test_captions_number_the_figures_in_order_and_fall_back_to_the_heading():
    """The page's images, paired in order with the notebook's image outputs: numbered, captioned by their cell (or
    their section's heading, reported), the caption also their alt text; several figures of one cell told apart."""
    from book_html import FIGURE_CLASS, Figure, caption_figures

    page = ('<h1 id="t">Chapter 7: Schedules<a class="headerlink" href="#t">\u00b6</a></h1>' + _output_image("a.png")
            + '<h2 id="c">Curves &amp; cuts</h2><p><img alt="a drawing in prose" src="b.png"></p>'
            + _output_image("c.png") + _output_image("d.png") + _output_image("e.png"))
    figures = [Figure("Loss & accuracy, with the <cuts>.", cell=3), Figure(None, cell=5),
               Figure("Two views of the rate.", cell=8, part=1, parts=2), Figure("Two views of the rate.", 8, 2, 2)]
    captioned, from_headings = caption_figures(page, figures, "7")
    found = re.findall(r'<figure class="nb-figure"><img alt="([^"]*)"[^>]*src="([^"]+)"/?><figcaption>'
                       r'<span class="nb-figure-number">([^<]*)</span> ([^<]*)</figcaption></figure>', captioned)
    first = "Loss &amp; accuracy, with the &lt;cuts&gt;."
    assert found == [
        (first, "a.png", "Figure 7.1:", first),
        ("Curves &amp; cuts", "c.png", "Figure 7.2:", "Curves &amp; cuts"),
        ("Two views of the rate (1 of 2).", "d.png", "Figure 7.3:", "Two views of the rate (1 of 2)."),
        ("Two views of the rate (2 of 2).", "e.png", "Figure 7.4:", "Two views of the rate (2 of 2)."),
    ]
    assert from_headings == ["7.2 (cell 5)"]
    # An image in prose is not an output: neither paired nor captioned.
    assert '<p><img alt="a drawing in prose" src="b.png"></p>' in captioned
    assert captioned.count(f'class="{FIGURE_CLASS}"') == 4 and "No description" not in captioned
    with pytest.raises(ValueError, match=r"the page shows 4 figure\(s\) but the notebook has 3 image output"):
        caption_figures(page, figures[:3], "7")


def test_a_page_whose_figures_do_not_pair_with_its_notebook_fails_the_build(tmp_path):
    """The hook reads the page's notebook: its image outputs, in order, with their cells' captions; when the page
    shows a different number of figures the build fails, naming the page, rather than mislabel them."""
    import book_site as hook
    from mkdocs.exceptions import PluginError
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    def figure_cell(source, images=1):
        return new_code_cell(source, outputs=[new_output("display_data", {"image/png": "iVBORw0KGgo=",
                                                                           "text/plain": "<Figure>"})] * images)

    notebook = new_notebook(cells=[new_markdown_cell("# Appendix A: Notes"),
                                   figure_cell("# The race, minute by minute.\nrace_chart()"),
                                   new_code_cell("print(1)", outputs=[new_output("stream", text="1\n")]),
                                   figure_cell("plots.pair()", images=2)])
    path = tmp_path / "A_notes.ipynb"
    nbformat.write(notebook, path)
    page = types.SimpleNamespace(file=types.SimpleNamespace(abs_src_path=str(path), src_uri="chapters/A_notes.ipynb"))
    appendix = types.SimpleNamespace(id="A")
    captioned = hook.caption_figures("<h1>Appendix A: Notes</h1>" + _output_image("1.png") * 3, page, appendix)
    captions = [html.unescape(re.sub(r"<[^>]+>", "", caption))
                for caption in re.findall(r"<figcaption>(.*?)</figcaption>", captioned)]
    assert captions == ["Figure A.1: The race, minute by minute.", "Figure A.2: Appendix A: Notes (1 of 2)",
                        "Figure A.3: Appendix A: Notes (2 of 2)"]
    assert hook.figure_prefix(get_chapter("07")) == "7" and hook.figure_prefix(get_chapter("A")) == "A"
    with pytest.raises(PluginError, match=r"chapters/A_notes.ipynb: the page shows 2 figure\(s\) but the notebook "
                                          r"has 3 image output\(s\)"):
        hook.caption_figures(_output_image("1.png") * 2, page, appendix)


@pytest.mark.parametrize("chapter", [c for c in PAGES if c.id not in CAPTIONS_FROM_HEADINGS], ids=lambda c: c.id)
def test_every_figure_cell_starts_with_its_caption(chapter):
    """A cell that draws a figure starts with a one-sentence comment saying what it draws: the figure's caption."""
    from book_html import notebook_figures

    figures = notebook_figures(chapter.notebook)
    assert figures, f"chapter {chapter.id} has no figure"
    missing = sorted({figure.cell for figure in figures if figure.caption is None})
    assert not missing, (f"chapter {chapter.id}: cells {missing} draw a figure but do not start with a one-line "
                         "comment saying what it shows, e.g. '# Training and validation loss and accuracy.'")


_FIGURE_HTML = re.compile(r'<figure class="nb-figure">(.*?)</figure>', re.S)


def test_every_figure_has_a_numbered_caption(site):
    """On every notebook page each image is a figure with a caption numbered "Figure {chapter}.{n}:" in page order
    (n = 1, 2, ...), one per image output of the notebook; its alt text is the caption."""
    from book_html import notebook_figures
    from book_site import figure_prefix

    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        article = page[page.find("<article"):page.find("</article>")]
        figures = _FIGURE_HTML.findall(article)
        expected = len(notebook_figures(chapter.notebook))
        assert len(figures) == expected, f"chapter {chapter.id}: {len(figures)} captioned figures, {expected} images"
        assert article.count("<img") == len(figures), f"chapter {chapter.id}: an image without a caption"
        for number, figure in enumerate(figures, 1):
            caption = re.search(r"<figcaption>(.*?)</figcaption>", figure, re.S)
            assert caption, f"chapter {chapter.id}: figure {number} has no <figcaption>"
            text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", caption.group(1))).split())
            label = f"Figure {figure_prefix(chapter)}.{number}: "
            assert text.startswith(label) and len(text) > len(label) + 3, \
                f"chapter {chapter.id}: figure {number} is captioned {text!r}, not {label!r}..."
            alt = re.search(r'<img alt="([^"]*)"', figure)
            assert alt and html.unescape(alt.group(1)) == text.removeprefix(label), \
                f"chapter {chapter.id}: figure {number}'s alt text is not its caption"
            assert 'class="glightbox"' in figure, f"chapter {chapter.id}: figure {number} cannot be zoomed"
        assert "No description has been provided" not in page


def test_long_source_listings_are_folded(site):
    """No page shows a Code() listing longer than LONG_LISTING_LINES unfolded."""
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        for match in re.finditer(r'(<details class="nb-output"><summary>[^<]*</summary>)?<div class="highlight">'
                                 r"<pre>(.*?)</pre>", page, re.S):
            lines = match.group(2).rstrip("\n").count("\n") + 1
            assert lines <= LONG_LISTING_LINES or match.group(1), \
                f"chapter {chapter.id}: a {lines}-line listing is not folded"


def test_folding_hides_long_listings_and_outputs_and_keeps_short_ones():
    """The page hook's folding, on a listing and an output of each length (the chapters may show none)."""
    import book_html as hook

    def block(lines, listing):
        body = "\n".join(f"line {number}" for number in range(lines))
        pre = f"<pre>{body}</pre>"
        return '<div class="jp-RenderedText" data-mime-type="text/plain">' + (
            f'<div class="highlight">{pre}</div>' if listing else pre)

    long_listing = hook.fold_long_outputs(block(LONG_LISTING_LINES + 10, listing=True))
    assert f"<summary>Source: {LONG_LISTING_LINES + 10} lines (click to show)</summary>" in long_listing
    short_listing = block(LONG_LISTING_LINES, listing=True)
    assert hook.fold_long_outputs(short_listing) == short_listing
    long_output = hook.fold_long_outputs(block(hook.LONG_OUTPUT_LINES + 1, listing=False))
    assert f"<summary>Output: {hook.LONG_OUTPUT_LINES + 1} lines (click to show)</summary>" in long_output


# ---------- Printed prose wraps on phones; printed tables, model summaries and fit logs keep their rows ----------

# The issue's example: chapter 7's 602-character line.
CHAPTER_7_SENTENCE = ("Chapters 06 and 07 logged identical losses and accuracies for their first 8 epochs. "
                      "ReduceLROnPlateau first cut the learning rate from 0.001 to 0.0005 for epoch 9, after the "
                      "validation loss had not beaten its best (0.765) for 2 epochs. From epoch 9 on, only the "
                      "schedule differs: at epoch 9 the validation accuracy was 79.7% with it against 75.7% without"
                      " (already above the best of chapter 06's 15 epochs, 79.0%); at epoch 15, 82.5% against "
                      "78.5%, with a validation loss of 0.535 against 0.678. On the test set: 82.2% against 78.0%, "
                      "+4.2 points, all of it arising in the 7 epochs from the first cut on.\n")
FIT_LOG = ("Epoch 1/15\n"
           "352/352 - 70s - 199ms/step - accuracy: 0.4512 - loss: 1.5234 - val_accuracy: 0.5520 - val_loss: 1.2511\n"
           "Epoch 2/15\n"
           "352/352 - 66s - 187ms/step - accuracy: 0.5871 - loss: 1.1602 - val_accuracy: 0.6038 - val_loss: 1.1210\n")
PRINTED = {
    # Prose: wraps at every width.
    "a 600-character sentence": (CHAPTER_7_SENTENCE, True),
    "a sentence a line": ("seed 0: test accuracy 90.13% (validation 90.44%), run time 44.7 min\n"
                          "seed 1: test accuracy 89.67% (validation 89.18%), run time 29.4 min\n", True),
    "pipes between words": ("cifar-lessons 0.1.0 | TensorFlow 2.21.0 | Keras 3.15.1 | NumPy 2.4.6\n", True),
    "a blank line and trailing spaces": ("Chapter 05: 79.6% \n\nChapter 06: 79.6%   \n", True),
    # Tables: every line keeps its row, and the block scrolls on a phone.
    "aligned columns": ("epoch  1: val_loss 1.3399  best 1.3399  wait 0  trained at 0.001\n"
                        "epoch  2: val_loss 2.0177  best 1.3399  wait 1  trained at 0.001\n", False),
    "a classification report": ("              precision    recall  f1-score   support\n\n"
                                "    airplane      0.870     0.894     0.882      1000\n", False),
    "right-aligned labels (one space of indentation)": (" airplane: 99.8%\n     ship: 0.2%\n", False),
    "pprint's continuation lines": ("{'epochs': (15, 50),\n 'early_stopping': (False, True)}\n", False),
    "a tab": ("loss\t0.5350\n", False),
    "a model summary": ('Model: "cnn"\n'
                        "\u250f\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2501\u2533"
                        "\u2501\u2501\u2501\u2501\u2501\u2513\n"
                        "\u2503 Layer (type) \u2503 Param # \u2503\n"
                        "\u2502 conv2d (Conv2D) \u2502 896 \u2502\n", False),
    "a Keras 2 model summary": ("_________________________________________________________________\n"
                                " Layer (type)                Output Shape              Param #\n"
                                "=================================================================\n", False),
    "a Markdown table": ("| chapter | test accuracy |\n|---|---:|\n| 01 | 63.2% |\n", False),
    "a fit log": (FIT_LOG, False),
    "a fit log's epoch line alone": (FIT_LOG.splitlines()[1], False),
    "a progress bar": ("352/352 \u2501\u2501\u2501\u2501\u2501\u2501 70s 199ms/step - loss: 1.5234\n", False),
    "a Keras 2 progress bar": ("352/352 [==============================] - 70s 199ms/step - loss: 1.5234\n", False),
    "nothing": ("\n", False),
}


@pytest.mark.parametrize("name", PRINTED, ids=str)
def test_printed_prose_is_told_from_tables_and_logs(name):
    from book_html import is_prose

    text, prose = PRINTED[name]
    assert is_prose(text) is prose, f"{name} {'should' if prose else 'should not'} wrap:\n{text}"


def test_the_hook_marks_printed_prose_only():
    """Printed text outputs that are prose get PROSE_CLASS on their <pre>, folded or not; tables, source
    listings and HTML outputs (Rich's model summary) do not."""
    import book_html as hook

    def output(text, kind="jp-RenderedText", listing=False, attrs=""):
        pre = f"<pre{attrs}>{html.escape(text)}</pre>"
        return (f'<div class="{kind} jp-OutputArea-output" data-mime-type="text/plain">'
                + (f'<div class="highlight">{pre}</div>' if listing else pre) + "</div>")

    marked = f'<pre class="{hook.PROSE_CLASS}">'
    assert marked in hook.fold_long_outputs(output(CHAPTER_7_SENTENCE))
    long_prose = hook.fold_long_outputs(output("One sentence, and another.\n" * (hook.LONG_OUTPUT_LINES + 5)))
    assert "<details" in long_prose and marked in long_prose
    coloured = ('<div class="jp-RenderedText jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr">'
                '<pre><span class="ansi-yellow-fg">Warning:</span> it&#39;s a &lt;sentence&gt;.</pre></div>')
    assert marked in hook.fold_long_outputs(coloured)
    assert 'class="nb-prose x"' in hook.fold_long_outputs(output("A sentence.", attrs=' class="x"'))
    for name, block in {
        "aligned columns": output(PRINTED["aligned columns"][0]),
        "a fit log": output(FIT_LOG),
        "a long table": output("epoch  1: val_loss 1.3399\n" * (hook.LONG_OUTPUT_LINES + 5)),
        "a source listing": output("def f(x): return x", kind="jp-RenderedHTMLCommon jp-RenderedHTML", listing=True),
        "Rich's output": output('Model: "cnn"', kind="jp-RenderedHTMLCommon jp-RenderedHTML",
                                attrs=' style="white-space:pre;overflow-x:auto"'),
    }.items():
        assert hook.PROSE_CLASS not in hook.fold_long_outputs(block), f"{name} was marked as prose"


_PRINTED_OUTPUT = re.compile(r'<div class="jp-RenderedText[^"]*"[^>]*>\s*(?:<details class="nb-output">'
                             r"<summary>[^<]*</summary>)?<pre([^>]*)>(.*?)</pre>", re.S)


def test_printed_prose_is_marked_on_the_pages_and_styled_to_wrap(site):
    """On the built pages chapter 7's 602-character sentence is marked to wrap, its aligned epoch table is not,
    and nothing marked has columns, box drawing or a fit log; extra.css (not pruned) carries the rule."""
    marked, unmarked = {}, {}
    for chapter in PAGES:
        page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
        found = [(attrs, html.unescape(re.sub(r"<[^>]+>", "", body))) for attrs, body in _PRINTED_OUTPUT.findall(page)]
        marked[chapter.id] = [text for attrs, text in found if "nb-prose" in attrs]
        unmarked[chapter.id] = [text for attrs, text in found if "nb-prose" not in attrs]
        assert page.count("nb-prose") == len(marked[chapter.id]), \
            f"chapter {chapter.id}: nb-prose outside a printed output"
    assert any(len(line) > 500 for text in marked["07"] for line in text.splitlines()), \
        "chapter 7's long sentence is not marked to wrap"
    assert any(re.search(r"\S  +\S", text) for text in unmarked["07"]), "chapter 7's aligned table was marked"
    for chapter_id, texts in marked.items():
        for text in texts:
            assert not re.search(r"\S  +\S|^[ \t]+\S|[\u2500-\u257f]|^\d+/\d+ - ", text, re.M), \
                f"chapter {chapter_id}: marked as prose, but a table or a log:\n{text[:300]}"
    css = (site / "stylesheets" / "extra.css").read_text()
    rule = re.search(r"\.jp-RenderedText pre\.nb-prose\s*\{([^}]*)\}", css)
    assert rule and "pre-wrap" in rule.group(1) and "break-word" in rule.group(1), "extra.css has no nb-prose rule"


# ---------- Formulas: LaTeX in Markdown cells is MathML on the pages ----------

def test_every_formula_in_the_notebooks_converts():
    """Every formula of every chapter notebook converts to clean MathML (the build fails otherwise)."""
    failures, count = [], 0
    for chapter in PAGES:
        for formulas in notebook_formulas(chapter.notebook).values():
            for display, tex in formulas:
                count += 1
                try:
                    assert latex_to_mathml(tex, display).startswith("<math")
                except FormulaError as error:
                    failures.append(f"chapter {chapter.id}: {tex!r}: {error}")
    assert not failures, "\n".join(failures)
    assert count, "no formula in any notebook: the check checked nothing"


@pytest.mark.parametrize("tex", [r"\frac{1}", r"\foo x", r"x^", r"\left( x", r"\operatorname{arg\,max}_x",
                                 r"\begin{aligned}a &= b\end{aligned}"])
def test_a_formula_latex2mathml_mangles_is_an_error(tex):
    with pytest.raises(FormulaError):
        latex_to_mathml(tex)


def test_latex2mathml_fixes():
    """Where latex2mathml departs from TeX, the hook puts it right (see hooks/book_mathml.py)."""
    bars = latex_to_mathml(r"\bigl|x\bigr|")
    assert 'form="prefix"' in bars and 'form="postfix"' in bars and 'minsize="1.2em"' in bars
    assert 'lspace="0em"' in latex_to_mathml("1/2") and "<mi>acc</mi>" in latex_to_mathml(r"\operatorname{acc}(x)")
    assert '<mi mathvariant="normal">&#x0039B;</mi>' in latex_to_mathml(r"\Lambda")
    assert "<mtext>d</mtext>" in latex_to_mathml(r"\mathrm{d}x")
    assert "&#x0223C;" in latex_to_mathml(r"x \sim y")
    assert "\\{" not in latex_to_mathml(r"\bigl\{ x \bigr\}")


def test_formulas_only_in_markdown_prose(tmp_path):
    """Formulas become MathML in Markdown cells only: an escaped dollar stays a dollar, code keeps its dollars,
    outputs are left alone, and a formula that does not convert is reported."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    cells = {"c1": r"Costs \$5 or \$10; $x^2$ and `$HOME` and $$\frac{a}{b}$$",
             "c2": r"Broken: $\frac{1}$."}
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "id": key, "metadata": {}, "source": text}
                                              for key, text in cells.items()], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))
    page = "".join(f'<div class="jp-Cell jp-MarkdownCell" id="cell-id={key}"><div class="jp-RenderedHTMLCommon '
                   f'jp-RenderedMarkdown jp-MarkdownOutput">{markdown2html_mistune(text)}</div></div>'
                   for key, text in cells.items())
    page += '<div class="jp-OutputArea-output"><pre>$y$ costs $3</pre></div>'
    converted, failures = formulas_to_mathml(page, notebook_formulas(notebook))
    assert converted.count("<math") == 2 and converted.count('display="block"') == 1
    assert "$5 or $10" in converted and "<code>$HOME</code>" in converted and "<pre>$y$ costs $3</pre>" in converted
    assert failures == [(r"\frac{1}", failures[0][1])] and "parts" in failures[0][1]
    assert '<code class="math-error">' in converted


def test_a_formula_that_does_not_convert_fails_the_build(monkeypatch):
    import book_site as hook
    from mkdocs.exceptions import PluginError

    monkeypatch.setattr(hook, "_formula_errors", [("chapters/x.ipynb", r"\frac{1}", "a missing part")])
    with pytest.raises(PluginError, match=r"chapters/x.ipynb.*frac"):
        hook.on_post_build({"site_dir": "unused"})


def prose(page: str) -> str:
    """A page's text outside code, outputs' <pre>, formulas and scripts."""
    article = page[page.find("<article"):page.find("</article>")]
    article = re.sub(r"<(math|code|pre|script|style)\b.*?</\1>", " ", article, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", article))


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_chapter_formulas_are_mathml(site, chapter):
    """Each formula of the notebook is one MathML element on the page, and no raw LaTeX is left in the prose."""
    formulas = [item for found in notebook_formulas(chapter.notebook).values() for item in found]
    page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
    maths = re.findall(r'<math xmlns="http://www.w3.org/1998/Math/MathML" display="(block|inline)"', page)
    assert len(maths) == len(formulas), f"chapter {chapter.id}: {len(formulas)} formulas, {len(maths)} MathML"
    assert maths.count("block") == sum(display for display, _ in formulas)
    assert page.count('<span class="math-display">') == maths.count("block")
    text = prose(page)
    raw = re.search(r".{0,40}(\$\$|\\begin\{|\\[A-Za-z]{2,}|\$[^$\n]{1,80}\$).{0,40}", text)
    assert not raw, f"chapter {chapter.id}: raw LaTeX in the prose: {raw.group(0)!r}"


def test_search_snippets_are_text_not_widgets(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    for entry in index["docs"]:
        text = entry["text"]
        assert "Copied!" not in text, f"{entry['location']}: copy-button text in the search index"
        assert not re.match(r"(<[^>]+>)*\s*(In|Out)\s*\[\d*\]:", text), f"{entry['location']}: starts with a prompt"


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_chapter_header_states_the_record_and_links_the_notebook(site, chapter):
    page = (site / "chapters" / f"{chapter.notebook.stem}.html").read_text()
    match = re.search(r'<div class="chapter-header".*?</div>', page, re.S)
    assert match, f"chapter {chapter.id} has no header"
    header = html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))
    studied = get_chapter(chapter.uses or chapter.id)
    record = chapter_status(studied)["record"]
    if chapter.slug == "conclusion":  # compares every chapter: one model's numbers would mislead there
        assert "every training chapter" in header and "%" not in header and " min" not in header, header
        assert f"chapter {int(chapter.uses)}" not in header, header
        results = re.search(r'href="([^"]+)">Results</a>', match.group(0))
        assert results and (site / "chapters" / results.group(1)).resolve() == (site / "results.html").resolve()
    elif record is not None:
        assert f"{100 * record['test_accuracy']:.1f}%" in header
        assert f"{record['wall_time_s'] / 60:.1f} min" in header
        assert record["hardware"]["cpu"] in header
    if not chapter.uses:
        assert chapter.technique in header
    links = dict((text, href) for href, text in re.findall(r'<a class="md-button" href="([^"]+)"[^>]*>([^<]+)</a>',
                                                           match.group(0)))
    download = links["Download the notebook"]
    assert (site / "chapters" / download).is_file(), f"the download link {download} leads nowhere"
    # The download is the notebook to run: every cell of the committed one, without its outputs.
    downloaded = json.loads((site / "chapters" / download).read_text())
    committed = json.loads(chapter.notebook.read_text())
    assert [cell["source"] for cell in downloaded["cells"]] == [cell["source"] for cell in committed["cells"]]
    assert not any(cell.get("outputs") for cell in downloaded["cells"]), "the downloaded notebook carries outputs"
    repo_url = mkdocs_config()["repo_url"].rstrip("/")
    assert links["View in the repository"] == f"{repo_url}/blob/main/chapters/{chapter.notebook.name}"
    assert links["Open in Colab"] == ("https://colab.research.google.com/github/"
                                      f"{repo_url.removeprefix('https://github.com/')}/blob/main/chapters/"
                                      f"{chapter.notebook.name}")
    edit = re.search(r'href="([^"]+)"[^>]*title="Edit this page"', page)
    assert edit and edit.group(1) == f"{repo_url}/edit/main/chapters/{chapter.notebook.name}"
    assert (REPO_ROOT / "chapters" / chapter.notebook.name).is_file()


def test_markdown_pages_edit_their_source(site):
    repo_url = mkdocs_config()["repo_url"].rstrip("/")
    for page, source in (("index.html", "docs/index.md"), ("results.html", "docs/results.md")):
        edit = re.search(r'href="([^"]+)"[^>]*title="Edit this page"', (site / page).read_text())
        assert edit and edit.group(1) == f"{repo_url}/edit/main/{source}"
        assert (REPO_ROOT / source).is_file()


def page_text(site, path, separator=" "):
    return html.unescape(re.sub(r"<[^>]+>", separator, (site / path).read_text()))


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_every_chapter_has_a_page(site, chapter):
    page = site / "chapters" / f"{chapter.notebook.stem}.html"
    assert page.is_file(), f"no page for chapter {chapter.id}"
    assert f"{chapter.label}: {chapter.title}" in page.read_text()


def test_results_page_shows_the_recorded_numbers(site):
    text = " ".join(page_text(site, "results.html").split())
    recorded = [(c, chapter_status(c)) for c in training_chapters()]
    recorded = [(c, s["record"]) for c, s in recorded if s["status"] == "ok"]
    if not recorded:
        pytest.skip("no chapter has a recorded run yet")
    from cifar_lessons.book.report import comparison_rows

    means = {row["id"]: row["test_accuracy"] for row in comparison_rows()}
    for chapter, record in recorded:
        minutes = f"{record['wall_time_s'] / 60:.1f} min"
        # The row shows the mean over the recorded seeds, then each seed's value, the main run's among them.
        mean, main = f"{100 * means[chapter.id]:.1f}", f"{100 * record['test_accuracy']:.1f}"
        assert re.search(rf"{chapter.id} {re.escape(chapter.title)} {re.escape(mean)}(?: ± [0-9.]+)?% "
                         rf"[^%]*?\b{re.escape(main)}\b", text), \
            f"chapter {chapter.id}: mean {mean}% and main run {main} not on the results page"
        assert minutes in text and record["data"]["name"] in text
    page = (site / "results.html").read_text()
    charts = re.findall(r'<img[^>]+src="(figures/results-\d+[.]png)"', page)
    assert len(charts) == 2 and all((site / chart).is_file() for chart in charts), (
        "the results page should show two charts: accuracy by chapter, and chapter 11's race")
    from cifar_lessons.going_further.race import race_summary

    race = race_summary()
    assert f"results/{race['baseline_run']}" in text and all(f"results/{run}" in text for run in race["runs"])


def test_home_page_lists_chapters_with_accuracy(site):
    text = page_text(site, "index.html")
    for chapter in CHAPTERS:
        assert chapter.title in text and chapter.technique in text
    code = page_text(site, "index.html", separator="")  # highlighted code is split into spans
    assert "bash scripts/book.sh" in code and "bash scripts/test.sh" in code


@pytest.fixture(scope="module")
def served(site):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# CI sets this (.ci/run): there a missing Chromium fails the browser tests instead of skipping them.
REQUIRE_BROWSER = os.environ.get("CIFAR_LESSONS_REQUIRE_BROWSER") == "1"


def no_browser():
    """Fail when CI requires the browser tests, otherwise skip with the reason."""
    reason = "Chromium is not installed (apt-get install chromium chromium-driver); .ci/run installs it"
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (CIFAR_LESSONS_REQUIRE_BROWSER=1: the browser tests must run)")
    pytest.skip(reason)


def render(url: str) -> str:
    """The DOM after headless Chromium has loaded and run the page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        no_browser()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--virtual-time-budget=5000", "--dump-dom"]
    result = subprocess.run([chromium, *flags, url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.browser
def test_browser_renders_home_and_a_chapter_with_a_plot(served):
    home = render(served + "/")
    assert "cifar-lessons" in home and CHAPTERS[0].title in home
    chapter = CHAPTERS[0]
    dom = render(f"{served}/chapters/{chapter.notebook.stem}.html")
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in dom
    assert re.search(r'<img[^>]+src="figures/[^"]+[.]png"', dom), "no rendered plot on the chapter page"


LIGHT_ENTRY_POINTS = {
    "import cifar_lessons.book.chapters": "import cifar_lessons.book.chapters",
    "the MkDocs hook": "import sys\nsys.path.insert(0, 'hooks')\nimport book_site, cifar_lessons.book.report",
    "cifar-lessons --help": "from cifar_lessons.book.cli import main\ntry:\n    main(['--help'])\n"
                            "except SystemExit:\n    pass",
    "cifar-lessons list": "from cifar_lessons.book.cli import main\nmain(['list'])",
    "cifar-lessons report": "from cifar_lessons.book.cli import main\nmain(['report'])",
}


@pytest.mark.parametrize("entry", LIGHT_ENTRY_POINTS, ids=str)
def test_light_entry_points_do_not_import_tensorflow(entry):
    """The registry, the site hook and the CLI's light commands stay fast: no TensorFlow, no Keras."""
    probe = LIGHT_ENTRY_POINTS[entry] + (
        "\nimport sys\nheavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)"
        "\nprint('HEAVY:', ','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY: \n" in result.stdout or result.stdout.rstrip().endswith("HEAVY:"), \
        f"{entry} imported {result.stdout.rsplit('HEAVY:', 1)[-1].strip()}"


# ---------- In a real browser (headless Chromium through Selenium) ----------

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:home|root|work|tmp|Users|mnt|opt|srv|var|private)/[\w.-]+")
ANSI = re.compile(r"\x1b\[|\[(?:\d+;)*\d+m")
SCROLLERS = ("pre, code, table, .highlight, .jp-OutputArea-output, .md-typeset__scrollwrap, details.nb-output, "
             ".math-display")
OVERFLOW_JS = f"""
const width = document.documentElement.clientWidth;
const offenders = [];
for (const el of document.querySelectorAll('.md-content *')) {{
  if (el.closest('{SCROLLERS}')) continue;
  const box = el.getBoundingClientRect();
  if (box.width > 0 && box.right > width + 1)
    offenders.push(el.tagName + '.' + el.className + ' ' + Math.round(box.right));
}}
// Printed prose wraps instead (extra.css: pre.nb-prose): it never scrolls sideways.
const prose = [...document.querySelectorAll('pre.nb-prose')].filter(pre => pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.slice(0, 60));
return [document.documentElement.scrollWidth, width, offenders.slice(0, 5), prose.slice(0, 3)];
"""


@pytest.fixture(scope="module")
def browser():
    if REQUIRE_BROWSER:
        import selenium.webdriver as webdriver  # a dev dependency: CI fails without it
    else:
        webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium (a dev dependency)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        no_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def site_pages(site) -> list[str]:
    return sorted(str(path.relative_to(site)) for path in site.rglob("*.html") if path.name != "404.html")


def open_page(driver, url: str, width: int = 1400, height: int = 1000, dark: bool = False):
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})
    driver.get("about:blank")
    driver.get_log("browser")  # start each page with an empty console
    driver.get(url)
    driver.execute_script("localStorage.clear()")  # Material remembers the scheme: follow the emulated one
    driver.get(url)
    driver.execute_script("return document.fonts.ready")
    scheme = driver.execute_script("return document.body.getAttribute('data-md-color-scheme')")
    assert scheme == ("slate" if dark else "default"), f"{url}: colour scheme {scheme}"


def full_screenshot(driver, name: str, max_height: int = 9000):
    """Save the whole page (up to max_height pixels) under build/screenshots."""
    width = driver.execute_script("return window.innerWidth")
    height = min(max_height, driver.execute_script("return document.documentElement.scrollHeight"))
    original = driver.get_window_size()
    driver.set_window_size(original["width"], height)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(original["width"], original["height"])
    return width


def figure_pixels(driver, image):
    """The figure as displayed, as an RGB Pillow image."""
    from PIL import Image

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", image)
    driver.execute_script("return arguments[0].decode()", image)
    return Image.open(io.BytesIO(image.screenshot_as_png)).convert("RGB")


@pytest.mark.browser
def test_every_page_loads_cleanly(site, served, browser):
    """No console errors; no absolute machine paths or raw ANSI codes in what the reader sees."""
    problems = []
    for page in site_pages(site):
        open_page(browser, f"{served}/{page}")
        errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        if errors:
            problems.append(f"{page}: console errors {errors[:3]}")
        text = browser.execute_script("return document.body.innerText")
        if match := ABSOLUTE_PATH.search(text):
            problems.append(f"{page}: absolute path {match.group(0)!r}")
        if match := ANSI.search(text):
            problems.append(f"{page}: raw ANSI code {match.group(0)!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: c.id)
def test_chapter_figures_are_drawn_and_legible_in_both_schemes(site, served, browser, chapter):
    """Every figure has content (not one colour), fits the column, is a HiDPI PNG, and is a light card in both
    schemes."""
    from selenium.webdriver.common.by import By

    url = f"{served}/chapters/{chapter.notebook.stem}.html"
    problems = []
    for dark in (False, True):
        open_page(browser, url, dark=dark)
        full_screenshot(browser, f"{chapter.id}-1400-{'dark' if dark else 'light'}")
        column = browser.execute_script("return document.querySelector('.md-content').getBoundingClientRect().width")
        images = browser.find_elements(By.CSS_SELECTOR, ".jp-RenderedImage img")
        for number, image in enumerate(images, 1):
            pixels = figure_pixels(browser, image)
            natural = browser.execute_script("return arguments[0].naturalWidth", image)
            if image.size["width"] > column + 1:
                problems.append(f"figure {number} is {image.size['width']} px wide in a {column:.0f} px column")
            elif not dark and natural > 2.5 * image.size["width"]:  # drawn too wide: its text shrinks with it
                problems.append(f"figure {number} is drawn {natural} px wide and shown at {image.size['width']} px; "
                                "draw it at the column width (cifar_lessons.style.COLUMN_WIDTH)")
            elif not dark and natural < 1.5 * image.size["width"]:  # a 1x PNG: blurred on HiDPI and when zoomed
                problems.append(f"figure {number} is drawn at {natural} px for {image.size['width']} px on the page: "
                                "not the retina PNG that cifar_lessons.style.use() asks for")
            lowest, highest = zip(*pixels.getextrema())
            if max(highest[c] - lowest[c] for c in range(3)) < 8:
                problems.append(f"figure {number} is blank (one colour){' in dark mode' if dark else ''}")
            # Ink on paper in both schemes: the figure's edge is its light paper, not the page showing through
            # (in the dark scheme a transparent figure's grey ink would sit on the dark page at under 4.5:1).
            grey = pixels.convert("L")
            frame = [grey.getpixel((x, y)) for x in range(grey.width) for y in (1, grey.height - 2)]
            frame += [grey.getpixel((x, y)) for y in range(grey.height) for x in (1, grey.width - 2)]
            light = sum(value >= 200 for value in frame) / len(frame)
            if light < 0.5:
                problems.append(f"figure {number}: its edge is only {light:.0%} paper{' in dark mode' if dark else ''}")
    assert not problems, f"chapter {chapter.id}: " + "; ".join(problems)


@pytest.mark.browser
def test_phone_width_has_no_horizontal_overflow(site, served, browser):
    """At 390 px only code blocks, outputs and tables may scroll sideways, inside themselves; printed prose wraps."""
    problems = []
    for page in site_pages(site):
        open_page(browser, f"{served}/{page}", width=390, height=844)
        scroll_width, width, offenders, prose = browser.execute_script(OVERFLOW_JS)
        if scroll_width > width + 1 or offenders:
            problems.append(f"{page}: page {scroll_width} px wide in {width} px; {offenders}")
        if prose:
            problems.append(f"{page}: printed prose scrolls sideways: {prose}")
        if page in ("index.html", "chapters/01_data_and_baseline.html", "chapters/03_deeper_cnn.html"):
            full_screenshot(browser, "390-" + page.replace("/", "-").removesuffix(".html"), max_height=6000)
    assert not problems, "\n".join(problems)


PRINTED_JS = """
return [...document.querySelectorAll('.jp-RenderedText pre')].filter(pre => pre.getClientRects().length).map(pre => {
  const range = document.createRange();
  range.selectNodeContents(pre);
  const lines = pre.textContent.replace(/\\n$/, '').split('\\n');
  return {element: pre, prose: pre.classList.contains('nb-prose'), overflow: pre.scrollWidth - pre.clientWidth,
          whiteSpace: getComputedStyle(pre).whiteSpace, lines: lines.length,
          longest: Math.max(...lines.map(line => line.length)),
          rows: new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size};
});
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [412, 1280])
def test_printed_prose_wraps_and_printed_tables_scroll(site, served, browser, width):
    """Chapter 7 on a 412-pixel phone and a 1280-pixel laptop: its 602-character sentence (marked nb-prose) wraps
    inside the column, with no sideways scroll; on the phone its aligned epoch table keeps a row per printed line
    and scrolls inside its block, as every printed table does there."""
    chapter = get_chapter("07")
    open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=900)
    printed = browser.execute_script(PRINTED_JS)
    prose = [block for block in printed if block["prose"]]
    assert prose, "no printed output on chapter 7's page is marked as prose"
    problems = [f"prose scrolls {block['overflow']} px sideways ({block['whiteSpace']}): {block['element'].text[:60]!r}"
                for block in prose if block["overflow"] > 1 or block["whiteSpace"] != "pre-wrap"]
    longest = max(prose, key=lambda block: block["longest"])
    if longest["longest"] < 500 or longest["rows"] < 2:
        problems.append(f"the longest prose line ({longest['longest']} characters) shows on {longest['rows']} row(s)")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", longest["element"])
    longest["element"].screenshot(str(SCREENSHOTS / f"{chapter.id}-prose-{width}.png"))
    if width < 720:  # below 45em: only prose wraps
        tables = [block for block in printed if not block["prose"] and block["longest"] > 60]
        if not any(block["overflow"] > 1 for block in tables):
            problems.append(f"no printed table scrolls sideways: {[block['element'].text[:40] for block in tables]}")
        problems += [f"a printed table wraps ({block['rows']} rows for {block['lines']} lines, {block['whiteSpace']}): "
                     f"{block['element'].text[:60]!r}"
                     for block in tables if block["whiteSpace"] != "pre" or block["rows"] > block["lines"]]
        if tables:
            widest = max(tables, key=lambda block: block["overflow"])
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", widest["element"])
            widest["element"].screenshot(str(SCREENSHOTS / f"{chapter.id}-table-{width}.png"))
    assert not problems, f"chapter 7 at {width} px:\n" + "\n".join(problems)


CAPTIONS_JS = """
const luminance = ([r, g, b]) => {
  const linear = [r, g, b].map(v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
};
const rgba = colour => colour.match(/[\\d.]+/g).map(Number);
const background = el => {  // the first opaque background behind the element
  for (; el; el = el.parentElement) {
    const [r, g, b, a = 1] = rgba(getComputedStyle(el).backgroundColor);
    if (a > 0.99) return [r, g, b];
  }
  return [255, 255, 255];
};
const width = document.documentElement.clientWidth;
const text = parseFloat(getComputedStyle(document.querySelector('.md-typeset p')).fontSize);
return [...document.querySelectorAll('.jp-RenderedImage img')].map(img => {
  const caption = img.closest('figure.nb-figure')?.querySelector(':scope > figcaption');
  if (!caption) return {src: img.getAttribute('src'), caption: null};
  const box = caption.getBoundingClientRect(), image = img.getBoundingClientRect(), style = getComputedStyle(caption);
  const [r, g, b, a = 1] = rgba(style.color), behind = background(caption);
  const ink = [r, g, b].map((v, i) => a * v + (1 - a) * behind[i]);
  const [light, dark] = [luminance(ink), luminance(behind)].sort((x, y) => y - x);
  return {src: img.getAttribute('src'), caption: caption.innerText.trim(), left: box.left, right: box.right,
          width: box.width, height: box.height, below: box.top - image.bottom, viewport: width,
          clipped: caption.scrollWidth > caption.clientWidth + 1, visible: style.visibility === 'visible'
            && style.display !== 'none' && parseFloat(style.opacity) > 0.9,
          size: parseFloat(style.fontSize), text, contrast: (light + 0.05) / (dark + 0.05)};
});
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [412, 1280])
def test_figure_captions_are_visible(site, served, browser, width):
    """Chapter 7 on a 412-pixel phone and a 1280-pixel laptop, in both schemes: each figure's numbered caption shows
    just below it, inside the screen, smaller than the text and at 4.5:1 contrast or more; a click still zooms."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chapter = get_chapter("07")
    problems = []
    for dark in (False, True):
        scheme = "dark" if dark else "light"
        open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=900, dark=dark)
        found = browser.execute_script(CAPTIONS_JS)
        if len(found) < 2:
            problems.append(f"{scheme}: {len(found)} figure(s) on chapter 7's page, expected its two")
        for number, figure in enumerate(found, 1):
            where = f"{scheme}, figure {number} ({figure['src']})"
            if figure["caption"] is None:
                problems.append(f"{where}: no caption")
                continue
            if not re.match(rf"Figure 7\.{number}: \S", figure["caption"]):
                problems.append(f"{where}: captioned {figure['caption'][:40]!r}")
            if not figure["visible"] or figure["width"] < 50 or figure["height"] < 8:
                problems.append(f"{where}: the caption is not shown ({figure['width']:.0f}x{figure['height']:.0f} px)")
            if figure["left"] < 0 or figure["right"] > figure["viewport"] + 1 or figure["clipped"]:
                problems.append(f"{where}: the caption runs off the screen ({figure['left']:.0f}-{figure['right']:.0f} "
                                f"px of {figure['viewport']})")
            if not 0 <= figure["below"] < 30:
                problems.append(f"{where}: the caption is {figure['below']:.0f} px below its figure")
            if not 11 <= figure["size"] < figure["text"]:
                problems.append(f"{where}: caption at {figure['size']} px, text at {figure['text']} px")
            if figure["contrast"] < 4.5:
                problems.append(f"{where}: caption contrast {figure['contrast']:.1f}:1")
        captioned = browser.find_elements(By.CSS_SELECTOR, "figure.nb-figure")
        if captioned:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", captioned[0])
            captioned[0].screenshot(str(SCREENSHOTS / f"{chapter.id}-caption-{width}-{scheme}.png"))
    # Click-to-zoom still opens the figure in the lightbox.
    link = browser.find_element(By.CSS_SELECTOR, ".jp-RenderedImage a.glightbox")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    zoomed = WebDriverWait(browser, 10).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, ".glightbox-container .gslide-image img"))
    if not zoomed[0].get_attribute("src").endswith(link.get_attribute("href").rsplit("/", 1)[-1]):
        problems.append(f"the lightbox shows {zoomed[0].get_attribute('src')}, not {link.get_attribute('href')}")
    assert not problems, f"chapter 7 at {width} px:\n" + "\n".join(problems)


@pytest.mark.browser
def test_results_table_fits_the_column_at_1400_px(site, served, browser):
    open_page(browser, f"{served}/results.html")
    full_screenshot(browser, "results-1400-light")
    fits = browser.execute_script("const column = document.querySelector('.md-content__inner').clientWidth;"
                                  "return [...document.querySelectorAll('.md-typeset table')]"
                                  ".map(t => [t.scrollWidth, column])")
    assert fits, "no table on the results page"
    for table_width, column in fits:
        assert table_width <= column + 1, f"a results table is {table_width} px wide in a {column} px column"


@pytest.mark.browser
def test_site_reads_from_disk(site, browser):
    """Opened as file://, links lead to pages (not folder listings) and pages load without errors.

    Search from file:// relies on Material's iframe-worker shim, which stays at "Initializing search" in
    headless Chromium here: the README sends readers who want search to a local server.
    """
    from selenium.webdriver.common.by import By

    chapter = CHAPTERS[1]
    open_page(browser, (site / "index.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, f'.md-content a[href$="{chapter.notebook.stem}.html"]').click()
    assert f"Chapter {int(chapter.id)}: {chapter.title}" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, ".jp-RenderedImage img"), "no figure from file://"
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


@pytest.mark.browser
def test_search_finds_a_chapter(served, browser):
    """Served, search runs in its worker and finds a chapter by its title."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chapter = CHAPTERS[4]
    open_page(browser, f"{served}/index.html")
    browser.execute_script("document.querySelector('[data-md-toggle=search]').checked = true;"
                           "const input = document.querySelector('.md-search__input');"
                           "input.value = arguments[0]; input.dispatchEvent(new Event('input', {bubbles: true}));"
                           "input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true}));", chapter.title)
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    results = browser.execute_script("return document.querySelector('.md-search-result__list').textContent")
    assert chapter.title in results and "Copied!" not in results
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


LAYOUT_JS = """
const box = el => el.getBoundingClientRect();
const column = box(document.querySelector('.md-content__inner')).width;
const size = sel => {
  const el = document.querySelector(sel);
  return el ? parseFloat(getComputedStyle(el).fontSize) : null;
};
const overlaps = [...document.querySelectorAll('.jp-InputArea-editor .highlight pre')].map(pre => {
  const button = pre.querySelector('.md-code__nav, .md-clipboard'), code = pre.querySelector(':scope > code');
  return button && code && box(button).left < box(code).right - 1 ? code.textContent.split('\\n')[0] : null;
}).filter(Boolean);
const gaps = [];
for (const area of document.querySelectorAll('.jp-OutputArea')) {
  const children = [...area.children].filter(child => box(child).height > 0);
  for (let i = 1; i < children.length; i++) {
    const gap = box(children[i]).top - box(children[i - 1]).bottom;
    if (Math.abs(gap) > 1) gaps.push(Math.round(gap));
  }
}
const rich = [...document.querySelectorAll('.jp-RenderedHTML pre')].filter(pre => pre.textContent.includes('\u2503'))
  .map(pre => getComputedStyle(pre).lineHeight === 'normal' ? 99  // 'normal' with box drawing: ~2.5 em
              : parseFloat(getComputedStyle(pre).lineHeight) / parseFloat(getComputedStyle(pre).fontSize));
const chips = [...document.querySelectorAll('.celltoolbar, .cell-tag')].filter(el => box(el).height > 0).length;
return {column, notebook: box(document.querySelector('.jp-Notebook')).width,
        header: box(document.querySelector('.chapter-header')).width,
        input: size('.jp-InputArea-editor .highlight pre > code'), output: size('.jp-RenderedText pre'),
        overlaps, gaps, rich, chips};
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 390])
def test_notebook_layout(site, served, browser, width):
    """Cells use the whole column (not 32 px less beside the edit button), code and outputs share one readable
    size, the copy button covers no code, one cell's outputs read as one block, Rich tables are not double-spaced,
    and cell-tag chips are hidden."""
    problems = []
    for chapter in (CHAPTERS[0], get_chapter("11")):
        open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", width=width, height=1000)
        found = browser.execute_script(LAYOUT_JS)
        where = f"chapter {chapter.id} at {width} px"
        if abs(found["notebook"] - found["column"]) > 1 or abs(found["header"] - found["column"]) > 1:
            problems.append(f"{where}: notebook {found['notebook']:.0f} px, header {found['header']:.0f} px "
                            f"in a {found['column']:.0f} px column")
        if found["input"] != found["output"] or found["input"] < 12:
            problems.append(f"{where}: code at {found['input']} px, outputs at {found['output']} px")
        if found["overlaps"]:
            problems.append(f"{where}: the copy button covers code: {found['overlaps'][:2]}")
        if found["gaps"]:
            problems.append(f"{where}: gaps between the outputs of one cell: {found['gaps'][:5]} px")
        if any(ratio > 1.4 for ratio in found["rich"]):
            problems.append(f"{where}: Rich table line height {max(found['rich']):.2f} em")
        if found["chips"]:
            problems.append(f"{where}: {found['chips']} cell-tag chips shown")
        if chapter.id == "01" and not found["rich"]:
            problems.append(f"{where}: no model summary found (the check checked nothing)")
    assert not problems, "\n".join(problems)


WRAPPED_NUMBERS_JS = """
const wrapped = [];
let cells = 0;
for (const cell of document.querySelectorAll('.md-typeset__table td, .md-typeset__table th')) {
  if (getComputedStyle(cell).textAlign !== 'right' || !cell.textContent.trim()) continue;
  cells++;
  const range = document.createRange();
  range.selectNodeContents(cell);
  const tops = new Set([...range.getClientRects()].map(rect => Math.round(rect.top)));
  if (tops.size > 1) wrapped.push(cell.textContent.trim());
}
return [cells, wrapped];
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1400, 390])
def test_table_numbers_stay_on_one_line(site, served, browser, width):
    """Right-aligned columns (accuracies, minutes) never break inside a number ("63.0 ±" / "0.1%")."""
    problems, checked = [], 0
    for page in ("index.html", "results.html"):
        open_page(browser, f"{served}/{page}", width=width, height=1000)
        cells, wrapped = browser.execute_script(WRAPPED_NUMBERS_JS)
        checked += cells
        if wrapped:
            problems.append(f"{page} at {width} px: {wrapped[:5]}")
    assert checked, "no right-aligned table cell found"
    assert not problems, "\n".join(problems)


MATH_JS = """
const text = el => getComputedStyle(el.closest('p, li, td') || el.parentElement).color;
return [...document.querySelectorAll('math')].map(math => {
  const box = math.getBoundingClientRect();
  return [math.namespaceURI, getComputedStyle(math).display, Math.round(box.width), Math.round(box.height),
          getComputedStyle(math).color === text(math), math.textContent.trim().slice(0, 30)];
});
"""


@pytest.mark.browser
def test_formulas_are_drawn_as_mathml(site, served, browser):
    """Chromium lays the formulas out as MathML (block or inline), in the text colour of both schemes."""
    from selenium.webdriver.common.by import By

    pages = [c for c in PAGES if any(notebook_formulas(c.notebook).values())]
    assert pages, "no chapter has a formula"
    problems = []
    for chapter in pages:
        for dark in (False, True):
            open_page(browser, f"{served}/chapters/{chapter.notebook.stem}.html", dark=dark)
            drawn = browser.execute_script(MATH_JS)
            if not drawn:
                problems.append(f"chapter {chapter.id}: no MathML on the page, though the notebook has formulas")
            for namespace, display, width, height, same_colour, text in drawn:
                if namespace != "http://www.w3.org/1998/Math/MathML" or display not in ("block math", "math"):
                    problems.append(f"chapter {chapter.id}: {text!r} is not laid out as MathML ({display})")
                elif width < 4 or height < 8:
                    problems.append(f"chapter {chapter.id}: {text!r} is drawn {width}x{height} px")
                elif not same_colour:
                    problems.append(f"chapter {chapter.id}: {text!r} not in the text colour{' (dark)' * dark}")
            display_math = browser.find_elements(By.CSS_SELECTOR, ".math-display")
            if display_math:
                browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", display_math[0])
                display_math[0].screenshot(str(SCREENSHOTS / f"{chapter.id}-formula-{'dark' if dark else 'light'}.png"))
    assert not problems, "\n".join(problems[:20])


def test_search_titles_have_no_pilcrow_and_notebook_headings_have_materials_permalinks(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    titles = [doc["title"] for doc in index["docs"]]
    assert titles and not [title for title in titles if "\u00b6" in title]
    page = (site / "chapters" / get_chapter("02").notebook.with_suffix(".html").name).read_text()
    assert 'class="anchor-link"' not in page and '<a class="headerlink" href="#the-technique"' in page


def test_the_404_page_and_the_sitemap_work_under_the_project_path(site):
    from urllib.parse import urlparse

    site_url = mkdocs_config()["site_url"]
    path = urlparse(site_url).path  # /REPO/ on GitHub Pages: the 404 page is served at any depth below it
    assert path.startswith("/") and path.endswith("/") and len(path) > 1
    not_found = (site / "404.html").read_text()
    assert f'href="{path}assets/stylesheets/main.' in not_found
    sitemap = (site / "sitemap.xml").read_text()
    for chapter in PAGES:
        assert f"<loc>{site_url}chapters/{chapter.notebook.with_suffix('.html').name}</loc>" in sitemap


def test_chapters_link_to_chapter_1s_training_section_on_the_site_and_in_jupyter(site):
    for chapter in training_chapters()[1:8]:
        source = " ".join(cell.source for cell in nbformat.read(chapter.notebook, as_version=4).cells)
        assert "](01_data_and_baseline.ipynb#training)" in source  # works in Jupyter and Colab
        page = (site / "chapters" / chapter.notebook.with_suffix(".html").name).read_text()
        assert 'href="01_data_and_baseline.html#training"' in page  # and on the site
        assert f'href="{chapter.notebook.name}" download' in page  # the download button keeps the notebook
    assert 'id="training"' in (site / "chapters" / "01_data_and_baseline.html").read_text()


def test_links_between_notebooks_lead_to_pages(site):
    """A link from one notebook to another names the .ipynb (for Jupyter and Colab); on the site it must lead to
    the page, and only the download button may point at a notebook file."""
    for chapter in PAGES:
        page = (site / "chapters" / chapter.notebook.with_suffix(".html").name).read_text()
        to_notebooks = [tag for tag in re.findall(r"<a [^>]*href=\"(?!https?:)[^\"#]*\.ipynb[^\"]*\"[^>]*>", page)
                        if " download" not in tag]
        assert not to_notebooks, f"{chapter.label} links a notebook file instead of its page: {to_notebooks}"
    eleven = (site / "chapters" / "11_going_further.html").read_text()
    assert 'href="A_fast_recipe_notes.html"' in eleven


def test_every_citation_in_the_chapters_is_in_the_references(site):
    """An author-year citation in any chapter's prose names a work the References page lists, with its chapter."""
    references = (REPO_ROOT / "docs" / "references.md").read_text()
    entries = [" ".join(entry.split()) for entry in references.split("\n- ")[1:]]
    cited = re.compile(r"(?:van )?([A-Z][a-zü]+)(?: (?:&|and) [A-Z][a-z]+| et al\.)?,? \(?(\d{4})\)?")
    for chapter in PAGES:
        text = " ".join(cell.source for cell in nbformat.read(chapter.notebook, as_version=4).cells
                        if cell.cell_type == "markdown")
        for author, year in set(cited.findall(" ".join(text.split()))):
            if not 1940 < int(year) < 2030 or author in {"Chapter", "Keras", "Python", "December"}:
                continue
            matching = [entry for entry in entries if author in entry.split(" (")[0] and f"({year})" in entry]
            assert matching, f"chapter {chapter.id} cites {author} {year}, which docs/references.md does not list"
            kind, number = chapter.label.split()  # Chapter 11, Appendix A
            assert re.search(rf"{kind}(?:es|s)? [^.]*\b{number}\b", matching[0]), \
                f"docs/references.md does not name {chapter.label} for {author} {year}"
    assert (site / "references.html").is_file()
