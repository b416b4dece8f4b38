"""Every hyperparameter of the going-further recipe, in one place (Chapter 11).

Kept apart from :mod:`cifar_lessons.fast` so the chapter registry can name the recipe without
importing Keras or TensorFlow.
"""

from __future__ import annotations

import dataclasses

from . import results

# Fields added after the first recorded runs, with the value that reproduces those runs. alternate_flips
# is not one: the batches it came with (fast.TrainingBatches) also changed the shuffling and dropped each
# epoch's last incomplete batch, so no value of it reproduces the earlier runs, and it is always hashed.
ADDED_LATER = {"identity_init": False, "whiten_sample": 2500, "batch_norm_epsilon": 1e-5, "warmup_start_fraction": 0.1}


@dataclasses.dataclass(frozen=True)
class FastConfig:
    """Every hyperparameter of a going-further run, in one place (Chapter 11)."""

    # Network: a whitening stem, then three blocks of two 3x3 convolutions each.
    whiten_patch: int = 2  # 0: no whitening, a learned 2x2 convolution instead (the ablation)
    whiten_epsilon: float = 5e-4
    whiten_sample: int = 2500  # training images the whitening filters are computed from
    widths: tuple = (64, 256, 256)
    # Keras convention: running = momentum * running + (1 - momentum) * batch. airbench94's
    # BatchNorm(momentum=0.6) passes PyTorch 1 - 0.6, which weighs the running value 0.6.
    batch_norm_momentum: float = 0.6
    batch_norm_epsilon: float = 1e-5  # Keras' default is 1e-3, PyTorch's 1e-5; airbench94 uses 1e-12
    logit_scale: float = 1 / 9
    identity_init: bool = True  # each block convolution starts as the identity (airbench's dirac init)
    # Optimization: SGD with Nesterov momentum, warmup then cosine decay, decoupled weight decay.
    epochs: int = 10
    batch_size: int = 1024
    peak_learning_rate: float = 1.5
    warmup_fraction: float = 0.2
    warmup_start_fraction: float = 0.1  # the warmup starts at this fraction of the peak learning rate
    final_learning_rate_fraction: float = 0.05
    momentum: float = 0.85
    bias_learning_rate_boost: float = 64.0  # batch norm's shifts learn this many times faster (airbench)
    nesterov: bool = True
    weight_decay: float = 0.009
    label_smoothing: float = 0.2
    ema_momentum: float | None = 0.98  # None: no moving average of the weights
    # Data augmentation during training, and test-time augmentation in the saved model.
    flip: bool = True
    alternate_flips: bool = True  # each image mirrored on every other epoch, not at random (airbench)
    translate_pixels: int = 2
    tta: str = "airbench"  # "none", "flip", "flip_shift" (zero-padded shifts) or "airbench" (fast_tta.inference_model)
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
        values = {**ADDED_LATER, **values}  # a record made before a field existed ran without it
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items() if key in known})

    def changes_from(self, previous) -> dict:
        """Fields that differ from ``previous``: (old value, new value) per field (Chapter 11)."""
        old, new = previous.to_dict(), self.to_dict()
        return {key: (old.get(key), new[key]) for key in new if old.get(key) != new[key]}

    def record_dict(self) -> dict:
        """The config as a run record stores it, the values its hash is computed from (Chapter 11).

        A field added after runs were recorded is left out while it has the value that reproduces those
        runs (``from_dict`` puts it back), so adding an option does not make every earlier record stale.
        """
        return {key: value for key, value in self.to_dict().items()
                if not (key in ADDED_LATER and value == ADDED_LATER[key])}

    @property
    def hash(self) -> str:
        """Identity of this config; a record with another hash is stale (Chapter 11)."""
        return results.config_hash(self.record_dict())

    def quick(self) -> FastConfig:
        """The same recipe on a tiny subset for one epoch, for smoke tests (Chapter 11)."""
        return dataclasses.replace(self, epochs=1, subset=1000, validation_size=500, batch_size=250)
