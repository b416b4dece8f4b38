"""The reference runs (airbench94 itself on the JPEG copy): their records, and the reader chapter 11 uses."""

from __future__ import annotations

import json

import pytest

from cifar_lessons import results
from cifar_lessons.book import reference


def _write(path, **changes):
    record = {"variant": "full", "seed": 0, "code": {"commit": "c"}, "settings": {"precision": "bfloat16 autocast"},
              "data": {"fingerprint": "f"}, "epochs": [], "test_accuracy": 0.9, "training_time_s": 1.0,
              "process_cpu_time_s": 2.0, "hardware": {"cpu": "CPU X", "cores": 2, "cpu_flags": []},
              "versions": {}, "created": "2026-12-06T00:00:00+00:00", **changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_means_group_runs_by_variant_and_precision(tmp_path):
    root = reference.reference_root(tmp_path)
    for seed, accuracy in ((0, 0.90), (1, 0.92)):
        _write(root / "full" / f"seed{seed}" / "record.json", seed=seed, test_accuracy=accuracy)
    _write(root / "full-float32" / "seed0" / "record.json", settings={"precision": "float32"}, test_accuracy=0.5)
    means = reference.reference_means(reference.reference_table(tmp_path))
    assert means["full", "bfloat16 autocast"]["seeds"] == [0, 1]
    assert means["full", "bfloat16 autocast"]["test_accuracy"] == pytest.approx(0.91)
    assert means["full", "bfloat16 autocast"]["test_std"] == pytest.approx(0.01 * 2 ** 0.5)
    assert means["full", "float32"]["test_std"] is None  # one seed: no spread


@pytest.mark.parametrize("damage, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"variant": "full"}), "seed missing"),
])
def test_a_damaged_record_is_refused_with_its_name(tmp_path, damage, message):
    path = reference.reference_root(tmp_path) / "full" / "seed0" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(damage)
    with pytest.raises(results.RecordError, match=message) as error:
        reference.reference_table(tmp_path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"variant": "mystery"}, "unknown variant"),
    ({"test_accuracy": 91.0}, "not a fraction"),
    ({"val_accuracy": -0.1}, "not a fraction"),
    ({"test_accuracy": "0.9"}, "test_accuracy is not"),
])
def test_a_record_with_impossible_values_is_refused(tmp_path, changes, message):
    path = _write(reference.reference_root(tmp_path) / "full" / "seed0" / "record.json", **changes)
    with pytest.raises(results.RecordError, match=message):
        reference.load_reference(path)


# The committed records.

def test_committed_reference_runs_name_their_code_data_and_host():
    """Every committed reference run is airbench94 at one commit, on the data the chapter's runs used."""
    rows = reference.reference_table()
    assert rows, "no reference run is committed under results/11/reference"
    chapter_data = results.load_record(results.default_results_dir() / "11")["data"]
    for path in sorted(reference.reference_root().glob("*/seed*/record.json")):
        record = reference.load_reference(path)
        assert record["code"]["repository"] == "KellerJordan/cifar10-airbench"
        assert record["code"]["file"] == "legacy/airbench94.py" and len(record["code"]["commit"]) == 40
        assert record["code"]["changes"], f"{path} lists no changes to airbench's file"
        assert record["data"]["fingerprint"] == chapter_data["fingerprint"], f"{path} used other data"
        assert path.parent.name == f"seed{record['seed']}" and path.parent.parent.name.startswith(record["variant"])
        assert [epoch["epoch"] for epoch in record["epochs"]] == list(range(1, len(record["epochs"]) + 1))
        assert record["hardware"]["cpu"] and record["versions"].get("torch")
        if record["variant"] == "split45":
            assert isinstance(record.get("val_accuracy"), float)


def test_training_rate_counts_airbenchs_steps_by_its_clock_at_the_last_epoch():
    """airbench drops each epoch's last partial batch and stops after ceil(steps per epoch x 9.9) steps."""
    record = {"settings": {"batch_size": 1024, "train_epochs": 9.9}, "data": {"train_images": 50000},
              "epochs": [{"cumulative_training_time_s": 10.0}, {"cumulative_training_time_s": 476.0}]}
    assert reference.train_images_per_s(record) == pytest.approx(1024)  # 476 steps of 1,024 in 476 s
    assert reference.train_images_per_s({**record, "epochs": []}) is None


def test_no_reference_runs_means_no_table(tmp_path):
    assert reference.reference_table(tmp_path) == []
    assert reference.reference_markdown(tmp_path) == ""


def test_split_comparison_compares_means_by_chapter_10s_rule():
    """Means against means (seed numbers do not pair runs across frameworks), judged by Welch's t-test."""
    chapter = {seed: {"val_accuracy": 0.90 + 0.001 * seed, "test_accuracy": 0.89 + 0.001 * seed} for seed in range(3)}
    close = [{"variant": "split45", "val_accuracy": 0.901 + 0.001 * s, "test_accuracy": 0.891 + 0.001 * s}
             for s in range(3)]
    far = [{**row, "test_accuracy": row["test_accuracy"] + 0.02} for row in close]
    rows = {row["split"]: row for row in reference.split_comparison(close, chapter)}
    assert rows["test"]["gain"] == pytest.approx(0.001) and rows["test"]["verdict"] == "not shown"
    low, high = rows["test"]["interval"]
    assert low < 0 < high and rows["test"]["p_value"] > 0.05  # what the runs cannot exclude, both ways
    far_test = {row["split"]: row for row in reference.split_comparison(far, chapter)}["test"]
    assert far_test["verdict"] == "helps"  # airbench94 clearly higher
    assert reference.split_comparison([{"variant": "full", "test_accuracy": 0.9}], chapter) == []
