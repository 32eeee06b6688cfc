"""Tests of aqpgen.metrics against independent oracles (exact Beta integrals, sympy, mpmath)."""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from _kl_oracles import (  # noqa: F401
    exact_V1,
    interp_table,
    mp_beta,
    mp_pvar_max,
    reset_precision,
)

from aqpgen.generators.peers import PEERS, peer_table
from aqpgen.numerics.metrics import (
    kl_metrics,
    variance_mean,
    variance_sup,
    weighted_bias,
)


@pytest.mark.parametrize("K", [2, 3, 4])
def test_V1_sympy_exact(K):
    v = peer_table("laplace", K)
    x = sp.symbols("x")
    c = [sp.Rational(Fraction(float(t))) for t in v]
    b = [sp.binomial(K - 1, m) * x**m * (1 - x) ** (K - 1 - m) for m in range(K)]
    g = sum(ci * bi for ci, bi in zip(c, b))
    var = sum(ci**2 * bi for ci, bi in zip(c, b)) - g**2
    exact = sp.integrate(sp.expand(x * var), (x, 0, 1))
    assert abs(variance_mean(v, K) - float(exact)) <= 1e-14 * abs(float(exact)) + 1e-16


@pytest.mark.parametrize("name", PEERS)
def test_V1_exact_beta_integrals(name):
    K = 24
    v = peer_table(name, K)
    ex = float(exact_V1([Fraction(float(t)) for t in v]))
    assert abs(variance_mean(v, K) - ex) <= 1e-12 * ex


def test_V1_hp_table_exact():
    K = 30
    c = interp_table(K)
    strs = [f"{t.numerator}/{t.denominator}" for t in c]
    ex = exact_V1(c)
    got = variance_mean(None, K, values_hp=strs)
    assert abs(got - float(ex)) <= 1e-9 * float(ex)


@pytest.mark.parametrize("name", ["plugin", "digamma", "jackknife"])
@pytest.mark.parametrize("K", [2, 9])
def test_V_inf_against_mpmath(name, K):
    v = peer_table(name, K)
    got = variance_sup(v, K)
    ex = mp_pvar_max([Fraction(float(t)) for t in v])
    assert abs(got - ex) <= 1e-9 * ex


def test_weighted_bias_digamma_closed_form_pointwise():
    # e(p) = p sum_{j>=K} (1-p)^j/j for the digamma table, checked at the grid's argmax region
    K = 16
    v = peer_table("digamma", K)
    p = np.array([0.001, 0.02, 0.1, 0.5, 0.9])
    with mp.workdps(30):
        ex = [float(mp.mpf(pi) * (-mp.log(pi) - mp.fsum((1 - mp.mpf(pi)) ** j / j for j in range(1, K))))
              for pi in p]
    # weighted_bias on an explicit grid returns the max over it
    assert abs(weighted_bias(v, K, grid=p) - max(ex)) <= 1e-14
    oracle = mp_beta([Fraction(float(t)) for t in v], n=20 * (K + 1), dps=30)
    assert abs(weighted_bias(v, K) - oracle) <= 1e-3 * oracle


def test_kl_metrics_keys_and_consistency():
    K = 12
    v = peer_table("plugin", K)
    m = kl_metrics(K, v)
    assert set(m) == {"beta", "beta_cert", "V_inf", "V1", "max_abs_c",
                      "log10_V_inf", "log10_V1", "log10_max_abs_c"}
    assert m["beta"] <= m["beta_cert"] <= 1.01 * m["beta"]
    assert m["V1"] <= m["V_inf"]  # mean <= sup
    assert m["max_abs_c"] == math.log(K)
    for name in ("V_inf", "V1", "max_abs_c"):
        assert m["log10_" + name] == pytest.approx(math.log10(m[name]), rel=1e-12)


def test_kl_metrics_hp_path():
    K = 40
    c = interp_table(K)
    strs = [f"{t.numerator}/{t.denominator}" for t in c]
    vf = np.array([float(t) for t in c])
    m = kl_metrics(K, vf, strs)
    assert set(m) == {"beta", "beta_cert", "V_inf", "V1", "max_abs_c", "beta_f64",
                      "log10_V_inf", "log10_V1", "log10_max_abs_c"}
    oracle = mp_beta(c, n=20 * (K + 1), dps=60)
    assert m["beta"] <= oracle * (1 + 1e-9) and oracle <= m["beta_cert"] <= 1.01 * oracle
    assert m["beta_f64"] >= m["beta"]  # the rounded table is no better than the exact one here
    assert m["max_abs_c"] == pytest.approx(float(max(abs(t) for t in c)), rel=1e-15)
    assert m["V1"] == pytest.approx(float(exact_V1(c)), rel=1e-9)
    assert m["V_inf"] == pytest.approx(mp_pvar_max(c), rel=1e-9)
    assert m["V1"] <= m["V_inf"]


@pytest.mark.parametrize("name", PEERS)
def test_peers_beta_is_order_one_over_K(name):
    # measured, not assumed: K * beta stays within a factor 3 across K = 16..256
    kb = [K * weighted_bias(peer_table(name, K), K) for K in (16, 32, 64, 128, 256)]
    assert max(kb) <= 3 * min(kb)
    # and it is not O(1/K^2): K^2 beta grows
    assert 256 * kb[-1] > 8 * 16 * kb[0]


def test_errors():
    with pytest.raises(ValueError, match="shape"):
        weighted_bias([0.0, 1.0], 3)
    with pytest.raises(ValueError, match="values_hp must have K = 2"):
        variance_mean(None, 2, values_hp=["1"])
