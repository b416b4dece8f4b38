"""Run records: round trip, malformed files, staleness, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import pytest

from cifar_lessons import results
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.book.runs import chapter_status, run_dir_for


def make_record(chapter, seal=True, **changes):
    """A well-formed record for a chapter's current code and config (values are placeholders, not results)."""
    from cifar_lessons.training import expected_identity

    record = {
        "format": results.RECORD_FORMAT, "chapter": chapter.id, "config": chapter.config.record_dict(),
        "config_hash": chapter.config.hash, "seed": 0, "epochs_run": 1, "best_epoch": 1,
        "wall_time_s": 1.0, "images_per_s": 1.0, "hardware": {}, "versions": {},
        "data": {"name": "test data", "fingerprint": "f"}, "code": {}, "val_accuracy": 0.5, "val_loss": 1.0,
        "test_accuracy": 0.5, "test_loss": 1.0, "created": "2026-01-01T00:00:00+00:00", "quick": False,
        "precision": "float32", "identity": expected_identity(chapter.config, "float32", "f"), "files": {},
    }
    record.update(changes)
    return results.seal_record(record) if seal else record


def write_run(folder, record, history=None):
    """A run folder: placeholder model and history files, and the record naming their checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / results.MODEL_FILE).write_bytes(b"placeholder model")
    results.write_json_atomic(folder / results.HISTORY_FILE, history or {"val_accuracy": [0.5]})
    files = {name: results.file_sha256(folder / name) for name in (results.MODEL_FILE, results.HISTORY_FILE)}
    results.write_json_atomic(folder / results.RECORD_FILE, results.seal_record({**record, "files": files}))


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
    write_run(tmp_path / "05", make_record(chapter))
    assert chapter_status(chapter, tmp_path)["status"] == "ok"

    changed = dataclasses.replace(chapter, config=dataclasses.replace(chapter.config, epochs=99))
    stale = chapter_status(changed, tmp_path)
    assert stale["status"] == "stale" and "cifar-lessons train 05" in stale["message"]
    assert "config changed (epochs 15 -> 99)" in stale["reasons"]

    write_run(tmp_path / "05", make_record(chapter, quick=True))
    assert chapter_status(chapter, tmp_path)["reasons"] == ["it is a quick smoke run, not a result"]

    (tmp_path / "05" / "record.json").write_text("{ not json")
    malformed = chapter_status(chapter, tmp_path)
    assert malformed["status"] == "malformed" and "not valid JSON" in malformed["message"]


def test_an_architecture_change_with_the_same_config_makes_the_record_stale(tmp_path, monkeypatch):
    from cifar_lessons import models, training
    from cifar_lessons.book import identities

    chapter = get_chapter("03")
    write_run(tmp_path / "03", make_record(chapter))
    assert chapter_status(chapter, tmp_path)["status"] == "ok"
    original = models.conv_stage

    def wider_kernels(x, filters, stage, config):
        x = keras.layers.Conv2D(filters, 5, padding="same", name=f"stage{stage}_extra")(x)
        return original(x, filters, stage, config)

    monkeypatch.setattr(models, "conv_stage", wider_kernels)
    # A patch in memory leaves the source hash alone, so the identity file would still be trusted.
    monkeypatch.setattr(identities, "_cached", lambda: {})
    training._code_identity_of.cache_clear()
    try:
        status = chapter_status(chapter, tmp_path)
    finally:
        monkeypatch.undo()
        training._code_identity_of.cache_clear()
    assert status["status"] == "stale"
    assert [reason.split(" (")[0] for reason in status["reasons"]] == ["architecture changed"]


def test_the_identity_file_matches_what_the_code_builds():
    """results/identities.json lets list/report/site skip TensorFlow; it must say what the code really builds."""
    import json

    from cifar_lessons.book import identities

    saved = json.loads(identities.IDENTITIES_FILE.read_text())
    assert saved["identities"] == identities.compute_all()["identities"], (
        "results/identities.json no longer matches the code: run `cifar-lessons identities` and commit it")


def test_the_identity_source_key_ignores_comments_docstrings_and_other_modules(tmp_path):
    """An edit that changes no identity does not invalidate the cache; a change to the code that builds does."""
    import shutil

    from cifar_lessons.book import identities

    for name in identities.IDENTITY_MODULES:
        (tmp_path / f"{name}.py").parent.mkdir(exist_ok=True)
        shutil.copy(results.PACKAGE_DIR / f"{name}.py", tmp_path / f"{name}.py")
    key = identities.source_key(tmp_path)
    assert key == identities.source_key()
    models = tmp_path / "models.py"
    source = models.read_text()
    edited = source.replace('"""A 3x3 convolution without bias', '"""A reworded docstring: a 3x3 convolution', 1)
    models.write_text(edited.replace("def conv_block(", "# a new comment\ndef conv_block(", 1))
    assert identities.source_key(tmp_path) == key
    models.write_text(source.replace('padding="same"', 'padding="valid"', 1))
    assert identities.source_key(tmp_path) != key


def test_the_identity_file_is_ignored_once_the_source_changes(tmp_path, monkeypatch):
    """The file is a cache: read while the code that decides identities is unchanged, ignored (identities are
    then built from the code, slower but the same) once it changed. An edit that changes no identity leaves
    the suite green (test_the_identity_file_matches_what_the_code_builds compares identities, not source keys)."""
    from cifar_lessons.book import identities

    path = tmp_path / "identities.json"
    content = {"source_key": identities.source_key(), "identities": {"TrainConfig:x:float32": {"config": "x"}}}
    path.write_text(json.dumps(content))
    identities._cached.cache_clear()
    try:
        assert identities._cached(path) == content["identities"]
        monkeypatch.setattr(identities, "source_key", lambda: "0" * 16)
        identities._cached.cache_clear()
        assert identities._cached(path) == {}
    finally:
        monkeypatch.undo()
        identities._cached.cache_clear()


@pytest.mark.parametrize("part,value,reason", [
    ("callbacks", {"ReduceLROnPlateau": {"min_lr": 1e-6}}, "callbacks changed (ReduceLROnPlateau"),
    ("optimizer", {"epsilon": 1e-3}, "optimizer changed (epsilon 0.001 -> 1e-07)"),
    ("augmentation", [{"class": "RandomFlip", "seed": 1}], "augmentation changed"),
    ("precision", "float16", "precision changed"),
])
def test_any_identity_change_makes_the_record_stale_and_says_why(tmp_path, part, value, reason):
    chapter = get_chapter("07")
    record = make_record(chapter)
    old = record["identity"][part]
    record["identity"][part] = {**old, **value} if isinstance(old, dict) else value
    write_run(tmp_path / "07", record)
    status = chapter_status(chapter, tmp_path)
    assert status["status"] == "stale"
    assert any(line.startswith(reason) for line in status["reasons"]), status["reasons"]


def test_other_data_makes_the_record_stale_when_the_data_is_known(tmp_path):
    chapter = get_chapter("02")
    write_run(tmp_path / "02", make_record(chapter))
    assert chapter_status(chapter, tmp_path, data_fingerprint="f")["status"] == "ok"
    status = chapter_status(chapter, tmp_path, data_fingerprint="other")
    assert status["status"] == "stale" and status["reasons"] == ['data changed (recorded "f", now "other")']


def test_a_model_or_history_that_is_not_the_recorded_one_is_malformed(tmp_path):
    chapter = get_chapter("04")
    write_run(tmp_path / "04", make_record(chapter))
    (tmp_path / "04" / results.MODEL_FILE).write_bytes(b"a model from another run")
    status = chapter_status(chapter, tmp_path)
    assert status["status"] == "malformed" and "is not the file" in status["message"]
    (tmp_path / "04" / results.MODEL_FILE).unlink()
    assert "model.keras is missing" in chapter_status(chapter, tmp_path)["message"]


@pytest.mark.parametrize("change,message", [
    ({"test_accuracy": "high"}, "'test_accuracy' has the wrong type"),
    ({"test_accuracy": 1.5}, "outside 0-1"),
    ({"val_accuracy": -0.1}, "'val_accuracy' outside 0-1"),
    ({"epochs_run": True}, "'epochs_run' has the wrong type"),
    ({"best_epoch": 3}, "'best_epoch' is not between 1 and 'epochs_run'"),
    ({"test_loss": float("nan")}, "'test_loss' is not a finite number"),
    ({"wall_time_s": float("inf")}, "'wall_time_s' is not a finite number"),
    ({"config_hash": "0000000000000000"}, "'config' does not match 'config_hash'"),
    ({"identity": {}}, "'identity.architecture' missing"),
    ({"format": 1}, "format 1 is not 2.*Retrain the chapter"),
])
def test_validate_record_rejects_bad_values(change, message):
    record = make_record(get_chapter("01"), **change)
    with pytest.raises(results.RecordError, match=message):
        results.validate_record(record)


def test_an_edited_record_fails_its_checksum():
    record = make_record(get_chapter("01"))
    results.validate_record(record)
    record["test_accuracy"] = 0.99  # a hand edit: types and ranges are fine, the checksum is not
    with pytest.raises(results.RecordError, match="checksum does not match"):
        results.validate_record(record)


def test_validate_record_names_missing_keys():
    record = make_record(get_chapter("01"))
    del record["data"]
    with pytest.raises(results.RecordError, match="'data' missing"):
        results.validate_record(record)
    with pytest.raises(results.RecordError, match="JSON object"):
        results.validate_record([record])


def test_nan_is_never_written_or_read_as_json(tmp_path):
    path = tmp_path / "record.json"
    with pytest.raises(ValueError):
        results.write_json_atomic(path, {"loss": float("nan")})
    assert not path.exists()
    path.write_text('{"loss": NaN}')
    with pytest.raises(results.RecordError, match="not valid JSON"):
        results.read_json(path)


def test_committed_records_are_current_and_name_no_machine_path():
    from cifar_lessons.book.chapters import training_chapters

    for chapter in training_chapters():
        record = results.load_record(run_dir_for(chapter))
        assert "/" not in record["data"]["location"], record["data"]["location"]
    for path in sorted(results.default_results_dir().glob("[0-9][0-9]/seed*/record.json")):
        record = results.validate_record(results.read_json(path), path)
        assert "/" not in record["data"]["location"]


def test_config_hash_is_order_independent_and_sensitive():
    assert results.config_hash({"a": 1, "b": 2}) == results.config_hash({"b": 2, "a": 1})
    assert results.config_hash({"a": 1}) != results.config_hash({"a": 2})
    assert json.dumps(get_chapter("08").config.to_dict())  # plain JSON types only


def test_readme_results_block_matches_the_run_records():
    from cifar_lessons.book.chapters import REPO_ROOT
    from cifar_lessons.book.report import current_readme_block, readme_block

    assert current_readme_block(REPO_ROOT / "README.md") == readme_block(), (
        "README.md's results block is stale: run `cifar-lessons report --update-readme`")


def test_a_broken_run_names_the_command_that_trains_it_again():
    """A control run is recorded as chapter "NN-control" with its seed: the hint is the CLI's own command."""
    assert results.retrain_command({"chapter": "05", "seed": 0}) == "cifar-lessons train 05"
    assert results.retrain_command({"chapter": "05", "seed": 2}) == "cifar-lessons train 05 --seed 2"
    assert results.retrain_command({"chapter": "08-control", "seed": 1}) == "cifar-lessons train 08 --control --seed 1"


