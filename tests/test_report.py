"""The seed study: finding seed runs, mean ± standard deviation, verdicts, the tables, the chart, the CLI.

Every test writes fake run records into tmp_path (placeholders, not results) and checks what the
report makes of them, so each assertion fails when the computation or the rule changes.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

import pytest

from cifar_lessons import results
from cifar_lessons.book import ladder, report, seeds
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.book.runs import run_dir_for, seed_run_dir


def _expected_identity(config) -> dict:
    """The identity the current code gives a run of ``config`` in float32 on the fake data."""
    from cifar_lessons.going_further.fast_config import FastConfig

    if isinstance(config, FastConfig):
        from cifar_lessons.going_further.fast import expected_identity
    else:
        from cifar_lessons.training import expected_identity
    return expected_identity(config, "float32", "fp")


def fake_record(chapter, run_seed: int = 0, accuracy: float = 0.5, **changes) -> dict:
    """A well-formed record of a chapter's recipe with the given seed and test accuracy."""
    seed = run_seed
    config = dataclasses.replace(chapter.config, seed=seed)
    record = {"identity": _expected_identity(config), "files": {},
        "format": results.RECORD_FORMAT, "chapter": chapter.id, "config": config.record_dict(),
        "config_hash": config.hash, "seed": seed, "epochs_run": 3, "best_epoch": 2,
        "wall_time_s": 600.0, "images_per_s": 100.0,
        "hardware": {"cpu": "Test CPU", "cores": 2, "gpus": []}, "precision": "float32",
        "versions": {"python": "3", "tensorflow": "2", "keras": "3"},
        "data": {"name": "test data", "fingerprint": "fp"}, "code": {},
        "val_accuracy": accuracy, "val_loss": 1.0, "test_accuracy": accuracy, "test_loss": 1.0,
        "created": "2026-01-01T00:00:00+00:00", "quick": False,
    }
    record.update(changes)
    record["identity"] = {**record["identity"], "config": record["config_hash"],
                          "data": record["data"]["fingerprint"]}
    return record


def write_record(folder, record: dict) -> None:
    """Write a record with stand-in model and history files, their checksums, and its own checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / results.MODEL_FILE).write_bytes(b"stand-in model")
    results.write_json_atomic(folder / results.HISTORY_FILE, {"epoch": [1]})
    record = {**record, "files": {name: results.file_sha256(folder / name)
                                  for name in (results.MODEL_FILE, results.HISTORY_FILE)}}
    results.write_json_atomic(folder / results.RECORD_FILE, results.seal_record(record))


def write_runs(results_dir, chapter_id: str, accuracies: dict[int, float]) -> None:
    """Record a chapter's runs: seed 0 as the main run, other seeds under seedS/."""
    chapter = get_chapter(chapter_id)
    for seed, accuracy in accuracies.items():
        folder = run_dir_for(chapter, results_dir) if seed == 0 else seed_run_dir(chapter, seed, results_dir)
        write_record(folder, fake_record(chapter, seed, accuracy))


def row_of(results_dir, chapter_id: str) -> dict:
    return next(row for row in report.comparison_rows(results_dir) if row["id"] == chapter_id)


# Finding seed runs.

def test_seed_runs_are_found_and_summarized(tmp_path):
    write_runs(tmp_path, "04", {0: 0.80, 1: 0.82, 2: 0.78, 10: 0.81})
    (tmp_path / "04" / "seedling").mkdir()  # not a seed folder: ignored
    summary = seeds.seed_summary(get_chapter("04"), tmp_path)
    assert summary["seeds"] == [0, 1, 2, 10]  # numeric order, not "10" before "2"
    assert summary["values"] == [0.80, 0.82, 0.78, 0.81]
    assert summary["mean"] == pytest.approx(statistics.fmean([0.80, 0.82, 0.78, 0.81]))
    assert summary["std"] == pytest.approx(statistics.stdev([0.80, 0.82, 0.78, 0.81]))
    assert summary["excluded"] == []


