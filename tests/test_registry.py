"""The chapter registry: one technique per chapter, milestones where runs exist."""

from __future__ import annotations

import pytest

from cifar_lessons.book.chapters import (
    CHAPTERS,
    UnknownChapterError,
    get_chapter,
    previous_training_chapter,
    step_chapters,
    training_chapters,
)


def test_ids_are_ordered_and_lookup_is_forgiving():
    assert [c.id for c in CHAPTERS] == [f"{i:02d}" for i in range(1, len(CHAPTERS) + 1)]
    assert get_chapter(7) is get_chapter("07") is get_chapter("7")
    with pytest.raises(UnknownChapterError):
        get_chapter("99")


@pytest.mark.parametrize("chapter", step_chapters()[1:], ids=lambda c: c.id)
def test_each_chapter_changes_its_predecessor(chapter):
    previous = previous_training_chapter(chapter)
    changes = chapter.config.changes_from(previous.config)
    assert changes, f"chapter {chapter.id} changes nothing"
    # One technique: the changed fields all belong to it (a deeper CNN touches its three shape fields).
    # Batch normalization comes with the momentum of its moving statistics (Chapter 5).
    allowed = [{"normalize"}, {"widths", "convs_per_stage", "dense_units"}, {"augment"},
               {"batch_norm", "batch_norm_momentum"}, {"dense_dropout_rate"}, {"reduce_lr"},
               # Early stopping: the rule, its patience, and the epoch count turned into a ceiling.
               {"early_stopping", "early_stopping_patience", "epochs"}]
    assert set(changes) in allowed


def test_every_training_chapter_shares_the_budget():
    fixed = [c for c in step_chapters() if not c.config.early_stopping]
    budgets = {(c.config.epochs, c.config.batch_size, c.config.seed) for c in fixed}
    assert len(budgets) == 1
    # With early stopping the epoch count is a ceiling, never below the fixed budget.
    (epochs, batch_size, seed), = budgets
    for chapter in step_chapters():
        if chapter.config.early_stopping:
            assert (chapter.config.batch_size, chapter.config.seed) == (batch_size, seed)
            assert chapter.config.epochs >= epochs
            assert chapter.config.early_stopping_patience > chapter.config.reduce_lr_patience


def test_final_milestone_meets_the_mission_floor():
    final = training_chapters()[-1]
    if final.milestone is None:
        pytest.skip("the final chapter's full run is not recorded yet")
    assert final.milestone >= 0.82


def test_milestones_rise_only_where_recorded():
    for chapter in training_chapters():
        assert chapter.milestone is None or 0.1 < chapter.milestone < 1


def test_analysis_chapters_study_a_training_chapter():
    for chapter in CHAPTERS:
        if not chapter.trains:
            assert get_chapter(chapter.uses).trains


def test_only_the_going_further_chapter_leaves_the_step_by_step_recipe():
    """Chapter 11 has a recipe of its own; every other training chapter is a step of chapters 1-8."""
    from cifar_lessons.going_further.fast_config import FastConfig

    others = [c for c in training_chapters() if c not in step_chapters()]
    assert [c.id for c in others] == ["11"]
    assert isinstance(others[0].config, FastConfig)


def test_the_readme_layout_lists_every_module_under_its_folder():
    """Each section row of the table names a folder (`cifar_lessons/book/`); the rows below it list its modules."""
    import re

    from cifar_lessons.book.chapters import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    table = readme[readme.index("| Module | What |"):].split("\n\n")[0]
    listed, folder = set(), None
    for row in table.splitlines()[2:]:
        first = row.split("|")[1]
        if first.strip().startswith("**"):
            folder = re.search(r"`(cifar_lessons/[\w/]*)`", first).group(1)
        else:
            listed |= {f"{folder}{name}" for name in re.findall(r"`(\w+)`", first)}
    package = REPO_ROOT / "cifar_lessons"
    modules = {path.relative_to(REPO_ROOT).with_suffix("").as_posix() for path in package.rglob("*.py")
               if path.stem != "__init__"}
    assert modules == listed, (f"README's layout table leaves out {sorted(modules - listed)}, "
                               f"or lists what is not there: {sorted(listed - modules)}")
