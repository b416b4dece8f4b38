"""One training entry point: a config object in, a saved model and a run record out.

Introduced in Chapter 1 and grown by later chapters (ReduceLROnPlateau in
Chapter 7, EarlyStopping in Chapter 8). A run checkpoints every epoch, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np

from . import results
from .data import Dataset, train_validation_split
from .models import build_model


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


@dataclasses.dataclass
class Run:
    """A finished run: the trained model, its per-epoch history and its record (Chapter 1)."""

    model: object
    history: dict
    record: dict
    run_dir: Path


def compile_model(model, config):
    """Adam on the cross-entropy of the integer labels, reporting accuracy (Chapter 1)."""
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def fit_model(model, config, splits, callbacks, verbose="auto"):
    """Train on the training split in shuffled batches, scoring the validation split after every epoch (Chapter 1)."""
    x_train, y_train = splits["train"]
    return model.fit(x_train, y_train, validation_data=splits["val"], epochs=config.epochs,
                     batch_size=config.batch_size, shuffle=True, callbacks=callbacks, verbose=verbose)


def chapter_callbacks(config):
    """The callbacks a config switches on, both watching the validation loss (Chapters 7 and 8)."""
    callbacks = []
    if config.reduce_lr:
        callbacks.append(reduce_lr_callback(config))
    if config.early_stopping:
        callbacks.append(early_stopping_callback(config))
    return callbacks


def reduce_lr_callback(config):
    """Multiply the learning rate by ``reduce_lr_factor`` after ``reduce_lr_patience`` epochs without a lower
    validation loss, down to 1e-5 (Chapter 7)."""
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=config.reduce_lr_factor, patience=config.reduce_lr_patience,
        min_lr=1e-5, verbose=1)


def early_stopping_callback(config):
    """Stop after ``early_stopping_patience`` epochs without a lower validation loss and keep the best
    epoch's weights (Chapter 8)."""
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True, verbose=1)


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


