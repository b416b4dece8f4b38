"""Going further: the techniques of the fastest CIFAR-10 recipes, in Keras (Chapter 11).

The recipe follows the ideas of airbench (Keller Jordan, 2024) and hlb-CIFAR10 (Tysam, 2023),
written here from scratch in Keras: a first convolution whose 2x2 filters whiten the image patches
(computed from the training data, not learned), a wide and shallow VGG-style network with batch
norm and GELU, SGD with Nesterov momentum at a large batch, a warmup-then-decay learning-rate
schedule, label smoothing, decoupled weight decay, an exponential moving average of the weights,
flip-and-shift augmentation, and test-time augmentation built into the saved model.

Every hyperparameter of a run lives in :class:`FastConfig`; an ablation switches one off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from .. import results, run_folder
from ..checkpoints import CHECKPOINT_DIR, resume, stopped_message
from ..data import CLASS_NAMES, OFFICIAL_PER_CLASS, Dataset
from ..devices import dtype_policy, resolve_precision
from ..results import TrainingError
from ..training import EpochLog, architecture_hash, augmentation_settings, optimizer_settings, prepare_data
from .fast_config import FastConfig
from .fast_tta import inference_model, score, score_free_variants


def whitening_kernel(
    images: np.ndarray, patch: int = 2, epsilon: float = 5e-4
) -> np.ndarray:
    """Conv filters that whiten ``patch x patch`` image patches, from the data's
    covariance (Chapter 11).

    Each eigenvector v of the patch covariance becomes a filter
    v / sqrt(lambda + epsilon), so the filter outputs are uncorrelated with unit
    variance; the negated filters are added so a ReLU-like activation after the layer
    keeps both signs. ``images`` are float images already standardized.
    """
    patches = np.lib.stride_tricks.sliding_window_view(
        images, (patch, patch), axis=(1, 2)
    )
    # One row per patch: (N, C*p*p).
    patches = patches.reshape(-1, images.shape[-1] * patch * patch).astype(np.float64)
    covariance = np.cov(patches, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(eigenvalues + epsilon)  # columns: one filter each
    # sliding_window_view orders a patch as (channel, row, col); Keras kernels are
    # (row, col, channel, out).
    channels = images.shape[-1]
    kernel = filters.T.reshape(-1, channels, patch, patch).transpose(2, 3, 1, 0)
    return np.concatenate([kernel, -kernel], axis=-1).astype(np.float32)


def torch_style_initializer() -> keras.initializers.Initializer:
    """Uniform weights with variance 1/(3 fan_in): PyTorch's default, which airbench's settings assume."""
    return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")


def conv_group(x, filters: int, momentum: float, epsilon: float, name: str):
    """Convolution, max pooling, batch norm, GELU, then convolution, batch norm, GELU
    (Chapter 11).
    """
    x = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer=torch_style_initializer(),
        name=f"{name}_conv1",
    )(x)
    x = layers.MaxPooling2D(name=f"{name}_pool")(x)
    x = layers.BatchNormalization(
        momentum=momentum, epsilon=epsilon, scale=False, name=f"{name}_bn1"
    )(x)
    x = layers.Activation("gelu", name=f"{name}_gelu1")(x)
    x = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer=torch_style_initializer(),
        name=f"{name}_conv2",
    )(x)
    x = layers.BatchNormalization(
        momentum=momentum, epsilon=epsilon, scale=False, name=f"{name}_bn2"
    )(x)
    return layers.Activation("gelu", name=f"{name}_gelu2")(x)


def build_fast_net(config: FastConfig, x_train: np.ndarray) -> keras.Model:
    """The going-further network on raw 0-255 images, returning logits (Chapter 11)."""
    from ..models import normalization_layer

    normalizer = normalization_layer(x_train)
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = normalizer(inputs)
    if config.whiten_patch:
        # The whitening filters come from standardized training images (training
        # statistics only).
        rng = np.random.default_rng(config.seed)
        sample = x_train[
            rng.choice(
                len(x_train), min(config.whiten_sample, len(x_train)), replace=False
            )
        ]
        sample = sample.astype(np.float32)
        pixels = x_train.reshape(-1, 3).astype(np.float64)
        standardized = (sample - pixels.mean(axis=0)) / np.sqrt(pixels.var(axis=0))
        kernel = whitening_kernel(
            standardized, config.whiten_patch, config.whiten_epsilon
        )
        whiten = layers.Conv2D(
            kernel.shape[-1],
            config.whiten_patch,
            padding="valid",
            use_bias=True,
            trainable=False,
            name="whiten",
        )
        x = whiten(x)
        whiten.set_weights([kernel, np.zeros(kernel.shape[-1], np.float32)])
    else:  # the ablation: an ordinary learned 2x2 convolution of the same size
        x = layers.Conv2D(
            24,
            2,
            padding="valid",
            kernel_initializer=torch_style_initializer(),
            name="whiten",
        )(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for index, filters in enumerate(config.widths, start=1):
        x = conv_group(
            x,
            filters,
            config.batch_norm_momentum,
            config.batch_norm_epsilon,
            name=f"block{index}",
        )
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    x = layers.Dense(
        10,
        use_bias=False,
        kernel_initializer=torch_style_initializer(),
        name="logits_unscaled",
    )(x)
    outputs = layers.Rescaling(config.logit_scale, dtype="float32", name="logits")(x)
    net = keras.Model(inputs, outputs, name="fast_net")
    if config.identity_init:
        for layer in net.layers:
            if layer.name.startswith("block") and isinstance(layer, layers.Conv2D):
                layer.kernel.assign(identity_kernel(layer.kernel.numpy()))
    return net


def identity_kernel(kernel: np.ndarray) -> np.ndarray:
    """A 3x3 kernel whose first filters pass their input channel through unchanged
    (Chapter 11).

    airbench's "dirac" initialization: filter i of a convolution with ``c_in`` input
    channels is the identity on channel i for i < c_in (a 1 at the centre tap, 0
    elsewhere), so a freshly built block starts close to passing its input through; any
    further filters keep their random start.
    """
    rows, cols, channels_in, channels_out = kernel.shape
    kernel = kernel.copy()
    passed = min(channels_in, channels_out)
    kernel[..., :passed] = 0.0
    kernel[rows // 2, cols // 2, np.arange(passed), np.arange(passed)] = 1.0
    return kernel


def training_model(config: FastConfig, net: keras.Model) -> keras.Model:
    """The network behind random flips and pixel shifts, which act only during training (Chapter 11).

    With ``alternate_flips`` the mirroring happens in :class:`TrainingBatches` instead, which knows
    the epoch and which image is which.
    """
    steps = []
    if config.flip and not config.alternate_flips:
        steps.append(layers.RandomFlip("horizontal", seed=config.seed))
    if config.translate_pixels:
        shift = config.translate_pixels / 32
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="reflect", interpolation="nearest",
                                              seed=config.seed))
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = keras.Sequential(steps, name="augment")(inputs) if steps else inputs
    return keras.Model(inputs, net(x), name="fast_train")


class TrainingBatches(keras.utils.PyDataset):
    """Shuffled training batches; with ``alternate_flips``, each image mirrored on every
    other epoch (Chapter 11).

    airbench's alternating flip: in the first epoch a random half of the images is
    mirrored, and from then on every image switches orientation each epoch, so any two
    consecutive epochs show each image both ways (random flips repeat an orientation
    half of the time). Batch ``step`` of the whole run is a function of the seed and the
    step alone, so the batches do not depend on when Keras asks for them. The stream
    never ends: ``fit`` is given ``steps_per_epoch``, and the last incomplete batch of
    each epoch is dropped, as airbench does.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, config: FastConfig):
        super().__init__()
        self.images, self.labels = images, labels
        self.batch_size, self.seed = config.batch_size, config.seed
        self.alternate_flips = config.flip and config.alternate_flips
        self.steps_per_epoch = self.steps_for(len(images), config.batch_size)
        self.first_epoch_flips = (
            np.random.default_rng([config.seed, 0]).random(len(images)) < 0.5
        )
        # (epoch, order): the permutation of the epoch asked for last
        self._order = (None, None)
        # The run's step of this dataset's step 0: a resumed run sets it, since Keras counts from 0 again.
        self.first_step = 0

    @staticmethod
    def steps_for(images: int, batch_size: int) -> int:
        """Full batches in an epoch of ``images`` images: the steps of one epoch."""
        return max(1, images // batch_size)

    @property
    def num_batches(self):
        return None  # endless; fit's steps_per_epoch marks the epochs

    def order(self, epoch: int) -> np.ndarray:
        """The order in which epoch ``epoch`` visits the images."""
        if self._order[0] != epoch:
            self._order = (
                epoch,
                np.random.default_rng([self.seed, epoch + 1]).permutation(
                    len(self.images)
                ),
            )
        return self._order[1]

    def __getitem__(self, step: int):
        epoch, batch = divmod(self.first_step + int(step), self.steps_per_epoch)
        index = self.order(epoch)[batch * self.batch_size:(batch + 1) * self.batch_size]
        images = self.images[index]
        if self.alternate_flips:
            mirrored = self.first_epoch_flips[index] ^ bool(epoch % 2)
            images = np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)
        return images, self.labels[index]


