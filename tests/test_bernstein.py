"""Tests of aqpgen.bernstein against independent oracles (math.comb, Fractions, sympy, mpmath)."""

import math
from fractions import Fraction

import flint
import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from aqpgen.numerics import bernstein as bn


@pytest.fixture(autouse=True)
def _reset_precision():
    old = flint.ctx.prec
    yield
    assert flint.ctx.prec == old, "a function left flint.ctx.prec changed"
    flint.ctx.prec = old


@pytest.mark.parametrize("N", [0, 1, 2, 7, 20])
def test_binom_pmf_matches_math_comb(N):
    ps = [0.0, 0.125, 0.3, 0.5, 0.9, 1.0]
    B = bn.binom_pmf(N, ps)
    assert B.shape == (len(ps), N + 1)
    for i, p in enumerate(ps):
        pf = Fraction(p)
        exact = [math.comb(N, m) * pf**m * (1 - pf) ** (N - m) for m in range(N + 1)]
        np.testing.assert_allclose(B[i], [float(e) for e in exact], rtol=1e-14, atol=0)


@pytest.mark.parametrize("N", [1, 63, 255, 1023])
def test_binom_pmf_rows_sum_to_one_and_endpoints(N):
    p = np.concatenate([[0.0, 1.0, 1e-300, 1 - 1e-16], np.linspace(0, 1, 101)])
    B = bn.binom_pmf(N, p)
    assert np.all(np.isfinite(B)) and np.all(B >= 0)
    np.testing.assert_allclose(B.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert B[0, 0] == 1.0 and B[1, N] == 1.0


def test_binom_pmf_large_N_accuracy_mpmath():
    N = 1023
    p = np.array([0.001, 0.25, 0.5, 0.77, 0.999])
    B = bn.binom_pmf(N, p)
    with mp.workdps(40):
        for i, pi in enumerate(p):
            for m in (0, 1, int(N * pi), N // 2, N - 1):
                ex = mp.binomial(N, m) * mp.mpf(pi) ** m * (1 - mp.mpf(pi)) ** (N - m)
                if ex > 1e-300:
                    assert abs(B[i, m] - ex) <= 2e-12 * ex


def test_bad_input_messages():
    with pytest.raises(ValueError, match="p must lie in"):
        bn.binom_pmf(3, [0.5, 1.5])
    with pytest.raises(TypeError, match="N must be an integer"):
        bn.binom_pmf(2.5, [0.5])
    with pytest.raises(ValueError, match="values\\[1\\]"):
        bn.exact_values(["1", "abc"])


def test_mean_variance_small_K_sympy():
    K = 4
    c = [Fraction(-3, 2), Fraction(1, 4), Fraction(2), Fraction(5, 8)]
    x = sp.symbols("x")
    b = [sp.binomial(K - 1, m) * x**m * (1 - x) ** (K - 1 - m) for m in range(K)]
    g = sum(sp.Rational(ci.numerator, ci.denominator) * bi for ci, bi in zip(c, b))
    s2 = sum(sp.Rational(ci.numerator, ci.denominator) ** 2 * bi for ci, bi in zip(c, b))
    ps = [0.0, 0.1, 0.5, 0.8, 1.0]
    vals = np.array([float(ci) for ci in c])
    np.testing.assert_allclose(bn.mean_poly(vals, ps), [float(g.subs(x, sp.Float(p, 30))) for p in ps],
                               rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(bn.second_moment(vals, ps),
                               [float(s2.subs(x, sp.Float(p, 30))) for p in ps], rtol=1e-14)
    np.testing.assert_allclose(bn.variance(vals, ps),
                               [float((s2 - g**2).subs(x, sp.Float(p, 30))) for p in ps],
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("K", [2, 3, 10, 64])
def test_chebyshev_exact_of_p_squared(K):
    # c_n = (n-1)/(K-1): g = p, P = p^2 = 3/8 + x/2 + T_2(x)/8 with x = 2p - 1
    c = [Fraction(n - 1, K - 1) for n in range(1, K + 1)]
    a = bn.to_chebyshev_exact(c)
    assert len(a) == K + 1
    expect = [Fraction(3, 8), Fraction(1, 2), Fraction(1, 8)] + [Fraction(0)] * (K - 2)
    assert [Fraction(int(q.p), int(q.q)) for q in a] == expect


def test_chebyshev_exact_random_table_against_sympy():
    K = 6
    rng = np.random.default_rng(1)
    vals = rng.normal(size=K)
    a = bn.to_chebyshev_exact(vals)
    x = sp.symbols("x")
    p = (1 + x) / 2
    P = sum(sp.Rational(Fraction(float(v))) * sp.binomial(K - 1, m) * p ** (m + 1) * (1 - p) ** (K - 1 - m)
            for m, v in enumerate(vals))
    Q = sum(sp.Rational(int(q.p), int(q.q)) * sp.chebyshevt(j, x) for j, q in enumerate(a))
    assert sp.expand(P - Q) == 0


def test_huge_alternating_table_hp_path():
    # Bernstein coefficients (degree K-1) of Q(p) = T_{K-1}(2p-1): huge, alternating, exact rationals.
    # Then P = p Q and its Chebyshev coefficients are moderate: p T_{K-1}(x) = (1+x)/2 T_{K-1}(x)
    # = T_{K-1}/2 + (T_K + T_{K-2})/4.
    K = 120
    y = sp.symbols("y")
    Qpoly = sp.Poly(sp.expand(sp.chebyshevt(K - 1, 2 * y - 1)), y)
    mono = [Fraction(int(c)) for c in reversed(Qpoly.all_coeffs())]  # low -> high
    N = K - 1
    # Bernstein coefficients from monomial: beta_m = sum_{i<=m} C(m,i)/C(N,i) mono_i
    bern = [sum(Fraction(math.comb(m, i), math.comb(N, i)) * mono[i] for i in range(m + 1))
            for m in range(N + 1)]
    assert max(abs(b) for b in bern) > 1e30
    strs = [f"{b.numerator}/{b.denominator}" for b in bern]
    a = bn.to_chebyshev_exact(strs)
    expect = [Fraction(0)] * (K + 1)
    expect[K - 1] += Fraction(1, 2)
    expect[K] += Fraction(1, 4)
    expect[K - 2] += Fraction(1, 4)
    assert [Fraction(int(q.p), int(q.q)) for q in a] == expect
    af, err = bn.to_chebyshev_f64(strs)
    assert np.all(np.abs(af - [float(e) for e in expect]) <= err)
    balls = bn.to_chebyshev_arb(strs, 128)
    assert all(bl.contains(flint.fmpq(e.numerator, e.denominator)) for bl, e in zip(balls, expect))
    # Clenshaw evaluation of the moderate coefficients matches the exact polynomial
    ps = np.linspace(0, 1, 7)
    with mp.workdps(50):
        ex = [float(mp.mpf(pi) * mp.chebyt(K - 1, 2 * mp.mpf(pi) - 1)) for pi in ps]
    np.testing.assert_allclose(bn.mean_poly_cheb(af, ps), ex, atol=1e-12)


def test_decimal_strings_are_exact():
    a = bn.exact_values(["0.1", "-2.5e-3", "1/3", 0.5])
    assert a[0] == flint.fmpq(1, 10) and a[1] == flint.fmpq(-1, 400) and a[2] == flint.fmpq(1, 3)


def test_mean_poly_cheb_matches_bernstein_moderate():
    K = 200
    vals = np.log(np.arange(1, K + 1) / K)
    a, _ = bn.to_chebyshev_f64(vals)
    p = np.linspace(0, 1, 301)
    np.testing.assert_allclose(bn.mean_poly_cheb(a, p), p * bn.mean_poly(vals, p), atol=1e-12)
