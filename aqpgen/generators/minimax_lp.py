"""Linear-programming oracle for the minimax estimator of a target g (small K; second method).

The weighted minimax problem of ``aqpgen.generators.minimax`` for a target g (log p, p^a; an
``aqpgen.targets.Target``), h(p) = p g(p), restricted to a finite grid p_1..p_N,

.. math::  E_{\\rm grid} = \\min_{a,\\,t}\\ t \\quad\\text{s.t.}\\quad
           |p_i\\,Q_a(p_i) - h(p_i)| \\le t,\\qquad Q_a(p) = \\sum_{j<K} a_j T_j(2p-1),

is a linear program in (a, t).  Since the grid is a subset of [0, 1], E_grid <= E*_K; on a grid
with spacing delta in t (p = sin^2(t/2)) the lost amount is O((K delta)^2) E*_K, so a dense grid
gives E*_K to many digits -- independently of the Remez exchange (no Remez output is used).

Public names
------------
lp_minimax(K, n_grid=None, grid=None, solver=None, *, target=LOG) -> LPResult
LPResult        frozen result (every field documented).
lp_bracket(K, *, target=LOG, ...) -> LPBracket   E*_K bracketed by [LP on a grid, sup of its error
                over [0, 1]], the grid enlarged by the located maxima until the bracket is tight.
LPBracket       frozen result (every field documented).
weighted_error(cheb, p, target) the error e(p) = p Q(p) - h(p) of Chebyshev coefficients (float64).
continuum_max(cheb, target)     sup over [0, 1] of |e| (dense theta grid + golden refinement).
default_grid(n) the default grid p_i = sin^2(pi i / (2n)), i = 1..n (clusters like 1/n^2 at 0).

The bracket
-----------
For any polynomial P = p Q, E*_K <= sup_[0,1] |P - h| (definition of E*_K), and for any grid
E_grid <= E*_K.  ``lp_bracket`` solves the LP, locates the local maxima of |e| of its solution in
the continuum (theta grid of 64 (K+1) cells, golden-section refinement), adds them to the grid and
re-solves, until (upper - lower) / upper <= ``rtol``.  Both ends are produced without any Remez
output, so the bracket is an independent check of the Remez exchange for any target.

Possible issues
---------------
An interior-point LP solver delivers t to about its tolerances (here 1e-12 absolute); the result
records the solver status and the measured constraint violation of the returned point
(``violation``), and ``grid_max`` recomputes max_i |e(p_i)| for the returned coefficients, so a
caller can bracket E_grid by [t - violation, grid_max].  Use K <= ~20 (the Chebyshev-Vandermonde
is well conditioned but the LP's float64 accuracy limits the relative accuracy to ~1e-9 / E).
The continuum sup is evaluated in float64: its relative accuracy is ~1e-16 sum_j |a_j| / E*_K.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from aqpgen.errors import ConvergenceError
from aqpgen.numerics.extrema import golden_max, local_maxima
from aqpgen.numerics.grids import theta_grid, theta_grid_closed
from aqpgen.records import as_int, as_K
from aqpgen.targets import LOG, parse_target

__all__ = ["LPBracket", "LPResult", "continuum_max", "default_grid", "lp_bracket", "lp_minimax",
           "weighted_error"]


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
        max_i |p_i Q(p_i) - h(p_i)| over the grid for the returned coefficients, evaluated in
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
    target : str
        The target's name ("log p", "p^0.5", ...).
    """

    K: int
    E: float
    grid_max: float
    violation: float
    cheb: np.ndarray
    n_grid: int
    solver: str
    status: str
    target: str = "log p"


def default_grid(n: int) -> np.ndarray:
    """p_i = sin^2(pi i / (2 n)), i = 1..n: uniform in t = 2 arcsin sqrt(p), p_n = 1."""
    return theta_grid(as_int(n, "n_grid", minimum=2))


def _design(K: int, p: np.ndarray) -> np.ndarray:
    """Rows p_i T_j(2 p_i - 1), j < K, via T_j(2p - 1) = (-1)^j cos(j t)."""
    t = 2.0 * np.arcsin(np.sqrt(p))
    j = np.arange(K)
    return p[:, None] * ((-1.0) ** j) * np.cos(np.outer(t, j))


