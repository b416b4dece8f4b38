"""Loading CIFAR-10 from every source, and a clear error for every kind of bad input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import signal
import stat
import struct
import tarfile
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from conftest import (
    PER_CLASS,
    batch_bytes,
    deflated_zeros,
    image_files,
    official_batches,
    synthetic_arrays,
    write_raw_zip,
    write_tar,
    write_tar_gz_with_huge_member,
    write_tree,
    zip_members,
)

from cifar_lessons.data import CLASS_NAMES, OFFICIAL_MD5, DataError, load_cifar10, train_validation_split


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test decodes into its own cache, so no test sees another's."""
    monkeypatch.setenv("CIFAR_LESSONS_CACHE", str(tmp_path_factory.mktemp("cache")))


def load(path, **kwargs):
    return load_cifar10(path, per_class=PER_CLASS, **kwargs)


def assert_matches_synthetic(data, exact=True):
    x_train, y_train, x_test, y_test = synthetic_arrays()
    assert data.x_train.shape == x_train.shape and data.x_train.dtype == np.uint8
    assert data.x_test.shape == x_test.shape
    assert data.class_names == CLASS_NAMES
    assert np.bincount(data.y_train).tolist() == [PER_CLASS[0]] * 10
    assert np.bincount(data.y_test).tolist() == [PER_CLASS[1]] * 10
    if exact:
        # Same images per class, in any order.
        for label in range(10):
            want = np.sort(x_train[y_train == label].reshape(PER_CLASS[0], -1), axis=0)
            got = np.sort(data.x_train[data.y_train == label].reshape(PER_CLASS[0], -1), axis=0)
            np.testing.assert_array_equal(got, want)
    assert len(data.fingerprint) == 16


def test_official_tar_gz_with_matching_md5(official_tar):
    path, md5 = official_tar
    data = load(path, official_md5=md5)
    assert_matches_synthetic(data)
    assert data.source["name"] == "CIFAR-10 (official)"


def test_official_tar_gz_md5_mismatch_is_refused_before_unpickling(official_tar, monkeypatch):
    path, _ = official_tar

    def fail(*args, **kwargs):
        raise AssertionError("unpickled a file whose checksum did not match")

    monkeypatch.setattr("cifar_lessons.sources._parse_batch", fail)
    with pytest.raises(DataError, match="md5"):
        load(path)  # the official md5, which the synthetic archive cannot have


def test_extracted_batches_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in official_batches().items():
        (folder / name).write_bytes(payload)
    assert_matches_synthetic(load(folder))
    assert_matches_synthetic(load(tmp_path))  # its parent works too


def test_png_image_tree_folder(tmp_path):
    data = load(write_tree(tmp_path, image_files("PNG")) / "cifar")
    assert_matches_synthetic(data)
    assert data.source["name"] == "CIFAR-10 (PNG re-encoding)"


def test_jpeg_zip_archive(tmp_path):
    path = tmp_path / "cifar.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in image_files("JPEG").items():
            archive.writestr(name, payload)
    data = load(path)
    assert_matches_synthetic(data, exact=False)  # JPEG is lossy
    assert data.source["name"] == "CIFAR-10 (JPEG re-encoding)"


@pytest.mark.parametrize("mode,suffix", [("w:gz", ".tar.gz"), ("w", ".tar")])
def test_png_tar_archives(tmp_path, mode, suffix):
    path = write_tar(tmp_path / f"cifar{suffix}", image_files("PNG"), mode)
    assert_matches_synthetic(load(path))


def test_cache_makes_second_load_fast_and_never_writes_into_the_source(tmp_path):
    (tmp_path / "src").mkdir()
    path = write_tar(tmp_path / "src" / "cifar.tar.gz", image_files("PNG", prefix="x"), "w:gz")
    before = sorted(p.name for p in (tmp_path / "src").iterdir())
    first = load(path)
    started = time.perf_counter()
    second = load(path)
    assert time.perf_counter() - started < 2
    assert first.fingerprint == second.fingerprint
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == before


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    first = load(path)
    from cifar_lessons.data import cache_dir

    for cached in cache_dir().glob("cifar10-*"):
        cached.write_bytes(b"garbage")
    assert load(path).fingerprint == first.fingerprint


