"""What chapter 8 says in words must hold for its committed run records: the seeds that repeat chapter 7's runs
for its 15 epochs gained what the epochs after 15 bought (a paired t-test); the seed that ran on another machine
parts from epoch 1; the stopping rule replayed on every seed; the control runs without the rule and the rule's
verdict over them; longer patiences replayed on the control that repeats the chapter's run."""

from __future__ import annotations

from claims_support import _WORDS, _chapter_08_controls, _chapter_08_seeds, _claim, _markdown
from scipy import stats

from cifar_lessons import results
from cifar_lessons.book import ladder, report
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.book.runs import recorded_history
from cifar_lessons.book.seeds import p_text


def _history(chapter_id):
    history = recorded_history(chapter_id)
    assert history is not None, f"chapter {chapter_id} has no current recorded run"
    return history


def _chapter_08_pair_phrases():
    """The seeds that repeat chapter 7's runs (the pairs), the seed that parts from epoch 1, and the kept epoch
    against the last on validation accuracy: the pairs paragraph and the summary."""
    budget, runs = get_chapter("07").config.epochs, _chapter_08_seeds()
    paired = [run for run in runs if run.shared == budget]
    apart = [run for run in runs if run.shared == 0]
    main = runs[0]
    kept = main.r8["best_epoch"]
    restore = [run.h8["val_accuracy"][-1] - run.h8["val_accuracy"][run.r8["best_epoch"] - 1] for run in runs]
    higher = [change for change in restore if change > 0]  # runs whose last epoch beat the kept one on validation
    higher_runs = (f"In all {_WORDS[len(runs)]} runs" if len(higher) == len(runs) else
                   f"In {_WORDS[len(higher)]} of the {_WORDS[len(runs)]} runs")
    gains = [f"{100 * (run.r8['test_accuracy'] - run.r7['test_accuracy']):+.1f}" for run in paired]
    listed = ", ".join(f"{g} for seed {run.seed}" for g, run in zip(gains[1:-1], paired[1:-1]))
    cuts_after = {len([cut for cut in results.learning_rate_drops(run.h8) if budget < cut <= run.r8["best_epoch"]])
                  for run in paired}
    test = stats.ttest_1samp([run.r8["test_accuracy"] - run.r7["test_accuracy"] for run in paired], 0)
    low, high = test.confidence_interval()
    mean_gain = 100 * sum(run.r8["test_accuracy"] - run.r7["test_accuracy"] for run in paired) / len(paired)
    verdict = "helps" if test.pvalue < 0.05 else "not shown"
    gain_of_means = next(row["gain"] for row in report.comparison_rows() if row["id"] == "08")
    difference_of_means = sum(run.r8["test_accuracy"] - run.r7["test_accuracy"] for run in runs) / len(runs)
    phrases = [
        _claim([run.seed for run in paired if run.vendors == {"Intel(R)"}] == [0, 1]
               and [run.seed for run in paired if run.vendors == {"AMD"}] == [3, 4],
               "Seeds 0 and 1 ran on Intel machines, as chapter 7's did, and seeds 3 and 4 ran on one AMD machine for "
               "both chapters"),
        f"Each of these {_WORDS[len(paired)]} repeats chapter 7's run of its seed for all {budget} epochs",
        f"{gains[0]} points on the test set for seed {paired[0].seed}, {listed} and {gains[-1]} for seed "
        f"{paired[-1].seed}",
        _claim(cuts_after == {2, 3}, "cut the learning rate two or three more times before the kept epoch"),
        f"(for seed 0, to {main.h8['learning_rate'][kept - 1]:.2g})",
        f"for seed 0 from {main.h8['val_accuracy'][budget - 1]:.1%} after epoch {budget} to "
        f"{main.h8['val_accuracy'][kept - 1]:.1%} at the kept epoch",
        f"the {_WORDS[len(paired)]} gains average {mean_gain:+.1f} points, {verdict} (paired t-test, "
        f"{p_text(test.pvalue)}; the pairs allow {100 * low:+.1f} to {100 * high:+.1f} points)",
        # The means' gain is the average of every seed's gain, when both chapters have the same seeds.
        _claim(abs(difference_of_means - gain_of_means) < 1e-6,
               f"The {100 * difference_of_means:+.1f} between the seed means is the average of these "
               f"{_WORDS[len(paired)]} gains and seed {apart[0].seed}'s "
               f"{100 * (apart[0].r8['test_accuracy'] - apart[0].r7['test_accuracy']):+.1f}"),
        _claim([run.seed for run in apart] == [2] and apart[0].vendors == {"AMD", "Intel(R)"},
               "Seed 2 ran on an AMD machine and shares no epoch with chapter 7's Intel run"),
        _claim(apart and apart[0].r8["test_accuracy"] < apart[0].r7["test_accuracy"], "even scored below chapter 7's"),
        f"({apart[0].r8['test_accuracy']:.1%} against {apart[0].r7['test_accuracy']:.1%})" if apart else "",
        f"{higher_runs} the last epoch had a higher validation accuracy than the kept epoch",
        "by " + ", ".join(f"{100 * change:.2f}" for change in higher[:-1]) + f" and {100 * higher[-1]:.2f} points",
        *(f"in seed {run.seed}'s it was {100 * -change:.2f} points lower" for run, change in zip(runs, restore)
          if change <= 0),
        # The summary.
        f"gained {', '.join(gains[:-1])} and {gains[-1]} test points after epoch {budget}",
        f"{verdict} (paired t-test, {p_text(test.pvalue)})",
        f"{higher_runs.lower()} its validation accuracy was below the last",
    ]
    return [" ".join(phrase.split()) for phrase in phrases if phrase]


