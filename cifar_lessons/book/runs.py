"""Running chapters: reuse a recorded run whose config still matches, or train it.

Used by the notebooks, the CLI (``cifar-lessons train``/``book``), the tests and the site.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .. import results
from ..data import Dataset, load_cifar10
from ..going_further.fast_config import FastConfig
from .chapters import REPO_ROOT, Chapter, get_chapter, previous_training_chapter, training_chapters
from .identities import expected_identity  # cached per recipe, so list/report/site need no TensorFlow

if TYPE_CHECKING:  # training imports Keras: loaded only when a chapter runs, so the registry stays light
    from ..training import Run


def run_dir_for(chapter: Chapter, results_dir: Path | None = None, quick: bool = False) -> Path:
    """Folder holding a chapter's model, history and record; ``results/quick/NN`` for a quick run (Chapter 1)."""
    root = Path(results_dir or results.default_results_dir())
    return root / "quick" / chapter.id if quick else root / chapter.id


def staleness(record: dict, config, data_fingerprint: str | None = None) -> list[str]:
    """Why a valid record no longer describes a run of ``config`` with the current code; empty if it does (Chapter 1).

    Compares the record's identity with the one the current code gives the config: the config, the
    architecture actually built, augmentation, optimizer, loss, callbacks, precision and, when
    ``data_fingerprint`` is given, the data.
    """
    reasons = ["it is a quick smoke run, not a result"] if record["quick"] else []
    if record["config_hash"] != config.hash:
        changes = config.changes_from(type(config).from_dict(record["config"]))
        reasons.append("config changed (" + ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changes.items())
                       + ")")
    # precision="auto" picks float32 or mixed_bfloat16 by hardware: either is the same recipe.
    precision = record["precision"] if config.precision == "auto" else config.precision
    recorded = record["identity"]
    expected = expected_identity(config, precision, data_fingerprint or recorded["data"])
    reasons += [reason for reason in results.identity_differences(recorded, expected)
                if not reason.startswith("config ")]
    return reasons


def run_status(run_dir: Path, config, data_fingerprint: str | None = None, require_model: bool = True) -> dict:
    """Whether the run in ``run_dir`` is 'missing', 'malformed', 'stale' or 'ok' for ``config``, and why (Chapter 1).

    'malformed' covers a damaged record and a model or history that is not the one the record names.
    """
    if not (run_dir / results.RECORD_FILE).exists():
        message = f"no run recorded in {run_dir}"
        if (run_dir / results.STAGED_DIR / results.RECORD_FILE).is_file():
            message += (" (a save was interrupted while it moved a finished run in; training this run again "
                        "finishes the move first)")
        return {"status": "missing", "record": None, "message": message, "reasons": []}
    try:
        record = results.load_record(run_dir)
        results.check_files(record, run_dir, (results.MODEL_FILE, results.HISTORY_FILE) if require_model
                            else (results.HISTORY_FILE,))
    except results.RecordError as error:
        return {"status": "malformed", "record": None, "message": str(error), "reasons": [str(error)]}
    reasons = staleness(record, config, data_fingerprint)
    if reasons:
        return {"status": "stale", "record": record, "reasons": reasons,
                "message": f"{run_dir / results.RECORD_FILE} is stale: {'; '.join(reasons)}. Retrain with "
                           f"`{results.retrain_command(record)}`"}
    return {"status": "ok", "record": record, "message": "the recorded run matches the current code and config",
            "reasons": []}


def chapter_status(chapter: Chapter, results_dir: Path | None = None, data_fingerprint: str | None = None) -> dict:
    """Whether a chapter's record is 'missing', 'malformed', 'stale' or 'ok', with the record and why (Chapter 1)."""
    return run_status(run_dir_for(chapter, results_dir), chapter.config, data_fingerprint)


def seed_run_dir(chapter: Chapter, seed: int, results_dir: Path | None = None) -> Path:
    """Folder of a chapter's run with another seed than its main run's: ``results/NN/seedS`` (Chapter 1)."""
    return run_dir_for(chapter, results_dir) / f"seed{seed}"


