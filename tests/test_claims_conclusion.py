"""Chapter 10's hand-written conclusion against the run records: every number and verdict it states is derived
here from results/ (the seed study, the batch-norm diagnosis, the momentum-0.99 runs that chapters 5-7 replaced,
chapter 8's control, chapter 9's calibration and chapter 5's sweep) and must appear in its Markdown cells."""

from __future__ import annotations

import functools

import pytest
from claims_support import _WORDS, _chapter_08_controls, _chapter_08_seeds, _claim, _markdown, _points

from cifar_lessons import results
from cifar_lessons.book import ladder, report
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.book.seeds import p_text


@functools.cache
def _rows():  # the seed study's rows, read once for the module's three phrase lists
    return {row["id"]: row for row in report.comparison_rows()}


def _conclusion_phrases():
    rows = _rows()
    records = {key: row["record"] for key, row in rows.items()}
    history = ladder.recorded_history("08")
    mean = {key: row["test_accuracy"] for key, row in rows.items()}
    shown = [key for key in ("02", "03", "04", "05", "06", "07", "08") if rows[key]["verdict"] == "helps"]
    late_shown, late_not = ([key for key in ("05", "06", "07", "08") if (rows[key]["verdict"] == "helps") == flag]
                            for flag in (True, False))
    phrases = [# Whole points: the displayed means, each rounded, would not add up to the tenth.
               f"Three early steps carry about {100 * (mean['04'] - mean['01']):.0f} of the "
               f"{100 * (mean['08'] - mean['01']):.0f} points from the baseline's {100 * mean['01']:.1f}% to "
               f"chapter 8's {100 * mean['08']:.1f}%",
               _claim(shown[:3] == ["02", "03", "04"], "and the seeds show each of them"),
               f"Chapters 5 to 8 add the other {100 * (mean['08'] - mean['04']):.0f} or so",
               _claim(late_shown == ["05", "07", "08"] and all(rows[key]["n"] == 5 for key in ("04", *late_shown)),
                      "Three of their steps the seeds show, once each chapter had five seeds"),
               _claim(late_not == ["06"], "One step the seeds do not show")]
    named = {"02": "Normalization", "03": "A deeper network", "04": "Data augmentation"}
    for key, name in named.items():
        phrases.append(f"**{name}** (chapter {int(key)}) gained")
        phrases.append(f"{_points(rows[key]['gain'])} ({p_text(rows[key]['p_value'])})")
    for key in ("05", "06", "07", "08"):
        phrases.append(f"(chapter {int(key)}, {_points(rows[key]['gain'])}, {p_text(rows[key]['p_value'])})")
    # The seeds: their spread and the intervals they leave open.
    spread = [row for row in rows.values() if row["std"] is not None]
    low, high = min(spread, key=lambda row: row["std"]), max(spread, key=lambda row: row["std"])
    phrases.append(f"standard deviation of {100 * low['std']:.1f} (chapter {int(low['id'])}) to "
                   f"{100 * high['std']:.1f} points (chapter {int(high['id'])})")
    (first,), (second, third, fourth) = late_not, late_shown  # the intervals of the not-shown and the shown
    phrases += [f"For chapter {int(first)} the seeds allow anything from {_interval(rows[first], ' to ')} points (a "
                "95% confidence interval)",
                f"the 95% confidence intervals of the gains are {_interval(rows[second], ' to ')} (chapter "
                f"{int(second)}), {_interval(rows[third], ' to ')} (chapter {int(third)}) and "
                f"{_interval(rows[fourth], ' to ')} points (chapter {int(fourth)})"]
    # Which gains the seeds support, in the summary.
    phrases.append(_claim(shown == ["02", "03", "04", "05", "07", "08"],
                          f"The seeds support the gains of normalization ({_points(rows['02']['gain'])}), a deeper "
                          f"network ({100 * rows['03']['gain']:+.1f}), data augmentation "
                          f"({100 * rows['04']['gain']:+.1f}), batch normalization ({100 * rows['05']['gain']:+.1f}), "
                          f"the learning-rate schedule "
                          f"({100 * rows['07']['gain']:+.1f}) and chapter 8's longer budget with early stopping "
                          f"({100 * rows['08']['gain']:+.1f};"))
    phrases.append(_claim(late_not == ["06"], "They do not show that of dropout"))
    phrases.append(_claim(late_not == ["06"], "That dropout helps at this budget"))
    # Chapter 11 against chapter 8.
    c11 = rows["11"]
    phrases.append(f"reaches {100 * c11['test_accuracy']:.1f} ± {100 * c11['std']:.1f}% in "
                   f"{c11['record']['epochs_run']} epochs, {_points(c11['gain'])} over chapter 8 "
                   f"({p_text(c11['p_value'])})")
    # Chapter 8's main run and its schedule.
    cuts = results.learning_rate_drops(history)
    phrases.append(f"stopped after {records['08']['epochs_run']} of {records['08']['config']['epochs']} epochs, "
                   f"at a learning\n  rate of {history['learning_rate'][-1]:.2g} after {len(cuts)} cuts"
                   .replace("\n  ", " "))
    return [" ".join(phrase.split()) for phrase in phrases]


