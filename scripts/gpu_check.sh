#!/usr/bin/env bash
# On a machine with a GPU (or two): train chapter 8's and chapter 11's recipes once each and record how long
# each took to reach its milestone, into a separate results folder (the book's own runs stay untouched).
#
#   bash scripts/gpu_check.sh [RESULTS_DIR]      # default: results-gpu/
#
# No run of this book has been made on a GPU yet: this is the check to run whenever one is available.
# precision="auto" picks mixed_float16 on compute capability 7.x (T4, V100) and mixed_bfloat16 from 8.0;
# with several GPUs, chapter 8 trains under MirroredStrategy (chapter 11's loop uses one device).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
out="${1:-results-gpu}"
python -c "import sys, tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
sys.exit(0 if gpus else 'error: TensorFlow sees no GPU here')"
for chapter in 08 11; do
  cifar-lessons --results "$out" train "$chapter"
done
python - "$out" <<'PY'
"""Time to the milestone: training seconds until the validation accuracy first reached the chapter's
milestone (the test-accuracy floor the tests check), from each run's history."""
import json
import sys
from pathlib import Path

from cifar_lessons import results
from cifar_lessons.book.chapters import get_chapter

root, rows = Path(sys.argv[1]), []
for chapter_id in ("08", "11"):
    chapter = get_chapter(chapter_id)
    record = results.load_record(root / chapter_id)
    history = results.read_json(root / chapter_id / results.HISTORY_FILE)
    elapsed, reached = 0.0, None
    for seconds, accuracy in zip(history["epoch_time_s"], history["val_accuracy"]):
        elapsed += seconds
        if accuracy >= chapter.milestone:
            reached = round(elapsed, 1)
            break
    rows.append({"chapter": chapter_id, "milestone": chapter.milestone, "seconds_to_milestone": reached,
                 "train_time_s": record["train_time_s"], "test_accuracy": record["test_accuracy"],
                 "precision": record["precision"], "strategy": record["strategy"],
                 "replicas": record["replicas"], "gpus": record["hardware"]["gpus"]})
    print(rows[-1])
results.write_json_atomic(root / "gpu_check.json", {"hardware": results.hardware_info(), "runs": rows})
PY