def _cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where /proc/cpuinfo is absent)."""
    return set((results.cpuinfo_field("flags") or "").split())


def resolve_precision(precision: str) -> str:
    """The dtype policy a run uses: "auto" means mixed_bfloat16 where the hardware computes in bfloat16 (Chapter 1).

    That is a GPU of compute capability 8.0 or newer, or a CPU with AVX512_BF16 or AMX; everywhere
    else bfloat16 is emulated and slower, so "auto" falls back to float32.
    """
    if precision != "auto":
        return precision
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        if tuple(capability) >= (8, 0):
            return "mixed_bfloat16"
    if _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "mixed_bfloat16"
    return "float32"


class EpochLog(keras.callbacks.Callback):
    """Saves the history after every epoch and times each epoch (Chapter 1)."""

    def __init__(self, history_path: Path, history: dict):
        super().__init__()
        self.history_path, self.history = history_path, history

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))
        logs["epoch_time_s"] = time.perf_counter() - self.started
        # After a resume an epoch may be repeated: keep only the epochs before this one.
        for values in self.history.values():
            del values[epoch:]
        self.history.setdefault("epoch", []).append(epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        results.write_json_atomic(self.history_path, self.history)


def _progress_verbosity() -> int:
    """A live progress bar in notebooks and terminals, one line per epoch in log files."""
    if "ipykernel" in sys.modules or sys.stdout.isatty():
        return 1
    return 2


class RunRecorder:
    """Everything a run does around building, compiling and fitting its model (Chapter 1).

    Entering seeds every generator, sets the precision policy, splits the data (``splits``) and prepares
    ``callbacks``: an epoch log and a checkpoint, so an interrupted run resumes where it stopped.
    ``finish(model)`` evaluates the model, saves it and writes the run record. Leaving restores the
    caller's precision policy; an interrupted run's time still counts towards its wall time.
    """

    def __init__(self, config: TrainConfig, data: Dataset, run_dir: Path, chapter: str = "adhoc", strategy=None):
        self.config, self.data, self.chapter, self.strategy = config, data, chapter, strategy
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoint"
        self.history_path = self.checkpoint_dir / "history.json"
        self.progress_path = self.checkpoint_dir / "progress.json"

    def __enter__(self) -> RunRecorder:
        self.started = time.perf_counter()  # wall time covers data, build, fit, evaluation and saving
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Resume: a checkpoint of the same config continues; of another config starts over.
        progress = results.read_json(self.progress_path) if self.progress_path.exists() else {}
        if progress.get("config_hash") != config.hash:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            progress = {"config_hash": config.hash, "wall_time_s": 0.0}
        self.progress = progress
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        results.write_json_atomic(self.progress_path, progress)
        self.history = results.read_json(self.history_path) if self.history_path.exists() else {}
        if self.history:
            print(f"Resuming {self.chapter} after epoch {len(self.history['epoch'])} from {self.checkpoint_dir}",
                  flush=True)
        keras.utils.set_random_seed(config.seed)
        self.precision = resolve_precision(config.precision)
        self.previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        self.splits = prepare_data(config, self.data)
        self.callbacks = [
            EpochLog(self.history_path, self.history),
            # Saves weights, optimizer state and epoch so an interrupted run resumes.
            keras.callbacks.BackupAndRestore(str(self.checkpoint_dir)),
        ]
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None and self.progress_path.parent.exists():
            self.progress["wall_time_s"] += time.perf_counter() - self.started  # an interrupted segment counts
            results.write_json_atomic(self.progress_path, self.progress)
        keras.mixed_precision.set_global_policy(self.previous_policy)  # later models get the caller's policy
        return False

    def scope(self):
        """The distribution strategy's scope to build and compile in (a no-op without a strategy)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def finish(self, model) -> Run:
        """Evaluate on the test and validation splits, save the model, history and record (Chapter 1)."""
        config, history, strategy = self.config, self.history, self.strategy
        (x_train, _), (x_val, y_val), (x_test, y_test) = self.splits["train"], self.splits["val"], self.splits["test"]
        test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
        val_loss, val_accuracy = model.evaluate(x_val, y_val, batch_size=500, verbose=0)
        epochs_run = len(history["epoch"])
        wall = self.progress["wall_time_s"] + time.perf_counter() - self.started
        record = {
            "format": results.RECORD_FORMAT, "chapter": self.chapter, "config": config.to_dict(),
            "config_hash": config.hash, "seed": config.seed, "epochs_run": epochs_run,
            "best_epoch": int(np.argmin(history["val_loss"])) + 1,
            "wall_time_s": round(wall, 1),
            "train_time_s": round(float(np.sum(history["epoch_time_s"])), 1),
            "images_per_s": round(len(x_train) * epochs_run / float(np.sum(history["epoch_time_s"])), 1),
            "train_images": len(x_train), "val_images": len(x_val), "test_images": len(x_test),
            "hardware": results.hardware_info(), "versions": results.library_versions(),
            "data": self.data.source, "code": results.code_identity(),
            "val_accuracy": float(val_accuracy), "val_loss": float(val_loss),
            "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "quick": bool(config.subset),
            "strategy": type(strategy).__name__ if strategy is not None else None,
            "replicas": getattr(strategy, "num_replicas_in_sync", 1),
            "precision": self.precision,
        }
        # Save model and history first, the record last: a record means the run is complete.
        model_tmp = self.run_dir / f".{results.MODEL_FILE}.partial.keras"
        model.save(model_tmp)
        model_tmp.replace(self.run_dir / results.MODEL_FILE)
        results.write_json_atomic(self.run_dir / results.HISTORY_FILE, history)
        results.write_json_atomic(self.run_dir / results.RECORD_FILE, record)
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return Run(model=model, history=history, record=record, run_dir=self.run_dir)


def train(config: TrainConfig, data: Dataset, run_dir: Path, chapter: str = "adhoc",
          verbose: int | None = None, strategy=None, callbacks: tuple = ()) -> Run:
    """Train, checkpointing every epoch, then evaluate on the test set and write a record (Chapter 1).

    ``strategy`` is an optional ``tf.distribute`` strategy (e.g. MirroredStrategy);
    ``callbacks`` are extra Keras callbacks, run before the chapter's own. The chapters show
    build_model, compile_model, fit_model and chapter_callbacks in full, and train with these same lines.
    """
    with RunRecorder(config, data, run_dir, chapter=chapter, strategy=strategy) as recorder:
        with recorder.scope():
            model = compile_model(build_model(config, recorder.splits["train"][0]), config)
        fit_model(model, config, recorder.splits,
                  callbacks=recorder.callbacks + list(callbacks) + chapter_callbacks(config),
                  verbose=_progress_verbosity() if verbose is None else verbose)
        return recorder.finish(model)


def load_run(run_dir: Path) -> Run:
    """Load a recorded run's model, history and record from its folder (Chapter 1)."""
    run_dir = Path(run_dir)
    record = results.load_record(run_dir)
    history = results.read_json(run_dir / results.HISTORY_FILE)
    model_path = run_dir / results.MODEL_FILE
    if not model_path.is_file():
        raise results.RecordError(f"{model_path} is missing: retrain this chapter.")
    model = keras.models.load_model(model_path)
    return Run(model=model, history=history, record=record, run_dir=run_dir)
