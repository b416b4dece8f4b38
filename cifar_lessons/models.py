"""The book's Keras building blocks (Functional API), one source with the chapters.

Each function here is shown in full in the chapter that introduces it, in a notebook cell whose
first line is ``#@save``; ``tests/test_shown_code.py`` fails when a shown cell and this file differ,
and ``cifar_lessons.training.train`` builds every recorded model with ``build_model`` below.

Every model takes raw 0-255 RGB images: rescaling, normalization and augmentation are layers
inside the model, so a saved ``.keras`` file can be loaded and evaluated without this package.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def conv_block(x, filters, stage, index):
    """A 3x3 convolution that keeps the image size, then a ReLU (Chapter 1)."""
    x = layers.Conv2D(filters, 3, padding="same", name=f"stage{stage}_conv{index}")(x)
    return layers.Activation("relu", name=f"stage{stage}_relu{index}")(x)


def conv_stage(x, filters, stage, config):
    """``config.convs_per_stage`` convolution blocks, then 2x2 max pooling that halves
    the image (Chapter 1).
    """
    for index in range(1, config.convs_per_stage + 1):
        if config.batch_norm:  # Chapter 5
            x = conv_bn_block(x, filters, stage, index, config.batch_norm_momentum)
        else:
            x = conv_block(x, filters, stage, index)
    x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    if config.conv_dropout_rate:  # Chapter 6's exercise
        x = layers.Dropout(config.conv_dropout_rate, name=f"stage{stage}_dropout")(x)
    return x


def dense_block(x, units):
    """A fully connected layer with a ReLU: the classifier's hidden layer
    (Chapter 1).
    """
    x = layers.Dense(units, name="dense")(x)
    return layers.Activation("relu", name="dense_relu")(x)


def classifier(x, config, num_classes=10):
    """Flatten the feature maps, one hidden dense layer, then a softmax over the
    classes (Chapter 1).
    """
    x = layers.Flatten(name="flatten")(x)
    if config.batch_norm:  # Chapter 5
        x = dense_bn_block(x, config.dense_units, config.batch_norm_momentum)
    else:
        x = dense_block(x, config.dense_units)
    if config.dense_dropout_rate:  # Chapter 6
        x = classifier_dropout(x, config.dense_dropout_rate)
    # The softmax stays in float32 so that mixed precision stays numerically safe.
    return layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)


def build_model(config, x_train):
    """The CNN a config describes: input layers, convolution stages, classifier
    (Chapter 1).

    ``x_train`` is the training split; only the normalization layer (Chapter 2)
    reads it.
    """
    inputs = keras.Input(shape=(32, 32, 3), name="image")  # raw 0-255 pixels
    x = inputs
    if config.augment:  # Chapter 4
        x = augmentation_block(seed=config.seed)(x)
    if config.normalize:  # Chapter 2
        x = normalization_layer(x_train)(x)
    for stage, filters in enumerate(config.widths, start=1):
        x = conv_stage(x, filters, stage, config)
    outputs = classifier(x, config)
    return keras.Model(inputs, outputs, name="cnn")


def normalization_layer(x_train):
    """Per-channel standardization with the mean and variance of the training images
    only (Chapter 2).
    """
    pixels = x_train.reshape(-1, 3).astype(np.float64)
    return layers.Normalization(
        axis=-1, mean=pixels.mean(axis=0), variance=pixels.var(axis=0), name="normalize"
    )


def augmentation_block(flip=True, translate=0.1, seed=0):
    """Random horizontal flips and shifts of up to ``translate`` of the size, in
    training only (Chapter 4).
    """
    steps = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if translate:
        steps.append(
            layers.RandomTranslation(
                translate, translate, fill_mode="reflect", seed=seed
            )
        )
    return keras.Sequential(steps, name="augment")


def conv_bn_block(x, filters, stage, index, momentum=0.99):
    """A 3x3 convolution without bias, batch normalization, then a ReLU (Chapter 5).

    ``momentum`` weighs the old moving statistics in each update: each step keeps that
    fraction and takes the rest from the batch (Keras' default 0.99).
    """
    x = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{index}"
    )(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"stage{stage}_bn{index}")(x)
    return layers.Activation("relu", name=f"stage{stage}_relu{index}")(x)


def dense_bn_block(x, units, momentum=0.99):
    """The classifier's hidden layer without bias, batch normalization, then a ReLU
    (Chapter 5).
    """
    x = layers.Dense(units, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(momentum=momentum, name="dense_bn")(x)
    return layers.Activation("relu", name="dense_relu")(x)


def classifier_dropout(x, rate):
    """Dropout on the hidden dense layer's output, active in training only
    (Chapter 6)."""
    return layers.Dropout(rate, name="dense_dropout")(x)
