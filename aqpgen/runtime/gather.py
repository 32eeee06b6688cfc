"""The checked gather behind ``Table.lookup``'s numpy fast path: ``row[counts]`` with every count
verified to lie in 1..K, or ``None`` (the caller then takes the slow path, which names the first
offending count).  numpy only.

Public names
------------
gather(row, counts)   -- ``row[counts]`` for a padded row of length K + 1 (``row[n] = c_K[n]``)
                         when every count is in 1..K, else None (also for a count dtype it
                         does not gather with, such as uint64 or float).
SMALL                 -- groups up to this size take the small-group path.

How each size is checked
------------------------
* Up to ``SMALL`` counts (one group): fancy indexing and Python's ``min`` over ``tolist()``
  (numpy's reduction has ~1 µs of fixed overhead, more than the whole gather of a group of 16).
* Larger arrays: ``row.take(counts)``, numpy's fastest gather, and one ``counts.min()``.
  ``take`` raises IndexError above K and accepts negative indices, so the minimum catches 0 and
  negatives.

Both paths return the same array for valid counts and None for any invalid one
(tests/test_gather.py checks each against plain indexing).  ``make bench``
(``bench/bench_lookup.py``) measures the cost against ``np.log(counts / K)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SMALL", "gather"]

#: Groups up to this size are range-checked with Python's ``min`` over ``tolist()``.
SMALL = 256
#: Count dtypes gathered here (their values convert to intp exactly; uint64 does not: 2**64 - 1
#: would wrap to -1, so it is left to the caller's slow path).
_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8,
                                          np.uint16, np.uint32))


def gather(row: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """``row[counts]`` if every count is in ``1 .. len(row) - 1`` and ``counts`` has a dtype
    gathered here (signed or small unsigned integers: values that convert to intp exactly), else
    None.

    ``row``: float64, 1-d, contiguous, ``row[n] = c_K[n]`` (``row[0]`` is padding).  ``counts``:
    a numpy array of any shape but 0-d.
    """
    if counts.dtype not in _DTYPES:
        return None
    n = counts.size
    try:
        if n <= SMALL:
            out = row[counts]  # fancy indexing: least fixed overhead
            ok = not n or min(counts.tolist() if counts.ndim == 1 else counts.ravel().tolist()) >= 1
        else:
            out = row.take(counts)  # numpy's fastest gather
            ok = counts.min() >= 1
    except IndexError:
        return None
    return out if ok else None
