"""What chapter 9 says about chapter 8's model must hold for that model and the calibration record.

Its settings (the network's sizes, the reliability diagram's bins) must be the code's; its calibration prose,
and chapter 11's, must quote results/09/calibration.json; and every number and verdict of its measurements
(classes, mistakes, calibration, flip TTA, filters, feature maps) is recomputed from chapter 8's recorded
model. The measurements that predict the test set are in the slow tier."""

from __future__ import annotations

import functools
import math
import re
from types import SimpleNamespace

import pytest
from claims_support import _WORDS, _claim, _markdown, _network_8, _sample_images, assert_prose_names

from cifar_lessons import results
from cifar_lessons.book.chapters import get_chapter

# The settings the prose names must be the registry's (and Keras' and the package's): a changed recipe fails here.
# One function per chapter lists the phrases its markdown must contain.

def _chapter_09_settings():
    """Chapter 9 studies chapter 8's network: its sizes, as the code builds it, and the reliability diagram's bins."""
    import inspect

    from cifar_lessons.analysis import reliability

    images, network_8 = _sample_images(), _network_8()
    first = network_8.get_layer("stage1_conv1")
    size = {stage: network_8.get_layer(f"stage{stage}_relu2").output.shape[1] for stage in (2, 3, 4)}
    bins = inspect.signature(reliability).parameters["bins"].default
    side, channels = images.shape[1], images.shape[-1]
    return [f"{first.filters} filters of {first.kernel_size[0]}x{first.kernel_size[1]} pixels x {channels} colour "
            "channels", f"here {bins} bins of width {1 / bins:g}", f"(`stage3_relu2`, {size[3]}x{size[3]} positions)",
            f"only {size[4]}x{size[4]}, too coarse to point at anything in a {side}x{side} image",
            f"at {size[3]}x{size[3]} resolution", f"after the first convolution ({side}x{side}) and after stage 3 "
            f"({size[3]}x{size[3]})", f"({size[2]}x{size[2]}) and `stage4_relu2` ({size[4]}x{size[4]})",
            f"over a {size[4]}x{size[4]} grid", f"After stage 3 each map is {size[3]}x{size[3]}",
            f"Deeper feature maps are coarser ({size[3]}x{size[3]} after stage 3)"]


_PROSE_SETTINGS = {"09": _chapter_09_settings}


@pytest.mark.parametrize("chapter_id", ["09"])
def test_prose_names_the_configured_settings(chapter_id):
    assert_prose_names(chapter_id, _PROSE_SETTINGS[chapter_id]())


def test_calibration_prose_follows_its_record():
    """Chapters 9 and 11 on calibration: every number from results/09/calibration.json (scripts/calibrate.py),
    which must describe the models the chapters ship, and chapter 9's own cell prints the same."""
    import nbformat

    root = results.default_results_dir()
    rows = {row["chapter"]: row for row in results.read_json(root / "09" / "calibration.json")["models"]}
    for chapter_id, row in rows.items():
        shipped = results.load_record(root / chapter_id)
        assert row["model_sha256"] == shipped["files"]["model.keras"], (
            f"results/09/calibration.json describes another chapter-{chapter_id} model: run scripts/calibrate.py")
    eight, eleven = rows["08"], rows["11"]

    def pct(value):
        return f"{100 * value:.1f}%"

    assert eight["mean_confidence_before"] > eight["accuracy_before"] and eight["temperature"] > 1
    assert eleven["mean_confidence_before"] < eleven["accuracy_before"] and eleven["temperature"] < 1
    assert eleven["ece_before"] > eight["ece_before"]
    nine = _markdown("09")
    for phrase in [
        "Chapter 8's model is overconfident",
        f"the fitted temperature is $T = {eight['temperature']:.2f}$",
        f"lowers its mean confidence on the test set from {pct(eight['mean_confidence_before'])} to "
        f"{pct(eight['mean_confidence_after'])}, next to its accuracy of {pct(eight['accuracy_before'])}",
        f"takes the test ECE from {pct(eight['ece_before'])} to {pct(eight['ece_after'])}",
        "Chapter 11's model is *under*confident",
        f"its mean confidence is {pct(eleven['mean_confidence_before'])} at an accuracy of "
        f"{pct(eleven['accuracy_before'])}, a test ECE of {pct(eleven['ece_before'])}, higher than chapter 8's",
        f"fitted $T = {eleven['temperature']:.2f}$ sharpens the probabilities back, to a mean confidence of "
        f"{pct(eleven['mean_confidence_after'])} and a test ECE of {pct(eleven['ece_after'])}",
    ]:
        assert phrase in nine, f"chapter 9's calibration prose no longer says: {phrase}"
    eleven_text = _markdown("11")
    phrase = (f"a mean confidence of {pct(eleven['mean_confidence_before'])} at {pct(eleven['accuracy_before'])} "
              f"test accuracy (an expected calibration error of {pct(eleven['ece_before'])}, against "
              f"{pct(eight['ece_before'])} for chapter 8's overconfident model)")
    assert phrase in eleven_text, f"chapter 11's calibration sentence no longer says: {phrase}"
    printed = "".join(output.get("text", "") for cell in nbformat.read(get_chapter("09").notebook, as_version=4).cells
                      if cell.cell_type == "code" for output in cell.get("outputs", []))
    for chapter_id, row in rows.items():
        line = (f"chapter {chapter_id}: T = {row['temperature']:.2f}; test ECE {pct(row['ece_before'])} -> "
                f"{pct(row['ece_after'])}")
        assert line in printed, f"chapter 9's calibration cell does not print the recorded result: {line}"


