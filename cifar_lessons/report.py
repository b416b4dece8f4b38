"""Tables and comparisons built from the run records, never typed by hand.

Feeds ``cifar-lessons report``, the site's results page and the chapters' closing numbers.
"""

from __future__ import annotations

from pathlib import Path

from .book import chapter_status, recorded_history
from .chapters import BOOK_BUDGET_MINUTES, get_chapter, previous_training_chapter, training_chapters
from .results import cpu_name

# The seed study's statistics; the chapters also read them as report.NAME.
from .seeds import (  # noqa: F401
    ALPHA,
    NO_VERDICT,
    NOT_SHOWN,
    STANDARD_ERROR,
    VERDICT_RULE,
    compare_seeds,
    p_text,
    recorded_seeds,
    seed_folders,
    seed_run_status,
    seed_summary,
    verdict_text,
)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _mean_sd(summary: dict) -> str:
    """'85.9 ± 0.4%' over several seeds, '85.9%' for one, '-' for none."""
    if summary["mean"] is None:
        return "-"
    if summary["std"] is None:
        return _pct(summary["mean"])
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}%"


def _per_seed(summary: dict) -> str:
    """Test accuracy (%) of each seed: '85.9 · 86.2' for seeds 0, 1, ..., 'seed: value' when one is skipped."""
    pairs = list(zip(summary["seeds"], summary["values"]))
    if summary["seeds"] == list(range(len(pairs))):
        return " · ".join(f"{100 * value:.1f}" for _, value in pairs) or "-"
    return " · ".join(f"{seed}: {100 * value:.1f}" for seed, value in pairs)


def _gain_text(row: dict) -> str:
    if row["gain"] is None:
        return "-"
    if row["gain_se"] is None:
        return f"{100 * row['gain']:+.1f}"
    return f"{100 * row['gain']:+.1f} ± {100 * row['gain_se']:.1f}"


def comparison_rows(results_dir: Path | None = None) -> list[dict]:
    """One row per training chapter: mean test accuracy over seeds, gain vs the previous chapter, verdict,
    time of the main run (Chapter 10)."""
    rows, previous = [], None
    for chapter in training_chapters():
        summary = seed_summary(chapter, results_dir)
        record = summary["main"]["record"]
        comparison = compare_seeds(summary, previous) if previous else {
            "gain": None, "standard_error": None, "p_value": None, "interval": None, "verdict": None}
        rows.append({
            "id": chapter.id, "title": chapter.title, "technique": chapter.technique,
            "status": summary["status"], "test_accuracy": summary["mean"], "std": summary["std"],
            "n": summary["n"], "seeds": summary["seeds"], "values": summary["values"],
            "excluded": summary["excluded"], "summary": summary,
            "gain": comparison["gain"], "gain_se": comparison["standard_error"], "verdict": comparison["verdict"],
            "p_value": comparison["p_value"], "interval": comparison["interval"],
            "milestone": chapter.milestone,
            "epochs": record["epochs_run"] if record else None,
            "max_epochs": chapter.config.epochs,
            "wall_time_s": record["wall_time_s"] if record else None,
            "data": record["data"]["name"] if record else None,
            "fingerprint": record["data"]["fingerprint"] if record else None,
            "record": record,
        })
        previous = summary  # gains compare neighbours only: after a missing chapter there is none
    return rows


