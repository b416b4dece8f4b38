"""Reading CIFAR-10 out of a local source, safely: pickled batches, image folders and archives (Chapter 1).

A local source may be the official ``cifar-10-python.tar.gz`` (its md5 is checked before anything is
unpickled), its extracted ``cifar-10-batches-py/`` folder, or an image-folder tree ``train/<class>/*``,
``test/<class>/*`` (PNG or JPEG), as a folder or as a ``.tar``, ``.tar.gz`` or ``.zip`` archive. Archives are
read member by member in memory, never extracted, so nothing can be written outside a target.

Nothing is trusted before it is checked: only regular files are opened; an archive is read to its end, so its
gzip, bzip2 or xz checksum is checked; member and image sizes are checked from their headers before anything
is read or decoded; a pickle may only rebuild plain containers and arrays, of the types and sizes a batch has.
Every problem is a :class:`DataError` with a one-line message that says what to do. :mod:`cifar_lessons.data`
turns what this module reads into a checked, cached :class:`~cifar_lessons.data.Dataset`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import stat
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .files import one_line as _one_line
from .files import open_regular, read_bounded

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_PER_CLASS = (5000, 1000)
ENV_VAR = "CIFAR_LESSONS_DATA"
CACHE_ENV_VAR = "CIFAR_LESSONS_CACHE"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BATCH_NAMES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
# The md5 of each file inside the official archive, as published with it (torchvision checks the same values).
OFFICIAL_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
}
UNOFFICIAL_PICKLE = "pickle, not the official files"

# Limits checked from headers before anything is read or decoded. A 32x32 PNG or JPEG
# is a few KB and an official batch file about 30 MB; CIFAR-10 has 60,000 images.
MAX_IMAGE_BYTES = 1 << 20
MAX_MEMBER_BYTES = 64 << 20
MAX_ARCHIVE_BYTES = 1 << 30
MAX_MEMBERS = 250_000
_IMAGE_MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "PA")

_log = logging.getLogger(__name__)

# What reading a damaged archive raises: gzip's "CRC check failed" is an OSError.
_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
try:
    import lzma

    _ARCHIVE_ERRORS += (lzma.LZMAError,)
except ImportError:  # Python built without xz support
    pass


class DataError(Exception):
    """A CIFAR-10 source is missing, malformed or corrupt (Chapter 1)."""


def source_hint() -> str:
    """Where a CIFAR-10 source can come from: the advice every "not found" error ends with."""
    return (f"Point {ENV_VAR} at cifar-10-python.tar.gz, its extracted cifar-10-batches-py/ "
            "folder, or an image tree train/<class>/*, test/<class>/* (folder, .tar.gz or .zip), "
            "or unset it to download the official data through Keras.")


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """Short sha256 of arrays' shapes and bytes (Chapter 1)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def open_source_file(path: Path):
    """Open a regular file for reading; refuse FIFOs, devices and sockets without blocking on them."""
    return open_regular(path, DataError, "point to the archive or folder itself.")


