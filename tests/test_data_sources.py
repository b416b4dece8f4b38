"""Loading CIFAR-10 from every supported source (official batches, image folders and archives, the Keras
download, $CIFAR_LESSONS_DATA, the offline copy), what the loaded data says about its source, and the copies
made from it (the validation split, JPEG re-encodings)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from conftest import PER_CLASS, image_files, official_batches, synthetic_arrays, write_tar, write_tree
from data_support import assert_matches_synthetic, load, refused

from cifar_lessons.data import CLASS_NAMES, DataError, load_cifar10, train_validation_split

pytestmark = pytest.mark.usefixtures("isolated_cache")  # each test decodes into its own cache (conftest.py)


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


def test_environment_variable_is_used(tmp_path, monkeypatch, official_tar):
    path, md5 = official_tar
    monkeypatch.setenv("CIFAR_LESSONS_DATA", str(path))
    # Records name the data by its file name, never by a machine's absolute path.
    assert load_cifar10(per_class=PER_CLASS, official_md5=md5).source["location"] == path.name


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
