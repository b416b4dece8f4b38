"""Running chapters: reuse a recorded run whose config still matches, or train it.

Used by the notebooks, the CLI (``cifar-lessons train``/``book``), the tests and the site.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import results
from .chapters import REPO_ROOT, Chapter, get_chapter, training_chapters
from .data import Dataset, load_cifar10
from .training import Run, load_run, train


def run_dir_for(chapter: Chapter, results_dir: Path | None = None, quick: bool = False) -> Path:
    """Folder holding a chapter's model, history and record; ``results/quick/NN`` for a quick run (Chapter 1)."""
    root = Path(results_dir or results.default_results_dir())
    return root / "quick" / chapter.id if quick else root / chapter.id


def chapter_status(chapter: Chapter, results_dir: Path | None = None) -> dict:
    """Whether a chapter's record is 'missing', 'malformed', 'stale' or 'ok', with the record (Chapter 1)."""
    run_dir = run_dir_for(chapter, results_dir)
    if not (run_dir / results.RECORD_FILE).exists():
        return {"status": "missing", "record": None, "message": f"no run recorded in {run_dir}"}
    try:
        record = results.load_record(run_dir)
    except results.RecordError as error:
        return {"status": "malformed", "record": None, "message": str(error)}
    if record["config_hash"] != chapter.config.hash or record["quick"]:
        return {"status": "stale", "record": record,
                "message": f"{run_dir / results.RECORD_FILE} was made with config {record['config_hash']}, "
                           f"the chapter's config is now {chapter.config.hash}: retrain with "
                           f"`cifar-lessons train {chapter.id}`"}
    return {"status": "ok", "record": record, "message": "recorded run matches the config"}


def seed_run_dir(chapter: Chapter, seed: int, results_dir: Path | None = None) -> Path:
    """Folder of a chapter's run with another seed than its main run's: ``results/NN/seedS`` (Chapter 1)."""
    return run_dir_for(chapter, results_dir) / f"seed{seed}"


def run_chapter(chapter_id: str, quick: bool = False, retrain: bool = False,
                results_dir: Path | None = None, data: Dataset | None = None,
                verbose: int | None = None, seed: int | None = None) -> Run:
    """Reuse a chapter's recorded run if its config matches, otherwise train it (Chapter 1).

    ``quick`` trains the chapter's recipe for one epoch on a tiny subset, for
    smoke tests; such a run is recorded as quick and never counts as a result. ``seed`` other than
    the chapter's own trains the same recipe with that seed into ``results/NN/seedS`` (the seed study).
    """
    chapter = get_chapter(chapter_id)
    if chapter.uses:
        chapter = get_chapter(chapter.uses)
    config = chapter.config.quick() if quick else chapter.config
    run_dir = run_dir_for(chapter, results_dir)
    if seed is not None and seed != config.seed:
        config = dataclasses.replace(config, seed=seed)
        run_dir = seed_run_dir(chapter, seed, results_dir)
        retrain = True
    if quick:  # quick runs never replace a chapter's recorded run
        run_dir = run_dir_for(chapter, results_dir, quick=True)
    if not retrain and not quick and chapter_status(chapter, results_dir)["status"] == "ok":
        run = load_run(run_dir)
        shown = run_dir.relative_to(REPO_ROOT) if run_dir.is_relative_to(REPO_ROOT) else run_dir
        print(f"Chapter {chapter.id}: reusing the recorded run in {shown} "
              f"(config {config.hash}, trained {run.record['created']}). Pass retrain=True to train again.")
        return run  # the notebooks show the epochs as curves, not as a log
    data = data or load_cifar10()
    print(f"Chapter {chapter.id}: training config {config.hash} on {data.describe()}", flush=True)
    return train(config, data, run_dir, chapter=chapter.id, verbose=verbose)


def print_history(history: dict) -> None:
    """One line per epoch of a recorded run, like Keras' own log (Chapter 1)."""
    for index, epoch in enumerate(history["epoch"]):
        print(f"Epoch {epoch}: {history['epoch_time_s'][index]:.0f}s - "
              f"loss {history['loss'][index]:.4f} - accuracy {history['accuracy'][index]:.4f} - "
              f"val_loss {history['val_loss'][index]:.4f} - val_accuracy {history['val_accuracy'][index]:.4f} - "
              f"learning_rate {history['learning_rate'][index]:.2g}")


def recorded_history(chapter_id: str, results_dir: Path | None = None) -> dict | None:
    """The per-epoch history of a chapter's recorded run, or None if it has none (Chapter 2)."""
    chapter = get_chapter(chapter_id)
    if chapter_status(chapter, results_dir)["status"] != "ok":
        return None
    return results.read_json(run_dir_for(chapter, results_dir) / results.HISTORY_FILE)


def recorded_runs(results_dir: Path | None = None) -> list[dict]:
    """One row per training chapter: status, record and milestone (Chapter 10)."""
    rows = []
    for chapter in training_chapters():
        rows.append({"chapter": chapter, **chapter_status(chapter, results_dir)})
    return rows
