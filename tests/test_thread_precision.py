"""Working precision cannot leak between threads (aqpgen.numerics.precision, aqpgen.build.runner).

python-flint's and mpmath's precision is process-wide.  Before the fix, two threads in
flint_prec(640) and flint_prec(1152): once the first left, the second computed at 53 bits inside
its own block, and a threaded Dask worker built minimax rows at the wrong precision.  The oracle
is the serial build of the same rows (run one after another in this process): rows of different
working precision (kl-minimax K = 40: 168 bits, K = 120: 248, K = 200: 328) built concurrently in
threads must equal it byte for byte (values, high-precision strings, metrics, solver record).
"""

from __future__ import annotations

import sys
import threading

import pytest

from aqpgen.build.runner import run_K
from aqpgen.numerics.precision import flint_prec, mp_prec, single_thread_blas

MOD = "aqpgen.generators.minimax"
KS = (40, 120, 200)


def _row(r) -> tuple:
    return (r.K, r.values.tobytes(), tuple(r.values_hp), tuple(sorted(r.metrics.items())),
            tuple(sorted((k, repr(v)) for k, v in r.solver.items())), r.status)


@pytest.fixture(scope="module")
def serial():
    return {K: _row(run_K(MOD, K, {})) for K in KS}


@pytest.fixture
def fast_switching():
    """Threads switch every 10 µs (default 5 ms), so the interleavings that leaked happen."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _in_threads(fns) -> list:
    out, errors = [None] * len(fns), []

    def go(i, fn):
        try:
            out[i] = fn()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


@pytest.mark.parametrize("ctx, read", [
    (flint_prec, lambda: __import__("flint").ctx.prec),
    (mp_prec, lambda: __import__("mpmath").mp.prec),
])
def test_a_block_keeps_its_precision_when_another_thread_leaves(ctx, read):
    """A enters 640 bits, B asks for 1152 while A is inside, A leaves: B must see 1152 in its block
    (before the fix B entered at once and A's exit reset the process to 53 bits under it)."""
    a_in, b_trying, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with ctx(640):
            a_in.set()
            b_trying.wait(10)
            seen["a"] = read()
        a_out.set()

    def b():
        a_in.wait(10)
        b_trying.set()
        with ctx(1152):
            a_out.wait(10)
            seen["b"] = read()

    _in_threads([a, b])
    assert seen == {"a": 640, "b": 1152}


def test_rows_of_different_precision_in_threads_equal_serial(serial, fast_switching):
    # the calling thread holds the BLAS limit while rows run, as build() does (OpenBLAS may
    # ignore a limit set from another thread once this one has set and restored one)
    with single_thread_blas():
        got = _in_threads([lambda K=K: _row(run_K(MOD, K, {})) for K in (40, 200)])
    assert got == [serial[40], serial[200]]


def test_threaded_dask_build_equals_serial(serial, tmp_path, fast_switching):
    distributed = pytest.importorskip("distributed")
    from aqpgen.build.build import build
    from aqpgen.store.tablefile import read_table

    spec = tmp_path / "t.toml"
    spec.write_text(f'[[table]]\nname = "kl-minimax"\nfamily = "kl"\nmethod = "minimax"\n'
                    f'params = {{}}\nKs = {list(KS)}\n')
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        build(spec, tmp_path / "dask", dask=client)
    t = read_table(tmp_path / "dask" / "kl-minimax.h5")
    rows = {K: t.row(K) for K in t.Ks}
    for K in KS:
        r = rows[K]
        assert (K, r.values.tobytes(), tuple(r.values_hp), tuple(sorted(r.metrics.items())),
                tuple(sorted((k, repr(v)) for k, v in r.solver.items())), r.status) == serial[K], K
