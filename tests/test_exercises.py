"""Exercise solutions that run: each Python solution is executed as a reader would paste it.

A solution is the first ```python block inside an exercise's ``<details><summary>Solution</summary>``.
Solutions that need a trained model get a quick run (one epoch on a tiny subset) in a temporary folder,
never the committed results; solutions that read the records read the committed ones.
"""

from __future__ import annotations

import contextlib
import io
import re

import nbformat
import pytest

from cifar_lessons.book.chapters import PAGES, get_chapter

SOLUTION = re.compile(r"^(\d+)\. \*\*.*?<summary>Solution</summary>(.*?)</details>", re.S | re.M)
CODE = re.compile(r"```python\n(.*?)```", re.S)


def solutions(chapter_id: str) -> dict[int, str]:
    """Exercise number -> its solution's Python code (indentation of the list item removed)."""
    notebook = nbformat.read(get_chapter(chapter_id).notebook, as_version=4)
    exercises = next(cell.source for cell in notebook.cells
                     if cell.cell_type == "markdown" and cell.source.startswith("## Exercises"))
    found = {}
    for match in SOLUTION.finditer(exercises):
        code = CODE.search(match.group(2))
        if code:
            found[int(match.group(1))] = re.sub(r"^   ", "", code.group(1), flags=re.M)
    return found


def run_solution(code: str, namespace: dict) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code, "<exercise solution>", "exec"), namespace)
    return output.getvalue()


def test_solutions_are_found():
    assert {2} <= set(solutions("05")) and {2, 3} <= set(solutions("10"))


@pytest.mark.slow  # loads the committed momentum-0.99 model and re-estimates its statistics: a minute or two
def test_chapter_5_precise_batch_norm_solution_recovers_the_lagging_statistics(real_data):
    """The solution re-estimates the momentum-0.99 model's statistics, and its validation accuracy rises by more
    than two points over the recorded one, as the diagnosis table and the solution's text say."""
    from keras import layers

    from cifar_lessons.training import prepare_data

    namespace = {"chapter": get_chapter("05"), "data": real_data, "prepare_data": prepare_data, "layers": layers}
    printed = run_solution(solutions("05")[2], namespace)
    loss, accuracy, recorded = (float(value) for value in re.findall(r"\d+\.\d+(?:e-?\d+)?", printed)[:3])
    assert loss > 0 and accuracy > recorded + 0.02, printed


def test_chapter_10_solutions_read_the_records():
    from cifar_lessons.book import report

    printed = run_solution(solutions("10")[2], {})
    rows = [row for row in report.comparison_rows() if row["p_value"] is not None]
    assert rows and len(printed.splitlines()) == len(rows)
    for line, row in zip(printed.splitlines(), rows):  # the hand-run test agrees with the table
        assert f"p = {row['p_value']:.3f} (table: {row['p_value']:.3f}" in line
    assert run_solution(solutions("10")[3], {}).startswith("cifar-lessons train ")


# Run before the solutions, in the chapter's own kernel after its quick run: every recipe a solution asks for is
# the quick one (a 1,000-image subset), and no training runs more than two epochs, so the solutions run in
# minutes; they are otherwise executed exactly as written.
QUICK_SOLUTIONS = '''\
import dataclasses as _dataclasses
import cifar_lessons.book.chapters as _chapters
import cifar_lessons.training as _training

def _quick(config):
    config = config if config.subset else config.quick()
    return _dataclasses.replace(config, epochs=min(config.epochs, 2))

def get_chapter(chapter_id):
    found = _chapters.get_chapter(chapter_id)
    return _dataclasses.replace(found, config=_quick(found.config)) if found.config is not None else found

_train = _training.train
_training.train = lambda config, *args, **kwargs: _train(_quick(config), *args, **kwargs)
if "chapter" in globals():
    chapter = get_chapter(chapter.id)
try:
    import cifar_lessons.going_further.fast as _fast
    _train_fast = _fast.train_fast
    _fast.train_fast = lambda config, *args, **kwargs: _train_fast(_quick(config), *args, **kwargs)
except ImportError:
    pass
'''


# Solutions that train on the official images (a local cifar-10-python.tar.gz): not run here, where only the
# offline copy exists. Each says so in its own text.
NEEDS_OFFICIAL_DATA = {("A", 2)}


def test_only_the_official_data_exercise_is_left_out():
    for page, number in NEEDS_OFFICIAL_DATA:
        assert "cifar-10-python.tar.gz" in solutions(page)[number]


@pytest.mark.slow  # each page's quick run again, then its solutions: minutes per chapter on 2 CPU cores
@pytest.mark.parametrize("page", [page.id for page in PAGES])
def test_every_solution_runs_in_quick_mode(page, real_data, tmp_path):
    """Each exercise solution, pasted as written at the end of its chapter, runs without an error after the
    chapter's quick run (trainings made quick). Relative paths resolve as in the chapters folder, with the
    committed results readable through ../results; what the solutions write stays in a temporary folder."""
    from nbformat.v4 import new_code_cell

    from cifar_lessons.book.chapters import REPO_ROOT
    from cifar_lessons.book.notebooks import execute_notebook

    found = {number: code for number, code in solutions(page).items() if (page, number) not in NEEDS_OFFICIAL_DATA}
    if not found:
        pytest.skip(f"page {page} has no Python solution")
    notebook = nbformat.read(get_chapter(page).notebook, as_version=4)
    notebook.cells.append(new_code_cell(QUICK_SOLUTIONS))
    notebook.cells += [new_code_cell(f"# exercise {number}\n{code}") for number, code in sorted(found.items())]
    workdir = tmp_path / "chapters"
    workdir.mkdir()
    (tmp_path / "results").symlink_to(REPO_ROOT / "results", target_is_directory=True)  # what ../results reads
    source = workdir / get_chapter(page).notebook.name
    nbformat.write(notebook, source)
    try:
        execute_notebook(source, source, quick=True, results_dir=tmp_path / "quick-results", timeout=900,
                         progress=False, cwd=workdir)
    except Exception as error:  # papermill names the cell; say which exercise it was
        raise AssertionError(f"page {page}: an exercise solution failed:\n{str(error)[-3000:]}") from None