# Chapter 9's measurements of chapter 8's model: every number its prose quotes, recomputed as the notebook's cells
# compute it (the package's evaluate, reliability, flip_tta, changed_predictions, filter_structure, activations), and
# every verdict the wording states ("overconfident", "less colour-led", "no more ramp-like") checked against them. A
# retrained chapter 8 whose numbers or verdicts differ fails here, naming the section and the sentence. The model
# predicts in mixed bfloat16, whose rounding depends on the CPU: one with native bfloat16 (AMX, where TensorFlow's
# oneDNN kernels run it) moves a few of the 10,000 images against the hosts the committed outputs came from, so the
# recomputed numbers must be near the quoted ones (_near), not equal; verdicts must hold exactly.

@functools.cache
def _run_8():
    from cifar_lessons.book.runs import run_dir_for
    from cifar_lessons.training import load_run

    return load_run(run_dir_for(get_chapter("08")))


@functools.cache
def _filter_shares():
    """The first-layer filters, trained and a fresh Glorot-uniform draw, as the filter cells measure them."""
    import keras
    import numpy as np

    from cifar_lessons import analysis

    kernels = _run_8().model.get_layer("stage1_conv1").get_weights()[0]
    random_draw = np.asarray(keras.initializers.GlorotUniform(seed=0)(kernels.shape))
    shares = {"trained": analysis.filter_structure(kernels), "random": analysis.filter_structure(random_draw)}

    def median(part):
        return {name: float(np.median(draw[f"{part}_fraction"])) for name, draw in shares.items()}

    def count(part, above):  # the filters "mostly colour" (above a half) or "mostly ramp" (above three quarters)
        return {name: int(np.sum(draw[f"{part}_fraction"] > above)) for name, draw in shares.items()}

    colour, ramp = median("colour"), median("ramp")
    return SimpleNamespace(
        filters=kernels.shape[-1], channels=kernels.shape[2], colour=colour, ramp=ramp,
        colour_led=count("colour", 0.5), ramp_led=count("ramp", 0.75),
        less_colour=colour["trained"] < colour["random"],
        no_more_ramp=ramp["trained"] <= ramp["random"] + 0.05)  # within five points of chance


def _class_ranking(result):
    """The recall cell: classes by recall with binomial standard errors, and the most frequent confusions."""
    import numpy as np

    recall, names = result.per_class_accuracy(), list(result.class_names)
    ranked, per_class = sorted(recall, key=recall.get), int(np.sum(result.labels == 0))
    error = {name: float(np.sqrt(recall[name] * (1 - recall[name]) / per_class)) for name in recall}
    matrix = result.confusion.copy()
    np.fill_diagonal(matrix, 0)
    (true, predicted, count), = result.most_confused(1)

    def near(a, b):  # "not told apart": less than two standard errors, the larger of the two, apart
        return abs(recall[a] - recall[b]) < 2 * max(error[a], error[b])

    return SimpleNamespace(
        recall=recall, error=error, per_class=per_class, hardest=ranked[0], second=ranked[1],
        easiest=ranked[-1], next_easiest=ranked[-2], near=near, true=true, predicted=predicted, count=count,
        reverse=int(matrix[names.index(predicted), names.index(true)]),
        reverse_is_top=names[int(matrix[names.index(predicted)].argmax())] == true)


