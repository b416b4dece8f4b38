"""The private Keras APIs the package relies on, checked so that a Keras release that changes one fails here, with
its name, rather than somewhere downstream: ``Layer._flatten_layers`` (nested layers: augmentation settings, FLOP
counts, seed generators), ``Layer._seed_generators`` (a resumed run's random draws) and
``Optimizer._get_variable_index`` (chapter 11's boosted batch-norm shifts)."""

from __future__ import annotations

import keras
import numpy as np

from cifar_lessons import checkpoints
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.going_further import flops
from cifar_lessons.models import build_model
from cifar_lessons.training import augmentation_settings


def _chapter_6_model():
    """Chapter 6's network: augmentation inside a nested block, batch norm, dropout."""
    return build_model(get_chapter("06").config, np.zeros((2, 32, 32, 3), np.uint8))


def test_flatten_layers_reaches_the_nested_augmentation_block():
    model = _chapter_6_model()
    assert "random_flip" not in {type(layer).__name__.lower() for layer in model.layers}  # nested, not top level
    assert sorted(entry["class"] for entry in augmentation_settings(model)) == ["RandomFlip", "RandomTranslation"]


def test_seed_generators_cover_every_random_layer():
    model = _chapter_6_model()
    generators = checkpoints._seed_generators(model)
    # flip, translation and dropout each draw from one generator whose state is a variable to save
    assert len(generators) == 3 and all(isinstance(generator, keras.random.SeedGenerator) for generator in generators)
    assert all(hasattr(generator, "state") for generator in generators)


def test_flops_count_layers_inside_nested_blocks():
    inner = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same")])
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, inner(inputs))
    assert flops.forward_flops(model) == 2 * 64 * 27 * 4


def test_bias_boost_steps_only_batch_norm_shifts_faster():
    from cifar_lessons.going_further.fast import BiasBoostSGD

    dense = keras.layers.Dense(2, use_bias=False)
    norm = keras.layers.BatchNormalization()
    model = keras.Sequential([keras.Input((3,)), dense, norm])
    optimizer = BiasBoostSGD(bias_boost=10.0, learning_rate=0.1)
    variables = model.trainable_variables
    optimizer.build(variables)
    assert optimizer._get_variable_index(norm.beta) == [v.path for v in variables].index(norm.beta.path)
    before = {v.path: np.array(v) for v in variables}
    optimizer.apply([keras.ops.ones_like(v) for v in variables], variables)
    steps = {v.path.split("/")[-1]: float(np.abs(np.array(v) - before[v.path]).max()) for v in variables}
    assert np.isclose(steps["beta"], 1.0) and np.isclose(steps["gamma"], 0.1) and np.isclose(steps["kernel"], 0.1)

