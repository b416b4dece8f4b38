"""Chapter 9's computations (activations, Grad-CAM, calibration, TTA), its plots, and chapter 10's report sentences."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifar_lessons import analysis, plots  # noqa: E402
from cifar_lessons.book import charts  # noqa: E402


@pytest.fixture(scope="module")
def mixed_precision_model():
    """A small CNN like the book's: random flips inside, bfloat16 hidden layers, a float32 softmax."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((32, 32, 3), name="image")
        x = keras.layers.RandomFlip("horizontal", seed=0, name="augment")(inputs)
        x = keras.layers.Rescaling(1 / 255)(x)
        x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.Activation("relu", name="relu")(x)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(10, activation="softmax", dtype="float32", name="probabilities")(x)
        model = keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


def test_activations_are_float32_and_taken_in_inference_mode(mixed_precision_model, images):
    first = analysis.activations(mixed_precision_model, images, "relu")
    second = analysis.activations(mixed_precision_model, images, "relu")
    assert first.dtype == np.float32 and first.shape == (6, 32, 32, 8)
    # With the flip active (a direct call's default for Keras 3 augmentation layers) two calls would differ.
    np.testing.assert_array_equal(first, second)


def test_logits_reproduce_the_models_probabilities(mixed_precision_model, images):
    logits = analysis.logits(mixed_precision_model, images)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    predicted = mixed_precision_model.predict(images, verbose=0)
    np.testing.assert_allclose(softmax, predicted, atol=1e-5)


def test_logits_need_a_softmax_head(images):
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="not a Dense softmax layer"):
        analysis.logits(model, images)


def linear_evidence_model():
    """Class 0's logit is the mean of an identity feature map, class 1's its negative: Grad-CAM is known exactly."""
    inputs = keras.Input((32, 32, 3))
    maps = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="maps")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("probabilities").set_weights([np.array([[1.0, -1.0]], "float32"), np.zeros(2, "float32")])
    return model


def test_grad_cam_points_at_the_evidence_and_only_positive_evidence():
    image = np.zeros((1, 32, 32, 3), dtype="float32")
    image[0, :8, :8] = 1.0  # evidence for class 0 in the top-left corner only
    model = linear_evidence_model()
    for_class0 = analysis.grad_cam(model, image, "maps", class_indices=[0])[0]
    for_class1 = analysis.grad_cam(model, image, "maps", class_indices=[1])[0]
    assert for_class0.shape == (32, 32) and for_class0.max() == pytest.approx(1.0)
    assert for_class0[:6, :6].min() > 0.9 and for_class0[12:, 12:].max() == 0
    assert not for_class1.any()  # the corner is evidence against class 1: the ReLU removes it
    predicted = analysis.grad_cam(model, image, "maps")[0]  # default: the predicted class, class 0
    np.testing.assert_allclose(predicted, for_class0)


def test_grad_cam_on_a_mixed_precision_model(mixed_precision_model, images):
    heatmaps = analysis.grad_cam(mixed_precision_model, images, "relu")
    assert heatmaps.dtype == np.float32 and heatmaps.shape == (6, 32, 32)
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1


def brute_force_ece(confidences, correct, bins):
    """ECE by an explicit loop over bins (lower edge exclusive, as scikit-learn's calibration_curve bins)."""
    total = 0.0
    edges = np.linspace(0, 1, bins + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidences > low) & (confidences <= high) if low > 0 else confidences <= high
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidences[inside].mean())
    return total


def test_expected_calibration_error_known_cases():
    confidences = np.full(100, 0.95)
    correct = np.arange(100) < 80  # 80% right at 95% confidence: ECE 0.15
    assert analysis.reliability(confidences, correct)["ece"] == pytest.approx(0.15)
    rng = np.random.default_rng(0)
    confidences = rng.uniform(0.1, 1.0, 200_000)
    calibrated = rng.uniform(size=confidences.size) < confidences  # right with probability = confidence
    result = analysis.reliability(confidences, calibrated, bins=10)
    assert result["ece"] < 0.01
    assert result["counts"].sum() == confidences.size


