"""Run records: what a training run produced, and everything needed to trust it.

A record is a JSON file next to the saved model. It names the chapter, the exact
config (and its hash), the seed, epochs, wall time, hardware, library versions,
the data source and its fingerprint, and the validation and test scores. Its
``identity`` holds everything that determines the run (config, the architecture
actually built, optimizer, callbacks, augmentation, precision, data); a record whose
identity differs from what the current code would build is stale, and
:func:`identity_differences` says why. A ``checksum`` over the whole record shows
whether it was edited after training.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from .files import open_regular, read_bounded

RECORD_FILE = "record.json"
HISTORY_FILE = "history.json"
MODEL_FILE = "model.keras"
# A finished run waits here, complete, while it replaces the folder's old run (cifar_lessons.run_folder).
STAGED_DIR = ".staged"
# Format 2 added the run identity and the checksum. Every committed record is format 2; the one-off
# converter from format 1 (scripts/migrate_records.py) is in the git history.
RECORD_FORMAT = 2
PACKAGE_DIR = Path(__file__).resolve().parent

# Keys every record must carry, with the type each must have.
REQUIRED = {
    "format": int, "chapter": str, "config": dict, "config_hash": str, "seed": int,
    "epochs_run": int, "best_epoch": int, "wall_time_s": (int, float), "images_per_s": (int, float),
    "hardware": dict, "versions": dict, "data": dict, "code": dict,
    "val_accuracy": (int, float), "val_loss": (int, float),
    "test_accuracy": (int, float), "test_loss": (int, float), "created": str, "quick": bool,
    "precision": str, "identity": dict, "files": dict, "checksum": str,
}

# The parts of a run's identity, with the type each must have.
IDENTITY = {
    "config": str, "architecture": str, "augmentation": list, "optimizer": dict, "loss": str,
    "callbacks": dict, "precision": str, "data": str,
}


# CPU instruction-set flags that decide training speed (AVX-512, bfloat16, AMX).
SPEED_FLAGS = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma"}


class TrainingError(Exception):
    """Training cannot go on: a diverged loss, a damaged or foreign checkpoint, bad settings (Chapter 1)."""


class RecordError(Exception):
    """A run record is missing, malformed or stale (Chapter 1)."""


def default_results_dir() -> Path:
    """``results/`` at the repository root, or $CIFAR_LESSONS_RESULTS (Chapter 1)."""
    configured = os.environ.get("CIFAR_LESSONS_RESULTS")
    return Path(configured) if configured else PACKAGE_DIR.parent / "results"


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temp file in the same folder, then rename it into place (Chapter 1)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates files readable by their owner only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload) -> None:
    """Write JSON atomically: a crash never leaves a half-written file (Chapter 1)."""
    # allow_nan=False: NaN is not JSON; a NaN anywhere raises ValueError instead of writing an unreadable file.
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# Records, histories and checkpoint states are kilobytes; a "JSON file" larger than this is not one of them.
MAX_JSON_BYTES = 64 << 20


def read_json(path: Path):
    """Read a JSON file, turning any problem into a RecordError naming the file (Chapter 1).

    Only a regular file is read, and only up to MAX_JSON_BYTES: a FIFO is refused without waiting for a
    writer, and a link to a device such as /dev/zero without reading it.
    """
    raw = read_bounded(Path(path), MAX_JSON_BYTES, RecordError, "delete it and train again.",
                       too_large=lambda size: f"{path} holds {size:,} bytes, more than any record "
                                              f"({MAX_JSON_BYTES:,}). Delete it and train again.",
                       missing=f"{path} does not exist.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise RecordError(f"{path} is not valid JSON ({error}). Delete it and train again.") from None


def _non_finite(value, path: str = "") -> list[str]:
    """Paths of the NaN or infinite numbers anywhere inside a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        return [path or "value"]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _non_finite(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _non_finite(item, f"{path}[{index}]")]
    return []


