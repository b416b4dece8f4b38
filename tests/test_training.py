"""Training on tiny learnable data: loss falls, runs resume exactly, models stand alone, strategies work."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_lessons import devices, results, training
from cifar_lessons.data import CLASS_NAMES, Dataset, fingerprint_arrays
from cifar_lessons.models import build_model
from cifar_lessons.training import TrainConfig, TrainingError, load_run, train

TINY = TrainConfig(widths=(8, 16), dense_units=16, normalize=True, epochs=3, batch_size=32,
                   learning_rate=3e-3, validation_size=100)


def learnable_dataset(per_class: int = 50, seed: int = 0) -> Dataset:
    """Each class is a colour plus noise: a small CNN learns it in a few epochs."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (10, 3))

    def make(count):
        labels = np.repeat(np.arange(10), count)
        noise = rng.normal(0, 40, (len(labels), 32, 32, 3))
        return np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels

    x_train, y_train = make(per_class)
    x_test, y_test = make(10)
    source = {"name": "synthetic", "location": "tests", "image_format": "none", "source_sha256": None,
              "fingerprint": fingerprint_arrays(x_train, y_train, x_test, y_test)}
    return Dataset(x_train, y_train, x_test, y_test, CLASS_NAMES, source)


def test_loss_falls_and_record_is_complete(tmp_path):
    data = learnable_dataset()
    run = train(TINY, data, tmp_path, chapter="tiny", verbose=0)
    history, record = run.history, run.record
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"][-1] < history["loss"][0]
    assert record["test_accuracy"] > 0.3  # chance is 0.1
    assert record["config_hash"] == TINY.hash and record["epochs_run"] == 3
    assert record["data"]["fingerprint"] == data.fingerprint
    assert record["hardware"]["cores"] >= 1 and record["versions"]["keras"] == keras.__version__
    assert record["train_images"] + record["val_images"] == len(data.x_train)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "history.json", "model.keras", "record.json"]
    assert results.load_record(tmp_path) == record  # the written record passes validation
    results.check_files(record, tmp_path)
    assert record["identity"]["data"] == data.fingerprint and record["identity"]["precision"] == "float32"


def test_saved_model_takes_raw_images_without_this_package(tmp_path):
    data = learnable_dataset()
    run = train(TINY, data, tmp_path, verbose=0)
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras
        sys.modules['cifar_lessons'] = None  # make sure the model needs nothing from it
        model = keras.models.load_model({str(tmp_path / 'model.keras')!r})
        x = np.load({str(tmp_path / 'x.npy')!r}); y = np.load({str(tmp_path / 'y.npy')!r})
        print((model.predict(x, verbose=0).argmax(1) == y).mean())
    """)
    np.save(tmp_path / "x.npy", data.x_test)
    np.save(tmp_path / "y.npy", data.y_test)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert float(output.stdout.strip().splitlines()[-1]) == pytest.approx(run.record["test_accuracy"])


def test_saved_model_is_lean_and_evaluates_after_compile(tmp_path):
    data = learnable_dataset()
    run = train(TINY, data, tmp_path, verbose=0)
    model = keras.models.load_model(tmp_path / "model.keras")
    assert getattr(model, "optimizer", None) is None  # saved uncompiled: no optimizer state in the file
    model.compile(optimizer=keras.optimizers.Adam(TINY.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    _, accuracy = model.evaluate(data.x_test, data.y_test, verbose=0)
    assert accuracy == pytest.approx(run.record["test_accuracy"])
    assert np.array_equal(model.predict(data.x_test, verbose=0), run.model.predict(data.x_test, verbose=0))


class StopAt(keras.callbacks.Callback):
    """Simulates an interruption (Ctrl-C) when epoch ``epoch`` (1-based) begins, or after its ``batch``-th batch."""

    def __init__(self, epoch, batch=None):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1
        if self.batch is None and self.current == self.epoch:
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.batch is not None and self.current == self.epoch and batch + 1 == self.batch:
            raise KeyboardInterrupt


class EpochsSeen(keras.callbacks.Callback):
    """Records which epochs (1-based) this fit() call actually trained."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


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


def results_checkpoints(run_dir):
    from cifar_lessons.checkpoints import checkpoints

    return checkpoints(run_dir / "checkpoint")