def test_validation_swing_reports_last_and_best_epoch(tmp_path):
    from cifar_lessons.book.ladder import validation_swing

    chapter = get_chapter("06")
    assert "no recorded run" in validation_swing("06", tmp_path)
    write_run(tmp_path / "06", make_record(chapter, epochs_run=3), {"val_accuracy": [0.5, 0.75, 0.625]})
    assert validation_swing("06", tmp_path) == (
        "Chapter 06: validation accuracy 62.5% at the last epoch (3), 75.0% at its highest (epoch 2).")
    # With early stopping the weights of best_epoch are the model's: the line names that epoch too.
    eight = get_chapter("08")
    write_run(tmp_path / "08", make_record(eight, epochs_run=4, best_epoch=1),
              {"val_accuracy": [0.5, 0.75, 0.625, 0.875]})
    assert validation_swing("08", tmp_path) == (
        "Chapter 08: validation accuracy 87.5% at the last epoch (4), 87.5% at its highest (epoch 4), "
        "50.0% at the epoch it kept (1).")


def test_table_names_the_machine_of_each_chapter(tmp_path):
    from cifar_lessons.book.report import accuracy_table_markdown

    def environment(cpu, flags=None):
        hardware = {"cpu": cpu, "cores": 2, "gpus": [], **({"cpu_flags": flags} if flags is not None else {})}
        return {"hardware": hardware, "precision": "float32",
                "versions": {"python": "3", "tensorflow": "2", "keras": "3"},
                "data": {"name": "test data", "fingerprint": "f"}}

    runs = [("01", "CPU A", None), ("02", "CPU A", None), ("03", "CPU B", None), ("04", "CPU A", None),
            ("05", "CPU A", ["avx2", "avx512_bf16"])]  # one CPU name, two hosts: the flags tell them apart
    for chapter_id, cpu, flags in runs:
        write_run(tmp_path / chapter_id, make_record(get_chapter(chapter_id), **environment(cpu, flags)))
    table = accuracy_table_markdown(tmp_path)
    assert "- chapters 01, 02, 04: CPU A (CPU flags not recorded), 2 cores, no GPU, float32;" in table
    assert "- chapter 03: CPU B (CPU flags not recorded), 2 cores, no GPU, float32;" in table
    assert "- chapter 05: CPU A (flags avx2 avx512_bf16), 2 cores, no GPU, float32;" in table