def learning_rate_schedule(config: FastConfig, steps_per_epoch: int):
    """Linear warmup to the peak, then cosine decay to a small fraction of it
    (Chapter 11).
    """
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.peak_learning_rate * config.warmup_start_fraction,
        decay_steps=max(1, total - warmup),
        alpha=config.final_learning_rate_fraction,
        warmup_target=config.peak_learning_rate, warmup_steps=warmup)


class BiasBoostSGD(keras.optimizers.SGD):
    """SGD in which batch norm's shifts (its ``beta`` variables) take ``bias_boost``
    times larger steps (Chapter 11).

    With batch norm after every convolution, a filter's scale does not matter, only its
    direction, and the shifts are the only parameters that set where each GELU bends;
    airbench gives them a 64 times larger learning rate. The optimizer is not part of
    the saved model, which stays stock Keras.
    """

    def __init__(self, bias_boost: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.bias_boost = bias_boost

    def build(self, variables):
        super().build(variables)
        # Which variables are shifts, by position (inside the update the TF backend
        # passes its own variables).
        self._boosted = [
            variable.path.split("/")[-1] == "beta" for variable in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        # _get_variable_index is private Keras, the only way from a variable to its place in build()'s list
        # (tests/test_keras_internals.py checks it).
        if self._boosted[self._get_variable_index(variable)]:
            learning_rate = learning_rate * self.bias_boost
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "bias_boost": self.bias_boost}


def compile_fast(model: keras.Model, config: FastConfig, steps_per_epoch: int) -> None:
    """SGD with Nesterov momentum, weight decay, an optional weight average, label
    smoothing (Chapter 11).
    """
    optimizer = BiasBoostSGD(
        bias_boost=config.bias_learning_rate_boost,
        learning_rate=learning_rate_schedule(config, steps_per_epoch),
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay or None,
        use_ema=config.ema_momentum is not None,
        ema_momentum=config.ema_momentum or 0.99,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=config.label_smoothing
        ),
        metrics=["accuracy"],
    )