@pytest.fixture(scope="module")
def chapter_9_measured(real_data):
    """What chapter 9's cells measure on chapter 8's recorded model: the test set predicted plainly and with flip
    TTA, the reliability bins of both, and the feature maps of the four example images."""
    import numpy as np

    from cifar_lessons import analysis
    from cifar_lessons.evaluation import evaluate

    model, x_test = _run_8().model, real_data.x_test
    result = evaluate(model, x_test, real_data.y_test, real_data.class_names)
    tta_probabilities = analysis.flip_tta(model, x_test)
    tta_predictions = tta_probabilities.argmax(axis=1)
    shown = analysis.examples_per_class(result.labels, np.ones_like(result.correct), count=4, seed=1)
    sparsity = {layer: float(np.mean(analysis.activations(model, x_test[shown], layer) == 0))
                for layer in ("stage1_relu1", "stage3_relu2")}
    return SimpleNamespace(
        result=result, classes=_class_ranking(result), shown=len(shown), sparsity=sparsity,
        calibration=analysis.reliability(result.confidence, result.correct, bins=10),
        tta_accuracy=float(np.mean(tta_predictions == result.labels)),
        changes=analysis.changed_predictions(result.labels, result.predictions, tta_predictions),
        tta_ece=analysis.reliability(tta_probabilities.max(axis=1), tta_predictions == result.labels, bins=10)["ece"])


def _chapter_09_classes(measured):
    k = measured.classes

    def shown(name):  # as the cell prints it
        return f"{k.recall[name]:.1%} ± {k.error[name]:.1%}"

    apart = k.recall[k.easiest] - k.recall[k.hardest] > 4 * max(k.error[k.easiest], k.error[k.hardest])
    return [
        f"The hardest class is **{k.hardest}**: the model recalls {shown(k.hardest)} of its {k.per_class:,} test "
        f"images, and {k.second} follows at {shown(k.second)}",
        f"The easiest is **{k.easiest}** at {shown(k.easiest)}, just ahead of {k.next_easiest} at "
        f"{shown(k.next_easiest)}",
        _claim(k.near(k.easiest, k.next_easiest),
               "At the top the two classes lie less than two standard errors apart"),
        _claim(not k.near(k.hardest, k.second),
               f"{k.hardest.capitalize()}, by contrast, stands alone at the bottom, "
               f"{100 * (k.recall[k.second] - k.recall[k.hardest]):.1f} points below {k.second}, "
               "well beyond that noise"),
        _claim(apart, "the two ends of the ranking are far apart"),
        f"The most frequent single confusion is {k.true} predicted as {k.predicted} ({k.count} of {k.per_class:,} "
        f"{k.true} images)",
        _claim(k.reverse_is_top and {k.true, k.predicted} == {k.hardest, k.second},
               f"the mistake {k.predicted} makes most often is the reverse, {k.predicted} predicted as {k.true} "
               f"({k.reverse} images): the two hardest classes are each other's most frequent confusion"),
    ]


def _chapter_09_mistakes(measured):
    import numpy as np

    result = measured.result
    errors = ~result.correct
    wrong, right = result.confidence[errors], np.median(result.confidence[result.correct])
    return [
        f"Of the {errors.sum():,} mistakes, {np.mean(wrong > 0.99):.1%} were made with a confidence above 99% and "
        f"{np.mean(wrong > 0.9):.1%} above 90%",
        f"The median mistake was made with a confidence of {np.median(wrong):.0%}, the median correct prediction "
        f"with {right:.1%}",
        _claim(np.median(wrong) < right, "Confidence does separate right from wrong on average"),
        _claim(np.any(wrong > 0.99), "a prediction made with more than 99% confidence can still be wrong"),
    ]


