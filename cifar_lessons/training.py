"""One training entry point: a config object in, a saved model and a run record out.

Introduced in Chapter 1 and grown by later chapters (ReduceLROnPlateau in
Chapter 7, EarlyStopping in Chapter 8). A run checkpoints every epoch (cifar_lessons.checkpoints), so an
interrupted run resumes where it stopped: the checkpoint holds the weights, the
optimizer state, the random-generator states of dropout and augmentation, the
callbacks' state (best value, wait counter, best weights) and the history, so the
resumed run continues exactly as the uninterrupted one would have.

The chapters show the functions ``train()`` builds, compiles and fits with (``build_model`` and its
blocks in ``cifar_lessons.models``; ``compile_model``, ``fit_model`` and ``chapter_callbacks`` here) in
``#@save`` cells, verbatim: ``tests/test_shown_code.py`` checks that the shown code is this code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import gc
import hashlib
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from . import results, run_folder
from .checkpoints import CHECKPOINT_DIR, checkpoints, resume, stopped_message
from .config import TrainConfig
from .data import Dataset, train_validation_split
from .devices import dtype_policy, resolve_precision, resolve_strategy
from .models import build_model
from .results import TrainingError  # noqa: F401 (raised here, caught by the CLI)


@dataclasses.dataclass
class Run:
    """A finished run: the trained model, its per-epoch history and its record (Chapter 1)."""

    model: object
    history: dict
    record: dict
    run_dir: Path


def compile_model(model, config):
    """Adam on the cross-entropy of the integer labels, reporting accuracy
    (Chapter 1).
    """
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_model(model, config, splits, callbacks, initial_epoch=0, verbose="auto"):
    """Train on the training split in shuffled batches, scoring the validation split
    after every epoch (Chapter 1).

    ``initial_epoch`` is the number of epochs already trained: a resumed run continues
    after them.
    """
    x_train, y_train = splits["train"]
    return model.fit(
        x_train,
        y_train,
        validation_data=splits["val"],
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )


def chapter_callbacks(config):
    """The callbacks a config switches on, both watching the validation loss
    (Chapters 7 and 8)."""
    callbacks = []
    if config.reduce_lr:
        callbacks.append(reduce_lr_callback(config))
    if config.early_stopping:
        callbacks.append(early_stopping_callback(config))
    return callbacks


def reduce_lr_callback(config):
    """Multiply the learning rate by ``reduce_lr_factor`` after ``reduce_lr_patience``
    epochs without a lower validation loss, down to 1e-5 (Chapter 7)."""
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss",
        factor=config.reduce_lr_factor,
        patience=config.reduce_lr_patience,
        min_lr=1e-5,
        verbose=1,
    )


def early_stopping_callback(config):
    """Stop after ``early_stopping_patience`` epochs without a lower validation loss
    and keep the best epoch's weights (Chapter 8)."""
    return keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=config.early_stopping_patience,
        restore_best_weights=True,
        verbose=1,
    )


def prepare_data(config: TrainConfig, data: Dataset) -> dict:
    """Split validation from training data (and subset it for quick runs) (Chapter 1)."""
    x, y = data.x_train, data.y_train
    x_test, y_test = data.x_test, data.y_test
    if config.subset:
        rng = np.random.default_rng(config.seed)
        keep = rng.choice(len(x), config.subset + config.validation_size, replace=False)
        x, y = x[keep], y[keep]
        keep_test = rng.choice(len(x_test), min(config.subset, len(x_test)), replace=False)
        x_test, y_test = x_test[keep_test], y_test[keep_test]
    (x_train, y_train), (x_val, y_val) = train_validation_split(
        x, y, validation_size=config.validation_size, seed=config.seed)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


class EpochLog(keras.callbacks.Callback):
    """Adds every epoch's metrics, learning rate and duration to the history (Chapter 1).

    With ``path``, the history is also written there (atomically) after every epoch, as chapter 11's
    training does. An epoch logged again (a resumed run repeating it) replaces its earlier entry.
    """

    def __init__(self, history: dict, path: Path | None = None):
        super().__init__()
        self.history, self.path = history, path

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        logs["epoch_time_s"] = time.perf_counter() - self.started
        # CPU seconds of this process: unlike wall time, barely changed by other programs on the machine.
        logs["epoch_cpu_s"] = time.process_time() - self.cpu_started
        for values in self.history.values():
            del values[epoch:]
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        if self.path is not None:
            results.write_json_atomic(self.path, self.history)