def _cost_phrases():
    """What chapters 3 and 4 cost, from their main runs' files: wall time against the previous chapter's on the
    same machine, and the train-validation gap at the kept epoch."""
    records = {key: row["record"] for key, row in _rows().items()}

    def gap(key):  # the main run's train minus validation accuracy at the epoch it kept, from its files
        kept, logged = ladder.kept_epoch(records[key]), ladder.recorded_history(key)
        return logged["accuracy"][kept - 1] - logged["val_accuracy"][kept - 1]

    def time_ratio(key, previous):
        return records[key]["wall_time_s"] / records[previous]["wall_time_s"]

    assert len({ladder.machine_key(records[key]) for key in ("02", "03", "04")}) == 1, "times compare on one machine"
    phrases = [f"took {time_ratio('03', '02'):.1f}x the wall time of chapter 2's",
               f"grew from {100 * gap('02'):.1f} to {100 * gap('03'):.1f} points",
               f"at {time_ratio('04', '03'):.1f}x the wall time", f"its gap fell to {100 * gap('04'):.1f} points"]
    return phrases


def _interval(row, joint):  # a gain's 95% interval as the prose writes it: "+0.6 to +3.2"
    lower, upper = row["interval"]
    return f"{100 * lower:+.1f}{joint}{100 * upper:+.1f}"


def _stale_statistics_phrases():
    root = results.default_results_dir()
    saved = {row["chapter"]: row for row in results.read_json(root / "05" / "bn_diagnosis.json")["saved_models"]}

    def change(key):
        return (f"{100 * saved[key]['saved_stats']:.1f}% to "
                f"{100 * saved[key]['reestimated_augmented']:.1f}%")

    phrases = [f"from {change('05')} for chapter 5", f"from {change('06')} for chapter 6",
               f"from {change('07')} for chapter 7", f"hardly moved ({change('08')})"]
    lag = {key: row["reestimated_augmented"] - row["saved_stats"] for key, row in saved.items()}
    stale = lag["05"] > 0.01 and lag["06"] > 0.01 and lag["07"] > 0.01 and lag["08"] < 0.005
    phrases += [_claim(stale, "So those first verdicts for chapters 5 to 7 measured the lag as much as the techniques"),
                _claim(stale, "The first runs of chapters 5 to 7 were measured with stale batch-norm statistics")]

    def mean(run_dirs):
        import statistics

        return statistics.mean(results.load_record(run_dir)["test_accuracy"] for run_dir in run_dirs)

    rows = _rows()
    change = {}
    for key in ("05", "06", "07", "08"):  # the momentum-0.99 runs the ladder replaced, against the chapter's own
        old = mean([root / key / "momentum0.99" / f"seed{seed}" for seed in (0, 1, 2)])
        assert rows[key]["seeds"][:3] == [0, 1, 2] and rows[key]["record"]["config"]["batch_norm_momentum"] == 0.9
        new = sum(rows[key]["values"][:3]) / 3  # the same seeds as the old runs
        phrases.append(f"from {100 * old:.1f}% to {100 * new:.1f}% for chapter {int(key)}")
        change[key] = new - old
    phrases.append("Over seeds 0 to 2, their mean test accuracy rose")
    phrases.append(_claim(0 <= change["08"] < min(change["05"], change["06"], change["07"]) / 2,
                          "as the diagnosis predicted, hardly at all"))
    host_check = results.load_record(root / "05" / "same_host" / "momentum0.99" / "seed0")
    amd = results.load_record(root / "05" / "momentum0.99" / "seed0")
    assert host_check["seed"] == amd["seed"] == 0 and host_check["config_hash"] == amd["config_hash"]
    pair = results.load_record(root / "05" / "same_host" / "momentum0.9" / "seed0")
    same_host = {key: host_check["hardware"][key] for key in ("cpu", "cpu_family", "cpu_model")}
    assert same_host == {key: pair["hardware"][key] for key in same_host} and pair["seed"] == 0
    phrases += [f"with seed 0 scored {100 * host_check['test_accuracy']:.1f}% instead of the "
                f"{100 * amd['test_accuracy']:.1f}% it scored on AMD",
                f"seed 0 with momentum 0.9 scored {100 * pair['test_accuracy']:.1f}%: the one pair that changes "
                f"only the momentum gains {100 * (pair['test_accuracy'] - host_check['test_accuracy']):.1f} points",
                _claim(pair["test_accuracy"] > host_check["test_accuracy"], "gains"),
                _claim(abs(pair["test_accuracy"] - host_check["test_accuracy"] - lag["05"]) < 0.015,
                       "about what re-estimating the statistics gained"),
                f"moved one run by {100 * (amd['test_accuracy'] - host_check['test_accuracy']):.1f} points through "
                "the machine alone"]
    return [" ".join(phrase.split()) for phrase in phrases]


