"""The runtime's precision guard against independent oracles.

Oracles: the weighted bias beta = sup_p p |sum_m c[m+1] b_{K-1,m}(p) - log p| of the values
actually served (float64 or float32, converted exactly to rationals), evaluated in mpmath at 60
digits on a theta grid refined around its maximum (``_kl_oracles.mp_beta``) -- a lower bound on
the sup that owes nothing to aqpgen's metrics or certificates; and exact rationals
(fractions.Fraction) for a synthetic row whose bias is known in closed form.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from _kl_oracles import mp_beta

from aqpgen import runtime
from aqpgen.records import KResult
from aqpgen.runtime import ImpreciseRowError
from aqpgen.store.content import make_table
from aqpgen.store.tablefile import write_table


def sampled_beta(values) -> float:
    """Lower bound on beta of the served ``values`` for log p: the shared mpmath oracle
    ``_kl_oracles.mp_beta`` (60 digits, 600-point theta grid + golden-section refinement) on
    the exact rationals of the floats."""
    return mp_beta([Fraction(float(v)) for v in values], n=600, dps=60)


@pytest.fixture(scope="module")
def minimax():
    return runtime.load_table("kl-minimax")


def test_kl_minimax_K128_refused_by_default(minimax):
    counts = np.array([1, 2, 3, 128])
    with pytest.raises(ImpreciseRowError) as exc:
        minimax.lookup(counts, 128)
    msg = str(exc.value)
    assert "row K=128 of table 'kl-minimax' served as float64" in msg
    assert "beta_cert = 1.99e-05" in msg and "allow_imprecise=True" in msg
    assert isinstance(exc.value, ValueError)
    out = minimax.lookup(counts, 128, allow_imprecise=True)
    assert out.tolist() == [minimax.values(128)[n - 1] for n in counts]
    with pytest.raises(ImpreciseRowError):
        minimax.rewards(["a"] * 128)


@pytest.mark.parametrize("K,dtype", [(64, np.float64), (56, np.float64), (32, np.float32)])
def test_refused_rows_are_really_broken(minimax, K, dtype):
    """Where the guard refuses, the served values' bias truly exceeds the allowed bound."""
    pr = minimax.precision(K, dtype)
    assert not pr.ok and pr.certified
    with pytest.raises(ImpreciseRowError, match=rf"K={K}"):
        minimax.lookup(np.array([1, K]), K, dtype=dtype)
    served = minimax.values(K).astype(dtype)
    true_beta = sampled_beta(served)
    assert true_beta > pr.allowed, (true_beta, pr)
    assert true_beta <= pr.bound * (1 + 1e-9)  # the bound is an upper bound


@pytest.mark.parametrize("K,dtype", [(48, np.float64), (24, np.float64), (16, np.float32),
                                     (8, np.float32)])
def test_served_rows_keep_their_certificate(minimax, K, dtype):
    pr = minimax.precision(K, dtype)
    assert pr.ok
    served = minimax.values(K).astype(dtype)
    true_beta = sampled_beta(served)
    assert true_beta <= pr.bound * (1 + 1e-9) <= pr.allowed * (1 + 1e-9)
    assert true_beta >= 0.98 * pr.certificate  # the certificate is tight (within 2%)
    assert minimax.lookup(np.array([1, K]), K, dtype=dtype).dtype == dtype


def test_served_Ks_of_shipped_tables(minimax):
    s64, s32 = minimax.served_Ks(), minimax.served_Ks(np.float32)
    assert 50 in s64 and 51 not in s64 and not any(K > 52 for K in s64)
    assert max(s32) == 17 and 32 not in s32
    rho1 = runtime.load_table("kl-aqp-rho1")
    assert rho1.served_Ks("float32") == tuple(K for K in rho1.Ks if rho1.status[K] == "ok")
    p2 = runtime.load_table("power-m2")  # exact rows: float32 rounding is all they lose
    assert p2.precision(1024, "float32").ok and p2.precision(1024).certificate == 0.0


def _synthetic(tmp_path, delta: float, beta_cert: float = 1e-6, K: int = 6):
    """Row c[n] = (n-1)/(K-1) (exact for target p), hp strings exact; float64 value of c[m*+1]
    perturbed by ``delta``; stored beta_cert but no beta_f64 (the guard parses the strings)."""
    exact = [Fraction(n - 1, K - 1) for n in range(1, K + 1)]
    vals = np.array([float(x) for x in exact])
    vals[2] += delta
    hp = tuple(str(Decimal(x.numerator) / x.denominator) for x in exact)  # exact decimals (K=6)
    row = KResult(K=K, values=vals, values_hp=hp, metrics={"beta_cert": beta_cert}, status="ok")
    td = make_table(name="synthetic", family="power", target="p", method="ustat", params={},
                    provenance={}, results=[row])
    path = tmp_path / "synthetic.h5"
    write_table(path, td)
    return runtime.load_table(path), exact


def test_decimal_path_against_exact_rationals(tmp_path):
    K, delta = 6, 1e-3
    t, _ = _synthetic(tmp_path, delta, K=K)
    pr = t.precision(K)
    assert not pr.ok and "max|c_hp - c_f64|" in pr.how
    # exact bias of the served row: p * delta * C(5,2) p^2 (1-p)^3, maximal at p = 3/6
    served = [Fraction(v) for v in t.values(K)]
    p = Fraction(1, 2)
    mean = sum(served[m] * math.comb(K - 1, m) * p**m * (1 - p) ** (K - 1 - m) for m in range(K))
    true_bias = float(p * abs(mean - p))
    assert true_bias > pr.allowed and true_bias <= pr.bound
    assert abs(pr.bound - (1e-6 + delta)) < 1e-12
    t_ok, _ = _synthetic(tmp_path, 0.0, K=K)
    assert t_ok.precision(K).ok  # the correctly rounded row stays within 1e-6 (+ 1%)
    assert t_ok.precision(K).bound - 1e-6 < 1e-16


def test_uncertified_rows_are_served_and_say_so(tmp_path):
    row = KResult(K=3, values=np.array([0.0, 0.5, 1.0]), metrics={"V1": 0.1}, status="ok")
    td = make_table(name="nocert", family="power", target="p", method="ustat", params={},
                    provenance={}, results=[row])
    write_table(tmp_path / "nocert.h5", td)
    t = runtime.load_table(tmp_path / "nocert.h5")
    pr = t.precision(3, "float16")
    assert pr.ok and not pr.certified and math.isnan(pr.bound) and "no certificate" in pr.how


def test_dtype_names_and_errors(minimax):
    assert minimax.precision(8, "float32") == minimax.precision(8, np.float32)
    with pytest.raises(TypeError, match="floating dtype"):
        minimax.precision(8, np.int32)


def test_torch_and_bfloat16(minimax):
    torch = pytest.importorskip("torch")
    with pytest.raises(ImpreciseRowError, match="served as float32"):
        minimax.lookup(torch.tensor([1, 2]), 32, dtype=torch.float32)
    assert minimax.lookup(torch.tensor([1, 2]), 32).dtype == torch.float64  # float64 serves K=32
    from aqpgen.runtime.precision import row_precision

    # bfloat16 bound computed through numpy equals the distance torch's own rounding gives
    v = minimax.values(8)
    d_torch = float((torch.from_numpy(v.copy()) - torch.from_numpy(v.copy()).to(torch.bfloat16)
                     .double()).abs().max())
    pr = row_precision(8, "bfloat16", {"beta_cert": 0.0, "beta_f64": 0.0}, v)
    assert d_torch <= pr.bound