class TimeEstimate(keras.callbacks.Callback):
    """After a few measured batches, says how long the rest of the run should take on this machine (Chapter 1).

    The first batches include tracing and warm-up, so the rate is measured over the batches after them.
    """

    def __init__(self, epochs_left: int, warmup: int = 5, measured: int = 20):
        super().__init__()
        self.epochs_left, self.warmup, self.measured = epochs_left, warmup, measured
        self.started = None
        self.done = epochs_left < 1

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        if batch + 1 == self.warmup:
            self.started = time.perf_counter()
        elif self.started is not None and batch + 1 == self.warmup + self.measured:
            seconds_per_batch = (time.perf_counter() - self.started) / self.measured
            minutes = seconds_per_batch * self.params["steps"] * self.epochs_left / 60
            print(f"\nTime estimate: {seconds_per_batch * 1000:.0f} ms per batch here, so about {minutes:.0f} min "
                  f"for {self.epochs_left} epoch{'s' * (self.epochs_left != 1)} (validation not counted; "
                  "early stopping may end sooner).", flush=True)
            self.done = True


# ---------------------------------------------------------------------------------------------
# Run identity: everything that determines a run, so a record can be checked against the code.

# Attributes of a callback that are its running state, not its settings.
_CALLBACK_STATE = {"verbose", "wait", "best", "cooldown_counter", "stopped_epoch", "best_epoch", "best_weights",
                   "model", "monitor_op", "params", "validation_data"}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _without_names(value):
    """A model config without layer names (auto-numbered ones vary between sessions) and data statistics.

    The normalization statistics come from the training data, which the identity's data fingerprint covers.
    """
    if isinstance(value, list):
        return [_without_names(item) for item in value]
    if not isinstance(value, dict):
        return value
    is_layer = isinstance(value.get("config"), dict) and not str(value.get("class_name", "")).endswith("Policy")
    stripped = {key: _without_names(item) for key, item in value.items() if not (is_layer and key == "name")}
    if is_layer:
        drop = {"name", "mean", "variance"} if value.get("class_name") == "Normalization" else {"name"}
        stripped["config"] = {key: item for key, item in stripped["config"].items() if key not in drop}
    return stripped


def architecture_hash(model) -> str:
    """Short hash of the model's serialized config, layer names and data statistics left out (Chapter 1)."""
    return _digest(_without_names(model.get_config()))


def augmentation_settings(model) -> list:
    """Class and settings (seed included) of every random augmentation layer in the model (Chapter 4)."""
    settings = []
    # Keras' private _flatten_layers walks nested blocks too (the augmentation block is a Sequential inside the
    # model), in a fixed order; tests/test_keras_internals.py fails loudly if a Keras release changes it.
    for layer in model._flatten_layers(include_self=False):
        config = layer.get_config()
        if type(layer).__name__.startswith("Random") and "seed" in config:
            kept = {key: value for key, value in config.items() if key not in ("name", "dtype", "trainable")}
            settings.append({"class": type(layer).__name__, **kept})
    return settings


def optimizer_settings(optimizer) -> dict:
    """The optimizer's class and hyperparameters (Chapter 1)."""
    config = optimizer.get_config()
    return {"class": type(optimizer).__name__, **{key: value for key, value in config.items() if key != "name"}}


def callback_settings(callbacks) -> dict:
    """Each chapter callback's class and settings, its running state left out (Chapters 7 and 8)."""
    settings = {}
    for callback in callbacks:
        values = {key: value for key, value in vars(callback).items()
                  if not key.startswith("_") and key not in _CALLBACK_STATE
                  and isinstance(value, (bool, int, float, str, type(None)))}
        settings[type(callback).__name__] = values
    return settings


def run_identity(config: TrainConfig, model, callbacks, precision: str, data_fingerprint: str) -> dict:
    """Everything that determines a run; a record whose identity the code no longer reproduces is stale (Chapter 1)."""
    return {"config": config.hash, "architecture": architecture_hash(model),
            "augmentation": augmentation_settings(model), "optimizer": optimizer_settings(model.optimizer),
            "loss": str(model.loss), "callbacks": callback_settings(callbacks), "precision": precision,
            "data": data_fingerprint}


@functools.lru_cache(maxsize=32)
def _code_identity_of(config: TrainConfig, precision: str) -> str:
    with dtype_policy(precision):
        model = compile_model(build_model(config, np.zeros((1, 32, 32, 3), np.uint8)), config)
        identity = run_identity(config, model, chapter_callbacks(config), precision, "")
    return json.dumps(identity)