def _welch_phrases():
    """Chapter 10's rule of thumb for Welch's test: chapter 7 against chapter 6 with three seeds each (few degrees of
    freedom, a gain of more than twice its standard error still not shown) and with all their seeds."""
    from scipy import stats

    rows = _rows()
    old, new = rows["06"], rows["07"]

    def welch(a, b):  # degrees of freedom, gain in standard errors (Welch's t), p
        test = stats.ttest_ind(b, a, equal_var=False)
        return test.df, test.statistic, test.pvalue

    three, every = welch(old["values"][:3], new["values"][:3]), welch(old["values"], new["values"])
    return [f"with three seeds each the test had {three[0]:.1f} degrees of freedom, and a gain of {three[1]:.1f} "
            f"standard errors got {p_text(three[2])}",
            _claim(three[0] < 4 and three[2] >= 0.05 and three[1] > 2, "Chapter 7 against chapter 6 shows both sides"),
            (f"with {_WORDS[new['n']]} seeds each" if new["n"] == old["n"] else
             f"with chapter 7's {_WORDS[new['n']]} seeds (and chapter 6's {_WORDS[old['n']]})")
            + f" it has {every[0]:.1f}, "
            f"and a gain of {every[1]:.1f} standard errors gets {p_text(every[2])}",
            _claim(every[2] == pytest.approx(new["p_value"]), "gets"),
            f"so read their intervals too ({_interval(rows['05'], ' to ')}, {_interval(new, ' to ')} and "
            f"{_interval(rows['08'], ' to ')} points)"]


