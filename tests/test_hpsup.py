"""Metrics that are one double: suprema located in float64, evaluated in ball arithmetic.

Oracles: the closed form V_inf = 4 / (27 (K - 1)) of the unbiased table of p (exact rationals,
correctly rounded by Python's Fraction), an mpmath maximisation of the plug-in's weighted bias
(a second method: findroot on the derivative, 60 digits), the Remez levelled error E*_K of a
minimax table, and invariance of every stored double under a different sampling of the search and
under float noise in the samples (what a different numpy / BLAS build does to them)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from aqpgen.numerics import hpsup, metrics
from aqpgen.numerics.metrics import bias_sup, table_metrics, variance_sup


def _ustat_p(K):
    return np.arange(K, dtype=np.float64) / (K - 1)  # c_n = (n - 1)/(K - 1): unbiased for p


def _plugin_log(K):
    return np.log(np.arange(1, K + 1) / K)


def _jackknife_like(K):
    n = np.arange(1, K + 1, dtype=np.float64)
    return np.log(n / K) + (K - n) / (2.0 * n * K)


@pytest.mark.parametrize("K", [2, 3, 4, 7, 16, 33, 100, 257])
def test_vinf_of_the_unbiased_p_table_is_the_correctly_rounded_closed_form(K):
    # c_n = (n-1)/(K-1), n - 1 ~ Bin(K-1, p): p Var = p^2 (1 - p)/(K - 1), max at p = 2/3
    exact = Fraction(4, 27 * (K - 1))
    table = [f"{n}/{K - 1}" for n in range(K)]  # the exact table (floats would round 1/3, ...)
    assert variance_sup(None, K, values_hp=table) == float(exact)


def test_an_unbiased_polynomial_table_has_beta_exactly_zero():
    from aqpgen.generators.power import build_K

    r = build_K(9, {"m": 2})  # its exact strings: the float64 table itself is biased by ~1e-17
    assert bias_sup(None, 9, target="p^2", values_hp=r.values_hp) == 0.0
    assert table_metrics(9, r.values, r.values_hp, target="p^2")["beta"] == 0.0
    assert 0.0 < bias_sup(r.values, 9, target="p^2") < 1e-15


def _mp_weighted_bias_sup(c, K):
    """max_p p |g_c(p) - log p| by mpmath alone (60 digits): dense grid, then findroot on e'."""
    import mpmath as mp

    with mp.workdps(60):
        cs = [mp.mpf(float(x)) for x in c]

        def e(p):
            g = mp.fsum(cs[m] * mp.binomial(K - 1, m) * p**m * (1 - p) ** (K - 1 - m) for m in range(K))
            return p * (g - mp.log(p))

        grid = [mp.sin(mp.pi * j / 800) ** 2 for j in range(1, 800)]
        vals = [abs(e(p)) for p in grid]
        best = mp.mpf(0)
        for j in range(1, len(grid) - 1):
            if vals[j] >= vals[j - 1] and vals[j] >= vals[j + 1]:
                p = mp.findroot(lambda q: mp.diff(e, q), grid[j])
                best = max(best, abs(e(p)))
        return max(best, abs(e(mp.mpf(1))))


@pytest.mark.parametrize("K", [3, 6, 11])
def test_bias_sup_agrees_with_an_mpmath_maximisation(K):
    c = _plugin_log(K)
    ref = _mp_weighted_bias_sup(c, K)
    got = bias_sup(c, K)
    assert got <= float(ref) * (1 + 2**-52)
    assert abs(got - float(ref)) <= 2 * math.ulp(float(ref))


def test_bias_sup_of_a_minimax_table_is_its_levelled_error():
    import mpmath as mp

    from aqpgen.generators.minimax import minimax_table

    K = 12
    strings, _, res = minimax_table(K)
    b = bias_sup(None, K, values_hp=list(strings))
    E = float(mp.mpf(res.E_hp))
    assert abs(b - E) <= 1e-11 * E  # E*_K is known to the Remez tolerance (1e-12 relative)


TABLES = [("plugin", _plugin_log), ("jackknife", _jackknife_like), ("ustat-p", _ustat_p)]


@pytest.mark.parametrize("name,make", TABLES)
@pytest.mark.parametrize("K", [8, 33, 100])
def test_stored_doubles_do_not_depend_on_the_sampling_of_the_search(monkeypatch, name, make, K):
    c = make(K)
    target = "p^1" if name == "ustat-p" else "log"
    ref = (bias_sup(c, K, target=target), variance_sup(c, K))
    for ppo in (13, 31):
        monkeypatch.setattr(metrics, "POINTS_PER_OSCILLATION", ppo)
        assert (bias_sup(c, K, target=target), variance_sup(c, K)) == ref, ppo


@pytest.mark.parametrize("K", [8, 64])
def test_stored_doubles_do_not_depend_on_float_noise_in_the_samples(monkeypatch, K):
    """A different numpy / BLAS changes the sampled values in their last bits: simulated by
    relative noise of 1e-12 (a thousand times more than seen), the doubles stay the same."""
    c = _jackknife_like(K)
    ref = table_metrics(K, c)
    rng = np.random.default_rng(0)
    real = hpsup.candidates

    def noisy(v, window=hpsup.WINDOW):
        v = np.asarray(v) * (1 + 1e-12 * rng.standard_normal(np.shape(v)))
        return real(v, window)

    monkeypatch.setattr(hpsup, "candidates", noisy)
    got = table_metrics(K, c)
    for key in ("beta", "V_inf", "V1", "max_abs_c", "log10_V_inf"):
        assert got[key] == ref[key], key


def test_rounding_helpers_against_exact_rationals():
    import flint

    rng = np.random.default_rng(1)
    with hpsup.flint_prec(200):
        for _ in range(200):
            num, den = int(rng.integers(1, 10**15)), int(rng.integers(1, 10**15))
            q = Fraction(num, den) * Fraction(10) ** int(rng.integers(-30, 30))
            x = flint.arb(flint.fmpq(q.numerator, q.denominator))
            assert hpsup.round_nearest(x) == float(q)  # Fraction -> float is correctly rounded
            d = hpsup.round_down(x)
            assert Fraction(d) <= q < Fraction(math.nextafter(d, math.inf))
    for x in (1e-300, 0.1, 1.0, 3.0000001, 123456.789, 7e250):
        r = hpsup.round_up_bits(x, 24)
        m, _ = math.frexp(r)
        assert r >= x and r <= x * (1 + 2**-23)
        assert float(m * 2**24).is_integer()
