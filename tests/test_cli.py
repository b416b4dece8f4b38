"""The command line: clear messages and exit codes for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cifar_lessons.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cifar_lessons", *args], capture_output=True, text=True,
                          env=env)


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


def test_analysis_chapter_cannot_be_trained(capsys):
    assert main(["train", "09"]) == 2
    assert "trains nothing" in capsys.readouterr().err


def test_missing_data_is_one_clear_line_not_a_traceback(tmp_path, monkeypatch):
    import os

    env = {**os.environ, "CIFAR_LESSONS_DATA": str(tmp_path / "missing.tar.gz")}
    result = run_cli("data", env=env)
    assert result.returncode == 1
    assert "error: CIFAR-10 source" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_and_report_read_a_results_folder(tmp_path, capsys):
    assert main(["--results", str(tmp_path), "list"]) == 0
    listing = capsys.readouterr().out
    assert "08  Early stopping" in listing and "missing" in listing
    assert main(["--results", str(tmp_path), "report"]) == 0
    assert "| 01 Data and a baseline CNN (missing)" in capsys.readouterr().out


def test_malformed_record_makes_evaluate_fail_clearly(tmp_path, capsys):
    (tmp_path / "03").mkdir()
    (tmp_path / "03" / "record.json").write_text("[]")
    assert main(["--results", str(tmp_path), "evaluate", "03"]) == 1
    assert "malformed" in capsys.readouterr().err


def test_quick_training_never_replaces_a_recorded_run(tmp_path, real_data, capsys):
    (tmp_path / "01").mkdir()
    (tmp_path / "01" / "record.json").write_text("placeholder")
    assert main(["--results", str(tmp_path), "train", "01", "--quick"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (tmp_path / "01" / "record.json").read_text() == "placeholder"
    assert (tmp_path / "quick" / "01" / "record.json").is_file()
