"""Chapter 10's sentences and rows, written from the run records: what each technique did, the seed study,
the learning-rate sweep's finding, and how chapter 11 compares (Chapter 10).
"""

from __future__ import annotations

from pathlib import Path

from ..going_further.race import race_path, race_summary
from ..results import RecordError, cpu_name, learning_rate_drops, load_record
from . import chapters
from .chapters import get_chapter
from .ladder import kept_epoch, lr_sweep_rows, machine_key
from .report import comparison_rows
from .runs import chapter_status, recorded_history, run_dir_for
from .seeds import NO_VERDICT, NOT_SHOWN, gain_text, mean_sd, p_text, percent, seed_summary, verdict_text


def technique_effects(results_dir: Path | None = None) -> list[dict]:
    """Per recorded training chapter: what it changed, and what that did to accuracy, time and overfitting (Chapter 10).

    Each entry extends a ``comparison_rows`` row with ``changes`` (config fields changed since the previous
    training chapter, as (old, new)), ``time_ratio`` (wall time over the previous chapter's), ``kept_epoch``,
    ``train_accuracy``/``val_accuracy``/``gap`` at that epoch (train minus validation accuracy; the training
    accuracy is measured with augmentation and dropout active), the validation accuracy at the last epoch,
    the highest validation accuracy of any epoch, and the learning-rate cuts (``lr_cuts``: the epochs that
    trained at a lower rate than the epoch before). Accuracy and gain are means over seeds; times, gaps and
    curves are the main run's. ``same_machine`` says whether the main runs of this chapter and the previous
    one ran on one machine (CPU, flags, cores, TensorFlow); ``time_ratio`` is None when they did not, since
    wall times from different machines do not compare.
    """
    effects, previous = [], None
    for row in comparison_rows(results_dir):
        record = row["record"]
        if record is None:
            previous = None  # a missing chapter breaks the chain, as in comparison_rows
            continue
        history = recorded_history(row["id"], results_dir) or {}
        kept = kept_epoch(record)
        rates = history.get("learning_rate", [])
        effect = dict(row)
        config_type = type(get_chapter(row["id"]).config)
        same_recipe = previous is not None and isinstance(get_chapter(previous["id"]).config, config_type)
        effect.update({
            # Chapter 11 is a recipe of its own: its change against chapter 8 is the whole recipe, not fields.
            "changes": (config_type.from_dict(record["config"]).changes_from(
                config_type.from_dict(previous["record"]["config"])) if same_recipe else {}),
            "same_recipe": same_recipe,
            "previous_id": previous["id"] if previous else None,
            "previous_record": previous["record"] if previous else None,
            "same_machine": previous is not None and machine_key(record) == machine_key(previous["record"]),
            "time_ratio": (record["wall_time_s"] / previous["record"]["wall_time_s"]
                           if previous and machine_key(record) == machine_key(previous["record"]) else None),
            "kept_epoch": kept,
            "train_accuracy": history["accuracy"][kept - 1] if history else None,
            "val_accuracy": history["val_accuracy"][kept - 1] if history else None,
            "last_val_accuracy": history["val_accuracy"][-1] if history else None,
            "best_val_accuracy": max(history["val_accuracy"]) if history else None,
            "gap": history["accuracy"][kept - 1] - history["val_accuracy"][kept - 1] if history else None,
            "lr_cuts": learning_rate_drops(history) if rates else [],
            "final_learning_rate": rates[-1] if rates else None,
        })
        effect["previous_gap"] = previous["gap"] if previous else None
        effects.append(effect)
        previous = effect
    return effects


def _names(keys) -> str:
    keys = [f"`{key}`" for key in keys]
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def _gain_with_verdict(effect: dict) -> str:
    """'+6.0 ± 0.5 points over chapter 01 (verdict: helps)', from a technique_effects entry."""
    text = f"{100 * effect['gain']:+.1f}"
    if effect["gain_se"] is not None:
        text += f" ± {100 * effect['gain_se']:.1f}"
    verdict = ("a single seed on one side: no verdict yet" if effect["verdict"] == NO_VERDICT
               else f"verdict: {verdict_text(effect)}")
    return f"{text} points over chapter {effect['previous_id']} ({verdict})"


