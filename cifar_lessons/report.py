"""Tables and comparisons built from the run records, never typed by hand.

Feeds ``cifar-lessons report``, the site's results page and the chapters' closing numbers.
"""

from __future__ import annotations

from pathlib import Path

from .book import chapter_status, recorded_history, recorded_runs
from .chapters import BOOK_BUDGET_MINUTES, get_chapter, previous_training_chapter


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def comparison_rows(results_dir: Path | None = None) -> list[dict]:
    """One row per training chapter with accuracy, gain vs the previous chapter, time (Chapter 10)."""
    rows, previous = [], None
    for entry in recorded_runs(results_dir):
        chapter, record = entry["chapter"], entry["record"]
        accuracy = record["test_accuracy"] if record else None
        gain = accuracy - previous if accuracy is not None and previous is not None else None
        rows.append({
            "id": chapter.id, "title": chapter.title, "technique": chapter.technique,
            "status": entry["status"], "test_accuracy": accuracy, "gain": gain,
            "milestone": chapter.milestone,
            "epochs": record["epochs_run"] if record else None,
            "max_epochs": chapter.config.epochs,
            "wall_time_s": record["wall_time_s"] if record else None,
            "data": record["data"]["name"] if record else None,
            "fingerprint": record["data"]["fingerprint"] if record else None,
            "record": record,
        })
        previous = accuracy  # gains compare neighbours only: after a missing chapter there is none
    return rows


def accuracy_table_markdown(results_dir: Path | None = None) -> str:
    """The comparison table as Markdown, with the hardware and versions below it (Chapter 10)."""
    rows = comparison_rows(results_dir)
    lines = ["| Chapter | Technique | Test accuracy | Gain | Milestone | Epochs | Wall time | Images/s | Data |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        gain = "-" if row["gain"] is None else f"{100 * row['gain']:+.1f} pts"
        epochs = "-" if row["epochs"] is None else f"{row['epochs']} / {row['max_epochs']}"
        wall = "-" if row["wall_time_s"] is None else f"{row['wall_time_s'] / 60:.1f} min"
        speed = f"{row['record']['images_per_s']:.0f}" if row["record"] else "-"
        status = "" if row["status"] == "ok" else f" ({row['status']})"
        lines.append(f"| {row['id']} {row['title']}{status} | {row['technique']} | {_pct(row['test_accuracy'])} "
                     f"| {gain} | {_pct(row['milestone'])} | {epochs} | {wall} | {speed} | {row['data'] or '-'} |")
    recorded = [row for row in rows if row["record"]]
    if recorded:
        total = sum(row["wall_time_s"] for row in recorded)
        lines.append("")
        lines.append(f"Total recorded training time: {total / 60:.0f} min for {len(recorded)} of {len(rows)} "
                     f"chapters (budget for the whole book: {BOOK_BUDGET_MINUTES} min).")
        # Chapters may be trained on different machines: each environment names its chapters.
        chapters_by_environment = {}
        for row in recorded:
            chapters_by_environment.setdefault(_environment(row["record"]), []).append(row["id"])
        lines += ["", "Runs made on:", ""]
        for environment, ids in chapters_by_environment.items():
            lines.append(f"- {_chapter_span(ids)}: {environment}.")
    return "\n".join(lines)


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
    return (f"{hardware['cpu']}, {hardware['cores']} cores, {gpus}, {precision}; Python {versions['python']}, "
            f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}; data {record['data']['name']} "
            f"(fingerprint {record['data']['fingerprint']})")


def retraining_cost(chapter_id: str, results_dir: Path | None = None) -> str:
    """What retraining a chapter cost on the machine that recorded it, and how to try it quickly (Chapters 1-8)."""
    chapter = get_chapter(chapter_id)
    record = chapter_status(chapter, results_dir)["record"]
    if record is None:
        return (f"Chapter {chapter.id} has no recorded run yet: RETRAIN = True (or `cifar-lessons train "
                f"{chapter.id}`) trains it.")
    hardware = record["hardware"]
    quick_images = chapter.config.quick().subset
    return (f"Retraining chapter {chapter.id} took {record['wall_time_s'] / 60:.1f} min on the recorded machine "
            f"({hardware['cpu']}, {hardware['cores']} cores, {record['precision']}): {record['epochs_run']} epochs "
            f"at {record['images_per_s']:.0f} images/s. Set QUICK = True in the parameters cell to try the recipe "
            f"on {quick_images:,} images for one epoch ({quick_images / record['images_per_s']:.1f} s of training at "
            f"that speed, plus start-up), or RETRAIN = True to train it in full.")