def _chapter_08_patience_phrases():
    """The stopping rule replayed on the recorded histories: patiences 2 to 5 on the validation loss for the main
    run and every seed, and exercise 2's rule on the validation accuracy."""
    runs = _chapter_08_seeds()
    main = runs[0]
    cuts, kept = results.learning_rate_drops(main.h8), main.r8["best_epoch"]
    loss_3, accuracy_3 = (ladder.replay_early_stopping(main.h8[key], 3, mode=mode)["stopped_after"]
                          for key, mode in (("val_loss", "min"), ("val_accuracy", "max")))
    unfired = [patience for patience in (4, 5)
               if ladder.replay_early_stopping(main.h8["val_accuracy"], patience, mode="max")["stopped_after"] is None]

    def patience(run, value):  # the rule replayed on a run's validation loss
        return ladder.replay_early_stopping(run.h8["val_loss"], value)

    short = [run for run in runs if any(patience(run, p)["kept_epoch"] != run.r8["best_epoch"] for p in (3, 4))]
    phrases = [
        f"with 3 earlier (after epoch {accuracy_3} against {loss_3})",
        _claim(unfired == [4, 5], "with 4 or 5 it does not fire within the recorded epochs"),
        f"Patience 2 stops after epoch {patience(main, 2)['stopped_after']}",
        _claim(patience(main, 2)["stopped_after"] == cuts[0] - 1, "just before the first cut would have taken effect"),
        _claim(all(patience(main, p)["kept_epoch"] == kept for p in (3, 4, 5)),
               f"Patiences 3 to 5 all keep epoch {kept}, and here a patience of 3 would have returned the same "
               f"weights {_WORDS[patience(main, 5)['stopped_after'] - patience(main, 3)['stopped_after']]} epochs "
               "sooner"),
        f"in {_WORDS[len(runs) - len(short)]} of the {_WORDS[len(runs)]} seeds patiences 3 to 5 keep the same epoch",
    ]
    for run in short:  # seeds where patience 3 or 4 stops before the epoch that patience 5 keeps
        early, best = patience(run, 3)["kept_epoch"], run.r8["best_epoch"]
        stalled = patience(run, 3)["stopped_after"] - early + 1  # epochs without a lower loss, before the new best
        cuts = [cut for cut in results.learning_rate_drops(run.h8) if early < cut <= early + stalled + 1]
        accuracy = run.h8["val_accuracy"]
        phrases += [
            _claim(patience(run, 4)["kept_epoch"] == early and len(cuts) == 2,
                   f"but not in seed {run.seed}. There the validation loss did not beat epoch {early}'s for "
                   f"{_WORDS[stalled]} epochs, until the learning-rate cuts at epochs {cuts[0]} and {cuts[-1]} paid "
                   f"off at epoch {early + stalled + 1}. Patiences 3 and 4 stop after epoch "
                   f"{patience(run, 3)['stopped_after']} or {patience(run, 4)['stopped_after']} and keep epoch {early} "
                   f"({accuracy[early - 1]:.2%} validation accuracy); patience 5 waits and keeps epoch {best} "
                   f"({accuracy[best - 1]:.2%})"),
            f"on seed {run.seed}, patiences 3 and 4 stop before a learning-rate cut paid off, "  # the summary
            f"{100 * (accuracy[best - 1] - accuracy[early - 1]):.1f} validation points short of patience 5"]
    return [" ".join(phrase.split()) for phrase in phrases]


