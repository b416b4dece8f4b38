"""The seed study's statistics: which seed runs count, their mean and spread, and the verdict between two
chapters (Welch's t-test). Reads records only: no TensorFlow, no tables, no prose (Chapter 10).
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from pathlib import Path

from scipy import stats

from .. import results
from .chapters import get_chapter
from .runs import chapter_status, run_dir_for, seed_run_dir

# The seed study (issue 12): every training chapter is run with several seeds. Seed runs live in
# results/NN/seedS; the chapter's main run (its own seed) in results/NN. A gain between neighbouring
# chapters is judged by this rule, stated wherever a verdict is shown.
ALPHA = 0.05  # the test's level: a verdict claims a direction only when p is below it
NOT_SHOWN = "not shown"
VERDICT_RULE = ("Welch's t-test (two-sided) on the per-seed test accuracies of the two chapters: *helps* or "
                "*hurts* when p < 0.05, *not shown* otherwise (the seeds cannot tell the difference from the "
                "noise between seeds, which is not evidence that there is none); with one seed on either side, "
                "no verdict")
STANDARD_ERROR = "√(s₁²/n₁ + s₂²/n₂) (s: standard deviation across seeds, n: number of seeds)"
NO_VERDICT = "one seed: no verdict"


def seed_run_status(chapter, seed: int, results_dir: Path | None = None) -> dict:
    """Whether ``results/NN/seedS`` holds a usable run of the chapter's recipe with seed S (Chapter 10).

    Usable means: a well-formed, full (not quick) record whose config is the chapter's current
    config in everything but the seed, trained on the same data as the chapter's main run.
    Returns ``{"seed", "status" ('ok', 'missing', 'malformed', 'stale'), "record", "message"}``.
    """
    run_dir = seed_run_dir(chapter, seed, results_dir)
    row = {"seed": seed, "record": None}
    if seed == chapter.config.seed:
        return {**row, "status": "stale",
                "message": f"{run_dir} uses the chapter's own seed {seed}, whose run is the main one in "
                           f"{run_dir.parent}: delete it"}
    if not (run_dir / results.RECORD_FILE).exists():
        return {**row, "status": "missing", "message": f"no run recorded in {run_dir}"}
    try:
        record = results.load_record(run_dir)
    except results.RecordError as error:
        return {**row, "status": "malformed", "message": str(error)}
    row["record"] = record
    expected = dataclasses.replace(chapter.config, seed=seed)
    retrain = f"retrain with `cifar-lessons train {chapter.id} --seed {seed}`"
    if record["quick"]:
        reason = "is a quick (smoke-test) run"
    elif record["seed"] != seed or record["config"].get("seed") != seed:
        reason = f"records seed {record['seed']}, not the seed {seed} its folder names"
    elif results.config_hash(record["config"]) != expected.hash or record["config_hash"] != expected.hash:
        changed = sorted(key for key, value in expected.record_dict().items() if record["config"].get(key) != value)
        reason = (f"was made with another config than the chapter's (differs in {', '.join(changed) or 'its hash'})")
    else:
        main = chapter_status(chapter, results_dir)["record"]
        data, main_data = record["data"].get("fingerprint"), (main or {}).get("data", {}).get("fingerprint")
        if main is not None and data != main_data:
            reason = f"was trained on other data (fingerprint {data}) than the main run ({main_data})"
        else:
            return {**row, "status": "ok", "message": "matches the chapter's config except the seed"}
    return {**row, "status": "stale", "message": f"{run_dir / results.RECORD_FILE} {reason}: {retrain}"}


def recorded_seeds(chapter, results_dir: Path | None = None) -> list[int]:
    """The seeds with a folder ``results/NN/seedS`` holding a record, in numeric order (Chapter 10)."""
    return seed_folders(run_dir_for(chapter, results_dir))


def seed_folders(folder: Path) -> list[int]:
    """The seeds S with a folder ``folder/seedS`` holding a record, in numeric order."""
    found = [int(match.group(1)) for path in folder.glob("seed*/" + results.RECORD_FILE)
             if (match := re.fullmatch(r"seed(\d+)", path.parent.name))] if folder.is_dir() else []
    return sorted(found)


def seed_summary(chapter, results_dir: Path | None = None) -> dict:
    """A chapter's test accuracy over its usable runs: per-seed values, mean, standard deviation (Chapter 10).

    The main run counts when its record matches the chapter; a stale main run is shown only when no
    usable run exists at all (status 'stale', never mixed with current runs). ``excluded`` lists each
    run left out, with the reason.
    """
    main = chapter_status(chapter, results_dir)
    runs, excluded = [], []
    for seed in recorded_seeds(chapter, results_dir):
        status = seed_run_status(chapter, seed, results_dir)
        if status["status"] == "ok":
            runs.append({"seed": seed, "test_accuracy": status["record"]["test_accuracy"],
                         "record": status["record"]})
        else:
            excluded.append({"seed": seed, "reason": status["message"]})
    main_run = main["record"] and {"seed": main["record"]["seed"], "test_accuracy": main["record"]["test_accuracy"],
                                   "record": main["record"]}
    if main["status"] == "ok" or (main["status"] == "stale" and not runs):
        runs.append(main_run)  # a stale main run only stands alone, marked stale
    elif main["status"] != "missing":
        excluded.append({"seed": chapter.config.seed, "reason": main["message"]})
    status = main["status"]
    runs.sort(key=lambda run: run["seed"])
    values = [run["test_accuracy"] for run in runs]
    return {"chapter": chapter, "status": status, "main": main, "runs": runs, "excluded": excluded,
            "seeds": [run["seed"] for run in runs], "values": values, "n": len(values),
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) >= 2 else None}


def compare_seeds(current: dict, previous: dict) -> dict:
    """Difference of two chapters' means, its standard error, Welch's p-value and the verdict of
    VERDICT_RULE (Chapter 10).

    ``interval`` is the 95% confidence interval of the difference (Welch-Satterthwaite degrees of freedom):
    where the verdict is NOT_SHOWN, it says how large a difference the seeds cannot exclude.
    """
    if not current["n"] or not previous["n"]:
        return {"gain": None, "standard_error": None, "p_value": None, "interval": None, "verdict": None}
    gain = current["mean"] - previous["mean"]
    if current["n"] < 2 or previous["n"] < 2:
        return {"gain": gain, "standard_error": None, "p_value": None, "interval": None, "verdict": NO_VERDICT}
    a, b = current["std"] ** 2 / current["n"], previous["std"] ** 2 / previous["n"]
    error = math.sqrt(a + b)
    if error == 0:  # identical seeds on both sides: no noise to test against
        p_value, interval = (1.0 if gain == 0 else 0.0), (gain, gain)
    else:
        p_value = float(stats.ttest_ind_from_stats(current["mean"], current["std"], current["n"], previous["mean"],
                                                   previous["std"], previous["n"], equal_var=False).pvalue)
        dof = (a + b) ** 2 / (a ** 2 / (current["n"] - 1) + b ** 2 / (previous["n"] - 1))
        half = float(stats.t.ppf(1 - ALPHA / 2, dof)) * error
        interval = (gain - half, gain + half)
    verdict = ("helps" if gain > 0 else "hurts") if p_value < ALPHA else NOT_SHOWN
    return {"gain": gain, "standard_error": error, "p_value": p_value, "interval": interval, "verdict": verdict}


def p_text(p_value: float | None) -> str:
    """'p = 0.07', 'p = 0.003' or 'p < 0.001' (Chapter 10)."""
    if p_value is None:
        return ""
    if p_value < 0.001:
        return "p < 0.001"
    return f"p = {p_value:.3f}" if p_value < 0.01 else f"p = {p_value:.2f}"


def verdict_text(comparison: dict) -> str:
    """'helps (p = 0.003)', 'not shown (p = 0.09)', 'one seed: no verdict' or '-' (Chapter 10)."""
    if comparison.get("verdict") is None:
        return "-"
    if comparison.get("p_value") is None:
        return comparison["verdict"]
    return f"{comparison['verdict']} ({p_text(comparison['p_value'])})"


# How the seed summaries are written in tables and sentences.

def percent(value) -> str:
    """'85.9%' for 0.859, '-' for None."""
    return "-" if value is None else f"{100 * value:.1f}%"


def mean_sd(summary: dict) -> str:
    """'85.9 ± 0.4%' over several seeds, '85.9%' for one, '-' for none."""
    if summary["mean"] is None:
        return "-"
    if summary["std"] is None:
        return percent(summary["mean"])
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}%"


def per_seed(summary: dict) -> str:
    """Test accuracy (%) of each seed: '85.9 · 86.2' for seeds 0, 1, ..., 'seed: value' when one is skipped."""
    pairs = list(zip(summary["seeds"], summary["values"]))
    if summary["seeds"] == list(range(len(pairs))):
        return " · ".join(f"{100 * value:.1f}" for _, value in pairs) or "-"
    return " · ".join(f"{seed}: {100 * value:.1f}" for seed, value in pairs)


def gain_text(row: dict) -> str:
    """A comparison row's gain in points: '+2.6 ± 1.2' (± its standard error), '+2.6' for one seed, '-' for none."""
    if row["gain"] is None:
        return "-"
    if row["gain_se"] is None:
        return f"{100 * row['gain']:+.1f}"
    return f"{100 * row['gain']:+.1f} ± {100 * row['gain_se']:.1f}"


def fast_seed_records(results_dir: Path | None = None) -> dict[int, dict]:
    """Chapter 11's records by seed, main run (results/11) and results/11/seedS, current recipe only (Chapter 11)."""
    root = Path(results_dir or results.default_results_dir()) / "11"
    config_hashes = {}
    found = {}
    for record_path in [root / results.RECORD_FILE, *sorted(root.glob(f"seed*/{results.RECORD_FILE}"))]:
        if not record_path.is_file():
            continue
        record = results.load_record(record_path.parent)
        seed = record["seed"]
        if seed not in config_hashes:
            config_hashes[seed] = dataclasses.replace(get_chapter("11").config, seed=seed).hash
        if record["config_hash"] == config_hashes[seed] and not record["quick"]:
            found[seed] = record
    return dict(sorted(found.items()))
