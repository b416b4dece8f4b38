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

from cifar_lessons.chapters import get_chapter

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


@pytest.mark.slow  # a quick training run and a re-estimation: about a minute
def test_chapter_5_precise_batch_norm_solution_runs_on_a_quick_run(real_data, tmp_path):
    from keras import layers

    from cifar_lessons.book import run_chapter
    from cifar_lessons.training import prepare_data

    chapter = get_chapter("05")
    run = run_chapter("05", quick=True, results_dir=tmp_path, data=real_data, verbose=0)
    namespace = {"run": run, "chapter": chapter, "data": real_data, "prepare_data": prepare_data, "layers": layers}
    printed = run_solution(solutions("05")[2], namespace)
    loss, accuracy = (float(value) for value in re.findall(r"[\d.]+(?:e-?\d+)?", printed)[:2])
    assert 0 <= accuracy <= 1 and loss > 0


def test_chapter_10_solutions_read_the_records():
    from cifar_lessons import report

    printed = run_solution(solutions("10")[2], {})
    rows = [row for row in report.comparison_rows() if row["p_value"] is not None]
    assert rows and len(printed.splitlines()) == len(rows)
    for line, row in zip(printed.splitlines(), rows):  # the hand-run test agrees with the table
        assert f"p = {row['p_value']:.3f} (table: {row['p_value']:.3f}" in line
    assert run_solution(solutions("10")[3], {}).startswith("cifar-lessons train ")
