"""The race of Chapter 11 against chapter 8: time to accuracy on one machine, from the run records.

Reads records and histories only (no Keras), so the site and ``cifar-lessons report`` can draw and
quote the race without importing TensorFlow. ``results/11/race.json`` names the runs it compares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import results

RACE_FILE = "race.json"  # which runs the race compares, in results/11 (Chapter 11)
# Chapter 11's goal, the accuracy half: the mean test accuracy of its three seeds (the time half is the race).
ACCURACY_GOAL = 0.93


def race_path(results_dir: Path | None = None) -> Path:
    """Where the race's file lives: ``results/11/race.json`` (Chapter 11)."""
    return Path(results_dir or results.default_results_dir()) / "11" / RACE_FILE


def time_to_accuracy(history: dict, target: float, clock: str = "epoch_time_s") -> float | None:
    """Seconds of training (summed ``clock`` per epoch) until validation accuracy first reaches ``target``."""
    elapsed = 0.0
    for seconds, accuracy in zip(history[clock], history["val_accuracy"]):
        elapsed += seconds
        if accuracy >= target:
            return elapsed
    return None


def race_summary(results_dir: Path | None = None) -> dict:
    """Chapter 8's time to its target against this chapter's whole runs, from the runs race.json names (Chapter 11).

    Chapter 8's clock counts its training epochs only (not loading, building or evaluating), this
    chapter's counts the whole run up to the saved, evaluated model, so the comparison favours
    chapter 8. Both wall-clock and process CPU seconds are compared: CPU seconds barely change when
    other programs share the machine, wall seconds do.
    """
    root = Path(results_dir or results.default_results_dir())
    race = results.read_json(race_path(results_dir))
    target = race["target_val_accuracy"]
    baseline_dir = root / race["baseline_run"]
    baseline_record = results.load_record(baseline_dir)
    baseline_history = results.read_json(baseline_dir / results.HISTORY_FILE)
    runs = [results.load_record(root / path) for path in race["runs"]]
    summary = {
        "target": target, "baseline_run": race["baseline_run"], "runs": race["runs"],
        "baseline_label": race.get("baseline_label", "chapter 8"),
        "baseline_wall_s": time_to_accuracy(baseline_history, target, "epoch_time_s"),
        "baseline_cpu_s": time_to_accuracy(baseline_history, target, "epoch_cpu_s"),
        "baseline_test_accuracy": baseline_record["test_accuracy"],
        "run_wall_s": [record["run_time_s"] for record in runs],
        "run_cpu_s": [record["run_cpu_time_s"] for record in runs],
        "test_accuracy": [record["test_accuracy"] for record in runs],
        "hosts": sorted({host_name(record) for record in [baseline_record, *runs]}),
    }
    for clock in ("wall", "cpu"):
        if summary[f"baseline_{clock}_s"]:
            summary[f"ratio_{clock}"] = max(summary[f"run_{clock}_s"]) / summary[f"baseline_{clock}_s"]
    return summary


def host_name(record: dict) -> str:
    """A host's name for comparing times: CPU (with its family and model numbers where recorded), cores and
    speed-relevant CPU flags (Chapter 11)."""
    hardware = record["hardware"]
    return f"{results.cpu_name(hardware)}, {hardware['cores']} cores, flags {' '.join(hardware.get('cpu_flags', []))}"


def race_chart(results_dir: Path | None = None):
    """Validation accuracy against training minutes: chapter 8's race run and this chapter's runs (Chapter 11).

    The axes end a little after the later of chapter 8's time to the target and the slowest chapter-11
    run, so a long chapter-8 run (a control trained to its ceiling) does not squeeze the race itself.
    """
    import matplotlib.pyplot as plt  # lazy: imports Matplotlib; `report` reads the race and stays light

    root = Path(results_dir or results.default_results_dir())
    summary = race_summary(results_dir)
    from .. import style  # lazy, as Matplotlib is

    style.use()
    fig, axes = plt.subplots(1, 2, figsize=(style.COLUMN_WIDTH, 3.8), sharey=True)
    for ax, clock, label, key in ((axes[0], "epoch_time_s", "wall-clock minutes", "wall"),
                                  (axes[1], "epoch_cpu_s", "CPU minutes", "cpu")):
        for path, name in [(summary["baseline_run"], summary["baseline_label"]),
                           *[(run, "chapter 11" if run == "11" else f"chapter 11 ({run})") for run in summary["runs"]]]:
            history = results.read_json(root / path / results.HISTORY_FILE)
            minutes = np.cumsum(history[clock]) / 60
            ax.plot(minutes, history["val_accuracy"], marker=".", label=name)
        ax.axhline(summary["target"], color="grey", linestyle=":", linewidth=1)
        reached = summary[f"baseline_{key}_s"] or 0.0
        ax.set_xlim(0, 1.15 * max(reached, *summary[f"run_{key}_s"]) / 60)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy")
    axes[0].set_ylim(0.5, 0.95)
    # One legend above both panels, so it covers no curve.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=1, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.065 * len(labels) - 0.02))
    return fig