def accuracy_table_markdown(results_dir: Path | None = None) -> str:
    """Two tables, accuracy over seeds with verdicts and the main runs' cost, with the rule, the
    hardware and versions below them (Chapter 10)."""
    rows = comparison_rows(results_dir)
    lines = ["| Chapter | Test accuracy | Per seed (%) | Gain (pts) | Verdict |", "|---|---:|---|---:|---|"]
    for row in rows:
        status = "" if row["status"] == "ok" else f" ({row['status']})"
        lines.append(f"| {row['id']} {row['title']}{status} | {_mean_sd(row['summary'])} "
                     f"| {_per_seed(row['summary'])} | {_gain_text(row)} | {verdict_text(row)} |")
    counts = sorted({row["n"] for row in rows if row["n"]}) or [0]
    seeds_shown = str(counts[0]) if counts[0] == counts[-1] else f"{counts[0]} to {counts[-1]}"
    spread = (f"mean ± standard deviation over the recorded seeds ({seeds_shown} per chapter)" if counts[-1] > 1
              else "one seed per chapter so far, so no standard deviation and no verdict yet")
    lines += ["", f"Test accuracy: {spread}. "
              "Per seed: the test accuracy of seeds 0, 1, 2, ... in order (written `seed: value` where a seed is "
              "skipped); seed 0 is the chapter's main run, the others are in `results/NN/seedS/`. Gain: difference "
              f"of mean test accuracy from the previous chapter, ± its standard error {STANDARD_ERROR}. "
              f"Verdict: {VERDICT_RULE}."]
    excluded = [f"chapter {row['id']} seed {item['seed']}: {item['reason']}"
                for row in rows for item in row["excluded"]]
    if excluded:
        lines += ["", "Runs left out:", ""] + [f"- {item}." for item in excluded]

    lines += ["", "| Chapter | Technique | Milestone | Epochs | Wall time | Images/s |",
              "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        epochs = "-" if row["epochs"] is None else f"{row['epochs']} / {row['max_epochs']}"
        wall = "-" if row["wall_time_s"] is None else f"{row['wall_time_s'] / 60:.1f} min"
        speed = f"{row['record']['images_per_s']:.0f}" if row["record"] else "-"
        lines.append(f"| {row['id']} | {row['technique']} | {_pct(row['milestone'])} | {epochs} "
                     f"| {wall} | {speed} |")
    recorded = [row for row in rows if row["record"]]
    if recorded:
        total = sum(row["wall_time_s"] for row in recorded)
        lines += ["", "Milestone: the test-accuracy floor the test suite checks. Epochs (run / limit), wall time and "
                  "throughput: each chapter's main run. "
                  f"Total training time of the main runs: {total / 60:.0f} min for {len(recorded)} of {len(rows)} "
                  f"chapters (budget for the whole book: {BOOK_BUDGET_MINUTES} min). {_study_cost(rows)}"]
        # Chapters may be trained on different machines: each environment names its chapters.
        runs_by_environment = {}
        for row in recorded:
            runs_by_environment.setdefault(_environment(row["record"]), []).append((row["id"], None))
        for row in rows:
            for run in row["summary"]["runs"]:
                if run["record"] is not row["record"]:
                    runs_by_environment.setdefault(_environment(run["record"]), []).append((row["id"], run["seed"]))
        lines += ["", "Runs made on:", ""]
        for environment, ids in runs_by_environment.items():
            lines.append(f"- {_run_span(ids)}: {environment}.")
    return "\n".join(lines)


STUDY_SEEDS = 3  # the seed study's goal: at least this many seeds per training chapter


def _study_cost(rows: list[dict]) -> str:
    """What the recorded seed runs cost, and what completing the study would (from the main runs' times)."""
    extra = [run["record"] for row in rows for run in row["summary"]["runs"] if run["record"] is not row["record"]]
    spent = sum(record["wall_time_s"] for record in extra)
    text = (f"Seed study: {len(extra)} further run{'s' if len(extra) != 1 else ''} recorded "
            f"({spent / 60:.0f} min)." if extra else "Seed study: no further seed recorded yet.")
    missing = [(row, STUDY_SEEDS - row["n"]) for row in rows if row["n"] < STUDY_SEEDS]
    runs = sum(count for _, count in missing)
    if runs:
        known = [(row, count) for row, count in missing if row["wall_time_s"] is not None]
        estimate = sum(row["wall_time_s"] * count for row, count in known)
        unknown = runs - sum(count for _, count in known)
        text += (f" {STUDY_SEEDS} seeds per chapter need {runs} more, about {estimate / 60:.0f} min at the main "
                 f"runs' wall times"
                 + (f" (the {unknown} runs of chapters without a main run not counted)" if unknown else "")
                 + f" (`cifar-lessons study --seeds {' '.join(str(s) for s in range(STUDY_SEEDS))}`).")
    return text


def _run_span(runs: list[tuple]) -> str:
    """Main runs as a chapter span, then seed runs seed by seed: 'chapters 01-07; seed 1 of chapters 01-07'."""
    main = [chapter_id for chapter_id, seed in runs if seed is None]
    parts = [_chapter_span(main)] if main else []
    for seed in sorted({seed for _, seed in runs if seed is not None}):
        parts.append(f"seed {seed} of {_chapter_span([c for c, s in runs if s == seed])}")
    return "; ".join(parts)


def _chapter_span(ids: list[str]) -> str:
    """'chapter 08', 'chapters 01-07' for consecutive ids, else 'chapters 01, 03'."""
    if len(ids) == 1:
        return f"chapter {ids[0]}"
    numbers = [int(i) for i in ids]
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"chapters {ids[0]}-{ids[-1]}"
    return "chapters " + ", ".join(ids)


def _environment(record: dict) -> str:
    hardware, versions = record["hardware"], record["versions"]
    gpus = ", ".join(hardware["gpus"]) or "no GPU"
    precision = record.get("precision", record["config"]["precision"])  # records before "auto" lack the key
    flags = hardware.get("cpu_flags")  # tells two hosts with one CPU name apart (older records lack it)
    cpu = f"{cpu_name(hardware)} ({'flags ' + ' '.join(flags) if flags else 'CPU flags not recorded'})"
    return (f"{cpu}, {hardware['cores']} cores, {gpus}, {precision}; Python {versions['python']}, "
            f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}; data {record['data']['name']} "
            f"(fingerprint {record['data']['fingerprint']})")


def retraining_cost(chapter_id: str, results_dir: Path | None = None) -> str:
    """What retraining a chapter cost on the machine that recorded it, and how to try it quickly (Chapters 1-8)."""
    chapter = get_chapter(chapter_id)
    record = chapter_status(chapter, results_dir)["record"]
    if record is None:
        return (f"Chapter {chapter.id} has no recorded run yet: RETRAIN = True (or `cifar-lessons train "
                f"{chapter.id}`) trains it.")
    hardware, quick = record["hardware"], chapter.config.quick()
    epochs = f"{quick.epochs} epoch" + ("s" if quick.epochs != 1 else "")
    return (f"Retraining chapter {chapter.id} took {record['wall_time_s'] / 60:.1f} min on the recorded machine "
            f"({hardware['cpu']}, {hardware['cores']} cores, {record['precision']}): {record['epochs_run']} epochs "
            f"at {record['images_per_s']:.0f} images/s. Set QUICK = True in the parameters cell to try the recipe "
            f"on {quick.subset:,} images for {epochs} ({quick.subset * quick.epochs / record['images_per_s']:.1f} s "
            f"of training at that speed, plus start-up; recorded under quick/{chapter.id}, never as the chapter's "
            "result), or RETRAIN = True to train it in full.")


