"""Loading CIFAR-10 from every real source, caching it, and splitting off validation data.

Introduced in Chapter 1. Where the data comes from, first match wins:

1. the ``source`` argument of :func:`load_cifar10`;
2. the environment variable ``CIFAR_LESSONS_DATA``;
3. the official download through ``keras.datasets.cifar10``.

Reading a local source (the official archive or its batches folder, or an image tree as a folder or an
archive), safely, is :mod:`cifar_lessons.sources`; this module turns what it reads into a checked
:class:`Dataset`: pixels must be 8-bit and every class must hold the expected number of train and test
images. Decoded image trees are cached, and a cache is used only when its content still hashes to the
fingerprint stored inside it, it was built from the same source bytes, and it agrees with its source (labels,
and a sample of images for a folder). Every problem is a :class:`DataError` with a one-line message that says
what to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from .files import one_line as _one_line
from .sources import (
    BATCH_NAMES,
    CLASS_NAMES,
    ENV_VAR,
    OFFICIAL_MD5,
    OFFICIAL_PER_CLASS,
    UNOFFICIAL_PICKLE,
    DataError,
    batches_folder,
    decode_entry,
    file_digest,
    file_digests,
    fingerprint_arrays,
    layout_labels,
    open_source_file,
    read_local,
    source_hint,
    tree_files,
    tree_index,
)

CACHE_ENV_VAR = "CIFAR_LESSONS_CACHE"
_CACHE_FORMAT = 2
MAX_CACHE_FILES = 3  # decoded sources kept in the cache, the most recently used
CACHE_SAMPLE = 64  # images per split that a cached folder source decodes afresh on every load

_log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train and test arrays plus where they came from (Chapter 1)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    source: dict

    @property
    def fingerprint(self) -> str:
        """Hash of the arrays, naming exactly which data a number came from."""
        return self.source["fingerprint"]

    def describe(self) -> str:
        """One human-readable line about the source (Chapter 1)."""
        s = self.source
        return (f"{s['name']}: {len(self.x_train):,} train / {len(self.x_test):,} test images "
                f"from {s['location']} (fingerprint {s['fingerprint']})")


# --- cache --------------------------------------------------------------------------

def cache_dir() -> Path:
    """Folder for decoded arrays: $CIFAR_LESSONS_CACHE or ~/.cache/cifar_lessons (Chapter 1)."""
    configured = os.environ.get(CACHE_ENV_VAR)
    return Path(configured) if configured else Path.home() / ".cache" / "cifar_lessons"


def _source_key(path: Path, algorithms=("sha256",)) -> dict:
    """Checksums naming a local source's content: a file's digests, or a hash of every file a folder supplies.

    A folder's key hashes the bytes of each file the loader reads (not sizes or times),
    so an edit that keeps a file's size and modification time still changes the key.
    """
    if path.is_file():
        return file_digests(path, algorithms)
    folder = batches_folder(path)
    files = ([((name,), folder / name) for name in BATCH_NAMES if (folder / name).exists()]
             if folder else tree_files(path))
    digest = hashlib.sha256()
    for parts, file in files:
        digest.update(f"{'/'.join(parts)}\0{file_digest(file)}\n".encode("utf-8", "surrogateescape"))
    return {"sha256": digest.hexdigest()}


def _expected_shapes(per_class: tuple) -> list:
    train, test = 10 * per_class[0], 10 * per_class[1]
    return [((train, 32, 32, 3), np.uint8), ((train,), np.int64), ((test, 32, 32, 3), np.uint8), ((test,), np.int64)]


def _read_npy(handle, shape: tuple | None, dtype, limit: int = 1 << 16) -> np.ndarray:
    """Read one array saved by ``np.save``, checking its header before reading its data."""
    version = np.lib.format.read_magic(handle)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    found_shape, fortran, found_dtype = read_header[version](handle)
    if shape is None:  # the small metadata string
        if found_shape != () or found_dtype.kind != "U" or found_dtype.itemsize > limit:
            raise ValueError("it has no readable metadata")
        dtype, shape = found_dtype, ()
    elif fortran or found_dtype != np.dtype(dtype) or found_shape != shape:
        raise ValueError(f"it holds an array of shape {found_shape} and dtype {found_dtype}, "
                         f"expected {shape} {np.dtype(dtype)}")
    count = int(np.prod(shape))
    array = np.fromfile(handle, dtype=dtype, count=count)
    if array.size != count:
        raise ValueError("truncated")
    return array.reshape(shape)


def _check_against_source(arrays: tuple, path: Path, per_class: tuple, sample: int = CACHE_SAMPLE) -> None:
    """Raise ValueError unless cached arrays agree with their image-tree source.

    The labels must be the ones the tree's layout gives (class by class); in a folder, ``sample`` images
    drawn at random are decoded afresh and must equal their cached pixels. (An archive is not re-read:
    its checksum is the cache's key.)
    """
    for split, labels, expected in (("train", arrays[1], per_class[0]), ("test", arrays[3], per_class[1])):
        if not np.array_equal(labels, layout_labels(expected)):
            raise ValueError(f"its {split} labels are not the ones the source's folders give")
    if not path.is_dir():
        return
    found = tree_index(tree_files(path), str(path), per_class)
    rng = np.random.default_rng()
    for split, images, expected in (("train", arrays[0], per_class[0]), ("test", arrays[2], per_class[1])):
        for index in rng.choice(10 * expected, size=min(sample, 10 * expected), replace=False):
            name = CLASS_NAMES[index // expected]
            image = decode_entry(str(path), split, name, found[split][name][index % expected])[0]
            if not np.array_equal(image, images[index]):
                raise ValueError(f"its {split} image {index} differs from {split}/{name} in the source")


def _load_cache(file: Path, cache_key: str, per_class: tuple, path: Path) -> tuple | None:
    """Arrays from a cache file, or None when it is missing, stale, fails its checksum or disagrees with
    its source."""
    if not file.exists():
        return None
    try:
        with open_source_file(file) as handle:
            meta = json.loads(str(_read_npy(handle, None, None)))
            if meta.get("format") != _CACHE_FORMAT or meta.get("key") != cache_key:
                raise ValueError("it was built by another version or from other data")
            arrays = tuple(_read_npy(handle, shape, dtype) for shape, dtype in _expected_shapes(per_class))
        _check_arrays(arrays, str(path), per_class)
        fingerprint = fingerprint_arrays(*arrays)
        if fingerprint != meta.get("fingerprint"):  # the content's own checksum
            raise ValueError(f"its arrays hash to {fingerprint}, not the {meta.get('fingerprint')} it records")
        _check_against_source(arrays, path, per_class)
        os.utime(file)  # recently used: the last to be pruned
        return arrays, str(meta["image_format"]), fingerprint, [str(note) for note in meta.get("notes", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, DataError) as error:
        _log.warning("Ignoring the cache %s (%s); decoding the source again.", file.name, _one_line(error))
        return None


def cache_files() -> list[Path]:
    """The cache's files, most recently used first (Chapter 1)."""
    folder = cache_dir()
    found = [file for file in folder.glob("cifar10-*.npy") if file.is_file()] if folder.is_dir() else []
    return sorted(found, key=lambda file: file.stat().st_mtime, reverse=True)


def clear_cache(keep: int = 0) -> list[Path]:
    """Delete all but the ``keep`` most recently used cache files; the deleted ones (Chapter 1)."""
    removed = cache_files()[keep:]
    for file in removed:
        file.unlink(missing_ok=True)
    return removed


def _save_cache(file: Path, arrays: tuple, image_format: str, fingerprint: str, cache_key: str,
                notes: list | None = None) -> None:
    """Write the cache atomically (a temporary file, then a rename), keeping at most MAX_CACHE_FILES sources."""
    tmp = None
    meta = {"format": _CACHE_FORMAT, "key": cache_key, "image_format": image_format, "fingerprint": fingerprint,
            "notes": list(notes or [])}
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=file.parent, suffix=".npy.partial")
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, np.array(json.dumps(meta)), allow_pickle=False)
            for array in arrays:
                np.save(stream, array, allow_pickle=False)
        os.replace(tmp, file)
        clear_cache(keep=MAX_CACHE_FILES)  # each source's arrays take 177 MB: the oldest go
    except OSError:
        if tmp:
            Path(tmp).unlink(missing_ok=True)  # the cache is optional: carry on without it