def chapter_gain(chapter_id: str, results_dir: Path | None = None) -> str:
    """A sentence comparing a chapter's recorded test accuracy with the previous chapter's (Chapters 2-8)."""
    chapter = get_chapter(chapter_id)
    current = chapter_status(chapter, results_dir)["record"]
    previous_chapter = previous_training_chapter(chapter)
    previous = chapter_status(previous_chapter, results_dir)["record"] if previous_chapter else None
    if current is None:
        return f"Chapter {chapter.id} has no recorded run yet: run `cifar-lessons train {chapter.id}`."
    text = (f"Chapter {chapter.id} ({chapter.technique}) reached {_pct(current['test_accuracy'])} test accuracy "
            f"in {current['epochs_run']} epochs ({current['wall_time_s'] / 60:.1f} min)")
    if previous is None:
        return text + "."
    gain = current["test_accuracy"] - previous["test_accuracy"]
    verdict = "a gain" if gain > 0 else "a loss"
    return (text + f", against {_pct(previous['test_accuracy'])} for chapter {previous_chapter.id}: "
            f"{verdict} of {abs(100 * gain):.1f} percentage points.")


def validation_swing(chapter_id: str, results_dir: Path | None = None) -> str:
    """A chapter's validation accuracy at its last epoch and at its best one, as a sentence (Chapter 6)."""
    history = recorded_history(chapter_id, results_dir)
    if history is None:
        return f"Chapter {chapter_id} has no recorded run yet."
    values = history["val_accuracy"]
    best = max(range(len(values)), key=values.__getitem__)
    return (f"Chapter {chapter_id}: validation accuracy {_pct(values[-1])} at the last epoch ({len(values)}), "
            f"{_pct(values[best])} at its highest (epoch {best + 1}).")


def benchmark_markdown(results_dir: Path | None = None) -> str:
    """Training throughput measured by scripts/benchmark.py, as Markdown ('' if not measured) (Chapter 1)."""
    from .results import default_results_dir, read_json

    path = Path(results_dir or default_results_dir()) / "benchmark.json"
    if not path.exists():
        return ""
    bench = read_json(path)
    lines = ["| Architecture | Batch | Precision | Images/s | Range | s per 45,000-image epoch |",
             "|---|---:|---|---:|---:|---:|"]
    for r in bench["rows"]:
        spread = "-" if "images_per_s_range" not in r else "{}-{}".format(*r["images_per_s_range"])
        lines.append(f"| {r['model']} | {r['batch_size']} | {r['precision']} | {r['images_per_s']} | {spread} "
                     f"| {r['epoch_s_45k']} |")
    hardware, versions = bench["hardware"], bench["versions"]
    repeats = bench.get("repeats", 1)
    measured = (f"median of {repeats} measurements of {bench['steps']} steps per row" if repeats > 1
                else f"{bench['steps']} steps per row")
    lines += ["", f"Training throughput ({measured}), measured by `scripts/benchmark.py` on "
              f"{hardware['cpu']}, {hardware['cores']} cores, TensorFlow {versions['tensorflow']}, Keras "
              f"{versions['keras']} ({bench['created'][:10]}). Short measurements are noisy: the Images/s column "
              "of the results table, averaged over whole training runs, is the figure to plan with."]
    return "\n".join(lines)


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def readme_block(results_dir: Path | None = None) -> str:
    """What belongs between the README's results markers (Chapter 10)."""
    parts = [accuracy_table_markdown(results_dir), benchmark_markdown(results_dir)]
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