@run_folder.one_trainer  # holds run_dir's lock while it trains, as train() does for every other chapter
def train_fast(config: FastConfig, data: Dataset, run_dir: Path, chapter: str = "11",
               verbose: int = 2, free_variants: bool | None = None, callbacks: tuple = ()) -> dict:
    """Train the going-further recipe, evaluate the saved (TTA) model on the test set,
    write a record (Chapter 11).

    ``free_variants`` (default: every run but a quick one) also scores the other
    test-time augmentations and the raw last-epoch weights on the same trained network,
    after the run's clock has stopped. ``callbacks`` join fit's, before the checkpoint.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    run_dir = Path(run_dir)
    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config.precision)
    with dtype_policy(precision):
        splits = prepare_data(config, data)
        net = build_fast_net(config, splits["train"][0])
        model = training_model(config, net)
        batches = TrainingBatches(splits["train"][0], ONE_HOT[splits["train"][1]], config)
        compile_fast(model, config, batches.steps_per_epoch)
        identity = run_identity(config, model, net, precision, data.fingerprint)
        # Checkpointed after every epoch, as train() does: an interrupted run resumes after its last complete
        # epoch, with the weights, the optimizer (its step count, momentum and moving average) and the random
        # generators as they were, and the batches continuing where they stopped.
        state, history, checkpoint = resume(run_dir / CHECKPOINT_DIR, model, identity, chapter, [], started)
        done = state.get("epoch", 0)
        fit_started = time.perf_counter()
        last_raw_weights = [] if state.get("finished") else _fit_fast(
            model, net, config, batches, splits["val"], done, history, [*callbacks, checkpoint], chapter, verbose)
        fit_time = time.perf_counter() - fit_started
        if not all(math.isfinite(loss) for loss in history.get("loss", [math.nan])):
            raise TrainingError("training diverged (the loss is not finite); lower peak_learning_rate")
        if config.ema_momentum is not None:
            # The moving-average weights replace the raw ones at the end of fit; re-estimate the batch-norm
            # statistics for them with one pass over the training images (no weight updates).
            _recompute_batch_norm_statistics(net, splits["train"][0], config.batch_size)
        final = inference_model(config, net)  # saved uncompiled: no optimizer state in the file
        scores = {f"{split}_{name}": value for split in ("test", "val")
                  for name, value in zip(("loss", "accuracy"), score(final, *splits[split]))}
        model_tmp = Path(tempfile.mkstemp(dir=run_dir, prefix=f".{results.MODEL_FILE}.", suffix=".partial.keras")[1])
        final.save(model_tmp)
        # The race's clock stops here: trained, evaluated and saved. A resumed run's wall clock includes its
        # earlier segments (from the checkpoint); its CPU clock is this process's only.
        run_time = checkpoint.wall_time_s + time.perf_counter() - started
        run_cpu = time.process_time() - cpu_started
        analysis_started = time.perf_counter()
        variants = _variants(config, net, last_raw_weights, splits, scores, free_variants)
        analysis_time = time.perf_counter() - analysis_started
    record = results.run_record(
        chapter=chapter, config=config, history=history, identity=identity, precision=precision,
        data_source=data.source, sizes={f"{split}_images": len(splits[split][0]) for split in splits},
        scores=scores, images_per_epoch=batches.steps_per_epoch * config.batch_size)
    record.update({
        "recipe": "fast", "parameters": int(net.count_params()), "variants": variants,
        "fit_time_s": round(fit_time, 1), "run_time_s": round(run_time, 1), "run_cpu_time_s": round(run_cpu, 1),
        "analysis_time_s": round(analysis_time, 1), "resumed_after_epoch": done,  # 0 for a run in one go
        "cpu_time_s": round(time.process_time() - cpu_started, 1),
        "wall_time_s": round(checkpoint.wall_time_s + time.perf_counter() - started, 1),
    })
    # The new run replaces the old one whole, its record last (run_folder.publish).
    record = run_folder.publish(run_dir, lambda path: model_tmp.replace(path), history, record)
    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    return record


ONE_HOT = np.eye(10, dtype=np.float32)  # class index -> the one-hot target label smoothing needs


def _fit_fast(model, net, config: FastConfig, batches, val, done: int, history: dict, callbacks: list,
              chapter: str, verbose: int) -> list:
    """Train the epochs a run has left after ``done``; returns the raw weights of the last epoch, before the
    moving average replaces them (for the ablation), or [] if a resumed run had none left to train."""
    batches.first_step = done * batches.steps_per_epoch  # Keras counts a resumed run's steps from 0
    last_raw_weights = []
    keep_raw = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch == config.epochs - 1 and last_raw_weights.append(net.get_weights()))
    with stopped_message(chapter, callbacks[-1].folder):
        model.fit(
            batches, steps_per_epoch=batches.steps_per_epoch, validation_data=(val[0], ONE_HOT[val[1]]),
            epochs=config.epochs, initial_epoch=done,
            shuffle=False,  # TrainingBatches shuffles every epoch itself
            # the checkpoint last: it saves the epoch the others have seen
            callbacks=[EpochLog(history), keras.callbacks.TerminateOnNaN(), keep_raw, *callbacks],
            verbose=verbose)
    return last_raw_weights


def _variants(config: FastConfig, net, last_raw_weights: list, splits: dict, scores: dict,
              free_variants: bool | None) -> dict:
    """The saved model's scores under its test-time augmentation and, unless ``free_variants`` is False (by
    default: a quick run's, which they would cost more than its training), every other test-time augmentation
    and the raw weights of the last epoch instead of their moving average, on the same trained network."""
    variants = {f"tta_{config.tta}": {"val_accuracy": scores["val_accuracy"],
                                      "test_accuracy": scores["test_accuracy"]}}
    if free_variants is None:
        free_variants = config.subset is None
    if free_variants:
        variants.update(score_free_variants(config, net, last_raw_weights[0] if last_raw_weights else None,
                                            splits["val"], splits["test"]))
    return variants


def _training_images(config: FastConfig) -> int:
    """How many images CIFAR-10's training part gives a run of ``config``: what its batches and schedule count."""
    return config.subset or len(CLASS_NAMES) * OFFICIAL_PER_CLASS[0] - config.validation_size