def test_benchmark_table_shows_median_range_cpu_time_and_gflops(tmp_path):
    from cifar_lessons.book.benchmarks import benchmark_markdown

    assert benchmark_markdown(tmp_path) == ""
    results.write_json_atomic(tmp_path / "benchmark.json", {
        "rows": [{"model": "m", "chapter": "08", "batch_size": 256, "precision": "float32", "pipeline": "tf.data",
                  "images_per_s": 400, "images_per_s_range": [350, 420], "cpu_ms_per_image": 4.9,
                  "training_mflop_per_image": 318.3, "gflop_per_s": 127.3, "epoch_s_45k": 112}],
        "images_per_measurement": 4096, "repeats": 3, "threads": 2, "cpu_mhz": 2100.0,
        "float32_peak_gflop_per_s": 268.8, "float32_flops_per_cycle_assumed": 64,
        "created": "2026-01-01T00:00:00+00:00", "versions": {"tensorflow": "x", "keras": "y"},
        "hardware": {"cpu": "Test CPU", "cores": 2, "cpu_flags": ["avx512f"]}})
    table = benchmark_markdown(tmp_path)
    assert "| m | 256 | float32 | tf.data | 400 | 350-420 | 4.9 | 318 | 127.3 |" in table
    assert "median of 3 interleaved measurements of 4,096 images" in table
    assert "Test CPU (avx512f), 2 cores" in table and "peak of these cores is about 269 GFLOP/s" in table