def run_dir_for_seed(chapter: Chapter, seed: int, results_dir: Path | None = None) -> Path:
    """Folder of a chapter's run with ``seed``: the main one for the chapter's own seed, else ``seedS`` (Chapter 1)."""
    if seed == chapter.config.seed:
        return run_dir_for(chapter, results_dir)
    return seed_run_dir(chapter, seed, results_dir)


def control_config(chapter: Chapter, seed: int | None = None):
    """The early-stopping control of a chapter that adds EarlyStopping: the chapter's own recipe without the
    rule, trained to its epoch ceiling, which is the previous training chapter's recipe at that ceiling
    (Chapter 8).

    With the same seed on the same machine it repeats the chapter's run epoch for epoch up to where the
    rule stopped it, so its further epochs show what the stopping rule saved and what it cost.
    """
    if not getattr(chapter.config, "early_stopping", False):
        raise ValueError(f"chapter {chapter.id} adds no early stopping, so it has no control run")
    defaults = {field.name: field.default for field in dataclasses.fields(chapter.config)}
    return dataclasses.replace(chapter.config, early_stopping=False,
                               early_stopping_patience=defaults["early_stopping_patience"],
                               seed=chapter.config.seed if seed is None else seed)


def control_run_dir(chapter: Chapter, seed: int, results_dir: Path | None = None, quick: bool = False) -> Path:
    """Folder of a chapter's early-stopping control run with ``seed``: ``results/NN/control/seedS`` (Chapter 8)."""
    root = Path(results_dir or results.default_results_dir())
    return (root / "quick" / f"{chapter.id}-control" if quick else root / chapter.id / "control") / f"seed{seed}"


def control_status(chapter: Chapter, seed: int, results_dir: Path | None = None) -> dict:
    """Whether the control run of ``chapter`` with ``seed`` is 'missing', 'malformed', 'stale' or 'ok' (Chapter 8).

    Its model file is not committed (like the seed runs'): the record and the history say what it did.
    """
    return run_status(control_run_dir(chapter, seed, results_dir), control_config(chapter, seed), require_model=False)


def run_control(chapter_id: str, seed: int | None = None, quick: bool = False, results_dir: Path | None = None,
                data: Dataset | None = None, verbose: int | None = None) -> Run:
    """Train (or resume) a chapter's early-stopping control run into ``results/NN/control/seedS`` (Chapter 8)."""
    from ..training import train  # lazy: imports TensorFlow; list, report and the site stay light

    chapter = get_chapter(chapter_id)
    config = control_config(chapter, seed)
    config = config.quick() if quick else config
    run_dir = control_run_dir(chapter, config.seed, results_dir, quick=quick)
    data = data or load_cifar10()
    print(f"Chapter {chapter.id}'s control run: chapter {previous_training_chapter(chapter).id}'s recipe for "
          f"{config.epochs} epochs without early stopping, config {config.hash}, on {data.describe()}", flush=True)
    return train(config, data, run_dir, chapter=f"{chapter.id}-control", verbose=verbose)


