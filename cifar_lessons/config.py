"""The training config: every hyperparameter of one run, in one place (Chapter 1).

Kept apart from ``training`` so that the chapter registry, the command line's light commands and the
site can read configs without importing TensorFlow; ``cifar_lessons.training`` re-exports it.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from . import results


class RecipeConfig:
    """What every recipe's config does, chapters 1-8's and chapter 11's alike (Chapter 1): a plain-JSON
    round trip, a hash that identifies the recipe, the changes from another config, and a quick version.

    Subclasses are frozen dataclasses. ``ADDED_LATER`` names fields added after runs were recorded, with the
    value those runs used: a record leaves such a field out while it holds that value, so adding an option
    keeps every earlier config hash. ``QUICK`` holds the fields :meth:`quick` changes.
    """

    ADDED_LATER: ClassVar[dict] = {}
    QUICK: ClassVar[dict] = {}

    def to_dict(self) -> dict:
        """Every field as plain JSON types (Chapter 1)."""
        return {key: _plain(value) for key, value in dataclasses.asdict(self).items()}

    def record_dict(self) -> dict:
        """The config as a run record stores it, the values its hash is computed from (Chapter 1)."""
        return {key: value for key, value in self.to_dict().items()
                if not (key in self.ADDED_LATER and value == self.ADDED_LATER[key])}

    @classmethod
    def from_dict(cls, values: dict):
        """Rebuild a config from :meth:`to_dict` or :meth:`record_dict` output (Chapter 1)."""
        known = {field.name for field in dataclasses.fields(cls)}
        values = {**cls.ADDED_LATER, **values}  # a record made before a field existed ran without it
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items() if key in known})

    @property
    def hash(self) -> str:
        """Identity of this config; a record with another hash is stale (Chapter 1)."""
        return results.config_hash(self.record_dict())

    def quick(self):
        """The same recipe on a tiny subset for one epoch, for smoke tests (Chapter 1)."""
        return dataclasses.replace(self, **self.QUICK)

    def changes_from(self, previous) -> dict:
        """Fields that differ from ``previous``: (old value, new value) per field, what a chapter changed
        (Chapter 2)."""
        old, new = previous.to_dict(), self.to_dict()
        return {key: (old.get(key), new[key]) for key in new if old.get(key) != new[key]}


@dataclasses.dataclass(frozen=True)
class TrainConfig(RecipeConfig):
    """All hyperparameters of one run, in one place (Chapter 1)."""

    ADDED_LATER = {"batch_norm_momentum": 0.99}  # RecipeConfig: the value the first recorded runs used
    QUICK = {"epochs": 1, "subset": 1000, "validation_size": 500}

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


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
