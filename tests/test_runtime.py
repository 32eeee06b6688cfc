"""Tests for aqpgen.runtime: loading, lookup on numpy/torch/jax, every error path."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aqpgen import runtime
from aqpgen.errors import TableFormatError
from aqpgen.records import KResult
from aqpgen.store.content import make_table
from aqpgen.store.tablefile import write_table

KS = (3, 4, 5, 8)


def _oracle(K: int, n: int, m: int = 2) -> float:
    """c_K[n] = (n-1)_m/(K-1)_m, correctly rounded (independent of aqpgen.power)."""
    return float(Fraction(math.perm(n - 1, m), math.perm(K - 1, m))) if m <= K - 1 else math.nan


def _row(K: int, status: str = "ok") -> KResult:
    if status != "ok":
        return KResult(K=K, values=np.full(K, np.nan), metrics={"V1": math.nan}, status=status)
    vals = np.array([_oracle(K, n) for n in range(1, K + 1)])
    return KResult(K=K, values=vals, metrics={"V1": 0.5}, solver={"method": "test"})


def _table(tmp_path, name="power-m2", rows=None):
    results = rows if rows is not None else [_row(K) for K in KS] + [_row(13, "infeasible: test")]
    td = make_table(name=name, family="power", target="p^2", method="ustat", params={"m": 2},
                    provenance={"command": "test"}, results=results)
    path = tmp_path / f"{name}.h5"
    write_table(path, td)
    return path


@pytest.fixture
def table(tmp_path):
    return runtime.load_table(_table(tmp_path))


# ------------------------------------------------------------------------ loading
def test_load_by_path_and_attributes(tmp_path):
    path = _table(tmp_path)
    t = runtime.load_table(str(path))
    assert t.Ks == (3, 4, 5, 8, 13)
    assert (t.name, t.target, t.method, t.family) == ("power-m2", "p^2", "ustat", "power")
    assert t.params == {"m": 2}
    assert t.status[13].startswith("infeasible") and t.status[5] == "ok"
    assert t.metrics(5) == {"V1": 0.5}
    v = t.values(5)
    assert v.dtype == np.float64 and v.tolist() == [_oracle(5, n) for n in range(1, 6)]
    with pytest.raises(ValueError):
        v[0] = 1.0  # read-only view of the dense table
    assert "power-m2" in repr(t)


def test_load_by_name_via_env(tmp_path, monkeypatch):
    _table(tmp_path, name="mytab")
    monkeypatch.setenv("AQPGEN_TABLES", str(tmp_path))
    t = runtime.load_table("mytab")
    assert t.name == "mytab" and t.path == tmp_path / "mytab.h5"
    with pytest.raises(FileNotFoundError, match=r"no table file 'nope'.*mytab"):
        runtime.load_table("nope")


def test_hash_mismatch_and_schema(tmp_path):
    import h5py

    path = _table(tmp_path)
    with h5py.File(path, "r+") as f:
        f["values"][3] = 0.25
    with pytest.raises(TableFormatError, match="hash"):
        runtime.load_table(path)
    path2 = _table(tmp_path, name="other")
    with h5py.File(path2, "r+") as f:
        f.attrs["schema_version"] = np.int64(99)
    with pytest.raises(TableFormatError, match="schema_version 99"):
        runtime.load_table(path2)


def test_ok_row_with_nan_refused(tmp_path):
    bad = KResult(K=3, values=np.array([0.0, np.nan, 1.0]), status="ok")
    path = _table(tmp_path, rows=[bad])
    with pytest.raises(ValueError, match=r"K=3 has status 'ok' but c_K\[2\] = nan"):
        runtime.load_table(path)


def test_import_is_light():
    code = ("import sys, aqpgen.runtime; "
            "bad = [m for m in ('h5py', 'cvxpy', 'mpmath', 'flint', 'sympy', 'click', 'torch', "
            "'jax', 'scipy') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_imports_no_heavy_modules(tmp_path):
    path = _table(tmp_path)
    code = (f"import sys, aqpgen.runtime as r; t = r.load_table({str(path)!r}); "
            "import numpy as np; t.lookup(np.array([1, 2]), 3); "
            "print([m for m in ('cvxpy', 'mpmath', 'flint', 'sympy', 'click', 'scipy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------ numpy lookup
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                   np.uint32, np.uint64])
def test_lookup_dtypes(table, dtype):
    c = np.array([[1, 2, 3], [8, 7, 1]], dtype=dtype)
    out = table.lookup(c, 8)
    assert out.shape == (2, 3) and out.dtype == np.float64
    assert out.tolist() == [[_oracle(8, int(n)) for n in r] for r in c]


def test_lookup_shapes(table):
    assert table.lookup(np.array(3), 5).shape == ()
    assert isinstance(table.lookup(np.array(3), 5), np.ndarray)
    assert table.lookup(np.array(3), 5) == _oracle(5, 3)
    s = table.lookup(np.int32(3), 5)
    assert isinstance(s, np.float64) and s == _oracle(5, 3)
    f = table.lookup(3, 5)
    assert type(f) is float and f == _oracle(5, 3)
    assert table.lookup([1, 5], 5).tolist() == [0.0, 1.0]
    assert table.lookup(np.zeros((0, 4), dtype=np.int64), 5).shape == (0, 4)
    assert table.lookup([], 5).shape == (0,)
    big = np.random.default_rng(1).integers(1, 9, size=(4, 5, 6))
    assert table.lookup(big, 8).shape == (4, 5, 6)
    # non-contiguous input
    assert table.lookup(big[:, ::2, 1], 8).tolist() == [[_oracle(8, int(n)) for n in r] for r in big[:, ::2, 1]]


def test_lookup_float32_output(table):
    out = table.lookup(np.array([2, 3]), 3, dtype=np.float32)
    assert out.dtype == np.float32 and out.tolist() == [0.0, 1.0]


@pytest.fixture(scope="module")
def module_table(tmp_path_factory):
    return runtime.load_table(_table(tmp_path_factory.mktemp("rt")))


@settings(max_examples=40, deadline=None)
@given(K=st.sampled_from(KS), data=st.data())
@example(K=3, data=None)
def test_lookup_property(module_table, K, data):
    counts = (np.array(data.draw(st.lists(st.integers(1, K), max_size=30)), dtype=np.int64)
              if data is not None else np.array([1, 2]))
    out = module_table.lookup(counts, K)
    assert out.tolist() == [_oracle(K, int(n)) for n in counts]


# ------------------------------------------------------------------------ errors
def test_float_counts_refused(table):
    with pytest.raises(TypeError, match=r"integer dtype, received float64.*astype\(np.int64\)"):
        table.lookup(np.array([1.0, 2.0]), 3)
    with pytest.raises(TypeError, match="integer dtype, received bool"):
        table.lookup(np.array([True]), 3)
    with pytest.raises(TypeError, match="integer dtype"):
        table.lookup(2.0, 3)


@pytest.mark.parametrize("bad,where,value", [([1, 0, 2], "counts[1]", 0), ([[1, 2], [9, 1]], "counts[1, 0]", 9),
                                             ([-3], "counts[0]", -3)])
def test_out_of_range(table, bad, where, value):
    with pytest.raises(ValueError, match=rf"1\.\.8, but {re.escape(where)} = {value}"):
        table.lookup(np.array(bad), 8)


def test_out_of_range_scalar(table):
    with pytest.raises(ValueError, match=r"counts = 4"):
        table.lookup(4, 3)
    with pytest.raises(ValueError, match=r"counts = 0"):
        table.lookup(np.array(0), 3)


def test_uint_overflow_values(table):
    with pytest.raises(ValueError, match="18446744073709551615"):
        table.lookup(np.array([1, 2**64 - 1], dtype=np.uint64), 8)


def test_K_errors(table):
    with pytest.raises(ValueError, match=r"K=6 is not in table 'power-m2' \(nearby Ks: \[3, 4, 5, 8, 13\]"):
        table.lookup(np.array([1]), 6)
    with pytest.raises(ValueError, match=r"K=13 of table 'power-m2' is unavailable: infeasible: test"):
        table.lookup(np.array([1]), 13)
    with pytest.raises(ValueError, match="unavailable"):
        table.values(13)
    with pytest.raises(TypeError, match="K must be an integer"):
        table.lookup(np.array([1]), 5.0)
    with pytest.raises(TypeError, match="K must be an integer"):
        table.lookup(np.array([1]), True)
    with pytest.raises(ValueError, match="not in table"):
        table.values(100)


# ------------------------------------------------------------------------ answers
def test_answers_to_counts():
    assert runtime.answers_to_counts(["a", "b", "a", "c", "a"]).tolist() == [3, 1, 3, 1, 3]
    assert runtime.answers_to_counts([7, 7, 1]).tolist() == [2, 2, 1]
    assert runtime.answers_to_counts(np.array([3, 1, 3, 3])).tolist() == [3, 1, 3, 3]
    assert runtime.answers_to_counts(np.array(["x", "y", "x"])).tolist() == [2, 1, 2]
    assert runtime.answers_to_counts([]).tolist() == []
    assert runtime.answers_to_counts(["1", 1]).tolist() == [1, 1]
    assert runtime.answers_to_counts([None, None, "a"]).tolist() == [1, 1, 1]  # failed: unique
    assert runtime.answers_to_counts([None, None, "a"], failed="pool").tolist() == [2, 2, 1]
    with pytest.raises(TypeError, match="hashable"):
        runtime.answers_to_counts([[1], [1]])
    with pytest.raises(TypeError, match="single string"):
        runtime.answers_to_counts("abc")
    with pytest.raises(ValueError, match="1-d"):
        runtime.answers_to_counts(np.ones((2, 2), dtype=int))


def test_rewards(table):
    r = table.rewards(["x", "y", "x", "x", "z"])
    assert r.tolist() == [_oracle(5, 3), _oracle(5, 1), _oracle(5, 3), _oracle(5, 3), _oracle(5, 1)]
    with pytest.raises(ValueError, match="K=2 is not in table"):
        table.rewards(["a"] * 2)


# ------------------------------------------------------------------------ torch
def test_torch_lookup(table):
    torch = pytest.importorskip("torch")
    for dt in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        c = torch.tensor([[1, 2], [8, 3]], dtype=dt)
        out = table.lookup(c, 8)
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (2, 2)
        assert out.tolist() == [[_oracle(8, 1), _oracle(8, 2)], [_oracle(8, 8), _oracle(8, 3)]]
    assert table.lookup(torch.tensor(3), 5).shape == ()
    assert table.lookup(torch.tensor(3), 5).item() == _oracle(5, 3)
    assert table.lookup(torch.zeros((0, 3), dtype=torch.int64), 5).shape == (0, 3)
    out = table.lookup(torch.tensor([2, 3]), 3, dtype=torch.float32)
    assert out.dtype == torch.float32 and out.tolist() == [0.0, 1.0]
    assert table.lookup(torch.tensor([2, 3]), 3, check=False).tolist() == [0.0, 1.0]
    assert table._cache  # device copy cached


def test_torch_errors(table):
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"integer dtype.*\.long\(\)"):
        table.lookup(torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(TypeError, match="integer dtype"):
        table.lookup(torch.tensor([True]), 3)
    with pytest.raises(ValueError, match=r"counts\[1, 0\] = 9"):
        table.lookup(torch.tensor([[1, 2], [9, 1]]), 8)
    with pytest.raises(ValueError, match=r"counts = 0"):
        table.lookup(torch.tensor(0), 8)
    with pytest.raises(ValueError, match="not in table"):
        table.lookup(torch.tensor([1]), 7)
    # check=False (documented): 0 reads the NaN padding, above K is an IndexError on CPU
    assert math.isnan(table.lookup(torch.tensor([0]), 3, check=False).item())
    with pytest.raises(IndexError):
        table.lookup(torch.tensor([4]), 3, check=False)


# ------------------------------------------------------------------------ jax
def test_jax_lookup(table):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    c = jnp.array([[1, 2], [8, 3]], dtype=jnp.int32)
    out = table.lookup(c, 8)
    assert isinstance(out, jax.Array) and out.shape == (2, 2)
    np.testing.assert_allclose(np.asarray(out), [[_oracle(8, 1), _oracle(8, 2)], [_oracle(8, 8), _oracle(8, 3)]],
                               rtol=1e-7)
    with pytest.raises(ValueError, match=r"counts\[0, 1\] = 0"):
        table.lookup(jnp.array([[1, 0]]), 8)
    with pytest.raises(TypeError, match="integer dtype"):
        table.lookup(jnp.array([1.0]), 8)
    f = jax.jit(lambda x: table.lookup(x, 3))
    res = np.asarray(f(jnp.array([1, 3, 0, 4])))
    assert res[:2].tolist() == [0.0, 1.0] and np.isnan(res[2:]).all()


# ------------------------------------------------------------------------ cached fast path
@pytest.mark.parametrize("size", [5, 300, 5000])  # below and above the small-group threshold
def test_fast_path_still_checks_every_call(table, size):
    rng = np.random.default_rng(size)
    good = rng.integers(1, 9, size=size)
    want = [_oracle(8, int(n)) for n in good]
    assert table.lookup(good, 8).tolist() == want          # first call: full path, caches K
    assert table.lookup(good, 8).tolist() == want          # second call: fast path
    assert table.lookup(good.reshape(-1, 1), 8).shape == (size, 1)
    for bad_value, where in ((0, "min"), (-1, "min"), (-9, "min"), (9, "max"), (10**12, "max")):
        bad = good.copy()
        bad[size // 2] = bad_value
        with pytest.raises(ValueError, match=rf"counts\[{size // 2}\] = {bad_value} \(first offending "
                                             rf"entry; {where}"):
            table.lookup(bad, 8)
    u = good.astype(np.uint64)
    u[-1] = 2**64 - 1
    with pytest.raises(ValueError, match="18446744073709551615"):
        table.lookup(u, 8)
    assert table.lookup(good.astype(np.uint8), 8).tolist() == want
    assert table.lookup(np.zeros(0, dtype=np.int64), 8).shape == (0,)