def _check_arrays(arrays: tuple, location: str, per_class: tuple = OFFICIAL_PER_CLASS) -> None:
    """Shapes, 8-bit pixels, labels 0-9 and the number of images of every class in each split."""
    x_train, y_train, x_test, y_test = arrays
    for x, y, split, expected in ((x_train, y_train, "train", per_class[0]), (x_test, y_test, "test", per_class[1])):
        if x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or y.shape != (len(x),):
            raise DataError(f"{location}: {split} images have shape {x.shape} and dtype {x.dtype}, "
                            "expected (N, 32, 32, 3) uint8 with N labels.")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{location}: {split} labels fall outside 0-9.")
        counts = np.bincount(y, minlength=10)
        for name, count in zip(CLASS_NAMES, counts):
            if count != expected:
                raise DataError(f"{location}: {split}/{name} holds {count} images, expected {expected}. "
                                "Is this a complete CIFAR-10 copy?")


def _source_name(image_format: str) -> str:
    if image_format == "pickle":
        return "CIFAR-10 (official)"
    if image_format == UNOFFICIAL_PICKLE:
        return "CIFAR-10 batches (md5 differs from the official files)"
    return f"CIFAR-10 ({image_format} re-encoding)"


def load_cifar10(source: str | os.PathLike | None = None, *,
                 per_class: tuple = OFFICIAL_PER_CLASS,
                 official_md5: str = OFFICIAL_MD5, use_cache: bool = True) -> Dataset:
    """Load CIFAR-10 as uint8 images and integer labels, reporting its source (Chapter 1).

    ``per_class`` is the number of train and test images each class must have;
    ``official_md5`` is the checksum an official ``cifar-10-python.tar.gz`` must match.
    """
    if source is None:
        source = os.environ.get(ENV_VAR) or None
    if source is None:
        return _load_from_keras(per_class)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"CIFAR-10 source {path} does not exist. " + source_hint())
    path = path.resolve()
    if not path.is_dir():
        open_source_file(path).close()  # a FIFO or device named .tar.gz is refused, not waited on
    digests = _source_key(path, ("sha256", "md5"))
    key = digests["sha256"]
    # Pickled batches parse in a second or two and are checked by md5 on every load: they are never cached.
    if batches_folder(path) if path.is_dir() else digests.get("md5") == official_md5:
        use_cache = False
    # The cache is named by the source's content and everything else that shapes the arrays.
    cache_key = hashlib.sha256(f"{key}|{per_class[0]}|{per_class[1]}|{official_md5}".encode()).hexdigest()
    cache_file = cache_dir() / f"cifar10-{cache_key[:24]}.npy"
    cached = _load_cache(cache_file, cache_key, per_class, path) if use_cache else None
    if cached is not None:
        arrays, image_format, fingerprint, notes = cached
        for note in notes:
            _log.warning("%s: %s.", path, note)
    else:
        arrays, image_format, notes = read_local(path, per_class, official_md5, digests.get("md5"))
        _check_arrays(arrays, str(path), per_class)
        fingerprint = fingerprint_arrays(*arrays)
        if use_cache:
            _save_cache(cache_file, arrays, image_format, fingerprint, cache_key, notes)
    # Records name the data by its file name, checksum and fingerprint, never by a machine's absolute path.
    info = {"name": _source_name(image_format), "location": path.name, "image_format": image_format,
            "source_sha256": key if path.is_file() else None, "fingerprint": fingerprint}
    return _with_findings(Dataset(*arrays, class_names=CLASS_NAMES, source=info), notes)


