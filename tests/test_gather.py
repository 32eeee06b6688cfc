"""Tests for aqpgen.runtime.gather: every path (small group, compiled loop on one and several
threads, numpy fallback) against plain indexing, and every kind of invalid count at every
place a chunk boundary can hide it.

The compiled extension is optional at install time.  Its tests are skipped when it was not
built, except under ``AQPGEN_REQUIRE_CGATHER=1`` (set by ``.ci/run``), where a missing extension
fails ``test_compiled_gather_is_built``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aqpgen.runtime import gather as G

try:
    from aqpgen.runtime import cgather
except ImportError:  # optional extension not built
    cgather = None

K = 1024
ROW = np.concatenate([[np.nan], np.random.default_rng(0).standard_normal(K)])  # row[0]: padding
needs_c = pytest.mark.skipif(cgather is None, reason="compiled gather not built")

BAD_VALUES = (0, -1, -K, -(K + 1), -(K + 2), K + 1, K + 2, 2**31 - 1, -(2**31), 2**62, -(2**63),
              2**63 - 1)


def _oracle(counts: np.ndarray) -> np.ndarray:
    """row[counts] by numpy fancy indexing (a different code path from take and the C loop),
    after an explicit range check in Python integers."""
    assert all(1 <= int(n) <= K for n in counts.ravel()[:: max(1, counts.size // 1000)])
    return ROW[counts.astype(np.int64)]


def test_compiled_gather_is_built():
    if os.environ.get("AQPGEN_REQUIRE_CGATHER") == "1":
        assert G.COMPILED, "AQPGEN_REQUIRE_CGATHER=1 but aqpgen.runtime.cgather did not import"
    elif not G.COMPILED:
        pytest.skip("compiled gather not built (set AQPGEN_REQUIRE_CGATHER=1 to require it)")
    assert G.THREADS >= 1


@pytest.mark.parametrize("size", [1, 17, G.SMALL, G.SMALL + 1, 5000, G.PARALLEL_MIN - 1,
                                  G.PARALLEL_MIN, G.PARALLEL_MIN + 3])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16])
def test_valid_counts_every_path(size, dtype):
    c = np.random.default_rng(size).integers(1, K + 1, size=size).astype(dtype)
    out = G.gather(ROW, c)
    assert out is not None and out.dtype == np.float64 and out.shape == c.shape
    assert np.array_equal(out, _oracle(c))


@pytest.mark.parametrize("size", [G.SMALL + 1, G.PARALLEL_MIN + 1])
def test_invalid_count_anywhere_gives_none(size):
    """One bad count, at the ends and at every boundary of a 2- or 3-way split, of each kind."""
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
    assert np.array_equal(G.gather(ROW, c[:, ::3]), _oracle(c[:, ::3]))  # numpy path
    assert np.array_equal(G.gather(ROW, np.asfortranarray(c)), _oracle(c))
    bad = c[:, ::3].copy(order="F")
    bad[7, 2] = 0
    assert G.gather(ROW, bad) is None


def test_numpy_fallback_matches(monkeypatch):
    """The path used where the extension was not built."""
    monkeypatch.setattr(G, "_cgather", None)
    c = np.random.default_rng(4).integers(1, K + 1, size=G.PARALLEL_MIN + 5)
    assert np.array_equal(G.gather(ROW, c), _oracle(c))
    for v in (0, -1, -(K + 1), K + 1):
        bad = c.copy()
        bad[-1] = v
        assert G.gather(ROW, bad) is None


# ------------------------------------------------------------------------- the C function
@needs_c
@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), threads=st.integers(-2, 40), wide=st.booleans(), data=st.data())
def test_c_gather_property(n, threads, wide, data):
    """Any length, any thread count (clamped to 1..16 and to n), a bad count or not."""
    dt = np.int64 if wide else np.int32
    c = np.array(data.draw(st.lists(st.integers(1, K), min_size=n, max_size=n)), dtype=dt)
    bad_at = data.draw(st.one_of(st.none(), st.integers(0, n - 1))) if n else None
    if bad_at is not None:
        c[bad_at] = data.draw(st.sampled_from([v for v in BAD_VALUES if np.iinfo(dt).min <= v
                                               <= np.iinfo(dt).max]))
    out = np.full(n, 7.0)
    ok = cgather.gather(ROW, c, out, threads)
    assert ok is (bad_at is None)
    if ok:
        assert out.tolist() == [ROW[int(v)] for v in c]


@needs_c
def test_c_gather_refuses_wrong_buffers():
    c = np.array([1, 2, 3])
    out = np.empty(3)
    with pytest.raises(TypeError, match="float64"):
        cgather.gather(ROW.astype(np.float32), c, out, 1)
    with pytest.raises(TypeError, match="int64 or int32"):
        cgather.gather(ROW, c.astype(np.uint64), out, 1)
    with pytest.raises(TypeError, match="int64 or int32"):
        cgather.gather(ROW, c.astype(np.int16), out, 1)
    with pytest.raises(TypeError, match="int64 or int32"):
        cgather.gather(ROW, c.astype(">i8"), out, 1)
    with pytest.raises(TypeError, match="float64"):
        cgather.gather(ROW, c, np.empty(3, dtype=np.int64), 1)
    with pytest.raises(ValueError, match="as many items"):
        cgather.gather(ROW, c, np.empty(4), 1)
    with pytest.raises(ValueError, match="K \\+ 1 >= 2"):
        cgather.gather(ROW[:1], c, out, 1)
    with pytest.raises((BufferError, ValueError)):
        cgather.gather(ROW, c, out[::-1], 1)  # not contiguous
    ro = np.empty(3)
    ro.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):
        cgather.gather(ROW, c, ro, 1)


# ------------------------------------------------------------------------- thread setting
def _threads_in_subprocess(value: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AQPGEN_LOOKUP_THREADS"}
    if value is not None:
        env["AQPGEN_LOOKUP_THREADS"] = value
    return subprocess.run([sys.executable, "-c", "from aqpgen.runtime import gather; print(gather.THREADS)"],
                          check=False, capture_output=True, text=True, env=env)


def test_threads_setting():
    default = _threads_in_subprocess(None)
    assert default.returncode == 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert int(default.stdout) == max(1, min(2, cpus))
    assert _threads_in_subprocess("3").stdout.strip() == "3"
    assert _threads_in_subprocess("99").stdout.strip() == "16"
    for bad in ("0", "two", "-1"):
        r = _threads_in_subprocess(bad)
        assert r.returncode != 0 and "AQPGEN_LOOKUP_THREADS must be a positive integer" in r.stderr


def test_readme_states_the_code_constants():
    """docs/ARCHITECTURE.md's description of the compiled gather (the README links to it) names
    the thresholds the code uses."""
    root = Path(__file__).resolve().parents[1]
    assert "docs/ARCHITECTURE.md" in (root / "README.md").read_text()
    text = " ".join((root / "docs" / "ARCHITECTURE.md").read_text().split())
    exp = G.PARALLEL_MIN.bit_length() - 1
    assert 2**exp == G.PARALLEL_MIN
    assert f"more than {G.SMALL} counts" in text and f"2^{exp} counts" in text
    assert "AQPGEN_LOOKUP_THREADS" in text and "gather.COMPILED" in text
