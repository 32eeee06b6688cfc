"""Tests of aqpgen.peers against closed forms computed independently (mpmath, Fractions)."""

from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from aqpgen.generators.peers import PEERS, digamma_table_exact, peer_table


@pytest.mark.parametrize("K", [1, 2, 5, 33])
def test_closed_forms(K):
    n = range(1, K + 1)
    with mp.workdps(30):
        plug = [float(mp.log(mp.mpf(i) / K)) for i in n]
        lap = [float(mp.log((i - mp.mpf(1) / 2) / K)) for i in n]
        dig = [float(mp.digamma(i) - mp.digamma(K)) for i in n]
    np.testing.assert_array_equal(peer_table("plugin", K), plug)
    np.testing.assert_array_equal(peer_table("laplace", K), lap)
    np.testing.assert_allclose(peer_table("digamma", K), dig, rtol=2e-16, atol=0)


def test_digamma_exact_sum():
    K = 7
    ex = digamma_table_exact(K)
    assert ex[K - 1] == 0 and ex[0] == -sum(Fraction(1, j) for j in range(1, K))
    assert ex[3] == -sum(Fraction(1, j) for j in range(4, K))


def test_jackknife_definition():
    K, n = 10, 3
    th = np.log(n / K)
    bar = ((n - 1) * np.log((n - 1) / (K - 1)) + (K - n) * np.log(n / (K - 1))) / (K - 1)
    assert abs(peer_table("jackknife", K)[n - 1] - ((K - 1) * th - (K - 2) * bar)) < 1e-14
    # n = 1: no "same" deletions; n = K: no "other" deletions
    th1 = np.log(1 / K)
    bar1 = np.log(1 / (K - 1))
    assert abs(peer_table("jackknife", K)[0] - ((K - 1) * th1 - (K - 2) * bar1)) < 1e-14
    assert peer_table("jackknife", K)[K - 1] == 0.0
    np.testing.assert_array_equal(peer_table("jackknife", 2), peer_table("plugin", 2))
    np.testing.assert_array_equal(peer_table("jackknife", 1), [0.0])


def test_errors():
    with pytest.raises(ValueError, match="name must be one of"):
        peer_table("nope", 4)
    with pytest.raises(ValueError, match="K must be an integer >= 1"):
        peer_table("plugin", 0)
    with pytest.raises(TypeError, match="K must be an integer"):
        peer_table("plugin", 2.5)
    assert set(PEERS) == {"plugin", "digamma", "laplace", "jackknife", "grassberger"}


def test_digamma_bias_closed_form():
    # bias of the digamma table: g_c(p) - log p = sum_{j>=K} (1-p)^j / j  (evaluated exactly in mpmath)
    K = 12
    c = digamma_table_exact(K)
    with mp.workdps(40):
        for p in ["0.03", "0.3", "0.8"]:
            pm = mp.mpf(p)
            g = sum(mp.mpf(ci.numerator) / ci.denominator * mp.binomial(K - 1, m) * pm**m
                    * (1 - pm) ** (K - 1 - m) for m, ci in enumerate(c))
            tail = mp.nsum(lambda j, q=1 - pm: q**j / j, [K, mp.inf])
            assert abs((g - mp.log(pm)) - tail) < mp.mpf(10) ** -30


@pytest.mark.parametrize("K", [1, 2, 7, 8, 40])
def test_grassberger_integral_form(K):
    """G(n) - log K against the integral form G(n) = psi(n) + (-1)^n int_0^1 t^(n-1)/(1+t) dt
    (quadrature, not the digamma half-arguments the code uses), and the closed forms
    G(1) = -gamma - log 2, G(2) = G(3) = 2 - gamma - log 2."""
    got = peer_table("grassberger", K)
    with mp.workdps(40):
        want = [float(mp.digamma(n) + (-1) ** n * mp.quad(lambda t: t ** (n - 1) / (1 + t), [0, 1])
                      - mp.log(K)) for n in range(1, K + 1)]
        g1 = float(-mp.euler - mp.log(2) - mp.log(K))
        g2 = float(2 - mp.euler - mp.log(2) - mp.log(K))
    np.testing.assert_allclose(got, want, rtol=4e-16, atol=1e-300)
    assert got[0] == g1
    if K >= 3:
        assert got[1] == got[2] == g2


def test_grassberger_at_p_one_depends_on_parity():
    """At p = 1 (n = K always) the table's error is c_K[K] = G(K) - log K: about 1/(6K^2) for
    even K and about -1/K for odd K (docs/MATH.md §7), from the asymptotic series of psi."""
    for K in (64, 256):
        assert peer_table("grassberger", K)[-1] == pytest.approx(1 / (6 * K * K), rel=0.02)
    for K in (65, 257):
        assert peer_table("grassberger", K)[-1] == pytest.approx(-1 / K, rel=0.02)
