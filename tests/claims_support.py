"""What the chapter-claims tests share: the chapters' Markdown, the claim marker, and the facts the chapters
share (chapter 8's and chapter 11's networks, the race, the seed runs, airbench94's runs, the ablation screen,
the JPEG ladder), each read once for the whole session by the cached functions below."""

from __future__ import annotations

import functools
import statistics
from types import SimpleNamespace

from cifar_lessons import results
from cifar_lessons.book import ladder, seeds
from cifar_lessons.book.chapters import get_chapter

_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def _markdown(chapter_id):
    import nbformat

    notebook = nbformat.read(get_chapter(chapter_id).notebook, as_version=4)
    return " ".join(" ".join(cell.source.split()) for cell in notebook.cells if cell.cell_type == "markdown")


def assert_prose_names(chapter_id, phrases):
    """Every phrase (built from the config and the records) appears in the chapter's Markdown cells."""
    missing = [phrase for phrase in phrases if phrase not in _markdown(chapter_id)]
    assert not missing, f"chapter {chapter_id}'s prose no longer names its settings: {missing}"


def _claim(holds, phrase):  # a sentence about the records: expected in the prose only while the records agree
    return phrase if holds else f"[the records no longer support: {phrase}]"


def _points(value):  # a gain as the prose writes it: "+1.9 points", and "0.0 points" for no change
    text = f"{100 * value:+.1f}"
    return f"{'0.0' if text in ('+0.0', '-0.0') else text} points"


# The facts the chapters share, each read once.

@functools.cache
def _sample_images():  # what the networks are built from: only their shape matters to the prose
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3)).astype(np.uint8)


@functools.cache
def _network_8():
    from cifar_lessons.models import build_model

    return build_model(get_chapter("08").config, _sample_images())


@functools.cache  # builds chapter 11's network and its six-view inference model: once for chapters 11 and A
def _fast_net():
    """Chapter 11's network as the code builds it from its config: the layers its prose counts and sizes."""
    import dataclasses

    from keras import layers

    from cifar_lessons.going_further import fast, fast_tta

    c11 = get_chapter("11").config
    net = fast.build_fast_net(c11, _sample_images())
    convs = [layer for layer in net.layers if isinstance(layer, layers.Conv2D)]
    dense = [layer for layer in net.layers if isinstance(layer, layers.Dense)]
    whiten, block_convs = net.get_layer("whiten"), [layer for layer in convs if layer.name.startswith("block")]
    (kernel,) = {layer.kernel_size[0] for layer in block_convs}
    per_block = sum(layer.name.startswith("block1_") for layer in block_convs)
    six = fast_tta.inference_model(dataclasses.replace(c11, tta="flip_shift"), net)
    views = sum(layer.name.startswith("view") for layer in six.layers)
    return SimpleNamespace(convs=convs, dense=dense, whiten=whiten, kernel=kernel, per_block=per_block,
                           patch=whiten.kernel_size[0], views=views)


def _run_window(path):  # (record, start, end) in seconds: the record is written at the end of the run
    import datetime as dt

    record = results.load_record(results.default_results_dir() / path)
    end = dt.datetime.fromisoformat(record["created"]).timestamp()
    return record, end - record["wall_time_s"], end


def _cpu_per_epoch(path):
    import numpy as np

    return np.mean(results.read_json(results.default_results_dir() / path / results.HISTORY_FILE)["epoch_cpu_s"])


def _official_images():  # the official training set: airbench94 trains on all of it
    from cifar_lessons.data import CLASS_NAMES, OFFICIAL_PER_CLASS

    return OFFICIAL_PER_CLASS[0] * len(CLASS_NAMES)


@functools.cache
def _chapter_08_seeds():
    """Each seed of chapter 8 beside chapter 7's run of that seed: records, histories, shared epochs, vendor."""
    from cifar_lessons.book.runs import run_dir_for_seed
    from cifar_lessons.book.seeds import recorded_seeds

    c7, c8 = get_chapter("07"), get_chapter("08")
    found = []
    for seed in [c8.config.seed, *recorded_seeds(c8)]:
        (r7, h7), (r8, h8) = [(results.load_record(folder), results.read_json(folder / results.HISTORY_FILE))
                              for folder in (run_dir_for_seed(chapter, seed) for chapter in (c7, c8))]
        found.append(SimpleNamespace(seed=seed, r7=r7, h7=h7, r8=r8, h8=h8, shared=ladder.shared_epochs(h7, h8),
                                     vendors={r["hardware"]["cpu"].split()[0] for r in (r7, r8)}))
    return tuple(found)