@pytest.mark.parametrize("change,reason", [
    ({"config": "epochs"}, "differs in epochs"),
    ({"quick": True}, "quick"),
    ({"seed": 7}, "records seed 7"),
    ({"data": {"name": "other", "fingerprint": "other-fp"}}, "other data"),
])
def test_stale_seed_runs_are_left_out_with_a_reason(tmp_path, change, reason):
    chapter = get_chapter("05")
    write_runs(tmp_path, "05", {0: 0.78, 1: 0.79})
    if change.get("config") == "epochs":
        other = dataclasses.replace(chapter.config, seed=2, epochs=chapter.config.epochs + 1)
        change = {"config": other.record_dict(), "config_hash": other.hash}
    write_record(seed_run_dir(chapter, 2, tmp_path), fake_record(chapter, 2, 0.99, **change))
    summary = seeds.seed_summary(chapter, tmp_path)
    assert summary["seeds"] == [0, 1] and 0.99 not in summary["values"]
    [excluded] = summary["excluded"]
    assert excluded["seed"] == 2 and reason in excluded["reason"]
    assert "cifar-lessons train 05 --seed 2" in excluded["reason"]
    table = report.accuracy_table_markdown(tmp_path)
    assert "Runs left out:" in table and "chapter 05 seed 2: " in table


def test_malformed_seed_record_and_seed0_folder_are_left_out(tmp_path):
    chapter = get_chapter("05")
    write_runs(tmp_path, "05", {0: 0.78})
    (seed_run_dir(chapter, 3, tmp_path)).mkdir(parents=True)
    (seed_run_dir(chapter, 3, tmp_path) / results.RECORD_FILE).write_text("{ not json")
    write_record(seed_run_dir(chapter, 0, tmp_path), fake_record(chapter, 0, 0.9))
    summary = seeds.seed_summary(chapter, tmp_path)
    assert summary["values"] == [0.78]
    reasons = {item["seed"]: item["reason"] for item in summary["excluded"]}
    assert "not valid JSON" in reasons[3] and "chapter's own seed" in reasons[0]


def test_stale_main_run_is_not_mixed_with_current_seed_runs(tmp_path):
    chapter = get_chapter("06")
    write_runs(tmp_path, "06", {1: 0.70, 2: 0.72})
    old = dataclasses.replace(chapter.config, epochs=1)
    write_record(run_dir_for(chapter, tmp_path),
                 fake_record(chapter, 0, 0.10, config=old.record_dict(), config_hash=old.hash))
    summary = seeds.seed_summary(chapter, tmp_path)
    assert summary["values"] == [0.70, 0.72] and summary["status"] == "stale"
    assert [item["seed"] for item in summary["excluded"]] == [0]
    assert "| 06 Dropout (stale) | 71.0 ± 1.4% | 1: 70.0 · 2: 72.0 |" in report.accuracy_table_markdown(tmp_path)

    # Alone, the stale main run is still shown, marked stale, and not listed as left out.
    for seed in (1, 2):
        (seed_run_dir(chapter, seed, tmp_path) / results.RECORD_FILE).unlink()
    summary = seeds.seed_summary(chapter, tmp_path)
    assert summary["values"] == [0.10] and summary["status"] == "stale" and summary["excluded"] == []


# Verdicts.

def test_verdict_is_welchs_t_test_at_the_five_percent_level(tmp_path):
    from scipy import stats

    write_runs(tmp_path, "04", {0: 0.800, 1: 0.810, 2: 0.790})
    write_runs(tmp_path, "05", {0: 0.770, 1: 0.780, 2: 0.760})
    row = row_of(tmp_path, "05")
    expected_se = math.sqrt(statistics.variance([0.80, 0.81, 0.79]) / 3 + statistics.variance([0.77, 0.78, 0.76]) / 3)
    assert row["gain"] == pytest.approx(-0.03) and row["gain_se"] == pytest.approx(expected_se)
    welch = stats.ttest_ind([0.77, 0.78, 0.76], [0.80, 0.81, 0.79], equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue) and row["p_value"] < 0.05
    assert row["verdict"] == "hurts"
    low, high = row["interval"]
    assert low < -0.03 < high < 0  # the 95% interval excludes zero exactly when p < 0.05

    write_runs(tmp_path, "05", {0: 0.795, 1: 0.805, 2: 0.785})  # means 0.5 points apart
    assert row_of(tmp_path, "05")["verdict"] == "not shown"

    write_runs(tmp_path, "05", {0: 0.830, 1: 0.840, 2: 0.820})
    assert row_of(tmp_path, "05")["verdict"] == "helps"

    # More than twice the standard error, yet p is about 0.07 (chapter 7's old case): not shown.
    write_runs(tmp_path, "04", {0: 0.796, 1: 0.780, 2: 0.804})
    write_runs(tmp_path, "05", {0: 0.821, 1: 0.806, 2: 0.836})
    row = row_of(tmp_path, "05")
    assert row["gain"] > 2 * row["gain_se"] and 0.05 < row["p_value"] < 0.1
    assert row["verdict"] == "not shown" and row["interval"][0] < 0 < row["interval"][1]
    assert seeds.verdict_text(row) == f"not shown (p = {row['p_value']:.2f})"


