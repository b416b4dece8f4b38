"""The cache of decoded data: a second load is fast and never writes into the source; a corrupt, replaced,
forged or resealed cache, or one whose folder was edited, is detected and rebuilt; only the most recent sources
are kept."""

from __future__ import annotations

import io
import json
import os
import time

import numpy as np
import pytest
from conftest import image_files, synthetic_arrays, write_tar, write_tree
from data_support import load

pytestmark = pytest.mark.usefixtures("isolated_cache")  # each test decodes into its own cache (conftest.py)


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
