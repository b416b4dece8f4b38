"""Where a run computes: the dtype policy and the distribution strategy for the hardware found (Chapter 1).

``precision="auto"`` picks the fastest mixed precision the CPU or GPU computes in; ``strategy="auto"`` mirrors the
model on every GPU when several are visible. Both training paths (``training.train`` and chapter 11's
``going_further.fast.train_fast``) resolve them here, and every record names what they chose.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from . import results


def _cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where /proc/cpuinfo is absent)."""
    return set((results.cpuinfo_field("flags") or "").split())


def _gpu_capabilities() -> list[tuple[int, int]]:
    """The compute capability of every visible GPU, e.g. [(7, 5)] for a T4 (empty on a CPU-only machine)."""
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0))
            for gpu in tf.config.list_physical_devices("GPU")]


def _visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use, e.g. ['/device:GPU:0', '/device:GPU:1']."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def resolve_strategy(strategy="auto"):
    """The distribution strategy a run uses: "auto" mirrors the model on every GPU when several are visible
    (Kaggle's two T4s, say) and uses one device otherwise (Chapter 1).

    Under ``tf.distribute.MirroredStrategy`` the recipe's ``batch_size`` is the global batch, split evenly
    across the devices, so the learning rate and the number of steps per epoch stay the recipe's; batch
    normalization then sees each device's share of the batch. Pass None for one device, or a strategy.
    """
    if strategy != "auto":
        return strategy
    gpus = _visible_gpus()
    if len(gpus) < 2:
        return None
    return tf.distribute.MirroredStrategy(gpus)


def resolve_precision(precision: str) -> str:
    """The dtype policy a run uses: "auto" picks the fastest mixed precision the hardware computes in (Chapter 1).

    On a GPU: ``mixed_bfloat16`` from compute capability 8.0 (A100, L4, H100), ``mixed_float16`` on 7.x
    (V100, T4: their tensor cores compute in float16; Keras then scales the loss so that small gradients
    survive, see ``keras.optimizers.LossScaleOptimizer``), float32 on older GPUs. On a CPU: ``mixed_bfloat16``
    with AVX512_BF16 or AMX; everywhere else bfloat16 is emulated and slower, so "auto" falls back to float32.
    The record of every run names the policy it used.
    """
    if precision != "auto":
        return precision
    capabilities = _gpu_capabilities()
    if capabilities:
        slowest = min(capabilities)  # with several GPUs, the policy every one of them supports
        return "mixed_bfloat16" if slowest >= (8, 0) else "mixed_float16" if slowest >= (7, 0) else "float32"
    if _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "mixed_bfloat16"
    return "float32"


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build or load models under a run's dtype policy, then give the caller's back (Chapter 1).

    A loaded model's nested blocks (the augmentation block) take the global policy, so a saved model is
    loaded under the precision it was trained in to compare it with a freshly built one.
    """
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
