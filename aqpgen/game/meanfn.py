r"""Accurate mean functions: what the expected dynamics see of a table.

Mean of a table
---------------
Given answer z of sample i, the other K-1 samples are independent of it, so
:math:`n_i - 1 \sim \mathrm{Bin}(K-1, p_z)` and the expected table reward of answer z is the
Bernstein polynomial :math:`g_c(p_z) = \sum_m c[m+1] b_{K-1,m}(p_z)` (docs/MATH.md §1).  The
minimax table's values are huge and alternate in sign, so the float64 Bernstein sum cancels
catastrophically once K passes a few dozen.  :func:`mean_function` converts the exact table values
(the high-precision strings ``values_hp`` when the table has them, else the float64 values, which
are exact binary numbers) to the Chebyshev coefficients of :math:`g_c` in exact rational
arithmetic (``aqpgen.numerics.bernstein.to_chebyshev_exact`` for :math:`P = p g_c`, then an exact
division by p) and rounds them once to float64.  Those coefficients are moderate
(:math:`|q_j| \le 2\max|g_c|`), so Clenshaw evaluates :math:`g_c` with error
:math:`O(K u \sum_j |q_j|)`, including at p = 0.

The game's marginal cost
------------------------
The α-game (``aqpgen.game.alpha``) charges :math:`\tau\psi_c(p_z)` with
:math:`\psi_c = A g_c + B` (``reward_affine``; KL: :math:`\psi_c = g_c`).  :func:`game_function`
returns ψ_c as a :class:`MeanFunction` (coefficients scaled by A, B added to the constant term).

Within-group baselines change the effective table
--------------------------------------------------
With the leave-one-out baseline :math:`b_i = \frac{1}{K-1}\sum_{j \ne i} r_j` (RLOO), the other
samples' rewards depend on sample i through their counts: given :math:`z_i = z`, sample j has
:math:`n_j = 1 + 1\{z_j = z\} + \mathrm{Bin}(K-2, p_{z_j})`.  Hence
:math:`E[b_i \mid z_i = z] = C + \tau p_z \Delta(p_z)` with a constant C and
:math:`\Delta(p) = E[c(2+B) - c(1+B)] = g_c'(p)/(K-1)`, :math:`B \sim \mathrm{Bin}(K-2, p)`.
The expected advantage of answer z is therefore that of the effective mean
:math:`g_c(p) - p\,g_c'(p)/(K-1)`, which is the Bernstein mean of the **effective table**

.. math::  c^{loo}[1] = c[1], \qquad c^{loo}[n] = \frac{(K-n)\,c[n] + (n-1)\,c[n-1]}{K-1}
           \quad (n \ge 2)

(:func:`loo_effective_table`, computed exactly).  The group-mean baseline (GRPO,
:math:`b = \frac1K \sum_j r_j`) gives :math:`\frac{K-1}{K}` times the RLOO advantage: same fixed
point.  For a table with :math:`g_c = \log p` the change would be the constant
:math:`-1/(K-1)` (harmless); for :math:`g_c = p^a` it is the factor :math:`1 - a/(K-1)`, i.e.
the regulariser weight τ becomes :math:`\tau(1 - a/(K-1))`: an O(1/K) shift of the fixed point
even for an unbiased table, undone by multiplying the table by :math:`(K-1)/(K-1-a)`
(:func:`loo_compensation`).  The oracle's rewards do not depend on counts: no change.

Public names
------------
MeanFunction(coeffs)   -- a polynomial on [0, 1] in Chebyshev form: ``__call__``, ``derivative``,
                          ``inverse`` (increasing only), ``g0``, ``g1``, ``monotone``.
OracleMean(target, A, B) -- A g + B for the exact target g (log or p^a), same interface.
mean_function(est, K)  -- g_c of a table (the oracle: g itself).
game_function(est, K, baseline=...) -- ψ_c, the marginal cost the expected dynamics see.
loo_effective_table(values) -- the exact effective table of the RLOO / group-mean baseline.
loo_compensation(target, K), loo_compensated_table(values, target, K) -- the leading-order fix
                          (K-1)/(K-1-a) for p^a tables served with a within-group baseline.
BASELINES, COUNT_COUPLED_BASELINES
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from numpy.polynomial import chebyshev as _cheb

from aqpgen.game.alpha import reward_affine
from aqpgen.game.estimators import Estimator, as_estimator
from aqpgen.numerics.bernstein import exact_values, to_chebyshev_exact
from aqpgen.targets import LOG, Target, parse_target

__all__ = ["BASELINES", "COUNT_COUPLED_BASELINES", "MeanFunction", "OracleMean",
           "game_function", "loo_compensated_table", "loo_compensation", "loo_effective_table",
           "mean_function"]

#: Baselines of the sampled simulator: ``others`` (mean reward of the other groups of the step:
#: independent of the sample, the expected step is the exact policy gradient), ``group`` (the
#: group's mean, GRPO), ``rloo`` (mean of the other K-1 of the group), ``none``.
BASELINES = ("others", "group", "rloo", "none")
#: Baselines correlated with the sample through the counts (effective table ``loo_effective_table``).
COUNT_COUPLED_BASELINES = ("group", "rloo")

_EPS = np.finfo(np.float64).eps


class MeanFunction:
    r"""A polynomial :math:`g(p)` on [0, 1] given by float64 Chebyshev coefficients in x = 2p - 1.

    Built by :func:`mean_function` / :func:`game_function`.  Methods: ``__call__(p)``,
    ``derivative(p)``, ``inverse(y)`` (increasing g only), attributes ``g0 = g(0)``,
    ``g1 = g(1)``, ``monotone`` (increasing).

    Possible issues: ``monotone`` is decided on a grid of max(4096, 32K) Chebyshev-spaced
    points (clustered at p = 0, where the tables' oscillation lives), not proved.
    """

    def __init__(self, coeffs):
        if coeffs is None:
            raise TypeError("coeffs must be an array of Chebyshev coefficients (use OracleMean "
                            "for the exact target)")
        self.coeffs = np.asarray(coeffs, dtype=np.float64)
        self._dcoeffs = 2.0 * _cheb.chebder(self.coeffs) if len(self.coeffs) > 1 else np.zeros(1)
        self.g0 = float(self(0.0))
        self.g1 = float(self(1.0))
        M = max(4096, 32 * len(self.coeffs))
        grid = 0.5 * (1.0 - np.cos(np.pi * np.arange(M + 1) / M))
        d = self.derivative(grid)
        scale = float(np.abs(d).max()) or 1.0
        self.monotone = bool(d.min() >= -1e-12 * scale)
        self._grid = (grid, self(grid)) if self.monotone else None

    def __call__(self, p):
        return _cheb.chebval(2.0 * np.asarray(p, dtype=np.float64) - 1.0, self.coeffs)

    def derivative(self, p):
        """g'(p) (chain rule: d/dp = 2 d/dx)."""
        return _cheb.chebval(2.0 * np.asarray(p, dtype=np.float64) - 1.0, self._dcoeffs)

    def inverse(self, y):
        """p in [0, 1] with g(p) = y (0 if y <= g(0), 1 if y >= g(1)); monotone g only.

        Safeguarded Newton inside the grid bracket; stops when the bracket or the Newton step
        is below 4 eps·p."""
        y = np.asarray(y, dtype=np.float64)
        if not self.monotone:
            raise ValueError("inverse needs an increasing mean function g_c")
        grid, gv = self._grid
        out = np.where(y <= self.g0, 0.0, 1.0)
        mid = (y > self.g0) & (y < self.g1)
        if not mid.any():
            return out
        ym = y[mid]
        i = np.clip(np.searchsorted(gv, ym, side="right"), 1, len(grid) - 1)
        lo, hi = grid[i - 1].copy(), grid[i].copy()
        x = 0.5 * (lo + hi)
        for _ in range(200):
            f = self(x) - ym
            lo = np.where(f < 0, x, lo)
            hi = np.where(f > 0, x, hi)
            d = self.derivative(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                xn = x - f / d
            bad = ~((xn > lo) & (xn < hi)) | ~np.isfinite(xn)
            xn = np.where(bad, 0.5 * (lo + hi), xn)
            done = (np.abs(xn - x) <= 4 * _EPS * xn) | (hi - lo <= 4 * _EPS * hi) | (f == 0)
            x = np.where(f == 0, x, xn)
            if done.all():
                break
        out[mid] = x
        return out


class OracleMean:
    r"""The exact :math:`\psi(p) = A\,g(p) + B` for g = log p or :math:`p^a` (a != 0).

    Increasing on [0, 1] when A g is (the game's convention guarantees it); ``g0`` may be -inf.
    """

    def __init__(self, target: Target = LOG, A: float = 1.0, B: float = 0.0):
        self.target = parse_target(target)
        self.A, self.B = float(A), float(B)
        self._a = None if self.target == LOG else float(self.target.a)
        if self._a == 0.0:
            raise ValueError("OracleMean needs log p or p^a with a != 0")
        self.coeffs = None
        with np.errstate(divide="ignore"):
            self.g0 = float(self(0.0))
        self.g1 = float(self(1.0))
        if not self.A * (1.0 if self._a is None else self._a) > 0:
            raise ValueError(f"A g must be increasing (A = {self.A!r}, target {self.target.spec})")
        self.monotone = True

    def __call__(self, p):
        with np.errstate(divide="ignore"):
            return self.A * self.target.g(np.asarray(p, dtype=np.float64)) + self.B

    def derivative(self, p):
        p = np.asarray(p, dtype=np.float64)
        with np.errstate(divide="ignore"):
            if self._a is None:
                return self.A / p
            return self.A * self._a * np.power(p, self._a - 1.0)

    def inverse(self, y):
        """p in [0, 1] with ψ(p) = y, clipped: 0 below ψ(0), 1 above ψ(1)."""
        y = np.asarray(y, dtype=np.float64)
        u = (y - self.B) / self.A
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self._a is None:
                p = np.exp(u)
            else:
                p = np.where(u > 0, np.power(np.where(u > 0, u, 1.0), 1.0 / self._a),
                             0.0 if self._a > 0 else 1.0)
        p = np.where(y <= self.g0, 0.0, np.where(y >= self.g1, 1.0, p))
        return np.clip(p, 0.0, 1.0)


def loo_effective_table(values: Sequence) -> list:
    r"""Exact effective table of the RLOO / group-mean baseline (module docstring).

    :math:`c^{loo}[1] = c[1]`, :math:`c^{loo}[n] = ((K-n) c[n] + (n-1) c[n-1])/(K-1)`; values
    are converted exactly (``exact_values``: floats, decimal or rational strings); returns
    ``flint.fmpq``."""
    c = exact_values(values)
    K = len(c)
    if K < 2:
        raise ValueError(f"values must have K >= 2 entries, received {K}")
    return [c[0]] + [((K - n) * c[n - 1] + (n - 1) * c[n - 2]) / (K - 1) for n in range(2, K + 1)]


def loo_compensation(target, K: int) -> Fraction:
    r"""Exact factor :math:`(K-1)/(K-1-a)` that undoes, for the target :math:`p^a`, the change
    the RLOO / group-mean baseline makes to a table's mean to leading order (module docstring:
    an exact :math:`p^a` mean becomes :math:`(1 - a/(K-1))\,p^a`).  1 for log p (there the change
    is a constant).  Multiply a table by it before serving it to a trainer with a within-group
    baseline; exact for the U-statistic tables of integer a."""
    t = parse_target(target)
    K = int(K)
    if t == LOG:
        return Fraction(1)
    if not K - 1 - t.a_exact > 0:
        raise ValueError(f"loo_compensation needs K - 1 > a, received K={K}, a={t.a_exact}")
    return Fraction(K - 1) / (K - 1 - t.a_exact)


def loo_compensated_table(values: Sequence, target, K: int) -> list:
    """``values`` times :func:`loo_compensation` (target, K), exactly (``flint.fmpq``)."""
    f = loo_compensation(target, K)
    c = exact_values(values)
    if len(c) != int(K):
        raise ValueError(f"values must have K={K} entries, received {len(c)}")
    from flint import fmpq

    q = fmpq(f.numerator, f.denominator)
    return [x * q for x in c]


def _mean_cheb_coeffs(values_exact: Sequence) -> np.ndarray:
    r"""Correctly rounded float64 Chebyshev coefficients (x = 2p - 1) of g_c, computed exactly.

    ``to_chebyshev_exact`` gives the exact coefficients :math:`a_j` of
    :math:`P = p\,g_c = \sum_{j=0}^K a_j T_j(x)`.  With :math:`p = (1+x)/2`,
    :math:`(1 + x) Q(x) = 2P(x)` for :math:`g_c = Q = \sum_{j<K} q_j T_j`; using
    :math:`x T_j = (T_{j+1} + T_{|j-1|})/2` and matching :math:`T_k` from the top (r = 2a):
    :math:`q_{k-1} = 2(r_k - q_k - q_{k+1}/2)` for k = K..2, :math:`q_0 = r_1 - q_1 - q_2/2`,
    and :math:`q_0 + q_1/2 = r_0` holds because P(0) = 0.  Back substitution in exact rationals
    (unstable in floating point, exact here); one rounding at the end.
    """
    from flint import fmpq

    r = [2 * x for x in to_chebyshev_exact(list(values_exact))]
    K = len(r) - 1
    q = [fmpq(0)] * (K + 2)
    for k in range(K, 1, -1):
        q[k - 1] = 2 * (r[k] - q[k] - q[k + 1] / 2)
    q[0] = r[1] - q[1] - q[2] / 2
    if q[0] + q[1] / 2 != r[0]:  # P(0) != 0: impossible for a table (d_0 = 0)
        raise ArithmeticError("P(p) = p g_c(p) does not vanish at p = 0")
    return np.array([int(x.p) / int(x.q) for x in q[:K]], dtype=np.float64)


def _check_baseline(baseline: str) -> str:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, received {baseline!r}")
    return baseline


def mean_function(estimator, K: int, *, use_hp: bool = True) -> MeanFunction | OracleMean:
    """The accurate mean function g_c of ``estimator`` at batch size K (cached).

    ``use_hp=True`` uses the table's high-precision strings when it has them (the designed
    estimator); ``use_hp=False`` the float64 values the runtime serves (evaluated exactly).
    The oracle gives its exact target g."""
    est: Estimator = as_estimator(estimator)
    if est.is_oracle:
        return OracleMean(est.target)
    K = est.check_K(K)
    key = ("g", K, bool(use_hp))
    if key not in est.mean_cache:
        vals = est.values_exact(K) if use_hp else est.values(K)
        est.mean_cache[key] = MeanFunction(_mean_cheb_coeffs(list(vals)))
    return est.mean_cache[key]


def game_function(estimator, K: int, *, use_hp: bool = True,
                  baseline: str = "others") -> MeanFunction | OracleMean:
    r"""The marginal cost :math:`\psi_c = A g_c + B` the expected dynamics of the estimator's
    α-game see (cached).  ``baseline`` in ``COUNT_COUPLED_BASELINES`` uses the effective table
    :func:`loo_effective_table` (not for the oracle, whose rewards ignore counts)."""
    est: Estimator = as_estimator(estimator)
    _check_baseline(baseline)
    A, B = reward_affine(est.alpha)
    if est.is_oracle:
        return OracleMean(est.target, A, B)
    coupled = baseline in COUNT_COUPLED_BASELINES
    K = est.check_K(K)
    if not coupled and A == 1.0 and B == 0.0:
        return mean_function(est, K, use_hp=use_hp)
    key = ("psi", K, bool(use_hp), coupled)
    if key not in est.mean_cache:
        vals = list(est.values_exact(K) if use_hp else est.values(K))
        if coupled:
            vals = loo_effective_table(vals)
        q = A * _mean_cheb_coeffs(vals)
        q[0] += B
        if not np.all(np.isfinite(q)):
            raise ArithmeticError(f"{est.name} K={K}: mean function overflows float64")
        est.mean_cache[key] = MeanFunction(q)
    return est.mean_cache[key]
