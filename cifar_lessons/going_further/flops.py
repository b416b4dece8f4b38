"""How much arithmetic a network does per image, and how fast this machine can do it (Chapter 11).

Convolutions and dense layers hold nearly all of a CNN's floating-point operations: a 3x3 convolution
from C_in to C_out channels on an H x W output costs 2 * H * W * 9 * C_in * C_out operations (a
multiply and an add per weight and output position). A training step costs about three forward
passes: the forward pass, and a backward pass that computes gradients for both the inputs and the
weights of every layer. Batch norm, activations and pooling are memory-bound and add few operations,
but not few seconds: the per-layer profile in ``scripts/profile_step.py`` shows how many.
"""

from __future__ import annotations

import math

from keras import layers


def layer_flops(layer) -> int:
    """Forward-pass operations of one image through one convolution or dense layer (0 for any other layer)."""
    if isinstance(layer, layers.Conv2D) and not isinstance(layer, layers.DepthwiseConv2D):
        positions = math.prod(layer.output.shape[1:-1])
        weights_per_output = math.prod(layer.kernel_size) * layer.input.shape[-1] // layer.groups
        return int(2 * positions * weights_per_output * layer.filters)
    if isinstance(layer, layers.Dense):
        positions = math.prod(layer.input.shape[1:-1])  # a Dense on a 4-D tensor acts per position
        return int(2 * positions * layer.input.shape[-1] * layer.units)
    return 0


def forward_flops(model) -> int:
    """Floating-point operations of one image's forward pass through the convolutions and dense layers."""
    # Keras' private _flatten_layers reaches layers inside nested blocks; tests/test_keras_internals.py checks it.
    return sum(layer_flops(layer) for layer in model._flatten_layers(include_self=False, recursive=True))


def training_flops(model) -> int:
    """Operations of one image's training step: about three forward passes (forward, two gradients)."""
    return 3 * forward_flops(model)


def peak_gflops(cores: int, ghz: float, flops_per_cycle: int) -> float:
    """A CPU's peak: cores x clock x operations per core and cycle (64 for float32 with two AVX-512 FMA units)."""
    return cores * ghz * flops_per_cycle
