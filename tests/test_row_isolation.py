"""A table row does not depend on the process that builds it (docs/MATH.md §9).

The build runs rows largest K first, in this process, a pool or on Dask; the committed bytes are
reproducible only if a row is the same whatever ran before it in the same process and however
many cores the machine has.  It failed before: SciPy's own OpenBLAS was loaded (by the
generators' ``import scipy.linalg`` inside functions) after ``threadpool_limits`` had limited
the libraries loaded so far, its LU factorisation ran on every core, and the Remez reference
(hence the high-precision strings) varied from run to run.  Checked in new Python processes
(subprocesses: this test process has long since imported everything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env) -> str:
    """The last line ``code`` prints in a new Python process, with the machine's default thread
    counts (every ``*_NUM_THREADS`` unset) unless ``env`` sets them."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**base, **env}, check=False, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


def test_every_thread_pool_is_limited_in_a_fresh_process():
    """In a process that has not imported scipy.linalg yet, single_thread_blas leaves no pool
    (numpy's OpenBLAS, SciPy's, OpenMP) with more than one thread; the machine default is kept
    (OPENBLAS_NUM_THREADS unset), so on a machine with several cores this fails without the
    imports inside single_thread_blas."""
    pools = json.loads(_python(
        "import json, numpy\n"
        "from aqpgen.numerics.precision import single_thread_blas\n"
        "with single_thread_blas():\n"
        "    import scipy.linalg\n"
        "    from threadpoolctl import threadpool_info\n"
        "    info = threadpool_info()\n"
        "print(json.dumps([[x['filepath'], x['num_threads']] for x in info]))\n"))
    assert any("scipy" in path for path, _ in pools), pools  # SciPy's BLAS was loaded and seen
    assert all(n == 1 for _, n in pools), pools


_ROWS = (
    "import json\n"
    "from aqpgen.build.runner import run_K\n"
    "for K in {Ks}:\n"
    "    r = run_K('aqpgen.generators.minimax', K, {{'target': 'log'}})\n"
    "print(json.dumps([list(r.values_hp), r.metrics, r.solver]))\n")


@pytest.fixture(scope="module")
def row_384_single_threaded():
    """Row K = 384 built in a new process with every BLAS on one thread from the start."""
    return json.loads(_python(_ROWS.format(Ks=[384]), OPENBLAS_NUM_THREADS="1",
                              OMP_NUM_THREADS="1"))


@pytest.mark.parametrize("before", [[], [448]])
def test_minimax_row_independent_of_what_ran_before(before, row_384_single_threaded):
    """Row K = 384 of the minimax table (an LU of order 385: threaded by OpenBLAS) built first in
    a process, or after the larger K = 448 (as the largest-first build order does), equals the
    same row built in another new process with every BLAS on one thread from the start."""
    alone = row_384_single_threaded
    got = json.loads(_python(_ROWS.format(Ks=[*before, 384])))
    assert got[0] == alone[0]  # the high-precision strings, digit for digit
    assert got[1] == alone[1] and got[2] == alone[2]


def test_overlapping_blocks_in_threads_keep_the_limit():
    """Two rows overlapping in threads of one process (a threaded Dask worker): the first block
    to leave does not lift the limit the other still computes under; the last restores it.
    The order is forced with events: A enters, B enters, A leaves, B looks."""
    out = json.loads(_python(
        "import json, threading\n"
        "import scipy.linalg\n"
        "from threadpoolctl import threadpool_info\n"
        "from aqpgen.numerics.precision import single_thread_blas\n"
        "def n(): return sorted({x['num_threads'] for x in threadpool_info()})\n"
        "before = n()\n"
        "a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()\n"
        "seen = {}\n"
        "def a():\n"
        "    with single_thread_blas():\n"
        "        a_in.set(); b_in.wait()\n"
        "    a_out.set()\n"
        "def b():\n"
        "    a_in.wait()\n"
        "    with single_thread_blas():\n"
        "        b_in.set(); a_out.wait(); seen['b'] = n()\n"
        "ts = [threading.Thread(target=f) for f in (a, b)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(json.dumps([before, seen['b'], n()]))\n", OPENBLAS_NUM_THREADS="2"))
    before, inside_b, after = out
    assert before == [2], out  # the pools run 2 threads outside the blocks
    assert inside_b == [1], out  # still limited after A left
    assert after == before, out  # restored once both left
