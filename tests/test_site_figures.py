"""Numbered captions: every figure on a chapter page is "Figure 7.2: ..." with the first comment line of its cell,
and a page whose figures do not pair with its notebook's image outputs fails the build."""

from __future__ import annotations

import html
import re
import types

import nbformat
import pytest

from cifar_lessons.book.chapters import PAGES, get_chapter

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