def test_environment_variable_is_used(tmp_path, monkeypatch, official_tar):
    path, md5 = official_tar
    monkeypatch.setenv("CIFAR_LESSONS_DATA", str(path))
    # Records name the data by its file name, never by a machine's absolute path.
    assert load_cifar10(per_class=PER_CLASS, official_md5=md5).source["location"] == path.name


# --- bad input ------------------------------------------------------------------------

def test_missing_path_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="does not exist.*CIFAR_LESSONS_DATA"):
        load(tmp_path / "nowhere.tar.gz")


def test_wrong_layout(tmp_path):
    write_tree(tmp_path, {"random/notes.txt": b"hello"})
    with pytest.raises(DataError, match="holds 0 images"):
        load(tmp_path)


def test_unknown_class_folder(tmp_path):
    files = image_files("PNG")
    files["cifar/train/dragon/0000.png"] = next(iter(files.values()))
    with pytest.raises(DataError, match="unknown class folder train/dragon"):
        load(write_tree(tmp_path, files) / "cifar")


def test_wrong_image_size(tmp_path):
    with pytest.raises(DataError, match="32x32"):
        load(write_tree(tmp_path, image_files("PNG", size=(28, 28))) / "cifar")


def test_wrong_per_class_count(tmp_path):
    files = image_files("PNG")
    del files["cifar/test/cat/0006.png"]
    with pytest.raises(DataError, match="test/cat holds 1 images, expected 2"):
        load(write_tree(tmp_path, files) / "cifar")


def test_full_counts_are_required_by_default(tmp_path):
    with pytest.raises(DataError, match="expected 5000"):
        load_cifar10(write_tree(tmp_path, image_files("PNG")) / "cifar")


def test_unreadable_image(tmp_path):
    files = image_files("PNG")
    files["cifar/train/cat/0012.png"] = b"not an image"
    with pytest.raises(DataError, match="not a readable image"):
        load(write_tree(tmp_path, files) / "cifar")


def test_truncated_archive(tmp_path):
    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt|not a readable"):
        load(path)


def test_corrupt_zip(tmp_path):
    path = tmp_path / "cifar.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(DataError, match="zip"):
        load(path)


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "cifar.rar"
    path.write_bytes(b"whatever")
    with pytest.raises(DataError, match="neither a folder nor"):
        load(path)


def test_path_traversal_member_is_refused(tmp_path):
    files = image_files("PNG")
    files["../evil/train/cat/0000.png"] = next(iter(files.values()))
    path = write_tar(tmp_path / "cifar.tar.gz", files)
    with pytest.raises(DataError, match="unsafe path"):
        load(path)
    assert not (tmp_path.parent / "evil").exists()


