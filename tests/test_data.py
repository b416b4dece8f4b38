"""Loading CIFAR-10 from every source, and a clear error for every kind of bad input."""

from __future__ import annotations

import pickle
import tarfile
import time
import zipfile

import numpy as np
import pytest
from conftest import (
    PER_CLASS,
    image_files,
    official_batches,
    synthetic_arrays,
    write_tar,
    write_tree,
)

from cifar_lessons.data import CLASS_NAMES, DataError, load_cifar10, train_validation_split


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

    monkeypatch.setattr("cifar_lessons.data._parse_batch", fail)
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

    for cached in cache_dir().glob("*.npz"):
        cached.write_bytes(b"garbage")
    assert load(path).fingerprint == first.fingerprint


def test_environment_variable_is_used(tmp_path, monkeypatch, official_tar):
    path, md5 = official_tar
    monkeypatch.setenv("CIFAR_LESSONS_DATA", str(path))
    assert load_cifar10(per_class=PER_CLASS, official_md5=md5).source["location"] == str(path.resolve())


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
    data = load_cifar10()
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

def test_shared_offline_copy(shared_copy):
    data = load_cifar10(shared_copy)
    assert data.x_train.shape == (50000, 32, 32, 3)
    assert data.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(data.y_train).tolist() == [5000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.source["name"] == "CIFAR-10 (JPEG re-encoding)"
    assert data.source["source_sha256"] == (shared_copy.parent / "SHA256SUMS").read_text().split()[0]