def _not_shown_phrases():
    root = results.default_results_dir()
    # The seeds whose chapter-8 run continues chapter 7's run of the seed: what the epochs after 15 bought.
    budget = get_chapter("07").config.epochs
    pairs = [100 * (run.r8["test_accuracy"] - run.r7["test_accuracy"]) for run in _chapter_08_seeds()
             if run.shared == budget]
    from scipy import stats

    paired_p = stats.ttest_1samp(pairs, 0).pvalue
    phrases = [f"Its {_WORDS[len(pairs)]} seeds that repeat chapter 7's runs exactly gained "
               + ", ".join(f"{gain:+.1f}" for gain in pairs[:-1]) + f" and {pairs[-1]:+.1f} test points in the epochs "
               f"after {budget} (paired t-test, {p_text(paired_p)})"]
    # The control that repeats chapter 8's run up to its stop, and the momentum-0.99 recipe's one control.
    controls = _chapter_08_controls()
    c, old_control, old_run = controls.paired[0], controls.old_control, controls.old_run
    phrases += [f"(chapter 8's recipe without the rule, run to {c['ceiling']} epochs, seed {c['seed']})",
                f"the rule stopped chapter 8's seed-{c['seed']} run after {c['stop_epoch']} epochs",
                f"the control's last epoch scored {100 * c['control_test_accuracy']:.1f}% on the test set, against "
                f"{100 * c['test_accuracy']:.1f}% for the weights the rule kept",
                f"The rule saved {c['ceiling'] - c['stop_epoch']} epochs, and its weights scored "
                f"{100 * (c['control_test_accuracy'] - c['test_accuracy']):.1f} points lower",
                f"as they scored {100 * (old_control['test_accuracy'] - old_run['test_accuracy']):.1f} points lower in "
                "the one control of chapter 8's earlier recipe",
                _claim(c["control_test_accuracy"] > c["test_accuracy"]
                       and old_control["test_accuracy"] > old_run["test_accuracy"],
                       "neither exact pair shows it bought accuracy")]
    apart, rule = controls.apart, controls.rule  # another kind of machine: no pair
    saved = [control["ceiling"] - control["stop_epoch"] for control in controls.all]
    phrases += [f"The controls for seeds {' and '.join(str(a['seed']) for a in apart)} ran on another kind of "
                "machine than chapter 8's runs of those seeds, so they differ from those runs from the first epoch and "
                "compare only as other seeds (" + ", and ".join(f"{100 * a['control_test_accuracy']:.1f}% against "
                                          f"{100 * a['test_accuracy']:.1f}%" for a in apart) + ")",
                f"Over the {_WORDS[len(controls.all)]} seeds with a control the rule's kept weights scored "
                f"{100 * rule['gain']:+.1f} points against the controls' last epochs, {rule['verdict']} "
                f"({p_text(rule['p_value'])})",
                _claim(rule["verdict"] == "not shown", "three seeds cannot tell what it did to accuracy from noise"),
                _claim(rule["verdict"] == "not shown", f"the control runs show the rule saving {min(saved)} to "
                       f"{max(saved)} epochs with no effect on accuracy that three seeds can show")]
    calibration = {row["chapter"]: row for row in results.read_json(root / "09" / "calibration.json")["models"]}
    c8, c11 = calibration["08"], calibration["11"]
    phrases += [f"(ECE) of chapter 8's seed-{c8['seed']} model at {100 * c8['ece_before']:.1f}%",
                _claim(c8["seed"] == c11["seed"], "Each is one model of one seed"),
                _claim(c8["mean_confidence_before"] > c8["accuracy_before"], "it is overconfident"),
                f"(T = {c8['temperature']:.2f}) brings that to {100 * c8['ece_after']:.1f}%",
                _claim(c8["accuracy_after"] == c8["accuracy_before"], "without changing a single prediction"),
                f"its mean confidence is {100 * c11['mean_confidence_before']:.1f}% at "
                f"{100 * c11['accuracy_before']:.1f}% accuracy, an ECE of {100 * c11['ece_before']:.1f}%, which "
                f"T = {c11['temperature']:.2f} brings to {100 * c11['ece_after']:.1f}%",
                _claim(c11["mean_confidence_before"] < c11["accuracy_before"], "errs the other way")]
    # Chapter 5's sweep, as "What to try next" reads it.
    sweep = ladder.load_lr_sweep()
    rows = ladder.lr_sweep_rows(sweep)
    without = sorted((row for row in rows if not row["batch_norm"]), key=lambda row: row["learning_rate"])
    with_bn = sorted((row for row in rows if row["batch_norm"]), key=lambda row: row["learning_rate"])
    stuck = [row["learning_rate"] for row in without if row["diverged"]]
    best = {name: max(group, key=lambda row: row["val_accuracy"])["learning_rate"]
            for name, group in (("with", with_bn), ("without", without))}
    phrases += [f"stuck near chance from a learning rate of {min(stuck):g} up",
                _claim(not any(row["diverged"] for row in with_bn), "trained at every rate"),
                f"after {sweep['epochs']} epochs on {sweep['subset']:,} images both did best at {best['with']:g}",
                _claim(best["with"] == best["without"], "both did best")]
    return [" ".join(phrase.split()) for phrase in phrases]


@pytest.mark.parametrize("phrases", [_conclusion_phrases, _cost_phrases, _stale_statistics_phrases,
                                     _not_shown_phrases, _welch_phrases],
                         ids=["seed-study", "costs", "stale-statistics", "not-shown", "welch"])
def test_conclusion_quotes_the_records(phrases):
    text = " ".join(_markdown("10").split())
    missing = [phrase for phrase in phrases() if phrase not in text]
    assert not missing, f"chapter 10 no longer says what the records do: {missing}"


def test_conclusion_generates_tables_not_sentences():
    """The prose is written by hand: no cell builds Markdown sentences from the records."""
    import nbformat

    from cifar_lessons.book.chapters import get_chapter

    cells = nbformat.read(get_chapter("10").notebook, as_version=4).cells
    code = [cell.source for cell in cells if cell.cell_type == "code"]
    assert not [source for source in code if "Markdown(" in source and "accuracy_table_markdown" not in source]