def test_links_in_archives_are_never_followed(tmp_path):
    path = tmp_path / "cifar.tar"
    write_tar(path, image_files("PNG"), "w")
    with tarfile.open(path, "a") as archive:
        link = tarfile.TarInfo("cifar/train/cat/9999.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    assert_matches_synthetic(load(path))  # the link is ignored, not read


def test_links_in_zip_archives_are_never_followed(tmp_path):
    path = tmp_path / "cifar.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in image_files("PNG").items():
            archive.writestr(name, payload)
        link = zipfile.ZipInfo("cifar/train/cat/9999.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    assert_matches_synthetic(load(path))  # the link is ignored, not read as an image


def test_non_cifar_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in official_batches():
        (folder / name).write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(DataError, match="not a CIFAR-10 batch"):
        load(folder)


def test_malicious_pickle_is_never_executed(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (exec, ("open('pwned', 'w').write('x')",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in official_batches():
        (folder / name).write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(DataError, match="refusing to unpickle"):
        load(folder)
    assert not (tmp_path / "pwned").exists()


def test_keras_download_is_the_default(monkeypatch):
    import keras

    x_train, y_train, x_test, y_test = synthetic_arrays()
    monkeypatch.delenv("CIFAR_LESSONS_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data",
                        lambda: ((x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))))
    data = load_cifar10(per_class=PER_CLASS)
    assert data.source["name"] == "CIFAR-10 (official)" and data.source["location"] == "keras.datasets.cifar10"
    np.testing.assert_array_equal(data.y_train, y_train)
    assert data.y_train.ndim == 1


def test_keras_download_failure_is_actionable(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -3]")

    monkeypatch.delenv("CIFAR_LESSONS_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match="Could not download.*CIFAR_LESSONS_DATA"):
        load_cifar10()


# --- every source is verified before it is trusted -------------------------------------

@contextlib.contextmanager
def refused(match):
    """Expect a DataError whose one-line message matches ``match``."""
    with pytest.raises(DataError, match=match) as caught:
        yield caught
    assert "\n" not in str(caught.value), "error messages must fit on one line"


@contextlib.contextmanager
def memory_at_most(mib):
    """Fail when Python allocates more than ``mib`` MiB at once inside the block."""
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < mib << 20, f"peak allocation {peak / (1 << 20):.0f} MiB"


@contextlib.contextmanager
def fails_after(seconds):
    """Turn a hang into a test failure."""
    def hung(signum, frame):
        raise AssertionError(f"still running after {seconds} s: the loader hangs")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def flip_bit(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("field", ["crc", "length"])
def test_gzip_trailer_checksum_is_verified(tmp_path, field):
    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    flip_bit(path, path.stat().st_size - (8 if field == "crc" else 4))
    # Every member still reads: only reading the stream to its end (as gzip -t does) can notice.
    with tarfile.open(path) as archive:
        assert len(archive.getnames()) == 60
    with refused("corrupt archive.*(CRC|length)"):
        load(path)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_one_bit_flip_inside_a_tar_gz_is_refused(tmp_path, fraction):
    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    flip_bit(path, int(path.stat().st_size * fraction))
    with refused("truncated or corrupt|end-of-archive"):
        load(path)


def test_damaged_header_inside_a_plain_tar_is_refused(tmp_path):
    path = write_tar(tmp_path / "cifar.tar", image_files("PNG"), "w")
    with tarfile.open(path) as archive:
        middle = archive.getmembers()[30].offset
    flip_bit(path, middle)  # the header's checksum no longer matches
    with tarfile.open(path) as archive:
        assert len(archive.getnames()) == 30  # tarfile stops there without a word
    with refused("data after its end-of-archive block"):
        load(path)


def test_plain_tar_cut_at_a_member_boundary_is_refused(tmp_path):
    path = write_tar(tmp_path / "cifar.tar", image_files("PNG"), "w")
    with tarfile.open(path) as archive:
        cut = archive.getmembers()[-1].offset
    path.write_bytes(path.read_bytes()[:cut])
    with refused("truncated"):
        load(path)


@pytest.mark.parametrize("name", ["cifar/train/cat/9999.png", "cifar/notes.bin"])
def test_huge_tar_gz_member_is_refused_from_its_header(tmp_path, name):
    path = write_tar_gz_with_huge_member(tmp_path / "cifar.tar.gz", image_files("PNG"), name)
    assert path.stat().st_size < 2 << 20  # 1 GiB of zeros really follows the header
    with memory_at_most(64), refused(f"member {name} is 1.0 GiB"):
        load(path)


def test_zip_member_declaring_1_gib_is_refused_before_reading(tmp_path):
    files = image_files("PNG")
    members = zip_members(files)
    members.append(("cifar/train/cat/9999.png", deflated_zeros(), 8, 0, 1 << 30))
    path = write_raw_zip(tmp_path / "cifar.zip", members)
    with memory_at_most(64), refused("member cifar/train/cat/9999.png is 1.0 GiB"):
        load(path)


def test_zip_member_lying_about_its_size_stays_bounded(tmp_path):
    files = image_files("PNG")
    members = zip_members(files)
    name, payload, *_ = members[5]
    members[5] = (name, deflated_zeros(), 8, zlib.crc32(payload), len(payload))  # expands to 1 GiB
    path = write_raw_zip(tmp_path / "cifar.zip", members)
    with memory_at_most(64), refused(f"member {name} is corrupt"):
        load(path)


@pytest.mark.parametrize("where", ["start", "middle"])
def test_corrupt_zip_member_is_a_data_error(tmp_path, where):
    path = tmp_path / "cifar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in image_files("PNG").items():
            archive.writestr(name, payload)
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[7]
    start = info.header_offset + 30 + len(info.filename.encode())
    data = bytearray(path.read_bytes())
    if where == "start":
        data[start] = 0xFF  # a deflate block type that does not exist: zlib.error
    else:
        data[start + info.compress_size // 2] ^= 0x10  # caught by the member's CRC
    path.write_bytes(bytes(data))
    with refused(f"member {info.filename} is corrupt"):
        load(path)


def png_header_only(width, height):
    """A PNG whose header declares width x height but holds almost no pixel data."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">2I5B", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def test_huge_png_is_rejected_from_its_header_before_decoding(tmp_path):
    files = image_files("PNG")
    files["cifar/train/cat/0012.png"] = png_header_only(12000, 12000)
    # The pixel data is missing, so an image that were decoded first would fail as truncated instead.
    with refused("train/cat/0012.png is 12000x12000, CIFAR-10 images are 32x32"):
        load(write_tree(tmp_path, files) / "cifar")


def test_decompression_bomb_png_is_a_data_error(tmp_path):
    files = image_files("PNG")
    files["cifar/train/cat/0012.png"] = png_header_only(20000, 20000)
    with refused("0012.png is far larger than a 32x32 image"):
        load(write_tree(tmp_path, files) / "cifar")


def test_sixteen_bit_png_is_refused(tmp_path):
    from PIL import Image

    files = image_files("PNG")
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 65535, 32 * 32).astype(np.uint16).reshape(32, 32)).save(buffer, format="PNG")
    files["cifar/train/cat/0012.png"] = buffer.getvalue()
    with refused("0012.png is a 16-bit PNG"):
        load(write_tree(tmp_path, files) / "cifar")


def test_transparent_png_is_refused_and_opaque_rgba_is_exact(tmp_path):
    from PIL import Image

    files = {}
    for name, payload in image_files("PNG").items():
        buffer = io.BytesIO()
        Image.open(io.BytesIO(payload)).convert("RGBA").save(buffer, format="PNG")
        files[name] = buffer.getvalue()
    assert_matches_synthetic(load(write_tree(tmp_path / "opaque", files) / "cifar"))
    see_through = Image.open(io.BytesIO(files["cifar/train/cat/0012.png"]))
    see_through.putpixel((0, 0), (1, 2, 3, 0))
    buffer = io.BytesIO()
    see_through.save(buffer, format="PNG")
    files["cifar/train/cat/0012.png"] = buffer.getvalue()
    with refused("0012.png has transparent pixels"):
        load(write_tree(tmp_path / "clear", files) / "cifar")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_named_like_an_archive_is_refused_without_hanging(tmp_path):
    path = tmp_path / "cifar.tar.gz"
    os.mkfifo(path)
    with fails_after(20), refused("not a regular file"):
        load(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_inside_an_image_tree_is_refused_without_hanging(tmp_path):
    files = image_files("PNG")
    del files["cifar/train/cat/0012.png"]
    root = write_tree(tmp_path, files) / "cifar"
    os.mkfifo(root / "train" / "cat" / "0012.png")
    with fails_after(20), refused("0012.png is not a regular file"):
        load(root)


def write_batches(folder, train_images, train_labels, test_images, test_labels, batches=None):
    folder.mkdir(parents=True)
    order = np.random.default_rng(1).permutation(len(train_images))
    files = batches or {f"data_batch_{i + 1}": batch_bytes(train_images[part], train_labels[part])
                        for i, part in enumerate(np.array_split(order, 5))}
    files.setdefault("test_batch", batch_bytes(test_images, test_labels))
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    return folder


@pytest.mark.parametrize("kind", ["folder", "tar.gz"])
def test_official_batches_with_too_few_images_are_refused(tmp_path, kind):
    rng = np.random.default_rng(0)
    train_labels, test_labels = np.repeat(np.arange(10), 5), np.arange(10)  # 50 train / 10 test
    folder = write_batches(tmp_path / "cifar-10-batches-py",
                           rng.integers(0, 256, (50, 32, 32, 3), dtype=np.uint8), train_labels,
                           rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), test_labels)
    path = folder
    if kind == "tar.gz":
        path = write_tar(tmp_path / "cifar-10-python.tar.gz",
                         {f"cifar-10-batches-py/{f.name}": f.read_bytes() for f in folder.iterdir()})
    md5 = hashlib.md5(path.read_bytes()).hexdigest() if kind == "tar.gz" else OFFICIAL_MD5
    with refused("train/airplane holds 5 images, expected 5000"):
        load_cifar10(path, official_md5=md5)


def test_duplicated_official_batch_is_refused(tmp_path):
    batches = official_batches()
    batches["data_batch_4"] = batches["data_batch_2"]
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in batches.items():
        (folder / name).write_bytes(payload)
    with refused("data_batch_4 holds the same images as data_batch_2"):
        load(folder)


@pytest.mark.parametrize("dtype,high,accepted", [(np.int16, 255, True), (np.int16, 400, False),
                                                  (np.float32, 255, False)])
def test_official_batch_pixels_must_be_8_bit(tmp_path, dtype, high, accepted):
    x_train, y_train, x_test, y_test = synthetic_arrays()
    wide = x_train.astype(dtype)
    wide[0, 0, 0, 0] = high
    folder = write_batches(tmp_path / "cifar-10-batches-py", wide, y_train, x_test, y_test)
    if accepted:
        assert load(folder).x_train.max() == 255
    else:
        with refused("pixel"):
            load(folder)


def cache_files():
    from cifar_lessons.data import cache_dir

    return sorted(cache_dir().glob("cifar10-*"))


def test_cache_with_replaced_content_is_detected_and_rebuilt(tmp_path, caplog):
    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    truth = load(path, use_cache=False)
    load(path)
    (cached,) = cache_files()
    data = bytearray(cached.read_bytes())
    quarter = len(data) // 4
    data[quarter:3 * quarter] = bytes(2 * quarter)  # same size, zeros where the pixels were
    cached.write_bytes(bytes(data))
    again = load(path)
    assert again.fingerprint == truth.fingerprint
    np.testing.assert_array_equal(again.x_train, truth.x_train)
    assert "Ignoring the cache" in caplog.text
    caplog.clear()
    assert load(path).fingerprint == truth.fingerprint and not caplog.text  # rebuilt, trusted again


def test_cache_of_other_data_put_in_its_place_is_not_served(tmp_path, caplog):
    first = write_tar(tmp_path / "first.tar.gz", image_files("PNG", seed=1), "w:gz")
    second = write_tar(tmp_path / "second.tar.gz", image_files("PNG", seed=2), "w:gz")
    truth = load(first)
    (first_cache,) = cache_files()
    load(second)
    (second_cache,) = [f for f in cache_files() if f != first_cache]
    first_cache.write_bytes(second_cache.read_bytes())
    assert load(first).fingerprint == truth.fingerprint
    assert "Ignoring the cache" in caplog.text


@pytest.mark.parametrize("forgery", ["ten images", "labels 42"])
def test_forged_cache_with_a_matching_fingerprint_is_refused(tmp_path, caplog, forgery):
    from cifar_lessons.data import _save_cache, fingerprint_arrays

    path = write_tar(tmp_path / "cifar.tar.gz", image_files("PNG"), "w:gz")
    truth = load(path)
    (cached,) = cache_files()
    x_train, y_train, x_test, y_test = (np.zeros_like(truth.x_train), truth.y_train.copy(),
                                        truth.x_test, truth.y_test)
    if forgery == "ten images":
        x_train, y_train = x_train[:10], y_train[:10]
    else:
        y_train[:] = 42
    arrays = (x_train, y_train, x_test, y_test)
    # A well-formed cache for this very source, whose stored fingerprint matches its own arrays.
    original_key = json.loads(str(np.load(cached)))["key"]
    _save_cache(cached, arrays, "PNG", fingerprint_arrays(*arrays), original_key)
    again = load(path)
    assert again.fingerprint == truth.fingerprint
    np.testing.assert_array_equal(again.y_train, truth.y_train)
    assert "Ignoring the cache" in caplog.text


def test_folder_edited_with_size_and_time_kept_is_decoded_again(tmp_path):
    from PIL import Image

    def stored_png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG", compress_level=0)
        return buffer.getvalue()

    x_train = synthetic_arrays()[0]
    files = image_files("PNG")
    files["cifar/train/cat/0012.png"] = stored_png(x_train[12])
    root = write_tree(tmp_path, files) / "cifar"
    target = root / "train" / "cat" / "0012.png"
    before = load(root)
    before_stat = target.stat()
    replacement = stored_png(255 - x_train[12])
    assert len(replacement) == before_stat.st_size
    target.write_bytes(replacement)
    os.utime(target, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))
    assert target.stat().st_size == before_stat.st_size and target.stat().st_mtime_ns == before_stat.st_mtime_ns
    after = load(root)
    assert after.fingerprint != before.fingerprint
    assert any(np.array_equal(image, 255 - x_train[12]) for image in after.x_train)


def test_keras_download_with_wrong_counts_is_refused(monkeypatch):
    import keras

    x_train, y_train, x_test, y_test = synthetic_arrays()
    monkeypatch.delenv("CIFAR_LESSONS_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data",
                        lambda: ((x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))))
    with refused("train/airplane holds 4 images, expected 5000"):
        load_cifar10()


# --- validation split -------------------------------------------------------------------

def test_validation_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(10), 100)
    images = np.arange(len(labels))
    (x_train, y_train), (x_val, y_val) = train_validation_split(images, labels, validation_size=200, seed=3)
    assert np.bincount(y_val).tolist() == [20] * 10
    assert np.bincount(y_train).tolist() == [80] * 10
    assert not set(x_train) & set(x_val)
    (_, _), (again, _) = train_validation_split(images, labels, validation_size=200, seed=3)
    np.testing.assert_array_equal(x_val, again)
    (_, _), (other, _) = train_validation_split(images, labels, validation_size=200, seed=4)
    assert not np.array_equal(np.sort(x_val), np.sort(other))


# --- the real offline copy -----------------------------------------------------------------

@pytest.mark.slow
def test_shared_offline_copy(shared_copy):
    data = load_cifar10(shared_copy)
    assert data.x_train.shape == (50000, 32, 32, 3)
    assert data.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(data.y_train).tolist() == [5000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.source["name"] == "CIFAR-10 (JPEG re-encoding)"
    assert data.source["source_sha256"] == (shared_copy.parent / "SHA256SUMS").read_text().split()[0]


def test_jpeg_reencoding_keeps_labels_and_names_its_images():
    """The JPEG ladder's copies: same labels and shapes, images that changed, a source that says how."""
    from cifar_lessons.book import recompress
    from cifar_lessons.data import Dataset, fingerprint_arrays

    x_train, y_train, x_test, y_test = synthetic_arrays()
    # Smooth images (JPEG's use case), so that quality matters the way it does for photographs.
    ramp = np.linspace(0, 255, 32, dtype=np.float64)
    x_train = np.clip(x_train * 0.1 + ramp[None, :, None, None] * 0.9, 0, 255).astype(np.uint8)
    source = {"name": "synthetic", "fingerprint": fingerprint_arrays(x_train, y_train, x_test, y_test)}
    dataset = Dataset(x_train, y_train, x_test, y_test, CLASS_NAMES, source)
    fine, coarse = recompress.reencoded(dataset, 90), recompress.reencoded(dataset, 20)
    for copy in (fine, coarse):
        assert copy.x_train.shape == x_train.shape and copy.x_train.dtype == np.uint8
        assert copy.y_train is y_train and copy.y_test is y_test
        assert copy.source["reencoded_from"] == dataset.fingerprint != copy.fingerprint
        assert copy.fingerprint == fingerprint_arrays(copy.x_train, y_train, copy.x_test, y_test)
    assert fine.source["jpeg_quality"] == 90 and "quality 90" in fine.source["name"]
    assert fine.source["psnr_vs_source_db"] > coarse.source["psnr_vs_source_db"]
    assert recompress.psnr(x_train, x_train) == float("inf")
    with pytest.raises(ValueError, match="between 1 and 95"):
        recompress.jpeg_roundtrip(x_train, 100)


# --- what still got through: bombs, unofficial batches, conversions, duplicates, the cache, odd names ---------

@pytest.mark.parametrize("field", ["data", "labels"])
def test_a_pickle_of_shared_nested_lists_is_refused_before_it_expands(tmp_path, field):
    # A few kilobytes of pickle: one inner list shared a million times, which np.asarray would expand to GBs.
    bomb = [[[0] * 1000] * 1000] * 100
    batches = official_batches()
    batch = pickle.loads(batches["data_batch_1"])
    batch[field.encode()] = bomb
    batches["data_batch_1"] = pickle.dumps(batch, protocol=2)
    assert len(batches["data_batch_1"]) < 50_000
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, payload in batches.items():
        (folder / name).write_bytes(payload)
    with memory_at_most(200), refused("data_batch_1 holds its (pixels|labels) as list"):  # expanded: 800 MB
        load(folder)


def test_batches_that_are_not_the_official_files_are_not_named_official(tmp_path, caplog, monkeypatch):
    from cifar_lessons import sources

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = official_batches()
    for name, payload in batches.items():
        (folder / name).write_bytes(payload)
    # With the md5 values of these very files as the official ones, they are official...
    monkeypatch.setattr(sources, "OFFICIAL_BATCH_MD5",
                        {name: hashlib.md5(payload).hexdigest() for name, payload in batches.items()})
    assert load(folder).source["name"] == "CIFAR-10 (official)"
    # ...and with the test labels permuted they are not, though they still load.
    test = pickle.loads(batches["test_batch"])
    test[b"labels"] = test[b"labels"][::-1]
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    data = load(folder)
    assert data.source["name"] == "CIFAR-10 batches (md5 differs from the official files)"
    assert "test_batch differ from the official files" in caplog.text
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


def test_real_official_md5_values_are_the_published_ones():
    from cifar_lessons.sources import OFFICIAL_BATCH_MD5

    # As published with the archive (torchvision's CIFAR10 checks the same six values).
    assert OFFICIAL_BATCH_MD5["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert OFFICIAL_BATCH_MD5["test_batch"] == "40351d587109b95175f43aff81a1287e"
    assert len(OFFICIAL_BATCH_MD5) == 6


@pytest.mark.parametrize("mode", ["L", "P", "1"])
def test_grayscale_or_palette_images_are_converted_and_said(tmp_path, caplog, mode):
    from PIL import Image

    files = image_files("PNG")
    name = "cifar/train/cat/0012.png"
    image = Image.open(io.BytesIO(files[name])).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    files[name] = buffer.getvalue()
    data = load(write_tree(tmp_path, files) / "cifar")
    (note,) = data.source["notes"]
    assert note.startswith("1 grayscale or palette images converted to RGB") and f"cat/0012.png ({mode})" in note
    assert "converted to RGB" in caplog.text
    caplog.clear()
    assert load(tmp_path / "cifar").source["notes"] == [note]  # said again when the cache serves it
    assert "converted to RGB" in caplog.text


def test_duplicate_images_are_found_and_reported(tmp_path, caplog):
    files = image_files("PNG")
    files["cifar/train/dog/0021.png"] = files["cifar/train/dog/0020.png"]  # a copy within train
    files["cifar/test/ship/0016.png"] = files["cifar/train/ship/0032.png"]  # a train image in the test set
    data = load(write_tree(tmp_path, files) / "cifar")
    assert data.source["duplicates"] == {"train": 1, "test": 0, "test_in_train": 1}
    assert "exact duplicate images" in caplog.text
    assert "duplicates" not in load(write_tree(tmp_path / "clean", image_files("PNG")) / "cifar").source


@pytest.mark.parametrize("forgery", ["labels permuted", "pixels changed"])
def test_a_resealed_cache_that_disagrees_with_its_folder_is_not_used(tmp_path, caplog, forgery):
    from cifar_lessons.data import _save_cache, fingerprint_arrays

    path = write_tree(tmp_path, image_files("PNG")) / "cifar"
    truth = load(path)
    (cached,) = cache_files()
    x_train, y_train = truth.x_train.copy(), truth.y_train.copy()
    if forgery == "labels permuted":
        y_train = y_train[::-1].copy()  # every label still 0-9, every class still complete
    else:
        x_train[5] = 255 - x_train[5]
    arrays = (x_train, y_train, truth.x_test, truth.y_test)
    meta = json.loads(str(np.load(cached)))
    _save_cache(cached, arrays, meta["image_format"], fingerprint_arrays(*arrays), meta["key"])  # resealed
    again = load(path)
    assert again.fingerprint == truth.fingerprint
    assert "Ignoring the cache" in caplog.text and "source" in caplog.text


def test_the_cache_keeps_only_the_most_recent_sources(tmp_path):
    from cifar_lessons.data import MAX_CACHE_FILES, clear_cache

    for seed in range(MAX_CACHE_FILES + 2):
        load(write_tar(tmp_path / f"cifar{seed}.tar.gz", image_files("PNG", seed=seed), "w:gz"))
    assert len(cache_files()) == MAX_CACHE_FILES
    assert len(clear_cache()) == MAX_CACHE_FILES and cache_files() == []


def test_a_folder_with_non_utf8_names_loads_like_its_archive(tmp_path):
    files = image_files("PNG")
    archive = load(write_tar(tmp_path / "cifar.tar.gz", files, "w:gz"))
    root = write_tree(tmp_path / "tree", files) / "cifar"
    odd = os.fsencode(root / "train" / "cat") + b"/0012-\xff\xfe.png"  # not UTF-8: Latin-1 bytes
    os.rename(os.fsencode(root / "train" / "cat" / "0012.png"), odd)
    data = load(root)
    assert data.fingerprint == archive.fingerprint
    broken = odd.replace(b".png", b"-broken.png")
    os.rename(odd, broken)
    with open(broken, "wb") as handle:
        handle.write(b"not an image")
    with refused(r"train/cat/0012-\\udcff\\udcfe-broken.png|train/cat/0012-.*-broken.png"):
        load(root)
