"""Training on tiny learnable data: loss falls, models stand alone, schedules act, bad settings, NaN losses and
full disks are one clear error, and strategies and precisions follow the hardware. Resuming is in
test_checkpoints.py."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from training_support import TINY, learnable_dataset, results_checkpoints

from cifar_lessons import devices, results, training
from cifar_lessons.models import build_model
from cifar_lessons.training import TrainConfig, TrainingError, train


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
        from training_support import TINY, learnable_dataset
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


def test_training_compiles_with_xla_on_a_gpu_and_not_on_a_cpu(monkeypatch):
    """Chapter 1's compile leaves jit_compile at Keras' "auto": XLA compiles the training step when a GPU is
    visible, and stays off on a CPU-only machine (Keras' TensorFlow backend turns it off there, as the book's
    CPU runs trained). The device list is faked; a Keras release that changes the rule fails here."""
    import tensorflow as tf

    from cifar_lessons import training
    from cifar_lessons.models import build_model

    model = training.compile_model(build_model(TINY, np.zeros((2, 32, 32, 3), np.uint8)), TINY)
    assert model.jit_compile is False  # this machine: CPU only
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda *args: [gpu])
    assert training.compile_model(build_model(TINY, np.zeros((2, 32, 32, 3), np.uint8)), TINY).jit_compile is True


def test_a_bfloat16_run_records_its_precision_and_restores_the_policy(tmp_path):
    config = dataclasses.replace(TINY, epochs=1, precision="mixed_bfloat16")
    run = train(config, learnable_dataset(per_class=20), tmp_path / "run", verbose=0)
    assert run.record["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert run.model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0).dtype == np.float32


def test_batch_norm_momentum_is_a_setting_that_leaves_earlier_identities_alone():
    """Chapter 5's momentum: Keras' default keeps every config hash recorded before the setting existed (the
    momentum-0.99 runs in results/05/momentum0.99 still match); another value is a change."""
    from cifar_lessons import results
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.models import build_model

    faster = get_chapter("05").config
    config = dataclasses.replace(faster, batch_norm_momentum=0.99)
    assert "batch_norm_momentum" not in config.record_dict()  # 0.99: what the first recorded runs used
    old_run = results.load_record(results.default_results_dir() / "05" / "momentum0.99" / "seed0")
    assert old_run["config_hash"] == config.hash and "batch_norm_momentum" not in old_run["config"]
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
            from training_support import learnable_dataset
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