def test_expected_calibration_error_matches_a_loop():
    rng = np.random.default_rng(1)
    confidences = rng.beta(5, 1, 5000)
    confidences[:10] = 1.0  # a softmax can saturate to exactly 1
    correct = rng.uniform(size=5000) < confidences ** 2
    for bins in (5, 10, 15):
        result = analysis.reliability(confidences, correct, bins=bins)
        assert result["ece"] == pytest.approx(brute_force_ece(confidences, correct, bins))


def test_reliability_rejects_mismatched_input():
    with pytest.raises(ValueError, match="as many confidences"):
        analysis.reliability(np.array([0.5, 0.6]), np.array([True]))


def test_flip_tta_gives_an_image_and_its_mirror_the_same_prediction():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)  # not flip-invariant: its plain predictions differ between mirrors
    images = np.random.default_rng(2).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    mirrors = images[:, :, ::-1]
    assert not np.allclose(model.predict(images, verbose=0), model.predict(mirrors, verbose=0), atol=1e-4)
    np.testing.assert_allclose(analysis.flip_tta(model, images), analysis.flip_tta(model, mirrors), atol=1e-6)
    np.testing.assert_allclose(analysis.flip_tta(model, images).sum(axis=1), 1.0)


def test_changed_predictions_counts_and_mcnemar():
    labels = np.array([0, 0, 0, 0, 1, 1])
    before = np.array([0, 1, 1, 0, 1, 0])
    after = np.array([0, 0, 0, 1, 1, 0])
    changes = analysis.changed_predictions(labels, before, after)
    assert (changes["fixed"], changes["broken"]) == (2, 1)
    assert changes["p_value"] == pytest.approx(1.0)  # 2 of 3 heads is no evidence
    lopsided = analysis.changed_predictions(np.zeros(20), np.ones(20), np.zeros(20))
    assert lopsided["fixed"] == 20 and lopsided["p_value"] == pytest.approx(2 * 0.5 ** 20)


@pytest.mark.parametrize("probability", [0.5, 0.9, 0.95, 0.99, 0.9949, 0.99996, 0.99999949, 1 - 1e-9])
def test_confidence_label_never_rounds_a_mistake_up_to_100(probability):
    label = analysis.confidence_label(probability)
    assert label.endswith("%") and not label.startswith("100")
    digits = len(label[:-1].split(".")[1])
    assert abs(float(label[:-1]) / 100 - probability) <= 0.5 * 10 ** -(digits + 2) + 1e-15


def test_confidence_label_of_certainty():
    assert analysis.confidence_label(1.0) == "100%"
    assert analysis.confidence_label(0.5) == "50.0%"


def test_examples_per_class_spreads_over_classes_and_respects_the_mask():
    labels = np.repeat(np.arange(10), 50)  # sorted by class, like the official test set
    mask = np.ones(500, dtype=bool)
    mask[labels == 3] = False
    picks = analysis.examples_per_class(labels, mask, count=9, seed=0)
    assert len(picks) == 9 and len(set(labels[picks])) == 9 and 3 not in labels[picks]
    assert len(analysis.examples_per_class(labels, labels == 0, count=4)) == 4  # one class: several from it
    assert len(analysis.examples_per_class(labels, np.zeros(500, bool), count=4)) == 0


def test_filter_structure_separates_colour_space_and_ramps():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    grey_edge = np.repeat(sobel[:, :, None], 3, axis=2)
    red_minus_green = np.zeros((3, 3, 3))
    red_minus_green[..., 0], red_minus_green[..., 1] = 1.0, -1.0
    shares = analysis.filter_structure(np.stack([grey_edge, red_minus_green], axis=-1))
    np.testing.assert_allclose(shares["colour_fraction"], [0.0, 1.0])
    np.testing.assert_allclose(shares["spatial_fraction"], [1.0, 0.0])
    assert shares["ramp_fraction"][0] == pytest.approx(8 / 9)


