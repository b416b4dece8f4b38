"""What each chapter measures on its recorded runs (Chapters 3-8): the train/validation gap, the gap between the
training log and inference mode, the learning-rate schedule's replay and experiment, the early-stopping
control runs, and chapter 5's learning-rate sweep.

The chapters call these on their records; each function names the chapter that introduces it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..results import HISTORY_FILE, cpu_name, learning_rate_drops, read_json
from .chapters import get_chapter
from .report import comparison_rows
from .runs import chapter_status, control_run_dir, control_status, recorded_history, run_dir_for, run_dir_for_seed
from .seeds import percent, seed_folders, seed_run_status
from .sweep import sweep_path


def validation_swing(chapter_id: str, results_dir: Path | None = None) -> str:
    """A chapter's validation accuracy at its last epoch, at its best one and, where early stopping restored
    the best weights, at the epoch it kept, as one line (Chapters 6 and 8)."""
    chapter = get_chapter(chapter_id)
    history = recorded_history(chapter_id, results_dir)
    if history is None:
        return f"Chapter {chapter_id} has no recorded run yet."
    values = history["val_accuracy"]
    best = max(range(len(values)), key=values.__getitem__)
    line = (f"Chapter {chapter_id}: validation accuracy {percent(values[-1])} at the last epoch ({len(values)}), "
            f"{percent(values[best])} at its highest (epoch {best + 1})")
    if getattr(chapter.config, "early_stopping", False):  # the weights it kept are those of its best_epoch
        kept = chapter_status(chapter, results_dir)["record"]["best_epoch"]
        line += f", {percent(values[kept - 1])} at the epoch it kept ({kept})"
    return line + "."


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
        "same_machine": machine_key(without_record) == machine_key(with_record),
    }


def machine_key(record: dict) -> tuple:
    """What makes two runs' times comparable: CPU, its speed flags, cores and TensorFlow version."""
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
             f"{percent(val_acc[with_id][drop - 1])} with it against {percent(val_acc[without_id][drop - 1])} without "
             f"({beyond} the best of chapter {without_id}'s {last} epochs, {percent(best_without)}); "
             f"at epoch {last}, {percent(val_acc[with_id][last - 1])} against "
             f"{percent(val_acc[without_id][last - 1])}, "
             f"with a validation loss of {val_loss[with_id][last - 1]:.3f} against "
             f"{val_loss[without_id][last - 1]:.3f}. "
             f"On the test set: {percent(test[with_id])} against {percent(test[without_id])}, "
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
        f"Chapter {row['chapter']}: mean over the last {row['tail']} epochs, train {percent(row['train_accuracy'])}, "
        f"validation {percent(row['val_accuracy'])}, gap {100 * row['mean_gap']:.1f} points "
        f"(last epoch: {100 * row['last_gap']:.1f})" for row in rows)


def inference_gap(model, x_train, y_train, val_accuracy: float, sample: int = 5000, seed: int = 0) -> dict:
    """Training accuracy of the final weights in inference mode, against their validation accuracy (Chapter 6).

    Unlike the logged training accuracy this sees the training images without augmentation or
    dropout and with batch norm's running averages, as the validation images are seen, so the
    gap is the model's own. ``sample`` training images keep it to seconds on a CPU.
    """
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
    from ..training import load_run, prepare_data  # lazy: TensorFlow; the rest of this module only reads records

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
        f"Chapter {row['chapter']}: training accuracy {percent(row['logged_train_accuracy'])} as logged in the last "
        f"epoch (training mode), {percent(row['train_accuracy'])} for the final weights in inference mode "
        f"({row['train_sample']:,} training images); validation {percent(row['val_accuracy'])}: a gap of "
        f"{100 * row['gap']:.1f} points" for row in rows)


def is_improvement(value: float, best: float | None, min_delta: float, mode: str) -> bool:
    """Keras' test for a new best: beyond the old best by more than ``min_delta`` (Chapter 7)."""
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
        if is_improvement(value, best, min_delta, mode):
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
        if is_improvement(value, best, min_delta, mode):
            best, best_epoch, wait = value, epoch, 0
            continue
        if wait >= patience and epoch > 1:
            return {"stopped_after": epoch, "kept_epoch": best_epoch}
    return {"stopped_after": None, "kept_epoch": best_epoch}


def early_stopping_controls(chapter_id: str = "08", results_dir: Path | None = None) -> list[dict]:
    """Each recorded control run of a chapter with early stopping, set against the chapter's run of the same
    seed: what the epochs after the stop gave and what the rule saved (Chapter 8).

    Only control runs whose record matches the current code (``book.control_status``) and whose seed the
    chapter also recorded count. Times compare only when both runs ran on one machine.
    """
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
        same_machine = machine_key(record) == machine_key(control_record)
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


def load_lr_sweep(results_dir: Path | None = None) -> dict | None:
    """The recorded learning-rate sweep of Chapter 5, or None if it has not been run."""
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
                     f"{percent(row['train_accuracy'])} | {loss} | {percent(row['val_accuracy'])} "
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
            return "diverged or stuck near chance" if row["diverged"] else percent(row["val_accuracy"])

        lines.append(f"Learning rate {rate:g}: {state(with_bn)} with batch normalization, {state(without)} without "
                     f"({100 * (with_bn['val_accuracy'] - without['val_accuracy']):+.1f} points) after "
                     f"{sweep['epochs']} epochs.")
    return "\n".join(lines)


def kept_epoch(record: dict) -> int:
    """The epoch whose weights a run kept: the best one under EarlyStopping (restore_best_weights), else the last.

    (Chapter 10)
    """
    return record["best_epoch"] if record["config"].get("early_stopping") else record["epochs_run"]


def technique_effects(results_dir: Path | None = None) -> list[dict]:
    """Chapter 10's gains-and-costs rows: each recorded training chapter's ``comparison_rows`` row with its main
    run's ``kept_epoch`` and ``gap`` there (train minus validation accuracy; the training accuracy as logged,
    with augmentation and dropout active) (Chapter 10).
    """
    effects = []
    for row in comparison_rows(results_dir):
        if row["record"] is None:
            continue
        history = recorded_history(row["id"], results_dir)
        kept = kept_epoch(row["record"])
        gap = history["accuracy"][kept - 1] - history["val_accuracy"][kept - 1] if history else None
        effects.append({**row, "kept_epoch": kept, "gap": gap})
    return effects
