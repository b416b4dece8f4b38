"""Tables and comparisons built from the run records, never typed by hand.

Feeds ``cifar-lessons report``, the site's results page and the chapters' closing numbers.
"""

from __future__ import annotations

from pathlib import Path

from .book import chapter_status, recorded_history
from .chapters import BOOK_BUDGET_MINUTES, get_chapter, previous_training_chapter, training_chapters


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


# The seed study (issue 12): every training chapter is run with several seeds. Seed runs live in
# results/NN/seedS; the chapter's main run (its own seed) in results/NN. A gain between neighbouring
# chapters is judged by this rule, stated wherever a verdict is shown.
VERDICT_RULE = ("*helps* when the gain exceeds twice its standard error, *hurts* when it is below minus twice "
                "its standard error, *within noise* otherwise; with one seed on either side, no verdict")
STANDARD_ERROR = "√(s₁²/n₁ + s₂²/n₂) (s: standard deviation across seeds, n: number of seeds)"
NO_VERDICT = "one seed: no verdict"


def seed_run_status(chapter, seed: int, results_dir: Path | None = None) -> dict:
    """Whether ``results/NN/seedS`` holds a usable run of the chapter's recipe with seed S (Chapter 10).

    Usable means: a well-formed, full (not quick) record whose config is the chapter's current
    config in everything but the seed, trained on the same data as the chapter's main run.
    Returns ``{"seed", "status" ('ok', 'missing', 'malformed', 'stale'), "record", "message"}``.
    """
    import dataclasses

    from . import results
    from .book import seed_run_dir

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
        changed = sorted(key for key, value in expected.to_dict().items() if record["config"].get(key) != value)
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
    import re

    from . import results
    from .book import run_dir_for

    folder = run_dir_for(chapter, results_dir)
    found = [int(match.group(1)) for path in folder.glob("seed*/" + results.RECORD_FILE)
             if (match := re.fullmatch(r"seed(\d+)", path.parent.name))] if folder.is_dir() else []
    return sorted(found)


