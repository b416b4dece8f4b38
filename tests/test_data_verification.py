"""Every source is verified before it is trusted: damaged gzip streams and tar headers, oversized archive
members, corrupt zip members, PNGs that are huge, 16-bit or transparent, FIFOs and pickle bombs are refused
with a one-line error, within bounded memory and time."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import struct
import tarfile
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from conftest import (
    deflated_zeros,
    image_files,
    official_batches,
    write_raw_zip,
    write_tar,
    write_tar_gz_with_huge_member,
    write_tree,
    zip_members,
)
from data_support import assert_matches_synthetic, load, refused

pytestmark = pytest.mark.usefixtures("isolated_cache")  # each test decodes into its own cache (conftest.py)


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
