"""Give chapter 11's records the architecture hash of the inference model with named softmax layers.

Chapter 11's inference model used to average unnamed Softmax layers, so their names (and with them the
architecture hash) depended on what the process had built before. The layers now have fixed names. This
script proves, for every chapter-11 record, that the current architecture is the recorded one except for
those names (renamed back to the names a fresh process gave them, it hashes to the recorded hash), then
stores the new hash and re-seals the record. Weights, model files and results are untouched.

    python scripts/migrate_tta_names.py [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402

from cifar_lessons import fast, results, training  # noqa: E402
from cifar_lessons.fast_config import FastConfig  # noqa: E402


def _renamed(value, names: dict):
    """``value`` with every string in ``names`` replaced by its old name."""
    if isinstance(value, dict):
        return {key: _renamed(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_renamed(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value


def hashes(config: FastConfig, precision: str) -> tuple[str, str]:
    """(hash with the old auto-numbered names, hash with the current names) of the inference model."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        images = keras.random.randint((64, 32, 32, 3), 0, 256, seed=0).numpy().astype("uint8")
        model = fast.inference_model(config, fast.build_fast_net(config, images))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    views = sum(1 for layer in model.layers if isinstance(layer, keras.layers.Softmax))
    old_names = {f"view{index}_probabilities": "softmax" + (f"_{index}" if index else "") for index in range(views)}
    old_names["mean_probabilities"] = "average"
    config_now = training._without_names(model.get_config())
    return training._digest(_renamed(config_now, old_names)), training._digest(config_now)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    failures = 0
    for path in sorted((REPO_ROOT / "results" / "11").glob("**/record.json")):
        record = results.validate_record(json.loads(path.read_text()), path)
        old, new = hashes(FastConfig.from_dict(record["config"]), record["precision"])
        recorded = record["identity"]["architecture"]
        shown = path.relative_to(REPO_ROOT)
        if recorded == new:
            print(f"{shown}: already current")
        elif recorded == old:
            print(f"{shown}: same architecture up to the softmax names; hash {recorded} -> {new}")
            if not args.dry_run:
                record["identity"]["architecture"] = new
                results.write_json_atomic(path, results.seal_record(record))
        else:
            print(f"{shown}: recorded {recorded} matches neither {old} (old names) nor {new}: retrain it")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
