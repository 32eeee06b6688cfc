"""Tests for aqpgen.runtime.gather: both paths (small group, numpy ``take`` + ``min``) against
plain indexing, and every kind of invalid count at the ends and in the middle of an array.
"""

from __future__ import annotations

import numpy as np
import pytest

from aqpgen.runtime import gather as G

K = 1024
ROW = np.concatenate([[np.nan], np.random.default_rng(0).standard_normal(K)])  # row[0]: padding

BAD_VALUES = (0, -1, -K, -(K + 1), -(K + 2), K + 1, K + 2, 2**31 - 1, -(2**31), 2**62, -(2**63),
              2**63 - 1)


def _oracle(counts: np.ndarray) -> np.ndarray:
    """row[counts] by numpy fancy indexing (a different code path from take),
    after an explicit range check in Python integers."""
    assert all(1 <= int(n) <= K for n in counts.ravel()[:: max(1, counts.size // 1000)])
    return ROW[counts.astype(np.int64)]


@pytest.mark.parametrize("size", [1, 17, G.SMALL, G.SMALL + 1, 5000, 2**18 + 3])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16])
def test_valid_counts_every_path(size, dtype):
    c = np.random.default_rng(size).integers(1, K + 1, size=size).astype(dtype)
    out = G.gather(ROW, c)
    assert out is not None and out.dtype == np.float64 and out.shape == c.shape
    assert np.array_equal(out, _oracle(c))


@pytest.mark.parametrize("size", [16, G.SMALL + 1, 2**18 + 1])
def test_invalid_count_anywhere_gives_none(size):
    """One bad count of each kind, at the ends, in the middle and at the thirds of the array."""
    rng = np.random.default_rng(size)
    good = rng.integers(1, K + 1, size=size)
    places = sorted({0, size - 1, size // 2 - 1, size // 2, size // 2 + 1, size // 3, 2 * size // 3})
    for dtype in (np.int64, np.int32):
        info = np.iinfo(dtype)
        for v in BAD_VALUES:
            if not info.min <= v <= info.max:
                continue
            for i in places:
                bad = good.astype(dtype)
                bad[i] = v
                assert G.gather(ROW, bad) is None, (dtype, v, i)
    edge = good.copy()
    edge[[0, -1]] = (1, K)  # the range's own ends are valid
    assert np.array_equal(G.gather(ROW, edge), _oracle(edge))


def test_dtypes_left_to_the_slow_path():
    """uint64 (2**64 - 1 would wrap to index -1), floats and bools are not gathered here."""
    for dt in (np.uint64, np.float64, np.bool_):
        assert G.gather(ROW, np.ones(G.SMALL + 1, dtype=dt)) is None
        assert G.gather(ROW, np.ones(3, dtype=dt)) is None


def test_multidimensional_and_noncontiguous():
    c = np.random.default_rng(3).integers(1, K + 1, size=(300, 40))
    assert np.array_equal(G.gather(ROW, c), _oracle(c))
    assert np.array_equal(G.gather(ROW, c[:, ::3]), _oracle(c[:, ::3]))
    assert np.array_equal(G.gather(ROW, np.asfortranarray(c)), _oracle(c))
    bad = c[:, ::3].copy(order="F")
    bad[7, 2] = 0
    assert G.gather(ROW, bad) is None