def data_order_hash(config: FastConfig, images: int, epochs: int = 2) -> str:
    """Short sha256 of the batches ``TrainingBatches`` serves in the first ``epochs`` epochs: which image each
    position holds and whether it is mirrored (Chapter 11). Each stand-in image is its own index, written
    left to right, so the hash sees the order and the flips and nothing else."""
    index = np.arange(images, dtype=np.int64)
    stand_ins = np.stack([2 * index, 2 * index + 1], axis=1).reshape(images, 1, 2, 1)
    batches = TrainingBatches(stand_ins, index, config)
    digest = hashlib.sha256()
    for step in range(batches.steps_per_epoch * epochs):
        served, labels = batches[step]
        digest.update(np.ascontiguousarray(served).tobytes() + np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()[:16]


def run_identity(config: FastConfig, model: keras.Model, net: keras.Model, precision: str,
                 data_fingerprint: str) -> dict:
    """Everything that determines a chapter-11 run: config, architecture, augmentation, optimizer, loss, and the
    order and orientation in which its own batches serve the training images (Chapter 11)."""
    return {"config": config.hash, "architecture": architecture_hash(inference_model(config, net)),
            "augmentation": augmentation_settings(model), "optimizer": optimizer_settings(model.optimizer),
            "loss": json.dumps(keras.losses.serialize(model.loss), sort_keys=True), "callbacks": {},
            "precision": precision, "data": data_fingerprint,
            "data_order": data_order_hash(config, _training_images(config))}


@functools.lru_cache(maxsize=8)
def _code_identity_of(config: FastConfig, precision: str) -> str:
    with dtype_policy(precision):
        images = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)
        net = build_fast_net(config, images)
        model = training_model(config, net)
        # The learning-rate schedule counts steps: those of CIFAR-10's training part, as train_fast's batches.
        compile_fast(model, config, TrainingBatches.steps_for(_training_images(config), config.batch_size))
        identity = run_identity(config, model, net, precision, "")
    return json.dumps(identity)


def expected_identity(config: FastConfig, precision: str, data_fingerprint: str) -> dict:
    """The identity the current code gives a chapter-11 run of ``config`` (a throwaway model, no data) (Chapter 11)."""
    identity = json.loads(_code_identity_of(config, precision))
    return {**identity, "data": data_fingerprint}


def _recompute_batch_norm_statistics(net: keras.Model, images: np.ndarray, batch_size: int) -> None:
    """Reset every BatchNormalization layer's running mean and variance from the training images."""
    norms = [layer for layer in net.layers if isinstance(layer, layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    # A cumulative average over the batches: momentum k/(k+1) on batch k weighs every batch equally.
    batches = range(0, len(images), batch_size)
    for index, start in enumerate(batches):
        for layer in norms:
            layer.momentum = index / (index + 1)
        net(images[start:start + batch_size].astype(np.float32), training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum

