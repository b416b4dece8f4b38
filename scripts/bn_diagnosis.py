"""Why do the batch-norm moving statistics of chapters 5-8 lag? Measurements on the saved models.

For each saved model: validation accuracy in inference mode with the statistics as saved, then after
re-estimating them ("precise BN", Wu & Johnson 2021) on 64 batches of 128 training images, once with
the chapter's augmentation active and once on clean images. Then a controlled experiment on chapter 5's
model: a few hundred more Adam steps with the batch-norm momentum and learning rate varied, measuring
how far the moving statistics fall behind the weights.

    python scripts/bn_diagnosis.py [--chapters 05 06 07 08] [--seeds 0] [--steps 150] [--out FILE]

Writes one JSON record (default results/05/bn_diagnosis.json) with the host, precision and data.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np

from cifar_lessons import results
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.data import load_cifar10
from cifar_lessons.models import build_model
from cifar_lessons.training import prepare_data


def bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def accuracy(model, x, y):
    probabilities = model.predict(x, batch_size=500, verbose=0)
    return float((probabilities.argmax(axis=1) == y).mean())


def reestimate(model, x_train, augment, batches=64, batch_size=128, momentum=0.9, seed=0):
    """Precise BN: run training batches through the model in training mode, no gradient step."""
    # Without augmentation: the same graph from the normalization layer's input on (skips the augment block).
    net = model if augment or "augment" not in [layer.name for layer in model.layers] else keras.Model(
        model.get_layer("augment").output, model.output)
    rng = np.random.default_rng(seed)
    saved = [layer.momentum for layer in bn_layers(model)]
    for layer in bn_layers(model):
        layer.momentum = momentum
    try:
        for _ in range(batches):
            batch = x_train[rng.choice(len(x_train), batch_size, replace=False)]
            net(batch.astype("float32"), training=True)
    finally:
        for layer, value in zip(bn_layers(model), saved):
            layer.momentum = value


def snapshot(model):
    return [[v.numpy() for v in layer.non_trainable_variables] for layer in bn_layers(model)]


def restore(model, state):
    for layer, values in zip(bn_layers(model), state):
        for variable, value in zip(layer.non_trainable_variables, values):
            variable.assign(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", default=["05", "06", "07", "08"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--skip-saved", action="store_true", help="keep the saved-model rows already in --out")
    parser.add_argument("--out", type=Path, default=results.default_results_dir() / "05" / "bn_diagnosis.json")
    args = parser.parse_args(argv)
    data = load_cifar10()
    record = {"what": __doc__.splitlines()[0], "hardware": results.hardware_info(),
              "versions": results.library_versions(), "code": results.code_identity(), "data": data.source,
              "method": {"batches": 64, "batch_size": 128, "momentum": 0.9, "gradient_steps": 0},
              "saved_models": [], "lag_experiment": []}
    if args.skip_saved:
        record["saved_models"] = results.read_json(args.out)["saved_models"]
    for chapter_id in ([] if args.skip_saved else args.chapters):
        chapter = get_chapter(chapter_id)
        for seed in args.seeds:
            run_dir = results.default_results_dir() / chapter.id / ("" if seed == 0 else f"seed{seed}")
            saved = results.load_record(run_dir)
            splits = prepare_data(chapter.config.__class__.from_dict(saved["config"]), data)
            (x_train, _), (x_val, y_val) = splits["train"], splits["val"]
            model = keras.models.load_model(run_dir / "model.keras", compile=False)
            start = time.perf_counter()
            row = {"chapter": chapter.id, "seed": seed, "precision": saved["precision"],
                   "recorded_val_accuracy": saved["val_accuracy"], "saved_stats": accuracy(model, x_val, y_val)}
            original = snapshot(model)
            for augment in (True, False):
                restore(model, original)
                reestimate(model, x_train, augment=augment)
                row["reestimated_augmented" if augment else "reestimated_clean"] = accuracy(model, x_val, y_val)
            row["seconds"] = round(time.perf_counter() - start, 1)
            print(row, flush=True)
            record["saved_models"].append(row)
            results.write_json_atomic(args.out, record)
    # The lag, caused: continue chapter 5's training for a few hundred steps under controlled settings.
    chapter = get_chapter("05")
    run_dir = results.default_results_dir() / "05"
    splits = prepare_data(chapter.config, data)
    (x_train, y_train), (x_val, y_val) = splits["train"], splits["val"]
    saved_model = keras.models.load_model(run_dir / "model.keras", compile=False)
    # In float32 (bfloat16 is emulated, and slow, on CPUs without it): the same architecture, the saved weights.
    keras.mixed_precision.set_global_policy("float32")
    record["lag_precision"] = "float32"
    for learning_rate, momentum in ((1e-3, 0.99), (1e-3, 0.9), (1e-4, 0.99)):
        keras.utils.set_random_seed(0)
        model = build_model(chapter.config, x_train)
        model.set_weights(saved_model.get_weights())
        for layer in bn_layers(model):
            layer.momentum = momentum
        reestimate(model, x_train, augment=True)  # start from statistics that match the weights
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
        start = time.perf_counter()
        rng = np.random.default_rng(0)
        order = rng.permutation(len(x_train))[: args.steps * 128]
        model.fit(x_train[order], y_train[order], batch_size=128, epochs=1, shuffle=False, verbose=0)
        row = {"learning_rate": learning_rate, "momentum": momentum, "steps": args.steps,
               "saved_stats": accuracy(model, x_val, y_val)}
        state = snapshot(model)
        reestimate(model, x_train, augment=True)
        row["reestimated_augmented"] = accuracy(model, x_val, y_val)
        restore(model, state)
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(row, flush=True)
        record["lag_experiment"].append(row)
        results.write_json_atomic(args.out, record)


if __name__ == "__main__":
    main()
