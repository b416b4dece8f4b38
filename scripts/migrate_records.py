"""Convert format-1 run records to format 2 without retraining, where the run is provably the same.

A format-1 record identified its run by a hash of the config only. For every ``results/NN/record.json``
and ``results/NN/seedS/record.json`` of format 1 this script checks that:

1. the record's config is the chapter's current config (with the record's seed);
2. the code of the commit that trained it (``git archive`` of the recorded commit, which must have been
   clean) builds, in the record's precision, a model with the same architecture, augmentation, optimizer,
   loss and callback settings as the current code;
3. the saved ``model.keras``, where there is one, has that architecture and augmentation too;
4. the configured data has the record's fingerprint (``$CIFAR_LESSONS_DATA``).

Then it writes the record's identity, keeps only the file name of the data location, re-saves the model
without optimizer state (checking that every weight and every test-set prediction is identical), and
stores the file checksums. A record that fails a check is left as it is and reported: retrain it.

    python scripts/migrate_records.py [RESULTS_DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cifar_lessons import results, training  # noqa: E402
from cifar_lessons.chapters import get_chapter  # noqa: E402
from cifar_lessons.fast_config import FastConfig  # noqa: E402
from cifar_lessons.training import dtype_policy  # noqa: E402

# Run in the old code's package: build the chapter's model and callbacks, save the model, print the callbacks.
OLD_CODE_SCRIPT = r"""
import json, sys, numpy as np, keras
from pathlib import Path
from cifar_lessons import training
config = training.TrainConfig.from_dict(json.loads(sys.argv[1]))
keras.mixed_precision.set_global_policy(sys.argv[2])
model = training.build_model(config, np.zeros((1, 32, 32, 3), np.uint8))
model.save(sys.argv[3])
scratch = Path(sys.argv[3]).parent / "scratch"
try:
    callbacks = training._callbacks(config)
except TypeError:  # the format-1 code also passed its checkpoint folder, history path and history
    callbacks = training._callbacks(config, scratch, scratch / "history.json", {})
state = set(json.loads(sys.argv[4]))
settings = {type(c).__name__: {k: v for k, v in vars(c).items() if not k.startswith("_") and k not in state
                               and isinstance(v, (bool, int, float, str, type(None)))}
            for c in callbacks if type(c).__name__ not in ("EpochLog", "BackupAndRestore")}
