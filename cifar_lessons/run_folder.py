"""A run folder changes as a whole: one trainer at a time, and a new run replaces the old one in order (Chapter 1).

A finished run is first written completely into a staging folder beside the old run: model, history,
then the record, which names both files' checksums. Only then does the swap begin: the old record goes,
the model and history move in, and the new record comes last. A kill at any moment leaves either the
old run untouched, or a complete staged run that the next ``train`` of that folder moves in first. So
``results/NN/`` never holds a record and a model from different runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import platform
import shutil
import tempfile
from pathlib import Path

from . import results
from .results import HISTORY_FILE, MODEL_FILE, RECORD_FILE, STAGED_DIR, TrainingError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold the run folder's lock while the block runs; refuse, naming the holder, if another process has it.

    The lock is the operating system's (``flock``): it is released when its holder exits, even by a kill,
    so a crash never leaves the folder locked.
    """
    try:
        import fcntl  # POSIX only; lazy so that the module imports everywhere
    except ImportError:  # Windows: no advisory lock, so keep to one training per folder yourself
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = " ".join(handle.read(300).split()) or "another process"
            raise TrainingError(f"{run_dir} is being trained by {holder}; wait for that run to end "
                                "(or stop it), then run this command again.") from None
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"process {os.getpid()} on {platform.node() or 'this machine'} since {since}\n")
            handle.flush()
        except OSError:  # a full disk: the lock holds all the same, only the holder's name is missing
            pass
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(run_dir: Path, save_model, history: dict, record: dict) -> dict:
    """Write a finished run into ``run_dir``, replacing the run there; return the sealed record (Chapter 1).

    ``save_model(path)`` writes the model file. The record gets the checksums of the model and history
    it was written with, and is sealed.
    """
    run_dir = Path(run_dir)
    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".staging-"))  # a unique name: never shared
    try:
        save_model(staging / MODEL_FILE)
        results.write_json_atomic(staging / HISTORY_FILE, history)
        files = {name: results.file_sha256(staging / name) for name in (MODEL_FILE, HISTORY_FILE)}
        record = results.seal_record({**record, "files": files})
        results.validate_record(record, run_dir / RECORD_FILE)
        results.write_json_atomic(staging / RECORD_FILE, record)  # the staged run is complete
        shutil.rmtree(run_dir / STAGED_DIR, ignore_errors=True)  # an older staged run is superseded
        os.replace(staging, run_dir / STAGED_DIR)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finish(run_dir)
    return record


def finish(run_dir: Path) -> bool:
    """Move a complete staged run into place, record last; True if there was one (Chapter 1).

    Safe to repeat after a kill at any point: each step is a rename, and the record moves last.
    """
    run_dir = Path(run_dir)
    staged = run_dir / STAGED_DIR
    if not (staged / RECORD_FILE).is_file():
        shutil.rmtree(staged, ignore_errors=True)
        return False
    (run_dir / RECORD_FILE).unlink(missing_ok=True)  # from here the folder has no record until the new one
    for name in (MODEL_FILE, HISTORY_FILE):
        if (staged / name).is_file():
            os.replace(staged / name, run_dir / name)
    os.replace(staged / RECORD_FILE, run_dir / RECORD_FILE)
    shutil.rmtree(staged, ignore_errors=True)
    return True


def clear_staging(run_dir: Path) -> None:
    """Remove unfinished staging folders that a killed save left behind (they hold no complete run)."""
    for leftover in Path(run_dir).glob(".staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def training_in(run_dir: Path):
    """Hold ``run_dir`` for one training: its lock, after a staged run that a kill left behind is moved in and
    unfinished staging folders are cleared (``training.train``, and ``train_fast`` through :func:`one_trainer`)."""
    with locked(run_dir):
        finish(run_dir)
        clear_staging(run_dir)
        yield


def one_trainer(train):
    """Decorate ``train(config, data, run_dir, ...)`` to run inside :func:`training_in` (chapter 11's
    ``train_fast``, which keeps its whole loop in one function for the chapter to show)."""
    @functools.wraps(train)
    def holding_the_lock(config, data, run_dir, *args, **kwargs):
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with training_in(run_dir):
            return train(config, data, run_dir, *args, **kwargs)

    return holding_the_lock

