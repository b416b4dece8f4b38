"""Checkpoints: everything a resume needs, written after every epoch into run_dir/checkpoint/ (Chapter 1).

A checkpoint holds the weights and optimizer variables, early stopping's kept weights, the random-generator
state of every dropout and augmentation layer, the chapter callbacks' running state and the history so far.
Each is written into a uniquely named temporary folder and renamed into place, and names the sha256 of its
weight files; resume refuses one whose files or epoch do not match, and falls back to the one before it.

Why not ``keras.callbacks.BackupAndRestore``: it restores the weights, the optimizer and the epoch, but not the
chapter callbacks' running state (EarlyStopping's kept weights and patience count, ReduceLROnPlateau's), the
history or the random state of the dropout and augmentation layers, so a run it resumed would not repeat the
uninterrupted one (``tests/test_checkpoints.py`` checks that ours does).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from . import results
from .results import TrainingError

# The state a resumed run restores into each chapter callback.
RESTORED_STATE = ("wait", "best", "cooldown_counter", "stopped_epoch", "best_epoch")

CHECKPOINT_DIR = "checkpoint"
KEEP_CHECKPOINTS = 2
WEIGHTS_FILE = "weights.weights.h5"  # model and optimizer variables
BEST_WEIGHTS_FILE = "best_weights.npz"  # EarlyStopping's kept weights, when it keeps some


def _seed_generators(model) -> list:
    """The random-generator state of every dropout and augmentation layer, in a fixed order.

    Keras has no public list of a model's seed generators: each layer keeps its own in the private
    ``_seed_generators``, found through the private ``_flatten_layers``. Without them a resumed run would
    draw other flips, shifts and dropout masks; tests/test_keras_internals.py fails loudly if Keras changes them.
    """
    return [generator for layer in model._flatten_layers(include_self=True)
            for generator in getattr(layer, "_seed_generators", [])]


def _json_number(value):
    value = float(value)
    return value if math.isfinite(value) else repr(value)  # "inf" survives JSON; float("inf") reads it back


def _read_number(value):
    return None if value is None else float(value)


class RunCheckpoint(keras.callbacks.Callback):
    """Saves everything a resume needs after every epoch into checkpoint/epoch-NNNN/ (Chapter 1).

    Each checkpoint is written into a temporary folder and renamed into place, so a kill during the write
    leaves the previous one intact; the newest two are kept. It must be the last callback: it saves the
    chapter callbacks' state after they have seen the epoch, and restores it after they have reset it.
    """

    def __init__(self, folder: Path, identity: dict, history: dict, watched: list, restored: dict | None = None,
                 wall_time_s: float = 0.0, started: float | None = None):
        super().__init__()
        self.folder, self.identity, self.history, self.watched = Path(folder), identity, history, watched
        self.restored = restored
        # Wall time of earlier segments, and when this one started: each checkpoint stores their sum.
        self.wall_time_s, self.started = wall_time_s, time.perf_counter() if started is None else started
        self.diverged_epoch = None

    def on_train_begin(self, logs=None):
        if not self.restored:
            return
        for callback, state in zip(self.watched, self.restored["callbacks"]):
            for key, value in state.items():
                setattr(callback, key, _read_number(value) if key == "best" else value)
            if getattr(callback, "restore_best_weights", False) and self.restored.get("best_weights"):
                callback.best_weights = self.restored["best_weights"]

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite(float(np.mean(value))) for value in (logs or {}).values()):
            self.diverged_epoch = epoch + 1  # TerminateOnNaN has stopped training; nothing of this epoch is kept
            return
        self.save(epoch + 1, finished=False)

    def on_train_end(self, logs=None):
        if self.diverged_epoch is None:
            self.save(len(self.history.get("epoch", [])), finished=True)

    def save(self, epoch: int, finished: bool) -> None:
        """Write the checkpoint of ``epoch`` atomically; ``finished`` marks the weights fit() ended with."""
        name = f"epoch-{epoch:04d}" + ("-final" if finished else "")
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{name}.", suffix=".partial"))  # unique
        self.model.save_weights(partial / WEIGHTS_FILE)  # model and optimizer variables
        best_weights = None
        for callback in self.watched:
            if getattr(callback, "best_weights", None) is not None:
                best_weights = callback.best_weights
        if best_weights is not None:
            np.savez(partial / BEST_WEIGHTS_FILE, *best_weights)
        state = {
            "epoch": epoch, "finished": finished, "stop_training": bool(self.model.stop_training),
            "identity": self.identity, "history": self.history,
            "wall_time_s": round(self.wall_time_s + time.perf_counter() - self.started, 3),
            "callbacks": [{key: (_json_number(getattr(callback, key)) if key == "best" and
                                 getattr(callback, key) is not None else getattr(callback, key))
                           for key in RESTORED_STATE if hasattr(callback, key)} for callback in self.watched],
            "seed_generators": [np.asarray(generator.state.value).tolist()
                                for generator in _seed_generators(self.model)],
            "has_best_weights": best_weights is not None,
            # Resume checks these: a flipped bit in any weight or optimizer value makes the checkpoint unusable.
            "files": {file.name: results.file_sha256(file) for file in (partial / WEIGHTS_FILE,
                                                                       partial / BEST_WEIGHTS_FILE)
                      if file.is_file()},
        }
        results.write_json_atomic(partial / "state.json", state)
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)  # the checkpoint appears whole or not at all
        for old in checkpoints(self.folder)[KEEP_CHECKPOINTS:]:
            shutil.rmtree(old, ignore_errors=True)


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoint folders, newest first (temporary .partial folders are not checkpoints)."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and path.name.startswith("epoch-")]
    return sorted(found, key=lambda path: (int(path.name.split("-")[1]), path.name.endswith("-final")),
                  reverse=True)


def check_checkpoint(path: Path, state: dict) -> None:
    """Raise ValueError unless the checkpoint's files hash as its state says and its epoch matches its history."""
    files = state.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files:
        raise ValueError("its state names no weight checksums")
    if state.get("has_best_weights") and BEST_WEIGHTS_FILE not in files:
        raise ValueError(f"its state names no checksum for {BEST_WEIGHTS_FILE}")
    for name, digest in files.items():
        if name not in (WEIGHTS_FILE, BEST_WEIGHTS_FILE) or results.file_sha256(path / name) != digest:
            raise ValueError(f"{name} does not hash to the checksum its state records")
    epochs = (state.get("history") or {}).get("epoch")
    if not isinstance(state.get("epoch"), int) or epochs != list(range(1, state["epoch"] + 1)):
        raise ValueError(f"its epoch {state.get('epoch')!r} does not match its history's epochs {epochs!r}")