print("SETTINGS " + json.dumps(settings))
"""


def old_code_identity(commit: str, config, precision: str, workdir: Path) -> dict:
    """The identity parts the code of ``commit`` gives ``config`` (architecture built by that code)."""
    import keras

    package = workdir / f"code-{commit[:12]}"
    if not package.exists():
        archive = subprocess.run(["git", "archive", commit, "cifar_lessons"], cwd=REPO_ROOT, capture_output=True,
                                 check=True).stdout
        package.mkdir()
        archive_path = workdir / f"{commit[:12]}.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(package, filter="data")
    model_path = workdir / f"old-{commit[:12]}-{config.hash}-{precision}.keras"
    env = {**os.environ, "PYTHONPATH": str(package), "TF_CPP_MIN_LOG_LEVEL": "2"}
    output = subprocess.run(
        [sys.executable, "-c", OLD_CODE_SCRIPT, json.dumps(config.to_dict()), precision, str(model_path),
         json.dumps(sorted(training._CALLBACK_STATE))], capture_output=True, text=True, env=env, check=True)
    settings = json.loads(output.stdout.split("SETTINGS ", 1)[1].splitlines()[0])
    with dtype_policy(precision):
        model = keras.models.load_model(model_path)
    return {"config": config.hash, "architecture": training.architecture_hash(model),
            "augmentation": training.augmentation_settings(model),
            "optimizer": training.optimizer_settings(model.optimizer), "loss": str(model.loss),
            "callbacks": settings, "precision": precision}


def convert_model(path: Path, x_test: np.ndarray, precision: str) -> str:
    """Re-save ``path`` without optimizer state; check weights and predictions are identical."""
    import keras

    partial = path.with_name(".lean.partial.keras")
    with dtype_policy(precision):
        original = keras.models.load_model(path)
        training.save_model(original, partial)
        lean = keras.models.load_model(partial)
    same_weights = all(np.array_equal(a, b) for a, b in zip(original.get_weights(), lean.get_weights()))
    same_predictions = np.array_equal(original.predict(x_test, batch_size=500, verbose=0),
                                      lean.predict(x_test, batch_size=500, verbose=0))
    if not (same_weights and same_predictions and len(original.get_weights()) == len(lean.get_weights())):
        partial.unlink()
        raise RuntimeError(f"{path}: the re-saved model differs (weights {same_weights}, "
                           f"predictions {same_predictions})")
    os.replace(partial, path)
    return f"model re-saved without optimizer state; weights and all {len(x_test)} test predictions identical"


def migrate(run_dir: Path, data, workdir: Path, dry_run: bool) -> str:
    """Migrate one run folder; returns what was done, raises RuntimeError with the reason it cannot be."""
    record = results.read_json(run_dir / results.RECORD_FILE)
    if record.get("format") == results.RECORD_FORMAT:
        results.validate_record(record, run_dir / results.RECORD_FILE)
        return "already format 2"
    if record.get("format") != 1:
        raise RuntimeError(f"unknown format {record.get('format')!r}")
    chapter = get_chapter(record["chapter"])
    if isinstance(chapter.config, FastConfig):
        return migrate_fast(run_dir, record, chapter, data, dry_run)
    config = training.TrainConfig.from_dict(record["config"])
    expected_config = chapter.config if config.seed == chapter.config.seed else \
        __import__("dataclasses").replace(chapter.config, seed=config.seed)
    if record["config"] != expected_config.to_dict() or record["config_hash"] != expected_config.hash:
        raise RuntimeError("its config is not the chapter's current config: retrain")
    if record["data"]["fingerprint"] != data.fingerprint:
        raise RuntimeError(f"recorded on data {record['data']['fingerprint']}, the configured data is "
                           f"{data.fingerprint}")
    code = record.get("code") or {}
    if not code.get("git_commit") or code.get("git_dirty") is not False:
        raise RuntimeError("the training code is not a clean commit, so its model cannot be rebuilt")
    precision = record["precision"]
    expected = training.expected_identity(expected_config, precision, data.fingerprint)
    old = old_code_identity(code["git_commit"], expected_config, precision, workdir)
    different = [part for part in old if old[part] != expected[part]]
    if different:
        raise RuntimeError(f"commit {code['git_commit'][:12]} builds a different {', '.join(different)}")
    proof = [f"commit {code['git_commit'][:12]} builds the same architecture, augmentation, optimizer, loss and "
             "callbacks as the current code"]
    model_path = run_dir / results.MODEL_FILE
    if model_path.is_file():
        import keras

        with dtype_policy(precision):
            saved = keras.models.load_model(model_path, compile=False)
        if (training.architecture_hash(saved), training.augmentation_settings(saved)) != \
                (expected["architecture"], expected["augmentation"]):
            raise RuntimeError(f"{model_path} does not have the architecture the current code builds")
        proof.append("the saved model has that architecture")
    if dry_run:
        return "would migrate: " + "; ".join(proof)
    if model_path.is_file():
        proof.append(convert_model(model_path, data.x_test, precision))
    migrated = dict(record)
    migrated["format"] = results.RECORD_FORMAT
    migrated["identity"] = expected
    migrated["data"] = {**record["data"], "location": Path(record["data"]["location"]).name}
    migrated["files"] = {name: results.file_sha256(run_dir / name)
                         for name in (results.MODEL_FILE, results.HISTORY_FILE) if (run_dir / name).is_file()}
    migrated["migrated"] = {"from_format": 1, "date": dt.date.today().isoformat(), "proof": proof}
    migrated = results.seal_record(migrated)
    results.validate_record(migrated, run_dir / results.RECORD_FILE)
    results.write_json_atomic(run_dir / results.RECORD_FILE, migrated)
    return "migrated: " + "; ".join(proof)


# The functions of cifar_lessons/fast.py that decide what a chapter-11 run computes (train_fast's own
# changes since the first runs only concern what it writes into the record).
FAST_TRAINING_CODE = ("whitening_kernel", "torch_style_initializer", "conv_group", "build_fast_net", "training_model",
                      "_flip_layer", "_shift_layer", "inference_model", "learning_rate_schedule", "BiasBoostSGD",
                      "compile_fast", "_splits", "_recompute_batch_norm_statistics", "_score")


def _definitions(source: str) -> dict:
    import ast

    return {node.name: ast.dump(node) for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def migrate_fast(run_dir: Path, record: dict, chapter, data, dry_run: bool) -> str:
    """Migrate a chapter-11 record: same config, same training code at its commit, same saved architecture."""
    import dataclasses

    import keras

    from cifar_lessons import fast

    expected_config = dataclasses.replace(chapter.config, seed=record["config"]["seed"])
    # The first chapter-11 records hashed their config with a "recipe" key added; format 2 hashes the config alone.
    first_hash = results.config_hash({"recipe": "fast", **expected_config.to_dict()})
    if record["config"] != expected_config.to_dict() or record["config_hash"] not in (expected_config.hash, first_hash):
        raise RuntimeError("its config is not the chapter's current config: retrain")
    if record["data"]["fingerprint"] != data.fingerprint:
        raise RuntimeError(f"recorded on data {record['data']['fingerprint']}, the configured data is "
                           f"{data.fingerprint}")
    code = record.get("code") or {}
    if not code.get("git_commit") or code.get("git_dirty") is not False:
        raise RuntimeError("the training code is not a clean commit")
    then = _definitions(subprocess.run(["git", "show", f"{code['git_commit']}:cifar_lessons/fast.py"], cwd=REPO_ROOT,
                                       capture_output=True, text=True, check=True).stdout)
    now = _definitions((REPO_ROOT / "cifar_lessons" / "fast.py").read_text())
    changed = [name for name in FAST_TRAINING_CODE if then.get(name) != now.get(name)]
    if changed:
        raise RuntimeError(f"commit {code['git_commit'][:12]} trained with other code for {', '.join(changed)}")
    proof = [f"commit {code['git_commit'][:12]} has the same training functions as the current code"]
    expected = fast.expected_identity(expected_config, record["precision"], data.fingerprint)
    model_path = run_dir / results.MODEL_FILE
    if model_path.is_file():
        with dtype_policy(record["precision"]):
            saved = keras.models.load_model(model_path, compile=False)
        if training.architecture_hash(saved) != expected["architecture"]:
            raise RuntimeError(f"{model_path} does not have the architecture the current code builds")
        proof.append("the saved model has that architecture")
    if dry_run:
        return "would migrate: " + "; ".join(proof)
    migrated = {**record, "format": results.RECORD_FORMAT, "identity": expected, "config_hash": expected_config.hash,
                "data": {**record["data"], "location": Path(record["data"]["location"]).name},
                "files": {name: results.file_sha256(run_dir / name)
                          for name in (results.MODEL_FILE, results.HISTORY_FILE) if (run_dir / name).is_file()},
                "migrated": {"from_format": 1, "date": dt.date.today().isoformat(), "proof": proof}}
    migrated = results.seal_record(migrated)
    results.validate_record(migrated, run_dir / results.RECORD_FILE)
    results.write_json_atomic(run_dir / results.RECORD_FILE, migrated)
    return "migrated: " + "; ".join(proof)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", nargs="?", type=Path, default=results.default_results_dir())
    parser.add_argument("--dry-run", action="store_true", help="check only, change nothing")
    args = parser.parse_args()
    from cifar_lessons.data import load_cifar10

    data = load_cifar10()
    folders = sorted(path.parent for path in args.results_dir.glob("[0-9][0-9]/record.json"))
    folders += sorted(path.parent for path in args.results_dir.glob("[0-9][0-9]/seed*/record.json"))
    failed = 0
    with tempfile.TemporaryDirectory() as workdir:
        for run_dir in folders:
            try:
                outcome = migrate(run_dir, data, Path(workdir), args.dry_run)
            except (RuntimeError, results.RecordError, subprocess.CalledProcessError, KeyError) as error:
                detail = error.stderr[-500:] if isinstance(error, subprocess.CalledProcessError) else error
                outcome, failed = f"NOT migrated: {detail}", failed + 1
            print(f"{run_dir.relative_to(args.results_dir)}: {outcome}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
