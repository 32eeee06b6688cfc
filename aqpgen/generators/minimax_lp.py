"""Linear-programming oracle for the minimax estimator of log p (small K; second method).

The weighted minimax problem of ``aqpgen.minimax`` restricted to a finite grid p_1..p_N,

.. math::  E_{\\rm grid} = \\min_{a,\\,t}\\ t \\quad\\text{s.t.}\\quad
           |p_i\\,Q_a(p_i) - p_i\\log p_i| \\le t,\\qquad Q_a(p) = \\sum_{j<K} a_j T_j(2p-1),

is a linear program in (a, t).  Since the grid is a subset of [0, 1], E_grid <= E*_K; on a grid
with spacing delta in t (p = sin^2(t/2)) the lost amount is O((K delta)^2) E*_K, so a dense grid
gives E*_K to many digits -- independently of the Remez exchange (no Remez output is used).

Public names
------------
lp_minimax(K, n_grid=None, grid=None, solver=None) -> LPResult
LPResult        frozen result (every field documented).
default_grid(n) the default grid p_i = sin^2(pi i / (2n)), i = 1..n (clusters like 1/n^2 at 0).

Possible issues
---------------
An interior-point LP solver delivers t to about its tolerances (here 1e-12 absolute); the result
records the solver status and the measured constraint violation of the returned point
(``violation``), and ``grid_max`` recomputes max_i |e(p_i)| for the returned coefficients, so a
caller can bracket E_grid by [t - violation, grid_max].  Use K <= ~20 (the Chebyshev-Vandermonde
is well conditioned but the LP's float64 accuracy limits the relative accuracy to ~1e-9 / E).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from aqpgen.errors import ConvergenceError

__all__ = ["LPResult", "default_grid", "lp_minimax"]


@dataclass(frozen=True)
class LPResult:
    """Result of ``lp_minimax``.

    Attributes
    ----------
    K : int
        Batch size (Q has K Chebyshev coefficients).
    E : float
        The LP optimum t (a lower bound on E*_K up to the solver tolerance).
    grid_max : float
        max_i |p_i Q(p_i) - p_i log p_i| over the grid for the returned coefficients, evaluated in
        float64 (>= the grid optimum up to rounding).
    violation : float
        max(0, grid_max - E): how far the returned point violates its own constraints.
    cheb : numpy.ndarray
        Chebyshev coefficients a_0..a_{K-1} of Q on [0, 1] (Q(p) = sum a_j T_j(2p - 1)).
    n_grid : int
        Number of grid points.
    solver : str
        The cvxpy solver used.
    status : str
        The cvxpy status (``"optimal"`` when accepted).
    """

    K: int
    E: float
    grid_max: float
    violation: float
    cheb: np.ndarray
    n_grid: int
    solver: str
    status: str


def default_grid(n: int) -> np.ndarray:
    """p_i = sin^2(pi i / (2 n)), i = 1..n: uniform in t = 2 arcsin sqrt(p), p_n = 1."""
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n_grid must be an integer >= 2, received {n!r}")
    t = np.pi * np.arange(1, int(n) + 1) / int(n)
    return np.sin(0.5 * t) ** 2


def _design(K: int, p: np.ndarray) -> np.ndarray:
    """Rows p_i T_j(2 p_i - 1), j < K, via T_j(2p - 1) = (-1)^j cos(j t)."""
    t = 2.0 * np.arcsin(np.sqrt(p))
    j = np.arange(K)
    return p[:, None] * ((-1.0) ** j) * np.cos(np.outer(t, j))


def lp_minimax(K: int, n_grid: int | None = None, grid=None, solver: str | None = None) -> LPResult:
    """Minimax weighted approximation of p log p on a finite grid, as a cvxpy LP.

    Parameters
    ----------
    K : int
        Batch size >= 1 (Q of degree <= K-1).
    n_grid : int, optional
        Size of the default grid (``default_grid``); default 2000 K (relative grid loss
        ~(pi/4000)^2 ~ 6e-7 at worst).
    grid : array_like, optional
        Explicit grid points in (0, 1] (overrides ``n_grid``).
    solver : str, optional
        cvxpy solver name; default CLARABEL (tolerances 1e-12), else HIGHS.

    Returns
    -------
    LPResult

    Raises
    ------
    ConvergenceError
        The solver did not report an optimal solution.
    """
    import cvxpy as cp

    from aqpgen.generators.minimax import _as_K

    K = _as_K(K)
    if grid is None:
        n = 2000 * K if n_grid is None else n_grid
        p = default_grid(n)
    else:
        p = np.unique(np.asarray(grid, dtype=np.float64).ravel())
        if p.size < K + 1 or not np.all(np.isfinite(p)) or p[0] <= 0 or p[-1] > 1:
            raise ValueError(f"grid must hold >= K+1 = {K + 1} distinct points in (0, 1]")
    A = _design(K, p)
    h = p * np.log(p)
    installed = cp.installed_solvers()
    if solver is None:
        solver = "CLARABEL" if "CLARABEL" in installed else "HIGHS"
    opts = {}
    if solver == "CLARABEL":
        opts = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "max_iter": 500}

    def solve(r0, scale, accept):
        # minimise t s.t. |r0 + A d| <= t, in units of ``scale`` (well scaled: t ~ 1)
        d = cp.Variable(K)
        t = cp.Variable()
        r = r0 / scale + A @ d
        prob = cp.Problem(cp.Minimize(t), [r <= t, -r <= t])
        try:
            prob.solve(solver=solver, **opts)
        except cp.error.SolverError as exc:  # pragma: no cover - solver failure path
            raise ConvergenceError(f"lp_minimax(K={K}): solver {solver} failed: {exc}",
                                   {"K": K}) from exc
        status = str(prob.status)
        if status not in accept or d.value is None:
            raise ConvergenceError(f"lp_minimax(K={K}): solver {solver} status {status!r}",
                                   {"K": K, "status": status})
        return np.asarray(d.value, dtype=np.float64) * scale, float(t.value) * scale, status

    # pass 1: a first solution (may be flagged inaccurate); pass 2: the same LP for the correction
    # around it, rescaled so that the optimum is ~1 (the solver's tolerances then act relative).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        a0, _, _ = solve(-h, 1.0, (cp.OPTIMAL, cp.OPTIMAL_INACCURATE))
    scale = max(float(np.max(np.abs(A @ a0 - h))), 1e-300)
    d1, E, status = solve(A @ a0 - h, scale, (cp.OPTIMAL,))
    coef = a0 + d1
    gmax = float(np.max(np.abs(A @ coef - h)))
    return LPResult(K=K, E=E, grid_max=gmax, violation=max(0.0, gmax - E), cheb=coef,
                    n_grid=int(p.size), solver=solver, status=status)
