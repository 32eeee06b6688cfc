"""Grids and quadrature on [0, 1] in the angle variable (docs/MATH.md §1).

The weighted errors of a table oscillate about K times, uniformly in the angle theta with
p = sin^2(theta/2) (crowding like 1/K^2 towards p = 0 and p = 1), so every sampled sup in aqpgen
samples a uniform angle grid.

Public names
------------
theta_grid(n, *, start=1, angles=False)  -- p_j = sin^2(pi j / (2n)), j = start..n (p_n = 1);
                                            with ``angles`` also the half-angles pi j / (2n).
theta_grid_closed(n)                     -- (theta, p): theta uniform on [0, pi] in n cells,
                                            p = sin^2(theta/2) with p = 0 and p = 1 exact.
gauss_legendre01(n)                      -- n-point Gauss-Legendre nodes and weights on [0, 1]
                                            (exact for polynomials of degree <= 2n - 1).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gauss_legendre01", "theta_grid", "theta_grid_closed"]


def theta_grid(n: int, *, start: int = 1, angles: bool = False):
    """p_j = sin^2(phi_j), phi_j = pi j / (2n), j = start..n: uniform in the angle, p_n = 1.

    Returns p (float64), or (phi, p) when ``angles`` is true.
    """
    j = np.arange(start, n + 1)
    phi = 0.5 * np.pi * j / n
    p = np.sin(phi) ** 2
    return (phi, p) if angles else p


def theta_grid_closed(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(theta, p): theta = linspace(0, pi, n + 1), p = sin^2(theta/2), p[0] = 0 and p[-1] = 1."""
    th = np.linspace(0.0, np.pi, n + 1)
    p = np.sin(0.5 * th) ** 2
    p[0], p[-1] = 0.0, 1.0
    return th, p


@lru_cache(maxsize=32)
def gauss_legendre01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-point Gauss-Legendre rule on [0, 1]: (nodes, weights), read-only float64 arrays
    (``scipy.special.roots_legendre`` mapped from [-1, 1])."""
    from scipy.special import roots_legendre

    x, w = roots_legendre(n)
    p = 0.5 * (x + 1.0)
    w = 0.5 * w
    p.setflags(write=False)
    w.setflags(write=False)
    return p, w