def lp_minimax(K: int, n_grid: int | None = None, grid=None, solver: str | None = None, *,
               target=LOG) -> LPResult:
    """Minimax weighted approximation of h(p) = p g(p) on a finite grid, as a cvxpy LP.

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
    target : Target or str
        The target g (default log p); a string is parsed by ``aqpgen.targets.parse_target``.

    Returns
    -------
    LPResult

    Raises
    ------
    ConvergenceError
        The solver did not report an optimal solution.
    """
    import cvxpy as cp

    K = as_K(K)
    target = parse_target(target)
    p = _lp_grid(K, n_grid, grid)
    A = _design(K, p)
    h = target.h(p)
    installed = cp.installed_solvers()
    if solver is None:
        solver = "CLARABEL" if "CLARABEL" in installed else "HIGHS"
    # pass 1: a first solution (may be flagged inaccurate); pass 2: the same LP for the correction
    # around it, rescaled so that the optimum is ~1 (the solver's tolerances then act relative).
    # If CLARABEL reports pass 2 only "optimal_inaccurate", HiGHS (when installed) solves pass 2.
    a0, _, _ = _solve_lp(K, A, -h, 1.0, (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), solver)
    scale = max(float(np.max(np.abs(A @ a0 - h))), 1e-300)
    try:
        d1, E, status = _solve_lp(K, A, A @ a0 - h, scale, (cp.OPTIMAL,), solver)
    except ConvergenceError:
        if solver != "CLARABEL" or "HIGHS" not in installed:
            raise
        solver = "HIGHS"
        d1, E, status = _solve_lp(K, A, A @ a0 - h, scale, (cp.OPTIMAL,), solver)
    coef = a0 + d1
    gmax = float(np.max(np.abs(A @ coef - h)))
    return LPResult(K=K, E=E, grid_max=gmax, violation=max(0.0, gmax - E), cheb=coef,
                    n_grid=int(p.size), solver=solver, status=status, target=target.name)


def _lp_grid(K: int, n_grid, grid) -> np.ndarray:
    """The LP's grid: ``default_grid(n_grid)`` (default 2000 K points) or the explicit ``grid``."""
    if grid is None:
        return default_grid(2000 * K if n_grid is None else n_grid)
    p = np.unique(np.asarray(grid, dtype=np.float64).ravel())
    if p.size < K + 1 or not np.all(np.isfinite(p)) or p[0] <= 0 or p[-1] > 1:
        raise ValueError(f"grid must hold >= K+1 = {K + 1} distinct points in (0, 1]")
    return p


def _solve_lp(K: int, A, r0, scale: float, accept, slv: str):
    """min t s.t. |r0 + A d| <= t, in units of ``scale`` (well scaled: t ~ 1) -> (d, t, status);
    ConvergenceError unless the solver's status is in ``accept``."""
    import cvxpy as cp

    opts = {}
    if slv == "CLARABEL":
        opts = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "max_iter": 500}
    d = cp.Variable(K)
    t = cp.Variable()
    r = r0 / scale + A @ d
    prob = cp.Problem(cp.Minimize(t), [r <= t, -r <= t])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=slv, **opts)
    except cp.error.SolverError as exc:  # pragma: no cover - solver failure path
        raise ConvergenceError(f"lp_minimax(K={K}): solver {slv} failed: {exc}", {"K": K}) from exc
    status = str(prob.status)
    if status not in accept or d.value is None:
        raise ConvergenceError(f"lp_minimax(K={K}): solver {slv} status {status!r}",
                               {"K": K, "status": status})
    return np.asarray(d.value, dtype=np.float64) * scale, float(t.value) * scale, status


# --------------------------------------------------------------------------------------------
# the continuum error of a solution and the LP bracket of E*_K
# --------------------------------------------------------------------------------------------
def weighted_error(cheb, p, target=LOG) -> np.ndarray:
    """e(p) = p Q(p) - h(p), Q(p) = sum_j cheb[j] T_j(2p - 1), in float64 (p in [0, 1])."""
    target = parse_target(target)
    p = np.asarray(p, dtype=np.float64)
    a = np.asarray(cheb, dtype=np.float64)
    Q = np.polynomial.chebyshev.chebval(2.0 * p - 1.0, a)
    return p * Q - target.h(p)


