"""The chapter registry: the one list that feeds the notebooks, the CLI, the tests and the site.

Each training chapter's config is the previous chapter's config with exactly one
technique changed. A milestone is a test-accuracy floor set a little below what the
chapter's full run measured (two points below, rounded down, except the final chapter, whose
floor is the book's 82% goal); ``None`` means no full run has been recorded yet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import TrainConfig
from ..going_further.fast_config import FastConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS_DIR = REPO_ROOT / "chapters"


@dataclasses.dataclass(frozen=True)
class Chapter:
    """One chapter of the book (Chapter 1)."""

    id: str
    slug: str
    title: str
    technique: str
    config: TrainConfig | FastConfig | None = None  # None: an analysis chapter that trains nothing
    milestone: float | None = None
    uses: str | None = None  # for analysis chapters: the chapter whose model they study

    @property
    def notebook(self) -> Path:
        """Path of the chapter's notebook (Chapter 1)."""
        return CHAPTERS_DIR / f"{self.id}_{self.slug}.ipynb"

    @property
    def label(self) -> str:
        """'Chapter 11' for a chapter, 'Appendix A' for an appendix (Chapter 1)."""
        return f"Chapter {int(self.id)}" if self.id.isdigit() else f"Appendix {self.id}"

    @property
    def trains(self) -> bool:
        """Whether the chapter trains a model of its own (Chapter 1)."""
        return self.config is not None


# Regenerating every chapter on the 2-core reference machine should take at most this long
# (sum of the recorded wall times); the report states the total against it.
BOOK_BUDGET_MINUTES = 180

# Shared by every training chapter, so only the technique changes between them (chapter 8's technique
# replaces the fixed epoch count by a stopping rule under a ceiling). precision="auto"
# computes in bfloat16 where the hardware supports it (faster on the reference CPU: README benchmark)
# and in float32 elsewhere; each run record states which it used.
_BASE = TrainConfig(epochs=15, batch_size=128, learning_rate=1e-3, seed=0, precision="auto")
_NORMALIZED = dataclasses.replace(_BASE, normalize=True)
_DEEPER = dataclasses.replace(_NORMALIZED, widths=(32, 64, 128, 256), convs_per_stage=2, dense_units=256)
_AUGMENTED = dataclasses.replace(_DEEPER, augment=True)
# Momentum 0.9 rather than Keras' default 0.99: at 0.99 the moving statistics lag behind the weights
# (Chapter 5 measures it; results/05/bn_diagnosis.json).
_BATCH_NORM = dataclasses.replace(_AUGMENTED, batch_norm=True, batch_norm_momentum=0.9)
_DROPOUT = dataclasses.replace(_BATCH_NORM, dense_dropout_rate=0.3)
_REDUCE_LR = dataclasses.replace(_DROPOUT, reduce_lr=True)
# Early stopping turns the epoch count from a budget into a ceiling: training ends when the validation
# loss has not improved for `early_stopping_patience` epochs (longer than the scheduler's patience, so a
# learning-rate drop gets its chance first), and the ceiling is only reached if it never stalls.
_EARLY_STOP = dataclasses.replace(_REDUCE_LR, early_stopping=True, early_stopping_patience=5, epochs=50)

CHAPTERS = (
    Chapter("01", "data_and_baseline", "Data and a baseline CNN",
            "a small CNN on raw pixels", _BASE, milestone=0.61),
    Chapter("02", "normalization", "Normalization",
            "per-channel standardization inside the model", _NORMALIZED, milestone=0.68),
    Chapter("03", "deeper_cnn", "A deeper CNN",
            "two convolutions per stage, a fourth stage", _DEEPER, milestone=0.70),
    Chapter("04", "data_augmentation", "Data augmentation",
            "random flips and shifts", _AUGMENTED, milestone=0.78),
    Chapter("05", "batch_normalization", "Batch normalization",
            "batch normalization after every convolution", _BATCH_NORM,
            milestone=0.76),
    Chapter("06", "dropout", "Dropout",
            "dropout in the classifier", _DROPOUT, milestone=0.76),
    Chapter("07", "learning_rate_schedule", "Learning-rate schedule",
            "ReduceLROnPlateau on the validation loss", _REDUCE_LR,
            milestone=0.80),
    # Two changes, and the title says so: the gain belongs to the longer budget (chapter 8's control runs).
    Chapter("08", "early_stopping", "Longer budget, early stopping",
            "50 epochs instead of 15, ended by EarlyStopping (best weights restored)", _EARLY_STOP, milestone=0.83),
    Chapter("09", "analysis", "Visualization and analysis",
            "confusion matrix, errors, filters and feature maps", uses="08"),
    Chapter("10", "conclusion", "Conclusion",
            "accuracy across all chapters", uses="08"),
    # Going further: a different recipe (not one change to chapter 8's), the ideas of the fastest
    # known CIFAR-10 training runs; its own training loop (cifar_lessons.going_further.fast).
    Chapter("11", "going_further", "Going further",
            "whitening, a wide shallow net, SGD with a schedule, label smoothing, weight averaging, TTA",
            FastConfig(), milestone=0.89),
)

# Appendices: pages of the book that teach no technique of their own. Notes on the fast recipe holds the
# research behind chapter 11 (the race's accounting, the ablation screen, the JPEG ladder, airbench94 itself on
# the copy, longer budgets); it trains nothing and reads chapter 11's records and those of its scripts.
APPENDICES = (
    Chapter("A", "fast_recipe_notes", "Notes on the fast recipe",
            "the research behind chapter 11's recipe", uses="11"),
)
# Every notebook of the book, in reading order: the site's navigation and the notebook tests use this list.
PAGES = CHAPTERS + APPENDICES


class UnknownChapterError(KeyError):
    """Raised for a chapter id that is not in the registry (Chapter 1)."""

    def __str__(self):
        ids = ", ".join(chapter.id for chapter in PAGES)
        return f"unknown chapter {self.args[0]!r}; choose one of {ids}"


def get_chapter(chapter_id: str | int) -> Chapter:
    """Look a chapter up by id ('7', '07' or 7) (Chapter 1)."""
    key = str(chapter_id).strip()
    key = key.zfill(2) if key.isdigit() else key.upper()
    for chapter in PAGES:
        if chapter.id == key:
            return chapter
    raise UnknownChapterError(str(chapter_id))


def training_chapters() -> list[Chapter]:
    """The chapters that train a model, in book order (Chapter 1)."""
    return [chapter for chapter in CHAPTERS if chapter.trains]


def step_chapters() -> list[Chapter]:
    """The chapters of the step-by-step recipe (1-8): each changes one technique of the one before (Chapter 2).

    Chapter 11 trains too, but with a recipe of its own (:class:`FastConfig`), not one more step.
    """
    return [chapter for chapter in training_chapters() if isinstance(chapter.config, TrainConfig)]


def previous_training_chapter(chapter: Chapter) -> Chapter | None:
    """The training chapter just before this one, whose recipe it extends (Chapter 2)."""
    earlier = [c for c in training_chapters() if c.id < chapter.id]
    return earlier[-1] if earlier else None
