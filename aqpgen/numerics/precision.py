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
                                   exceptions); yields the ``flint`` module.  Holds
                                   ``PRECISION_LOCK`` (below).
mp_prec(bits)                   -- the same for mpmath (yields the ``mpmath`` module).
PRECISION_LOCK                  -- the process-wide re-entrant lock every precision block holds.
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

Threads: precision is process-wide state
----------------------------------------
python-flint keeps one ``flint.ctx.prec`` per process and mpmath one ``mp.prec``; neither offers
a context that a computation could carry with it (python-flint's arb functions read the global
one).  Two threads in ``flint_prec(640)`` and ``flint_prec(1152)`` would otherwise interleave:
when the first leaves, it restores 53 bits while the second is still computing inside its block.
So every block holds ``PRECISION_LOCK`` (re-entrant: blocks nest in one thread), and blocks of
different threads run one after another; python-flint and mpmath hold the GIL anyway, so little
parallelism is lost.  The build goes further (``aqpgen.build.runner.run_K``): rows of one process
never run at the same time, so nothing a row computes between its blocks can see another row's
precision either.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import threadpool_info, threadpool_limits

from aqpgen.records import as_int

__all__ = ["GUARD_BITS", "PRECISION_LOCK", "flint_prec", "mp_prec", "single_thread_blas", "work_dps",
           "work_prec"]

#: bits kept beyond the magnitude of the computed quantity.
GUARD_BITS = 128


def work_prec(K: int = 1, *, magnitude_bits: int = 0) -> int:
    """Working precision in bits for a computation at batch size K (module docstring)."""
    K = as_int(K, "K", minimum=1)
    return GUARD_BITS + as_int(magnitude_bits, "magnitude_bits", minimum=0) + 4 * max(0, math.ceil(math.log2(K)) - 10)


def work_dps(K: int = 1, *, magnitude_bits: int = 0) -> int:
    """``work_prec`` in decimal digits (floor(bits * log10 2))."""
    return int(work_prec(K, magnitude_bits=magnitude_bits) * math.log10(2))


#: held by every precision block (module docstring, "Threads"); re-entrant, so blocks nest.
PRECISION_LOCK = threading.RLock()


@contextlib.contextmanager
def flint_prec(bits: int):
    """Temporarily set python-flint's working precision to ``bits`` (restored on exit); other
    threads' precision blocks wait until this one ends (``PRECISION_LOCK``)."""
    import flint

    bits = int(bits)
    with PRECISION_LOCK:
        old = flint.ctx.prec
        flint.ctx.prec = bits
        try:
            yield flint
        finally:
            flint.ctx.prec = old


@contextlib.contextmanager
def mp_prec(bits: int):
    """Temporarily set mpmath's working precision to ``bits`` (restored on exit); holds
    ``PRECISION_LOCK`` like ``flint_prec``."""
    import mpmath

    bits = int(bits)
    with PRECISION_LOCK, mpmath.workprec(bits):
        yield mpmath


#: the blocks of ``single_thread_blas`` now running (in any thread) and their shared limit.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None
#: the one thread (per process) that changes BLAS thread counts when the caller is not the main
#: thread, and the process it belongs to (a forked child makes its own).
_blas_thread: ThreadPoolExecutor | None = None
_blas_thread_pid = None


def _blas_call(fn):
    """``fn()`` where OpenBLAS honours a thread-count change.  Measured with SciPy's OpenBLAS
    (tests/test_row_isolation.py): ``openblas_set_num_threads`` takes effect from the main thread
    and from the first other thread that ever calls it, and is silently ignored from any later
    thread; so a limit set in one Dask worker thread and restored in another stayed at one thread
    for the rest of the process.  The main thread calls directly; every other thread goes through
    one long-lived thread of this process."""
    global _blas_thread, _blas_thread_pid
    if threading.current_thread() is threading.main_thread():
        return fn()
    if _blas_thread is None or _blas_thread_pid != os.getpid():
        _blas_thread = ThreadPoolExecutor(1, thread_name_prefix="aqpgen-blas")
        _blas_thread_pid = os.getpid()
    return _blas_thread.submit(fn).result()


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
    Dask worker) share it: the first to enter sets it, the last to leave restores the caller's
    (both through ``_blas_call``: OpenBLAS ignores the change from most non-main threads).
    """
    import scipy.linalg  # noqa: F401 - loaded before the limit is set (see above)

    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            limit = _blas_call(lambda: threadpool_limits(limits=1))
            wide = [f"{x.get('internal_api')} ({x.get('filepath')}): {x.get('num_threads')} "
                    "threads" for x in threadpool_info() if x.get("num_threads") != 1]
            if wide:
                _blas_call(limit.restore_original_limits)
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
                _blas_call(_blas_limit.restore_original_limits)
                _blas_limit = None