def _chapter_09_calibration(measured):
    import numpy as np

    bins, images = measured.calibration, len(measured.result.labels)
    filled = np.flatnonzero(bins["filled"])
    top, over = filled[-1], int(np.sum(bins["confidence"] > bins["accuracy"]))
    return [
        f"The expected calibration error is **{bins['ece']:.1%}**",
        f"the model's confidence and its accuracy differ by {100 * bins['ece']:.1f} points",
        _claim(over == len(filled), f"The model is more confident than accurate in {over} of the {len(filled)} "
               "non-empty bins: it is overconfident at every level of confidence"),
        f"Its top bin (confidence above {bins['edges'][top]:.1f}) holds {bins['counts'][top] / images:.0%} of all "
        f"predictions, at a mean confidence of {bins['confidence'][-1]:.1%} but an accuracy of "
        f"{bins['accuracy'][-1]:.1%}",
        f"That is {bins['counts'][top] * (1 - bins['accuracy'][-1]):.0f} mistakes hidden among predictions",
    ]


def _chapter_09_tta(measured):
    plain, changes = measured.result.accuracy, measured.changes
    difference, ece = measured.tta_accuracy - plain, measured.calibration["ece"]
    return [
        _claim(difference > 0, f"Flip TTA raised test accuracy from {plain:.2%} to {measured.tta_accuracy:.2%}, "
               f"{100 * difference:+.2f} points"),
        f"it fixed {changes['fixed']} predictions and broke {changes['broken']}, "
        f"{changes['fixed'] - changes['broken']:+,} of {len(measured.result.labels):,} images on balance",
        f"with probability p = {changes['p_value']:.2g} (McNemar's exact test)",
        _claim(changes["p_value"] < 0.01, "so the gain is not an accident of which images the test set holds"),
        _claim(measured.tta_ece < ece,
               f"the expected calibration error fell from {ece:.2%} to {measured.tta_ece:.2%}"),
    ]


def _chapter_09_filters():
    f = _filter_shares()
    return [
        f"{f.colour_led['trained']} of the {f.filters} trained filters put most of their weight on colour "
        f"differences, against {f.colour_led['random']} of the {f.filters} random ones, and their median colour "
        f"share is {f.colour['trained']:.0%}, against {f.colour['random']:.0%} for the random draw",
        f"A random filter's expected colour share is {(f.channels - 1) / f.channels:.0%}, the share of weight that "
        f"differs between {f.channels} channels",
        f"In {f.ramp_led['trained']} of the {f.filters} trained filters a straight ramp explains more than three "
        f"quarters of the brightness pattern ({f.ramp_led['random']} of the random ones), and the median ramp share "
        f"is {f.ramp['trained']:.0%}, against {f.ramp['random']:.0%} for the random draw",
        _claim(f.less_colour, "training made the filters less colour-led than random ones"),
        _claim(f.no_more_ramp, "and no more ramp-like: they are not the clean oriented-edge detectors"),
    ]


def _chapter_09_feature_maps(measured):
    first, later = measured.sparsity["stage1_relu1"], measured.sparsity["stage3_relu2"]
    return [f"for these {_WORDS[measured.shown]} images {first:.0%} of the first layer's activations are exactly zero",
            _claim(later > first, f"and stage 3's maps are sparser still, at {later:.0%}")]


