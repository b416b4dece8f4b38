"""The ablation screen of chapter 11: the fast recipe at a shorter budget, whole and with one training-time
technique removed at a time, and what each removal costs against the spread of the seeds (Chapter 11).

``scripts/ablate_chapter11.py`` trains the runs into ``results/11/ablation/NAME/seedS``; chapter 11 reads
them through :func:`ablation_table`, :func:`ablation_band` and :func:`ablation_changes`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .. import results
from ..data import Dataset
from .fast import train_fast
from .fast_config import FastConfig
from .fast_tta import VARIANT_LABELS

# The ablation's budget: 3 of the recipe's 10 epochs, so that one run takes minutes instead of most of an hour
# on a laptop CPU, and the whole screen fits in an afternoon. A shorter schedule is a screen, not the recipe.
ABLATION_EPOCHS = 3
FULL_RECIPE = "full recipe"


def ablation_configs(config: FastConfig | None = None) -> dict[str, FastConfig]:
    """The recipe at the ablation's budget, whole and with one training-time technique removed at a time (Chapter 11).

    Weight averaging and test-time augmentation get no run of their own: they change nothing in training,
    so the full recipe's run measures them on its own network (its free variants, ``ablation_table``).
    The order is the order the study runs them in: the ones expected to matter most first, so that a
    screen stopped early has those.
    """
    config = config or dataclasses.replace(FastConfig(), epochs=ABLATION_EPOCHS)
    replace = dataclasses.replace
    return {
        FULL_RECIPE: config,
        "no whitening (learned first layer)": replace(config, whiten_patch=0),
        "no identity initialization": replace(config, identity_init=False),
        "no flip or shift augmentation": replace(config, flip=False, translate_pixels=0),
        "no label smoothing": replace(config, label_smoothing=0.0),
        "no bias learning-rate boost": replace(config, bias_learning_rate_boost=1.0),
        "no weight decay": replace(config, weight_decay=0.0),
        "no warmup": replace(config, warmup_fraction=0.0),
        "random instead of alternating flips": replace(config, alternate_flips=False),
        "no Nesterov momentum": replace(config, nesterov=False),
    }


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-").replace("--", "-")


def ablation_dir(name: str, seed: int, results_dir: Path | None = None) -> Path:
    """Where the ablation run named ``name`` with ``seed`` keeps its record: results/11/ablation/<name>/seedS."""
    return Path(results_dir or results.default_results_dir()) / "11" / "ablation" / _slug(name) / f"seed{seed}"


def current_record(run_dir: Path, config: FastConfig) -> dict | None:
    """The record in ``run_dir`` if it is a full (not quick) run of ``config``, else None (Chapter 11)."""
    if not (Path(run_dir) / results.RECORD_FILE).is_file():
        return None
    record = results.load_record(run_dir)
    return record if record["config_hash"] == config.hash and not record["quick"] else None


def train_unless_recorded(label: str, config: FastConfig, data: Dataset, run_dir: Path,
                          free_variants: bool = False) -> dict | None:
    """One run of a study (ablation, JPEG ladder): skipped if recorded, model file not kept (Chapter 11).

    A failed run is reported and returns None, so one error does not cost the rest of a long study.
    """
    recorded = current_record(run_dir, config)
    if recorded is not None:
        print(f"{label}: recorded, skipped", flush=True)
        return recorded
    print(f"{label}: training for {config.epochs} epochs", flush=True)
    try:
        record = train_fast(config, data, run_dir, free_variants=free_variants)
    except Exception as error:  # report and go on; running the study again retries it
        print(f"{label}: FAILED ({type(error).__name__}: {error}); run the script again to retry", flush=True)
        return None
    (Path(run_dir) / results.MODEL_FILE).unlink(missing_ok=True)
    print(f"{label}: validation accuracy {record['val_accuracy']:.2%}, test accuracy {record['test_accuracy']:.2%}",
          flush=True)
    return record


def ablation_table(results_dir: Path | None = None) -> dict[str, list[dict]]:
    """Each recorded ablation run of the current recipe: its seed, validation and test accuracy (Chapter 11).

    The full recipe's runs also give the rows that need no run of their own: their free variants (weight
    averaging, other test-time augmentations), each labelled as in ``VARIANT_LABELS``.
    """
    table: dict[str, list[dict]] = {}
    for name, base in ablation_configs().items():
        for seed in range(10):
            record = current_record(ablation_dir(name, seed, results_dir), dataclasses.replace(base, seed=seed))
            if record is None:
                continue
            scores = [(name, {"val_accuracy": record["val_accuracy"], "test_accuracy": record["test_accuracy"]})]
            if name == FULL_RECIPE:
                scores += [(VARIANT_LABELS[key], values) for key, values in record.get("variants", {}).items()
                           if key != f"tta_{base.tta}"]
            for label, values in scores:
                table.setdefault(label, []).append({"seed": seed, "val_accuracy": values["val_accuracy"],
                                                    "test_accuracy": values["test_accuracy"]})
    return table


def ablation_band(
    table: dict[str, list[dict]], seed_records: dict[int, dict] | None = None
) -> dict | None:
    """How far two single runs differ by chance: 2 x sqrt(2) x one run's standard
    deviation, per split (Chapter 11).

    From the screen's own full-recipe runs when three seeds or more are recorded (the
    removals' budget), else from the chapter's seed runs at the recipe's budget
    (``seed_records``, as from ``seed_runs``), else None. Two runs differ by chance with
    sqrt(2) times one run's standard deviation; the band is twice that, about a 95%
    range.
    """
    screen = table.get(FULL_RECIPE, [])
    if len(screen) >= 3:
        rows, source = screen, f"the screen's {len(screen)} full-recipe seeds"
    elif seed_records and len(seed_records) >= 3:
        rows, source = (
            list(seed_records.values()),
            f"the recipe's {len(seed_records)} seed runs at its own budget",
        )
    else:
        return None
    return {
        "source": source,
        **{
            key: float(2 * np.sqrt(2) * np.std([row[key] for row in rows], ddof=1))
            for key in ("val_accuracy", "test_accuracy")
        },
    }


def ablation_changes(table: dict[str, list[dict]], band: dict | None = None) -> list[dict]:
    """Per technique: the mean change in validation and test accuracy against the full recipe (Chapter 11).

    Each ablation run is set against the full recipe's run of the same seed (``table`` as from
    ``ablation_table``); the rows come sorted by the validation change, the largest loss first. With
    ``band`` (from ``ablation_band``, for one run against one run), each removal's row also gets the band
    of its own comparison, ``val_band`` and ``test_band``: the mean of n paired seeds varies sqrt(n) times
    less. The free variants get None: they are one network scored two ways, not two runs.
    """
    full = {row["seed"]: row for row in table.get(FULL_RECIPE, [])}
    same_run = set(VARIANT_LABELS.values())
    changes = []
    for name, rows in table.items():
        paired = [row for row in rows if row["seed"] in full]
        if name == FULL_RECIPE or not paired:
            continue
        change = {"technique": name, "seeds": [row["seed"] for row in paired], "same_run": name in same_run,
                  **{key: float(np.mean([row[key] - full[row["seed"]][key] for row in paired]))
                     for key in ("val_accuracy", "test_accuracy")}}
        for split in ("val", "test"):
            change[f"{split}_band"] = (None if band is None or name in same_run
                                       else band[f"{split}_accuracy"] / np.sqrt(len(paired)))
        changes.append(change)
    return sorted(changes, key=lambda change: change["val_accuracy"])
