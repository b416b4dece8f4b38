"""Interrupted runs resume at the next epoch and end like uninterrupted ones; a damaged, tampered or foreign
checkpoint is never resumed; a folder is trained by one process at a time; and a kill at any point of a run
loses nothing and never leaves results inconsistent."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from training_support import TINY, EpochsSeen, StopAt, learnable_dataset, results_checkpoints

from cifar_lessons import results
from cifar_lessons.training import TrainingError, load_run, train

# Every piece of state a resume must carry: dropout and augmentation random generators, a learning-rate
# schedule and early stopping (with best weights), at a learning rate high enough that both act.
STATEFUL = dataclasses.replace(TINY, epochs=8, augment=True, dense_dropout_rate=0.3, learning_rate=0.02,
                               reduce_lr=True, reduce_lr_patience=1, early_stopping=True, early_stopping_patience=2)


def outcome(run) -> dict:
    """What a resumed run must reproduce: epochs, best epoch, learning rates, stopping decision, scores."""
    return {"epochs": run.history["epoch"], "best_epoch": run.record["best_epoch"],
            "learning_rates": run.history["learning_rate"], "epochs_run": run.record["epochs_run"],
            "val_loss": np.round(run.history["val_loss"], 5).tolist(),
            "test_accuracy": run.record["test_accuracy"]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The stateful tiny run trained without interruption (the reference every resume must match)."""
    run = train(STATEFUL, learnable_dataset(), tmp_path_factory.mktemp("reference"), verbose=0)
    # The reference must exercise the state: the rate was cut and training stopped before the ceiling.
    assert min(run.history["learning_rate"]) < STATEFUL.learning_rate
    assert run.record["epochs_run"] < STATEFUL.epochs
    return run


def test_interrupted_run_resumes_at_the_next_epoch_and_ends_like_an_uninterrupted_one(tmp_path, capsys,
                                                                                    uninterrupted):
    data = learnable_dataset()
    # Interrupt after the last epoch before early stopping acts: its wait counter and the best weights must survive.
    stopped_after = uninterrupted.record["epochs_run"] - 1
    with pytest.raises(KeyboardInterrupt):
        train(STATEFUL, data, tmp_path, verbose=0, callbacks=(StopAt(stopped_after + 1),))
    assert not (tmp_path / "record.json").exists()  # an interrupted run records nothing
    assert f"epoch-{stopped_after:04d} in {tmp_path / 'checkpoint'} is kept" in capsys.readouterr().err
    seen = EpochsSeen()
    run = train(STATEFUL, data, tmp_path, verbose=0, callbacks=(seen,))
    assert f"Resuming adhoc after epoch {stopped_after}" in capsys.readouterr().out
    assert seen.epochs[0] == stopped_after + 1  # trained on from the next epoch, not from scratch
    assert outcome(run) == outcome(uninterrupted)
    assert not (tmp_path / "checkpoint").exists()
    assert load_run(tmp_path).record == run.record


def test_a_damaged_checkpoint_falls_back_to_the_one_before(tmp_path, capsys, uninterrupted):
    data = learnable_dataset()
    with pytest.raises(KeyboardInterrupt):
        train(STATEFUL, data, tmp_path, verbose=0, callbacks=(StopAt(4),))
    newest = tmp_path / "checkpoint" / "epoch-0003" / "weights.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as after a full disk
    run = train(STATEFUL, data, tmp_path, verbose=0)
    out = capsys.readouterr().out
    assert "epoch-0003 is damaged" in out and "Resuming adhoc after epoch 2" in out
    assert outcome(run) == outcome(uninterrupted)


@pytest.mark.parametrize("damage", ["flipped-weight-bytes", "epoch-edited"])
def test_a_tampered_checkpoint_is_not_resumed(tmp_path, capsys, uninterrupted, damage):
    data = learnable_dataset()
    with pytest.raises(KeyboardInterrupt):
        train(STATEFUL, data, tmp_path, verbose=0, callbacks=(StopAt(4),))
    newest = tmp_path / "checkpoint" / "epoch-0003"
    if damage == "flipped-weight-bytes":  # same size, still valid HDF5: only the checksum can tell
        weights = newest / "weights.weights.h5"
        raw = bytearray(weights.read_bytes())
        raw[-200] ^= 0x40
        weights.write_bytes(bytes(raw))
    else:  # the epoch no longer matches the history it carries
        state = results.read_json(newest / "state.json")
        results.write_json_atomic(newest / "state.json", {**state, "epoch": 5})
    run = train(STATEFUL, data, tmp_path, verbose=0)
    out = capsys.readouterr().out
    assert "epoch-0003 is damaged" in out and "Resuming adhoc after epoch 2" in out
    assert outcome(run) == outcome(uninterrupted)


def test_a_second_training_of_the_same_folder_is_refused_naming_the_first(tmp_path):
    from cifar_lessons import run_folder

    with run_folder.locked(tmp_path):  # as another process training this folder would hold it
        with pytest.raises(TrainingError, match=r"is being trained by process \d+ on .* since "):
            train(TINY, learnable_dataset(per_class=5), tmp_path, verbose=0)
    assert not (tmp_path / "record.json").exists() and not (tmp_path / "checkpoint").exists()
    train(TINY, learnable_dataset(per_class=20), tmp_path, verbose=0)  # released: the folder trains again
    assert (tmp_path / "record.json").is_file()


