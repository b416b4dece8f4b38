"""Looking inside a trained model: activations, class-activation maps, calibration, test-time augmentation.

Everything here works on a saved model in seconds on a CPU (Chapter 9). Models trained in
mixed precision compute their hidden layers in bfloat16: every array this module returns is
float32 or float64, because NumPy and matplotlib do not handle bfloat16 properly.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import binomtest
from sklearn.calibration import calibration_curve


def activations(model, images: np.ndarray, layer_name: str, batch_size: int = 250) -> np.ndarray:
    """The output of one layer for a batch of raw images, as float32 (Chapter 9)."""
    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    # training=False: called directly, Keras 3's random augmentation layers would otherwise be active.
    batches = [probe(np.asarray(images[start:start + batch_size], dtype="float32"), training=False)
               for start in range(0, len(images), batch_size)]
    return np.concatenate([np.asarray(batch, dtype=np.float32) for batch in batches])


def most_active_channels(maps: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` channels with the highest mean activation over images and positions (Chapter 9)."""
    means = np.asarray(maps, dtype=np.float64).reshape(-1, maps.shape[-1]).mean(axis=0)
    return np.argsort(means)[::-1][:count]


def filter_structure(kernels: np.ndarray) -> dict:
    """How much of each first-layer filter is colour contrast, spatial pattern and oriented ramp (Chapter 9).

    ``kernels`` has shape (height, width, 3, filters). Each fraction is a part's share of the squared
    weights it is taken from:

    - ``colour_fraction``: the part whose weights differ between red, green and blue (the rest, the
      mean over channels, is the *brightness part*: the same weight on every channel);
    - ``spatial_fraction``: the part whose weights differ between positions (the rest responds to
      the average over the patch);
    - ``ramp_fraction``: of the brightness part's spatial pattern, the share a straight ramp across
      the patch (a plane ``a*x + b*y``) explains. A small oriented-edge detector such as a Sobel filter
      is mostly ramp (0.9); a random 3x3 pattern about 0.25 (2 of its 8 degrees of freedom).
    """
    weights = np.asarray(kernels, dtype=np.float64)
    total = np.maximum((weights ** 2).sum(axis=(0, 1, 2)), 1e-12)
    grey = weights.mean(axis=2)  # (height, width, filters)
    flat = weights.mean(axis=(0, 1), keepdims=True)
    pattern = grey - grey.mean(axis=(0, 1), keepdims=True)
    rows, columns = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in pattern.shape[:2]), indexing="ij")
    explained = sum(np.einsum("ij,ijf->f", ramp, pattern) ** 2 / (ramp ** 2).sum() for ramp in (rows, columns))
    return {
        "colour_fraction": ((weights - grey[:, :, None]) ** 2).sum(axis=(0, 1, 2)) / total,
        "spatial_fraction": ((weights - flat) ** 2).sum(axis=(0, 1, 2)) / total,
        "ramp_fraction": explained / np.maximum((pattern ** 2).sum(axis=(0, 1)), 1e-12),
    }


def _softmax_head(model):
    """The model's last layer, checked to be a Dense softmax layer (Chapter 9)."""
    head = model.layers[-1]
    activation = getattr(getattr(head, "activation", None), "__name__", "")
    if not isinstance(head, keras.layers.Dense) or activation != "softmax":
        raise ValueError(f"the model's last layer {head.name!r} is not a Dense softmax layer: "
                         "logits and class-activation maps need the class scores before the softmax")
    return head


