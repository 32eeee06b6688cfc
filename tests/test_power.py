"""Tests for aqpgen.power against independent oracles (sympy, direct exact Bernstein sums)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aqpgen.generators import power
from aqpgen.records import KResult

P = sp.Symbol("p")


def _bernstein_mean_exact(values, K, p: Fraction) -> Fraction:
    """g_c(p) = sum_m c[m+1] C(K-1,m) p^m (1-p)^(K-1-m), directly in Fractions (oracle)."""
    return sum((Fraction(v) * math.comb(K - 1, m) * p**m * (1 - p) ** (K - 1 - m)
                for m, v in enumerate(values)), Fraction(0))


def _poly_exact(coeffs, p: Fraction) -> Fraction:
    return sum((Fraction(a) * p**i for i, a in enumerate(coeffs)), Fraction(0))


# ------------------------------------------------------------------------ symbolic oracle
@pytest.mark.parametrize("K", range(1, 8))
def test_falling_factorial_identity_symbolic(K):
    """E[(n-1)_m/(K-1)_m] = p^m for n-1 ~ Binomial(K-1, p), with sympy's binomial pmf."""
    for m in range(K):
        mean = sum(sp.binomial(K - 1, j) * P**j * (1 - P) ** (K - 1 - j)
                   * sp.ff(j, m) / sp.ff(K - 1, m) for j in range(K))
        assert sp.simplify(mean - P**m) == 0


@pytest.mark.parametrize("K", range(1, 8))
def test_table_mean_symbolic(K):
    """The code's tables have mean exactly p^m (sympy expansion, independent of mean_poly_exact)."""
    for m in range(K):
        table = power.ustat_table_exact(m, K)
        mean = sum(sp.Rational(c.numerator, c.denominator) * sp.binomial(K - 1, j)
                   * P**j * (1 - P) ** (K - 1 - j) for j, c in enumerate(table))
        assert sp.expand(mean - P**m) == 0
        coeffs = power.mean_poly_exact(table, K)
        assert sp.Poly(sp.expand(mean), P).all_coeffs()[::-1] == [
            sp.Rational(c.numerator, c.denominator) for c in coeffs[: m + 1]]


def test_mean_poly_matches_sympy_random_values():
    rng = np.random.default_rng(0)
    for K in (1, 2, 5, 9):
        vals = [Fraction(int(a), int(b)) for a, b in zip(rng.integers(-50, 50, K), rng.integers(1, 9, K))]
        expr = sp.expand(sum(sp.Rational(v.numerator, v.denominator) * sp.binomial(K - 1, j)
                             * P**j * (1 - P) ** (K - 1 - j) for j, v in enumerate(vals)))
        want = [expr.coeff(P, j) for j in range(K)]
        got = power.mean_poly_exact(vals, K)
        assert [sp.Rational(g.numerator, g.denominator) for g in got] == want


# ------------------------------------------------------------------------ closed forms
def test_gini_table():
    for K in (2, 3, 10, 64):
        table = power.poly_table_exact(["0", "2"], K)
        assert table == [Fraction(2 * (n - 1), K - 1) for n in range(1, K + 1)]
        assert power.verify_exact(table, ["0", "2"], K)


def test_m_too_large_error():
    with pytest.raises(ValueError, match=r"no unbiased table exists for p\^m with K samples: m=4, K=4"):
        power.ustat_table_exact(4, 4)
    with pytest.raises(ValueError, match="need m <= K-1"):
        power.build_K(3, {"m": 3})
    with pytest.raises(ValueError, match="degree 2"):
        power.poly_table_exact(["0", "0", "1"], 2)
    # trailing zeros do not raise the degree
    assert power.poly_table_exact(["1", "0", "0"], 1) == [Fraction(1)]


@pytest.mark.parametrize("bad", [{"m": -1}, {"m": 1.5}, {"m": True}, {}, {"m": 1, "coeffs": ["1"]},
                                 {"coeffs": []}, {"coeffs": "12"}, {"coeffs": ["x"]}])
def test_bad_params(bad):
    with pytest.raises((ValueError, TypeError)):
        power.build_K(4, bad)


def test_float_coefficients_refused():
    with pytest.raises(TypeError, match="as strings"):
        power.poly_table_exact([0.5], 3)


def test_target_name():
    assert power.target_name({"m": 2}) == "p^2"
    assert power.target_name({"m": 1}) == "p"
    assert power.target_name({"m": 0}) == "1"
    assert power.target_name({"coeffs": ["0", "2"]}) == "2p"
    assert power.target_name({"coeffs": ["1/3", "0", "-2", "1"]}) == "1/3 - 2p^2 + p^3"
    assert power.target_name({"coeffs": ["0", "-1/2"]}) == "-(1/2)p"
    assert power.target_name({"coeffs": ["0"]}) == "0"


# ------------------------------------------------------------------------ properties
@st.composite
def _K_m(draw):
    K = draw(st.integers(1, 40))
    return K, draw(st.integers(0, K - 1))


@settings(max_examples=60, deadline=None)
@given(_K_m(), st.fractions(min_value=0, max_value=1, max_denominator=50))
@example((1, 0), Fraction(1, 3))
@example((2, 1), Fraction(0))
@example((7, 0), Fraction(1))
@example((7, 6), Fraction(2, 7))
def test_ustat_unbiased_at_rational_points(Km, p):
    K, m = Km
    table = power.ustat_table_exact(m, K)
    assert len(table) == K
    assert _bernstein_mean_exact(table, K, p) == p**m
    target = [0] * m + [1]
    assert power.verify_exact(table, target, K)
    assert power.mean_poly_exact(table, K) == [Fraction(int(j == m)) for j in range(K)]


