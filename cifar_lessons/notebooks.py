"""Executing the chapter notebooks with papermill (full outputs, or quick smoke runs)."""

from __future__ import annotations

from pathlib import Path

from .chapters import CHAPTERS_DIR


def execute_notebook(notebook: Path, output: Path, quick: bool = False, results_dir: Path | None = None,
                     timeout: int = 3600, progress: bool = True) -> Path:
    """Run a chapter notebook top to bottom with papermill, writing the executed copy to ``output`` (Chapter 1).

    ``quick`` and ``results_dir`` are injected into the cell tagged ``parameters``.
    A failing cell raises papermill's PapermillExecutionError naming the cell.
    """
    import papermill

    parameters = {"QUICK": quick, "RESULTS_DIR": str(results_dir) if results_dir else None}
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name="python3",
                               cwd=str(CHAPTERS_DIR), execution_timeout=timeout, progress_bar=progress,
                               log_output=False)
    return Path(output)