def run_chapter(chapter_id: str, quick: bool = False, retrain: bool = False,
                results_dir: Path | None = None, data: Dataset | None = None,
                verbose: int | None = None, seed: int | None = None, other_data: str = "reference") -> Run:
    """Reuse a chapter's recorded run if its config matches, otherwise train it (Chapter 1).

    ``quick`` trains the chapter's recipe for one epoch on a tiny subset, for
    smoke tests; such a run is recorded as quick and never counts as a result. ``seed`` other than
    the chapter's own trains the same recipe with that seed into ``results/NN/seedS`` (the seed study).
    When the recorded run is current but was made on other data than ``data`` (the official download where
    the book used its offline copy), ``other_data="reference"`` returns it as the book's reference and
    trains nothing; ``"train"`` trains on ``data`` (``cifar-lessons book`` regenerating the book).
    """
    from ..training import load_run, train  # lazy: imports TensorFlow; list, report and the site stay light

    chapter = get_chapter(chapter_id)
    if chapter.uses:
        chapter = get_chapter(chapter.uses)
    config = chapter.config.quick() if quick else chapter.config
    run_dir = run_dir_for(chapter, results_dir)
    if seed is not None and seed != config.seed:
        config = dataclasses.replace(config, seed=seed)
        run_dir = seed_run_dir(chapter, seed, results_dir)
        retrain = True
    if quick:  # quick runs never replace a chapter's recorded run, nor sit inside its folder
        name = chapter.id if config.seed == chapter.config.seed else f"{chapter.id}-seed{config.seed}"
        run_dir = run_dir_for(chapter, results_dir, quick=True).parent / name
    if not retrain and not quick:
        status = chapter_status(chapter, results_dir, data.fingerprint if data else None)
        if status["status"] == "ok":
            run = load_run(run_dir)
            shown = run_dir.relative_to(REPO_ROOT) if run_dir.is_relative_to(REPO_ROOT) else run_dir
            print(f"Chapter {chapter.id}: reusing the recorded run in {shown} "
                  f"(config {config.hash}, trained {run.record['created']}). Set RETRAIN = True to train again.")
            return run  # the notebooks show the epochs as curves, not as a log
        only_the_data = status["status"] == "stale" and all(
            reason.startswith("data changed") for reason in status["reasons"])
        if only_the_data and other_data == "reference":
            run = load_run(run_dir)
            book = run.record
            print(f"Chapter {chapter.id}: the book's run was made on {book['data']['name']} (fingerprint "
                  f"{book['data']['fingerprint']}), not on these data ({data.fingerprint}). It is shown as the "
                  f"book's reference, and nothing was trained. Set RETRAIN = True to train on your data: the "
                  f"book's run took {book['wall_time_s'] / 60:.0f} min on {results.cpu_name(book['hardware'])}.")
            return run
        if status["status"] != "missing":
            print(f"Chapter {chapter.id}: {status['message']}", flush=True)
    data = data or load_cifar10()
    print(f"Chapter {chapter.id}: training config {config.hash} on {data.describe()}", flush=True)
    if isinstance(config, FastConfig):  # chapter 11's recipe has a training loop of its own
        from ..going_further.fast import train_fast  # lazy: imports TensorFlow; list, report and the site stay light

        train_fast(config, data, run_dir, chapter=chapter.id, verbose=2 if verbose is None else verbose)
        return load_run(run_dir)
    return train(config, data, run_dir, chapter=chapter.id, verbose=verbose)


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


def studied_run(chapter_id: str, quick: bool = False, results_dir: Path | None = None, data=None):
    """The run a chapter studies: its recorded run if one matches its config, else a fresh one (Chapter 9).

    Beyond ``run_chapter``'s line about the recorded run it says how many epochs it trained, which
    epoch's weights it kept and its test accuracy (the chapter that trained it shows its curves).
    """
    from ..training import load_run  # lazy: imports TensorFlow; list, report and the site stay light

    chapter = get_chapter(chapter_id)
    if quick or chapter_status(chapter, results_dir)["status"] != "ok":
        return run_chapter(chapter.id, quick=quick, results_dir=results_dir, data=data)
    run_dir = run_dir_for(chapter, results_dir)
    run = load_run(run_dir)
    record = run.record
    shown = run_dir.relative_to(REPO_ROOT) if run_dir.is_relative_to(REPO_ROOT) else run_dir.name
    print(f"Chapter {chapter.id}: the recorded run in {shown} (config {record['config_hash']}, trained "
          f"{record['created']}): {record['epochs_run']} epochs, weights of epoch {record['best_epoch']} kept "
          f"if the run restored its best ones, test accuracy {record['test_accuracy']:.2%}.")
    return run
