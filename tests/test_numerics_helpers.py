"""The one-home numerics helpers: grids, quadrature, extremum location, rate fits, pmf methods.

Oracles: exact moments of [0, 1], closed-form maxima, exact power laws, exact rationals.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from aqpgen.numerics.bernstein import binom_pmf
from aqpgen.numerics.extrema import golden_max, local_maxima, refine_maxima
from aqpgen.numerics.fit import loglog_slope, neville0, richardson_limit
from aqpgen.numerics.grids import gauss_legendre01, theta_grid, theta_grid_closed


@pytest.mark.parametrize("n", [1, 2, 5, 16, 64])
def test_gauss_legendre01_exact_for_degree_2n_minus_1(n):
    p, w = gauss_legendre01(n)
    for k in range(2 * n):
        assert math.fsum(w * p**k) == pytest.approx(1.0 / (k + 1), rel=1e-13)


def test_theta_grids_against_mpmath():
    phi, p = theta_grid(8, start=0, angles=True)
    assert phi[-1] == 0.5 * np.pi
    assert p[0] == 0.0 and p[-1] == 1.0 and len(p) == 9
    with mp.workdps(30):
        for j in range(9):
            assert abs(p[j] - float(mp.sin(mp.pi * j / 16) ** 2)) <= 2e-16
    assert np.array_equal(theta_grid(8), p[1:])
    th, q = theta_grid_closed(10)
    assert q[0] == 0.0 and q[-1] == 1.0 and th[-1] == math.pi
    assert np.allclose(q, np.sin(th / 2) ** 2, atol=1e-16)


def test_extrema():
    a = np.array([0.0, 2.0, 1.0, -3.0, -1.0, 5.0])
    assert local_maxima(a).tolist() == [1, 3, 5]
    v, x = golden_max(lambda t: -(t - 0.3) ** 2, 0.0, 1.0)
    assert abs(x - 0.3) < 1e-7 and v <= 0.0
    xs = np.linspace(0.0, 3.0, 7)
    f = lambda t: np.sin(t)
    c, best = refine_maxima(f, xs, f(xs), local_maxima(f(xs)), lo=0.0, hi=3.0)
    assert abs(c[0] - math.pi / 2) < 1e-4 and best[0] == pytest.approx(1.0, abs=1e-9)


def test_rate_fits_on_exact_laws():
    Ks = [8, 16, 32, 64, 128, 256]
    slope, used = loglog_slope(Ks, [3.0 * k**-2.5 for k in Ks], kmin=16)
    assert slope == pytest.approx(-2.5, abs=1e-12) and used == (16, 32, 64, 128, 256)
    assert math.isnan(loglog_slope([4, 8], [1.0, 0.5], kmin=16)[0])
    # y = C + a h + b h^2 with h = 1/K^2: order-2 Neville is exact
    C, a, b = 0.3251, 1.7, -4.0
    ys = [C + a / k**2 + b / k**4 for k in Ks]
    lim, err, ests = richardson_limit(Ks, ys, order=2)
    assert abs(lim - C) < 1e-13 and err < 1e-7 and len(ests) == 2
    assert neville0([1.0, 2.0], [3.0, 5.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["logspace", "boost"])
def test_binom_pmf_methods_against_exact(method):
    N = 20
    ps = [0.0, Fraction(1, 7), Fraction(1, 2), Fraction(9, 10), 1.0]
    B = binom_pmf(N, [float(p) for p in ps], method=method)
    for i, p in enumerate(ps):
        p = Fraction(float(p))
        for m in range(N + 1):
            exact = math.comb(N, m) * p**m * (1 - p) ** (N - m)
            assert abs(B[i, m] - float(exact)) <= 1e-13 * float(exact) + 1e-300
    with pytest.raises(ValueError, match="method"):
        binom_pmf(3, [0.5], method="fast")


def test_precision_policy():
    from aqpgen.numerics.precision import GUARD_BITS, mp_prec, work_dps, work_prec

    assert GUARD_BITS == 128 and work_prec() == 128 and work_prec(1024) == 128
    assert work_prec(1025) == 132 and work_prec(4096) == 136
    assert work_prec(1024, magnitude_bits=1024) == 1152  # the minimax table conversion
    assert work_dps() == 38
    before = mp.mp.prec
    with mp_prec(200) as m:
        assert m.mp.prec == 200
    assert mp.mp.prec == before
    with pytest.raises(ValueError, match="K"):
        work_prec(0)
