"""Loading CIFAR-10 from every real source, caching it, and splitting off validation data.

Introduced in Chapter 1. Where the data comes from, first match wins:

1. the ``source`` argument of :func:`load_cifar10`;
2. the environment variable ``CIFAR_LESSONS_DATA``;
3. the official download through ``keras.datasets.cifar10``.

A local source may be the official ``cifar-10-python.tar.gz`` (its md5 is checked
before anything is unpickled), its extracted ``cifar-10-batches-py/`` folder, or an
image-folder tree ``train/<class>/*``, ``test/<class>/*`` (PNG or JPEG), as a folder
or as a ``.tar``, ``.tar.gz`` or ``.zip`` archive. Archives are read member by
member in memory, never extracted, so nothing can be written outside a target.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_PER_CLASS = (5000, 1000)
ENV_VAR = "CIFAR_LESSONS_DATA"
CACHE_ENV_VAR = "CIFAR_LESSONS_CACHE"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CACHE_FORMAT = 1


class DataError(Exception):
    """A CIFAR-10 source is missing, malformed or corrupt (Chapter 1)."""


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


def _hint() -> str:
    return (f"Point {ENV_VAR} at cifar-10-python.tar.gz, its extracted cifar-10-batches-py/ "
            "folder, or an image tree train/<class>/*, test/<class>/* (folder, .tar.gz or .zip), "
            "or unset it to download the official data through Keras.")


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """Short sha256 of arrays' shapes and bytes (Chapter 1)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (Chapter 1)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- the official pickled batches -------------------------------------------------

class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds plain containers and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
        ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise DataError(f"refusing to unpickle {module}.{name}: not a CIFAR-10 batch file")
        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            module = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
        return super().find_class(module, name)