_rationals = st.fractions(min_value=-10, max_value=10, max_denominator=30)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.lists(_rationals, min_size=1, max_size=8), st.data())
@example(1, [Fraction(3, 7)], None)
def test_poly_table_exact_unbiased(K, coeffs, data):
    coeffs = coeffs[:K]
    strs = [str(c) for c in coeffs]
    table = power.poly_table_exact(strs, K)
    for p in (Fraction(0), Fraction(1), Fraction(2, 9), Fraction(5, 7)):
        assert _bernstein_mean_exact(table, K, p) == _poly_exact(coeffs, p)
    assert power.verify_exact(table, strs, K)
    # linearity: sum of scaled monomial tables
    lin = [sum((c * power.ustat_table_exact(i, K)[n] for i, c in enumerate(coeffs)), Fraction(0))
           for n in range(K)]
    assert lin == table
    # any perturbation breaks exactness
    if data is not None:
        n = data.draw(st.integers(0, K - 1))
        bumped = list(table)
        bumped[n] += Fraction(1, 10**12)
        assert not power.verify_exact(bumped, strs, K)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fractions(min_value=-1000, max_value=1000, max_denominator=10**9), min_size=1, max_size=20))
@example([Fraction(1, 3), Fraction(2, 3), Fraction(0), Fraction(1, 10)])
def test_to_float64_correctly_rounded(fracs):
    xs = power.to_float64(fracs)
    assert xs.dtype == np.float64
    for x, f in zip(xs, fracs):
        err = abs(Fraction(float(x)) - f)
        for nb in (np.nextafter(x, np.inf), np.nextafter(x, -np.inf)):
            e2 = abs(Fraction(float(nb)) - f)
            assert err < e2 or (err == e2 and (int(np.float64(x).view(np.int64)) & 1) == 0)


# ------------------------------------------------------------------------ generator interface
def test_build_K_and_verify_row_small():
    r = power.build_K(3, {"m": 2})
    assert isinstance(r, KResult) and r.status == "ok"
    assert list(r.values) == [0.0, 0.0, 1.0]
    assert r.values_hp == ("0/1", "0/1", "1/1")
    # p·Var_p = p(p^2 - p^4): max at p^2 = 3/5 -> (3/5)^(3/2)·(2/5); V1 = 1/4 - 1/6 = 1/12
    assert r.metrics["V_inf"] == pytest.approx(0.6**1.5 * 0.4, rel=1e-9)
    assert r.metrics["V_inf"] <= 0.6**1.5 * 0.4 * (1 + 1e-15)
    assert r.metrics["V1"] == float(Fraction(1, 12))
    assert r.metrics["exact"] == 1.0 and r.metrics["err_f64"] == 0.0
    checks = power.verify_row(3, r.values, r.values_hp, r.metrics, {"m": 2})
    assert checks and all(c.ok for c in checks), checks


@pytest.mark.parametrize("K,params", [(7, {"m": 3}), (12, {"coeffs": ["1/3", "2", "-1/7"]}),
                                      (5, {"coeffs": ["0", "2"]})])
def test_V1_matches_sympy_integral(K, params):
    r = power.build_K(K, params)
    c = [sp.Rational(*map(int, s.split("/"))) for s in r.values_hp]
    g = sum(sp.Rational(str(a)) * P**i for i, a in enumerate(power.target_coeffs(params)))
    second = sum(v**2 * sp.binomial(K - 1, j) * P**j * (1 - P) ** (K - 1 - j) for j, v in enumerate(c))
    V1 = sp.integrate(sp.expand(P * (second - g**2)), (P, 0, 1))
    assert r.metrics["V1"] == float(V1)
    # V_inf is a sampled sup: close to, and not above, a fine-grid sympy-free evaluation bound
    pg = np.linspace(0, 1, 20001)
    f = sp.lambdify(P, sp.expand(P * (second - g**2)), "numpy")(pg)
    assert r.metrics["V_inf"] == pytest.approx(f.max(), rel=1e-6)


def test_err_f64_bounds_rounding():
    r = power.build_K(10, {"coeffs": ["1/3", "1/7"]})
    exact = [Fraction(s) for s in r.values_hp]
    actual = max(abs(Fraction(float(v)) - e) for v, e in zip(r.values, exact))
    assert Fraction(r.metrics["err_f64"]) >= actual
    assert r.metrics["err_f64"] <= float(actual) * (1 + 1e-15) + 1e-300


def test_verify_row_detects_tampering():
    K, params = 9, {"m": 2}
    r = power.build_K(K, params)
    hp = list(r.values_hp)
    hp[4] = "1/2"
    checks = {c.name: c for c in power.verify_row(K, r.values, hp, r.metrics, params)}
    assert not checks["power.values_hp"].ok and "n=5" in checks["power.values_hp"].detail
    assert not checks["power.unbiased"].ok
    v = r.values.copy()
    v[3] = np.nextafter(v[3], 2.0)
    checks = {c.name: c for c in power.verify_row(K, v, r.values_hp, r.metrics, params)}
    assert not checks["power.float64"].ok and checks["power.values_hp"].ok
    checks = {c.name: c for c in power.verify_row(K, r.values, None, r.metrics, params)}
    assert not checks["power.values_hp"].ok
    # bytes (as read from HDF5) are accepted
    hpb = [s.encode("ascii") for s in r.values_hp]
    assert all(c.ok for c in power.verify_row(K, r.values, hpb, r.metrics, params))


def test_verify_at_K_1024():
    """verify_row passes a correct K = 1024 row (its cost is measured by ``make bench``, not here)."""
    K, params = 1024, {"m": 4}
    r = power.build_K(K, params)
    checks = power.verify_row(K, r.values, r.values_hp, r.metrics, params)
    assert checks and all(c.ok for c in checks), checks
