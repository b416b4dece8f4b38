"""The prose of the committed notebooks: what a reader sees in the Markdown cells."""

from __future__ import annotations

import json
import re

import pytest

from cifar_lessons.book.chapters import PAGES

# A tab, carriage return, form feed or other control character in Markdown is almost always a LaTeX
# command whose backslash was eaten by a Python string ("\frac" -> form feed + "rac").
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]|\t")


@pytest.mark.parametrize("chapter", PAGES, ids=lambda chapter: chapter.id)
def test_markdown_has_no_control_characters(chapter):
    notebook = json.loads(chapter.notebook.read_text())
    problems = []
    for index, cell in enumerate(notebook["cells"]):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            problems += [f"cell {index}: {text[max(0, m.start() - 20):m.end() + 20]!r}" for m in CONTROL.finditer(text)]
    assert not problems, f"{chapter.notebook.name} has control characters in its prose: {problems}"