def _chapter_09_summary(measured):
    result, k, f = measured.result, measured.classes, _filter_shares()
    confidence, difference = result.confidence.mean(), measured.tta_accuracy - result.accuracy
    rows = results.read_json(results.default_results_dir() / "09" / "calibration.json")["models"]
    scaled = next(row for row in rows if row["chapter"] == "08")  # the calibration cell's result, recorded
    sparser = measured.sparsity["stage3_relu2"] > measured.sparsity["stage1_relu1"]
    ece, colour_led = measured.calibration["ece"], f.colour_led["trained"]
    return [
        f"Chapter 8's model classifies {result.accuracy:.2%} of the test images correctly",
        _claim(not k.near(k.hardest, k.second), f"Its hardest class is {k.hardest}, well below the next "
               f"({k.second}), and its most frequent confusion is {k.true} → {k.predicted}"),
        _claim(confidence > result.accuracy, f"It is overconfident: a mean confidence of {confidence:.1%} at an "
               f"accuracy of {result.accuracy:.1%}, an expected calibration error of {ece:.1%}"),
        _claim(result.confidence[result.misclassified()[0]] > 0.9999,
               "its most confident mistakes carry probabilities above 99.99%"),
        f"A temperature fitted on the validation split ($T = {scaled['temperature']:.2f}$) brings the test ECE to "
        f"{100 * scaled['ece_after']:.1f}%",
        _claim(difference > 0, f"raised test accuracy from {result.accuracy:.2%} to {measured.tta_accuracy:.2%} "
               f"({100 * difference:+.2f} points, McNemar p = {measured.changes['p_value']:.2g})"),
        _claim(f.less_colour, f"The first-layer filters are less colour-led than random ones ({colour_led} of "
               f"{f.filters} mostly colour)"),
        _claim(f.no_more_ramp, f"and no more ramp-like (median ramp share {f.ramp['trained']:.0%} against "
               f"{f.ramp['random']:.0%}): they are not clean edge detectors"),
        _claim(sparser, "after stage 3), sparser, and harder to read"),
        f"All of this describes one run, chapter 8's seed {_run_8().record['seed']}",
    ]


_CHAPTER_09_MEASURED = {"classes": _chapter_09_classes, "mistakes": _chapter_09_mistakes,
                        "calibration": _chapter_09_calibration, "tta": _chapter_09_tta,
                        "feature_maps": _chapter_09_feature_maps, "summary": _chapter_09_summary}


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?")


def _near(quoted: str, measured: str) -> bool:
    """Whether a number the prose quotes is the measured one, up to what the CPU's bfloat16 rounding moves (on an
    AMX host a few of 10,000 test predictions change, and McNemar's p with them): two units of the last digit
    shown, a count of 20 or more by 2%, a p-value by a factor of three; a count under 20 exactly. A retrained
    model moves these numbers by more."""
    a, b = (float(value.replace(",", "")) for value in (quoted, measured))
    if "e" in measured:
        return a > 0 and abs(math.log10(a) - math.log10(b)) <= 0.5
    if "." in measured:
        return abs(a - b) <= 2.01 * 10 ** -len(measured.split(".")[1])
    return a == b if b < 20 else abs(a - b) <= max(1.0, 0.02 * b)


def _says_nearly(phrase: str, text: str) -> bool:
    """Whether ``text`` holds ``phrase`` word for word, its numbers within :func:`_near` of the measured ones."""
    measured = _NUMBER.findall(phrase)
    pieces = [re.escape(piece) for piece in _NUMBER.split(phrase)]
    pattern = "".join(piece + (f"({_NUMBER.pattern})" if index < len(measured) else "")
                      for index, piece in enumerate(pieces))
    return any(all(_near(quoted, value) for quoted, value in zip(match.groups(), measured))
               for match in re.finditer(pattern, text))


def _assert_chapter_9_says(section, phrases, exact=True):
    """Every phrase in chapter 9's markdown: word for word, or, where ``exact`` is False (numbers measured by
    predicting in bfloat16 on this CPU), with numbers near the measured ones."""
    text = _markdown("09")
    missing = [phrase for phrase in phrases if not (phrase in text if exact else _says_nearly(phrase, text))]
    assert not missing, (f"chapter 9's {section} prose no longer matches chapter 8's recorded model (re-execute "
                         f"the notebook: cifar-lessons notebooks 09, and rewrite these sentences): {missing}")


def test_chapter_9_filter_prose_follows_the_recorded_weights():
    """The filter section reads chapter 8's first-layer weights and predicts nothing: it runs in the default tier."""
    _assert_chapter_9_says("filters", _chapter_09_filters())


@pytest.mark.slow  # predicts the 10,000 test images three times and loads the full data: minutes on 2 CPU cores
@pytest.mark.parametrize("section", list(_CHAPTER_09_MEASURED))
def test_chapter_9_prose_quotes_what_chapter_8s_model_measures(section, chapter_9_measured):
    _assert_chapter_9_says(section, _CHAPTER_09_MEASURED[section](chapter_9_measured), exact=False)
