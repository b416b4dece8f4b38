"""Shared fixtures: tiny synthetic CIFAR-10 sources in every supported format."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cifar_lessons.data import CLASS_NAMES  # noqa: E402

TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2
PER_CLASS = (TRAIN_PER_CLASS, TEST_PER_CLASS)


def synthetic_arrays(seed: int = 0):
    """Tiny train/test arrays, classes in label order, like the official layout."""
    rng = np.random.default_rng(seed)
    arrays = []
    for per_class in PER_CLASS:
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        arrays += [images, labels]
    return arrays


def _batch_bytes(images, labels) -> bytes:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return pickle.dumps({b"data": data, b"labels": [int(v) for v in labels]}, protocol=2)


def official_batches(seed: int = 0) -> dict[str, bytes]:
    """The six official batch files, the training set split over five batches."""
    x_train, y_train, x_test, y_test = synthetic_arrays(seed)
    order = np.random.default_rng(seed).permutation(len(x_train))
    files = {f"data_batch_{i + 1}": _batch_bytes(x_train[part], y_train[part])
             for i, part in enumerate(np.array_split(order, 5))}
    files["test_batch"] = _batch_bytes(x_test, y_test)
    return files


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def image_files(fmt: str = "PNG", seed: int = 0, prefix: str = "cifar", size=(32, 32)) -> dict[str, bytes]:
    """An image tree prefix/train/<class>/NNNN.<ext> as {path: encoded bytes}."""
    from PIL import Image

    x_train, y_train, x_test, y_test = synthetic_arrays(seed)
    files = {}
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        for index, (image, label) in enumerate(zip(images, labels)):
            buffer = io.BytesIO()
            Image.fromarray(image).resize(size).save(buffer, format=fmt)
            files[f"{prefix}/{split}/{CLASS_NAMES[label]}/{index:04d}.{fmt.lower()}"] = buffer.getvalue()
    return files


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, payload in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    return root


@pytest.fixture
def official_tar(tmp_path):
    """An official-format cifar-10-python.tar.gz with tiny batches, and its md5."""
    files = {f"cifar-10-batches-py/{name}": payload for name, payload in official_batches().items()}
    path = write_tar(tmp_path / "cifar-10-python.tar.gz", files)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


# CI sets this (see .ci/run): there a missing or unreadable data source fails the data-dependent tests
# instead of skipping them, so a green run always means the accuracies were checked.
REQUIRE_DATA = os.environ.get("CIFAR_LESSONS_REQUIRE_DATA") == "1"


def no_data(reason: str):
    """Fail when CI requires the data, otherwise skip with the reason."""
    if REQUIRE_DATA:
        pytest.fail(f"{reason} (CIFAR_LESSONS_REQUIRE_DATA=1: the data-dependent tests must run)")
    pytest.skip(f"{reason}; set CIFAR_LESSONS_DATA to run the tests that need CIFAR-10")


@pytest.fixture
def shared_copy():
    """The offline JPEG copy of CIFAR-10 (skips when it is not beside the repository)."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
    if not path.is_file():
        no_data(f"the shared offline copy {path} is not present")
    return path


@pytest.fixture(scope="session")
def real_data():
    """The configured full CIFAR-10 source ($CIFAR_LESSONS_DATA or the Keras download)."""
    from cifar_lessons.data import DataError, load_cifar10

    try:
        return load_cifar10()
    except DataError as error:
        no_data(f"no CIFAR-10 source available: {error}")
