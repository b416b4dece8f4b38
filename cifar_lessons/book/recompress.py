"""Re-encode a dataset as JPEG at a lower quality, to measure what JPEG loss costs (Chapter 11).

The offline copy is already JPEG (quality about 75, chroma subsampled 4:2:0), and the official images are
not available to compare with. What can be measured is the slope: train the same recipe on copies
re-encoded at lower qualities and see how test accuracy falls as the images lose more detail
(``scripts/jpeg_ladder.py``). Uses Pillow only; no Keras.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image

from .. import results
from ..data import Dataset, fingerprint_arrays
from .chapters import get_chapter
from .seeds import fast_seed_records


def jpeg_roundtrip(images: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """Each uint8 RGB image saved as JPEG at ``quality`` (1-95) and decoded again (Chapter 11)."""
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be between 1 and 95, not {quality}")
    decoded = np.empty_like(images)
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
        with Image.open(buffer) as reloaded:
            decoded[index] = np.asarray(reloaded.convert("RGB"))
    return decoded


def psnr(reference: np.ndarray, images: np.ndarray) -> float:
    """Peak signal-to-noise ratio of ``images`` against ``reference``, in dB (8-bit peak 255)."""
    error = np.mean((reference.astype(np.float64) - images.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0 ** 2 / error))


def squared_error(psnr_db: float) -> float:
    """The mean squared error per 8-bit pixel value that a PSNR of ``psnr_db`` dB stands for (the inverse of psnr)."""
    return 255.0 ** 2 / 10 ** (psnr_db / 10)


def reencoded(dataset: Dataset, quality: int, subsampling: str = "4:2:0") -> Dataset:
    """The dataset with every train and test image re-encoded as JPEG at ``quality`` (Chapter 11).

    Labels and order are unchanged; the source names the quality, the data it came from, and its own
    fingerprint, so a record trained on it says exactly which images it saw.
    """
    x_train = jpeg_roundtrip(dataset.x_train, quality, subsampling)
    x_test = jpeg_roundtrip(dataset.x_test, quality, subsampling)
    source = {**dataset.source, "name": f"{dataset.source['name']}, re-encoded as JPEG at quality {quality}",
              "fingerprint": fingerprint_arrays(x_train, dataset.y_train, x_test, dataset.y_test),
              "reencoded_from": dataset.fingerprint, "jpeg_quality": quality, "jpeg_subsampling": subsampling,
              "psnr_vs_source_db": round(psnr(np.concatenate([dataset.x_train, dataset.x_test]),
                                    np.concatenate([x_train, x_test])), 2)}
    return Dataset(x_train, dataset.y_train, x_test, dataset.y_test, dataset.class_names, source)


# The ladder's two budgets: the ablation screen's short schedule (every rung, one seed), and the recipe's own,
# whose top rung is the chapter's seed run on the copy itself (Chapter 11).
BUDGETS = ("screen", "full")


def _check_budget(budget: str) -> None:
    if budget not in BUDGETS:
        raise ValueError(f"the JPEG ladder's budget is one of {', '.join(BUDGETS)}, not {budget!r}")


def ladder_dir(quality: int, seed: int, results_dir: Path | None = None, budget: str = "screen") -> Path:
    """Where the JPEG ladder's run keeps its record: results/11/jpeg/qQ/seedS, or jpeg/full/qQ/seedS (Chapter 11)."""
    return _ladder_root(results_dir, budget) / f"q{quality}" / f"seed{seed}"


def _ladder_root(results_dir: Path | None, budget: str) -> Path:
    """The folder holding one budget's rungs: results/11/jpeg, or results/11/jpeg/full (Chapter 11)."""
    _check_budget(budget)
    root = Path(results_dir or results.default_results_dir()) / "11" / "jpeg"
    return root / "full" if budget == "full" else root


def ladder_config(budget: str = "screen"):
    """The recipe a ladder run trains: the ablation's full recipe (screen) or the chapter's own (full) (Chapter 11)."""
    from ..going_further import ablations  # lazy: imports Keras, which this module does not

    _check_budget(budget)
    return get_chapter("11").config if budget == "full" else ablations.ablation_configs()[ablations.FULL_RECIPE]


def ladder_table(results_dir: Path | None = None, budget: str = "screen") -> list[dict]:
    """The JPEG ladder's recorded runs at one budget, top rung first: the copy itself, then each lower quality.

    The top rung is the same config on the copy as it is: the ablation's full-recipe run for the screen,
    the chapter's own seed runs for the full budget. A run counts only if its record is of that config
    and not a quick run. A lower rung's ``val_change`` and ``test_change`` are against the copy itself,
    same seed and budget (None for the copy, or where its run is missing) (Chapter 11).
    """
    from ..going_further import ablations  # lazy: imports Keras, which this module does not

    base = ladder_config(budget)
    root = _ladder_root(results_dir, budget)
    qualities = sorted((int(folder.name[1:]) for folder in root.glob("q*") if folder.name[1:].isdigit()), reverse=True)
    seed_records = fast_seed_records(results_dir) if budget == "full" else {}
    rows, copies = [], {}
    for quality in [None, *qualities]:
        for seed in range(10):
            config = dataclasses.replace(base, seed=seed)
            if quality is None and budget == "full":
                record = seed_records.get(seed)
            else:
                run_dir = (ablations.ablation_dir(ablations.FULL_RECIPE, seed, results_dir) if quality is None
                           else ladder_dir(quality, seed, results_dir, budget))
                record = ablations.current_record(run_dir, config)
            if record is None:
                continue
            row = {"quality": quality, "seed": seed, "epochs": config.epochs, "data": record["data"].get("name"),
                   "psnr_vs_copy_db": record["data"].get("psnr_vs_source_db"),
                   "val_accuracy": record["val_accuracy"], "test_accuracy": record["test_accuracy"]}
            if quality is None:
                copies[seed] = row
            reference = None if quality is None else copies.get(seed)
            for split in ("val", "test"):
                row[f"{split}_change"] = (None if reference is None
                                          else row[f"{split}_accuracy"] - reference[f"{split}_accuracy"])
            rows.append(row)
    return rows