def chapter_gain(chapter_id: str, results_dir: Path | None = None) -> str:
    """What a chapter's technique bought: its mean test accuracy over seeds against the previous chapter's,
    the per-seed values and the verdict of VERDICT_RULE, as a sentence (Chapters 2-8)."""
    chapter = get_chapter(chapter_id)
    current = seed_summary(chapter, results_dir)
    if not current["n"]:
        return f"Chapter {chapter.id} has no recorded run yet: run `cifar-lessons train {chapter.id}`."
    record = current["main"]["record"]
    text = f"Chapter {chapter.id} ({chapter.technique}) reached a test accuracy of {_accuracy_phrase(current)}"
    if record is not None and current["main"]["status"] == "ok":
        text += f"; its main run took {record['epochs_run']} epochs ({record['wall_time_s'] / 60:.1f} min)"
    previous_chapter = previous_training_chapter(chapter)
    previous = seed_summary(previous_chapter, results_dir) if previous_chapter else None
    if previous is None or not previous["n"]:
        return text + "."
    comparison = compare_seeds(current, previous)
    gain = f"{100 * comparison['gain']:+.1f} points"
    if comparison["standard_error"] is not None:
        gain = f"{100 * comparison['gain']:+.1f} ± {100 * comparison['standard_error']:.1f} points (± standard error)"
    text += f". Against chapter {previous_chapter.id}'s {_accuracy_phrase(previous)}: {gain}. "
    if comparison["verdict"] == NO_VERDICT:
        seeds = " ".join(str(seed) for seed in range(STUDY_SEEDS))
        return text + (f"One seed: no verdict (a verdict needs two or more seeds of both chapters: "
                       f"`cifar-lessons study --seeds {seeds} --chapters {previous_chapter.id} {chapter.id}`).")
    if comparison["verdict"] == NOT_SHOWN:
        low, high = (100 * value for value in comparison["interval"])
        return text + (f"Verdict: not shown (Welch's t-test, {p_text(comparison['p_value'])}): the seeds cannot "
                       f"tell this difference from noise; they allow anything from {low:+.1f} to {high:+.1f} "
                       "points (95% confidence interval).")
    return text + f"Verdict: {comparison['verdict']} (Welch's t-test, {p_text(comparison['p_value'])})."


def chapter_verdict(chapter_id: str, results_dir: Path | None = None) -> dict:
    """A chapter's comparison with the previous one, for prose: ``gain``, ``standard_error`` (fractions or
    None), ``p_value``, ``interval``, ``verdict`` ('helps', NOT_SHOWN, 'hurts', NO_VERDICT or None) and the seed
    counts (Chapters 2-8)."""
    chapter = get_chapter(chapter_id)
    previous_chapter = previous_training_chapter(chapter)
    current = seed_summary(chapter, results_dir)
    if previous_chapter is None:
        return {"gain": None, "standard_error": None, "p_value": None, "interval": None, "verdict": None,
                "seeds": current["n"], "previous_seeds": 0}
    previous = seed_summary(previous_chapter, results_dir)
    return {**compare_seeds(current, previous), "seeds": current["n"], "previous_seeds": previous["n"]}


def verdict_sentence(chapter_id: str, results_dir: Path | None = None) -> str:
    """What the seed study says of a chapter against the previous one, as one sentence for prose (Chapters 5-8).

    Read from the records, so the chapters never state a direction the seeds do not support.
    """
    chapter = get_chapter(chapter_id)
    previous = previous_training_chapter(chapter)
    found = chapter_verdict(chapter_id, results_dir)
    if found["gain"] is None:
        return f"Chapter {chapter_id} has no recorded comparison with chapter {previous.id} yet."
    points = f"{100 * found['gain']:+.1f} points"
    def count(n):
        return f"{n} seed{'' if n == 1 else 's'}"

    seeds = (f"{count(found['seeds'])} of chapter {chapter_id} against {count(found['previous_seeds'])} "
             f"of chapter {previous.id}")
    if found["verdict"] in ("helps", "hurts", NOT_SHOWN):
        meaning = {"helps": f"{chapter.technique} helped within this budget",
                   "hurts": f"{chapter.technique} cost accuracy within this budget",
                   NOT_SHOWN: "the seeds cannot tell this difference from the noise between them"}[found["verdict"]]
        return (f"Over {seeds}, the mean test accuracy moved by {points} "
                f"(± {100 * found['standard_error']:.1f} standard error, Welch's t-test "
                f"{p_text(found['p_value'])}): {meaning}.")
    return (f"With {seeds}, the test accuracy moved by {points}; with a single seed on one side a difference "
            "of this size cannot be told from the noise between seeds, so the chapter claims no direction yet "
            f"(`cifar-lessons study --chapters {previous.id} {chapter_id}` adds seeds).")


def _accuracy_phrase(summary: dict) -> str:
    """'85.9% (one seed)' or '85.9 ± 0.4% (mean ± standard deviation of 3 seeds: 85.9, 86.2, 85.4)'."""
    if summary["n"] == 1:
        return f"{_pct(summary['mean'])} (one seed)"
    values = ", ".join(f"{100 * value:.1f}" for value in summary["values"])
    return f"{_mean_sd(summary)} (mean ± standard deviation of {summary['n']} seeds: {values})"


def validation_swing(chapter_id: str, results_dir: Path | None = None) -> str:
    """A chapter's validation accuracy at its last epoch and at its best one, as a sentence (Chapter 6)."""
    history = recorded_history(chapter_id, results_dir)
    if history is None:
        return f"Chapter {chapter_id} has no recorded run yet."
    values = history["val_accuracy"]
    best = max(range(len(values)), key=values.__getitem__)
    return (f"Chapter {chapter_id}: validation accuracy {_pct(values[-1])} at the last epoch ({len(values)}), "
            f"{_pct(values[best])} at its highest (epoch {best + 1}).")