def effect_sentence(effect: dict) -> str:
    """What one chapter's change did, in words and numbers from its records (Chapter 10)."""
    text = (f"**{effect['id']} {effect['title']}** ({effect['technique']}): {percent(effect['test_accuracy'])} "
            f"mean test accuracy ({effect['n']} seed{'s' if effect['n'] != 1 else ''})")
    if effect["previous_id"] is None:
        return text + f"; the main run took {effect['wall_time_s'] / 60:.1f} min, the starting point."
    text += f", {_gain_with_verdict(effect)}. "
    if effect["time_ratio"] is not None:
        text += (f"Its main run took {effect['time_ratio']:.1f}x the previous chapter's wall time "
                 f"({effect['wall_time_s'] / 60:.1f} min). ")
    else:
        this, other = _machine_names(effect["record"], effect["previous_record"])
        text += (f"Its main run ({effect['wall_time_s'] / 60:.1f} min) ran on a different machine from chapter "
                 f"{effect['previous_id']}'s ({this} against {other}), so their wall times do not compare. ")
    if effect["gap"] is not None and effect["previous_gap"] is not None:
        text += (f"The main run's train-validation gap at the kept epoch went from {100 * effect['previous_gap']:.1f} "
                 f"to {100 * effect['gap']:.1f} points. ")
    changes = effect["changes"]
    if not effect.get("same_recipe", True):
        text += ("It replaces the whole recipe rather than changing one technique, so this gain belongs to the "
                 "recipe as a whole. ")
    if "epochs" in changes:
        old, new = changes["epochs"]
        others = [key for key in changes if key != "epochs"]
        text += (f"It changed {_names(others)} and also the epoch ceiling, from {old} to {new}, and its main run "
                 f"ran {effect['epochs']} epochs: its gain mixes the technique with the longer training "
                 f"(chapter {effect['id']} separates them). ")
    if effect["record"]["config"].get("early_stopping"):
        kept, last = effect["val_accuracy"], effect["last_val_accuracy"]
        comparison = "lower than" if kept < last else "higher than" if kept > last else "equal to"
        text += (f"Restoring the best weights (lowest validation loss) kept epoch {effect['kept_epoch']}, whose "
                 f"validation accuracy ({kept:.2%}) is {comparison} the last epoch's (epoch {effect['epochs']}, "
                 f"{last:.2%}). ")
    if "reduce_lr" in changes and effect["lr_cuts"]:
        cuts = len(effect["lr_cuts"])
        text += (f"The learning rate was cut {cuts} time{'s' if cuts > 1 else ''}, first after epoch "
                 f"{effect['lr_cuts'][0] - 1}. ")
    return text.strip()


def _machine_names(first: dict, second: dict) -> tuple[str, str]:
    """Two records' machines, named so that they differ: the CPU, and its speed-relevant flags and the
    TensorFlow version where the CPU names alone are equal (Chapter 10)."""
    def name(record, detail):
        hardware = record["hardware"]
        if not detail:
            return hardware["cpu"]
        flags = " ".join(hardware.get("cpu_flags", ())) or "no flags recorded"
        return f"{cpu_name(hardware)} ({flags}; TensorFlow {record['versions']['tensorflow']})"

    detail = first["hardware"]["cpu"] == second["hardware"]["cpu"]
    return name(first, detail), name(second, detail)


def going_further_sentence(results_dir: Path | None = None) -> str:
    """What the book says about its 'Going further' chapter: its recorded result if any ('' if no such chapter).

    (Chapter 10)
    """
    chapter = next((c for c in chapters.CHAPTERS if c.slug == "going_further"), None)
    if chapter is None:
        return ""
    text = f"Chapter {int(chapter.id)}, *{chapter.title}*, goes further ({chapter.technique})"
    if chapter.trains:
        record = chapter_status(chapter, results_dir)["record"]
    else:  # a chapter outside the one-technique chain may still keep a record in results/NN
        try:
            record = load_record(run_dir_for(chapter, results_dir))
        except RecordError:
            record = None
    if record is None:
        return text + "; it has no recorded run here yet."
    final = [c for c in chapters.CHAPTERS if c.trains and c.id < chapter.id]
    summary = seed_summary(chapter, results_dir) if chapter.trains else None
    accuracy = mean_sd(summary) if summary and summary["n"] >= 2 else percent(record["test_accuracy"])
    seeds = f" (mean of {summary['n']} seeds)" if summary and summary["n"] >= 2 else ""
    text += f": it reached {accuracy} test accuracy{seeds} in {record['epochs_run']} epochs"
    reference = seed_summary(final[-1], results_dir) if final else None
    if reference and reference["n"]:
        text += f", against {mean_sd(reference)} for chapter {final[-1].id}"
    race = _race_sentence(results_dir)
    return text + "." + (f" {race}" if race else "")


