"""The command line: clear messages and exit codes for bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar_lessons import results
from cifar_lessons.book import cli
from cifar_lessons.book.cli import main


def run_cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "cifar_lessons", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_unknown_chapter_exits_2_with_the_valid_ids(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "42"])
    assert exit_info.value.code == 2
    assert "unknown chapter '42'; choose one of 01, 02" in capsys.readouterr().err


def test_bad_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "01", "--fast"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --fast" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "01", "--seed", "-1"], ["train", "01", "--seed", "x"],
                                  ["study", "--seeds", "0", "4294967296"]])
def test_a_seed_out_of_range_exits_2_with_a_hint(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "is not a seed: use a whole number from 0" in capsys.readouterr().err


def test_analysis_chapter_cannot_be_trained(capsys):
    assert main(["train", "09"]) == 2
    assert "trains nothing" in capsys.readouterr().err


def test_missing_data_is_one_clear_line_not_a_traceback(tmp_path, monkeypatch):
    env = {**os.environ, "CIFAR_LESSONS_DATA": str(tmp_path / "missing.tar.gz")}
    result = run_cli("data", env=env)
    assert result.returncode == 1
    assert "error: CIFAR-10 source" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_and_report_read_a_results_folder(tmp_path, capsys):
    assert main(["--results", str(tmp_path), "list"]) == 0
    listing = capsys.readouterr().out
    assert "08  Longer budget, early stopping" in listing and "missing" in listing
    assert main(["--results", str(tmp_path), "report"]) == 0
    assert "| 01 Data and a baseline CNN (missing)" in capsys.readouterr().out


def test_malformed_record_makes_evaluate_fail_clearly(tmp_path, capsys, real_data):
    (tmp_path / "03").mkdir()
    (tmp_path / "03" / "record.json").write_text("[]")
    assert main(["--results", str(tmp_path), "evaluate", "03"]) == 1
    assert "malformed" in capsys.readouterr().err


def committed_run_copy(tmp_path, chapter_id="01"):
    """A copy of a chapter's committed run folder, to damage without touching results/."""
    folder = tmp_path / chapter_id
    source = results.default_results_dir() / chapter_id
    folder.mkdir()
    for name in (results.RECORD_FILE, results.HISTORY_FILE, results.MODEL_FILE):
        shutil.copy(source / name, folder / name)
    return folder


@pytest.mark.slow
def test_evaluate_fails_when_the_record_disagrees_with_the_measurement(tmp_path, capsys, real_data):
    folder = committed_run_copy(tmp_path)
    record = results.load_record(folder)
    if record["data"]["fingerprint"] != real_data.fingerprint:
        pytest.skip("the configured data is not the data chapter 01 was recorded on")
    assert main(["--results", str(tmp_path), "evaluate", "01"]) == 0  # the committed record is measured as is
    capsys.readouterr()
    # A record whose number was changed (and re-sealed, so only the measurement can tell) is caught.
    results.write_json_atomic(folder / results.RECORD_FILE, results.seal_record({**record, "test_accuracy": 0.99}))
    assert main(["--results", str(tmp_path), "evaluate", "01"]) == 1
    assert "but the record says 99.0%" in capsys.readouterr().err


def test_evaluate_on_other_data_says_so_and_judges_no_milestone(tmp_path, capsys, real_data, monkeypatch):
    import dataclasses

    from cifar_lessons import data as data_module

    committed_run_copy(tmp_path)
    x_test = real_data.x_test.copy()
    x_test[0, 0, 0] ^= 0xFF  # one pixel of one test image
    fingerprint = data_module.fingerprint_arrays(real_data.x_train, real_data.y_train, x_test, real_data.y_test)
    changed = dataclasses.replace(real_data, x_test=x_test, source={**real_data.source, "fingerprint": fingerprint})
    monkeypatch.setattr(data_module, "load_cifar10", lambda *args, **kwargs: changed)
    assert main(["--results", str(tmp_path), "evaluate", "01"]) == 0
    out = capsys.readouterr().out
    assert "not the data the record was made on" in out and "milestone" in out
    assert "meets" not in out and "MISSES" not in out


def test_a_corrupt_model_is_reported_as_damaged(tmp_path):
    from cifar_lessons.training import load_model

    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(results.RecordError, match="model.keras is damaged and cannot be loaded"):
        load_model(path)
    with pytest.raises(results.RecordError, match="is missing"):
        load_model(tmp_path / "absent.keras")