def learning_rate_drops(history: dict) -> list[int]:
    """Epochs trained at a lower learning rate than the epoch before them (Chapter 7).

    The history logs, per epoch, the rate that epoch trained with, so a drop decided by
    ReduceLROnPlateau at the end of epoch ``e`` shows up at epoch ``e + 1``.
    """
    rates, epochs = history["learning_rate"], history["epoch"]
    return [epochs[i] for i in range(1, len(rates)) if rates[i] < rates[i - 1] * (1 - 1e-6)]


_CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")


def shared_epochs(first: dict, second: dict) -> int:
    """How many leading epochs two histories logged identically, every loss and accuracy equal (Chapter 7)."""
    count = 0
    for index in range(min(len(first["epoch"]), len(second["epoch"]))):
        if any(first[key][index] != second[key][index] for key in _CURVES):
            break
        count += 1
    return count


def _history_and_record(chapter_id: str, results_dir: Path | None):
    record = chapter_status(get_chapter(chapter_id), results_dir)["record"]
    history = recorded_history(chapter_id, results_dir)
    return (history, record) if history is not None else (None, None)


def schedule_experiment(without_id: str = "06", with_id: str = "07", results_dir: Path | None = None) -> dict | None:
    """The controlled experiment of Chapter 7: two runs identical until the first learning-rate drop.

    Returns the first drop, the identical epochs, and validation and test scores of both runs, or
    None when either chapter has no recorded run.
    """
    without, without_record = _history_and_record(without_id, results_dir)
    with_schedule, with_record = _history_and_record(with_id, results_dir)
    if without is None or with_schedule is None:
        return None
    drops = learning_rate_drops(with_schedule)
    last = min(len(without["epoch"]), len(with_schedule["epoch"]))
    return {
        "without": without_id, "with": with_id, "drops": drops,
        "first_drop": drops[0] if drops else None,
        "shared_epochs": shared_epochs(without, with_schedule), "last_epoch": last,
        "val_accuracy": {without_id: without["val_accuracy"][:last], with_id: with_schedule["val_accuracy"][:last]},
        "val_loss": {without_id: without["val_loss"][:last], with_id: with_schedule["val_loss"][:last]},
        "learning_rate": with_schedule["learning_rate"][:last],
        "test_accuracy": {without_id: without_record["test_accuracy"], with_id: with_record["test_accuracy"]},
        "same_machine": _machine(without_record) == _machine(with_record),
    }


def _machine(record: dict) -> tuple:
    hardware = record["hardware"]
    return cpu_name(hardware), tuple(hardware.get("cpu_flags", ())), hardware["cores"], record["versions"]["tensorflow"]


def schedule_experiment_text(without_id: str = "06", with_id: str = "07", results_dir: Path | None = None) -> str:
    """What the first learning-rate drop bought, as sentences generated from the two records (Chapter 7)."""
    exp = schedule_experiment(without_id, with_id, results_dir)
    if exp is None:
        return f"Chapters {without_id} and {with_id} need recorded runs for this comparison."
    drop, shared, last = exp["first_drop"], exp["shared_epochs"], exp["last_epoch"]
    if drop is None:
        return f"Chapter {with_id}'s learning rate never dropped: the two runs differ only by chance."
    val_acc, val_loss, test = exp["val_accuracy"], exp["val_loss"], exp["test_accuracy"]
    before = exp["learning_rate"][drop - 2]
    after = exp["learning_rate"][drop - 1]
    best_before = min(val_loss[with_id][:drop - 1])
    text = (f"Chapters {without_id} and {with_id} logged identical losses and accuracies for their first {shared} "
            f"epochs. ReduceLROnPlateau first cut the learning rate from {before:.2g} to {after:.2g} for epoch "
            f"{drop}, after the validation loss had not beaten its best ({best_before:.3f}) for "
            f"{get_chapter(with_id).config.reduce_lr_patience} epochs. ")
    if shared != drop - 1:
        text += (f"The runs were expected to agree until epoch {drop - 1}; they agree until epoch {shared}, so "
                 "part of the difference below is round-off, not the schedule. ")
    gain = test[with_id] - test[without_id]
    best_without = max(val_acc[without_id])
    beyond = ("already above" if val_acc[with_id][drop - 1] > best_without else "below")
    text += (f"From epoch {drop} on, only the schedule differs: at epoch {drop} the validation accuracy was "
             f"{_pct(val_acc[with_id][drop - 1])} with it against {_pct(val_acc[without_id][drop - 1])} without "
             f"({beyond} the best of chapter {without_id}'s {last} epochs, {_pct(best_without)}); "
             f"at epoch {last}, {_pct(val_acc[with_id][last - 1])} against {_pct(val_acc[without_id][last - 1])}, "
             f"with a validation loss of {val_loss[with_id][last - 1]:.3f} against "
             f"{val_loss[without_id][last - 1]:.3f}. "
             f"On the test set: {_pct(test[with_id])} against {_pct(test[without_id])}, "
             f"{100 * gain:+.1f} points, all of it arising in the {last - drop + 1} epochs from the first cut on.")
    return text


def epochs_to(history: dict, key: str, threshold: float) -> int | None:
    """The first epoch whose logged ``key`` (e.g. "accuracy") reached ``threshold``, or None (Chapter 5)."""
    for epoch, value in zip(history["epoch"], history[key]):
        if value >= threshold:
            return epoch
    return None


