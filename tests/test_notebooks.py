"""Every chapter notebook runs top to bottom in quick mode, never touching committed results."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

from cifar_lessons.book.chapters import CHAPTERS, PAGES, REPO_ROOT
from cifar_lessons.book.notebooks import execute_notebook

# Where a notebook installs the package from when it is missing (Colab): the repository pyproject.toml names.
REPOSITORY_URL = re.search(r'^Repository = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.M).group(1)
SETUP_CELL = [cell.source for cell in nbformat.read(CHAPTERS[0].notebook, as_version=4).cells
              if cell.cell_type == "code"][0]


def test_one_repository_url_everywhere_and_well_formed():
    """The setup cell, pyproject.toml and mkdocs.yml (the site's Colab and repository links) name one repository."""
    import yaml

    site = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())
    assert re.fullmatch(r"https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9._-]+", site["repo_url"]), site["repo_url"]
    assert site["repo_url"] == REPOSITORY_URL, "pyproject.toml's Repository differs from mkdocs.yml's repo_url"
    assert site["repo_name"] == site["repo_url"].removeprefix("https://github.com/")
    owner, name = site["repo_name"].split("/")
    assert site["site_url"] == f"https://{owner}.github.io/{name}/"  # GitHub Pages of that repository
    assert f'REPOSITORY = "{site["repo_url"]}"' in SETUP_CELL
    assert 'git", "clone", "--depth", "1", REPOSITORY' in SETUP_CELL and '"-e", "cifar-lessons"' in SETUP_CELL


def tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "checkpoint" not in path.parts:  # checkpoints are transient, never committed
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def committed_state():
    """Digest of results/ and chapters/ before any notebook runs, to prove none is touched."""
    folders = [REPO_ROOT / "results", REPO_ROOT / "chapters"]
    before = [tree_digest(folder) for folder in folders]
    yield
    assert [tree_digest(folder) for folder in folders] == before, "a quick run changed committed files"


@pytest.mark.slow  # minutes on a 2-core CPU: outside the default run, in CI (`-m "not full"`)
@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: f"{c.id}_{c.slug}")
def test_notebook_runs_in_quick_mode(chapter, real_data, tmp_path, committed_state):
    assert chapter.notebook.is_file(), f"chapter {chapter.id} has no notebook at {chapter.notebook}"
    output = execute_notebook(chapter.notebook, tmp_path / chapter.notebook.name, quick=True,
                              results_dir=tmp_path / "results", timeout=600, progress=False)
    executed = nbformat.read(output, as_version=4)
    errors = [out for cell in executed.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
    if chapter.trains:
        assert any(path.name == "record.json" for path in (tmp_path / "results").rglob("*"))


@pytest.mark.parametrize("chapter", PAGES, ids=lambda c: f"{c.id}_{c.slug}")
def test_notebook_shape(chapter):
    """Title first, then a cell that installs the package where it is missing, versions printed, a parameters
    cell, and a summary with exercises at the end."""
    notebook = nbformat.read(chapter.notebook, as_version=4)
    cells = notebook.cells
    assert cells[0].source.startswith(f"# {chapter.label}: {chapter.title}")
    code = [cell.source for cell in cells if cell.cell_type == "code"]
    # One setup cell, the same in every chapter: where the package is missing, a shallow clone of the repository
    # (so the recorded runs come with it), installed in place.
    assert code[0] == SETUP_CELL, f"chapter {chapter.id}'s first code cell is not chapter 1's setup cell"
    assert "__version__" in code[1]
    assert any("parameters" in cell.metadata.get("tags", []) for cell in cells)
    headings = [cell.source.splitlines()[0] for cell in cells if cell.cell_type == "markdown"]
    assert headings[-2:] == ["## Summary", "## Exercises"]


def test_prose_quotes_the_configured_dropout_rate():
    """The dropout chapter's text names its rate; it must follow the registry if the rate changes."""
    from cifar_lessons.book.chapters import get_chapter

    chapter = get_chapter("06")
    intro = nbformat.read(chapter.notebook, as_version=4).cells[0].source
    assert f"{round(100 * chapter.config.dense_dropout_rate)}%" in intro


def test_runtime_noise_is_stripped_but_real_warnings_stay(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from cifar_lessons.book.notebooks import strip_runtime_noise

    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1795488570.377217   13680 port.cc:153] oneDNN custom operations are on.\n")
    cell = new_code_cell("x = 1", outputs=[
        new_output("stream", name="stderr", text=noise),
        new_output("stream", name="stderr", text=noise + "UserWarning: something real\n"),
        new_output("stream", name="stdout", text="hello\n")])
    path = tmp_path / "n.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)
    strip_runtime_noise(path)
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert [o.text for o in outputs] == ["UserWarning: something real\n", "hello\n"]


def test_run_metadata_is_stripped(tmp_path):
    """Timestamps and papermill's copy of the input notebook would churn every re-execution's diff."""
    from nbformat.v4 import new_code_cell, new_notebook

    from cifar_lessons.book.notebooks import strip_runtime_noise

    cell = new_code_cell("x = 1", metadata={"tags": ["parameters"], "papermill": {"duration": 0.1},
                                            "execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}})
    notebook = new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"},
                                                    "papermill": {"input_path": {"cells": []}}})
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    strip_runtime_noise(path)
    stripped = nbformat.read(path, as_version=4)
    assert "papermill" not in stripped.metadata and stripped.metadata.kernelspec.name == "python3"
    assert dict(stripped.cells[0].metadata) == {"tags": ["parameters"]}


def _output_text(notebook) -> str:
    """Every text a notebook's code cells printed or displayed, joined."""
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            for kind in ("text/plain", "text/markdown"):
                texts.append(output.get("data", {}).get(kind, ""))
    return "\n".join(texts)


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c.trains or c.slug == "analysis"],
                         ids=lambda c: f"{c.id}_{c.slug}")
