"""Tables from the run records, never typed by hand: the accuracy table of the README, the results page and
``cifar-lessons report``, the chapters' gains and verdicts, and what retraining costs.

What each chapter measures on its runs, chapter 10's rows included, is :mod:`cifar_lessons.book.ladder`; the
seed statistics and how they are written are :mod:`cifar_lessons.book.seeds`.
"""

from __future__ import annotations

from pathlib import Path

from ..results import cpu_name, write_text_atomic
from . import benchmarks
from .chapters import BOOK_BUDGET_MINUTES, get_chapter, previous_training_chapter, training_chapters
from .runs import chapter_status
from .seeds import (
    NO_VERDICT,
    NOT_SHOWN,
    STANDARD_ERROR,
    VERDICT_RULE,
    compare_seeds,
    gain_text,
    mean_sd,
    p_text,
    per_seed,
    percent,
    seed_summary,
    verdict_text,
)


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
        lines.append(f"| {row['id']} {row['title']}{status} | {mean_sd(row['summary'])} "
                     f"| {per_seed(row['summary'])} | {gain_text(row)} | {verdict_text(row)} |")
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
        lines.append(f"| {row['id']} | {row['technique']} | {percent(row['milestone'])} | {epochs} "
                     f"| {wall} | {speed} |")
    recorded = [row for row in rows if row["record"]]
    if recorded:
        total = sum(row["wall_time_s"] for row in recorded)
        lines += ["", "Milestone: the test-accuracy floor the test suite checks. Epochs (run / limit), wall time and "
                  "throughput: each chapter's main run. "
                  f"Total training time of the main runs: {total / 60:.0f} min for {len(recorded)} of {len(rows)} "
                  f"chapters (budget for the whole book: {BOOK_BUDGET_MINUTES} min). "
                  + " ".join(filter(None, [benchmarks.main_runs_estimate([row["record"] for row in recorded],
                                                                         results_dir), _study_cost(rows)]))]
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
        return f"{percent(summary['mean'])} (one seed)"
    values = ", ".join(f"{100 * value:.1f}" for value in summary["values"])
    return f"{mean_sd(summary)} (mean ± standard deviation of {summary['n']} seeds: {values})"


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def readme_block(results_dir: Path | None = None) -> str:
    """What belongs between the README's results markers (Chapter 10)."""
    parts = [accuracy_table_markdown(results_dir), benchmarks.benchmark_markdown(results_dir),
             benchmarks.profile_markdown(results_dir)]
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
    text = Path(readme).read_text()
    old = current_readme_block(readme)
    new = readme_block(results_dir)
    if old == new:
        return False
    write_text_atomic(Path(readme), text.replace(old, new))
    return True