def panel_colours(fig, ax) -> int:
    """Distinct colours drawn inside one axes (its frame excluded)."""
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    box = ax.get_window_extent()
    height = pixels.shape[0]
    crop = pixels[int(height - box.y1) + 2:int(height - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]
    return len(np.unique(crop.reshape(-1, 3), axis=0))


def bfloat16_maps(images: int = 2):
    ramp = np.linspace(0, 4, 32 * 32).reshape(32, 32)
    maps = np.stack([np.stack([ramp * (c + 1) for c in range(4)], axis=-1)] * images)
    return maps.astype(ml_dtypes.bfloat16)


def test_feature_maps_of_bfloat16_activations_are_not_flat():
    """matplotlib resamples small panels and draws a bfloat16 array as one flat colour (the chapter 9 bug)."""
    fig = plots.feature_maps(bfloat16_maps()[0], "bfloat16", count=4)
    assert panel_colours(fig, fig.axes[0]) > 10
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    fig = plots.feature_map_rows(images, bfloat16_maps(), [0, 3], "rows")
    assert panel_colours(fig, fig.axes[1]) > 10 and panel_colours(fig, fig.axes[5]) > 10


def test_analysis_plots_draw(mixed_precision_model, images):
    result = analysis.reliability(np.linspace(0.3, 1, 50), np.arange(50) % 3 > 0)
    assert plots.reliability_diagram(result).axes
    heatmaps = analysis.grad_cam(mixed_precision_model, images, "relu")
    fig = plots.class_activation_maps(images, {"predicted": heatmaps}, [str(i) for i in range(6)])
    assert len(fig.axes) == 12
    assert plots.filters(np.random.default_rng(0).normal(size=(3, 3, 3, 10))).axes
    assert charts.gains_and_costs(["a", "b"], [None, 0.02], [1.0, 2.0], [0.1, 0.05]).axes


def test_kept_epoch_follows_the_stopping_rule():
    from cifar_lessons.book.ladder import kept_epoch

    record = {"best_epoch": 4, "epochs_run": 9, "config": {"early_stopping": True}}
    assert kept_epoch(record) == 4
    assert kept_epoch({**record, "config": {"early_stopping": False}}) == 9


def test_fit_temperature_recovers_the_temperature_that_made_the_labels():
    """Labels drawn from softmax(z / 2): the fitted T is near 2, whatever the logits' scale."""
    from scipy.special import softmax

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(logits / 2.0, axis=1)])
    assert analysis.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)
    assert analysis.fit_temperature(logits / 2.0, labels) == pytest.approx(1.0, rel=0.05)


def test_calibrate_softens_an_overconfident_model_without_changing_its_predictions():
    from scipy.special import softmax

    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=(4000, 10))
    labels = np.array([rng.choice(10, p=p) for p in softmax(logits / 3.0, axis=1)])  # truly T = 3

    class Overconfident:  # predicts softmax(logits): three times too sure
        def predict(self, indices, batch_size=None, verbose=0):
            return softmax(logits[indices], axis=1).astype(np.float32)

    validation, test = (np.arange(2000), labels[:2000]), (np.arange(2000, 4000), labels[2000:])
    found = analysis.calibrate(Overconfident(), validation, test)
    assert found["temperature"] == pytest.approx(3.0, rel=0.15)
    before, after = found["test_before"], found["test_after"]
    assert before["overall_accuracy"] == after["overall_accuracy"]  # dividing by T keeps every argmax
    assert before["mean_confidence"] > before["overall_accuracy"] and after["ece"] < before["ece"] / 2
    assert len(before["accuracy"]) == before["filled"].sum()  # the per-bin accuracies stay the diagram's
    assert found["val_after"]["ece"] < found["val_before"]["ece"]