def test_main_runs_estimate_sums_epochs_at_the_benchmarked_rates(tmp_path):
    """Chapter 1's and chapter 5's main runs at their networks' measured rates: 15 epochs of 45,000 images at
    2,250 images/s is 5 min, 30 at 450 is 50 min; a run whose network, batch or precision was not measured
    gives no estimate rather than a partial one."""
    from cifar_lessons.book.benchmarks import main_runs_estimate

    def row(chapter, batch, precision, rate):
        return {"chapter": chapter, "batch_size": batch, "precision": precision, "pipeline": "numpy",
                "images_per_s": rate}

    results.write_json_atomic(tmp_path / "benchmark.json", {
        "rows": [row("02", 128, "mixed_bfloat16", 2250), row("08", 128, "mixed_bfloat16", 450),
                 row("08", 128, "float32", 900)],
        "created": "2026-01-01T00:00:00+00:00", "hardware": {"cpu": "Test CPU", "cores": 2}})

    def record(chapter, epochs, precision="mixed_bfloat16", batch=128):
        return {"chapter": chapter, "epochs_run": epochs, "train_images": 45000, "precision": precision,
                "config": {"batch_size": batch}}

    sentence = main_runs_estimate([record("01", 15), record("05", 30)], tmp_path)
    assert "measured on Test CPU (2026-01-01)" in sentence and "take about 55 min" in sentence
    assert main_runs_estimate([record("01", 15), record("05", 30, batch=512)], tmp_path) == ""
    assert main_runs_estimate([record("01", 15, precision="float32")], tmp_path) == ""
    assert main_runs_estimate([record("01", 15)], tmp_path / "nothing") == ""


