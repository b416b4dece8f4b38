"""Insert the drafted blocks into notebooks 05-08 (structure of the `code` branch)."""

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

sys.path.insert(0, str(Path(__file__).parent))
from cells import blocks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def find(cells, prefix, start=0):
    for index in range(start, len(cells)):
        if cells[index].source.lstrip().startswith(prefix):
            return index
    raise KeyError(prefix)


def code_intro(text):
    return new_markdown_cell(text)


def chapter_05(nb, b):
    c = nb.cells
    technique = find(c, "## The technique")
    save = find(c, "#@save")
    model_cell = find(c, "# The chapter's whole model")
    training = find(c, "## Training")
    run_cell = find(c, "if RETRAIN or QUICK")
    bought = find(c, "## What it bought")
    summary = find(c, "## Summary")
    out = b["intro"] + c[1:technique] + b["math"]
    out += [code_intro("## Batch normalization in this book's code\n\nThe two blocks this chapter adds to "
                       "`cifar_lessons.models` (a `#@save` cell is the package's own code, checked by a test): "
                       "a convolution block and a dense block, each without bias, with batch normalization "
                       "before the ReLU.")]
    out += c[save:model_cell + 1] + b["where"] + c[training:run_cell + 1]
    curves = find(c, "## Learning curves")
    out += c[curves:bought] + b["evidence"] + b["sweep"] + b["pitfalls"] + b["summary"] + b["exercises"]
    assert summary > bought
    return out


def chapter_06(nb, b):
    c = nb.cells
    technique = find(c, "## The technique")
    save = find(c, "#@save")
    demo = find(c, "# The chapter's dropout on a row of ones")
    model_cell = find(c, "# The chapter's whole model")
    training = find(c, "## Training")
    run_cell = find(c, "if RETRAIN or QUICK")
    curves = find(c, "## Learning curves")
    bought = find(c, "## What it bought")
    out = b["intro"] + c[1:technique] + b["math"]
    out += [code_intro("## Dropout in this book's code\n\nThe block this chapter adds to `cifar_lessons.models` "
                       "(`#@save`: the package's own code), and what it does to a row of ones:")]
    out += [c[save], c[demo]] + b["meancheck"] + [c[model_cell]] + b["where"] + c[training:run_cell + 1]
    out += c[curves:bought] + b["evidence"] + b["pitfalls"] + b["summary"] + b["exercises"]
    return out


def chapter_07(nb, b):
    c = nb.cells
    technique = find(c, "## The technique")
    save = find(c, "#@save")
    printed = find(c, "reduce_lr = reduce_lr_callback")
    model_cell = find(c, "# The chapter's whole model")
    training = find(c, "## Training")
    run_cell = find(c, "if RETRAIN or QUICK")
    out = b["intro"] + c[1:technique] + b["math"] + [c[save], c[printed]] + b["why"] + [c[model_cell]]
    out += c[training:run_cell + 1] + b["replay"] + b["evidence"] + b["pitfalls"] + b["summary"] + b["exercises"]
    return out


def chapter_08(nb, b):
    c = nb.cells
    technique = find(c, "## The technique")
    save = find(c, "#@save")
    printed = find(c, "early_stopping = early_stopping_callback")
    model_cell = find(c, "# The chapter's whole model")
    training = find(c, "## Training")
    run_cell = find(c, "if RETRAIN or QUICK")
    out = b["intro"] + c[1:technique] + b["math"]
    out += [code_intro("The callback in this book's code (`#@save`: the package's own code), with this "
                       "chapter's settings:")]
    out += [c[save], c[printed], c[model_cell]] + c[training:run_cell + 1]
    out += b["why"] + b["replay"] + b["evidence"] + b["pitfalls"] + b["summary"] + b["exercises"]
    return out


BUILDERS = {"05": chapter_05, "06": chapter_06, "07": chapter_07, "08": chapter_08}

if __name__ == "__main__":
    for chapter_id in sys.argv[1:]:
        path = next((ROOT / "chapters").glob(f"{chapter_id}_*.ipynb"))
        nb = nbformat.read(path, as_version=4)
        nb.cells = BUILDERS[chapter_id](nb, blocks(chapter_id))
        nbformat.write(nb, path)
        print(path.name, len(nb.cells), "cells")
