"""Classical count-based estimators ("peers") of the power target p^a (a real, a > -1).

The p^a counterpart of ``aqpgen.generators.peers`` (which serves log p).  Same count convention:
n in 1..K is self-inclusive, n - 1 ~ Binomial(K-1, p); a table is c_K[1..K] (``values[n-1]``).

Public names
------------
POWER_PEERS                         -- ("plugin", "laplace", "jackknife", "delta", "series").
power_peer_table(name, K, target)   -- float64 table, each entry correctly rounded from 40 digits.
power_peer_table_mp(name, K, target, prec=None) -- the same entries as mpmath numbers.

Definitions (g(p) = p^a, n = 1..K, p_hat = n/K)
------------------------------------------------
plugin     g(n/K) = (n/K)^a: what people use (the reference of the rho programs).
laplace    ((n - 1/2)/K)^a  (add-1/2, the Krichevsky-Trofimov / Jeffreys smoothing of the count).
jackknife  the delete-one jackknife of the plug-in over the K-1 *other* samples (the completion's
           own sample is always present), exactly as for log p: theta = g(n/K),
               theta_bar = [(n-1) g((n-1)/(K-1)) + (K-n) g(n/(K-1))] / (K-1),
               theta_J   = (K-1) theta - (K-2) theta_bar,
           the (n-1) term absent when n = 1 (weight 0, also for a < 0 where g(0) = inf);
           K <= 2 gives the plug-in (Quenouille 1956; Efron & Stein 1981).
delta      second-order delta-method bias correction of the plug-in.  Under the model
           E p_hat = p + (1-p)/K and Var p_hat = (K-1) p (1-p)/K^2, so
               E g(p_hat) ~ g(p) + g'(p) (1-p)/K + g''(p) (K-1) p (1-p) / (2K^2);
           the correction subtracts the two terms at p_hat:
               c[n] = g(p_hat) - g'(p_hat)(1-p_hat)/K - g''(p_hat)(K-1) p_hat (1-p_hat)/(2K^2),
           g' = a p^(a-1), g'' = a(a-1) p^(a-2).  (For log p the same recipe gives a
           Miller-Madow-type correction.)
series     the U-statistic of the binomial series truncated at degree K-1, the analogue of the
           digamma table of log p:  p^a = (1 - q)^a = sum_j C(a, j) (-q)^j, q = 1 - p, and
           q^j has the unbiased table C(K-n, j)/C(K-1, j) (j of the K-1 others all differ from the
           answer), so
               c[n] = sum_{j=0}^{K-1} C(a, j) (-1)^j C(K-n, j) / C(K-1, j),
           exactly unbiased for the truncated series; its bias is the tail
           sum_{j>=K} C(a, j) (-q)^j.  For a = 0, 1, 2, ... < K it is the exact power table,
           and applied to log p (-sum q^j / j) it is the digamma table psi(n) - psi(K).

The entries are evaluated in mpmath at ``work_prec()`` bits (128) and rounded once to float64 (the series terms have
one sign from j > a on, so only the first few cancel; the series table of an integer a >= 0 is
summed in exact rationals, so its zeros are exact).  The measured beta of each peer is computed
by the metrics of ``aqpgen.numerics.metrics`` with the target (not assumed: see
docs/readme/alpha.md for the measured rates).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from aqpgen.numerics.precision import mp_prec, work_prec
from aqpgen.records import as_K
from aqpgen.targets import PowerTarget, parse_target

__all__ = ["POWER_PEERS", "power_peer_table", "power_peer_table_mp"]

POWER_PEERS = ("plugin", "laplace", "jackknife", "delta", "series")



def _check(name, K, target) -> tuple[int, PowerTarget]:
    if name not in POWER_PEERS:
        raise ValueError(f"name must be one of {POWER_PEERS}, received {name!r}")
    K = as_K(K)
    target = parse_target(target)
    if not isinstance(target, PowerTarget):
        raise TypeError(f"power peers serve targets p^a; for {target.name!r} use "
                         f"aqpgen.generators.peers.peer_table, received {target!r}")
    return K, target


def _mp_a(target: PowerTarget, mp):
    return mp.mpf(target.a_exact.numerator) / target.a_exact.denominator


def _entries(name: str, K: int, target: PowerTarget, prec: int) -> list:
    with mp_prec(prec) as mp:
        a = _mp_a(target, mp)

        def g(x):
            return mp.mpf(x) ** a

        if name == "plugin":
            return [g(mp.mpf(n) / K) for n in range(1, K + 1)]
        if name == "laplace":
            return [g(mp.mpf(2 * n - 1) / (2 * K)) for n in range(1, K + 1)]
        if name == "jackknife":
            if K <= 2:
                return [g(mp.mpf(n) / K) for n in range(1, K + 1)]
            out = []
            for n in range(1, K + 1):
                theta = g(mp.mpf(n) / K)
                same = (n - 1) * g(mp.mpf(n - 1) / (K - 1)) if n > 1 else mp.mpf(0)
                other = (K - n) * g(mp.mpf(n) / (K - 1))
                out.append((K - 1) * theta - (K - 2) * (same + other) / (K - 1))
            return out
        if name == "delta":
            out = []
            for n in range(1, K + 1):
                p = mp.mpf(n) / K
                g1 = a * p ** (a - 1)
                g2 = a * (a - 1) * p ** (a - 2)
                out.append(g(p) - g1 * (1 - p) / K - g2 * (K - 1) * p * (1 - p) / (2 * K * K))
            return out
        return _series(K, a, mp.mpf)


def _series(K: int, a, one) -> list:
    """c[n] = sum_j C(a, j) (-1)^j C(K-n, j) / C(K-1, j), n = 1..K, in the number type ``one``
    (mpmath mpf, or Fraction for an exact integer a); C(K-n, j)/C(K-1, j) by the recurrence
    r_j = r_{j-1} (K-n-j+1)/(K-j), and C(a, j)(-1)^j = C(a, j-1)(-1)^(j-1) (j-1-a)/j."""
    coef = [one(1)]
    for j in range(1, K):
        coef.append(coef[-1] * (j - 1 - a) / j)
    out = []
    for n in range(1, K + 1):
        s, r = one(0), one(1)
        for j in range(K - n + 1):
            if j > 0:
                r = r * (K - n - j + 1) / (K - j)
            s += coef[j] * r
        out.append(s)
    return out


@cache
def _table_cached(name: str, K: int, target_name: str) -> tuple[float, ...]:
    target = parse_target(target_name)
    if name == "series" and target.polynomial:  # integer a >= 0: exact rationals (finite sum)
        return tuple(float(v) for v in _series(K, target.a_exact, Fraction))
    return tuple(float(v) for v in _entries(name, K, target, work_prec()))


def power_peer_table(name: str, K, target) -> np.ndarray:
    """The float64 table c_K[1..K] of a classical estimator of p^a.

    Parameters
    ----------
    name : str
        One of ``POWER_PEERS`` (definitions in the module docstring).
    K : int
        Batch size >= 1.
    target : PowerTarget or str
        The target p^a ("p^0.5", ...).

    Returns
    -------
    numpy.ndarray, shape (K,)
        ``values[n-1] = c_K[n]``, each the float64 rounding of a 40-digit value.
    """
    K, target = _check(name, K, target)
    return np.array(_table_cached(name, K, target.name), dtype=np.float64)


def power_peer_table_mp(name: str, K, target, prec: int | None = None) -> list:
    """The entries of ``power_peer_table`` as mpmath numbers at ``prec`` bits (default
    ``aqpgen.numerics.precision.work_prec()``)."""
    K, target = _check(name, K, target)
    prec = work_prec() if prec is None else prec
    if isinstance(prec, bool) or not isinstance(prec, int) or prec < 53:
        raise ValueError(f"prec must be an integer number of bits >= 53, received {prec!r}")
    return _entries(name, K, target, prec)