def test_all_checkpoints_damaged_or_foreign_stops_with_what_to_delete(tmp_path):
    data = learnable_dataset()
    with pytest.raises(KeyboardInterrupt):
        train(STATEFUL, data, tmp_path, verbose=0, callbacks=(StopAt(3),))
    with pytest.raises(TrainingError, match="interrupted run of something else.*learning_rate"):
        train(dataclasses.replace(STATEFUL, learning_rate=0.01), data, tmp_path, verbose=0)
    for weights in (tmp_path / "checkpoint").glob("epoch-*/weights.weights.h5"):
        weights.write_bytes(b"not hdf5")
    with pytest.raises(TrainingError, match=f"Delete {tmp_path / 'checkpoint'}"):
        train(STATEFUL, data, tmp_path, verbose=0)


def test_a_stop_mid_epoch_loses_only_that_epoch(tmp_path, uninterrupted):
    data = learnable_dataset()
    with pytest.raises(KeyboardInterrupt):
        train(STATEFUL, data, tmp_path, verbose=0, callbacks=(StopAt(3, batch=5),))
    assert [p.name for p in results_checkpoints(tmp_path)] == ["epoch-0002", "epoch-0001"]
    assert outcome(train(STATEFUL, data, tmp_path, verbose=0)) == outcome(uninterrupted)


# Killed (SIGKILL) at one point of a run, in a fresh process: nothing catches it, nothing is cleaned up.
KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import keras
    from cifar_lessons import checkpoints, results, run_folder, training
    from test_checkpoints import STATEFUL
    from training_support import learnable_dataset

    point, run_dir = sys.argv[1], sys.argv[2]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    class MidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 2 and batch == 4:
                die()

    callbacks = ()
    if point == "mid-epoch":
        callbacks = (MidEpoch(),)
    elif point == "checkpoint-write":  # after the weights of epoch 4 are written, before the folder is renamed
        original = training.os.replace
        def replace(source, target):
            if os.path.basename(source).startswith(".epoch-0004.") and str(source).endswith(".partial"):
                die()
            original(source, target)
        training.os.replace = replace
    elif point == "after-fit":  # fit() has ended and its final checkpoint is written; nothing evaluated yet
        ended = checkpoints.RunCheckpoint.on_train_end
        def on_train_end(self, logs=None):
            ended(self, logs)
            die()
        checkpoints.RunCheckpoint.on_train_end = on_train_end
    elif point == "while-staging":  # the new model and history are staged, its record not yet
        original_write = results.write_json_atomic
        def write(path, payload):
            if str(path).endswith("record.json"):
                die()
            original_write(path, payload)
        results.write_json_atomic = write
    elif point == "mid-swap":  # the old record is gone and the new model moved in; the new record not yet
        original = run_folder.os.replace
        def replace(source, target):
            if str(source).endswith(os.path.join(".staged", "record.json")):
                die()
            original(source, target)
        run_folder.os.replace = replace
    training.train(STATEFUL, learnable_dataset(), run_dir, verbose=0, callbacks=callbacks)
""")


@pytest.mark.slow
def test_kills_at_any_point_lose_nothing_and_never_leave_results_inconsistent(tmp_path, uninterrupted):
    from cifar_lessons.book.runs import run_status

    run_dir = tmp_path / "run"
    shutil.copytree(uninterrupted.run_dir, run_dir)  # a previous complete run of the same recipe
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent))
    for point in ("mid-epoch", "checkpoint-write", "after-fit", "while-staging", "mid-swap"):
        killed = subprocess.run([sys.executable, "-c", script, point, str(run_dir)], capture_output=True, text=True)
        assert killed.returncode == -9, f"{point}: {killed.stderr[-1500:]}"
        status = run_status(run_dir, STATEFUL)
        # results/ holds the previous complete run, or no record and a staged run that the next train moves in:
        # never a record beside another run's model.
        if point == "mid-swap":
            assert status["status"] == "missing" and "a save was interrupted" in status["message"]
            assert (run_dir / "model.keras").is_file() and not (run_dir / "record.json").exists()
        else:
            assert status["status"] == "ok" and status["record"] == uninterrupted.record, point
        checkpoints = [p.name for p in results_checkpoints(run_dir)]
        if point == "mid-epoch":
            assert checkpoints == ["epoch-0002", "epoch-0001"]  # only the epoch in progress is lost
        if point == "checkpoint-write":
            assert checkpoints == ["epoch-0003", "epoch-0002"]  # the half-written epoch 4 is not a checkpoint
        if point in ("after-fit", "while-staging", "mid-swap"):
            assert checkpoints[0].endswith("-final")  # the finished training is kept until the record is written
    run = train(STATEFUL, learnable_dataset(), run_dir, verbose=0)
    assert outcome(run) == outcome(uninterrupted)
    assert run_status(run_dir, STATEFUL)["status"] == "ok"
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "history.json", "model.keras", "record.json"]
