"""Peers of p^a (aqpgen.generators.peers_power) against independent oracles.

Oracles: exact falling-factorial U-statistic tables (integer a), the binomial series evaluated
directly in mpmath (the "series" table's mean is its degree-(K-1) truncation), a brute-force
leave-one-out jackknife over an explicit sample list, and bias expansions in 1/K at a fixed p.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from aqpgen.generators.peers import peer_table
from aqpgen.generators.peers_power import (
    POWER_PEERS,
    power_peer_table,
    power_peer_table_mp,
)
from aqpgen.targets import LOG, PowerTarget


def mp_mean(c, p):
    """g_c(p) = sum_m c[m+1] b_{K-1,m}(p) in mpmath (Bernstein form, direct)."""
    K = len(c)
    return mp.fsum(mp.mpf(c[m]) * mp.binomial(K - 1, m) * p**m * (1 - p) ** (K - 1 - m)
                   for m in range(K))


@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_series_is_exact_power_table_for_integer_a(m):
    K = 7
    exact = [Fraction(math.perm(n - 1, m), math.perm(K - 1, m)) for n in range(1, K + 1)]
    assert np.array_equal(power_peer_table("series", K, PowerTarget(m)), [float(x) for x in exact])


@pytest.mark.parametrize("a", ["0.5", "-0.5", "0.25"])
@pytest.mark.parametrize("K", [2, 5, 11])
def test_series_mean_is_truncated_binomial_series(a, K):
    with mp.workdps(40):
        c = power_peer_table_mp("series", K, f"p^{a}")
        am = mp.mpf(a)
        for p in (mp.mpf("0.05"), mp.mpf("0.4"), mp.mpf("0.93")):
            q = 1 - p
            trunc = mp.fsum(mp.binomial(am, j) * (-q) ** j for j in range(K))
            assert abs(mp_mean(c, p) - trunc) < mp.mpf(10) ** -30


def test_series_log_analogue_is_digamma():
    """The same recurrence with the log series coefficients -1/j gives psi(n) - psi(K)."""
    K = 9
    dig = peer_table("digamma", K)
    for n in range(1, K + 1):
        s, r = Fraction(0), Fraction(1)
        for j in range(1, K - n + 1):
            r = r * (K - n - j + 1) / (K - j)
            s -= r / j
        assert float(s) == pytest.approx(dig[n - 1], rel=1e-15, abs=1e-16)


@pytest.mark.parametrize("a", ["0.5", "-0.5", "1.5"])
@pytest.mark.parametrize("K", [1, 2, 3, 8])
def test_jackknife_brute_force(a, K):
    """Leave one of the K-1 others out of an explicit sample list; recompute the plug-in."""
    T = PowerTarget(a)
    tab = power_peer_table("jackknife", K, T)
    for n in range(1, K + 1):
        others = [1] * (n - 1) + [0] * (K - n)  # 1 = same answer as the completion
        theta = (n / K) ** T.a
        if K <= 2:
            assert tab[n - 1] == pytest.approx(theta, rel=1e-14)
            continue
        loo = [((1 + sum(others) - o) / (K - 1)) ** T.a for o in others]
        jack = (K - 1) * theta - (K - 2) * sum(loo) / (K - 1)
        assert tab[n - 1] == pytest.approx(jack, rel=1e-12)


def test_plugin_and_laplace_values():
    T = PowerTarget("-0.5")
    assert np.array_equal(power_peer_table("plugin", 4, T), [0.25**-0.5, 0.5**-0.5, 0.75**-0.5, 1.0])
    assert power_peer_table("laplace", 4, T)[0] == pytest.approx((0.5 / 4) ** -0.5, rel=1e-15)
    # the plug-in agrees with the Target's own plug-in up to float64 rounding of n/K
    assert np.allclose(power_peer_table("plugin", 9, T), T.plugin(9), rtol=2e-16)


@pytest.mark.parametrize("a", ["0.5", "-0.5", "1.5"])
def test_delta_and_jackknife_remove_the_1_over_K_bias(a):
    """At a fixed interior p the plug-in's bias is ~ c1/K; the corrected peers' is O(1/K^2)."""
    p = mp.mpf("0.3")
    am = mp.mpf(a)
    with mp.workdps(40):
        K_bias = {}
        for name in ("plugin", "delta", "jackknife"):
            K_bias[name] = [K * (mp_mean(power_peer_table_mp(name, K, f"p^{a}"), p) - p**am)
                            for K in (32, 64, 128)]
    pl = K_bias["plugin"]
    assert abs(pl[2] - pl[1]) < 0.6 * abs(pl[1] - pl[0]) + 1e-30  # K * bias converges
    assert abs(pl[2]) > 1e-3
    for name in ("delta", "jackknife"):
        kb = K_bias[name]
        assert abs(kb[2]) < 0.6 * abs(kb[1]) and abs(kb[2]) < 0.1 * abs(pl[2])  # K bias -> 0


def test_bad_input():
    with pytest.raises(ValueError, match="name"):
        power_peer_table("digamma", 4, "p^0.5")
    with pytest.raises(ValueError, match="K"):
        power_peer_table("plugin", 0, "p^0.5")
    with pytest.raises(TypeError, match="K"):
        power_peer_table("plugin", 2.5, "p^0.5")
    with pytest.raises(TypeError, match="p\\^a"):
        power_peer_table("plugin", 4, LOG)
    with pytest.raises(ValueError, match="exponent"):
        power_peer_table("plugin", 4, "p^-1")
    with pytest.raises(ValueError, match="prec"):
        power_peer_table_mp("plugin", 4, "p^0.5", prec=5)
    assert set(POWER_PEERS) == {"plugin", "laplace", "jackknife", "delta", "series"}
