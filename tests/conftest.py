"""Shared fixtures: tiny synthetic CIFAR-10 sources in every supported format, a cache of their own for the
data tests, the real data, and the site built once for every test_site_* module."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The MkDocs hook and its helpers live in hooks/, beside the book and outside the package; MkDocs puts that
# folder on the path when it loads the hook, and so do the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hooks"))

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


def batch_bytes(images, labels) -> bytes:
    """One official-format pickled batch of (N, 32, 32, 3) images."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return pickle.dumps({b"data": data, b"labels": [int(v) for v in labels]}, protocol=2)


def official_batches(seed: int = 0) -> dict[str, bytes]:
    """The six official batch files, the training set split over five batches."""
    x_train, y_train, x_test, y_test = synthetic_arrays(seed)
    order = np.random.default_rng(seed).permutation(len(x_train))
    files = {f"data_batch_{i + 1}": batch_bytes(x_train[part], y_train[part])
             for i, part in enumerate(np.array_split(order, 5))}
    files["test_batch"] = batch_bytes(x_test, y_test)
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


def write_raw_zip(path: Path, members: list) -> Path:
    """A zip archive written byte by byte from (name, stored bytes, method, crc, declared size).

    Unlike ``zipfile`` this can write headers that lie about a member, as a hostile archive would.
    """
    local, central = b"", b""
    for name, stored, method, crc, size in members:
        encoded = name.encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(stored), size,
                             len(encoded), 0) + encoded + stored
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(stored), size,
                               len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def zip_members(files: dict[str, bytes]) -> list:
    """Honest stored members for :func:`write_raw_zip`."""
    return [(name, payload, 0, zlib.crc32(payload), len(payload)) for name, payload in files.items()]


def deflated_zeros(gib: int = 1) -> bytes:
    """A raw deflate stream of ``gib`` GiB of zero bytes, built without ever holding them (about 1 MB).

    A full flush resets the compressor, so every MiB of zeros compresses to the same bytes.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * (1024 * gib) + compressor.flush(zlib.Z_FINISH)


def tar_entry(name: str, payload: bytes = b"", size: int | None = None) -> bytes:
    """One tar member as raw bytes: header, payload, padding; ``size`` may claim more than ``payload``."""
    info = tarfile.TarInfo(name)
    info.size = len(payload) if size is None else size
    return info.tobuf(tarfile.GNU_FORMAT) + payload + bytes(-len(payload) % tarfile.BLOCKSIZE)


def write_tar_gz_with_huge_member(path: Path, files: dict[str, bytes], name: str, gib: int = 1) -> Path:
    """A valid .tar.gz holding ``files`` and a member ``name`` of ``gib`` GiB of zeros, about 1 MB on disk.

    The tar stream is written as several gzip members (gzip allows that): the small files and
    the big member's header, then one identical member per MiB of zeros, then the end blocks.
    """
    head = b"".join(tar_entry(member, payload) for member, payload in files.items()) + tar_entry(name, size=gib << 30)
    zeros_mib = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    end = bytes(tarfile.BLOCKSIZE * 2)
    path.write_bytes(gzip.compress(head, mtime=0) + zeros_mib * (1024 * gib) + gzip.compress(end, mtime=0))
    return path


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


@pytest.fixture
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test decodes into its own cache, so no test sees another's.

    Every test_data_* module uses it for all its tests (``pytestmark = pytest.mark.usefixtures(...)``)."""
    monkeypatch.setenv("CIFAR_LESSONS_CACHE", str(tmp_path_factory.mktemp("cache")))


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
        if os.environ.get("CIFAR_LESSONS_DATA"):  # a configured source that fails its checks is a failure
            pytest.fail(f"the configured CIFAR-10 source is unusable: {error}")
        no_data(f"no CIFAR-10 source available: {error}")


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The book built by ``mkdocs build --strict``: once a session, for every test_site_* module."""
    from site_support import BUILD_LOGS

    from cifar_lessons.book.chapters import REPO_ROOT

    site_dir = tmp_path_factory.mktemp("site")
    # Material 9.8.2+ prints an end-of-life banner on every build; scripts/setup.sh turns it off the same way.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    BUILD_LOGS[site_dir] = result.stderr + result.stdout
    return site_dir