def expected_identity(config: TrainConfig, precision: str, data_fingerprint: str) -> dict:
    """The identity the current code gives a run of ``config`` in ``precision`` on that data (Chapter 1).

    Builds a throwaway model (no data needed), so it is cheap enough for ``list`` and ``report``.
    """
    return {**json.loads(_code_identity_of(config, precision)), "data": data_fingerprint}


def _progress_verbosity() -> int:
    """A live progress bar in notebooks and terminals, one line per epoch in log files."""
    if "ipykernel" in sys.modules or sys.stdout.isatty():
        return 1
    return 2


def train(config: TrainConfig, data: Dataset, run_dir: Path, chapter: str = "adhoc",
          verbose: int | None = None, strategy="auto", callbacks: tuple = ()) -> Run:
    """Train, checkpointing every epoch, then evaluate on the test set and write a record (Chapter 1).

    ``strategy`` is a ``tf.distribute`` strategy, None for one device, or "auto" (``resolve_strategy``:
    MirroredStrategy over several GPUs);
    ``callbacks`` are extra Keras callbacks added to the chapter's own. An interrupted run
    (Ctrl-C, a kill, a full disk) resumes from its last complete epoch when called again.
    """
    started = time.perf_counter()  # wall time covers data, build, fit, evaluation and saving
    strategy = resolve_strategy(strategy)
    if config.epochs < 1 or config.batch_size < 1 or config.validation_size < 1:
        raise TrainingError(f"epochs, batch_size and validation_size must be at least 1 (got {config.epochs}, "
                            f"{config.batch_size}, {config.validation_size}).")
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test.partial"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise TrainingError(f"cannot write to {run_dir} ({error.strerror or error}); "
                            "choose a writable --results folder.") from None
    with run_folder.training_in(run_dir):  # one trainer per folder; an interrupted save completes first
        try:
            return _train_in(run_dir, config, data, chapter, verbose, strategy, callbacks, started)
        except OSError as error:
            if not _disk_full(error):
                raise
            saved = checkpoints(run_dir / CHECKPOINT_DIR)
            kept = (f"{saved[0].name} in {run_dir / CHECKPOINT_DIR} is kept" if saved
                    else "no epoch had finished, so nothing is kept")
            message = (f"the disk holding {run_dir} is full ({os.strerror(error.errno)}); {kept}, and the recorded "
                       "run there is unchanged. Free some space and run the same command again to resume.")
            _release_quietly(error)
        raise TrainingError(message)


def _disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def _release_quietly(error: BaseException) -> None:
    """Free, now, the half-written weight file that ``error``'s frames hold.

    On a full disk h5py cannot close it either, and says so in two tracebacks when the file object goes;
    they would only repeat, at length, the one-line error that :func:`train` gives. Nothing else is silenced.
    """
    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        error.__traceback__ = None
        error.__context__ = None
        gc.collect()
    finally:
        sys.stderr = stderr


def _train_in(run_dir: Path, config: TrainConfig, data: Dataset, chapter: str, verbose, strategy, callbacks,
              started: float) -> Run:
    """The body of :func:`train`, run while it holds the folder's lock."""
    checkpoint_dir = run_dir / CHECKPOINT_DIR
    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config.precision)
    with dtype_policy(precision):  # later models get the caller's policy back
        splits = prepare_data(config, data)
        # The chapters' code: build_model and compile_model (Chapter 1), chapter_callbacks (Chapters 7 and 8).
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = compile_model(build_model(config, splits["train"][0]), config)
        rules = chapter_callbacks(config)
        identity = run_identity(config, model, rules, precision, data.fingerprint)
        # Resume: the newest complete checkpoint of the same identity continues where it stopped.
        state, history, checkpoint = resume(checkpoint_dir, model, identity, chapter, rules, started)
        if not state.get("finished"):
            _fit_rest(model, config, splits, state, history, [*rules, *callbacks], checkpoint, chapter, verbose)
        scores = {}
        for split in ("test", "val"):
            scores[f"{split}_loss"], scores[f"{split}_accuracy"] = model.evaluate(*splits[split], batch_size=500,
                                                                                  verbose=0)
    if not all(math.isfinite(value) for value in scores.values()):
        raise TrainingError(f"evaluating {chapter} gave a NaN or infinite loss; nothing was recorded.")
    record = results.run_record(
        chapter=chapter, config=config, history=history, identity=identity, precision=precision,
        data_source=data.source, sizes={f"{split}_images": len(splits[split][0]) for split in splits},
        scores=scores, images_per_epoch=len(splits["train"][0]))
    record.update({
        "strategy": type(strategy).__name__ if strategy is not None else None,
        "replicas": getattr(strategy, "num_replicas_in_sync", 1),
        "devices": list(getattr(getattr(strategy, "extended", None), "worker_devices", ())) or None,
        # Earlier segments of a resumed run (from the checkpoint), then this one's.
        "wall_time_s": round(checkpoint.wall_time_s + time.perf_counter() - started, 1),
    })
    replaced = _readable_record(run_dir)  # the run this one replaces (the book's, in a fresh clone)
    # The new run replaces the old one whole, its record last (run_folder.publish); the checkpoint goes after.
    record = run_folder.publish(run_dir, lambda path: save_model(model, path), history, record)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    print(f"This run:         {run_summary(record)}", flush=True)
    if replaced is not None:
        print(f"The run replaced: {run_summary(replaced)}", flush=True)
    return Run(model=model, history=history, record=record, run_dir=run_dir)


