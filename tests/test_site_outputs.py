"""Printed outputs on the chapter pages: long listings and outputs are folded, printed prose is marked to wrap on
phones, and printed tables, model summaries and fit logs keep their rows."""

from __future__ import annotations

import html
import re

import pytest
from book_html import LONG_LISTING_LINES

from cifar_lessons.book.chapters import PAGES


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