def test_one_seed_on_either_side_gives_no_verdict(tmp_path):
    write_runs(tmp_path, "04", {0: 0.60})
    write_runs(tmp_path, "05", {0: 0.90, 1: 0.91, 2: 0.92})  # a huge gain, but chapter 04 has one seed
    row = row_of(tmp_path, "05")
    assert row["gain"] == pytest.approx(0.31) and row["gain_se"] is None
    assert row["verdict"] == seeds.NO_VERDICT == "one seed: no verdict"
    sentence = report.chapter_gain("05", tmp_path)
    assert "One seed: no verdict" in sentence and "helps" not in sentence
    assert "cifar-lessons study --seeds 0 1 2 --chapters 04 05" in sentence

    write_runs(tmp_path, "04", {1: 0.61})
    assert row_of(tmp_path, "05")["verdict"] == "helps"
    verdict = report.chapter_verdict("05", tmp_path)
    assert verdict["verdict"] == "helps" and (verdict["seeds"], verdict["previous_seeds"]) == (3, 2)
    assert report.chapter_verdict("01", tmp_path)["verdict"] is None  # the first chapter has nothing to compare


def test_verdict_sentence_claims_a_direction_only_with_seeds_on_both_sides(tmp_path):
    write_runs(tmp_path, "05", {0: 0.80, 1: 0.82})
    write_runs(tmp_path, "06", {0: 0.70})  # a big drop, but one seed
    sentence = report.verdict_sentence("06", tmp_path)
    assert "-11.0 points" in sentence and "claims no direction yet" in sentence
    assert "cifar-lessons study --chapters 05 06" in sentence and "cost accuracy" not in sentence
    write_runs(tmp_path, "06", {1: 0.71})
    assert "cost accuracy within this budget" in report.verdict_sentence("06", tmp_path)
    write_runs(tmp_path, "06", {0: 0.80, 1: 0.83})
    sentence = report.verdict_sentence("06", tmp_path)
    assert "cannot tell this difference from the noise" in sentence and "Welch's t-test p = " in sentence


def test_gain_sentence_reports_mean_sd_per_seed_values_and_verdict(tmp_path):
    write_runs(tmp_path, "06", {0: 0.800, 1: 0.810, 2: 0.790})
    write_runs(tmp_path, "07", {0: 0.820, 1: 0.830, 2: 0.840})
    sentence = report.chapter_gain("07", tmp_path)
    assert "83.0 ± 1.0% (mean ± standard deviation of 3 seeds: 82.0, 83.0, 84.0)" in sentence
    assert "chapter 06's 80.0 ± 1.0%" in sentence
    assert "+3.0 ± 0.8 points (± standard error)" in sentence
    assert "Verdict: helps (Welch's t-test, p = 0.02)" in sentence
    assert "its main run took 3 epochs (10.0 min)" in sentence
    assert "no recorded run" in report.chapter_gain("08", tmp_path)


# Tables.

def test_tables_show_seeds_rule_and_cost_without_constant_columns(tmp_path):
    write_runs(tmp_path, "01", {0: 0.60, 1: 0.62})
    write_runs(tmp_path, "02", {0: 0.70})
    table = report.accuracy_table_markdown(tmp_path)
    accuracy_rows = [line for line in table.splitlines() if line.startswith("| 0")][:8]
    assert accuracy_rows[0] == "| 01 Data and a baseline CNN | 61.0 ± 1.4% | 60.0 · 62.0 | - | - |"
    assert accuracy_rows[1] == "| 02 Normalization | 70.0% | 70.0 | +9.0 | one seed: no verdict |"
    assert accuracy_rows[2] == "| 03 A deeper CNN (missing) | - | - | - | - |"
    assert "Welch's t-test" in table and "p < 0.05" in table and "1 to 2 per chapter" in table
    assert "| Data |" not in table and "data test data (fingerprint fp)" in table
    assert "- chapters 01-02; seed 1 of chapter 01: Test CPU" in table
    # A skipped seed is named: seeds 0 and 2 of chapter 02.
    write_runs(tmp_path, "02", {2: 0.72})
    assert "| 02 Normalization | 71.0 ± 1.4% | 0: 70.0 · 2: 72.0 |" in report.accuracy_table_markdown(tmp_path)
    # The cost table: the main run's epochs and time; the study's cost and what is left.
    assert "| 01 | a small CNN on raw pixels | 61.0% | 3 / 15 | 10.0 min | 100 |" in table
    assert "Seed study: 1 further run recorded (10 min)" in table
    # 01 needs 1 run and 02 needs 2 (10 min each, as their main runs); the other chapters 3 each, of unknown cost.
    from cifar_lessons.book.chapters import training_chapters

    others = 3 * (len(training_chapters()) - 2)
    assert (f"3 seeds per chapter need {3 + others} more, about 30 min at the main runs' wall times "
            f"(the {others} runs of chapters without a main run not counted)") in table