def file_digests(path: Path, algorithms=("sha256",)) -> dict:
    hashes = {name: hashlib.new(name) for name in algorithms}
    with open_source_file(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            for digest in hashes.values():
                digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in hashes.items()}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (Chapter 1)."""
    return file_digests(path, (algorithm,))[algorithm]



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
        raise DataError(f"{name} is not a readable CIFAR-10 batch ({_one_line(error)}).") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{name} is a pickle but not a CIFAR-10 batch (no data/labels keys).")
    # Types and element counts first, before anything is materialized: nested lists that share one inner list
    # pickle to kilobytes and would expand to gigabytes in np.asarray. An official batch holds a uint8 array
    # and a flat list of ints, both no larger than the pickle itself.
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "ui":
        kind = f"a {data.dtype} array" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{name} holds its pixels as {kind}, not as an array of integers 0-255: "
                        "not a CIFAR-10 batch.")
    if isinstance(labels, list) and all(type(label) is int for label in labels):
        labels = np.asarray(labels, dtype=np.int64)
    elif not (isinstance(labels, np.ndarray) and labels.dtype.kind in "ui"):
        raise DataError(f"{name} holds its labels as {type(labels).__name__}, not as a list of integers: "
                        "not a CIFAR-10 batch.")
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise DataError(f"{name} holds data of shape {data.shape} and labels of shape {labels.shape}, "
                        "expected (N, 3072) images of 32x32x3 and N labels.")
    if data.dtype != np.uint8 and len(data) and (data.min() < 0 or data.max() > 255):
        # Casting would wrap silently (400 becomes 144), so out-of-range pixels are refused.
        raise DataError(f"{name} holds pixel values from {data.min()} to {data.max()}; "
                        "CIFAR-10 pixels are 8-bit, 0-255.")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def _assemble_batches(parsed: dict, location: str) -> tuple:
    """Join the six parsed batches, refusing a missing or duplicated one."""
    seen = {}
    for name in BATCH_NAMES:
        if name not in parsed:
            raise DataError(f"{location} has no cifar-10-batches-py/{name}: not a complete CIFAR-10 copy.")
        images, labels = parsed[name]
        digest = fingerprint_arrays(images, labels)
        if digest in seen:
            raise DataError(f"{location}: {name} holds the same images as {seen[digest]}; "
                            "a batch was copied over another. Get the batches again.")
        seen[digest] = name
    x_train = np.concatenate([parsed[name][0] for name in BATCH_NAMES[:5]])
    y_train = np.concatenate([parsed[name][1] for name in BATCH_NAMES[:5]])
    return x_train, y_train, *parsed["test_batch"]


def batches_folder(path: Path) -> Path | None:
    for folder in (path, path / "cifar-10-batches-py"):
        if (folder / "data_batch_1").is_file():
            return folder
    return None


def _read_batches_dir(folder: Path) -> tuple[tuple, str]:
    """The arrays of an extracted batches folder, and "pickle" only if every file is the official one."""
    parsed, changed = {}, []
    for name in BATCH_NAMES:
        file = folder / name
        if not file.exists():
            raise DataError(f"{folder} has no {name}: not a complete cifar-10-batches-py folder.")
        raw = _read_file(file, MAX_MEMBER_BYTES)
        if hashlib.md5(raw).hexdigest() != OFFICIAL_BATCH_MD5[name]:
            changed.append(name)
        parsed[name] = _parse_batch(raw, name)
    if changed:
        _log.warning("%s: %s differ from the official files (md5); loaded, but not named CIFAR-10 (official).",
                     folder, ", ".join(changed))
    return _assemble_batches(parsed, str(folder)), UNOFFICIAL_PICKLE if changed else "pickle"


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


def _decode_image(raw: bytes, name: str) -> tuple[np.ndarray, str, str]:
    """Decode one 32x32 8-bit image, checking its size and depth from the header first; its format and mode."""
    from PIL import Image, UnidentifiedImageError  # lazy: imports Pillow; list and report stay light

    try:
        with Image.open(io.BytesIO(raw), formats=("PNG", "JPEG")) as image:
            fmt = image.format
            if image.size != (32, 32):  # checked before any pixel is decoded
                raise DataError(f"{name} is {image.size[0]}x{image.size[1]}, CIFAR-10 images are 32x32.")
            if fmt == "PNG" and raw[12:16] == b"IHDR" and raw[24] > 8:
                raise DataError(f"{name} is a {raw[24]}-bit PNG; CIFAR-10 images are 8-bit RGB. "
                                "Save it with 8 bits per channel.")
            if image.mode not in _IMAGE_MODES:
                raise DataError(f"{name} is a {image.mode} image; CIFAR-10 images are 8-bit RGB.")
            if "A" in image.mode or "transparency" in image.info:
                rgba = np.asarray(image.convert("RGBA"))
                if (rgba[..., 3] != 255).any():
                    raise DataError(f"{name} has transparent pixels; CIFAR-10 images are opaque RGB.")
                return np.ascontiguousarray(rgba[..., :3]), fmt, image.mode
            return np.asarray(image.convert("RGB"), dtype=np.uint8), fmt, image.mode
    except Image.DecompressionBombError as error:
        raise DataError(f"{name} is far larger than a 32x32 image ({_one_line(error)}).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise DataError(f"{name} is not a readable image ({_one_line(error)}).") from None


def _read_file(path: Path, limit: int) -> bytes:
    """Read a regular file whose size, checked first, is at most ``limit`` bytes."""
    return read_bounded(path, limit, DataError, "load it again when it is complete.",
                        too_large=lambda size: f"{path} is {_size(size)}, more than the {_size(limit)} a CIFAR-10 "
                                               "file can be; this is not a CIFAR-10 source.")


def tree_files(root: Path) -> list:
    """The image files of a folder tree, as (parts, path); symbolic links are skipped."""
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or path.is_dir():
            continue
        parts = path.relative_to(root).parts
        if _split_member(parts) is not None:
            files.append((parts, path))
    return files


class _Budget:
    """Counts an archive's members and bytes against the limits, from headers alone."""

    def __init__(self, location: str):
        self.location, self.members, self.bytes = location, 0, 0

    def admit(self, name: str, size: int, limit: int = MAX_MEMBER_BYTES) -> None:
        self.members += 1
        self.bytes += size
        if size > limit:
            raise DataError(f"{self.location}: member {name} is {_size(size)}, more than the {_size(limit)} "
                            "a CIFAR-10 file can be; this is not a CIFAR-10 archive.")
        if self.members > MAX_MEMBERS or self.bytes > MAX_ARCHIVE_BYTES:
            raise DataError(f"{self.location} holds more than {MAX_MEMBERS:,} members or "
                            f"{_size(MAX_ARCHIVE_BYTES)}; CIFAR-10 has 60,000 small images.")