def generalization_gap(history: dict) -> list[float]:
    """Per epoch, training accuracy minus validation accuracy, as logged during training (Chapter 6).

    The training accuracy is the running mean over an epoch in training mode: with augmentation,
    dropout and batch statistics active, and while the weights still change.
    """
    return [train - val for train, val in zip(history["accuracy"], history["val_accuracy"])]


def gap_comparison(chapter_ids=("05", "06"), last: int = 5, results_dir: Path | None = None) -> list[dict]:
    """Each chapter's logged train-validation accuracy gap, at its last epoch and over its last ones (Chapter 6)."""
    rows = []
    for chapter_id in chapter_ids:
        history = recorded_history(chapter_id, results_dir)
        if history is None:
            continue
        gap = generalization_gap(history)
        tail = slice(-min(last, len(gap)), None)
        rows.append({"chapter": chapter_id, "last_gap": gap[-1], "mean_gap": sum(gap[tail]) / len(gap[tail]),
                     "epochs": len(gap), "tail": len(gap[tail]),
                     "train_accuracy": sum(history["accuracy"][tail]) / len(gap[tail]),
                     "val_accuracy": sum(history["val_accuracy"][tail]) / len(gap[tail])})
    return rows


def gap_comparison_text(chapter_ids=("05", "06"), last: int = 5, results_dir: Path | None = None) -> str:
    """:func:`gap_comparison` as one line per chapter (Chapter 6)."""
    rows = gap_comparison(chapter_ids, last, results_dir)
    if not rows:
        return "No recorded runs to compare."
    return "\n".join(
        f"Chapter {row['chapter']}: mean over the last {row['tail']} epochs, train {_pct(row['train_accuracy'])}, "
        f"validation {_pct(row['val_accuracy'])}, gap {100 * row['mean_gap']:.1f} points "
        f"(last epoch: {100 * row['last_gap']:.1f})" for row in rows)


def inference_gap(model, x_train, y_train, val_accuracy: float, sample: int = 5000, seed: int = 0) -> dict:
    """Training accuracy of the final weights in inference mode, against their validation accuracy (Chapter 6).

    Unlike the logged training accuracy this sees the training images without augmentation or
    dropout and with batch norm's running averages, as the validation images are seen, so the
    gap is the model's own. ``sample`` training images keep it to seconds on a CPU.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x_train), min(sample, len(x_train)), replace=False)
    # predict, not evaluate: a saved model is stored uncompiled (training.save_model).
    probabilities = model.predict(x_train[pick], batch_size=500, verbose=0)
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y_train[pick]))
    return {"train_accuracy": accuracy, "val_accuracy": float(val_accuracy),
            "gap": accuracy - float(val_accuracy), "train_sample": len(pick)}


def mode_gap_rows(chapter_ids, data, results_dir: Path | None = None, sample: int = 5000) -> list[dict]:
    """Each recorded chapter's last logged training accuracy and its final weights' in inference mode (Chapter 5).

    Loads each chapter's saved model and scores ``sample`` images of its training split, in seconds on a CPU.
    Chapters without a recorded run are left out.
    """
    from .book import run_dir_for
    from .training import load_run, prepare_data

    rows = []
    for chapter_id in chapter_ids:
        chapter = get_chapter(chapter_id)
        if chapter_status(chapter, results_dir)["status"] != "ok":
            continue
        run = load_run(run_dir_for(chapter, results_dir))
        x_train, y_train = prepare_data(chapter.config, data)["train"]
        scores = inference_gap(run.model, x_train, y_train, run.record["val_accuracy"], sample=sample)
        rows.append({"chapter": chapter_id, "logged_train_accuracy": run.history["accuracy"][-1], **scores})
    return rows


def mode_gap_text(rows: list[dict]) -> str:
    """:func:`mode_gap_rows` as one line per chapter (Chapter 5)."""
    if not rows:
        return "No recorded runs to measure."
    return "\n".join(
        f"Chapter {row['chapter']}: training accuracy {_pct(row['logged_train_accuracy'])} as logged in the last "
        f"epoch (training mode), {_pct(row['train_accuracy'])} for the final weights in inference mode "
        f"({row['train_sample']:,} training images); validation {_pct(row['val_accuracy'])}: a gap of "
        f"{100 * row['gap']:.1f} points" for row in rows)


def _improved(value: float, best: float | None, min_delta: float, mode: str) -> bool:
    """Keras' test for a new best: beyond the old best by more than ``min_delta``."""
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def replay_plateau(values, initial_lr: float, factor: float, patience: int, min_lr: float = 0.0,
                   min_delta: float = 1e-4, mode: str = "min") -> list[dict]:
    """ReduceLROnPlateau's rule replayed on recorded values of the monitored quantity (Chapter 7).

    One row per epoch: the value, the best so far, the epochs waited without a new best (the counter
    goes back to 0 after a cut), the learning rate the epoch trained with, and the rate the next epoch
    gets (as Keras 3 decides it, with no cooldown).
    """
    rows, best, wait, rate = [], None, 0, initial_lr
    for epoch, value in enumerate(values, start=1):
        row = {"epoch": epoch, "value": value, "learning_rate": rate}
        if _improved(value, best, min_delta, mode):
            best, wait = value, 0
        else:
            wait += 1
        row.update(best=best, wait=wait)
        if wait >= patience:
            if rate > min_lr:
                rate = max(rate * factor, min_lr)
            wait = 0
        rows.append({**row, "next_learning_rate": rate})
    return rows


