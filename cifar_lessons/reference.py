"""airbench94 itself on the offline copy: what the reference recipe reaches on this data (Chapter 11).

A reference run is airbench94, Keller Jordan's PyTorch script (``legacy/airbench94.py`` of
KellerJordan/cifar10-airbench), run on a CPU on the JPEG copy with the few edits its record lists
(no CUDA calls, bfloat16 autocast or float32 in place of float16 weights, one seeded run). Its code is
not part of this repository; its records are, in ``results/11/reference/VARIANT/seedS/record.json``.
They measure how far the reference recipe falls on this copy from what it reports on the official
images. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import results

# airbench94's own report for this script on the official test set: mean of 1,000 runs (the script's header).
REFERENCE_ACCURACY = 0.9401
# What each variant trains on and is scored on.
VARIANTS = {
    "full": "all 50,000 training images, scored on the 10,000 test images (airbench's own protocol)",
    "split45": "chapter 11's 45,000 training images, scored on its 5,000 validation and the 10,000 test images",
}
# Keys a reference record must carry, with their types.
REQUIRED = {"variant": str, "seed": int, "code": dict, "settings": dict, "data": dict, "epochs": list,
            "test_accuracy": float, "training_time_s": (int, float), "process_cpu_time_s": (int, float),
            "hardware": dict, "versions": dict, "created": str}


def reference_root(results_dir: Path | None = None) -> Path:
    """The folder holding every reference run: results/11/reference (Chapter 11)."""
    return Path(results_dir or results.default_results_dir()) / "11" / "reference"


def load_reference(path: Path) -> dict:
    """One reference record, checked: every required key with its type, a known variant, the
    accuracy a fraction (Chapter 11). A damaged file raises :class:`results.RecordError` naming it."""
    record = results.read_json(path)
    if not isinstance(record, dict):
        raise results.RecordError(f"{path} is not a reference record (not a JSON object). Restore it from git.")
    problems = [f"{key} missing" if key not in record else f"{key} is not {kinds}"
                for key, kinds in REQUIRED.items() if not isinstance(record.get(key), kinds)]
    if not problems and record["variant"] not in VARIANTS:
        problems.append(f"unknown variant {record['variant']!r}")
    for key in ("test_accuracy", "val_accuracy"):
        if key in record and not (isinstance(record[key], float) and 0.0 <= record[key] <= 1.0):
            problems.append(f"{key} is not a fraction between 0 and 1")
    if problems:
        raise results.RecordError(f"{path} is not a valid reference record ({'; '.join(problems)}). "
                                  "Restore it from git.")
    return record


def reference_table(results_dir: Path | None = None) -> list[dict]:
    """One row per recorded reference run, by variant, precision and seed (Chapter 11).

    Each row has the variant, the precision, the seed, the test (and, for ``split45``, validation)
    accuracy with test-time augmentation, the training seconds airbench itself counts, the process's
    CPU seconds, and the host.
    """
    from .race import host_name

    rows = []
    for path in sorted(reference_root(results_dir).glob("*/seed*/" + results.RECORD_FILE)):
        record = load_reference(path)
        rows.append({"variant": record["variant"], "precision": record["settings"].get("precision", "?"),
                     "seed": record["seed"], "test_accuracy": record["test_accuracy"],
                     "val_accuracy": record.get("val_accuracy"), "training_time_s": record["training_time_s"],
                     "process_cpu_time_s": record["process_cpu_time_s"], "host": host_name(record)})
    return sorted(rows, key=lambda row: (row["variant"], row["precision"], row["seed"]))


def reference_means(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Mean and standard deviation of the test accuracy per (variant, precision), with the seeds (Chapter 11)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["precision"]), []).append(row)
    return {key: {"seeds": [row["seed"] for row in group],
                  "test_accuracy": float(np.mean([row["test_accuracy"] for row in group])),
                  "test_std": float(np.std([row["test_accuracy"] for row in group], ddof=1)) if len(group) > 1 else None}
            for key, group in groups.items()}
