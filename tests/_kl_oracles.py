"""Independent oracles shared by the metrics/certify tests (mpmath Bernstein form, exact Beta
integrals).  They never call the Chebyshev route of aqpgen."""

import math
from fractions import Fraction

import flint
import mpmath as mp
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def reset_precision():
    """Fail a test that leaves flint.ctx.prec or mp.dps changed, and restore them."""
    old, olddps = flint.ctx.prec, mp.mp.dps
    yield
    changed = (flint.ctx.prec, mp.mp.dps) != (old, olddps)
    flint.ctx.prec, mp.mp.dps = old, olddps
    assert not changed, "a function left flint.ctx.prec or mp.dps changed"


def mp_golden_max(f, a, b, iters=60):
    """Golden-section search for the max of a unimodal f on [a, b]; returns f at the final point."""
    g = (math.sqrt(5) - 1) / 2
    for _ in range(iters):
        x1, x2 = b - g * (b - a), a + g * (b - a)
        if f(x1) < f(x2):
            a = x1
        else:
            b = x2
    return f((a + b) / 2)


def _mp_error_fn(c, dps):
    """p -> e(p) = p (sum_m c[m+1] b_{K-1,m}(p) - log p) in mpmath, from the exact table c."""
    K = len(c)
    with mp.workdps(dps):
        w = [mp.mpf(ci.numerator) / ci.denominator * math.comb(K - 1, m) for m, ci in enumerate(c)]

    def e(p):
        with mp.workdps(dps):
            p = mp.mpf(p)
            if p == 0:
                return mp.mpf(0)
            q = 1 - p
            pw = [mp.mpf(1)] * K
            qw = [mp.mpf(1)] * K
            for m in range(1, K):
                pw[m] = pw[m - 1] * p
                qw[m] = qw[m - 1] * q
            g = mp.fsum(w[m] * pw[m] * qw[K - 1 - m] for m in range(K))
            return p * (g - mp.log(p))

    return e


def mp_weighted_error(c, p, dps=50):
    """e(p) = p (g_c(p) - log p) in mpmath from the exact table c (Fractions)."""
    return _mp_error_fn(c, dps)(p)


def mp_beta(c, n=None, dps=50):
    """max |e| over a fine theta grid (p = sin^2(theta/2)), refined by golden section."""
    K = len(c)
    e = _mp_error_fn(c, dps)
    n = n or 40 * (K + 1)
    th = np.linspace(0, math.pi, n + 1)
    with mp.workdps(dps):
        f = lambda t: abs(e(mp.sin(mp.mpf(t) / 2) ** 2))
        vals = [f(t) for t in th]
        best = max(vals)
        i = int(np.argmax([float(v) for v in vals]))
        return float(max(best, mp_golden_max(f, th[max(i - 1, 0)], th[min(i + 1, n)], 50)))


def mp_pvar_max(c, n=400):
    """V_inf = sup_p p Var_p of the exact table c (Fractions) in mpmath (30 digits): grid in
    p = sin^2(theta), golden-section refinement around the grid maximum."""
    K = len(c)
    with mp.workdps(30):
        w = [mp.mpf(t.numerator) / t.denominator for t in c]

        def pv(p):
            b = [mp.binomial(K - 1, m) * p**m * (1 - p) ** (K - 1 - m) for m in range(K)]
            g = mp.fsum(wi * bi for wi, bi in zip(w, b))
            return p * mp.fsum(bi * (wi - g) ** 2 for wi, bi in zip(w, b))

        ps = [mp.sin(mp.pi * i / (2 * n)) ** 2 for i in range(n + 1)]
        vals = [pv(p) for p in ps]
        i = max(range(n + 1), key=lambda k: vals[k])
        return float(max(vals[i], mp_golden_max(pv, ps[max(i - 1, 0)], ps[min(i + 1, n)])))


def exact_V1(c):
    """V1 = int_0^1 p Var_p dp exactly (Fractions): sum_j (j/K) c_j^2/(K+1) - int p g^2, with
    int p b_{K-1,i} b_{K-1,m} dp = C(K-1,i) C(K-1,m) (i+m+1)! (2K-2-i-m)! / (2K)!."""
    K = len(c)
    first = sum(Fraction(j, K) * c[j - 1] ** 2 for j in range(1, K + 1)) / (K + 1)
    second = Fraction(0)
    f2K = math.factorial(2 * K)
    for i in range(K):
        for m in range(K):
            w = Fraction(math.comb(K - 1, i) * math.comb(K - 1, m) * math.factorial(i + m + 1)
                         * math.factorial(2 * K - 2 - i - m), f2K)
            second += c[i] * c[m] * w
    return first - second


def interp_table(K):
    """Exact table whose P is the Chebyshev-Lobatto interpolant of p log p (float coefficients made
    exact, a_0 adjusted so that P(0) = 0): a near-minimax table with huge alternating c."""
    from aqpgen.numerics.bernstein import from_chebyshev_exact

    k = np.arange(K + 1)
    x = np.cos(np.pi * k / K)
    p = (1 + x) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)
    C = np.cos(np.pi * np.outer(k, k) / K)
    w = np.ones(K + 1)
    w[0] = w[-1] = 0.5
    a = (2.0 / K) * (C @ (w * h))
    a[0] /= 2
    a[-1] /= 2
    aq = [Fraction(float(ai)) for ai in a]
    aq[0] = -sum(aq[j] * (-1) ** j for j in range(1, K + 1))
    return [Fraction(int(q.p), int(q.q)) for q in from_chebyshev_exact(aq)]