def test_readme_block_is_regenerated_from_the_records(tmp_path):
    write_runs(tmp_path, "01", {0: 0.60})
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    assert report.update_readme(readme, tmp_path) is True
    assert report.current_readme_block(readme) == report.readme_block(tmp_path)
    assert report.update_readme(readme, tmp_path) is False
    write_runs(tmp_path, "01", {1: 0.64})
    assert report.update_readme(readme, tmp_path) is True and "60.0 · 64.0" in readme.read_text()


# The chart.

def test_chart_zooms_on_the_values_and_shows_spread_seeds_and_milestones(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cifar_lessons import style
    from cifar_lessons.book.charts import chapter_accuracies

    figure = chapter_accuracies(["01 A", "02 B", "03 C"], [[0.80, 0.82, 0.78], [0.85], [0.70, 0.72]],
                                [0.76, 0.83, None])
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    assert 60 < low <= 70 - 1 and 85 + 1 <= high < 90  # not from 0: the range the values span
    # Error bars, ± one sample standard deviation, only where there are two seeds or more.
    [bars] = ax.containers
    segments = bars.lines[2][0].get_segments()
    assert [(round(a[0], 6), round(b[0], 6)) for a, b in segments] == [(78.0, 82.0), (round(71 - 2 ** 0.5, 6),
                                                                        round(71 + 2 ** 0.5, 6))]
    seeds = [collection for collection in ax.collections if collection.get_label() == "each seed"]
    assert len(seeds[0].get_offsets()) == 6
    assert figure.get_figwidth() == pytest.approx(style.COLUMN_WIDTH)
    from matplotlib.colors import to_hex

    from cifar_lessons.style import PAPER

    assert to_hex(figure.patch.get_facecolor()) == PAPER  # ink on white paper, in both schemes
    # The legend sits outside the plotting area, so it covers no point.
    figure.canvas.draw()
    legend = figure.legends[0].get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())
    labels = [label.get_text() for label in ax.child_axes[0].get_yticklabels()]
    assert labels == ["80.0 ± 2.0 (n=3)", "85.0 (n=1)", "71.0 ± 1.4 (n=2)"]
    plt.close(figure)


def test_site_chart_is_sized_for_the_content_column(tmp_path):
    import base64
    import io
    import re

    from book_site import results_chart_markdown
    from PIL import Image

    assert "No chapter" in results_chart_markdown(tmp_path)
    write_runs(tmp_path, "01", {0: 0.60, 1: 0.62})
    markdown = results_chart_markdown(tmp_path)
    from cifar_lessons import style

    width = round(style.COLUMN_WIDTH * style.DPI)  # its natural size, as the notebooks' figures
    assert f'width="{width}"' in markdown
    image = Image.open(io.BytesIO(base64.b64decode(re.search(r"base64,([^)]+)\)", markdown).group(1))))
    assert image.size[0] == 2 * width  # twice the displayed width, for HiDPI screens
    assert image.convert("RGB").getpixel((0, 0)) == (255, 255, 255)  # white paper


# The study command.

