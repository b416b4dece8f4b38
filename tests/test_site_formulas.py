"""Formulas: LaTeX in the notebooks' Markdown cells is clean MathML on the pages, where latex2mathml departs from
TeX the hook puts it right, and a formula that does not convert fails the build."""

from __future__ import annotations

import html
import json
import re

import pytest
from book_mathml import FormulaError, formulas_to_mathml, latex_to_mathml, notebook_formulas

from cifar_lessons.book.chapters import PAGES


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
