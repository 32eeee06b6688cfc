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
    assert set(PEERS) == {"plugin", "digamma", "laplace", "jackknife"}


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