def test_study_trains_only_missing_seeds_seed_by_seed(tmp_path, monkeypatch, capsys):
    from cifar_lessons import data
    from cifar_lessons.book import cli, runs

    write_runs(tmp_path, "01", {0: 0.60, 1: 0.61})
    write_runs(tmp_path, "02", {0: 0.70})
    chapter = get_chapter("02")
    stale = dataclasses.replace(chapter.config, seed=1, epochs=1)
    write_record(seed_run_dir(chapter, 1, tmp_path),
                 fake_record(chapter, 1, 0.1, config=stale.record_dict(), config_hash=stale.hash))
    trained = []

    def fake_run_chapter(chapter_id, results_dir=None, data=None, seed=None, **kwargs):
        trained.append((chapter_id, seed))
        write_runs(results_dir, chapter_id, {seed: 0.5})
        return type("Run", (), {"record": fake_record(get_chapter(chapter_id), seed, 0.5)})()

    monkeypatch.setattr(runs, "run_chapter", fake_run_chapter)
    monkeypatch.setattr(data, "load_cifar10", lambda *args, **kwargs: type("D", (), {"describe": lambda s: "d"})())
    assert cli.main(["--results", str(tmp_path), "study", "--seeds", "0", "1", "2", "--chapters", "01", "02",
                     "--plan"]) == 0
    assert trained == [] and "3 to train" in capsys.readouterr().out
    assert cli.main(["--results", str(tmp_path), "study", "--seeds", "0", "1", "2", "--chapters", "01", "02"]) == 0
    assert trained == [("02", 1), ("01", 2), ("02", 2)]  # the stale seed-1 run retrains; seed by seed
    assert cli.main(["--results", str(tmp_path), "study", "--seeds", "0", "1", "2", "--chapters", "01", "02"]) == 0
    assert len(trained) == 3  # a second call finds everything recorded


def test_study_rejects_analysis_chapters_and_negative_seeds(tmp_path, capsys):
    from cifar_lessons.book import cli

    assert cli.main(["--results", str(tmp_path), "study", "--chapters", "09"]) == 2
    assert "trains nothing" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects it, with a usage line
        cli.main(["--results", str(tmp_path), "study", "--seeds", "-1"])
    assert exit_info.value.code == 2
    assert "'-1' is not a seed: use a whole number from 0" in capsys.readouterr().err


# The early-stopping control run (chapter 8): chapter 7's recipe to chapter 8's ceiling without the rule.

def _write_run_with_history(folder, record: dict, history: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / results.MODEL_FILE).write_bytes(b"stand-in model")
    results.write_json_atomic(folder / results.HISTORY_FILE, history)
    record = {**record, "files": {name: results.file_sha256(folder / name)
                                  for name in (results.MODEL_FILE, results.HISTORY_FILE)}}
    results.write_json_atomic(folder / results.RECORD_FILE, results.seal_record(record))


def test_controls_read_what_the_rule_saved_and_cost(tmp_path):
    from cifar_lessons.book.runs import control_config, control_run_dir

    chapter = get_chapter("08")
    assert ladder.early_stopping_controls("08", tmp_path) == []

    def history(val):
        return {"epoch": list(range(1, len(val) + 1)), "val_accuracy": val, "accuracy": val, "loss": val,
                "val_loss": val, "epoch_time_s": [60.0] * len(val), "epoch_cpu_s": [90.0] * len(val),
                "learning_rate": [1e-3] * len(val)}

    shared = [0.50, 0.60, 0.70, 0.72]
    _write_run_with_history(seed_run_dir(chapter, 1, tmp_path),
                            fake_record(chapter, 1, 0.80, epochs_run=4, best_epoch=3, wall_time_s=240.0),
                            history(shared))
    write_runs(tmp_path, "08", {0: 0.81})  # the main run, which a seed run is compared with
    control = control_config(chapter, 1)
    record = {**fake_record(chapter, 1, 0.79, epochs_run=6, best_epoch=6, wall_time_s=400.0),
              "chapter": "08-control", "config": control.record_dict(), "config_hash": control.hash,
              "identity": _expected_identity(control)}
    record["identity"] = {**record["identity"], "data": record["data"]["fingerprint"]}
    _write_run_with_history(control_run_dir(chapter, 1, tmp_path), record, history(shared + [0.74, 0.73]))

    (found,) = ladder.early_stopping_controls("08", tmp_path)
    assert (found["seed"], found["shared_epochs"], found["stop_epoch"], found["ceiling"]) == (1, 4, 4, 6)
    # The control after the stop: its validation accuracy at the stop, its last and its best epoch.
    assert (found["control_val_at_stop"], found["control_val_last"]) == (0.72, 0.73)
    assert (found["control_val_best"], found["control_best_epoch"]) == (0.74, 5)
    assert (found["control_test_accuracy"], found["test_accuracy"], found["val_kept"]) == (0.79, 0.80, 0.70)
    # The time saved is the control's own epochs after the stop, both clocks, from one run.
    assert (found["saved_wall_s"], found["saved_cpu_s"]) == (120.0, 180.0)

    # A control made with another recipe is left out, not compared.
    stale = {**record, "config": {**control.record_dict(), "learning_rate": 0.01}}
    _write_run_with_history(control_run_dir(chapter, 1, tmp_path), stale, history(shared + [0.74, 0.73]))
    assert ladder.early_stopping_controls("08", tmp_path) == []
