"""Working precision: the one policy (bits) and the contexts that apply it (docs/MATH.md §3, §6).

Public names
------------
GUARD_BITS                      -- 128: bits kept beyond the magnitude of what is computed.
work_prec(K=1, *, magnitude_bits=0) -> int
                                -- the one precision policy for python-flint and mpmath work:
                                   GUARD_BITS + magnitude_bits + 4 * max(0, ceil(log2 K) - 10).
work_dps(K=1, *, magnitude_bits=0) -> int
                                -- the same policy in decimal digits (for ``mpmath.workdps``).
flint_prec(bits)                -- context manager: python-flint's working precision is ``bits``
                                   inside the block, the caller's is restored on exit (also on
                                   exceptions); yields the ``flint`` module.
mp_prec(bits)                   -- the same for mpmath (yields the ``mpmath`` module).
single_thread_blas()            -- context manager: every BLAS / OpenMP pool on one thread
                                   (checked), SciPy's included (see below).

The policy
----------
* ``GUARD_BITS`` = 128 bits (~38 digits) survive in the result: enough to round anything to
  float64 correctly (hard cases aside) and for the Remez levelled error to be accurate far below
  its stopping tolerance 1e-12 relative (E*_K >= 3e-7 at K <= 1024).
* ``magnitude_bits``: bits that cancel when the result is a sum of much larger terms.  The
  minimax table's Bernstein coefficients grow like 2^K / K^2 while the polynomial they
  represent is O(log K), so its conversion passes magnitude_bits = K (``table_prec``).
* 4 more bits per doubling of K beyond 1024: rounding accumulated over K-term sums.

A row does not depend on the machine or on what ran before it
-------------------------------------------------------------
A threaded BLAS factorisation can round differently from run to run.  The Remez exchange stops
at a tolerance, so such float64 differences reach its reference and through it the last digits
of its high-precision strings and its spread.  ``aqpgen.build.runner.run_K`` builds every row
inside ``single_thread_blas``; tests/test_row_isolation.py checks it in new processes.

Precision is always an explicit argument in aqpgen; nothing sets a global precision at import
time or leaves it changed.
"""

from __future__ import annotations

import contextlib
import math
import threading

from threadpoolctl import threadpool_info, threadpool_limits

__all__ = ["GUARD_BITS", "flint_prec", "mp_prec", "single_thread_blas", "work_dps", "work_prec"]

#: bits kept beyond the magnitude of the computed quantity.
GUARD_BITS = 128


def work_prec(K: int = 1, *, magnitude_bits: int = 0) -> int:
    """Working precision in bits for a computation at batch size K (module docstring)."""
    K = int(K)
    if K < 1:
        raise ValueError(f"K must be an integer >= 1, received {K}")
    return GUARD_BITS + int(magnitude_bits) + 4 * max(0, math.ceil(math.log2(K)) - 10)


def work_dps(K: int = 1, *, magnitude_bits: int = 0) -> int:
    """``work_prec`` in decimal digits (floor(bits * log10 2))."""
    return int(work_prec(K, magnitude_bits=magnitude_bits) * math.log10(2))


@contextlib.contextmanager
def flint_prec(bits: int):
    """Temporarily set python-flint's working precision to ``bits`` (restored on exit)."""
    import flint

    old = flint.ctx.prec
    flint.ctx.prec = int(bits)
    try:
        yield flint
    finally:
        flint.ctx.prec = old


@contextlib.contextmanager
def mp_prec(bits: int):
    """Temporarily set mpmath's working precision to ``bits`` (restored on exit)."""
    import mpmath

    with mpmath.workprec(int(bits)):
        yield mpmath


#: the blocks of ``single_thread_blas`` now running (in any thread) and their shared limit.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None


@contextlib.contextmanager
def single_thread_blas():
    """BLAS and OpenMP thread pools limited to one thread inside the block (restored on exit).

    A multithreaded BLAS splits a matrix product or an LU factorisation differently for each thread
    count, and the float64 rounding follows the split: the Remez exchange's float64 stage (and
    through its reference every later digit) would then depend on the machine's core count
    (and on thread scheduling: a threaded factorisation can differ from run to run).

    ``threadpool_limits`` limits only the libraries already loaded, and SciPy carries its own
    OpenBLAS, loaded with ``scipy.linalg``: the generators import it inside functions, after the
    limit would have been set.  So ``scipy.linalg`` (which loads numpy's OpenBLAS and SciPy's) is
    imported first, and the block checks that each pool it then sees runs one thread.

    The limit is process-wide, so blocks that overlap in threads of one process (a threaded
    Dask worker) share it: the first to enter sets it, the last to leave restores the caller's.
    """
    import scipy.linalg  # noqa: F401 - loaded before the limit is set (see above)

    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            limit = threadpool_limits(limits=1)
            wide = [f"{x.get('internal_api')} ({x.get('filepath')}): {x.get('num_threads')} "
                    "threads" for x in threadpool_info() if x.get("num_threads") != 1]
            if wide:
                limit.restore_original_limits()
                raise RuntimeError("could not limit these thread pools to one thread: "
                                   + "; ".join(wide))
            _blas_limit = limit
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None