def logits(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Class scores before the softmax (the logits), as float64 (Chapter 9)."""
    head = _softmax_head(model)
    probe = keras.Model(model.input, head.input)
    kernel, bias = (np.asarray(weight, dtype=np.float64) for weight in head.get_weights())
    batches = [probe(np.asarray(images[start:start + batch_size], dtype="float32"), training=False)
               for start in range(0, len(images), batch_size)]
    features = np.concatenate([np.asarray(batch, dtype=np.float64) for batch in batches])
    return features @ kernel + bias


def grad_cam(model, images: np.ndarray, layer_name: str, class_indices=None) -> np.ndarray:
    """Grad-CAM heat maps (Selvaraju et al. 2017) of a class for each image, upsampled to the image size (Chapter 9).

    The map is the ReLU of the layer's channels weighted by the average gradient of the class
    score (the logit, before the softmax, which saturates) with respect to each channel. Each map
    is scaled to a maximum of 1; a map with no positive evidence stays 0. ``class_indices`` defaults
    to the predicted class of each image.
    """
    head = _softmax_head(model)
    probe = keras.Model(model.input, [model.get_layer(layer_name).output, head.input])
    kernel, bias = (tf.constant(np.asarray(weight, dtype=np.float32)) for weight in head.get_weights())
    inputs = tf.constant(np.asarray(images, dtype="float32"))
    with tf.GradientTape() as tape:
        feature_maps, features = probe(inputs, training=False)  # training=True would augment
        scores = tf.cast(features, tf.float32) @ kernel + bias
        if class_indices is None:
            class_indices = tf.argmax(scores, axis=1)
        chosen = tf.gather(scores, tf.cast(class_indices, tf.int32), axis=1, batch_dims=1)
    gradients = tape.gradient(chosen, feature_maps)
    if gradients is None:
        raise ValueError(f"layer {layer_name!r} does not lead to the class scores")
    # A mixed-precision model computes its hidden layers in bfloat16: continue in float32.
    gradients, feature_maps = tf.cast(gradients, tf.float32), tf.cast(feature_maps, tf.float32)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(channel_weights * feature_maps, axis=-1, keepdims=True))
    maps = tf.image.resize(maps, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    return (maps / np.where(peaks > 0, peaks, 1)[:, None, None]).astype(np.float32)


def reliability(confidences: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict:
    """Accuracy against confidence in equal-width bins, and the expected calibration error (Chapter 9).

    scikit-learn's ``calibration_curve`` gives each non-empty bin's accuracy and mean confidence;
    the expected calibration error (Guo et al. 2017) is their absolute difference averaged over
    bins, weighted by the fraction of predictions in each bin.
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct).reshape(-1).astype(int)
    if len(confidences) == 0 or len(confidences) != len(correct):
        raise ValueError("reliability needs as many confidences as correctness flags, at least one")
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidences), minlength=bins)  # calibration_curve's bins
    accuracy, confidence = calibration_curve(correct, confidences, n_bins=bins, strategy="uniform", pos_label=1)
    filled = counts > 0
    ece = float(np.sum(counts[filled] / len(confidences) * np.abs(accuracy - confidence)))
    return {"edges": edges, "counts": counts, "filled": filled, "accuracy": accuracy, "confidence": confidence,
            "ece": ece}


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T that minimizes the cross-entropy of softmax(logits / T)
    on held-out images, found by SciPy's bounded scalar search over log T (Chapter 9).

    Fit it on the validation split, never on the test set: T is a parameter like any other.
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels).reshape(-1)

    def loss(log_t):
        return -log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(labels)), labels].mean()

    return float(np.exp(minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded").x))


def calibrate(model, validation, test, bins=10):
    """Temperature scaling of a model with a softmax output: T fitted on ``validation``, then the test
    set's reliability before and after, as ``reliability`` gives it, with the mean confidence and the
    overall accuracy (Chapter 9).

    ``validation`` and ``test`` are (images, labels). The log-probabilities serve as logits:
    softmax(log p / T) equals softmax(z / T) for the model's own logits z, so any model with a softmax
    output works, test-time augmentation inside it included.
    """
    from scipy.special import softmax

    def log_probabilities(images):
        probabilities = model.predict(images, batch_size=500, verbose=0).astype(np.float64)
        return np.log(np.clip(probabilities, 1e-30, None))  # a float32 softmax can round to 0

    (x_val, y_val), (x_test, y_test) = validation, test
    val_logits, test_logits = log_probabilities(x_val), log_probabilities(x_test)
    temperature = fit_temperature(val_logits, y_val)
    found = {"temperature": temperature}
    for when, divisor in (("before", 1.0), ("after", temperature)):
        for split, scores, labels in (("val", val_logits, y_val), ("test", test_logits, y_test)):
            probabilities = softmax(scores / divisor, axis=1)
            confidence = probabilities.max(axis=1)
            correct = probabilities.argmax(axis=1) == np.asarray(labels).reshape(-1)
            found[f"{split}_{when}"] = {**reliability(confidence, correct, bins),
                                        "mean_confidence": float(confidence.mean()),
                                        "overall_accuracy": float(correct.mean())}
    return found


def flip_tta(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Test-time augmentation: the average of the predictions for each image and its mirror image (Chapter 9)."""
    images = np.asarray(images)
    plain = model.predict(images, batch_size=batch_size, verbose=0)
    mirrored = model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0)
    probabilities = (np.asarray(plain, dtype=np.float64) + np.asarray(mirrored, dtype=np.float64)) / 2
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def changed_predictions(labels: np.ndarray, before: np.ndarray, after: np.ndarray) -> dict:
    """How many predictions a change fixed and broke, with an exact McNemar test of the difference (Chapter 9).

    Only the images whose correctness changed carry information: under the hypothesis that the
    change does nothing, each is as likely to be fixed as broken (a fair coin), and the p-value is
    that of a two-sided binomial test on the fixed count.
    """
    labels, before, after = (np.asarray(a).reshape(-1) for a in (labels, before, after))
    was_right, is_right = before == labels, after == labels
    fixed, broken = int(np.sum(~was_right & is_right)), int(np.sum(was_right & ~is_right))
    p_value = binomtest(fixed, fixed + broken, 0.5).pvalue if fixed + broken else 1.0
    return {"fixed": fixed, "broken": broken, "p_value": float(p_value)}


def confidence_label(probability: float) -> str:
    """A probability as a percentage with enough digits that it does not round to 100% (Chapter 9)."""
    probability = float(probability)
    if probability >= 1.0:
        return "100%"
    digits = max(1, math.ceil(-math.log10(1.0 - probability)) - 1)
    digits = min(digits, 10)
    text = f"{100 * probability:.{digits}f}"
    while text.startswith("100") and digits < 10:  # rounding still reached 100: one more digit
        digits += 1
        text = f"{100 * probability:.{digits}f}"
    return text + "%"


def examples_per_class(labels: np.ndarray, mask: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of up to ``count`` images where ``mask`` holds, from as many different classes as possible (Chapter 9).

    Test sets are often sorted by class: picking the first few would show one class only.
    """
    rng = np.random.default_rng(seed)
    labels, mask = np.asarray(labels).reshape(-1), np.asarray(mask).reshape(-1)
    pools = [rng.permutation(np.flatnonzero(mask & (labels == label))) for label in rng.permutation(np.unique(labels))]
    picks = []
    for depth in range(max((len(pool) for pool in pools), default=0)):
        picks += [int(pool[depth]) for pool in pools if depth < len(pool)]
        if len(picks) >= count:
            break
    return np.array(picks[:count], dtype=int)


def load_photo(path, size: int = 32) -> np.ndarray:
    """Any photo as a CIFAR-10 image: the centred square, shrunk to ``size`` x ``size`` RGB pixels (Chapter 9).

    CIFAR-10's images are small crops with the object filling most of the frame; a photo shrunk the same way
    gives the model the kind of input it was trained on. Returns uint8 pixels, 0-255, shape (size, size, 3).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as photo:
        photo = ImageOps.exif_transpose(photo).convert("RGB")  # phone photos store their rotation apart
        side = min(photo.size)
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
        square = photo.crop((left, top, left + side, top + side))
        return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