def test_update_readme_refuses_missing_or_stale_records(tmp_path, capsys):
    assert main(["--results", str(tmp_path), "report", "--update-readme"]) == 1
    error = capsys.readouterr().err
    assert "README.md not updated" in error and "01 missing" in error and error.count("\n") == 1


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    def broken(args):
        raise ValueError("something odd")

    monkeypatch.setitem(cli.HANDLERS, "list", broken)
    assert main(["list"]) == 1
    error = capsys.readouterr().err
    assert error == "error: unexpected ValueError: something odd (run with --debug for the traceback)\n"
    assert main(["--debug", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_training_into_an_unwritable_results_folder_is_one_line(tmp_path, real_data):
    (tmp_path / "file").write_text("")
    result = run_cli("--results", str(tmp_path / "file"), "train", "01", "--quick", env=dict(os.environ))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "choose a writable --results folder" in result.stderr.splitlines()[-1]


def test_quick_training_never_replaces_a_recorded_run(tmp_path, real_data, capsys):
    (tmp_path / "01").mkdir()
    (tmp_path / "01" / "record.json").write_text("placeholder")
    assert main(["--results", str(tmp_path), "train", "01", "--quick"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (tmp_path / "01" / "record.json").read_text() == "placeholder"
    assert (tmp_path / "quick" / "01" / "record.json").is_file()


def test_a_quick_run_with_another_seed_stays_out_of_the_chapters_folder(tmp_path, real_data, capsys):
    assert main(["--results", str(tmp_path), "train", "01", "--quick", "--seed", "4294967295"]) == 0
    assert (tmp_path / "quick" / "01-seed4294967295" / "record.json").is_file()
    assert not (tmp_path / "01").exists()


def test_an_empty_results_option_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--results", "", "list"])
    assert exit_info.value.code == 2
    assert "an empty --results names no folder" in capsys.readouterr().err


@pytest.mark.slow
def test_control_run_trains_chapter_8s_recipe_without_the_rule(tmp_path, real_data):
    """`train 08 --control --quick` runs chapter 8's recipe without EarlyStopping: chapter 7's recipe at chapter
    8's ceiling (and, until chapter 8's momentum-0.9 runs land, at its batch-norm momentum)."""
    import dataclasses

    from cifar_lessons import results
    from cifar_lessons.book.chapters import get_chapter
    from cifar_lessons.book.cli import main
    from cifar_lessons.config import TrainConfig

    assert main(["--results", str(tmp_path), "train", "08", "--control", "--quick", "--seed", "1"]) == 0
    record = results.load_record(tmp_path / "quick" / "08-control" / "seed1")
    assert record["chapter"] == "08-control" and record["quick"] and record["seed"] == 1
    assert record["config"]["early_stopping"] is False
    without_rule = dataclasses.replace(get_chapter("08").config, early_stopping=False,
                                       early_stopping_patience=TrainConfig().early_stopping_patience)
    varied = ("epochs", "subset", "validation_size", "seed")
    assert ({key: value for key, value in record["config"].items() if key not in varied}
            == {key: value for key, value in without_rule.record_dict().items() if key not in varied})
    chapter_7 = get_chapter("07").config.record_dict()
    assert {key for key, value in record["config"].items() if chapter_7.get(key) != value} <= {
        *varied, "batch_norm_momentum"}
    assert not (tmp_path / "08").exists()  # a quick control never lands beside the chapter's results


def test_control_run_of_a_chapter_without_early_stopping_is_refused(tmp_path, capsys):
    from cifar_lessons.book.cli import main

    assert main(["--results", str(tmp_path), "train", "07", "--control"]) == 2
    assert "adds no early stopping" in capsys.readouterr().err


def test_special_files_as_records_are_refused_without_hanging(tmp_path):
    """A FIFO would block a plain read forever; a link to /dev/zero would fill the memory."""
    (tmp_path / "01").mkdir()
    os.mkfifo(tmp_path / "01" / "record.json")
    (tmp_path / "02").mkdir()
    (tmp_path / "02" / "record.json").symlink_to("/dev/zero")
    result = run_cli("--results", str(tmp_path), "list", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line[:2]: line for line in result.stdout.splitlines()}
    assert "malformed" in lines["01"] and "not a regular file" in lines["01"]
    assert "malformed" in lines["02"] and "not a regular file" in lines["02"]


def test_an_oversized_json_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "record.json"
    with open(path, "wb") as handle:
        handle.truncate(results.MAX_JSON_BYTES + 1)  # sparse: no disk used
    with pytest.raises(results.RecordError, match="more than any record"):
        results.read_json(path)


def test_output_survives_an_ascii_terminal(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    result = run_cli("report", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "\\xb1" in result.stdout  # the ± of "mean ± standard deviation", escaped instead of fatal


def test_a_signal_inside_an_exec_still_gives_the_shells_status(tmp_path):
    # CPython remembers a KeyboardInterrupt that passed through exec() of a string (dataclasses, namedtuples and
    # TensorFlow's imports do that) and, under `python -m`, kills itself by SIGINT at shutdown: status -2 where the
    # shell expects 143. This reproduces it without TensorFlow and at no particular moment.
    (tmp_path / "signalled.py").write_text(
        "import os, signal\n"
        "from cifar_lessons.book import cli\n"
        "def busy(args):\n"
        "    exec('os.kill(os.getpid(), signal.SIGTERM)\\nfor _ in range(10**8): pass')\n"
        "cli.HANDLERS['list'] = busy\n"
        "raise SystemExit(cli.run())\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "signalled", "list"], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=120)
    assert result.returncode == 143, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "interrupted."


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("moment", ["loading", "training"])  # while TensorFlow loads, and once training has begun
def test_a_signal_ends_in_one_line_and_the_shells_status(tmp_path, real_data, signum, status, moment):
    process = subprocess.Popen([sys.executable, "-m", "cifar_lessons", "--results", str(tmp_path), "train", "01",
                                "--quick"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if moment == "loading":
        time.sleep(2.0)
    else:  # a fixed delay lets a fast CPU finish the quick run first: wait for the line that starts training
        for line in process.stdout:
            if line.startswith("Chapter 01: training config"):
                break
        else:
            pytest.fail("the quick run never said that it starts training")
    process.send_signal(signum)
    _, err = process.communicate(timeout=300)
    assert process.returncode == status, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted."


def test_data_reports_duplicates_and_clear_cache_empties_the_cache(tmp_path, capsys, monkeypatch):
    from conftest import image_files, write_tree

    monkeypatch.setenv("CIFAR_LESSONS_CACHE", str(tmp_path / "cache"))
    files = image_files("PNG")
    files["cifar/test/ship/0016.png"] = files["cifar/train/ship/0032.png"]
    source = write_tree(tmp_path, files) / "cifar"
    from cifar_lessons import data

    real_load = data.load_cifar10
    monkeypatch.setattr(data, "load_cifar10", lambda path=None: real_load(path, per_class=(4, 2)))
    assert main(["data", str(source)]) == 0
    assert "exact duplicates: 0 extra in train, 0 in test, 1 test images also in train" in capsys.readouterr().out
    assert len(list((tmp_path / "cache").glob("cifar10-*.npy"))) == 1
    assert main(["data", "--clear-cache"]) == 0
    assert "Removed 1 cached source from" in capsys.readouterr().out
    assert not list((tmp_path / "cache").glob("cifar10-*.npy"))


def test_a_chapter_on_other_data_shows_the_books_run_and_trains_nothing(tmp_path, capsys, real_data):
    import dataclasses

    from cifar_lessons.book.runs import run_chapter
    from cifar_lessons.data import fingerprint_arrays

    folder = committed_run_copy(tmp_path)
    before = results.load_record(folder)
    x_test = real_data.x_test.copy()
    x_test[0, 0, 0] ^= 0xFF  # as the official data would: other images than the book's copy
    fingerprint = fingerprint_arrays(real_data.x_train, real_data.y_train, x_test, real_data.y_test)
    other = dataclasses.replace(real_data, x_test=x_test, source={**real_data.source, "fingerprint": fingerprint})
    run = run_chapter("01", results_dir=tmp_path, data=other)
    out = capsys.readouterr().out
    assert run.record == before and results.load_record(folder) == before
    assert "It is shown as the book's reference, and nothing was trained. Set RETRAIN = True" in out
    assert not (folder / "checkpoint").exists()


@pytest.mark.parametrize("after", [0.15, 0.6])  # while Python imports the package, before the command line runs
@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_a_signal_during_the_first_imports_is_no_traceback(tmp_path, how, after):
    script = Path(sys.executable).parent / "cifar-lessons"
    command = [str(script)] if how == "console script" else [sys.executable, "-m", "cifar_lessons"]
    if how == "console script" and not script.is_file():
        pytest.skip("the console script is not installed next to this Python")
    process = subprocess.Popen([*command, "--results", str(tmp_path), "train", "01", "--quick"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted."
