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
        """The config as plain JSON types (Chapter 1)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

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
        old, new = previous.to_dict(), self.to_dict()
        return {key: (old[key], new[key]) for key in new if old[key] != new[key]}
