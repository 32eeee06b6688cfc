"""Rates of decay: log-log slope fits and Richardson extrapolation of limits (docs/MATH.md §4).

Public names
------------
loglog_slope(Ks, ys, kmin=16)        -> (slope, used_Ks): least-squares slope of log y on log K
                                        over K >= kmin (NaN with fewer than two points).
neville0(h, f)                       -> value at h = 0 of the polynomial through (h_i, f_i).
neville0_weights(h)                  -> w with neville0(h, f) = sum w_i f_i (input-error propagation).
richardson_limit(Ks, ys, *, order=3, power=2) -> (limit, err, estimates): lim_{K->inf} y_K
                                        for y_K = C + c_1 h + c_2 h^2 + ..., h = K^-power.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["loglog_slope", "neville0", "neville0_weights", "richardson_limit"]


def loglog_slope(Ks: Sequence[int], ys: Sequence[float], kmin: int = 16):
    """Least-squares slope of log y against log K over the K >= ``kmin``.

    Returns (slope, used_Ks); slope is NaN when fewer than two K qualify.
    """
    sel = [(math.log(k), math.log(y)) for k, y in zip(Ks, ys) if k >= kmin]
    used = tuple(int(k) for k in Ks if k >= kmin)
    if len(sel) < 2:
        return float("nan"), used
    x = np.array([s[0] for s in sel])
    y = np.array([s[1] for s in sel])
    return float(np.polyfit(x, y, 1)[0]), used


def neville0(h: Sequence[float], f: Sequence[float]) -> float:
    """Value at h = 0 of the polynomial interpolating (h_i, f_i) (Neville's scheme)."""
    P = list(f)
    n = len(h)
    for m in range(1, n):
        for i in range(n - m):
            P[i] = (h[i] * P[i + 1] - h[i + m] * P[i]) / (h[i] - h[i + m])
    return P[0]


def neville0_weights(h: Sequence[float]) -> list[float]:
    """Lagrange weights at 0 of the nodes h: ``neville0(h, f) == sum(w_i * f_i)``.  An error e_i
    in f_i moves the extrapolated value by at most ``sum |w_i| |e_i|``."""
    return [math.prod(hj / (hj - hi) for j, hj in enumerate(h) if j != i) for i, hi in enumerate(h)]


def richardson_limit(Ks: Sequence[int], ys: Sequence[float], *, order: int = 3, power: float = 2):
    """Extrapolate lim y_K from the largest K, assuming y_K = C + c_1 h + c_2 h^2 + ...,
    h = 1/K^power (Neville through the 2, 3, ..., order+1 largest K).

    ``Ks`` ascending and distinct.  Returns (limit, err, estimates): ``estimates`` are the
    successive extrapolations; ``err`` is the larger of |last - previous| and |last - the same
    order through the next-largest K| (a robustness check), floored at 8 ulp of the limit.
    """
    n = min(len(Ks), int(order) + 1)
    hs = [1.0 / Ks[i] ** power for i in range(len(Ks))]
    ests = []
    for m in range(2, n + 1):
        top = list(range(len(Ks) - m, len(Ks)))
        ests.append(neville0([hs[i] for i in top], [ys[i] for i in top]))
    if ests:
        C = ests[-1]
        err = abs(ests[-1] - ests[-2]) if len(ests) >= 2 else abs(ests[-1] - ys[-1])
        if len(Ks) > n >= 3:
            top = list(range(len(Ks) - n - 1, len(Ks) - 1))
            err = max(err, abs(C - neville0([hs[i] for i in top], [ys[i] for i in top])))
    else:
        C, err = ys[-1], abs(ys[-1])
    err = max(err, 8 * np.spacing(abs(C)))
    return float(C), float(err), tuple(float(v) for v in ests)
