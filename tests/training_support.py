"""What the training tests share: a tiny recipe, data a small CNN learns in a few epochs, callbacks that
interrupt a run or record the epochs it trained, and a run folder's checkpoints.

Tests that train in a fresh process import this module after putting tests/ on sys.path."""

from __future__ import annotations

import keras
import numpy as np

from cifar_lessons.data import CLASS_NAMES, Dataset, fingerprint_arrays
from cifar_lessons.training import TrainConfig

TINY = TrainConfig(widths=(8, 16), dense_units=16, normalize=True, epochs=3, batch_size=32,
                   learning_rate=3e-3, validation_size=100)


def learnable_dataset(per_class: int = 50, seed: int = 0) -> Dataset:
    """Each class is a colour plus noise: a small CNN learns it in a few epochs."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (10, 3))

    def make(count):
        labels = np.repeat(np.arange(10), count)
        noise = rng.normal(0, 40, (len(labels), 32, 32, 3))
        return np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels

    x_train, y_train = make(per_class)
    x_test, y_test = make(10)
    source = {"name": "synthetic", "location": "tests", "image_format": "none", "source_sha256": None,
              "fingerprint": fingerprint_arrays(x_train, y_train, x_test, y_test)}
    return Dataset(x_train, y_train, x_test, y_test, CLASS_NAMES, source)


class StopAt(keras.callbacks.Callback):
    """Simulates an interruption (Ctrl-C) when epoch ``epoch`` (1-based) begins, or after its ``batch``-th batch."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1
        if self.batch is None and self.current == self.epoch:
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.batch is not None and self.current == self.epoch and batch + 1 == self.batch:
            raise KeyboardInterrupt


class EpochsSeen(keras.callbacks.Callback):
    """Records which epochs (1-based) this fit() call actually trained."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


def results_checkpoints(run_dir):
    from cifar_lessons.checkpoints import checkpoints

    return checkpoints(run_dir / "checkpoint")
