"""The training config: every hyperparameter of one run, in one place (Chapter 1).

Kept apart from ``training`` so that the chapter registry, the command line's light commands and the
site can read configs without importing TensorFlow; ``cifar_lessons.training`` re-exports it.
"""

from __future__ import annotations

import dataclasses

from . import results


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All hyperparameters of one run, in one place (Chapter 1)."""

    # Architecture (Chapters 1, 3, 5, 6).
    widths: tuple = (32, 64, 64)
    convs_per_stage: int = 1
    dense_units: int = 64
    batch_norm: bool = False
    # How much of the old moving statistics each training step keeps (Chapter 5); 0.99 is Keras' default.
    batch_norm_momentum: float = 0.99
    conv_dropout_rate: float = 0.0
    dense_dropout_rate: float = 0.0
    # Input processing inside the model (Chapters 2 and 4).
    normalize: bool = False
    augment: bool = False
    # Optimization.
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    precision: str = "float32"  # a Keras dtype policy, or "auto" (see resolve_precision)
    # Callbacks (Chapters 7 and 8), both watching the validation split.
    reduce_lr: bool = False
    reduce_lr_factor: float = 0.5
    reduce_lr_patience: int = 2
    early_stopping: bool = False
    early_stopping_patience: int = 4
    # Data.
    validation_size: int = 5000
    seed: int = 0
    # A quick run trains on a small subset for smoke tests; never a chapter result.
    subset: int | None = None

    def to_dict(self) -> dict:
        """The config as plain JSON types (Chapter 1).

        A field added after runs were recorded is left out while it holds the value those runs used
        (``ADDED_FIELDS``), so their config hashes still hold; any other value is part of the config.
        """
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()
                if not (key in ADDED_FIELDS and value == ADDED_FIELDS[key])}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output (Chapter 1)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items() if key in known})

    @property
    def hash(self) -> str:
        """Identity of this config; a record with another hash is stale (Chapter 1)."""
        return results.config_hash(self.to_dict())

    def quick(self) -> TrainConfig:
        """The same recipe on a tiny subset for one epoch, for smoke tests (Chapter 1)."""
        return dataclasses.replace(self, epochs=1, subset=1000, validation_size=500)

    def changes_from(self, previous: TrainConfig) -> dict:
        """Fields that differ from ``previous``: what a chapter changed (Chapter 2)."""
        old, new = dataclasses.asdict(previous), dataclasses.asdict(self)
        return {key: (_plain(old[key]), _plain(new[key])) for key in new if old[key] != new[key]}


# Fields added after the first runs were recorded, with the value those runs used (see TrainConfig.to_dict).
ADDED_FIELDS = {"batch_norm_momentum": 0.99}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