def seed_summary(chapter, results_dir: Path | None = None) -> dict:
    """A chapter's test accuracy over its usable runs: per-seed values, mean, standard deviation (Chapter 10).

    The main run counts when its record matches the chapter; a stale main run is shown only when no
    usable run exists at all (status 'stale', never mixed with current runs). ``excluded`` lists each
    run left out, with the reason.
    """
    import statistics

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
    """Difference of two chapters' means, its standard error and the verdict of VERDICT_RULE (Chapter 10)."""
    import math

    if not current["n"] or not previous["n"]:
        return {"gain": None, "standard_error": None, "verdict": None}
    gain = current["mean"] - previous["mean"]
    if current["n"] < 2 or previous["n"] < 2:
        return {"gain": gain, "standard_error": None, "verdict": NO_VERDICT}
    error = math.sqrt(current["std"] ** 2 / current["n"] + previous["std"] ** 2 / previous["n"])
    verdict = "helps" if gain > 2 * error else "hurts" if gain < -2 * error else "within noise"
    return {"gain": gain, "standard_error": error, "verdict": verdict}


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
            "gain": None, "standard_error": None, "verdict": None}
        rows.append({
            "id": chapter.id, "title": chapter.title, "technique": chapter.technique,
            "status": summary["status"], "test_accuracy": summary["mean"], "std": summary["std"],
            "n": summary["n"], "seeds": summary["seeds"], "values": summary["values"],
            "excluded": summary["excluded"], "summary": summary,
            "gain": comparison["gain"], "gain_se": comparison["standard_error"], "verdict": comparison["verdict"],
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
                     f"| {_per_seed(row['summary'])} | {_gain_text(row)} | {row['verdict'] or '-'} |")
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
    return (f"{hardware['cpu']}, {hardware['cores']} cores, {gpus}, {precision}; Python {versions['python']}, "
            f"TensorFlow {versions['tensorflow']}, Keras {versions['keras']}; data {record['data']['name']} "
            f"(fingerprint {record['data']['fingerprint']})")


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
    reason = ("within twice its standard error" if comparison["verdict"] == "within noise"
              else "more than twice its standard error")
    return text + f"Verdict: {comparison['verdict']} (the difference is {reason})."


def chapter_verdict(chapter_id: str, results_dir: Path | None = None) -> dict:
    """A chapter's comparison with the previous one, for prose: ``gain``, ``standard_error`` (fractions or
    None), ``verdict`` ('helps', 'within noise', 'hurts', NO_VERDICT or None) and the seed counts (Chapters 2-8)."""
    chapter = get_chapter(chapter_id)
    previous_chapter = previous_training_chapter(chapter)
    current = seed_summary(chapter, results_dir)
    if previous_chapter is None:
        return {"gain": None, "standard_error": None, "verdict": None, "seeds": current["n"], "previous_seeds": 0}
    previous = seed_summary(previous_chapter, results_dir)
    return {**compare_seeds(current, previous), "seeds": current["n"], "previous_seeds": previous["n"]}


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
    trained at a lower rate than the epoch before).
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
            "time_ratio": record["wall_time_s"] / previous["record"]["wall_time_s"] if previous else None,
            "kept_epoch": kept,
            "train_accuracy": history["accuracy"][kept - 1] if history else None,
            "val_accuracy": history["val_accuracy"][kept - 1] if history else None,
            "last_val_accuracy": history["val_accuracy"][-1] if history else None,
            "best_val_accuracy": max(history["val_accuracy"]) if history else None,
            "gap": history["accuracy"][kept - 1] - history["val_accuracy"][kept - 1] if history else None,
            "lr_cuts": [index + 1 for index in range(1, len(rates)) if rates[index] < rates[index - 1]],
            "final_learning_rate": rates[-1] if rates else None,
        })
        effect["previous_gap"] = previous["gap"] if previous else None
        effects.append(effect)
        previous = effect
    return effects


def _names(keys) -> str:
    keys = [f"`{key}`" for key in keys]
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def effect_sentence(effect: dict) -> str:
    """What one chapter's change did, in words and numbers from its records (Chapter 10)."""
    text = (f"**{effect['id']} {effect['title']}** ({effect['technique']}): {_pct(effect['test_accuracy'])} "
            "test accuracy")
    if effect["previous_id"] is None:
        return text + f" in {effect['wall_time_s'] / 60:.1f} min, the starting point."
    text += (f", {100 * effect['gain']:+.1f} points over chapter {effect['previous_id']}, at "
             f"{effect['time_ratio']:.1f}x its wall time ({effect['wall_time_s'] / 60:.1f} min). ")
    if effect["gap"] is not None and effect["previous_gap"] is not None:
        text += (f"The train-validation gap at the kept epoch went from {100 * effect['previous_gap']:.1f} to "
                 f"{100 * effect['gap']:.1f} points. ")
    changes = effect["changes"]
    if not effect.get("same_recipe", True):
        text += ("It replaces the whole recipe rather than changing one technique, so this gain belongs to the "
                 "recipe as a whole. ")
    if "epochs" in changes:
        old, new = changes["epochs"]
        others = [key for key in changes if key != "epochs"]
        text += (f"It changed {_names(others)} and also the epoch ceiling, from {old} to {new}, and ran "
                 f"{effect['epochs']} epochs: its gain mixes the technique with the longer training, and one run "
                 "cannot separate them. ")
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
    reference = chapter_status(final[-1], results_dir)["record"] if final else None
    text += (f": it reached {_pct(record['test_accuracy'])} test accuracy in {record['epochs_run']} epochs "
             f"({record['wall_time_s'] / 60:.1f} min)")
    if reference:
        text += (f", against {_pct(reference['test_accuracy'])} in {reference['wall_time_s'] / 60:.1f} min for "
                 f"chapter {final[-1].id}")
    return text + "."
