"""Run records: what a training run produced, and everything needed to trust it.

A record is a JSON file next to the saved model. It names the chapter, the exact
config (and its hash), the seed, epochs, wall time, hardware, library versions,
the data source and its fingerprint, and the validation and test scores.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

RECORD_FILE = "record.json"
HISTORY_FILE = "history.json"
MODEL_FILE = "model.keras"
RECORD_FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent

# Keys every record must carry, with the type each must have.
REQUIRED = {
    "format": int, "chapter": str, "config": dict, "config_hash": str, "seed": int,
    "epochs_run": int, "best_epoch": int, "wall_time_s": (int, float), "images_per_s": (int, float),
    "hardware": dict, "versions": dict, "data": dict, "code": dict,
    "val_accuracy": (int, float), "val_loss": (int, float),
    "test_accuracy": (int, float), "test_loss": (int, float), "created": str, "quick": bool,
}


# CPU instruction-set flags that decide training speed (AVX-512, bfloat16, AMX).
SPEED_FLAGS = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma"}


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
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_json(path: Path):
    """Read a JSON file, turning any problem into a RecordError naming the file (Chapter 1)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RecordError(f"{path} does not exist.") from None
    except (OSError, ValueError) as error:
        raise RecordError(f"{path} is not valid JSON ({error}). Delete it and train again.") from None


def validate_record(record, path: Path | str = RECORD_FILE) -> dict:
    """Check a record's keys and types, raising RecordError for a malformed one (Chapter 1)."""
    if not isinstance(record, dict):
        raise RecordError(f"{path} is malformed: expected a JSON object.")
    problems = [f"'{key}' missing" if key not in record else f"'{key}' has the wrong type"
                for key, kind in REQUIRED.items()
                if key not in record or not isinstance(record[key], kind)
                or (kind is int and isinstance(record[key], bool))]
    if not problems and not 0.0 <= record["test_accuracy"] <= 1.0:
        problems.append("'test_accuracy' outside 0-1")
    if not problems and record["format"] != RECORD_FORMAT:
        problems.append(f"format {record['format']} is not {RECORD_FORMAT}")
    if problems:
        raise RecordError(f"{path} is malformed: {'; '.join(problems)}. Retrain to write a fresh record.")
    return record


def load_record(run_dir: Path) -> dict:
    """Read and validate ``record.json`` from a run folder (Chapter 1)."""
    path = Path(run_dir) / RECORD_FILE
    return validate_record(read_json(path), path)


def config_hash(config: dict) -> str:
    """Short sha256 of a config's canonical JSON (Chapter 1)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


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
    import tensorflow as tf

    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    # "AMD EPYC" names hosts that train several times apart: the vector flags tell them apart.
    flags = sorted(set((cpuinfo_field("flags") or "").split()) & SPEED_FLAGS)
    return {"cpu": cpu, "cores": os.cpu_count(), "gpus": gpus, "platform": platform.platform(),
            "cpu_flags": flags}


def library_versions() -> dict:
    """Versions of Python and the libraries a run depends on (Chapter 1)."""
    import keras
    import matplotlib
    import numpy
    import sklearn
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def code_identity() -> dict:
    """The git commit (and whether the tree was dirty) plus a hash of the package source (Chapter 1)."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    identity = {"package_sha256": digest.hexdigest()[:16], "git_commit": None, "git_dirty": None}
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        identity["git_commit"] = git("rev-parse", "HEAD")
        identity["git_dirty"] = bool(git("status", "--porcelain", "--", str(PACKAGE_DIR)))
    except (OSError, subprocess.SubprocessError):
        pass
    return identity
