"""Measure training throughput (images/s) of the book's architectures on this machine.

Writes results/benchmark.json (with hardware and library versions), which the README and the
site's results page render. Run it on an otherwise idle machine:

    python scripts/benchmark.py
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import keras
import numpy as np

from cifar_lessons.chapters import get_chapter
from cifar_lessons.models import build_model
from cifar_lessons.results import default_results_dir, hardware_info, library_versions, write_json_atomic
from cifar_lessons.training import compile_model

# (label, chapter whose architecture is measured, batch size, precision)
CASES = [
    ("small CNN (ch. 1-2)", "02", 128, "float32"),
    ("deeper CNN (ch. 3)", "03", 128, "float32"),
    ("+ augmentation (ch. 4)", "04", 128, "float32"),
    ("+ batch norm (ch. 5-8)", "08", 128, "float32"),
    ("+ batch norm (ch. 5-8)", "08", 256, "float32"),
    ("+ batch norm (ch. 5-8)", "08", 512, "float32"),
    ("+ batch norm (ch. 5-8)", "08", 128, "mixed_bfloat16"),
]
STEPS = 30
REPEATS = 3  # rounds over all cases; the host's speed drifts, so each case reports a median and a range


def measure(chapter_id: str, batch_size: int, precision: str) -> float:
    """Images per second over STEPS training steps, after a warm-up."""
    config = dataclasses.replace(get_chapter(chapter_id).config, batch_size=batch_size, precision=precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (batch_size * (STEPS + 3), 32, 32, 3)).astype("uint8")
    y = np.random.default_rng(1).integers(0, 10, len(x))
    model = compile_model(build_model(config, x[:1000]), config)
    warm = batch_size * 3
    model.fit(x[:warm], y[:warm], batch_size=batch_size, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x[warm:], y[warm:], batch_size=batch_size, epochs=1, verbose=0)
    return batch_size * STEPS / (time.perf_counter() - started)


def main() -> None:
    rates = {case: [] for case in CASES}
    for round_number in range(1, REPEATS + 1):
        for case in CASES:  # interleaved rounds, so a slow spell of the host does not hit one case only
            rates[case].append(measure(*case[1:]))
            print(f"round {round_number}/{REPEATS} {case}: {rates[case][-1]:.0f} images/s", flush=True)
    rows = []
    for (label, chapter_id, batch_size, precision), values in rates.items():
        median = float(np.median(values))
        rows.append({"model": label, "chapter": chapter_id, "batch_size": batch_size, "precision": precision,
                     "images_per_s": round(median), "images_per_s_range": [round(min(values)), round(max(values))],
                     "epoch_s_45k": round(45000 / median)})
    write_json_atomic(default_results_dir() / "benchmark.json", {
        "rows": rows, "steps": STEPS, "repeats": REPEATS, "hardware": hardware_info(),
        "versions": library_versions(), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})


if __name__ == "__main__":
    main()
