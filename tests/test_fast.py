"""Chapter 11's pieces: whitening, the test-time-augmentation layers, the race bookkeeping, the saved model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cifar_lessons import results
from cifar_lessons.going_further.fast_config import FastConfig


def test_whitening_kernel_decorrelates_patches():
    """The filters turn correlated 2x2 patches into outputs with identity covariance."""
    from cifar_lessons.going_further import fast

    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 32, 32, 1))
    images = np.concatenate([base, 0.8 * base + 0.2 * rng.normal(size=base.shape),
                             rng.normal(size=base.shape)], axis=-1)  # channels 0 and 1 strongly correlated
    kernel = fast.whitening_kernel(images, patch=2, epsilon=1e-6)
    assert kernel.shape == (2, 2, 3, 24)
    np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])
    # The same patch flattened as the kernel expects it: (row, col, channel).
    windows = np.lib.stride_tricks.sliding_window_view(images, (2, 2), axis=(1, 2))  # (N, 31, 31, C, 2, 2)
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)
    outputs = patches @ kernel[..., :12].reshape(12, 12)
    np.testing.assert_allclose(np.cov(outputs, rowvar=False), np.eye(12), atol=0.02)


def test_mirror_and_shift_views_are_exact():
    """The stock-layer mirror and one-pixel shifts used for test-time augmentation move pixels exactly."""
    from cifar_lessons.going_further import fast_tta

    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    mirrored = np.asarray(fast_tta._flip_layer()(images))
    np.testing.assert_array_equal(mirrored, images[:, :, ::-1, :])
    shifted = np.asarray(fast_tta._shift_layer(1, 1, "down_right")(images))
    np.testing.assert_array_equal(shifted[:, 1:, 1:, :], images[:, :-1, :-1, :])
    assert not shifted[:, 0, :, :].any() and not shifted[:, :, 0, :].any()


def test_time_to_accuracy_sums_epochs_until_target():
    from cifar_lessons.going_further import race

    history = {"epoch_time_s": [10.0, 20.0, 30.0], "val_accuracy": [0.5, 0.86, 0.9]}
    assert race.time_to_accuracy(history, 0.85) == 30.0
    assert race.time_to_accuracy(history, 0.95) is None


def _fake_record(path, seed, run_time, cpu_time, accuracy):
    """A valid format-2 record with the fields the race reads (no model file)."""
    config = {"seed": seed}
    record = {"format": results.RECORD_FORMAT, "chapter": "11", "config": config,
              "config_hash": results.config_hash(config), "seed": seed, "epochs_run": 2, "best_epoch": 2,
              "wall_time_s": run_time, "images_per_s": 1.0,
              "hardware": {"cpu": "CPU X", "cores": 2, "cpu_flags": ["avx512_bf16"]}, "versions": {},
              "data": {"fingerprint": "f"}, "code": {}, "val_accuracy": accuracy, "val_loss": 0.5,
              "test_accuracy": accuracy, "test_loss": 0.5, "created": "2026-01-01T00:00:00+00:00", "quick": False,
              "precision": "float32", "files": {},
              "identity": {"config": results.config_hash(config), "architecture": "a", "augmentation": [],
                           "optimizer": {}, "loss": "l", "callbacks": {}, "precision": "float32", "data": "f"},
              "run_time_s": run_time, "run_cpu_time_s": cpu_time}
    path.mkdir(parents=True, exist_ok=True)
    results.write_json_atomic(path / results.RECORD_FILE, results.seal_record(record))


def test_race_summary_recomputes_the_ratio_from_files(tmp_path):
    from cifar_lessons.going_further import race

    baseline = tmp_path / "08" / "seed2"
    _fake_record(baseline, 2, 999.0, 999.0, 0.86)
    results.write_json_atomic(baseline / results.HISTORY_FILE, {
        "epoch": [1, 2, 3], "epoch_time_s": [100.0, 100.0, 100.0], "epoch_cpu_s": [200.0, 200.0, 200.0],
        "val_accuracy": [0.7, 0.84, 0.851]})
    _fake_record(tmp_path / "11", 0, 150.0, 420.0, 0.93)
    _fake_record(tmp_path / "11" / "seed1", 1, 240.0, 480.0, 0.92)
    (tmp_path / "11" / race.RACE_FILE).write_text(json.dumps(
        {"target_val_accuracy": 0.85, "baseline_run": "08/seed2", "runs": ["11", "11/seed1"]}))
    summary = race.race_summary(tmp_path)
    assert summary["baseline_wall_s"] == 300.0 and summary["baseline_cpu_s"] == 600.0
    assert summary["ratio_wall"] == pytest.approx(240.0 / 300.0)  # the slowest run counts
    assert summary["ratio_cpu"] == pytest.approx(480.0 / 600.0)
    assert len(summary["hosts"]) == 1


def test_quick_config_is_small_and_keeps_the_recipe():
    config = FastConfig()
    quick = config.quick()
    assert quick.subset and quick.epochs == 1
    assert dataclasses.replace(quick, epochs=config.epochs, subset=None, validation_size=config.validation_size,
                               batch_size=config.batch_size) == config
    assert quick.hash != config.hash


def test_ablation_removes_one_technique_each():
    from cifar_lessons.going_further import ablations

    base = FastConfig()
    removals = ablations.ablation_configs(base)
    assert removals.pop(ablations.FULL_RECIPE) == base
    assert ablations.ablation_configs()[ablations.FULL_RECIPE].epochs == ablations.ABLATION_EPOCHS < base.epochs
    for name, config in removals.items():
        changed = {key for key, value in config.to_dict().items() if value != base.to_dict()[key]}
        assert changed, name
        # Weight averaging and test-time augmentation change nothing in training: free variants, no runs.
        assert changed <= {"whiten_patch", "label_smoothing", "weight_decay", "nesterov", "warmup_fraction",
                           "flip", "translate_pixels", "bias_learning_rate_boost", "identity_init",
                           "alternate_flips"}, name
        assert len(changed) == 1 or changed == {"flip", "translate_pixels"}, name


def test_reflect_shifts_match_numpy_reflect_padding():
    """airbench's test-time shifts: pad one pixel by reflection, crop at a corner; the stock layers agree."""
    from cifar_lessons.going_further import fast_tta

    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3)).astype("float32")
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    down_right = np.asarray(fast_tta._reflect_shift_layer(1, "down_right")(images))
    up_left = np.asarray(fast_tta._reflect_shift_layer(-1, "up_left")(images))
    np.testing.assert_array_equal(down_right, padded[:, :32, :32])
    np.testing.assert_array_equal(up_left, padded[:, 2:, 2:])


