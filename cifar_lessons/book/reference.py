"""airbench94 itself on the offline copy: what the reference recipe reaches on this data (Chapter 11).

A reference run is airbench94, Keller Jordan's PyTorch script (``legacy/airbench94.py`` of
KellerJordan/cifar10-airbench), run on a CPU on the JPEG copy with the few edits its record lists
(no CUDA calls, bfloat16 autocast or float32 in place of float16 weights, one seeded run). Its code is
not part of this repository; its records are, in ``results/11/reference/VARIANT/seedS/record.json``.
They measure how far the reference recipe falls on this copy from what it reports on the official
images. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import results
from ..going_further.race import host_name
from .chapters import get_chapter
from .seeds import compare_seeds, seed_summary

# airbench94's own report for this script on the official test set, and over how many runs (the script's header).
REFERENCE_ACCURACY = 0.9401
REFERENCE_RUNS = 1000
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
    accuracy with test-time augmentation, the training seconds airbench itself counts and the images
    per second they make, the process's CPU seconds, the host, and whether other work shared the
    machine during the run (then its times are not comparable; a record that does not say counts as
    shared).
    """
    rows = []
    for path in sorted(reference_root(results_dir).glob("*/seed*/" + results.RECORD_FILE)):
        record = load_reference(path)
        rows.append({"variant": record["variant"], "precision": record["settings"].get("precision", "?"),
                     "seed": record["seed"], "test_accuracy": record["test_accuracy"],
                     "val_accuracy": record.get("val_accuracy"), "training_time_s": record["training_time_s"],
                     "train_images_per_s": train_images_per_s(record),
                     "machine_shared": record.get("machine_shared", True),
                     "process_cpu_time_s": record["process_cpu_time_s"], "host": host_name(record)})
    return sorted(rows, key=lambda row: (row["variant"], row["precision"], row["seed"]))


def train_images_per_s(record: dict) -> float | None:
    """Training images per second of a reference run, by airbench's own clock up to its last epoch
    (Chapter 11).

    airbench drops each epoch's last incomplete batch and stops after ``ceil(steps_per_epoch *
    train_epochs)`` steps; its clock at the last epoch counts the whitening set-up and the training
    steps, not the per-epoch evaluation or the final test-time augmentation.
    """
    settings, epochs = record["settings"], record["epochs"]
    images, batch = record["data"].get("train_images"), settings.get("batch_size")
    if not (images and batch and epochs and settings.get("train_epochs")):
        return None
    steps = math.ceil(images // batch * settings["train_epochs"])
    return steps * batch / epochs[-1]["cumulative_training_time_s"]


def reference_means(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """Mean and standard deviation of the test accuracy per (variant, precision), with the seeds (Chapter 11)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["variant"], row["precision"]), []).append(row)
    summaries = {}
    for key, group in groups.items():
        spread = _spread([row["test_accuracy"] for row in group])
        summaries[key] = {"seeds": [row["seed"] for row in group], "test_accuracy": spread["mean"],
                          "test_std": spread["std"]}
    return summaries


def _spread(values: list[float]) -> dict:
    """Count, mean and sample standard deviation (None for one value) of some runs' accuracies, in the form
    ``seeds.compare_seeds`` takes."""
    return {"n": len(values), "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None}


def split_comparison(rows: list[dict], seed_records: dict[int, dict]) -> list[dict]:
    """airbench94 on chapter 11's split against chapter 11's own seed runs, per split (Chapter 11).

    For validation and test: both means, the difference (airbench94 minus chapter 11), its standard
    error, Welch's p-value, the 95% confidence interval of the difference and chapter 10's verdict
    (``seeds.compare_seeds``: not shown unless p < 0.05). Seed numbers do not pair runs across the two frameworks, so
    only the means are compared. Empty without ``split45`` runs or seed records.
    """
    split_rows = [row for row in rows if row["variant"] == "split45"]
    if not (split_rows and seed_records):
        return []
    comparisons = []
    for split, key in (("validation", "val_accuracy"), ("test", "test_accuracy")):
        theirs = _spread([row[key] for row in split_rows])
        ours = _spread([record[key] for record in seed_records.values()])
        verdict = compare_seeds(theirs, ours)
        comparisons.append({"split": split, "reference": theirs["mean"], "runs": theirs["n"],
                            "chapter": ours["mean"], "seeds": ours["n"], "gain": verdict["gain"],
                            "standard_error": verdict["standard_error"], "p_value": verdict["p_value"],
                            "interval": verdict["interval"], "verdict": verdict["verdict"]})
    return comparisons

def reference_markdown(results_dir: Path | None = None) -> str:
    """The reference runs beside chapter 11's seed runs, as a Markdown table with its caption ('' if none
    is recorded) (Chapter 11)."""
    rows = reference_table(results_dir)
    if not rows:
        return ""
    lines = [f"| Recipe | Training images | Precision | Seeds | Test accuracy | vs {REFERENCE_ACCURACY:.2%} (pts) |",
             "|---|---:|---|---:|---:|---:|"]
    images = {"full": "50,000", "split45": "45,000"}
    for (variant, precision), summary in sorted(reference_means(rows).items()):
        mean = summary["test_accuracy"]
        short = {"bfloat16 autocast": "bf16 autocast"}.get(precision, precision)
        lines.append(f"| airbench94 | {images[variant]} | {short} | {len(summary['seeds'])} "
                     f"| {mean:.2%} | {100 * (mean - REFERENCE_ACCURACY):+.1f} |")
    chapter = seed_summary(get_chapter("11"), results_dir)
    if chapter["n"] and chapter["status"] == "ok":
        first = chapter["runs"][0]["record"]
        precision = {"mixed_bfloat16": "mixed bf16"}.get(first["precision"], first["precision"])
        lines.append(f"| chapter 11 | {first['train_images']:,} | {precision} | {chapter['n']} "
                     f"| {chapter['mean']:.2%} | {100 * (chapter['mean'] - REFERENCE_ACCURACY):+.1f} |")
    lines += ["", "All on the offline JPEG copy, scored with airbench's six-view test-time augmentation; test "
              "accuracy is the mean over the seeds. airbench94 is its author's PyTorch script, chapter 11 this "
              "book's Keras port; bf16: bfloat16. "
              f"{REFERENCE_ACCURACY:.2%} is airbench94's own figure on the official images (the mean of "
              f"{REFERENCE_RUNS:,} runs). The airbench94 rows are its own script run on a CPU "
              "(`results/11/reference`, whose README lists the changes); chapter 11 reads them."]
    return "\n".join(lines)
