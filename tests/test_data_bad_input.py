"""Bad input is one clear DataError: a missing path; a wrong layout, class, image size or count; an unreadable
image; a truncated, corrupt or unsupported archive; unsafe paths and links; pickles that are not CIFAR-10 or are
hostile; official batches with too few, repeated or non-8-bit images; a Keras download with the wrong counts."""

from __future__ import annotations

import hashlib
import pickle
import stat
import tarfile
import zipfile

import numpy as np
import pytest
from conftest import batch_bytes, image_files, official_batches, synthetic_arrays, write_tar, write_tree
from data_support import assert_matches_synthetic, load, refused

from cifar_lessons.data import OFFICIAL_MD5, DataError, load_cifar10

pytestmark = pytest.mark.usefixtures("isolated_cache")  # each test decodes into its own cache (conftest.py)


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


def test_keras_download_with_wrong_counts_is_refused(monkeypatch):
    import keras

    x_train, y_train, x_test, y_test = synthetic_arrays()
    monkeypatch.delenv("CIFAR_LESSONS_DATA", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data",
                        lambda: ((x_train, y_train.reshape(-1, 1)), (x_test, y_test.reshape(-1, 1))))
    with refused("train/airplane holds 4 images, expected 5000"):
        load_cifar10()