def replay_early_stopping(values, patience: int, min_delta: float = 0.0, mode: str = "min") -> dict:
    """EarlyStopping's rule replayed on recorded values of the monitored quantity (Chapter 8).

    Until it fires, EarlyStopping changes nothing in training, so on a recorded run any rule that
    fires within the recorded epochs is replayed exactly. Returns the epoch it would stop after (None
    if it would not have fired within ``values``) and the epoch whose weights it would keep.
    """
    best, best_epoch, wait = None, None, 0
    for epoch, value in enumerate(values, start=1):
        wait += 1
        if _improved(value, best, min_delta, mode):
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 1:
            return {"stopped_after": epoch, "kept_epoch": best_epoch}
    return {"stopped_after": None, "kept_epoch": best_epoch}


def early_stopping_accounting(chapter_id: str = "08", results_dir: Path | None = None) -> dict | None:
    """What the stopping rule and the longer ceiling each did in a chapter's run (Chapter 8).

    Up to the epoch it stops, a run with EarlyStopping is the same run as one without it, so its own
    history already holds "the previous budget", "the kept epoch" and "the last epoch". What the
    epochs it never ran would have given needs a control run and is not estimated here.
    """
    chapter = get_chapter(chapter_id)
    history, record = _history_and_record(chapter_id, results_dir)
    if history is None:
        return None
    previous = previous_training_chapter(chapter)
    budget = previous.config.epochs  # the fixed epoch count chapter 7 trained for
    kept, ran, ceiling = record["best_epoch"], record["epochs_run"], chapter.config.epochs
    epoch_time = sum(history["epoch_time_s"]) / len(history["epoch_time_s"])
    previous_record = chapter_status(previous, results_dir)["record"]
    return {
        "chapter": chapter_id, "previous": previous.id, "previous_budget": budget,
        "ceiling": ceiling, "epochs_run": ran, "kept_epoch": kept, "patience": chapter.config.early_stopping_patience,
        "val_accuracy_at_budget": history["val_accuracy"][budget - 1] if ran >= budget else None,
        "val_accuracy_kept": history["val_accuracy"][kept - 1], "val_accuracy_last": history["val_accuracy"][-1],
        "val_loss_kept": history["val_loss"][kept - 1], "val_loss_last": history["val_loss"][-1],
        "best_val_accuracy": max(history["val_accuracy"]),
        "best_val_accuracy_epoch": history["val_accuracy"].index(max(history["val_accuracy"])) + 1,
        "epochs_saved": ceiling - ran, "mean_epoch_s": epoch_time,
        "minutes_saved_estimate": (ceiling - ran) * epoch_time / 60,
        "test_accuracy": record["test_accuracy"],
        "previous_test_accuracy": previous_record["test_accuracy"] if previous_record else None,
        "same_machine_as_previous": previous_record is not None and _machine(record) == _machine(previous_record),
        "learning_rate_last": history["learning_rate"][-1],
    }


def early_stopping_text(chapter_id: str = "08", results_dir: Path | None = None) -> str:
    """:func:`early_stopping_accounting` as sentences that credit each part of the gain (Chapter 8)."""
    acc = early_stopping_accounting(chapter_id, results_dir)
    if acc is None:
        return f"Chapter {chapter_id} has no recorded run yet."
    lines = [f"The run trained {acc['epochs_run']} of at most {acc['ceiling']} epochs and kept epoch "
             f"{acc['kept_epoch']}, the one with the lowest validation loss."]
    if acc["val_accuracy_at_budget"] is not None:
        lines.append(
            f"Longer ceiling: in this same run the validation accuracy was {_pct(acc['val_accuracy_at_budget'])} "
            f"after epoch {acc['previous_budget']}, where chapter {acc['previous']}'s fixed budget ended, and "
            f"{_pct(acc['val_accuracy_kept'])} at the kept epoch: "
            f"{100 * (acc['val_accuracy_kept'] - acc['val_accuracy_at_budget']):+.1f} points from training longer "
            "(with the learning-rate drops those epochs allowed), not from the stopping rule.")
    change = acc["val_accuracy_kept"] - acc["val_accuracy_last"]
    lines.append(
        f"Restoring the best weights: the kept epoch's validation loss was {acc['val_loss_kept']:.4f} against "
        f"{acc['val_loss_last']:.4f} at the last epoch, but its validation accuracy was "
        f"{acc['val_accuracy_kept']:.2%} against {acc['val_accuracy_last']:.2%}: "
        f"{'a loss' if change < 0 else 'a gain'} of {abs(100 * change):.2f} points of validation accuracy.")
    lines.append(
        f"Stopping: the rule ended the run {acc['epochs_saved']} epochs before the ceiling, about "
        f"{acc['minutes_saved_estimate']:.0f} min at this run's mean of {acc['mean_epoch_s']:.0f} s per epoch. "
        "What those epochs would have given is unknown without a control run.")
    if acc["previous_test_accuracy"] is not None:
        machine = ("on the same machine" if acc["same_machine_as_previous"]
                   else f"on a different machine from chapter {acc['previous']}'s, so the two runs part from epoch 1")
        lines.append(
            f"Test accuracy {_pct(acc['test_accuracy'])} against {_pct(acc['previous_test_accuracy'])} for chapter "
            f"{acc['previous']} ({100 * (acc['test_accuracy'] - acc['previous_test_accuracy']):+.1f} points), "
            f"trained {machine}.")
    return "\n".join(lines)