def _race_sentence(results_dir: Path | None = None) -> str:
    """The race of chapter 11 against chapter 8 on one machine, as a sentence ('' if it was not run) (Chapter 10)."""
    if not race_path(results_dir).is_file():
        return ""
    race = race_summary(results_dir)
    if "ratio_cpu" not in race:
        return f"In its race on one machine, chapter {race['baseline_run']} never reached the target."
    return (f"In a race on one machine, its slowest run took {race['ratio_cpu']:.2f}x the CPU time and "
            f"{race['ratio_wall']:.2f}x the wall time that chapter 8 ({race['baseline_run']}) needed to first "
            f"reach {race['target']:.0%} validation accuracy.")


def seed_study_text(results_dir: Path | None = None) -> str:
    """What the seed study says so far: the spread between seeds and each comparison's verdict (Chapter 10)."""
    rows = [row for row in comparison_rows(results_dir) if row["n"]]
    spread = [row for row in rows if row["std"] is not None]
    if not spread:
        return "No chapter has two seeds yet, so the records cannot measure the noise between seeds."
    low, high = min(spread, key=lambda row: row["std"]), max(spread, key=lambda row: row["std"])
    text = (f"Between seeds, a chapter's test accuracy has a standard deviation of {100 * low['std']:.1f} "
            f"(chapter {low['id']}) to {100 * high['std']:.1f} points (chapter {high['id']}), over the "
            f"{len(spread)} chapters with two or more seeds.")
    groups = {}
    for row in rows:
        if row["verdict"] is not None:
            groups.setdefault(row["verdict"], []).append(row)

    def listing(group):
        return "; ".join(f"{row['title'].lower()} (chapter {row['id']}, {gain_text(row)} points, "
                         f"{p_text(row['p_value']) or 'one seed'})" for row in group)

    for verdict, meaning in (("helps", "The seeds support a gain for"),
                             ("hurts", "The seeds support a loss for"),
                             (NOT_SHOWN, "Not shown by the seeds (p ≥ 0.05):")):
        if verdict in groups:
            text += f" {meaning} {listing(groups[verdict])}."
    if NO_VERDICT in groups:
        text += (f" No verdict yet, because a chapter or the one before it has a single seed: "
                 f"{listing(groups[NO_VERDICT])}.")
    return text


def lr_sweep_finding(sweep: dict) -> str:
    """What chapter 5's learning-rate sweep found, in one or two sentences for the conclusion (Chapter 10)."""
    rows = lr_sweep_rows(sweep)
    by_bn = {flag: sorted((row for row in rows if row["batch_norm"] is flag), key=lambda row: row["learning_rate"])
             for flag in (True, False)}
    if not by_bn[True] or not by_bn[False]:
        return ""

    def stuck(group):
        rates = [row["learning_rate"] for row in group if row["diverged"]]
        return f"was stuck near chance from learning rate {min(rates):g} up" if rates else "trained at every rate"

    best = {flag: max(group, key=lambda row: row["val_accuracy"]) for flag, group in by_bn.items()}
    pairs = {row["learning_rate"]: row for row in by_bn[False]}
    ahead = sum(row["val_accuracy"] > pairs[row["learning_rate"]]["val_accuracy"]
                for row in by_bn[True] if row["learning_rate"] in pairs)
    rates = ", ".join(f"{row['learning_rate']:g}" for row in by_bn[True])
    where = ("the same rate as" if best[True]["learning_rate"] == best[False]["learning_rate"]
             else "a higher rate than" if best[True]["learning_rate"] > best[False]["learning_rate"]
             else "a lower rate than")
    return (f"In chapter 5's sweep ({sweep['epochs']} epochs on {sweep['subset']:,} images, rates {rates}), the "
            f"network without batch normalization {stuck(by_bn[False])}, the one with it {stuck(by_bn[True])}; "
            f"with it the network was ahead at {ahead} of {len(pairs)} rates, and did best at "
            f"{best[True]['learning_rate']:g} ({percent(best[True]['val_accuracy'])} validation accuracy), {where} "
            f"without it ({best[False]['learning_rate']:g}, {percent(best[False]['val_accuracy'])}).")
