"""Test-time augmentation for chapter 11's recipe: the views of an image (mirror, shifts), the inference model
that averages the network over them, and the scores of every variant of a trained network (Chapter 11).

The saved model of a chapter-11 run is :func:`inference_model` around the trained network, so raw images go
in and probabilities come out, the views included. Part of a run's identity (``identities.IDENTITY_MODULES``).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers
from sklearn.metrics import accuracy_score, log_loss

from .fast_config import FastConfig


def _pixel_map_layer(name: str, matrices: dict) -> layers.Layer:
    """Fixed 0/1 matrices applied to the width and/or height axis of 32x32 images, from stock layers.

    ``matrices`` maps "width" or "height" to a (32, 32) matrix whose column j says which input pixel
    output pixel j copies: a frozen Dense layer applied to that axis, brought last by Permute.
    """
    axes = {"width": (1, 3, 2), "height": (3, 2, 1)}
    steps, dense_layers = [], {}
    for axis in matrices:
        dense_layers[axis] = layers.Dense(32, use_bias=False, trainable=False, name=f"{name}_{axis}")
        steps += [layers.Permute(axes[axis]), dense_layers[axis], layers.Permute(axes[axis])]
    block = keras.Sequential(steps, name=name)
    block.build((None, 32, 32, 3))
    for axis, matrix in matrices.items():
        dense_layers[axis].set_weights([matrix])
    return block


def _flip_layer() -> layers.Layer:
    """A left-right mirror built from stock layers: a fixed permutation of the width axis."""
    return _pixel_map_layer("mirror", {"width": np.eye(32, dtype=np.float32)[::-1]})


def reflect_shift_matrix(step: int, size: int = 32) -> np.ndarray:
    """Move a row of ``size`` pixels by ``step`` (+1 or -1), the vacated pixel filled by
    reflection.

    Column j of the matrix says which input pixel output pixel j copies: it equals
    padding the row by one pixel in "reflect" mode and cropping (airbench's test-time
    translation).
    """
    source = np.clip(np.arange(size) - step, -1, size)
    source = np.where(source < 0, 1, np.where(source >= size, size - 2, source))
    matrix = np.zeros((size, size), np.float32)
    matrix[source, np.arange(size)] = 1.0
    return matrix


def _reflect_shift_layer(step: int, name: str) -> layers.Layer:
    """Shift an image by ``step`` pixels down and right, reflecting at the edge, from stock layers."""
    return _pixel_map_layer(name, {"width": reflect_shift_matrix(step), "height": reflect_shift_matrix(step)})


def _shift_layer(rows: int, cols: int, name: str) -> layers.Layer:
    """Shift an image by whole pixels (edge rows padded with zeros), from stock layers."""
    pad = ((max(rows, 0), max(-rows, 0)), (max(cols, 0), max(-cols, 0)))
    crop = ((max(-rows, 0), max(rows, 0)), (max(-cols, 0), max(cols, 0)))
    return keras.Sequential([layers.ZeroPadding2D(pad), layers.Cropping2D(crop)], name=name)


def inference_model(config: FastConfig, net: keras.Model) -> keras.Model:
    """The saved model: raw 0-255 images in, class probabilities out, test-time
    augmentation inside (Chapter 11).

    "flip" averages the predictions on the image and its mirror; "flip_shift" adds both
    of those shifted one pixel up-left and down-right, padded with zeros, and averages
    the six probability vectors. "airbench" is airbench94's test-time augmentation: the
    image and its mirror, and the image shifted one pixel each way with reflected edges
    together with the mirror of each shifted view; their logits are averaged with
    weights 1/4 for the image and its mirror and 1/8 for each other view. It uses stock
    Keras layers only, so ``keras.models.load_model`` needs nothing from this package.
    """
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    if config.tta == "airbench":
        return _airbench_inference_model(inputs, net)
    views = [inputs]
    if config.tta in ("flip", "flip_shift"):
        views.append(_flip_layer()(inputs))
    if config.tta == "flip_shift":
        views += [_shift_layer(rows, cols, name=f"shift_{name}_{index}")(view)
                  for rows, cols, name in ((-1, -1, "up_left"), (1, 1, "down_right"))
                  for index, view in enumerate(views[:2])]
    # Named layers: auto-numbered names depend on what the process built before, and
    # would change the identity.
    probabilities = [
        layers.Softmax(dtype="float32", name=f"view{index}_probabilities")(net(view))
        for index, view in enumerate(views)
    ]
    outputs = (
        probabilities[0]
        if len(probabilities) == 1
        else layers.Average(dtype="float32", name="mean_probabilities")(probabilities)
    )
    return keras.Model(inputs, outputs, name=f"fast_net_tta_{config.tta}")


def _airbench_inference_model(inputs, net: keras.Model) -> keras.Model:
    """Six views, logits averaged: 1/2 (image and mirror) + 1/4 each (both shifted, with
    mirrors).
    """
    mirror = _flip_layer()

    def image_and_mirror(view, name):
        return layers.Average(dtype="float32", name=f"{name}_logits")(
            [net(view), net(mirror(view))]
        )

    shifted = [
        image_and_mirror(_reflect_shift_layer(step, f"shift_{name}")(inputs), name)
        for step, name in ((1, "down_right"), (-1, "up_left"))
    ]
    logits = layers.Average(dtype="float32", name="mean_logits")(
        [
            image_and_mirror(inputs, "centre"),
            layers.Average(dtype="float32", name="shifted_logits")(shifted),
        ]
    )
    outputs = layers.Softmax(dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="fast_net_tta_airbench")


def score(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Log loss and accuracy of a model that outputs probabilities, from one pass of ``predict``."""
    probabilities = np.asarray(model.predict(images, batch_size=500, verbose=0), dtype=np.float64)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return (float(log_loss(labels, probabilities, labels=range(10))),
            float(accuracy_score(labels, probabilities.argmax(axis=1))))


def _variant_scores(model: keras.Model, validation: tuple, test: tuple) -> dict:
    """Validation and test accuracy of one variant of the trained network."""
    return {"val_accuracy": score(model, *validation)[1], "test_accuracy": score(model, *test)[1]}


# The test-time augmentations inference_model builds, and what each free variant of a run is called in prose.
TTA_MODES = ("none", "flip", "flip_shift", "airbench")
VARIANT_LABELS = {"tta_airbench": "full recipe (airbench's six views)", "tta_none": "no test-time augmentation",
                  "tta_flip": "mirror only", "tta_flip_shift": "six views, zero-padded and equally weighted",
                  "no_weight_average": "no weight averaging"}


def score_free_variants(config: FastConfig, net: keras.Model, raw_weights: list | None,
                        validation: tuple, test: tuple) -> dict:
    """What a trained network scores with each other test-time augmentation, and with its raw weights (Chapter 11).

    None of these changes training, so one run measures them all: every mode of ``TTA_MODES`` but the
    config's own, and (when ``raw_weights``, the last epoch's weights before the moving average replaced
    them, are given) the network with those weights.
    """
    variants = {}
    for tta in TTA_MODES:
        if tta != config.tta:
            view = inference_model(dataclasses.replace(config, tta=tta), net)
            variants[f"tta_{tta}"] = _variant_scores(view, validation, test)
    if config.ema_momentum is not None and raw_weights is not None:
        averaged = net.get_weights()
        net.set_weights(raw_weights)
        try:
            variants["no_weight_average"] = _variant_scores(inference_model(config, net), validation, test)
        finally:
            net.set_weights(averaged)
    return variants