class PoisonWeights(keras.callbacks.Callback):
    """Turns the weights into NaN after a batch of ``epoch``: the loss becomes NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 0:
            layer = self.model.get_layer("probabilities")
            layer.kernel.assign(np.full(layer.kernel.shape, np.nan, dtype="float32"))


def test_nan_loss_stops_with_a_clear_error_and_writes_no_nan(tmp_path):
    with pytest.raises(TrainingError, match="NaN or infinite in epoch 2"):
        train(TINY, learnable_dataset(), tmp_path, verbose=0, callbacks=(PoisonWeights(2),))
    assert not (tmp_path / "record.json").exists()
    assert [p.name for p in results_checkpoints(tmp_path)] == ["epoch-0001"]
    for state in (tmp_path / "checkpoint").rglob("*.json"):
        results.read_json(state)  # rejects NaN and Infinity, which are not JSON


@pytest.mark.parametrize("change", [{"epochs": 0}, {"batch_size": 0}])
def test_impossible_settings_are_one_clear_error(tmp_path, change):
    with pytest.raises(TrainingError, match="at least 1"):
        train(dataclasses.replace(TINY, **change), learnable_dataset(per_class=5), tmp_path, verbose=0)


def test_an_unwritable_results_folder_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TrainingError, match="cannot write to .*choose a writable --results"):
        train(TINY, learnable_dataset(per_class=5), tmp_path / "file" / "01", verbose=0)


# Killed (SIGKILL) at one point of a run, in a fresh process: nothing catches it, nothing is cleaned up.
KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import keras
    from cifar_lessons import checkpoints, results, run_folder, training
    from test_training import STATEFUL, learnable_dataset

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


def test_reduce_lr_on_plateau_lowers_the_rate(tmp_path):
    # A learning rate far too high stalls the validation loss, so the rate is cut.
    config = dataclasses.replace(TINY, epochs=4, learning_rate=0.5, reduce_lr=True, reduce_lr_patience=0)
    run = train(config, learnable_dataset(), tmp_path, verbose=0)
    assert run.history["learning_rate"][0] == pytest.approx(0.5)
    assert min(run.history["learning_rate"]) < 0.5


def test_early_stopping_ends_a_stalled_run(tmp_path):
    config = dataclasses.replace(TINY, epochs=8, learning_rate=0.5, early_stopping=True,
                                 early_stopping_patience=1)
    run = train(config, learnable_dataset(), tmp_path, verbose=0)
    assert run.record["epochs_run"] < 8


@pytest.mark.parametrize("changes,conv_layers", [
    ({}, 3),
    ({"widths": (32, 64, 128), "convs_per_stage": 2}, 6),
])
def test_build_model_shapes(changes, conv_layers):
    model = build_model(dataclasses.replace(TrainConfig(), **changes), np.zeros((4, 32, 32, 3), np.uint8))
    assert model.output_shape == (None, 10)
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) == conv_layers


def test_build_model_options_add_their_layers():
    config = TrainConfig(batch_norm=True, conv_dropout_rate=0.1, dense_dropout_rate=0.3)
    model = build_model(config, np.zeros((4, 32, 32, 3), np.uint8))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 4 and kinds.count("Dropout") == 4


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    # Logical devices must be set before TensorFlow starts, so this runs in a fresh process.
    script = textwrap.dedent(f"""
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_training import TINY, learnable_dataset
        from cifar_lessons.training import train
        from cifar_lessons import devices
        # Two visible "GPUs" (logical CPUs here): "auto" must mirror the model on both.
        devices._visible_gpus = lambda: ["/cpu:0", "/cpu:1"]
        run = train(TINY, learnable_dataset(), {str(tmp_path / "two")!r}, verbose=0)
        one = train(TINY, learnable_dataset(), {str(tmp_path / "one")!r}, verbose=0, strategy=None)
        print(run.record["strategy"], run.record["replicas"], len(run.record["devices"]),
              run.record["test_accuracy"], one.record["test_accuracy"], one.record["devices"])
    """)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert output.returncode == 0, output.stderr[-2000:]
    name, replicas, devices, two_accuracy, one_accuracy, one_devices = output.stdout.split()[-6:]
    assert (name, int(replicas), int(devices), one_devices) == ("MirroredStrategy", 2, 2, "None")
    # The same recipe on one device and on two: a learnable task, both far above chance and close together.
    assert float(two_accuracy) > 0.5 and float(one_accuracy) > 0.5
    assert abs(float(two_accuracy) - float(one_accuracy)) < 0.15


@pytest.mark.parametrize("gpus, mirrored", [([], False), (["/device:GPU:0"], False),
                                            (["/device:GPU:0", "/device:GPU:1"], True)])
def test_auto_strategy_mirrors_only_over_several_gpus(monkeypatch, gpus, mirrored):

    monkeypatch.setattr(devices, "_visible_gpus", lambda: gpus)
    made = []
    import tensorflow as tf

    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda devices: made.append(devices) or "mirrored")
    assert devices.resolve_strategy("auto") == ("mirrored" if mirrored else None)
    assert made == ([gpus] if mirrored else [])
    assert devices.resolve_strategy(None) is None


def test_auto_precision_follows_the_hardware(monkeypatch):

    assert devices.resolve_precision("float32") == "float32"
    assert devices.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert devices.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(devices, "_gpu_capabilities", lambda: [])
    assert devices.resolve_precision("auto") == "float32"


@pytest.mark.parametrize("capabilities, policy", [
    ([(7, 5)], "mixed_float16"),  # a T4 (Colab, Kaggle): float16 tensor cores
    ([(7, 0)], "mixed_float16"),  # a V100
    ([(8, 0)], "mixed_bfloat16"),  # an A100
    ([(9, 0), (9, 0)], "mixed_bfloat16"),  # two H100s
    ([(8, 6), (7, 5)], "mixed_float16"),  # mixed cards: what every one supports
    ([(6, 1)], "float32"),  # a P100-class card without tensor cores
])
def test_auto_precision_on_a_gpu_follows_its_compute_capability(monkeypatch, capabilities, policy):

    monkeypatch.setattr(devices, "_gpu_capabilities", lambda: capabilities)
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx512_bf16"})  # the GPU decides, not the CPU
    assert devices.resolve_precision("auto") == policy


def test_a_float16_model_compiles_with_loss_scaling():
    """Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer by itself (Chapter 1's compile)."""
    from cifar_lessons import training
    from cifar_lessons.models import build_model

    with devices.dtype_policy("mixed_float16"):
        model = training.compile_model(build_model(TINY, np.zeros((2, 32, 32, 3), np.uint8)), TINY)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_bfloat16_run_records_its_precision_and_restores_the_policy(tmp_path):
    config = dataclasses.replace(TINY, epochs=1, precision="mixed_bfloat16")
    run = train(config, learnable_dataset(per_class=20), tmp_path / "run", verbose=0)
    assert run.record["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert run.model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0).dtype == np.float32


def test_batch_norm_momentum_is_a_setting_that_leaves_earlier_identities_alone():
    """Chapter 5's momentum: Keras' default keeps every recorded config hash; another value is a change."""
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.models import build_model

    config = get_chapter("05").config
    assert "batch_norm_momentum" not in config.record_dict()  # 0.99: what the recorded runs used
    faster = dataclasses.replace(config, batch_norm_momentum=0.9)
    assert faster.hash != config.hash and faster.record_dict()["batch_norm_momentum"] == 0.9
    assert faster.changes_from(config) == {"batch_norm_momentum": (0.99, 0.9)}
    assert type(config).from_dict(faster.to_dict()) == faster
    model = build_model(faster, np.zeros((2, 32, 32, 3), np.uint8))
    momenta = {layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.9}


def test_a_full_disk_is_one_line_that_says_what_is_kept(tmp_path, monkeypatch, capsys):
    import errno

    from cifar_lessons import training

    real_save = training.save_model

    def full(model, path):  # the disk fills while the finished run is saved
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "save_model", full)
    with pytest.raises(TrainingError) as caught:
        train(TINY, learnable_dataset(per_class=20), tmp_path, verbose=0)
    message = str(caught.value)
    assert "\n" not in message and f"the disk holding {tmp_path} is full (No space left on device)" in message
    assert "epoch-0003-final in" in message and "run the same command again to resume" in message
    assert not (tmp_path / "record.json").exists() and not list(tmp_path.glob(".stag*"))
    monkeypatch.setattr(training, "save_model", real_save)
    train(TINY, learnable_dataset(per_class=20), tmp_path, verbose=0)  # space freed: it resumes and records
    assert "Resuming adhoc after epoch 3" in capsys.readouterr().out


def test_a_really_full_disk_prints_one_line_and_no_h5py_traceback(tmp_path):
    """On a 1 MiB tmpfs the first checkpoint cannot be written: one line, status 1, no crash at exit."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the simulated full disk above still runs")
    try:
        script = textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            sys.argv = ["cifar-lessons", "--results", {str(mount)!r}, "train", "01", "--quick"]
            from cifar_lessons.book import cli, runs
            from test_training import learnable_dataset
            # chapter 1's quick run on tiny synthetic data: the disk, not the data, is what is tested
            runs.load_cifar10 = lambda *a, **k: learnable_dataset(per_class=160)
            cli.run()
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "Traceback", "Exception"))]
        assert done.returncode == 1, done.stderr[-2000:]
        assert lines == [lines[0]] and lines[0].startswith(f"error: the disk holding {mount}"), done.stderr[-2000:]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_run_says_how_long_it_will_take_after_a_few_batches(tmp_path, capsys):
    from cifar_lessons.training import TimeEstimate

    # TINY has 13 batches an epoch here: measure batches 3-5 instead of the default 6-25.
    train(TINY, learnable_dataset(), tmp_path, verbose=0, callbacks=(TimeEstimate(3, warmup=2, measured=3),))
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Time estimate")]
    assert re.fullmatch(r"Time estimate: \d+ ms per batch here, so about \d+ min for 3 epochs \(validation not "
                        r"counted; early stopping may end sooner\)\.", line), line


def test_a_finished_run_is_set_beside_the_run_it_replaces(tmp_path, capsys):
    first = train(TINY, learnable_dataset(per_class=20), tmp_path, verbose=0)
    assert "The run replaced" not in capsys.readouterr().out  # nothing was there before
    second = train(dataclasses.replace(TINY, seed=1), learnable_dataset(per_class=20), tmp_path, verbose=0)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("This run:", "The run"))]
    assert lines == [f"This run:         {training.run_summary(second.record)}",
                     f"The run replaced: {training.run_summary(first.record)}"]
    assert lines[1].endswith("seed 0") and f"{100 * first.record['test_accuracy']:.1f}% test" in lines[1]
