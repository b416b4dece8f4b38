"""Every chapter's committed model meets its milestone on the configured test set, and measures what its
record says when the test set is the one it was recorded on."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cifar_lessons.book.chapters import training_chapters
from cifar_lessons.book.cli import EVALUATE_TOLERANCE
from cifar_lessons.book.runs import chapter_status, run_chapter, run_dir_for
from cifar_lessons.evaluation import evaluate
from cifar_lessons.results import MODEL_FILE
from cifar_lessons.training import load_model

# Minutes on a 2-core CPU: outside the default run, in CI (`-m "not full"`).
pytestmark = pytest.mark.slow

CHAPTER_IDS = {"ids": lambda chapter: f"{chapter.id}_{chapter.slug}"}


@pytest.mark.parametrize("chapter", training_chapters(), **CHAPTER_IDS)
def test_committed_model_meets_milestone(chapter, real_data):
    assert chapter.milestone is not None, (
        f"chapter {chapter.id} has no milestone: record a full run (`cifar-lessons train {chapter.id}`) "
        "and set one in cifar_lessons/book/chapters.py")
    status = chapter_status(chapter)
    if status["status"] != "ok":
        pytest.fail(f"chapter {chapter.id}: record {status['status']}: {status['message']}")
    model_path = run_dir_for(chapter) / MODEL_FILE
    result = evaluate(load_model(model_path), real_data.x_test, real_data.y_test, real_data.class_names)
    assert result.accuracy >= chapter.milestone, (
        f"chapter {chapter.id}: test accuracy {result.accuracy:.4f} on {real_data.source['name']} "
        f"is below its milestone {chapter.milestone}")
    record = status["record"]
    if record["data"]["fingerprint"] == real_data.fingerprint:  # the record's own data: it must measure the same
        assert abs(result.accuracy - record["test_accuracy"]) <= EVALUATE_TOLERANCE, (
            f"chapter {chapter.id}: measured {result.accuracy:.4f}, the record says {record['test_accuracy']:.4f} "
            f"on the same data ({real_data.fingerprint}): the model is not the recorded run's")


@pytest.mark.full
@pytest.mark.parametrize("chapter", training_chapters(), **CHAPTER_IDS)
def test_retrained_chapter_meets_milestone(chapter, real_data):
    """Slow: retrains the chapter from scratch in a temp folder (see the README for times)."""
    if chapter.milestone is None:
        pytest.skip(f"chapter {chapter.id} has no milestone yet")
    with tempfile.TemporaryDirectory() as results_dir:
        run = run_chapter(chapter.id, retrain=True, results_dir=Path(results_dir), data=real_data, verbose=2)
    assert run.record["test_accuracy"] >= chapter.milestone