def test_flops_of_a_known_network():
    import keras

    from cifar_lessons.going_further import flops

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)  # 8*8 positions x 27 weights x 4 filters x 2
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))  # 256 inputs x 5 outputs x 2
    model = keras.Model(inputs, outputs)
    assert flops.forward_flops(model) == 2 * 64 * 27 * 4 + 2 * 256 * 5
    assert flops.training_flops(model) == 3 * flops.forward_flops(model)


def test_profile_table_names_groups_and_step_time(tmp_path):
    from cifar_lessons.book.benchmarks import profile_markdown

    assert profile_markdown(tmp_path) == ""
    results.write_json_atomic(tmp_path / "profile_11.json", {
        "rows": [{"group": "3x3 convolutions", "layers": 6, "ms_per_step": 120.0, "share_of_layer_time": 0.45,
                  "gflop_per_s": 300.0}, {"group": "GELU", "layers": 7, "ms_per_step": 90.0,
                                          "share_of_layer_time": 0.34, "gflop_per_s": None}],
        "batch_size": 1024, "precision": "mixed_bfloat16", "layers_ms_per_step": 265.0, "train_step_ms": 200.0,
        "train_images_per_s": 5120, "repeats": 5, "threads": 2, "created": "2026-01-01T00:00:00+00:00",
        "versions": {"tensorflow": "x", "keras": "y"}, "hardware": {"cpu": "Test CPU", "cores": 2}})
    table = profile_markdown(tmp_path)
    assert "| 3x3 convolutions | 6 | 120.0 | 45% | 300.0 |" in table and "| GELU | 7 | 90.0 | 34% | - |" in table
    assert "whole training step" in table and "200.0 ms, 5120 images/s" in table


def test_cpu_name_tells_two_generations_with_one_model_name_apart():
    """Zen 4 and Zen 5 hosts both report "AMD EPYC" with AVX512_BF16; their family numbers differ."""
    zen4 = {"cpu": "AMD EPYC", "cores": 2, "cpu_flags": ["avx512_bf16"], "cpu_family": 25, "cpu_model": 17}
    zen5 = {**zen4, "cpu_family": 26, "cpu_model": 2}
    assert results.cpu_name(zen4) != results.cpu_name(zen5)
    older = {key: value for key, value in zen5.items() if not key.startswith("cpu_")}
    assert results.cpu_name(older) == "AMD EPYC"  # records made before the numbers were kept
    from cifar_lessons.going_further.race import host_name

    assert host_name({"hardware": zen4}) != host_name({"hardware": zen5})


def test_hashing_a_fifo_named_like_a_model_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    with pytest.raises(results.RecordError, match="not a regular file"):
        results.file_sha256(fifo)  # no writer ever comes: reading it would wait forever


