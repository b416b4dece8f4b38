"""Chapter 11's recipe at longer budgets: what it reaches on the copy without the race's time limit (Chapter 11).

A budget run is the chapter's recipe with one change, the number of epochs (the warmup and the decay stretch
with it); ``scripts/budget_chapter11.py`` trains them. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import results
from ..going_further.race import host_name
from .chapters import get_chapter
from .runs import run_dir_for_seed
from .seeds import fast_seed_records


def budget_dir(epochs: int, seed: int, results_dir: Path | None = None) -> Path:
    """Where a budget run keeps its record: results/11/budget/epochsE/seedS (Chapter 11)."""
    return _budget_root(results_dir) / f"epochs{epochs}" / f"seed{seed}"


def _budget_root(results_dir: Path | None) -> Path:
    """The folder holding every budget run: results/11/budget (Chapter 11)."""
    return Path(results_dir or results.default_results_dir()) / "11" / "budget"


def budget_config(epochs: int, seed: int):
    """The chapter's recipe trained for ``epochs`` epochs with ``seed``, nothing else changed (Chapter 11)."""
    return dataclasses.replace(get_chapter("11").config, epochs=epochs, seed=seed)


def budget_table(results_dir: Path | None = None) -> list[dict]:
    """One row per recorded run, fewest epochs first: the chapter's seed runs, then each longer budget.

    A budget run counts only if its record is of :func:`budget_config` for its folder's epochs and seed and
    not a quick run. Each row has the epochs, seed, validation and test accuracy, the accuracy on the
    (augmented) training batches of the last epoch, from the run's history, the run's process CPU seconds
    (training, evaluation and saving, as the race counts them) and the host it ran on (Chapter 11).
    """
    from ..going_further import ablations  # lazy: imports TensorFlow, which importing this module does not

    runs = [(record, run_dir_for_seed(get_chapter("11"), seed, results_dir))
            for seed, record in fast_seed_records(results_dir).items()]
    for folder in sorted(_budget_root(results_dir).glob("epochs*/seed*")):
        epochs, seed = folder.parent.name[len("epochs"):], folder.name[len("seed"):]
        if epochs.isdigit() and seed.isdigit():
            record = ablations.current_record(folder, budget_config(int(epochs), int(seed)))
            runs += [] if record is None else [(record, folder)]
    rows = []
    for record, folder in runs:
        history = folder / results.HISTORY_FILE
        rows.append({"epochs": record["config"]["epochs"], "seed": record["seed"],
                     "val_accuracy": record["val_accuracy"], "test_accuracy": record["test_accuracy"],
                     "train_accuracy": results.read_json(history)["accuracy"][-1] if history.is_file() else None,
                     "run_cpu_time_s": record.get("run_cpu_time_s"), "host": host_name(record)})
    return sorted(rows, key=lambda row: (row["epochs"], row["seed"]))
