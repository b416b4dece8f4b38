"""Every hyperparameter of the going-further recipe, in one place (Chapter 11).

Kept apart from :mod:`cifar_lessons.going_further.fast` so the chapter registry can name the recipe without
importing Keras or TensorFlow.
"""

from __future__ import annotations

import dataclasses

from ..config import RecipeConfig


@dataclasses.dataclass(frozen=True)
class FastConfig(RecipeConfig):
    """Every hyperparameter of a going-further run, in one place (Chapter 11)."""

    # RecipeConfig: fields added after the first recorded runs, with the value that reproduces those runs.
    # alternate_flips is not one: the batches it came with (fast.TrainingBatches) also changed the shuffling
    # and dropped each epoch's last incomplete batch, so no value of it reproduces the earlier runs.
    ADDED_LATER = {"identity_init": False, "whiten_sample": 2500, "batch_norm_epsilon": 1e-5,
                   "warmup_start_fraction": 0.1}
    QUICK = {"epochs": 1, "subset": 1000, "validation_size": 500, "batch_size": 250}

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