def continuum_max(cheb, target=LOG, n_cells: int | None = None) -> tuple[float, np.ndarray]:
    """sup_[0,1] |e| of Chebyshev coefficients and the located local maxima (as points p).

    |e| is sampled on the uniform theta grid theta_k = pi k / n (p = sin^2(theta/2),
    n = ``n_cells``, default 64 (K+1)), and each grid local maximum (and theta = pi) is refined
    by golden-section search in theta on its two neighbouring cells.  Returns (max, p_maxima).
    """
    target = parse_target(target)
    a = np.asarray(cheb, dtype=np.float64)
    n = 64 * (a.size + 1) if n_cells is None else int(n_cells)
    th, p = theta_grid_closed(n)
    v = np.abs(weighted_error(a, p, target))
    loc = [i for i in local_maxima(v) if 0 < i < n]
    pts, best = [1.0], float(v[n])

    def f(t):
        return float(np.abs(weighted_error(a, np.sin(0.5 * t) ** 2, target)))

    for i in loc:
        val, t = golden_max(f, th[i - 1], th[i + 1], iters=80)
        pts.append(math.sin(0.5 * t) ** 2)
        best = max(best, val, float(v[i]))
    return best, np.unique(np.asarray(pts))


@dataclass(frozen=True)
class LPBracket:
    """Result of ``lp_bracket``: lower <= E*_K <= upper, both without Remez.

    Attributes
    ----------
    K : int
        Batch size.
    lower : float
        The last LP optimum on a grid (E_grid <= E*_K, up to the solver's 1e-12 tolerance).
    upper : float
        sup over [0, 1] of |e| for the last LP solution (``continuum_max``): >= E*_K.
    rel_width : float
        (upper - lower) / upper.
    rounds : int
        LP solves done.
    n_grid : int
        Final grid size.
    cheb : numpy.ndarray
        Chebyshev coefficients of the last LP solution.
    target : str
        The target's name.
    """

    K: int
    lower: float
    upper: float
    rel_width: float
    rounds: int
    n_grid: int
    cheb: np.ndarray
    target: str

    @property
    def mid(self) -> float:
        """The midpoint of the bracket."""
        return 0.5 * (self.lower + self.upper)


def lp_bracket(K: int, *, target=LOG, n_grid: int | None = None, rtol: float = 1e-9,
               max_rounds: int = 6, solver: str | None = None) -> LPBracket:
    """Bracket E*_K by linear programming on a grid refined at the located maxima.

    Parameters
    ----------
    K : int
        Batch size >= 1.
    target : Target or str
        The target (default log p).
    n_grid : int, optional
        Size of the initial default grid (default 200 K + 200).
    rtol : float
        Stop when (upper - lower) / upper <= rtol.
    max_rounds : int
        Maximal number of LP solves.
    solver : str, optional
        cvxpy solver (``lp_minimax``).

    Returns
    -------
    LPBracket
        The bracket after the last round (its ``rel_width`` says how tight it is; no exception
        when ``rtol`` is not reached).
    """
    K = as_K(K)
    target = parse_target(target)
    grid = default_grid(200 * K + 200 if n_grid is None else n_grid)
    rounds = 0
    while True:
        lp = lp_minimax(K, grid=grid, solver=solver, target=target)
        rounds += 1
        upper, pmax = continuum_max(lp.cheb, target)
        width = (upper - lp.E) / upper
        if width <= rtol or rounds >= max_rounds:
            return LPBracket(K=lp.K, lower=lp.E, upper=upper, rel_width=width, rounds=rounds,
                             n_grid=lp.n_grid, cheb=lp.cheb, target=target.name)
        # add the located maxima (and close neighbours in theta) to the grid
        t = 2.0 * np.arcsin(np.sqrt(pmax))
        d = np.pi / (64.0 * (K + 1)) * np.array([-1e-3, 0.0, 1e-3])
        extra = np.sin(0.5 * np.clip(np.add.outer(t, d).ravel(), 1e-300, np.pi)) ** 2
        grid = np.unique(np.concatenate([grid, extra[extra > 0]]))