def _parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except DataError:
        raise
    except Exception as error:  # truncated or garbage pickles raise many types
        raise DataError(f"{name} is not a readable CIFAR-10 batch ({error}).") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{name} is a pickle but not a CIFAR-10 batch (no data/labels keys).")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(f"{name} holds data of shape {data.shape}, expected (N, 3072) images of 32x32x3.")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _from_batches(read) -> tuple:
    """Build arrays from a reader ``read(name) -> bytes`` of the six batch files."""
    train = [_parse_batch(read(f"data_batch_{i}"), f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _parse_batch(read("test_batch"), "test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def _read_batches_dir(folder: Path) -> tuple:
    def read(name):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{folder} has no {name}: not a complete cifar-10-batches-py folder.")
        return path.read_bytes()
    return _from_batches(read)


def _read_batches_tar(path: Path, expected_md5: str) -> tuple:
    md5 = file_digest(path, "md5")
    if md5 != expected_md5:
        raise DataError(f"{path} has md5 {md5}, expected {expected_md5}: the archive is corrupt "
                        "or not the official cifar-10-python.tar.gz. Download it again.")
    with _open_tar(path) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers()
                   if m.isfile() and Path(m.name).parent.name == "cifar-10-batches-py"}

        def read(name):
            if name not in members:
                raise DataError(f"{path} has no cifar-10-batches-py/{name}.")
            return archive.extractfile(members[name]).read()
        return _from_batches(read)


# --- image trees: folders and archives ---------------------------------------------

def _split_member(parts: tuple) -> tuple | None:
    """Map path parts ``.../train/<class>/<file>`` to (split, class, file)."""
    if len(parts) < 3 or parts[-3] not in ("train", "test"):
        return None
    if any(part in ("..", "") or part.startswith("/") for part in parts):
        raise DataError(f"unsafe path in archive: {'/'.join(parts)}")
    if not parts[-1].lower().endswith(IMAGE_SUFFIXES) or parts[-1].startswith("."):
        return None
    return parts[-3], parts[-2], parts[-1]


def _decode_image(raw: bytes, name: str) -> tuple[np.ndarray, str]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as image:
            fmt = image.format
            array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(f"{name} is not a readable image ({error}).") from None
    if array.shape != (32, 32, 3):
        raise DataError(f"{name} is {array.shape[1]}x{array.shape[0]}, CIFAR-10 images are 32x32.")
    return array, fmt


def _iter_tree_files(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_file():
            yield path.relative_to(root).parts, path.read_bytes


def _iter_tar_files(path: Path):
    with _open_tar(path) as archive:
        for member in archive:
            if member.isfile():
                data = archive.extractfile(member).read()
                yield tuple(Path(member.name).parts), (lambda data=data: data)


def _iter_zip_files(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield tuple(Path(info.filename).parts), (lambda info=info: archive.read(info))
    except zipfile.BadZipFile as error:
        raise DataError(f"{path} is not a readable zip archive ({error}).") from None


def _read_image_tree(files, location: str, per_class: tuple) -> tuple:
    found = {"train": {c: [] for c in CLASS_NAMES}, "test": {c: [] for c in CLASS_NAMES}}
    formats = set()
    for parts, read in files:
        key = _split_member(parts)
        if key is None:
            continue
        split, label, filename = key
        if label not in found[split]:
            raise DataError(f"{location}: unknown class folder {split}/{label}; "
                            f"expected the ten folders {', '.join(CLASS_NAMES)}.")
        found[split][label].append((filename, read()))
    arrays = []
    for split, expected in zip(("train", "test"), per_class):
        images, labels = [], []
        for index, name in enumerate(CLASS_NAMES):
            entries = sorted(found[split][name])
            if len(entries) != expected:
                raise DataError(f"{location}: {split}/{name} holds {len(entries)} images, expected "
                                f"{expected}. Is this a complete CIFAR-10 image tree?")
            for filename, raw in entries:
                image, fmt = _decode_image(raw, f"{location}: {split}/{name}/{filename}")
                images.append(image)
                formats.add(fmt)
            labels += [index] * expected
        arrays += [np.stack(images), np.asarray(labels, dtype=np.int64)]
    return (*arrays, formats)


def _open_tar(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable tar archive ({error}).") from None


# --- cache --------------------------------------------------------------------------

def cache_dir() -> Path:
    """Folder for decoded arrays: $CIFAR_LESSONS_CACHE or ~/.cache/cifar_lessons (Chapter 1)."""
    configured = os.environ.get(CACHE_ENV_VAR)
    return Path(configured) if configured else Path.home() / ".cache" / "cifar_lessons"


def _source_key(path: Path) -> str:
    """Checksum naming a local source: file sha256, or a hash of a folder's listing."""
    if path.is_file():
        return file_digest(path)
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _load_cache(file: Path) -> tuple | None:
    try:
        with np.load(file, allow_pickle=False) as saved:
            if int(saved["format"]) != _CACHE_FORMAT:
                return None
            arrays = tuple(saved[k] for k in ("x_train", "y_train", "x_test", "y_test"))
            return arrays, str(saved["image_format"]), str(saved["fingerprint"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # unreadable cache: decode the source again


def _save_cache(file: Path, arrays: tuple, image_format: str, fingerprint: str) -> None:
    tmp = None
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=file.parent, suffix=".npz.partial")
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, format=_CACHE_FORMAT, image_format=image_format, fingerprint=fingerprint,
                     **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
        os.replace(tmp, file)
    except OSError:
        if tmp:
            Path(tmp).unlink(missing_ok=True)  # the cache is optional: carry on without it


# --- the public entry point ---------------------------------------------------------

def _read_local(path: Path, per_class: tuple, official_md5: str) -> tuple[tuple, str]:
    """Decode a local source into arrays; return them and the image format name."""
    name = path.name.lower()
    if path.is_dir():
        batches = path / "cifar-10-batches-py"
        if (path / "data_batch_1").is_file():
            return _read_batches_dir(path), "pickle"
        if (batches / "data_batch_1").is_file():
            return _read_batches_dir(batches), "pickle"
        *arrays, formats = _read_image_tree(_iter_tree_files(path), str(path), per_class)
        return tuple(arrays), "+".join(sorted(formats))
    if name.endswith(".zip"):
        *arrays, formats = _read_image_tree(_iter_zip_files(path), str(path), per_class)
        return tuple(arrays), "+".join(sorted(formats))
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        with _open_tar(path) as archive:
            try:
                names = archive.getnames()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DataError(f"{path} is a truncated or corrupt archive ({error}). "
                                "Download or copy it again.") from None
        if any(n.endswith("cifar-10-batches-py/data_batch_1") for n in names):
            return _read_batches_tar(path, official_md5), "pickle"
        try:
            *arrays, formats = _read_image_tree(_iter_tar_files(path), str(path), per_class)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"{path} is a truncated or corrupt archive ({error}).") from None
        return tuple(arrays), "+".join(sorted(formats))
    raise DataError(f"{path} is neither a folder nor a .tar, .tar.gz or .zip archive. " + _hint())


def _check_arrays(arrays: tuple, location: str) -> None:
    x_train, y_train, x_test, y_test = arrays
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.dtype != np.uint8 or x.shape[1:] != (32, 32, 3) or len(x) != len(y):
            raise DataError(f"{location}: {split} images have shape {x.shape}, expected (N, 32, 32, 3).")
        if len(y) and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{location}: {split} labels fall outside 0-9.")


def _source_name(image_format: str) -> str:
    if image_format == "pickle":
        return "CIFAR-10 (official)"
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
        return _load_from_keras()
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"CIFAR-10 source {path} does not exist. " + _hint())
    path = path.resolve()
    key = _source_key(path)
    cache_file = cache_dir() / f"cifar10-{key[:24]}-{per_class[0]}-{per_class[1]}.npz"
    cached = _load_cache(cache_file) if use_cache else None
    if cached is not None:
        arrays, image_format, fingerprint = cached
    else:
        arrays, image_format = _read_local(path, per_class, official_md5)
        _check_arrays(arrays, str(path))
        fingerprint = fingerprint_arrays(*arrays)
        if use_cache:
            _save_cache(cache_file, arrays, image_format, fingerprint)
    # Records name the data by its file name, checksum and fingerprint, never by a machine's absolute path.
    info = {"name": _source_name(image_format), "location": path.name, "image_format": image_format,
            "source_sha256": key if path.is_file() else None, "fingerprint": fingerprint}
    return Dataset(*arrays, class_names=CLASS_NAMES, source=info)


def _load_from_keras() -> Dataset:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # Keras raises a bare Exception on a failed download
        raise DataError(f"Could not download CIFAR-10 through Keras ({error}). " + _hint()) from None
    arrays = (x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64))
    _check_arrays(arrays, "keras.datasets.cifar10")
    info = {"name": "CIFAR-10 (official)", "location": "keras.datasets.cifar10", "image_format": "pickle",
            "source_sha256": None, "fingerprint": fingerprint_arrays(*arrays)}
    return Dataset(*arrays, class_names=CLASS_NAMES, source=info)


def train_validation_split(x, y, validation_size: int = 5000, seed: int = 0):
    """Carve a stratified, seeded validation set from the training data (Chapter 1)."""
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_size, stratify=y, random_state=seed)
    return (x_train, y_train), (x_val, y_val)
