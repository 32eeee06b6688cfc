"""The checked gather behind ``Table.lookup``'s numpy fast path: ``row[counts]`` with every count
verified to lie in 1..K, or ``None`` (the caller then takes the slow path, which names the first
offending count).  numpy only.

Public names
------------
gather(row, counts)   -- ``row[counts]`` for a padded row of length K + 1 (``row[n] = c_K[n]``)
                         when every count is in 1..K, else None.
SMALL                 -- groups up to this size take the small-group path.

How each size is checked
------------------------
* Up to ``SMALL`` counts (one group): fancy indexing and Python's ``min`` over ``tolist()``
  (numpy's reduction has ~1 µs of fixed overhead, more than the whole gather of a group of 16).
* Larger arrays: ``row.take(counts)``, numpy's fastest gather, and one ``counts.min()``.

In both, the gather raises IndexError for a count above K (the row has K + 1 entries) and the
minimum catches 0 and negative counts, which would otherwise read the NaN padding or wrap
around.  Nothing cheaper checks both ends: ``take`` accepts negative indices, so the minimum
is the one extra pass.  ``bench/bench_lookup.py`` measures the cost against
``np.log(counts / K)`` and against numpy's unchecked ``take`` alone (the floor).

Not done, and why: gathering large arrays on several threads (numpy releases the GIL in
``take`` and ``min``) was measured on the 2-core development machine: 20% faster when the output
came from memory the allocator had already touched, up to 1.7x slower when it had to fault in
fresh pages from two threads at once, and a thread pool brings fork hazards into training
processes.  It is not worth it for a lookup whose floor is numpy's own gather.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SMALL", "gather"]

#: Groups up to this size are range-checked with Python's ``min`` over ``tolist()``.
SMALL = 256


def gather(row: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """``row[counts]`` if every count is in ``1 .. len(row) - 1``, else None.

    ``row``: float64, 1-d, contiguous, ``row[n] = c_K[n]`` (``row[0]`` is padding).  ``counts``:
    a numpy array of a signed or small unsigned integer dtype (values that convert to intp
    exactly), any shape but 0-d.
    """
    n = counts.size
    try:
        if n <= SMALL:
            out = row[counts]  # fancy indexing: least fixed overhead
            ok = not n or min(counts.tolist() if counts.ndim == 1 else counts.ravel().tolist()) >= 1
        else:
            out = row.take(counts)  # fastest gather for large arrays
            ok = counts.min() >= 1
    except IndexError:
        return None
    return out if ok else None