RESULTS_DIR = results.default_results_dir()


def _momentum_runs():
    """Runs of a chapter's recipe at a stated batch-norm momentum, beside the chapter's own runs: the runs the
    ladder replaced (NN/momentum0.99/seedS, and chapter 8's control NN/momentum0.99/control/seedS) and chapter
    5's same-host pair (05/same_host/momentumM/seedS)."""
    return sorted([*RESULTS_DIR.glob("[0-9][0-9]/momentum*/seed[0-9]"),
                   *RESULTS_DIR.glob("[0-9][0-9]/momentum*/control/seed[0-9]"),
                   *RESULTS_DIR.glob("[0-9][0-9]/same_host/momentum*/seed[0-9]")])


@pytest.mark.parametrize("run_dir", sorted(RESULTS_DIR.glob("[0-9][0-9]/control/seed[0-9]")),
                         ids=lambda path: path.relative_to(RESULTS_DIR).as_posix().replace("/", "-"))
def test_control_run_is_current(run_dir):
    """A recorded control run is its chapter's recipe without the stopping rule, as the code builds it now:
    chapter 8's control table leaves out any control that is not, so a stale one fails here instead."""
    from cifar_lessons.book.runs import control_status

    status = control_status(get_chapter(run_dir.parent.parent.name), int(run_dir.name.removeprefix("seed")))
    assert status["status"] == "ok", status["message"]


# Often there is no pending seed at all: an empty list then passes (nothing waits), rather than skipping.
@pytest.mark.parametrize("run_dir", sorted(RESULTS_DIR.glob("[0-9][0-9]/pending/seed[0-9]")) or [None],
                         ids=lambda path: "none" if path is None else
                         path.relative_to(RESULTS_DIR).as_posix().replace("/", "-"))
def test_pending_run_is_current_and_not_yet_read(run_dir):
    """A seed that has landed in NN/pending/seedS is its chapter's recipe with that seed, as the code builds it now,
    and the book does not read it yet: the chapter takes it in (NN/seedS) when its set is complete and its prose is
    rewritten on it, so until then no number in the book moves."""
    from cifar_lessons.book.runs import run_status
    from cifar_lessons.book.seeds import seed_folders

    if run_dir is None:  # no seed waits to be read
        return
    chapter = get_chapter(run_dir.parent.parent.name)
    seed = int(run_dir.name.removeprefix("seed"))
    status = run_status(run_dir, dataclasses.replace(chapter.config, seed=seed), require_model=False)
    assert status["status"] == "ok", status["message"]
    assert status["record"]["seed"] == seed and not status["record"]["quick"]
    assert seed not in seed_folders(run_dir.parent.parent), f"seed {seed} is both pending and read"


@pytest.mark.parametrize("run_dir", _momentum_runs(),
                         ids=lambda path: path.relative_to(RESULTS_DIR).as_posix().replace("/", "-"))
def test_momentum_run_is_the_recipe_it_claims(run_dir):
    """Such a run is intact and is its chapter's recipe (or its control's) with its seed and the batch-norm
    momentum its folder names. The code that trained it builds the same network as this code. Only seed 0
    keeps its model, as in the chapters' own seed runs."""
    from cifar_lessons.book.runs import control_config, run_status

    chapter = get_chapter(run_dir.relative_to(RESULTS_DIR).parts[0])
    seed = int(run_dir.name.removeprefix("seed"))
    control = run_dir.parent.name == "control"
    folder = run_dir.parent.parent if control else run_dir.parent
    momentum = float(folder.name.removeprefix("momentum"))
    config = dataclasses.replace(control_config(chapter, seed) if control else chapter.config,
                                 batch_norm_momentum=momentum, seed=seed)
    status = run_status(run_dir, config, require_model=seed == 0 and not control)
    assert status["status"] == "ok", status["message"]
    assert status["record"]["seed"] == seed and not status["record"]["quick"]