def early_stopping_controls(chapter_id: str = "08", results_dir: Path | None = None) -> list[dict]:
    """Each recorded control run of a chapter with early stopping, set against the chapter's run of the same
    seed: what the epochs after the stop gave and what the rule saved (Chapter 8).

    Only control runs whose record matches the current code (``book.control_status``) and whose seed the
    chapter also recorded count. Times compare only when both runs ran on one machine.
    """
    from .book import control_run_dir, control_status, run_dir_for, run_dir_for_seed
    from .results import HISTORY_FILE, read_json

    chapter = get_chapter(chapter_id)
    found = []
    for seed in seed_folders(run_dir_for(chapter, results_dir) / "control"):
        control = control_status(chapter, seed, results_dir)
        own = (chapter_status(chapter, results_dir) if seed == chapter.config.seed
               else seed_run_status(chapter, seed, results_dir))
        if control["status"] != "ok" or own["status"] != "ok":
            continue
        control_history = read_json(control_run_dir(chapter, seed, results_dir) / HISTORY_FILE)
        own_history = read_json(run_dir_for_seed(chapter, seed, results_dir) / HISTORY_FILE)
        record, control_record = own["record"], control["record"]
        stop, val = record["epochs_run"], control_history["val_accuracy"]
        best = max(range(len(val)), key=val.__getitem__)
        same_machine = _machine(record) == _machine(control_record)
        found.append({
            "seed": seed, "stop_epoch": stop, "kept_epoch": record["best_epoch"], "ceiling": len(val),
            "shared_epochs": shared_epochs(own_history, control_history), "same_machine": same_machine,
            "control_val_at_stop": val[stop - 1], "control_val_last": val[-1],
            "control_best_epoch": best + 1, "control_val_best": val[best],
            "val_kept": own_history["val_accuracy"][record["best_epoch"] - 1],
            "control_test_accuracy": control_record["test_accuracy"], "test_accuracy": record["test_accuracy"],
            # What the rule saved: the control's own epochs after the stop, timed in one run (wall and CPU).
            "saved_wall_s": sum(control_history["epoch_time_s"][stop:]),
            "saved_cpu_s": sum(control_history["epoch_cpu_s"][stop:]) if "epoch_cpu_s" in control_history else None,
        })
    return found


def early_stopping_control_text(chapter_id: str = "08", results_dir: Path | None = None) -> str:
    """The control runs as sentences: what the stopping rule saved and what it cost, seed by seed (Chapter 8)."""
    controls = early_stopping_controls(chapter_id, results_dir)
    if not controls:
        return (f"No control run of chapter {chapter_id} is recorded yet (`cifar-lessons train {chapter_id} --control "
                "--seed S`, on the machine that recorded that seed's run).")
    lines = []
    for c in controls:
        saved = c["ceiling"] - c["stop_epoch"]
        cpu = f", {c['saved_cpu_s'] / 60:.0f} CPU-min" if c["saved_cpu_s"] is not None else ""
        how = f"the control's own epochs {c['stop_epoch'] + 1}-{c['ceiling']}: {c['saved_wall_s'] / 60:.0f} min{cpu}"
        if not c["same_machine"]:
            how += ", on another machine than the chapter's run"
        lines.append(
            f"Seed {c['seed']}: the control trained all {c['ceiling']} epochs and repeated the chapter's run for "
            f"{c['shared_epochs']} of the {c['stop_epoch']} epochs it ran. After the stop, the control's validation "
            f"accuracy went from {_pct(c['control_val_at_stop'])} to {_pct(c['control_val_last'])} at epoch "
            f"{c['ceiling']} (its best, {_pct(c['control_val_best'])}, at epoch {c['control_best_epoch']}). Its "
            f"last-epoch weights score {_pct(c['control_test_accuracy'])} on the test set against "
            f"{_pct(c['test_accuracy'])} for the weights the rule kept: the rule saved {saved} epochs ({how}) "
            f"for {100 * (c['test_accuracy'] - c['control_test_accuracy']):+.1f} test points.")
    return "\n".join(lines)


def load_lr_sweep(results_dir: Path | None = None) -> dict | None:
    """The recorded learning-rate sweep of Chapter 5, or None if it has not been run."""
    from .results import read_json
    from .sweep import sweep_path

    path = sweep_path(results_dir)
    return read_json(path) if path.exists() else None


def lr_sweep_rows(sweep: dict) -> list[dict]:
    """One row per sweep run: recipe, learning rate, final and best validation accuracy, time (Chapter 5)."""
    rows = []
    for run in sweep["runs"]:
        history = run["history"]
        losses = history["loss"]
        diverged = any(loss is None for loss in losses) or run["val_accuracy"] <= 0.15
        rows.append({"chapter": run["chapter"], "batch_norm": run["batch_norm"], "learning_rate": run["learning_rate"],
                     "val_accuracy": run["val_accuracy"], "best_val_accuracy": max(history["val_accuracy"]),
                     "train_accuracy": history["accuracy"][-1],
                     "final_loss": losses[-1], "diverged": diverged, "wall_time_s": run["wall_time_s"],
                     "cpu_time_s": run["cpu_time_s"]})
    return rows


def lr_sweep_markdown(sweep: dict) -> str:
    """The sweep as a Markdown table, with what it ran on below it (Chapter 5)."""
    lines = ["| Learning rate | Batch norm | Training accuracy (last epoch) | Training loss (last epoch) "
             "| Validation accuracy | CPU time |",
             "|---:|---|---:|---:|---:|---:|"]
    for row in sorted(lr_sweep_rows(sweep), key=lambda row: (row["learning_rate"], row["batch_norm"])):
        loss = "diverged" if row["final_loss"] is None else f"{row['final_loss']:.3f}"
        lines.append(f"| {row['learning_rate']:g} | {'yes' if row['batch_norm'] else 'no'} | "
                     f"{_pct(row['train_accuracy'])} | {loss} | {_pct(row['val_accuracy'])} "
                     f"| {row['cpu_time_s']:.0f} s |")
    hardware = sweep["hardware"]
    lines += ["", f"{sweep['subset']:,} training and {sweep['validation_size']:,} validation images, "
              f"{sweep['epochs']} epochs per run, seed {sweep['runs'][0]['config']['seed']}; {hardware['cpu']}, "
              f"{hardware['cores']} cores, {sweep['runs'][0]['precision']}; "
              f"TensorFlow {sweep['versions']['tensorflow']}; "
              f"data {sweep['data']['name']} (fingerprint {sweep['data']['fingerprint']}); "
              f"{sum(row['cpu_time_s'] for row in lr_sweep_rows(sweep)) / 60:.1f} CPU-minutes in all "
              f"({sweep['wall_time_s'] / 60:.0f} min of wall-clock time at low priority on a shared machine)."]
    return "\n".join(lines)


