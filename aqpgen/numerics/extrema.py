"""Locating maxima of sampled functions (the sups beta and V_inf, docs/MATH.md §1).

Public names
------------
local_maxima(a)                         -- indices of the local maxima of |a| (ends included).
golden_max(f, lo, hi, iters=60)         -- golden-section search of a unimodal f on [lo, hi]:
                                           (best value, its abscissa).
refine_maxima(f, x, vals, idx, ...)     -- the grid + zoom sup locator: refine the grid maxima
                                           x[idx] of |f| by ``rounds`` zooms of 33 points, each
                                           16x finer; returns (abscissae, |f| there).

The minimax engine locates the extrema of its error by Newton's method on the cosine series
(the Remez exchange of the generators); that is part of the Remez exchange, not a sup estimate.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["golden_max", "local_maxima", "refine_maxima"]


def local_maxima(a) -> np.ndarray:
    """Indices i with |a_i| >= both neighbours (a plateau gives all its points; the ends are
    compared with one neighbour)."""
    a = np.abs(np.asarray(a))
    pad = np.concatenate(([-np.inf], a, [-np.inf]))
    return np.nonzero((pad[1:-1] >= pad[:-2]) & (pad[1:-1] >= pad[2:]))[0]


def golden_max(f, lo: float, hi: float, iters: int = 60):
    """Golden-section search for the maximum of a unimodal scalar function on [lo, hi].

    Returns (value, abscissa) of the best point evaluated (a lower bound on the maximum).
    """
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    x1, x2 = b - g * (b - a), a + g * (b - a)
    f1, f2 = f(x1), f(x2)
    best = max((f1, x1), (f2, x2))
    for _ in range(iters):
        if f1 < f2:
            a, x1, f1 = x1, x2, f2
            x2 = a + g * (b - a)
            f2 = f(x2)
        else:
            b, x2, f2 = x2, x1, f1
            x1 = b - g * (b - a)
            f1 = f(x1)
        best = max(best, (f1, x1), (f2, x2))
        if b - a < 1e-15:
            break
    return best


def refine_maxima(f, x: np.ndarray, vals: np.ndarray, idx: np.ndarray, rounds: int = 3, *,
                  lo: float = -np.inf, hi: float = np.inf):
    """Refine the maxima of |f| found at the uniform grid points x[idx].

    Each round evaluates f (vectorised, on a flat array) at 33 points spanning +-h around every
    current centre (clipped to [lo, hi]), keeps the best, and divides h by 16 (h starts at the
    grid step).  Returns (centres, |f| at the centres), never below the grid values.
    """
    if len(idx) == 0:
        return np.empty(0), np.empty(0)
    h = x[1] - x[0]
    centers = x[idx].copy()
    best = np.abs(vals[idx]).copy()
    t = np.linspace(-1.0, 1.0, 33)
    for _ in range(rounds):
        T = np.clip(centers[:, None] + h * t[None, :], lo, hi)
        F = np.abs(f(T.ravel())).reshape(T.shape)
        j = np.argmax(F, axis=1)
        better = F[np.arange(len(j)), j] >= best
        centers = np.where(better, T[np.arange(len(j)), j], centers)
        best = np.maximum(best, F[np.arange(len(j)), j])
        h = h / 16.0
    return centers, best
