"""Fine-grid verification of an AQP candidate and the exact V1 quadratic form (docs/MATH.md §5).

Public names
------------
Evaluator(values, target=LOG) -- e(p) = p (g_c(p) - g(p)) and p Var_p(c) for many p (float64,
                                 exact Chebyshev interpolants).
Verified(values, n_fine=None, target=LOG) -- β, V∞ on a fine angle grid with refined local maxima,
                                 and the maxima the exchange adds to its grids.
evaluate(values, *, target=LOG) -> {"beta", "V_inf", "V1"}.
v1_matrix(K)                  -- the dense closed form M of V1(c) = c^T M c.

V1(c) = ∫_0^1 p·Var_p dp = c^T M c with (Beta integrals, DLMF 5.12.1)

.. math::

    M = \\mathrm{diag}\\Big(\\frac{m+1}{K(K+1)}\\Big) - G,\\qquad
    G_{ij} = \\binom{K-1}{i}\\binom{K-1}{j}\\,\\frac{(i+j+1)!\\,(2K-2-i-j)!}{(2K)!},

since ∫ p b_m dp = C(K-1,m) B(m+2, K-m) = (m+1)/(K(K+1)) and
∫ p b_i b_j dp = C(K-1,i) C(K-1,j) B(i+j+2, 2K-1-i-j).  p·Var_p is a polynomial of degree
2K-1, so K-point Gauss–Legendre quadrature on [0, 1] is exact for it; the solver uses that
sparse form (one cone block per node), ``v1_matrix`` is the dense closed form (both are tested).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev as C

from aqpgen.numerics.bernstein import binom_pmf
from aqpgen.numerics.extrema import local_maxima, refine_maxima
from aqpgen.numerics.grids import theta_grid
from aqpgen.numerics.metrics import variance_mean
from aqpgen.records import as_K
from aqpgen.targets import LOG, Target, parse_target

__all__ = ["Evaluator", "Verified", "evaluate", "v1_matrix"]


class Evaluator:
    """e(p) = p·(g_c(p) − g(p)) and p·Var_p(c) for many p, in float64 (g the target).

    g_c (degree K−1) and p·Var_p (degree 2K−1) are interpolated exactly at Chebyshev points of
    [0, 1] from accurate pointwise values (binomial pmf, two-pass variance) and evaluated by
    Clenshaw (numpy.polynomial.chebyshev), so a fine grid costs O(K) per point.  Absolute error
    ~ 1e-14·max|c| (Lebesgue constant O(log K)), far below the budgets (>= 1e-7 at K <= 1024).
    """

    def __init__(self, values: np.ndarray, target: Target = LOG):
        c = np.asarray(values, dtype=np.float64)
        K = len(c)
        self.K = K
        self.target = target

        def g_at(x):
            B = binom_pmf(K - 1, (1.0 + x) / 2.0, method="boost")
            return B @ c

        def pvar_at(x):
            p = (1.0 + x) / 2.0
            B = binom_pmf(K - 1, p, method="boost")
            g = B @ c
            return p * np.einsum("ij,ij->i", B, (c[None, :] - g[:, None]) ** 2)

        self.cg = C.chebinterpolate(g_at, K - 1)
        self.cv = C.chebinterpolate(pvar_at, 2 * K - 1)

    def g(self, p):
        return C.chebval(2.0 * np.asarray(p) - 1.0, self.cg)

    def bias(self, p):
        """e(p) = p·g_c(p) − h(p), h(p) = p·g(p) the weighted target (0 at p = 0)."""
        p = np.asarray(p, dtype=np.float64)
        return p * self.g(p) - self.target.h(p)

    def pvar(self, p):
        return C.chebval(2.0 * np.asarray(p, dtype=np.float64) - 1.0, self.cv)


class Verified:
    """Fine-grid verification of a table: β, V∞ (refined local maxima), V1 (exact quadrature),
    and the maxima locations used by the exchange."""

    def __init__(self, values: np.ndarray, n_fine: int | None = None, target: Target = LOG):
        K = len(values)
        ev = Evaluator(values, target)
        n_fine = n_fine or max(4096, 16 * K)
        theta, p = theta_grid(n_fine, start=0, angles=True)
        e = ev.bias(p)
        v = ev.pvar(p)
        ie, iv = local_maxima(e), local_maxima(v)
        half = 0.5 * np.pi
        self.theta_e, self.abs_e = refine_maxima(lambda t: ev.bias(np.sin(t) ** 2), theta, e, ie,
                                                 lo=0.0, hi=half)
        self.theta_v, self.val_v = refine_maxima(lambda t: ev.pvar(np.sin(t) ** 2), theta, v, iv,
                                                 lo=0.0, hi=half)
        self.beta = float(max(np.max(np.abs(e)), self.abs_e.max(initial=0.0)))
        self.V_inf = float(max(np.max(v), self.val_v.max(initial=0.0)))
        self.h = theta[1] - theta[0]
        self._values = values

    @property
    def V1(self) -> float:
        """∫ p·Var_p dp (``aqpgen.numerics.metrics.variance_mean``), computed on first use."""
        if not hasattr(self, "_V1"):
            self._V1 = float(variance_mean(self._values, len(self._values)))
        return self._V1

    def points_above(self, which: str, level: float) -> np.ndarray:
        """p of the refined maxima above ``level``, with two neighbours at ±h/4 in θ."""
        th, val = (self.theta_e, self.abs_e) if which == "e" else (self.theta_v, self.val_v)
        th = th[val > level]
        th = np.concatenate([th, th - 0.25 * self.h, th + 0.25 * self.h])
        return np.sin(np.clip(th, 1e-12, 0.5 * np.pi)) ** 2


def evaluate(values, *, target: Target = LOG) -> dict:
    """Fine-grid measurement of a table: {"beta", "V_inf", "V1"} (float64, see ``Verified``)."""
    v = Verified(np.asarray(values, dtype=np.float64), target=parse_target(target))
    return {"beta": v.beta, "V_inf": v.V_inf, "V1": v.V1}


def v1_matrix(K: int) -> np.ndarray:
    """Dense matrix M with V1(c) = c^T M c (closed form, see module docstring).

    .. math:: M = \\mathrm{diag}((m+1)/(K(K+1))) - G,\\quad
              G_{ij} = C(K-1,i)\\,C(K-1,j)\\,B(i+j+2,\\,2K-1-i-j)

    Possible issues: entries are computed through log-Gamma (relative error ~1e-13 at K = 1024);
    M is positive semidefinite with the constant vector in its kernel (Var of a constant is 0).
    """
    from scipy.special import betaln, gammaln

    K = as_K(K, minimum=2)
    m = np.arange(K)
    lc = gammaln(K) - gammaln(m + 1) - gammaln(K - m)
    S = m[:, None] + m[None, :]
    G = np.exp(lc[:, None] + lc[None, :] + betaln(S + 2, 2 * K - 1 - S))
    return np.diag((m + 1) / (K * (K + 1.0))) - G