def _fit_rest(model, config: TrainConfig, splits: dict, state: dict, history: dict, callbacks: list, checkpoint,
              chapter: str, verbose) -> None:
    """Train the epochs a run (new or resumed from ``state``) has left, logging into ``history``."""
    # A checkpoint that stopped early or reached the last epoch runs no epoch: fit() only ends the run
    # (and EarlyStopping, its state restored, puts back the kept weights when it ends).
    start = config.epochs if state.get("stop_training") else state.get("epoch", 0)
    # train() says in one line what a full disk kept.
    with stopped_message(chapter, checkpoint.folder, quiet=_disk_full):
        # The chapters' fit call (Chapter 1), with the bookkeeping callbacks around the chapter's own: the
        # epoch log and the time estimate first, then NaN detection and the checkpoint, which must come last.
        fit_model(model, config, splits,
                  callbacks=[EpochLog(history), TimeEstimate(config.epochs - start), *callbacks,
                             keras.callbacks.TerminateOnNaN(), checkpoint],
                  initial_epoch=start, verbose=_progress_verbosity() if verbose is None else verbose)
    if checkpoint.diverged_epoch is not None:
        raise TrainingError(
            f"the loss became NaN or infinite in epoch {checkpoint.diverged_epoch}; nothing was recorded. "
            f"Lower the learning rate, or delete {checkpoint.folder} and train again.")


def _readable_record(run_dir: Path) -> dict | None:
    try:
        return results.load_record(run_dir)
    except results.RecordError:
        return None


def run_summary(record: dict) -> str:
    """One line to set two runs side by side: accuracy, epochs, time, machine, precision, data, seed (Chapter 1)."""
    return (f"{100 * record['test_accuracy']:.1f}% test, {record['epochs_run']} epochs, "
            f"{record['wall_time_s'] / 60:.1f} min on {results.cpu_name(record['hardware'])} ({record['precision']}), "
            f"{record['data']['name']}, seed {record['seed']}")


def save_model(model, path: Path) -> None:
    """Save a model for evaluation and analysis, without optimizer state, atomically (Chapter 1).

    The saved model is an uncompiled copy: ``keras.models.load_model`` returns a model that predicts at
    once and evaluates after ``compile``. Adam's moment estimates are not kept (they would triple the
    file), so training a loaded model further starts them afresh: compile it with
    ``keras.optimizers.Adam(learning_rate)`` and the chapter's loss, which is close to, but not the
    same as, an uninterrupted longer run.
    """
    path = Path(path)
    lean = keras.Model.from_config(model.get_config())  # same layers, never compiled: no optimizer in the file
    lean.set_weights(model.get_weights())
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        lean.save(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_model(path: Path):
    """Load a saved model, turning a missing or damaged file into a RecordError that says so (Chapter 1)."""
    path = Path(path)
    if not path.is_file():
        raise results.RecordError(f"{path} is missing: retrain this chapter.")
    try:
        return keras.models.load_model(path)
    except Exception as error:  # zip, h5 and deserialization errors: the file is not a loadable model
        raise results.RecordError(f"{path} is damaged and cannot be loaded ({type(error).__name__}: "
                                  f"{str(error)[:120]}); retrain this chapter.") from None


def load_run(run_dir: Path) -> Run:
    """Load a recorded run's model, history and record from its folder (Chapter 1)."""
    run_dir = Path(run_dir)
    record = results.load_record(run_dir)
    results.check_files(record, run_dir)
    history = results.read_json(run_dir / results.HISTORY_FILE)
    model = load_model(run_dir / results.MODEL_FILE)
    return Run(model=model, history=history, record=record, run_dir=run_dir)
