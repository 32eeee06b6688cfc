"""The checked gather behind ``Table.lookup``'s numpy fast path: ``row[counts]`` with every count
verified to lie in 1..K, or ``None`` (the caller then takes the slow path, which names the first
offending count).  numpy, plus an optional compiled loop.

Public names
------------
gather(row, counts)   -- ``row[counts]`` for a padded row of length K + 1 (``row[n] = c_K[n]``)
                         when every count is in 1..K, else None (also for a count dtype it
                         does not gather with, such as uint64 or float).
SMALL                 -- groups up to this size take the small-group path.
COMPILED              -- True when the compiled gather (``aqpgen.runtime.cgather``) is in use.
THREADS               -- threads the compiled gather uses for arrays of ``PARALLEL_MIN`` counts
                         or more (``$AQPGEN_LOOKUP_THREADS``, default min(2, usable CPUs)).
PARALLEL_MIN          -- counts per call from which the work is split over ``THREADS`` threads.

How each size is checked
------------------------
* Up to ``SMALL`` counts (one group): fancy indexing and Python's ``min`` over ``tolist()``
  (numpy's reduction has ~1 µs of fixed overhead, more than the whole gather of a group of 16).
* Larger int64 / int32 C-contiguous arrays, when the compiled gather is built: one C loop that
  reads each count once, checks ``(uint64)(n - 1) < K`` (true exactly for 1 <= n <= K) and writes
  ``row[n]``; an invalid count reads the padding ``row[0]`` and makes the call return None.
  From ``PARALLEL_MIN`` counts it splits the array over ``THREADS`` threads, created for the
  call (no pool is left behind to break after a fork), with the GIL released.
* Otherwise (no compiler at install time, other dtypes, non-contiguous counts):
  ``row.take(counts)``, numpy's fastest gather, and one ``counts.min()``.  ``take`` raises
  IndexError above K and accepts negative indices, so the minimum catches 0 and negatives.

Every path returns the same array for valid counts and None for any invalid one
(tests/test_gather.py checks each against plain indexing).  Why compiled code: numpy's
``take`` plus ``min`` costs ~0.45 ns per count on the 2-core development machine, above the
0.3x of ``np.log(counts / K)`` the lookup is held to; the fused C loop costs ~0.42 ns on one
thread and ~0.27 ns on two (``bench/bench_lookup.py`` measures all of these).  The extension
is plain C against the Python C API (buffer protocol), compiled by ``setup.py`` as optional.
"""

from __future__ import annotations

import os

import numpy as np

try:
    from aqpgen.runtime import cgather as _cgather
except ImportError:  # not compiled (optional extension): numpy's take does the work
    _cgather = None

__all__ = ["COMPILED", "PARALLEL_MIN", "SMALL", "THREADS", "gather"]

#: Groups up to this size are range-checked with Python's ``min`` over ``tolist()``.
SMALL = 256
#: True when the compiled gather is in use.
COMPILED = _cgather is not None
#: From this many counts the compiled gather splits the work over ``THREADS`` threads (creating a
#: thread costs ~20 µs on the development machine; below 2**18 counts one thread is as fast).
PARALLEL_MIN = 2**18
#: Count dtypes gathered here (their values convert to intp exactly; uint64 does not: 2**64 - 1
#: would wrap to -1, so it is left to the caller's slow path).
_DTYPES = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8,
                                          np.uint16, np.uint32))
_C_DTYPES = frozenset(np.dtype(t) for t in (np.int64, np.int32))


def _threads() -> int:
    env = os.environ.get("AQPGEN_LOOKUP_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"AQPGEN_LOOKUP_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"AQPGEN_LOOKUP_THREADS must be a positive integer, got {env!r}")
        return min(n, 16)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


#: Threads of the compiled gather for arrays of ``PARALLEL_MIN`` counts or more (read once, at
#: import, from ``$AQPGEN_LOOKUP_THREADS``; default min(2, usable CPUs); 1 turns threads off).
THREADS = _threads()


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
        elif _cgather is not None and counts.dtype in _C_DTYPES and counts.flags.c_contiguous:
            out = np.empty(counts.shape)
            ok = _cgather.gather(row, counts, out, THREADS if n >= PARALLEL_MIN else 1)
        else:
            out = row.take(counts)  # numpy's fastest gather
            ok = counts.min() >= 1
    except IndexError:
        return None
    return out if ok else None
