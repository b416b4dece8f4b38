"""Run records: round trip, malformed files, staleness, atomic writes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cifar_lessons import results
from cifar_lessons.book import chapter_status
from cifar_lessons.chapters import get_chapter


def make_record(chapter, **changes):
    """A well-formed record for a chapter's current config (values are placeholders, not results)."""
    record = {
        "format": results.RECORD_FORMAT, "chapter": chapter.id, "config": chapter.config.to_dict(),
        "config_hash": chapter.config.hash, "seed": 0, "epochs_run": 1, "best_epoch": 1,
        "wall_time_s": 1.0, "images_per_s": 1.0, "hardware": {}, "versions": {}, "data": {},
        "code": {}, "val_accuracy": 0.5, "val_loss": 1.0, "test_accuracy": 0.5, "test_loss": 1.0,
        "created": "2026-01-01T00:00:00+00:00", "quick": False,
    }
    record.update(changes)
    return record


def test_write_json_atomic_round_trip_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "record.json"
    results.write_json_atomic(path, {"a": 1})
    results.write_json_atomic(path, {"a": 2})
    assert results.read_json(path) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "record.json"
    results.write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        results.write_json_atomic(path, {"a": object()})
    assert results.read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_status_ok_missing_malformed_and_stale(tmp_path):
    chapter = get_chapter("05")
    assert chapter_status(chapter, tmp_path)["status"] == "missing"
    results.write_json_atomic(tmp_path / "05" / "record.json", make_record(chapter))
    assert chapter_status(chapter, tmp_path)["status"] == "ok"

    changed = dataclasses.replace(chapter, config=dataclasses.replace(chapter.config, epochs=99))
    stale = chapter_status(changed, tmp_path)
    assert stale["status"] == "stale" and "cifar-lessons train 05" in stale["message"]

    results.write_json_atomic(tmp_path / "05" / "record.json", make_record(chapter, quick=True))
    assert chapter_status(chapter, tmp_path)["status"] == "stale"

    (tmp_path / "05" / "record.json").write_text("{ not json")
    malformed = chapter_status(chapter, tmp_path)
    assert malformed["status"] == "malformed" and "not valid JSON" in malformed["message"]


@pytest.mark.parametrize("change,message", [
    ({"test_accuracy": "high"}, "'test_accuracy' has the wrong type"),
    ({"test_accuracy": 1.5}, "outside 0-1"),
    ({"epochs_run": True}, "'epochs_run' has the wrong type"),
    ({"format": 99}, "format 99"),
])
def test_validate_record_rejects_bad_values(change, message):
    record = make_record(get_chapter("01"), **change)
    with pytest.raises(results.RecordError, match=message):
        results.validate_record(record)


def test_validate_record_names_missing_keys():
    record = make_record(get_chapter("01"))
    del record["data"]
    with pytest.raises(results.RecordError, match="'data' missing"):
        results.validate_record(record)
    with pytest.raises(results.RecordError, match="JSON object"):
        results.validate_record([record])


def test_config_hash_is_order_independent_and_sensitive():
    assert results.config_hash({"a": 1, "b": 2}) == results.config_hash({"b": 2, "a": 1})
    assert results.config_hash({"a": 1}) != results.config_hash({"a": 2})
    assert json.dumps(get_chapter("08").config.to_dict())  # plain JSON types only


def test_readme_results_block_matches_the_run_records():
    from cifar_lessons.chapters import REPO_ROOT
    from cifar_lessons.report import current_readme_block, readme_block

    assert current_readme_block(REPO_ROOT / "README.md") == readme_block(), (
        "README.md's results block is stale: run `cifar-lessons report --update-readme`")


def test_validation_swing_reports_last_and_best_epoch(tmp_path):
    from cifar_lessons.report import validation_swing

    chapter = get_chapter("06")
    assert "no recorded run" in validation_swing("06", tmp_path)
    results.write_json_atomic(tmp_path / "06" / "record.json", make_record(chapter, epochs_run=3))
    results.write_json_atomic(tmp_path / "06" / results.HISTORY_FILE, {"val_accuracy": [0.5, 0.75, 0.625]})
    assert validation_swing("06", tmp_path) == (
        "Chapter 06: validation accuracy 62.5% at the last epoch (3), 75.0% at its highest (epoch 2).")


def test_table_names_the_machine_of_each_chapter(tmp_path):
    from cifar_lessons.report import accuracy_table_markdown

    def environment(cpu):
        return {"hardware": {"cpu": cpu, "cores": 2, "gpus": []}, "precision": "float32",
                "versions": {"python": "3", "tensorflow": "2", "keras": "3"},
                "data": {"name": "test data", "fingerprint": "f"}}

    for chapter_id, cpu in [("01", "CPU A"), ("02", "CPU A"), ("03", "CPU B"), ("04", "CPU A")]:
        results.write_json_atomic(tmp_path / chapter_id / "record.json",
                                  make_record(get_chapter(chapter_id), **environment(cpu)))
    table = accuracy_table_markdown(tmp_path)
    assert "- chapters 01, 02, 04: CPU A, 2 cores, no GPU, float32;" in table
    assert "- chapter 03: CPU B, 2 cores, no GPU, float32;" in table


def test_benchmark_table_shows_median_and_range(tmp_path):
    from cifar_lessons.report import benchmark_markdown

    assert benchmark_markdown(tmp_path) == ""
    results.write_json_atomic(tmp_path / "benchmark.json", {
        "rows": [{"model": "m", "chapter": "08", "batch_size": 256, "precision": "float32", "images_per_s": 400,
                  "images_per_s_range": [350, 420], "epoch_s_45k": 112}],
        "steps": 30, "repeats": 3, "created": "2026-01-01T00:00:00+00:00",
        "hardware": {"cpu": "Test CPU", "cores": 2}, "versions": {"tensorflow": "x", "keras": "y"}})
    table = benchmark_markdown(tmp_path)
    assert "| m | 256 | float32 | 400 | 350-420 | 112 |" in table
    assert "median of 3 measurements of 30 steps" in table and "Test CPU, 2 cores" in table