@functools.cache
def _chapter_08_controls():
    """Chapter 8's control runs as its chapter and chapter 10 read them: those that repeat the chapter's run up to
    the stop (pairs), those that part from epoch 1 (another kind of machine), and the momentum-0.99 recipe's
    control with the run it pairs with (results/08/momentum0.99)."""
    controls = ladder.early_stopping_controls("08")
    paired = [c for c in controls if c["same_machine"] and c["shared_epochs"] == c["stop_epoch"]]
    apart = [c for c in controls if c["shared_epochs"] == 0]  # another kind of machine: parts from epoch 1
    assert paired, "chapter 8's control section describes a control that repeats the chapter's run: none is recorded"
    assert len(paired) + len(apart) == len(controls), "a control that repeats only part of the run: describe it"
    old_root = results.default_results_dir() / "08" / "momentum0.99"
    old_control, old_run = (results.load_record(old_root / path / "seed1") for path in ("control", "."))
    # The rule's price over every seed with a control, by the book's verdict rule (Welch's t-test): the kept
    # weights' test accuracy against the control's last epoch's.
    kept, last = ([c[key] for c in controls] for key in ("test_accuracy", "control_test_accuracy"))
    summary = [{"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None}
               for v in (kept, last)]
    rule = seeds.compare_seeds(*summary) if len(controls) > 1 else None
    return SimpleNamespace(paired=paired, apart=apart, old_control=old_control, old_run=old_run, all=controls,
                           kept=kept, last=last, kept_mean=summary[0]["mean"], last_mean=summary[1]["mean"], rule=rule)


@functools.cache
def _race():
    """Chapter 11's committed race against chapter 8 and its seed runs; chapter 8's seeds to the race's target."""
    import numpy as np

    from cifar_lessons.book.seeds import fast_seed_records
    from cifar_lessons.going_further.race import race_summary

    root, race, seeds = results.default_results_dir(), race_summary(), fast_seed_records()
    target, mean_11 = race["target"], float(np.mean([record["test_accuracy"] for record in seeds.values()]))
    partner, partner_start, partner_end = _run_window(race["baseline_run"])
    def first_epochs_of(folders):  # each seed's first epoch at the target's validation accuracy
        return {results.load_record(folder)["seed"]: ladder.epochs_to(
            results.read_json(folder / results.HISTORY_FILE), "val_accuracy", target) for folder in folders}

    # The race was timed against chapter 8's recipe as it was then, with batch-norm momentum 0.99.
    timed_recipe = root / "08" / "momentum0.99"
    first_epochs = first_epochs_of(sorted(timed_recipe.glob("seed*")))
    retrained_epochs = first_epochs_of([root / "08", *sorted((root / "08").glob("seed*"))])
    partner_epochs = first_epochs.pop(partner["seed"])
    # The race partner is chapter 8's training when it repeats that recipe's run of its seed up to the run's stop.
    eight_dir = timed_recipe / f"seed{partner['seed']}"
    eight_record, eight_history = results.load_record(eight_dir), results.read_json(eight_dir / results.HISTORY_FILE)
    partner_history = results.read_json(root / race["baseline_run"] / results.HISTORY_FILE)
    repeats = ladder.shared_epochs(eight_history, partner_history) == len(eight_history["epoch"])
    # The race cell's estimate: chapter 8's fastest seed at the partner's CPU seconds per epoch.
    partner_epoch_cpu = np.mean(partner_history["epoch_cpu_s"][:partner_epochs])
    fastest_cpu = min(partner_epochs, *first_epochs.values()) * partner_epoch_cpu
    # Its break-even: the partner's epochs that chapter 11's slowest run cost, against every run of both recipes.
    break_even = max(race["run_cpu_s"]) / partner_epoch_cpu
    needed = {**{("timed", seed): epochs for seed, epochs in first_epochs.items()},
              ("timed", partner["seed"]): partner_epochs,
              **{("retrained", seed): epochs for seed, epochs in retrained_epochs.items()}}
    return SimpleNamespace(
        summary=race, seeds=seeds, target=target, mean_11=mean_11, ratios=(race["ratio_cpu"], race["ratio_wall"]),
        partner=partner, partner_start=partner_start, partner_end=partner_end, first_epochs=first_epochs,
        partner_epochs=partner_epochs, retrained_epochs=retrained_epochs, eight_record=eight_record, repeats=repeats,
        fastest_ratio=max(race["run_cpu_s"]) / fastest_cpu, break_even=break_even,
        beaten={key: epochs for key, epochs in needed.items() if epochs < break_even}, runs_8=len(needed))


@functools.cache
def _reference():
    """airbench94 itself on the copy (results/11/reference), read as the reference cell prints it."""
    from cifar_lessons.book import reference
    from cifar_lessons.book.identities import SEEDS

    ref_rows, official_ref = reference.reference_table(), reference.REFERENCE_ACCURACY
    full_runs = [row for row in ref_rows if row["variant"] == "full"]
    full_bf16 = [row for row in full_runs if row["precision"] == "bfloat16 autocast"]
    full_fp32 = [row for row in full_runs if row["precision"] == "float32"]
    split_runs = [row for row in ref_rows if row["variant"] == "split45"]
    full_mean = reference.reference_means(ref_rows)["full", "bfloat16 autocast"]["test_accuracy"]
    comparison = reference.split_comparison(ref_rows, _race().seeds)  # the reference cell's comparison, per split
    split_test_mean = next(row["reference"] for row in comparison if row["split"] == "test")
    port_not_shown = len(split_runs) == len(SEEDS) and len(comparison) == 2 and all(
        row["verdict"] == "not shown" for row in comparison)
    by_split = {row["split"]: row for row in comparison}
    test_low, test_high = (100 * value for value in by_split["test"]["interval"]) if comparison else (0, 0)
    copy_cost_ref = official_ref - full_mean  # what the copy costs airbench94, measured
    edits = [change["replace"] for path in reference.reference_root().glob("*/seed*/record.json")
             for change in reference.load_reference(path)["code"]["changes"]]
    return SimpleNamespace(
        official_ref=official_ref, full_runs=full_runs, full_bf16=full_bf16, full_fp32=full_fp32, full_mean=full_mean,
        comparison=comparison, split_test_mean=split_test_mean, port_not_shown=port_not_shown, by_split=by_split,
        test_low=test_low, test_high=test_high, copy_cost_ref=copy_cost_ref, edits=edits)


@functools.cache
def _ablation_screen():
    """The ablation screen's table, the band of the seeds, and each change against it."""
    from cifar_lessons.going_further import ablations

    screen_table = ablations.ablation_table()
    screen_band = ablations.ablation_band(screen_table, _race().seeds)
    band = screen_band["val_accuracy"]  # one run against one (the JPEG ladder's rungs are single runs too)
    rows = {change["technique"]: change for change in ablations.ablation_changes(screen_table, screen_band)}
    return SimpleNamespace(table=screen_table, band=band, rows=rows)


@functools.cache
def _jpeg_ladder():
    """The JPEG ladder, read as its cell prints it: each rung against the copy itself, same seed and budget."""
    from cifar_lessons.book import recompress

    def rung_costs(budget):  # quality: (validation change, test change, PSNR against the copy), seed 0
        return {row["quality"]: (row["val_change"], row["test_change"], row["psnr_vs_copy_db"])
                for row in recompress.ladder_table(budget=budget) if row["seed"] == 0 and row["val_change"] is not None}

    screen_rungs, full_rungs = rung_costs("screen"), rung_costs("full")
    # The ladder cell's bound: quality 30 against 50 in squared error and in cost, and the copy's own encoding
    # (about 30 dB against the originals: the copy's README) priced at the quality-50 rung's cost per squared error.
    squared_error = recompress.squared_error
    error_ratio = squared_error(full_rungs[30][2]) / squared_error(full_rungs[50][2])
    cost_ratio = full_rungs[30][1] / full_rungs[50][1]
    copy_cost = -full_rungs[50][1] * squared_error(30.0) / squared_error(full_rungs[50][2])
    return SimpleNamespace(screen_rungs=screen_rungs, full_rungs=full_rungs, error_ratio=error_ratio,
                           cost_ratio=cost_ratio, copy_cost=copy_cost)


def _qualities(rungs):  # as the prose lists them: highest first
    return " and ".join(str(quality) for quality in sorted(rungs, reverse=True))
