"""Every hyperparameter of the going-further recipe, in one place (Chapter 11).

Kept apart from :mod:`cifar_lessons.fast` so the chapter registry can name the recipe without
importing Keras or TensorFlow.
"""

from __future__ import annotations

import dataclasses

from . import results


@dataclasses.dataclass(frozen=True)
class FastConfig:
    """Every hyperparameter of a going-further run, in one place (Chapter 11)."""

    # Network: a whitening stem, then three blocks of two 3x3 convolutions each.
    whiten_patch: int = 2  # 0: no whitening, a learned 2x2 convolution instead (the ablation)
    whiten_epsilon: float = 5e-4
    widths: tuple = (64, 256, 256)
    batch_norm_momentum: float = 0.4  # Keras convention: running = momentum * running + (1 - momentum) * batch
    logit_scale: float = 1 / 9
    # Optimization: SGD with Nesterov momentum, warmup then cosine decay, decoupled weight decay.
    epochs: int = 10
    batch_size: int = 1024
    peak_learning_rate: float = 1.5
    warmup_fraction: float = 0.2
    final_learning_rate_fraction: float = 0.05
    momentum: float = 0.85
    bias_learning_rate_boost: float = 64.0  # batch norm's shifts learn this many times faster (airbench)
    nesterov: bool = True
    weight_decay: float = 0.009
    label_smoothing: float = 0.2
    ema_momentum: float | None = 0.98  # None: no moving average of the weights
    # Data augmentation during training, and test-time augmentation in the saved model.
    flip: bool = True
    translate_pixels: int = 2
    tta: str = "flip"  # "none", "flip" or "flip_shift" (zero-padded one-pixel shifts)
    # Data and run.
    validation_size: int = 5000
    seed: int = 0
    precision: str = "auto"
    subset: int | None = None  # a quick run trains on a small subset; never a chapter result

    def to_dict(self) -> dict:
        """The config as plain JSON types (Chapter 11)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> FastConfig:
        """Rebuild a config from :meth:`to_dict` output (Chapter 11)."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items() if key in known})

    def changes_from(self, previous) -> dict:
        """Fields that differ from ``previous``: (old value, new value) per field (Chapter 11)."""
        old, new = previous.to_dict(), self.to_dict()
        return {key: (old.get(key), new[key]) for key in new if old.get(key) != new[key]}

    @property
    def hash(self) -> str:
        """Identity of this config; a record with another hash is stale (Chapter 11)."""
        return results.config_hash(self.to_dict())

    def quick(self) -> FastConfig:
        """The same recipe on a tiny subset for one epoch, for smoke tests (Chapter 11)."""
        return dataclasses.replace(self, epochs=1, subset=1000, validation_size=500, batch_size=250)