def _check_tar_end(archive: tarfile.TarFile, location: str) -> None:
    """Read a tar stream to its end: a zero end block, zero padding, and the compressor's checksum."""
    stream = archive.fileobj
    # tarfile stops quietly at a missing or damaged header; a real end is one full zero block.
    if stream.tell() - archive.offset != tarfile.BLOCKSIZE:
        raise DataError(f"{location} ends without an end-of-archive block: it is truncated. "
                        "Download or copy it again.")
    padding = 0
    while chunk := stream.read(1 << 16):  # at EOF gzip, bzip2 and xz verify their checksums
        padding += len(chunk)
        if chunk.count(0) != len(chunk) or padding > MAX_MEMBER_BYTES:
            raise DataError(f"{location} has data after its end-of-archive block: a header is damaged "
                            "or the archive was tampered with. Download or copy it again.")


def _scan_tar(path: Path, file_md5: str | None, official_md5: str) -> tuple[dict, list]:
    """One pass over a tar archive: parsed official batches and raw image members."""
    location = str(path)
    budget, batches, images = _Budget(location), {}, []
    with open_source_file(path) as handle:
        try:
            archive = tarfile.open(fileobj=handle, mode="r:*")
        except _ARCHIVE_ERRORS as error:
            raise DataError(f"{path} is not a readable tar archive, or its start is corrupt ({_one_line(error)}). "
                            "Download or copy it again.") from None
        try:
            with archive:
                for member in archive:
                    if not member.isfile():
                        budget.admit(member.name, 0)
                        continue  # folders, links and devices are never followed or read
                    parts = PurePosixPath(member.name).parts
                    is_batch = len(parts) >= 2 and parts[-1] in BATCH_NAMES and parts[-2] == "cifar-10-batches-py"
                    key = None if is_batch else _split_member(parts)
                    budget.admit(member.name, member.size, MAX_IMAGE_BYTES if key else MAX_MEMBER_BYTES)
                    if is_batch:
                        if file_md5 != official_md5:
                            raise DataError(
                                f"{path} has md5 {file_md5}, expected {official_md5}: the archive is corrupt "
                                "or not the official cifar-10-python.tar.gz. Download it again.")
                        batches[parts[-1]] = _parse_batch(archive.extractfile(member).read(), parts[-1])
                    elif key:
                        images.append((parts, archive.extractfile(member).read()))
                _check_tar_end(archive, location)
        except _ARCHIVE_ERRORS as error:
            # gzip's "CRC check failed", a truncated stream and damaged compressed data all land here.
            raise DataError(f"{path} is a truncated or corrupt archive ({_one_line(error)}). "
                            "Download or copy it again.") from None
    return batches, images


def _scan_zip(path: Path) -> list:
    """The raw image members of a zip archive, each size-checked before it is read and CRC-checked after."""
    location = str(path)
    budget, images = _Budget(location), []
    with open_source_file(path) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise DataError(f"{path} is not a readable zip archive ({_one_line(error)}).") from None
        with archive:
            for info in archive.infolist():
                if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                    budget.admit(info.filename, 0)
                    continue  # links are never followed, as in tar archives
                parts = PurePosixPath(info.filename).parts
                key = _split_member(parts)
                budget.admit(info.filename, info.file_size, MAX_IMAGE_BYTES if key else MAX_MEMBER_BYTES)
                if not key:
                    continue
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise DataError(f"{location}: member {info.filename} uses compression method "
                                    f"{info.compress_type}; re-pack the zip with the standard deflate method.")
                try:
                    with archive.open(info) as member:
                        # Never more than the header's size: a lying header cannot expand into memory,
                        # and reading exactly that many bytes makes zipfile check the member's CRC.
                        raw = member.read(info.file_size)
                        if len(raw) != info.file_size or member.read(1):
                            raise zipfile.BadZipFile("size differs from its header")
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                        NotImplementedError, ValueError) as error:
                    raise DataError(f"{location}: member {info.filename} is corrupt ({_one_line(error)}). "
                                    "Download or copy the archive again.") from None
                images.append((parts, raw))
    return images