def _chapter_08_control_phrases():
    """The control section and its summary line: each control that repeats the chapter's run up to the stop, and
    the momentum-0.99 recipe's control (results/08/momentum0.99/control)."""
    from cifar_lessons.book.runs import control_run_dir

    controls = _chapter_08_controls()
    paired, old_control, old_run = controls.paired, controls.old_control, controls.old_run
    c = paired[0]
    saved, seed, cost = c["ceiling"] - c["stop_epoch"], c["seed"], c["control_test_accuracy"] - c["test_accuracy"]
    history = results.read_json(control_run_dir(get_chapter("08"), seed) / results.HISTORY_FILE)
    old_cost = old_control["test_accuracy"] - old_run["test_accuracy"]
    return [
        f"Seed {seed}'s control trained on the machine that recorded the chapter's seed-{seed} run and repeats that "
        f"run for all {c['stop_epoch']} epochs the rule let it train, so its epochs from {c['stop_epoch'] + 1} on",
        f"In those {saved} epochs, at learning rates falling to the scheduler's floor of "
        f"{min(history['learning_rate']):.0e}",
        f"its validation accuracy went from {c['control_val_at_stop']:.2%} to {c['control_val_last']:.2%} (its best, "
        f"{c['control_val_best']:.2%}, at epoch {c['control_best_epoch']})",
        f"Its last-epoch weights scored {c['control_test_accuracy']:.2%} on the test set, against "
        f"{c['test_accuracy']:.2%} for the weights the rule kept",
        f"the rule saved {saved} epochs ({c['saved_wall_s'] / 60:.0f} min of this run's wall-clock time), and its "
        f"weights scored {100 * cost:.1f} points lower",
        _claim(cost > 0 and old_cost > 0, "retraining points the same way with its one control"),
        f"{old_control['epochs_run'] - old_run['epochs_run']} epochs saved, {100 * old_cost:.1f} points lower",
        f"its last epoch scored {100 * cost:.1f} test points above the weights the rule kept, {saved} epochs later",
    ] + _chapter_08_apart_phrases(controls)


def _chapter_08_apart_phrases(controls):
    """The controls of seeds whose chapter-8 run trained on another kind of machine, and the rule's verdict over
    every seed with a control."""
    from cifar_lessons.book.runs import control_run_dir, run_dir_for_seed
    from cifar_lessons.book.seeds import p_text

    apart, rule = controls.apart, controls.rule
    vendors = [[results.load_record(folder)["hardware"]["cpu"].split()[0] for folder in
                (control_run_dir(get_chapter("08"), a["seed"]), run_dir_for_seed(get_chapter("08"), a["seed"]))]
               for a in apart]
    seeds_named = " and ".join(str(a["seed"]) for a in apart)
    phrases = [_claim(len(apart) == 2 and all(v == ["AMD", "Intel(R)"] for v in vendors),
                      f"Seeds {seeds_named} cannot be read that way. Their controls trained on an AMD machine and "
                      "the chapter's runs of those seeds on Intel ones"),
               _claim(sorted(a["control_test_accuracy"] > a["test_accuracy"] for a in apart) == [False, True],
                      "One control lost to the rule's weights, one beat them")]
    phrases += [f"{a['control_test_accuracy']:.2%} for seed {a['seed']}'s control against {a['test_accuracy']:.2%}"
                for a in apart]
    low, high = rule["interval"]
    saved = [c["ceiling"] - c["stop_epoch"] for c in controls.all]
    phrases += [f"Over the {_WORDS[len(controls.all)]} seeds with a control, the weights the rule kept scored "
                f"{controls.kept_mean:.2%} on average and the controls' last epochs {controls.last_mean:.2%}: "
                f"{100 * rule['gain']:+.1f} points, {rule['verdict']} (Welch's t-test, {p_text(rule['p_value'])}); "
                f"the seeds allow anything from {100 * low:+.1f} to {100 * high:+.1f} points",
                _claim(rule["verdict"] == "not shown", "So three seeds cannot tell the rule's effect on accuracy from "
                       f"noise: it could be anything from {100 * low:+.1f} to {100 * high:+.1f} points"),
                f"The time it saved is plain: {min(saved)} to {max(saved)} epochs of {controls.all[0]['ceiling']}",
                f"Over the {_WORDS[len(controls.all)]} seeds with a control the rule's weights scored "
                f"{100 * rule['gain']:+.1f} points against the controls' last epochs, {rule['verdict']} "
                f"(Welch's t-test, {p_text(rule['p_value'])})",
                f"and it saved {min(saved)} to {max(saved)} epochs"]
    paired_p = stats.ttest_rel(controls.kept, controls.last).pvalue  # each control shares its run's seed
    phrases += [_claim(paired_p >= 0.05, "Paired by seed the test says the same") + f" ({p_text(paired_p)})"]
    return phrases