def test_committed_notebook_shows_the_recorded_run(chapter):
    """A notebook executed before its chapter was retrained would show an older run's numbers."""
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.book.runs import run_dir_for
    from cifar_lessons.results import load_record

    source = get_chapter(chapter.uses) if chapter.uses else chapter
    record = load_record(run_dir_for(source))
    shown = _output_text(nbformat.read(chapter.notebook, as_version=4))
    assert f"(config {record['config_hash']}, trained {record['created']})" in shown, (
        f"chapter {chapter.id}'s notebook does not show the recorded run of chapter {source.id}; "
        f"re-execute it: cifar-lessons notebooks {chapter.id}")


def test_conclusion_shows_the_current_table():
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.book.report import accuracy_table_markdown

    shown = _output_text(nbformat.read(get_chapter("10").notebook, as_version=4))
    assert accuracy_table_markdown() in shown, (
        "chapter 10 shows an old table; re-execute it: cifar-lessons notebooks 10")


def test_a_failing_execution_leaves_the_notebook_as_it_was(tmp_path):
    """Re-executing in place (`cifar-lessons notebooks`) must not replace a notebook's outputs with a failed run."""
    import papermill
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    notebook = tmp_path / "chapter.ipynb"
    cells = [new_code_cell("print('kept')", outputs=[new_output("stream", name="stdout", text="kept\n")]),
             new_code_cell("raise RuntimeError('this cell fails')")]
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                          "display_name": "Python 3"}}), notebook)
    before = notebook.read_bytes()
    with pytest.raises(papermill.PapermillExecutionError, match="this cell fails"):
        execute_notebook(notebook, notebook, timeout=60, progress=False)
    assert notebook.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chapter.ipynb"]  # no temporary file left


@pytest.mark.slow  # a fresh virtual environment, a clone and a quick training run: about a minute
def test_the_setup_cell_fetches_the_book_and_its_runs_into_a_fresh_environment(tmp_path, real_data):
    """As on Colab: cifar_lessons is not installed. The setup cell clones the repository (here this checkout's
    committed HEAD, by a file URL) and installs it; then the recorded runs are there and a chapter trains."""
    environment = tmp_path / "env"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The libraries (TensorFlow, Keras, NumPy...) of the running environment, without its cifar_lessons: a path
    # line in a .pth file adds a folder, but does not run the editable install's own .pth hook inside it.
    libraries = [path for path in sys.path if path.endswith("site-packages")]
    (Path(purelib) / "libraries.pth").write_text("\n".join(libraries) + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    cell = SETUP_CELL.replace(REPOSITORY_URL, REPO_ROOT.as_uri())
    setup = subprocess.run([python, "-c", cell + "\nimport cifar_lessons\nprint(cifar_lessons.__file__)"],
                           cwd=content, env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert setup.stdout.strip().endswith(os.path.join("content", "cifar-lessons", "cifar_lessons", "__init__.py"))
    listing = subprocess.run([python, "-m", "cifar_lessons", "list"], cwd=content, env=env, capture_output=True,
                             text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert re.search(r"^01 .* ok$", listing.stdout, re.M), listing.stdout  # the clone brought the recorded runs
    again = subprocess.run([python, "-c", cell], cwd=content, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and not again.stdout and not again.stderr  # now a no-op
    quick = subprocess.run([python, "-m", "cifar_lessons", "--results", str(tmp_path / "runs"), "train", "01",
                            "--quick"], cwd=content, env=env, capture_output=True, text=True, timeout=600)
    assert quick.returncode == 0, quick.stderr[-3000:]
    assert (tmp_path / "runs" / "quick" / "01" / "record.json").is_file()