def tree_index(files, location: str, per_class: tuple) -> dict:
    """Image members grouped by split and class, each class in file-name order; folders and counts checked.

    ``files`` yields (path parts, payload); the payload is the encoded bytes, or the file's path when it is
    read only if decoded. The index of an image in its split is its class's offset plus its rank.
    """
    found = {"train": {c: [] for c in CLASS_NAMES}, "test": {c: [] for c in CLASS_NAMES}}
    for parts, payload in files:
        key = _split_member(parts)
        if key is None:
            continue
        split, label, filename = key
        if label not in found[split]:
            raise DataError(f"{location}: unknown class folder {split}/{label}; "
                            f"expected the ten folders {', '.join(CLASS_NAMES)}.")
        found[split][label].append((filename, payload))
    for split, expected in zip(("train", "test"), per_class):  # counts first, before any decoding
        for name in CLASS_NAMES:
            if len(found[split][name]) != expected:
                raise DataError(f"{location}: {split}/{name} holds {len(found[split][name])} images, "
                                f"expected {expected}. Is this a complete CIFAR-10 image tree?")
            found[split][name].sort(key=lambda entry: entry[0])
    return found


def decode_entry(location: str, split: str, name: str, entry: tuple) -> tuple[np.ndarray, str, str]:
    filename, payload = entry
    raw = _read_file(payload, MAX_IMAGE_BYTES) if isinstance(payload, Path) else payload
    return _decode_image(raw, f"{location}: {split}/{name}/{filename}")


def _read_image_tree(files, location: str, per_class: tuple) -> tuple[tuple, str, list]:
    """Decode an image tree: the four arrays, the image formats found, and notes on what was converted."""
    found = tree_index(files, location, per_class)
    formats, converted, arrays = set(), [], []
    with warnings.catch_warnings():
        from PIL import Image  # lazy: imports Pillow; list and report stay light

        # Sizes are checked from each header; Pillow's bomb warning would only repeat that.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for split, expected in zip(("train", "test"), per_class):
            images = np.empty((10 * expected, 32, 32, 3), dtype=np.uint8)
            for index, name in enumerate(CLASS_NAMES):
                for offset, entry in enumerate(found[split][name]):
                    image, fmt, mode = decode_entry(location, split, name, entry)
                    images[index * expected + offset] = image
                    formats.add(fmt)
                    if mode not in ("RGB", "RGBA"):
                        converted.append(f"{split}/{name}/{entry[0]} ({mode})")
                found[split][name] = None  # free the encoded bytes as we go
            arrays += [images, layout_labels(expected)]
    notes = []
    if converted:  # CIFAR-10 is colour: a grey or palette image is converted, and that is said
        notes.append(f"{len(converted):,} grayscale or palette images converted to RGB (first: {converted[0]})")
        _log.warning("%s: %s.", location, notes[-1])
    return tuple(arrays), "+".join(sorted(formats)), notes


def layout_labels(per_class: int) -> np.ndarray:
    """The labels an image tree's layout gives a split: class 0's images first, then class 1's, ..."""
    return np.repeat(np.arange(10, dtype=np.int64), per_class)


def read_local(path: Path, per_class: tuple, official_md5: str, file_md5: str | None) -> tuple[tuple, str, list]:
    """Decode a local source into arrays; return them, the image format name and notes on conversions."""
    name = path.name.lower()
    if path.is_dir():
        batches = batches_folder(path)
        if batches:
            arrays, image_format = _read_batches_dir(batches)
            return arrays, image_format, []
        return _read_image_tree(tree_files(path), str(path), per_class)
    if name.endswith(".zip"):
        return _read_image_tree(_scan_zip(path), str(path), per_class)
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        batches, images = _scan_tar(path, file_md5, official_md5)
        if batches:
            return _assemble_batches(batches, str(path)), "pickle", []
        return _read_image_tree(images, str(path), per_class)
    raise DataError(f"{path} is neither a folder nor a .tar, .tar.gz or .zip archive. " + source_hint())