def test_airbench_tta_weights_its_six_views_as_airbench_does():
    """Logits averaged: 1/4 image, 1/4 mirror, 1/8 each of the shifted image and shifted mirror, both ways."""
    import keras
    from keras import layers

    from cifar_lessons.going_further import fast_tta

    inputs = keras.Input((32, 32, 3))
    logits = layers.Dense(10, name="logits")(layers.Flatten()(layers.AveragePooling2D(4)(inputs)))
    net = keras.Model(inputs, logits, name="fast_net")  # not mirror-invariant, so every view counts
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    model = fast_tta.inference_model(dataclasses.replace(FastConfig(), tta="airbench"), net)

    def logits_of(view):
        return np.asarray(net(view))

    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    shifted = [padded[:, :32, :32], padded[:, 2:, 2:]]
    expected = (0.25 * logits_of(images) + 0.25 * logits_of(images[:, :, ::-1])
                + sum(0.125 * logits_of(view) + 0.125 * logits_of(view[:, :, ::-1]) for view in shifted))
    expected = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(np.asarray(model(images)), expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_identity_init_passes_the_input_through():
    """A block convolution with dirac init copies channel i to output i (the rest keep their random start)."""
    from cifar_lessons.going_further import fast

    kernel = np.random.default_rng(4).normal(size=(3, 3, 4, 6)).astype("float32")
    identity = fast.identity_kernel(kernel)
    image = np.random.default_rng(5).normal(size=(5, 5, 4))
    centre = np.einsum("abi,abio->o", image[1:4, 1:4], identity)  # the output at pixel (2, 2)
    np.testing.assert_allclose(centre[:4], image[2, 2])
    np.testing.assert_array_equal(identity[..., 4:], kernel[..., 4:])


def test_alternating_flips_show_every_image_both_ways_in_two_epochs():
    """Epoch by epoch each image switches orientation; batches depend only on the seed and the step."""
    from cifar_lessons.going_further import fast

    count = 40
    images = np.zeros((count, 32, 32, 3), np.uint8)
    images[:, :, 0] = np.arange(count)[:, None, None] + 1  # left column marks the image; right column is 0
    labels = np.arange(count)
    config = dataclasses.replace(FastConfig(), batch_size=16, seed=7)
    batches = fast.TrainingBatches(images, labels, config)
    assert batches.steps_per_epoch == count // 16  # the incomplete last batch is dropped

    def orientation(epoch):  # label -> mirrored?, for the images the epoch visited
        seen = {}
        for step in range(epoch * batches.steps_per_epoch, (epoch + 1) * batches.steps_per_epoch):
            batch, batch_labels = batches[step]
            seen.update(zip(batch_labels.tolist(), (batch[:, 0, 0, 0] == 0).tolist()))
        return seen

    first, second = orientation(0), orientation(1)
    assert 0 < sum(first.values()) < len(first)  # a random part mirrored at first
    assert all(second[label] != first[label] for label in first.keys() & second.keys())
    again = fast.TrainingBatches(images, labels, config)
    np.testing.assert_array_equal(again[5][0], batches[5][0])  # same step, same batch, whenever asked
    no_alternation = fast.TrainingBatches(images, labels, dataclasses.replace(config, alternate_flips=False))
    assert all(not (batch[:, 0, 0, 0] == 0).any() for batch, _ in (no_alternation[step] for step in range(4)))


@pytest.mark.parametrize("change", ["order", "flips"])
def test_a_change_to_the_batches_makes_chapter_11s_records_stale(monkeypatch, change):
    """The identity holds a hash of the first two epochs' batches (issue 26): serving the images in another order,
    or mirroring them on other epochs, changes it, and the record's identity check names the difference."""
    from cifar_lessons.going_further import fast

    config = dataclasses.replace(FastConfig(), batch_size=16, seed=7)
    before = fast.data_order_hash(config, 100)
    assert fast.data_order_hash(config, 100) == before  # a function of the config and the code alone
    if change == "order":
        original = fast.TrainingBatches.order
        monkeypatch.setattr(fast.TrainingBatches, "order", lambda self, epoch: original(self, epoch)[::-1])
    else:
        original_init = fast.TrainingBatches.__init__

        def init(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            self.first_epoch_flips = ~self.first_epoch_flips

        monkeypatch.setattr(fast.TrainingBatches, "__init__", init)
    after = fast.data_order_hash(config, 100)
    assert after != before
    reasons = results.identity_differences({"data_order": before}, {"data_order": after})
    assert reasons == [f"data_order changed (recorded \"{before}\", now \"{after}\")"]


def test_configs_recorded_before_a_field_existed_keep_their_hash():
    """A field added later enters the hash only when it differs from the value old runs had."""
    ADDED_LATER = FastConfig.ADDED_LATER
    old = dataclasses.replace(FastConfig(), **ADDED_LATER)
    recorded = {key: value for key, value in old.to_dict().items() if key not in ADDED_LATER}
    assert FastConfig.from_dict(recorded) == old
    assert old.hash == results.config_hash(recorded)
    assert FastConfig().hash != old.hash


def _ablation_record(path, config, val_accuracy, test_accuracy, variants=None, quick=False):
    """A sealed record of an ablation run of ``config`` (no model file)."""
    record = {"format": results.RECORD_FORMAT, "chapter": "11", "config": config.record_dict(),
              "config_hash": config.hash, "seed": config.seed, "epochs_run": config.epochs, "best_epoch": 1,
              "wall_time_s": 1.0, "images_per_s": 1.0,
              "hardware": {"cpu": "CPU X", "cores": 2, "cpu_flags": []}, "versions": {},
              "data": {"fingerprint": "f"}, "code": {}, "val_accuracy": val_accuracy, "val_loss": 0.5,
              "test_accuracy": test_accuracy, "test_loss": 0.5, "created": "2026-01-01T00:00:00+00:00",
              "quick": quick, "precision": "float32", "files": {}, "variants": variants or {},
              "identity": {"config": config.hash, "architecture": "a", "augmentation": [], "optimizer": {},
                           "loss": "l", "callbacks": {}, "precision": "float32", "data": "f"}}
    path.mkdir(parents=True, exist_ok=True)
    results.write_json_atomic(path / results.RECORD_FILE, results.seal_record(record))


def test_ablation_table_pairs_each_run_with_the_full_recipe_of_its_seed(tmp_path):
    from cifar_lessons.going_further import ablations, fast_tta

    configs = ablations.ablation_configs()
    full, warmup = configs[ablations.FULL_RECIPE], configs["no warmup"]
    own = f"tta_{full.tta}"
    variants = {own: {"val_accuracy": 0.80, "test_accuracy": 0.79},
                "tta_none": {"val_accuracy": 0.78, "test_accuracy": 0.76},
                "no_weight_average": {"val_accuracy": 0.81, "test_accuracy": 0.77}}
    _ablation_record(ablations.ablation_dir(ablations.FULL_RECIPE, 0, tmp_path), full, 0.80, 0.79, variants)
    _ablation_record(ablations.ablation_dir("no warmup", 0, tmp_path), warmup, 0.75, 0.78)
    # identity_init=False is the value runs had before the field existed: the record leaves it out of its config.
    _ablation_record(ablations.ablation_dir("no identity initialization", 0, tmp_path),
                     configs["no identity initialization"], 0.79, 0.78)
    # Ignored: a run of another recipe (stale), a quick run, and a seed the full recipe has no run of.
    _ablation_record(ablations.ablation_dir("no label smoothing", 0, tmp_path),
                     dataclasses.replace(configs["no label smoothing"], epochs=99), 0.1, 0.1)
    _ablation_record(ablations.ablation_dir("no weight decay", 0, tmp_path), configs["no weight decay"], 0.1, 0.1,
                     quick=True)
    _ablation_record(ablations.ablation_dir("no warmup", 1, tmp_path), dataclasses.replace(warmup, seed=1), 0.1, 0.1)
    table = ablations.ablation_table(tmp_path)
    assert set(table) == {ablations.FULL_RECIPE, "no warmup", "no identity initialization",
                          fast_tta.VARIANT_LABELS["tta_none"], fast_tta.VARIANT_LABELS["no_weight_average"]}
    assert table[ablations.FULL_RECIPE] == [{"seed": 0, "val_accuracy": 0.80, "test_accuracy": 0.79}]
    changes = {row["technique"]: row for row in ablations.ablation_changes(table)}
    assert set(changes) == {"no warmup", "no identity initialization", fast_tta.VARIANT_LABELS["tta_none"],
                            fast_tta.VARIANT_LABELS["no_weight_average"]}
    assert changes["no warmup"]["seeds"] == [0]
    assert changes["no warmup"]["val_accuracy"] == pytest.approx(-0.05)
    assert changes["no warmup"]["test_accuracy"] == pytest.approx(-0.01)
    assert [row["technique"] for row in ablations.ablation_changes(table)][0] == "no warmup"  # largest loss first


@pytest.mark.slow
def test_free_variants_score_every_other_view_and_restore_the_weights():
    import keras

    from cifar_lessons.going_further import fast, fast_tta

    config = FastConfig(widths=(8, 8, 8))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (24, 32, 32, 3)).astype(np.uint8)
    labels = np.arange(24) % 10
    keras.utils.set_random_seed(0)
    net = fast.build_fast_net(config, images)
    trained = net.get_weights()
    raw = [weight + rng.normal(0, 0.1, weight.shape).astype(weight.dtype) for weight in trained]
    validation, test = (images[:12], labels[:12]), (images[12:], labels[12:])
    variants = fast_tta.score_free_variants(config, net, raw, validation, test)
    assert set(variants) == {f"tta_{tta}" for tta in fast_tta.TTA_MODES if tta != config.tta} | {"no_weight_average"}
    assert all(np.array_equal(a, b) for a, b in zip(net.get_weights(), trained))  # the averaged weights are back
    # With the raw weights equal to the averaged ones, "no weight averaging" is the saved model itself.
    same = fast_tta.score_free_variants(config, net, trained, validation, test)["no_weight_average"]
    assert same == fast_tta._variant_scores(fast_tta.inference_model(config, net), validation, test)
    no_average = dataclasses.replace(config, ema_momentum=None)
    assert "no_weight_average" not in fast_tta.score_free_variants(no_average, net, raw, validation, test)


def test_jpeg_ladder_table_starts_with_the_copy_itself(tmp_path):
    from cifar_lessons.book import recompress
    from cifar_lessons.going_further import ablations

    base = ablations.ablation_configs()[ablations.FULL_RECIPE]
    _ablation_record(ablations.ablation_dir(ablations.FULL_RECIPE, 0, tmp_path), base, 0.85, 0.84)
    _ablation_record(recompress.ladder_dir(50, 0, tmp_path), base, 0.83, 0.82)
    _ablation_record(recompress.ladder_dir(30, 0, tmp_path), base, 0.80, 0.79)
    _ablation_record(recompress.ladder_dir(10, 0, tmp_path), dataclasses.replace(base, epochs=99), 0.1, 0.1)  # stale
    rows = recompress.ladder_table(tmp_path)
    assert [row["quality"] for row in rows] == [None, 50, 30]
    assert [row["test_accuracy"] for row in rows] == [0.84, 0.82, 0.79]
    assert [row["test_change"] for row in rows] == [None, pytest.approx(-0.02), pytest.approx(-0.05)]
    assert rows[2]["val_change"] == pytest.approx(-0.05)


def test_jpeg_ladder_at_the_full_budget_starts_with_the_chapter_seed_run(tmp_path):
    from cifar_lessons.book import recompress
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.going_further import ablations

    recipe = get_chapter("11").config
    _ablation_record(tmp_path / "11", recipe, 0.90, 0.89)  # the chapter's own seed-0 run
    _ablation_record(recompress.ladder_dir(50, 0, tmp_path, budget="full"), recipe, 0.88, 0.87)
    # A screen-budget run at the same quality is a different rung of a different ladder.
    screen_recipe = ablations.ablation_configs()[ablations.FULL_RECIPE]
    _ablation_record(recompress.ladder_dir(50, 0, tmp_path), screen_recipe, 0.7, 0.7)
    rows = recompress.ladder_table(tmp_path, budget="full")
    assert [(row["quality"], row["test_accuracy"], row["epochs"]) for row in rows] == [
        (None, 0.89, recipe.epochs), (50, 0.87, recipe.epochs)]
    assert recompress.ladder_dir(50, 0, tmp_path, budget="full") != recompress.ladder_dir(50, 0, tmp_path)
    with pytest.raises(ValueError, match="budget is one of screen, full"):
        recompress.ladder_dir(50, 0, tmp_path, budget="long")


def test_ablation_band_prefers_the_screens_own_seeds():
    from cifar_lessons.going_further import ablations

    seeds = {seed: {"val_accuracy": 0.90 + 0.001 * seed, "test_accuracy": 0.89} for seed in range(3)}
    full = ablations.FULL_RECIPE
    two = {full: [{"seed": s, "val_accuracy": v, "test_accuracy": 0.8} for s, v in ((0, 0.80), (1, 0.82))]}
    band = ablations.ablation_band(two, seeds)  # two screen seeds are not enough: the recipe's seeds give the band
    assert band["source"].startswith("the recipe's 3 seed runs")
    assert band["val_accuracy"] == pytest.approx(2 * np.sqrt(2) * 0.001) and band["test_accuracy"] == 0
    three = {full: [*two[full], {"seed": 2, "val_accuracy": 0.84, "test_accuracy": 0.8}]}
    band = ablations.ablation_band(three, seeds)
    assert band["source"] == "the screen's 3 full-recipe seeds"
    assert band["val_accuracy"] == pytest.approx(2 * np.sqrt(2) * 0.02)
    assert ablations.ablation_band({}, {}) is None


def test_each_removal_gets_the_band_of_its_own_comparison():
    from cifar_lessons.going_further import ablations, fast_tta

    rows = lambda values: [{"seed": seed, "val_accuracy": v, "test_accuracy": v} for seed, v in enumerate(values)]  # noqa: E731
    table = {ablations.FULL_RECIPE: rows([0.80, 0.81, 0.82, 0.83]), "no warmup": rows([0.79]),
             "no label smoothing": rows([0.78, 0.79, 0.80, 0.81]), fast_tta.VARIANT_LABELS["tta_none"]: rows([0.7] * 4)}
    band = {"val_accuracy": 0.02, "test_accuracy": 0.04}
    changes = {change["technique"]: change for change in ablations.ablation_changes(table, band)}
    assert changes["no warmup"]["val_band"] == pytest.approx(0.02)  # one run against one run
    assert changes["no label smoothing"]["test_band"] == pytest.approx(0.04 / 2)  # four paired seeds: half as wide
    assert changes["no label smoothing"]["val_accuracy"] == pytest.approx(-0.02)
    none = changes[fast_tta.VARIANT_LABELS["tta_none"]]
    assert none["same_run"] and none["val_band"] is None and none["test_band"] is None
    assert ablations.ablation_changes(table)[0]["val_band"] is None  # no band given, none drawn


def test_budget_table_counts_only_the_recipe_with_its_folders_epochs(tmp_path):
    from cifar_lessons.book import budget
    from cifar_lessons.book.chapters import get_chapter

    recipe = get_chapter("11").config
    _ablation_record(tmp_path / "11", recipe, 0.90, 0.89)  # the chapter's own seed-0 run
    _ablation_record(budget.budget_dir(20, 0, tmp_path), budget.budget_config(20, 0), 0.92, 0.91)
    _ablation_record(budget.budget_dir(13, 1, tmp_path), budget.budget_config(13, 1), 0.91, 0.90)
    # A run in the wrong folder, and one that changed more than the epochs, are not budget runs.
    _ablation_record(budget.budget_dir(30, 0, tmp_path), budget.budget_config(20, 0), 0.5, 0.5)
    _ablation_record(budget.budget_dir(15, 0, tmp_path),
                     dataclasses.replace(budget.budget_config(15, 0), label_smoothing=0.0), 0.5, 0.5)
    rows = budget.budget_table(tmp_path)
    assert [(row["epochs"], row["seed"], row["test_accuracy"]) for row in rows] == [
        (recipe.epochs, 0, 0.89), (13, 1, 0.90), (20, 0, 0.91)]
    assert budget.budget_config(20, 0).changes_from(recipe) == {"epochs": (recipe.epochs, 20)}


@pytest.mark.slow  # three tiny chapter-11 runs: about a minute
def test_an_interrupted_fast_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path, capsys):
    """train_fast checkpoints every epoch like train(): killed after epoch 2 of 3 and started again, it trains
    epoch 3 only, on the batches an uninterrupted run sees there, and records the same result."""
    from training_support import EpochsSeen, StopAt, learnable_dataset

    from cifar_lessons.going_further import fast

    config = dataclasses.replace(FastConfig(), widths=(8, 8, 8), epochs=3, batch_size=50, validation_size=100,
                                 whiten_sample=100, precision="float32")
    data = learnable_dataset(per_class=40)
    reference = fast.train_fast(config, data, tmp_path / "reference", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        fast.train_fast(config, data, tmp_path / "resumed", verbose=0, callbacks=(StopAt(3),))
    assert not (tmp_path / "resumed" / "record.json").exists()
    assert "epoch-0002 in" in capsys.readouterr().err
    seen = EpochsSeen()
    resumed = fast.train_fast(config, data, tmp_path / "resumed", verbose=0, callbacks=(seen,))
    assert "Resuming 11 after epoch 2" in capsys.readouterr().out
    assert seen.epochs == [3] and resumed["resumed_after_epoch"] == 2 and reference["resumed_after_epoch"] == 0
    history = results.read_json(tmp_path / "resumed" / results.HISTORY_FILE)
    assert history["epoch"] == [1, 2, 3]
    for key in ("val_accuracy", "test_accuracy", "val_loss", "test_loss"):
        assert resumed[key] == pytest.approx(reference[key]), key
    for variant, scores in reference["variants"].items():  # the raw last-epoch weights included
        assert resumed["variants"][variant] == pytest.approx(scores), variant
    assert not (tmp_path / "resumed" / "checkpoint").exists()