def lr_sweep_text(sweep: dict) -> str:
    """Per learning rate, the validation accuracy with and without batch normalization, as sentences (Chapter 5)."""
    by_rate = {}
    for row in lr_sweep_rows(sweep):
        by_rate.setdefault(row["learning_rate"], {})[row["batch_norm"]] = row
    lines = []
    for rate in sorted(by_rate):
        pair = by_rate[rate]
        if True not in pair or False not in pair:
            continue
        with_bn, without = pair[True], pair[False]

        def state(row):
            return "diverged or stuck near chance" if row["diverged"] else _pct(row["val_accuracy"])

        lines.append(f"Learning rate {rate:g}: {state(with_bn)} with batch normalization, {state(without)} without "
                     f"({100 * (with_bn['val_accuracy'] - without['val_accuracy']):+.1f} points) after "
                     f"{sweep['epochs']} epochs.")
    return "\n".join(lines)


def benchmark_markdown(results_dir: Path | None = None) -> str:
    """Training throughput measured by scripts/benchmark.py, as Markdown ('' if not measured) (Chapter 1)."""
    from .benchmarks import benchmark_markdown as table

    return table(results_dir)


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def readme_block(results_dir: Path | None = None) -> str:
    """What belongs between the README's results markers (Chapter 10)."""
    from .benchmarks import profile_markdown

    parts = [accuracy_table_markdown(results_dir), benchmark_markdown(results_dir), profile_markdown(results_dir)]
    return f"{README_START}\n" + "\n\n".join(part for part in parts if part) + f"\n{README_END}"


def current_readme_block(readme: Path) -> str:
    """The README's results block as it stands, markers included (Chapter 10)."""
    text = Path(readme).read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} block")
    return text[start:end + len(README_END)]


def update_readme(readme: Path, results_dir: Path | None = None) -> bool:
    """Rewrite the README's results block from the run records; True if it changed (Chapter 10)."""
    from .results import write_text_atomic

    text = Path(readme).read_text()
    old = current_readme_block(readme)
    new = readme_block(results_dir)
    if old == new:
        return False
    write_text_atomic(Path(readme), text.replace(old, new))
    return True


def kept_epoch(record: dict) -> int:
    """The epoch whose weights a run kept: the best one under EarlyStopping (restore_best_weights), else the last.

    (Chapter 10)
    """
    return record["best_epoch"] if record["config"].get("early_stopping") else record["epochs_run"]


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
            "same_machine": previous is not None and _machine(record) == _machine(previous["record"]),
            "time_ratio": (record["wall_time_s"] / previous["record"]["wall_time_s"]
                           if previous and _machine(record) == _machine(previous["record"]) else None),
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
    text = (f"**{effect['id']} {effect['title']}** ({effect['technique']}): {_pct(effect['test_accuracy'])} "
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
    from .chapters import CHAPTERS

    chapter = next((c for c in CHAPTERS if c.slug == "going_further"), None)
    if chapter is None:
        return ""
    text = f"Chapter {int(chapter.id)}, *{chapter.title}*, goes further ({chapter.technique})"
    if chapter.trains:
        record = chapter_status(chapter, results_dir)["record"]
    else:  # a chapter outside the one-technique chain may still keep a record in results/NN
        from .book import run_dir_for
        from .results import RecordError, load_record

        try:
            record = load_record(run_dir_for(chapter, results_dir))
        except RecordError:
            record = None
    if record is None:
        return text + "; it has no recorded run here yet."
    final = [c for c in CHAPTERS if c.trains and c.id < chapter.id]
    summary = seed_summary(chapter, results_dir) if chapter.trains else None
    accuracy = _mean_sd(summary) if summary and summary["n"] >= 2 else _pct(record["test_accuracy"])
    seeds = f" (mean of {summary['n']} seeds)" if summary and summary["n"] >= 2 else ""
    text += f": it reached {accuracy} test accuracy{seeds} in {record['epochs_run']} epochs"
    reference = seed_summary(final[-1], results_dir) if final else None
    if reference and reference["n"]:
        text += f", against {_mean_sd(reference)} for chapter {final[-1].id}"
    race = _race_sentence(results_dir)
    return text + "." + (f" {race}" if race else "")


def _race_sentence(results_dir: Path | None = None) -> str:
    """The race of chapter 11 against chapter 8 on one machine, as a sentence ('' if it was not run) (Chapter 10)."""
    from .race import race_path, race_summary

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
        return "; ".join(f"{row['title'].lower()} (chapter {row['id']}, {_gain_text(row)} points, "
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
            f"{best[True]['learning_rate']:g} ({_pct(best[True]['val_accuracy'])} validation accuracy), {where} "
            f"without it ({best[False]['learning_rate']:g}, {_pct(best[False]['val_accuracy'])}).")