def find_duplicates(x_train: np.ndarray, x_test: np.ndarray) -> dict:
    """Exact duplicate images, found by hashing each one (Chapter 1).

    ``train`` and ``test`` count the extra copies within each split; ``test_in_train`` the test images that
    also appear in the training set (a model could have memorized them).
    """
    def digests(images):
        return [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images]

    train, test = digests(x_train), digests(x_test)
    return {"train": len(train) - len(set(train)), "test": len(test) - len(set(test)),
            "test_in_train": len(set(test) & set(train))}


def _with_findings(data: Dataset, notes: list) -> Dataset:
    """Add to the source what a careful reader should know: conversions made, duplicate images found."""
    duplicates = find_duplicates(data.x_train, data.x_test)
    if any(duplicates.values()):
        _log.warning("%s holds exact duplicate images: %d extra copies in train, %d in test, %d test images also "
                     "in train.", data.source["location"], duplicates["train"], duplicates["test"],
                     duplicates["test_in_train"])
        data.source["duplicates"] = duplicates
    if notes:
        data.source["notes"] = list(notes)
    return data


def _load_from_keras(per_class: tuple = OFFICIAL_PER_CLASS) -> Dataset:
    import keras  # lazy: imports TensorFlow; list and report stay light

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # Keras raises a bare Exception on a failed download
        raise DataError(f"Could not download CIFAR-10 through Keras ({_one_line(error)}). " + source_hint()) from None
    arrays = (x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64))
    _check_arrays(arrays, "keras.datasets.cifar10", per_class)
    info = {"name": "CIFAR-10 (official)", "location": "keras.datasets.cifar10", "image_format": "pickle",
            "source_sha256": None, "fingerprint": fingerprint_arrays(*arrays)}
    return _with_findings(Dataset(*arrays, class_names=CLASS_NAMES, source=info), [])


def train_validation_split(x, y, validation_size: int = 5000, seed: int = 0):
    """Carve a stratified, seeded validation set from the training data (Chapter 1)."""
    from sklearn.model_selection import train_test_split  # lazy: imports scikit-learn; list and report stay light

    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_size, stratify=y, random_state=seed)
    return (x_train, y_train), (x_val, y_val)
