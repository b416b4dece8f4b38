"""Where one training step of chapter 11's network spends its time, layer by layer, on this machine.

Each layer of the network is timed on its own: a forward pass in training mode and the backward pass
(gradients for its input and its weights), on a batch of the shape it sees in training, in the
chapter's precision. The table groups the layers by kind (convolutions, batch norm, GELU, pooling,
the whitening stem) and puts the sum next to the time of one real training step of the whole model
(which adds the optimizer update, the augmentation and the framework's overhead). Convolutions also
get their achieved GFLOP/s from :mod:`cifar_lessons.going_further.flops`.

Writes results/profile_11.json, which the README renders. Run it on an otherwise idle machine
(about 2 minutes):

    python scripts/profile_step.py [--batch-size 1024] [--precision mixed_bfloat16]
"""

from __future__ import annotations

import argparse
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
from keras import layers  # noqa: E402

from cifar_lessons.book.chapters import get_chapter  # noqa: E402
from cifar_lessons.going_further import fast, flops  # noqa: E402
from cifar_lessons.results import default_results_dir, hardware_info, library_versions, write_json_atomic  # noqa: E402

REPEATS = 5


def kind(layer) -> str:
    """The group a layer's time is reported under."""
    if layer.name.startswith("whiten"):
        return "whitening stem (2x2 conv + GELU)"
    return {layers.Conv2D: "3x3 convolutions", layers.BatchNormalization: "batch norm",
            layers.Activation: "GELU", layers.MaxPooling2D: "max pooling", layers.GlobalMaxPooling2D: "max pooling",
            layers.Normalization: "input standardization"}.get(type(layer), "classifier (dense, scaling)")


def seconds_per_call(function, *args) -> float:
    """Median wall time of ``function(*args)`` over REPEATS calls, after two warm-up calls."""
    for _ in range(2):
        function(*args)
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = function(*args)
        tf.nest.map_structure(np.asarray, result)  # wait for the work to finish
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def layer_time(layer, batch_size: int) -> float:
    """Seconds of one forward-and-backward pass through ``layer`` alone, in training mode."""
    shape = (batch_size, *layer.input.shape[1:])
    dtype = "float32" if isinstance(layer, layers.Normalization) else layer.compute_dtype
    inputs = tf.cast(tf.random.normal(shape), dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        return tape.gradient(loss, [x, *layer.trainable_weights])

    return seconds_per_call(step, inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config = get_chapter("11").config
    parser.add_argument("--batch-size", type=int, default=config.batch_size)
    parser.add_argument("--precision", default="mixed_bfloat16")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    tf.config.threading.set_intra_op_parallelism_threads(cores)
    tf.config.threading.set_inter_op_parallelism_threads(cores)
    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(config, batch_size=args.batch_size, precision=args.precision)
    images = np.random.default_rng(0).integers(0, 256, (args.batch_size, 32, 32, 3)).astype("uint8")
    net = fast.build_fast_net(config, images)
    model = fast.training_model(config, net)
    fast.compile_fast(model, config, steps_per_epoch=10)
    labels = np.eye(10, dtype=np.float32)[np.random.default_rng(1).integers(0, 10, args.batch_size)]
    whole_step = seconds_per_call(lambda: model.train_on_batch(images, labels, return_dict=True))

    groups: dict[str, dict] = {}
    for layer in net.layers[1:]:
        seconds = layer_time(layer, args.batch_size)
        group = groups.setdefault(kind(layer), {"seconds": 0.0, "flops": 0, "layers": 0})
        group["seconds"] += seconds
        group["layers"] += 1
        if isinstance(layer, layers.Conv2D):  # forward + both gradients: three times the forward operations
            group["flops"] += 3 * flops.layer_flops(layer) * args.batch_size
        print(f"{layer.name:<22} {1000 * seconds:8.1f} ms", flush=True)
    total = sum(group["seconds"] for group in groups.values())
    rows = [{"group": name, "layers": group["layers"], "ms_per_step": round(1000 * group["seconds"], 1),
             "share_of_layer_time": round(group["seconds"] / total, 3),
             "gflop_per_s": round(group["flops"] / group["seconds"] / 1e9, 1) if group["flops"] else None}
            for name, group in sorted(groups.items(), key=lambda item: -item[1]["seconds"])]
    write_json_atomic(default_results_dir() / "profile_11.json", {
        "rows": rows, "batch_size": args.batch_size, "precision": args.precision,
        "layers_ms_per_step": round(1000 * total, 1), "train_step_ms": round(1000 * whole_step, 1),
        "train_images_per_s": round(args.batch_size / whole_step), "repeats": REPEATS, "threads": cores,
        "hardware": hardware_info(), "versions": library_versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    print(f"whole training step: {1000 * whole_step:.0f} ms ({args.batch_size / whole_step:.0f} images/s); "
          f"layers alone: {1000 * total:.0f} ms")


if __name__ == "__main__":
    main()
