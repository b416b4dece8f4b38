"""Model builders for every chapter's architecture (Keras Functional API).

Every model takes raw 0-255 RGB images: rescaling, normalization and augmentation
are layers inside the model, so a saved ``.keras`` file can be loaded and evaluated
without this package.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers


def normalization_layer(x_train: np.ndarray) -> layers.Normalization:
    """Per-channel standardization with statistics from the training images only (Chapter 2)."""
    pixels = x_train.reshape(-1, 3).astype(np.float64)
    return layers.Normalization(axis=-1, mean=pixels.mean(axis=0), variance=pixels.var(axis=0),
                                name="normalize")


def augmentation_block(flip: bool = True, translate: float = 0.1, seed: int = 0) -> keras.Sequential:
    """Random horizontal flips and shifts, active only during training (Chapter 4)."""
    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if translate:
        steps.append(layers.RandomTranslation(translate, translate, fill_mode="reflect", seed=seed))
    return keras.Sequential(steps, name="augment")


def conv_stage(x, filters: int, convs: int, batch_norm: bool, dropout_rate: float, name: str):
    """``convs`` 3x3 convolutions, optional batch norm, 2x2 max pooling, optional dropout (Chapter 3)."""
    for index in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                          name=f"{name}_conv{index + 1}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{index + 1}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{index + 1}")(x)
    x = layers.MaxPooling2D(name=f"{name}_pool")(x)
    if dropout_rate:
        x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    return x


def build_cnn(
    widths: Sequence[int] = (32, 64, 64),
    convs_per_stage: int = 1,
    dense_units: int = 64,
    batch_norm: bool = False,
    conv_dropout_rate: float = 0.0,
    dense_dropout_rate: float = 0.0,
    normalizer: layers.Layer | None = None,
    augmentation: layers.Layer | None = None,
    num_classes: int = 10,
    name: str = "cnn",
) -> keras.Model:
    """A VGG-style CNN: stages of 3x3 convolutions, then a dense classifier (Chapter 1).

    With the defaults it is the Chapter 1 baseline; later chapters pass wider
    ``widths``, more ``convs_per_stage``, ``batch_norm``, dropout rates, a
    ``normalizer`` (Chapter 2) and an ``augmentation`` block (Chapter 4).
    """
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = inputs
    if augmentation is not None:
        x = augmentation(x)
    if normalizer is not None:
        x = normalizer(x)
    for stage, filters in enumerate(widths, start=1):
        x = conv_stage(x, filters, convs_per_stage, batch_norm, conv_dropout_rate, name=f"stage{stage}")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, use_bias=not batch_norm, name="dense")(x)
    if batch_norm:
        x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.Activation("relu", name="dense_relu")(x)
    if dense_dropout_rate:
        x = layers.Dropout(dense_dropout_rate, name="dense_dropout")(x)
    # Keep the softmax in float32 so mixed precision stays numerically safe.
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
