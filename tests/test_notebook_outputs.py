"""What the committed notebooks and run records show: no blank figures, no oversized images, no machine paths."""

from __future__ import annotations

import base64
import functools
import io
import re
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cifar_lessons.book.chapters import CHAPTERS_DIR, REPO_ROOT

NOTEBOOKS = sorted(CHAPTERS_DIR.glob("*.ipynb"))
RECORDS = sorted(path for path in (REPO_ROOT / "results").rglob("*.json")
                 if "checkpoint" not in path.parts)  # checkpoints are transient and never committed
MAX_IMAGE_BYTES = 200 * 1024


@functools.cache
def images_of(notebook: Path) -> tuple:
    """(cell number, decoded PNG bytes) of every image a notebook's code cells display."""
    return tuple((number, base64.b64decode(output["data"]["image/png"]))
                 for number, cell in enumerate(nbformat.read(notebook, as_version=4).cells)
                 for output in cell.get("outputs", []) if output.get("data", {}).get("image/png"))


def test_there_are_committed_notebooks_with_figures():
    assert NOTEBOOKS, f"no notebooks in {CHAPTERS_DIR}"
    assert any(images_of(notebook) for notebook in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_blank_figure(notebook):
    """A figure of one single colour shows nothing (e.g. a bfloat16 array matplotlib could not scale)."""
    from PIL import Image

    blank = []
    for number, png in images_of(notebook):
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        if (pixels == pixels[0, 0]).all():
            blank.append(number)
    assert not blank, f"{notebook.name}: cells {blank} display a single-colour image"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_oversized_image(notebook):
    large = [(number, len(png) // 1024) for number, png in images_of(notebook) if len(png) > MAX_IMAGE_BYTES]
    assert not large, f"{notebook.name}: images over {MAX_IMAGE_BYTES // 1024} KB (cell, KB): {large}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_figures_are_drawn_to_read_on_a_phone(notebook):
    """Every figure is drawn at most COLUMN_WIDTH wide (its PNG is twice its page size) and no cell asks for text
    under MIN_FONT_SIZE: shrunk to a phone's column, its smallest label stays 10 px (test_plots checks the helpers'
    figures themselves)."""
    from PIL import Image

    from cifar_lessons import style

    widest = style.COLUMN_WIDTH * style.DPI + 4  # the inline backend's tight crop may add a few pixels
    wide = [(number, Image.open(io.BytesIO(png)).width // 2) for number, png in images_of(notebook)
            if Image.open(io.BytesIO(png)).width / 2 > widest]
    assert not wide, f"{notebook.name}: figures drawn wider than {widest:.0f} px (cell, px): {wide}"
    small = [(number, size) for number, cell in enumerate(nbformat.read(notebook, as_version=4).cells)
             if cell.cell_type == "code" for size in re.findall(r"fontsize=(\d+(?:\.\d+)?)", cell.source)
             if float(size) < style.MIN_FONT_SIZE]
    assert not small, f"{notebook.name}: text under {style.MIN_FONT_SIZE} pt (cell, size): {small}"


def machine_path_patterns() -> list[re.Pattern]:
    """Absolute paths that name this machine: the folder holding the checkout, home, temp, drive letters."""
    folders = {str(REPO_ROOT.parent), str(Path.home()), tempfile.gettempdir(), "/tmp", "/home", "/Users", "/root"}
    patterns = [re.compile(r"(?<![\w.~-])" + re.escape(folder.rstrip("/\\")) + r"[/\\]")
                for folder in folders if len(Path(folder).parts) > 1]  # "/" itself would match any path
    patterns.append(re.compile(r"(?<![A-Za-z])[A-Za-z]:\\\\?[A-Za-z_.]"))  # C:\Users, D:\\data (JSON-escaped)
    return patterns


def test_the_path_patterns_catch_paths_and_spare_prose():
    patterns = machine_path_patterns()

    def found(text):
        return any(pattern.search(text) for pattern in patterns)

    assert found(f"loaded from {REPO_ROOT / 'results' / '08'}")
    assert found(f"saved to {Path(tempfile.gettempdir()) / 'run'}") and found(r'"C:\\Users\\me\\data"')
    assert found(f"{Path.home() / 'data.tar.gz'}")
    assert not found("results/08/record.json, trained on cifar10-jpeg.tar.gz; ratio 3:1 at 11:53:19")


def offending_lines(path: Path) -> list[str]:
    patterns = machine_path_patterns()
    return [line.strip()[:160] for line in path.read_text(errors="replace").splitlines()
            if any(pattern.search(line) for pattern in patterns)]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_names_no_machine_path(notebook):
    lines = offending_lines(notebook)
    assert not lines, f"{notebook.name} shows absolute machine paths; re-execute it after the fix:\n" + "\n".join(lines)


@pytest.mark.parametrize("record", RECORDS, ids=lambda path: str(path.relative_to(REPO_ROOT / "results")))
def test_record_names_no_machine_path(record):
    lines = offending_lines(record)
    assert not lines, f"{record.relative_to(REPO_ROOT)} stores absolute machine paths:\n" + "\n".join(lines)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_cell_that_draws_a_figure_shows_one(notebook):
    """A cell that calls a `plots.` or `charts.` function must show an image (a figure made inside an `if` block is not
    the cell's result, and was once silently lost)."""
    missing = [number for number, cell in enumerate(nbformat.read(notebook, as_version=4).cells)
               if cell.cell_type == "code" and re.search(r"\b(plots|charts)\.\w+\(", cell.source)
               and not any(output.get("data", {}).get("image/png") for output in cell.get("outputs", []))]
    assert not missing, (f"{notebook.name}: cells {missing} call a plots or charts function but show no figure; "
                         "re-execute")
