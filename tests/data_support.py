"""What the data tests share: loading a tiny synthetic source, checking it against the arrays it was made from,
and expecting a one-line DataError."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from conftest import PER_CLASS, synthetic_arrays

from cifar_lessons.data import CLASS_NAMES, DataError, load_cifar10


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


@contextlib.contextmanager
def refused(match):
    """Expect a DataError whose one-line message matches ``match``."""
    with pytest.raises(DataError, match=match) as caught:
        yield caught
    assert "\n" not in str(caught.value), "error messages must fit on one line"