def record_checksum(record: dict) -> str:
    """Short sha256 of a record's canonical JSON without its checksum: changes if anything is edited."""
    content = {key: value for key, value in record.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _type_problems(mapping: dict, required: dict, prefix: str = "") -> list[str]:
    return [f"'{prefix}{key}' missing" if key not in mapping else f"'{prefix}{key}' has the wrong type"
            for key, kind in required.items()
            if key not in mapping or not isinstance(mapping[key], kind)
            or (kind is int and isinstance(mapping[key], bool))]


def validate_record(record, path: Path | str = RECORD_FILE) -> dict:
    """Check a record's schema, types, ranges, finite numbers and checksum, raising RecordError (Chapter 1)."""
    if not isinstance(record, dict):
        raise RecordError(f"{path} is malformed: expected a JSON object.")
    if record.get("format") != RECORD_FORMAT and isinstance(record.get("format"), int):
        raise RecordError(f"{path} is malformed: format {record['format']} is not {RECORD_FORMAT}. "
                          "Retrain the chapter to write a current record.")
    problems = _type_problems(record, REQUIRED)
    if not problems:
        problems += _type_problems(record["identity"], IDENTITY, "identity.")
        problems += [f"'{key}' is not a finite number" for key in _non_finite(record)]
    if not problems:
        for key in ("test_accuracy", "val_accuracy"):
            if not 0.0 <= record[key] <= 1.0:
                problems.append(f"'{key}' outside 0-1")
        if record["epochs_run"] < 1 or not 1 <= record["best_epoch"] <= record["epochs_run"]:
            problems.append("'best_epoch' is not between 1 and 'epochs_run'")
        if config_hash(record["config"]) != record["config_hash"]:
            problems.append("'config' does not match 'config_hash'")
        if record["identity"]["config"] != record["config_hash"]:
            problems.append("'identity.config' does not match 'config_hash'")
        if record.get("data", {}).get("fingerprint") != record["identity"]["data"]:
            problems.append("'data.fingerprint' does not match 'identity.data'")
        if record_checksum(record) != record["checksum"]:
            problems.append("its checksum does not match its content (edited after training?)")
    if problems:
        raise RecordError(f"{path} is malformed: {'; '.join(problems)}. Retrain to write a fresh record.")
    return record


def seal_record(record: dict) -> dict:
    """The record with its checksum set, ready to be written (Chapter 1)."""
    sealed = {key: value for key, value in record.items() if key != "checksum"}
    sealed["checksum"] = record_checksum(sealed)
    return sealed


def identity_differences(recorded: dict, expected: dict) -> list[str]:
    """Why a recorded run's identity differs from what the current code would run: one phrase per part (Chapter 1).

    Dict-valued parts (optimizer, callbacks) name each changed setting; hashes say the part changed.
    """
    reasons = []
    for part in [*IDENTITY, *sorted(set(expected) - set(IDENTITY))]:  # and a recipe's own parts (Chapter 11's)
        old, new = recorded.get(part), expected.get(part)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed = [f"{key} {_short(old.get(key))} -> {_short(new.get(key))}"
                       for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
            reasons.append(f"{part} changed ({', '.join(changed)})")
        else:
            reasons.append(f"{part} changed (recorded {_short(old)}, now {_short(new)})")
    return reasons


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def load_record(run_dir: Path) -> dict:
    """Read and validate ``record.json`` from a run folder (Chapter 1)."""
    path = Path(run_dir) / RECORD_FILE
    return validate_record(read_json(path), path)


def config_hash(config: dict) -> str:
    """Short sha256 of a config's canonical JSON (Chapter 1)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def best_epoch(history: dict) -> int:
    """The epoch with the lowest validation loss, counted from 1: the one EarlyStopping keeps (Chapter 1)."""
    losses = history["val_loss"]
    return min(range(len(losses)), key=losses.__getitem__) + 1


def learning_rate_drops(history: dict) -> list[int]:
    """Epochs trained at a lower learning rate than the epoch before them (Chapter 7).

    The history logs, per epoch, the rate that epoch trained with, so a drop decided by
    ReduceLROnPlateau at the end of epoch ``e`` shows up at epoch ``e + 1``.
    """
    rates, epochs = history["learning_rate"], history["epoch"]
    return [epochs[i] for i in range(1, len(rates)) if rates[i] < rates[i - 1] * (1 - 1e-6)]


def run_record(*, chapter: str, config, history: dict, identity: dict, precision: str, data_source: dict,
               sizes: dict, scores: dict, images_per_epoch: int) -> dict:
    """The keys every run record has, whichever training path made it (Chapters 1 and 11).

    ``sizes`` holds train_images, val_images and test_images; ``scores`` val/test accuracy and loss;
    ``images_per_epoch`` the training images one epoch shows (its batches times their size). The caller adds
    what only its path knows, and the wall time last.
    """
    epochs_run = len(history["epoch"])
    train_time = float(sum(history["epoch_time_s"]))
    return {
        "format": RECORD_FORMAT, "chapter": chapter, "config": config.record_dict(), "config_hash": config.hash,
        "seed": config.seed, "epochs_run": epochs_run, "best_epoch": best_epoch(history),
        "train_time_s": round(train_time, 1), "images_per_s": round(images_per_epoch * epochs_run / train_time, 1),
        **sizes, "hardware": hardware_info(), "versions": library_versions(), "data": data_source,
        "code": code_identity(), "identity": identity, **{key: float(value) for key, value in scores.items()},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(config.subset), "precision": precision,
    }


def cpuinfo_field(name: str) -> str | None:
    """The first value of a field (e.g. "model name", "flags") in /proc/cpuinfo, or None (Chapter 1)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == name:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def hardware_info() -> dict:
    """CPU model, core count and GPUs of this machine (Chapter 1)."""
    cpu = cpuinfo_field("model name") or platform.processor() or platform.machine()
    import tensorflow as tf  # lazy: every command imports this module; most need no TensorFlow

    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    # "AMD EPYC" names hosts that train several times apart: the vector flags tell them apart.
    flags = sorted(set((cpuinfo_field("flags") or "").split()) & SPEED_FLAGS)
    # One model name and one set of flags can cover two CPU generations (AMD's Zen 4 and Zen 5 both
    # report "AMD EPYC" with AVX512_BF16): the family and model numbers tell them apart.
    generation = {key: int(value) for key, field in (("cpu_family", "cpu family"), ("cpu_model", "model"))
                  if (value := cpuinfo_field(field)) and value.isdigit()}
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "platform": platform.platform(),
            "cpu_flags": flags, **generation}


def cpu_name(hardware: dict) -> str:
    """A record's CPU as a name that tells hosts apart: the model name, with the family and model
    numbers where the record has them (records before 2026-12-06 do not) (Chapter 1)."""
    if "cpu_family" in hardware and "cpu_model" in hardware:
        return f"{hardware['cpu']} family {hardware['cpu_family']} model {hardware['cpu_model']}"
    return hardware["cpu"]


def library_versions() -> dict:
    """Versions of Python and the libraries a run depends on (Chapter 1)."""
    # Lazy, all five: only their versions are read, and every command imports this module.
    import keras
    import matplotlib
    import numpy
    import sklearn
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def package_sha256() -> str:
    """Short hash of the package's Python source (Chapter 1)."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(source.relative_to(PACKAGE_DIR).as_posix().encode() + source.read_bytes())
    return digest.hexdigest()[:16]


def code_identity() -> dict:
    """The git commit (and whether the tree was dirty) plus a hash of the package source (Chapter 1)."""
    identity = {"package_sha256": package_sha256(), "git_commit": None, "git_dirty": None}
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        identity["git_commit"] = git("rev-parse", "HEAD")
        identity["git_dirty"] = bool(git("status", "--porcelain", "--", str(PACKAGE_DIR)))
    except (OSError, subprocess.SubprocessError):
        pass
    return identity


def file_sha256(path: Path) -> str:
    """Short sha256 of a file's bytes (Chapter 1)."""
    digest = hashlib.sha256()
    # Only a regular file: a FIFO or device named like a model is refused at once, never waited on or read forever.
    with open_regular(Path(path), RecordError, "it should be a file that training wrote.") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def retrain_command(record: dict) -> str:
    """The command that trains a record's run again: its chapter, ``--control`` for an early-stopping control
    run (recorded as chapter "NN-control") and ``--seed`` for a seed other than 0 (Chapter 1)."""
    chapter, _, kind = str(record.get("chapter", "")).partition("-")
    seed = record.get("seed") or 0
    return (f"cifar-lessons train {chapter}" + (" --control" if kind == "control" else "")
            + (f" --seed {seed}" if seed else ""))


def check_files(record: dict, run_dir: Path, names: tuple = (MODEL_FILE, HISTORY_FILE)) -> None:
    """Check that the run folder's files are the ones the record names, raising RecordError (Chapter 1).

    A model written by an interrupted save, or copied from another run, does not match.
    """
    for name in names:
        path = Path(run_dir) / name
        if not path.is_file():
            raise RecordError(f"{path} is missing: retrain with `{retrain_command(record)}`.")
        if file_sha256(path) != record["files"].get(name):
            raise RecordError(f"{path} is not the file {Path(run_dir) / RECORD_FILE} recorded (an interrupted "
                              f"save or a copy from another run): run `{retrain_command(record)}` "
                              "again (it resumes an interrupted run).")
