"""A short learning-rate sweep with and without batch normalization, on a subset (Chapter 5).

Each setting trains a chapter's own recipe through :func:`cifar_lessons.training.train` (the code
that trains the chapters), with only the learning rate, the epoch count and the data subset changed.
The sweep writes one record, ``results/05/lr_sweep.json``, with the configs, the data fingerprint,
the hardware, the library versions and the per-epoch history and timing of every run.

    python -m cifar_lessons.book.sweep            # the recorded sweep (8 short runs of about a CPU-minute each)
    python -m cifar_lessons.book.sweep --quick    # a smoke run: 1 epoch on 500 images per setting
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import tempfile
import time
from pathlib import Path

from .. import results
from ..data import load_cifar10
from .chapters import get_chapter

SWEEP_FILE = "lr_sweep.json"
# The chapter without batch normalization, and the chapter that adds it: one field apart.
SWEEP_CHAPTERS = ("04", "05")
SWEEP_LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2)
SWEEP_SUBSET, SWEEP_VALIDATION, SWEEP_EPOCHS = 10_000, 2_000, 3


def sweep_path(results_dir: Path | None = None) -> Path:
    """Where the sweep's record lives: next to chapter 5's run (Chapter 5)."""
    return Path(results_dir or results.default_results_dir()) / "05" / SWEEP_FILE


def sweep_config(chapter_id: str, learning_rate: float, subset: int = SWEEP_SUBSET,
                 validation_size: int = SWEEP_VALIDATION, epochs: int = SWEEP_EPOCHS):
    """A chapter's recipe with another learning rate, on a subset, for a few epochs (Chapter 5)."""
    return dataclasses.replace(get_chapter(chapter_id).config, learning_rate=learning_rate,
                               subset=subset, validation_size=validation_size, epochs=epochs)


def _finite(values) -> list:
    """JSON has no NaN: a diverged loss is stored as null."""
    return [float(v) if math.isfinite(v) else None for v in values]


def run_sweep(chapter_ids=SWEEP_CHAPTERS, learning_rates=SWEEP_LEARNING_RATES, subset: int = SWEEP_SUBSET,
              validation_size: int = SWEEP_VALIDATION, epochs: int = SWEEP_EPOCHS, data=None,
              output: Path | None = None) -> dict:
    """Train every (chapter recipe, learning rate) pair and write the sweep's record atomically (Chapter 5)."""
    from ..training import train  # lazy: TensorFlow; chapter 5 reads the recorded sweep without it

    data = data or load_cifar10()
    output = Path(output) if output else sweep_path()
    started = time.perf_counter()
    code = results.code_identity()  # the code that runs, taken before it can change on disk
    runs = []
    for chapter_id in chapter_ids:
        for learning_rate in learning_rates:
            config = sweep_config(chapter_id, learning_rate, subset, validation_size, epochs)
            cpu_started = time.process_time()
            with tempfile.TemporaryDirectory() as run_dir:  # the models themselves are not kept
                run = train(config, data, Path(run_dir), chapter=f"{chapter_id}-lr-sweep", verbose=0)
            history = {key: _finite(values) for key, values in run.history.items()}
            runs.append({
                "chapter": chapter_id, "batch_norm": config.batch_norm, "learning_rate": learning_rate,
                "config": config.record_dict(), "config_hash": config.hash, "history": history,
                "val_accuracy": run.record["val_accuracy"],
                "test_accuracy": run.record["test_accuracy"], "test_images": run.record["test_images"],
                "wall_time_s": run.record["wall_time_s"],
                "cpu_time_s": round(time.process_time() - cpu_started, 1),
                "precision": run.record["precision"],
            })
            print(f"chapter {chapter_id} recipe, learning rate {learning_rate:g}: validation accuracy "
                  f"{run.record['val_accuracy']:.1%} after {epochs} epochs ({run.record['wall_time_s']:.0f} s)",
                  flush=True)
    record = {
        "format": 1, "kind": "learning-rate sweep",
        "chapters": list(chapter_ids), "learning_rates": list(learning_rates),
        "subset": subset, "validation_size": validation_size, "epochs": epochs,
        "runs": runs, "data": data.source, "hardware": results.hardware_info(),
        "versions": results.library_versions(), "code": code,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    results.write_json_atomic(output, record)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cifar_lessons.book.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch on 500 images per setting (smoke run)")
    parser.add_argument("--output", type=Path, help=f"record to write (default: results/05/{SWEEP_FILE})")
    args = parser.parse_args(argv)
    if args.quick:
        if not args.output:
            parser.error("--quick needs --output: a smoke run never replaces the recorded sweep")
        run_sweep(subset=500, validation_size=200, epochs=1, output=args.output)
    else:
        run_sweep(output=args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
