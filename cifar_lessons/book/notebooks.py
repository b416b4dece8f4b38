"""Executing the chapter notebooks with papermill (full outputs, or quick smoke runs)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nbformat
import papermill

from ..results import write_text_atomic
from .chapters import CHAPTERS_DIR


def execute_notebook(notebook: Path, output: Path, quick: bool = False, results_dir: Path | None = None,
                     timeout: int = 3600, progress: bool = True, cwd: Path | None = None) -> Path:
    """Run a chapter notebook top to bottom with papermill, writing the executed copy to ``output`` (Chapter 1).

    ``quick`` and ``results_dir`` are injected into the cell tagged ``parameters``. The kernel starts in
    ``cwd`` (default: the chapters folder, where a notebook's relative paths such as ``../results`` point).
    A failing cell raises papermill's PapermillExecutionError naming the cell, and ``output`` is left as it
    was: the run writes to a temporary file beside it, which replaces ``output`` only when every cell ran.
    """
    # Only non-default values are injected, so a full run leaves no extra cell in the notebook,
    # and cells an earlier run injected (parameters, papermill's error banners) are dropped first.
    parameters = {"QUICK": True} if quick else {}
    if results_dir:
        parameters["RESULTS_DIR"] = str(results_dir)
    source = nbformat.read(notebook, as_version=4)
    source.cells = [cell for cell in source.cells
                    if not {"injected-parameters", "papermill-error-cell-tag"} & set(cell.metadata.get("tags", []))]
    output = Path(output)
    handle, partial = tempfile.mkstemp(prefix=f".{output.stem}.", suffix=".executing.ipynb", dir=output.parent)
    os.close(handle)
    try:
        papermill.execute_notebook(source, partial, parameters=parameters, kernel_name="python3",
                                   cwd=str(cwd or CHAPTERS_DIR), execution_timeout=timeout, progress_bar=progress,
                                   log_output=False)
        strip_runtime_noise(Path(partial))
        os.replace(partial, output)
    finally:
        Path(partial).unlink(missing_ok=True)
    return output


# TensorFlow's C++ start-up lines (oneDNN, CUDA probing, CPU features) go to stderr whatever
# TF_CPP_MIN_LOG_LEVEL says; they tell a reader nothing about the chapter.
_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWE]\d{4} [\d:.]+ +\d+ "
                    r"\S+:\d+\]|To enable the following instructions: .* rebuild TensorFlow)")


# Per-run metadata papermill and Jupyter add: timestamps, durations and (at the top) a full copy of
# the input notebook. It changes on every execution and is of no use to a reader.
_RUN_METADATA = ("papermill", "execution")


def strip_runtime_noise(path: Path) -> None:
    """Remove TensorFlow's start-up log lines and per-run timing metadata from a notebook, in place (Chapter 1)."""
    notebook = nbformat.read(path, as_version=4)
    for key in _RUN_METADATA:
        notebook.metadata.pop(key, None)
    for cell in notebook.cells:
        for key in _RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                text = "".join(line for line in output.text.splitlines(keepends=True) if not _NOISE.match(line))
                if not text.strip():
                    continue
                output.text = text
            kept.append(output)
        cell.outputs = kept
    write_text_atomic(path, nbformat.writes(notebook))