def _chapter_08_longer_patience_phrases():
    """The patience replay on the control that repeats the chapter's run up to the stop (exact to 50 epochs), and
    what the kept epoch's validation accuracy and the validation images say."""
    from cifar_lessons.book.runs import control_run_dir

    c = _chapter_08_controls().paired[0]
    history = results.read_json(control_run_dir(get_chapter("08"), c["seed"]) / results.HISTORY_FILE)
    replays = {p: ladder.replay_early_stopping(history["val_loss"], p) for p in range(5, 12)}
    same = [p for p, r in replays.items() if r["kept_epoch"] == c["kept_epoch"] and p > 5]
    later = [p for p, r in replays.items() if r["kept_epoch"] != c["kept_epoch"]]
    first = replays[later[0]]
    kept, new = c["kept_epoch"], first["kept_epoch"]
    accuracy = history["val_accuracy"]
    gain = 100 * (accuracy[new - 1] - accuracy[kept - 1])
    waited = new - kept - 1  # epochs without a lower validation loss before the new best
    cuts = [cut for cut in results.learning_rate_drops(history) if kept < cut <= new]
    runs = _chapter_08_seeds()
    validation = get_chapter("08").config.validation_size
    images = [abs(round(validation * (run.h8["val_accuracy"][-1] - run.h8["val_accuracy"][run.r8["best_epoch"] - 1])))
              for run in runs]
    return [
        _claim(same == [6, 7], f"Patiences 6 and 7 would have stopped seed {c['seed']}'s run one or two epochs later "
                               f"and kept the same epoch {kept}"),
        f"From patience {later[0]} on, the rule outwaits the {_WORDS[waited]} epochs without a lower validation loss "
        f"after epoch {kept} (the scheduler cut the learning rate {_WORDS[len(cuts)]} times in them), finds a new best "
        f"at epoch {new}, stops after epoch {first['stopped_after']} and keeps epoch {new}, whose validation accuracy "
        f"is {accuracy[new - 1]:.2%} against {accuracy[kept - 1]:.2%} at epoch {kept}",
        f"about {gain:.1f} validation points for {first['stopped_after'] - c['stop_epoch']} more epochs",
        f"patience {later[0]} or more would have kept a later epoch with {gain:.1f} more validation points",
        f"That is {min(images)} to {max(images)} of the {validation:,} validation images",
        "the runs' last epochs were never tested",
    ]


def test_chapter_8_credits_its_gain_to_the_epochs_after_chapter_7s_budget():
    phrases = _chapter_08_pair_phrases() + _chapter_08_patience_phrases() + [
        " ".join(phrase.split()) for phrase in _chapter_08_control_phrases() + _chapter_08_longer_patience_phrases()]
    missing = [phrase for phrase in phrases if phrase not in _markdown("08")]
    assert not missing, f"chapter 8's prose no longer follows its records: {missing}"


def test_chapter_8_patience_equal_to_the_schedulers_would_stop_before_the_first_cut():
    history, config = _history("08"), get_chapter("08").config
    replay = ladder.replay_early_stopping(history["val_loss"], config.reduce_lr_patience)
    assert replay["stopped_after"] < results.learning_rate_drops(history)[0]
