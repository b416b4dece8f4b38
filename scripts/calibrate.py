"""Temperature scaling of the models the book ships (chapters 8 and 11), recorded for chapter 9.

For each chapter's saved main run: T fitted on the run's own validation split (analysis.calibrate), the
test set's expected calibration error and mean confidence before and after, in 10 equal-width bins.

    python scripts/calibrate.py [--out results/09/calibration.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cifar_lessons import analysis, results
from cifar_lessons.book.chapters import get_chapter
from cifar_lessons.data import load_cifar10
from cifar_lessons.training import load_run, prepare_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=results.default_results_dir() / "09" / "calibration.json")
    args = parser.parse_args(argv)
    data = load_cifar10()
    record = {"what": __doc__.splitlines()[0], "hardware": results.hardware_info(),
              "versions": results.library_versions(), "code": results.code_identity(), "data": data.source,
              "bins": 10, "models": []}
    for chapter_id in ("08", "11"):
        chapter = get_chapter(chapter_id)
        run = load_run(results.default_results_dir() / chapter.id)
        splits = prepare_data(type(chapter.config).from_dict(run.record["config"]), data)
        found = analysis.calibrate(run.model, splits["val"], splits["test"])
        row = {"chapter": chapter.id, "seed": run.record["seed"], "model_sha256": run.record["files"]["model.keras"],
               "record_checksum": run.record["checksum"], "temperature": found["temperature"],
               **{f"{key}_{when}": found[f"test_{when}"][key] for when in ("before", "after")
                  for key in ("ece", "mean_confidence")},
               **{f"accuracy_{when}": found[f"test_{when}"]["overall_accuracy"] for when in ("before", "after")},
               "val_ece_before": found["val_before"]["ece"], "val_ece_after": found["val_after"]["ece"]}
        print(row, flush=True)
        record["models"].append(row)
    results.write_json_atomic(args.out, record)


if __name__ == "__main__":
    main()