def load_checkpoint(folder: Path, model, identity: dict) -> dict | None:
    """Restore the newest loadable checkpoint into ``model``; its state, or None when there is none (Chapter 1).

    A damaged checkpoint (a truncated file after a full disk, say) is reported and the one before it used;
    a checkpoint of another run identity is refused, naming the folder to delete.
    """
    candidates = checkpoints(folder)
    damaged = []
    for path in candidates:
        try:
            state = results.read_json(path / "state.json")
            if state.get("identity") != identity:
                reasons = results.identity_differences(state.get("identity") or {}, identity)
                raise TrainingError(
                    f"{folder} holds an interrupted run of something else ({'; '.join(reasons) or 'unknown'}). "
                    f"Delete {folder} to start this run from scratch, or restore the settings to resume it.")
            check_checkpoint(path, state)
            if model.optimizer is not None and not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path / WEIGHTS_FILE)
            generators = _seed_generators(model)
            if len(generators) != len(state["seed_generators"]):
                raise ValueError("random-generator count differs")
            for generator, value in zip(generators, state["seed_generators"]):
                generator.state.assign(np.asarray(value, dtype=generator.state.dtype))
            if state.get("has_best_weights"):
                with np.load(path / BEST_WEIGHTS_FILE) as arrays:
                    state["best_weights"] = [arrays[f"arr_{index}"] for index in range(len(arrays.files))]
        except TrainingError:
            raise
        except Exception as error:  # h5py, zip and JSON errors all mean the same: this checkpoint is unusable
            damaged.append(path.name)
            print(f"Checkpoint {path} is damaged ({type(error).__name__}: {str(error)[:120]}); "
                  "trying the one before it.", flush=True)
            continue
        return state
    if damaged:
        raise TrainingError(f"every checkpoint in {folder} is damaged ({', '.join(damaged)}). "
                            f"Delete {folder} to start this run from scratch.")
    return None


def resume(folder: Path, model, identity: dict, chapter: str, watched: list, started: float):
    """Continue an interrupted run: the newest loadable checkpoint of this identity restored into ``model``,
    said aloud, and the checkpoint callback that carries it on (Chapter 1).

    Returns ``(state, history, checkpoint)``: the checkpoint's state ({} for a fresh run), the history so far
    (the dict the epoch log must append to) and the :class:`RunCheckpoint` for fit, last in its callbacks.
    """
    state = load_checkpoint(folder, model, identity) or {}
    history = state.get("history", {})
    if state:
        print(f"Resuming {chapter} after epoch {state['epoch']} from {folder}"
              + (" (training had finished; evaluating and saving)" if state["finished"] else ""), flush=True)
    checkpoint = RunCheckpoint(folder, identity, history, watched, restored=state,
                               wall_time_s=state.get("wall_time_s", 0.0), started=started)
    return state, history, checkpoint


@contextlib.contextmanager
def stopped_message(chapter: str, folder: Path, quiet=lambda error: False):
    """Around a fit: when it stops with an exception (Ctrl-C, a kill, an error), say what is kept for a resume
    (Chapter 1). ``quiet(error)`` true leaves the message to the caller (a full disk gets one line of its own)."""
    try:
        yield
    except BaseException as error:
        if not quiet(error):
            saved = checkpoints(folder)
            print(f"Training of {chapter} stopped: " + (
                f"{saved[0].name} in {folder} is kept; run the same command again to resume."
                if saved else "no epoch had finished, so nothing is kept."), file=sys.stderr, flush=True)
        raise
