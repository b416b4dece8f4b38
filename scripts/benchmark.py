"""Measure training throughput (images/s and GFLOP/s) of the book's networks on this machine.

Every case trains the same number of images per measurement (about ``IMAGES`` whole batches), in
interleaved rounds so a slow spell of the host hits every case alike, with TensorFlow's thread pools
fixed to the number of cores. Each measurement records wall-clock and process CPU seconds: if the CPU
seconds per image differ between two cases but their wall rates agree, something outside the process
caps it; if both agree, the cases simply do the same work. The arithmetic per image comes from
:mod:`cifar_lessons.going_further.flops`, so the table shows how close each case gets to the CPU's float32 peak.

Writes results/benchmark.json (hardware, CPU flags, library versions), which the README and the
site's results page render. Run it on an otherwise idle machine (about 10 minutes on 2 cores):

    python scripts/benchmark.py
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cifar_lessons import models, training  # noqa: E402
from cifar_lessons.book.chapters import get_chapter  # noqa: E402
from cifar_lessons.going_further import fast, flops  # noqa: E402
from cifar_lessons.results import (  # noqa: E402
    cpuinfo_field,
    default_results_dir,
    hardware_info,
    library_versions,
    write_json_atomic,
)

# (label, chapter whose network is measured, batch size, precision, input path)
CASES = [
    ("small CNN (ch. 1-2)", "02", 128, "float32", "numpy"),
    ("small CNN (ch. 1-2)", "02", 128, "mixed_bfloat16", "numpy"),
    ("deeper CNN (ch. 3)", "03", 128, "float32", "numpy"),
    ("deeper CNN (ch. 3)", "03", 128, "mixed_bfloat16", "numpy"),
    ("+ augmentation (ch. 4)", "04", 128, "float32", "numpy"),
    ("+ augmentation (ch. 4)", "04", 128, "mixed_bfloat16", "numpy"),
    ("+ batch norm (ch. 5-8)", "08", 128, "float32", "numpy"),
    ("+ batch norm (ch. 5-8)", "08", 512, "float32", "numpy"),
    ("+ batch norm (ch. 5-8)", "08", 128, "mixed_bfloat16", "numpy"),
    ("+ batch norm (ch. 5-8)", "08", 512, "mixed_bfloat16", "numpy"),
    ("+ batch norm (ch. 5-8)", "08", 128, "mixed_bfloat16", "tf.data"),
    ("going further (ch. 11)", "11", 1024, "float32", "numpy"),
    ("going further (ch. 11)", "11", 1024, "mixed_bfloat16", "numpy"),
    ("going further (ch. 11)", "11", 256, "mixed_bfloat16", "numpy"),
    ("going further (ch. 11)", "11", 1024, "mixed_bfloat16", "tf.data"),
]
IMAGES = 3072  # per measurement, rounded up to whole batches
REPEATS = 3  # interleaved rounds; each case reports its median and range
# Operations per core and cycle at the float32 peak: two AVX-512 FMA units x 16 lanes x 2 (multiply, add).
FLOAT32_FLOPS_PER_CYCLE = 64


def _model(chapter_id: str, batch_size: int, precision: str, images: np.ndarray):
    """The chapter's training model and the labels it expects, in ``precision``."""
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    config = get_chapter(chapter_id).config
    labels = np.random.default_rng(1).integers(0, 10, len(images))
    if chapter_id == "11":
        config = dataclasses.replace(config, batch_size=batch_size, precision=precision)
        net = fast.build_fast_net(config, images[:2500])
        model = fast.training_model(config, net)
        fast.compile_fast(model, config, steps_per_epoch=len(images) // batch_size)
        return model, net, np.eye(10, dtype=np.float32)[labels]
    config = dataclasses.replace(config, batch_size=batch_size, precision=precision)
    model = training.compile_model(models.build_model(config, images[:1000]), config)
    return model, model, labels


class _TrainingClock(keras.callbacks.Callback):
    """Wall and process CPU seconds from the start of training to the end of its last batch.

    Timing the whole ``fit`` call instead counts a stall that some calls on these hosts make after the last
    callback and before ``fit`` returns (about 2.5 s on an AMD EPYC family 26 host, 2026-12-08): a short
    measurement then reads as a rate near 3,072 images / 5.1 s = 599 images/s whatever the network."""

    def on_train_begin(self, logs=None):
        self.started = (time.perf_counter(), time.process_time())

    def on_train_end(self, logs=None):
        self.wall = time.perf_counter() - self.started[0]
        self.cpu = time.process_time() - self.started[1]


def measure(chapter_id: str, batch_size: int, precision: str, pipeline: str) -> dict:
    """Wall and CPU seconds of training ``IMAGES`` images (after a warm-up of two batches)."""
    steps = -(-IMAGES // batch_size)
    images = np.random.default_rng(0).integers(0, 256, (batch_size * (steps + 2), 32, 32, 3)).astype("uint8")
    model, net, labels = _model(chapter_id, batch_size, precision, images)
    warm = 2 * batch_size

    def data(start, stop):
        if pipeline == "numpy":
            return {"x": images[start:stop], "y": labels[start:stop], "batch_size": batch_size}
        dataset = tf.data.Dataset.from_tensor_slices((images[start:stop], labels[start:stop]))
        return {"x": dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)}

    model.fit(**data(0, warm), epochs=1, verbose=0)
    clock = _TrainingClock()
    model.fit(**data(warm, len(images)), epochs=1, verbose=0, callbacks=[clock])
    wall, cpu = clock.wall, clock.cpu
    count = len(images) - warm
    return {"images_per_s": count / wall, "cpu_s_per_image": cpu / count,
            "training_flops": flops.training_flops(net)}


def main() -> None:
    cores = os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    found = {case: [] for case in CASES}
    for round_number in range(1, REPEATS + 1):
        for case in CASES:  # interleaved rounds, so a slow spell of the host does not hit one case only
            found[case].append(measure(*case[1:]))
            print(f"round {round_number}/{REPEATS} {case}: {found[case][-1]['images_per_s']:.0f} images/s", flush=True)
    ghz = float(cpuinfo_field("cpu MHz") or 0) / 1000
    peak = flops.peak_gflops(cores, ghz, FLOAT32_FLOPS_PER_CYCLE) if ghz else None
    rows = []
    for (label, chapter_id, batch_size, precision, pipeline), values in found.items():
        rates = [value["images_per_s"] for value in values]
        median = float(np.median(rates))
        per_image = values[0]["training_flops"]
        rows.append({"model": label, "chapter": chapter_id, "batch_size": batch_size, "precision": precision,
                     "pipeline": pipeline, "images_per_s": round(median),
                     "images_per_s_range": [round(min(rates)), round(max(rates))],
                     "cpu_ms_per_image": round(1000 * float(np.median([v["cpu_s_per_image"] for v in values])), 2),
                     "training_mflop_per_image": round(per_image / 1e6, 1),
                     "gflop_per_s": round(median * per_image / 1e9, 1),
                     "epoch_s_45k": round(45000 / median)})
    write_json_atomic(default_results_dir() / "benchmark.json", {
        "rows": rows, "images_per_measurement": IMAGES, "repeats": REPEATS, "threads": cores,
        "cpu_mhz": ghz * 1000, "float32_peak_gflop_per_s": peak,
        "float32_flops_per_cycle_assumed": FLOAT32_FLOPS_PER_CYCLE,
        "hardware": hardware_info(), "versions": library_versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})


if __name__ == "__main__":
    main()
