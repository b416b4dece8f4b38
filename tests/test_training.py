"""Training on tiny learnable data: loss falls, runs resume, models stand alone, strategies work."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from cifar_lessons.data import CLASS_NAMES, Dataset, fingerprint_arrays
from cifar_lessons.models import build_model
from cifar_lessons.training import TrainConfig, load_run, train

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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "model.keras", "record.json"]


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


class StopAfter(keras.callbacks.Callback):
    """Simulates an interruption (Ctrl-C) at the end of an epoch."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_where_it_stopped(tmp_path, capsys):
    data = learnable_dataset()
    config = dataclasses.replace(TINY, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(config, data, tmp_path, verbose=0, callbacks=(StopAfter(2),))
    assert not (tmp_path / "record.json").exists()  # an interrupted run records nothing
    run = train(config, data, tmp_path, verbose=0)
    assert "Resuming adhoc after epoch 2" in capsys.readouterr().out
    assert run.history["epoch"] == [1, 2, 3, 4]
    assert run.record["epochs_run"] == 4
    assert not (tmp_path / "checkpoint").exists()
    assert load_run(tmp_path).record == run.record


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
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        run = train(TINY, learnable_dataset(), {str(tmp_path)!r}, verbose=0, strategy=strategy)
        print(run.record["replicas"], run.history["loss"][0], run.history["loss"][-1])
    """)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert output.returncode == 0, output.stderr[-2000:]
    replicas, first, last = output.stdout.split()[-3:]
    assert int(replicas) == 2 and float(last) < float(first)


def test_auto_precision_follows_the_hardware(monkeypatch):
    from cifar_lessons import training

    assert training.resolve_precision("float32") == "float32"
    assert training.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    monkeypatch.setattr(training, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert training.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(training, "_cpu_flags", lambda: {"avx2"})
    import tensorflow as tf
    if not tf.config.list_physical_devices("GPU"):
        assert training.resolve_precision("auto") == "float32"


def test_a_bfloat16_run_records_its_precision_and_restores_the_policy(tmp_path):
    config = dataclasses.replace(TINY, epochs=1, precision="mixed_bfloat16")
    run = train(config, learnable_dataset(per_class=20), tmp_path / "run", verbose=0)
    assert run.record["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert run.model.predict(np.zeros((2, 32, 32, 3), np.uint8), verbose=0).dtype == np.float32
