r"""Exact (expected) policy-gradient dynamics and their fixed point (docs/MATH.md §8).

Expected dynamics
-----------------
With the marginal cost :math:`\psi_c` the game sees (``aqpgen.game.meanfn.game_function``: the
table's mean :math:`g_c` for KL, :math:`A g_c + B` for the α-game, the effective table under a
within-group baseline), the expected reward of answer z is :math:`F_z(p) = R_z - \tau\psi_c(p_z)`
and the expected REINFORCE gradient (any baseline independent of the sample) is

.. math::  \mathbb{E}\,\partial_{\theta_t} = \pi_t\,(F_{z(t)} - \bar F), \qquad
           \bar F = \textstyle\sum_z p_z F_z .

Every trace has :math:`\pi_t > 0`, so a stationary point has :math:`F_z = \bar F =: \lambda` for
every answer with :math:`p_z > 0` (answers with :math:`F_z(0) < \lambda` decay to zero).  The
fixed point :math:`p_K` therefore solves the Lagrange system

.. math::  R_z - \tau \psi_c(p_z) = \lambda \ (p_z > 0), \qquad
           R_z - \tau \psi_c(0) \le \lambda \ (p_z = 0), \qquad \sum_z p_z = 1,

the KKT system of maximising :math:`\Phi(p) = \sum_z R_z p_z - \tau \sum_z \Psi_c(p_z)`
(:math:`\Psi_c' = \psi_c`) on the simplex: the expected dynamics are a potential game, and Φ is
concave when :math:`\psi_c` is increasing, so the fixed point is then unique.  With the exact
marginal cost it is the game's optimum (``Scenario.optimum(alpha)``).  ``run_exact`` computes
:math:`p_K` twice and checks that the two agree:

* ``fixed_point_dynamics``: iterates the expected dynamics from the uniform policy.  Default
  ``"npg"``: the natural-gradient (Fisher-preconditioned) step
  :math:`\theta_t \mathrel{+}= \eta (F_{z(t)} - \bar F)` (mirror ascent), same stationary points,
  linear convergence also for answers that die; ``"pg"``: the plain expected softmax PG step
  :math:`\theta_t \mathrel{+}= \eta\,\pi_t (F_{z(t)} - \bar F)` (slow for rare answers).
* ``fixed_point_solve``: when :math:`\psi_c` is increasing,
  :math:`p_z(\lambda) = \psi_c^{-1}((R_z - \lambda)/\tau)` (0 below :math:`\psi_c(0)`) is
  decreasing in λ and a 1-D root find on :math:`\sum_z p_z(\lambda) = 1` gives λ.

The reported distance is :math:`\mathrm{TV}(p_K, p^*) = \tfrac12 \sum_z |p_{K,z} - p^*_z|`.

Public names
------------
DynamicsResult, SolveResult, ExactResult
fixed_point_dynamics(scenario, g), fixed_point_solve(scenario, g)
run_exact(scenario, estimator, K, baseline=...) -> ExactResult
exact_sweep(scenario, estimators, Ks) -> the ``--json`` object of ``aqpgen simulate --exact``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aqpgen.errors import ConvergenceError
from aqpgen.game.estimators import as_estimator
from aqpgen.game.meanfn import game_function
from aqpgen.game.scenarios import get_scenario, tv_distance, tv_slope

__all__ = ["DynamicsResult", "ExactResult", "SolveResult", "exact_sweep",
           "fixed_point_dynamics", "fixed_point_solve", "run_exact", "softmax"]

_EPS = np.finfo(np.float64).eps


@dataclass(frozen=True)
class DynamicsResult:
    """Expected dynamics run to stationarity.

    p : answer distribution at the end; steps : iterations; residual : the stationarity residual
    sum_z p_z |F_z - F̄| at the end; lam : F̄ at the end; method : "npg" or "pg"."""

    p: np.ndarray
    steps: int
    residual: float
    lam: float
    method: str


@dataclass(frozen=True)
class SolveResult:
    """Direct solve of the Lagrange system: p (sums to 1) and the common value lam = λ."""

    p: np.ndarray
    lam: float


def softmax(theta: np.ndarray) -> np.ndarray:
    """Softmax along the last axis (max-shifted)."""
    e = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fixed_point_dynamics(scenario, g, *, method: str = "npg", tol: float = 1e-12,
                         max_steps: int | None = None) -> DynamicsResult:
    r"""Iterate the expected policy-gradient dynamics from θ = 0 until stationary.

    Each step computes :math:`F_z = R_z - \tau g(p_z)`, :math:`A_z = F_z - \sum p F` and, with
    :math:`\eta = 1/(\tau \max(1, \max_z p_z g'(p_z)))` (the linearised rate of
    :math:`\log p_z` is :math:`\eta \tau p_z g'(p_z)`, so this step is stable; for g = log it is
    one exact step): ``"npg"``: :math:`\theta_t \mathrel{+}= \eta A_{z(t)}`; ``"pg"``:
    :math:`\theta_t \mathrel{+}= (\eta / \max_s \pi_s)\, \pi_t A_{z(t)}`.
    Stopping rule (KKT residual): :math:`\max(\sum_z p_z |A_z|, \max_z A_z) \le` ``tol`` --
    live answers level and no answer still growing (a vertex has :math:`\sum p|A| = 0` but some
    :math:`A_z > 0`); else ``ConvergenceError``.
    """
    sc = get_scenario(scenario)
    if method not in ("npg", "pg"):
        raise ValueError(f"method must be 'npg' or 'pg', received {method!r}")
    if max_steps is None:
        max_steps = 200_000 if method == "npg" else 2_000_000
    R, tau, T = sc.rewards, sc.tau, sc.traces
    z_of = np.repeat(np.arange(sc.S), T)
    theta = np.zeros(sc.S * T)
    res = math.inf
    for step in range(max_steps + 1):
        pi = softmax(theta)
        p = np.bincount(z_of, weights=pi, minlength=sc.S)
        F = R - tau * g(p)
        lam = float(p @ F)
        A = F - lam
        # KKT residual: live answers level (p|A| small) and no answer still growing (A <= 0)
        res = max(float(p @ np.abs(A)), float(A.max()))
        if res <= tol:
            return DynamicsResult(p / p.sum(), step, res, lam, method)
        with np.errstate(invalid="ignore"):
            stiff = np.nan_to_num(p * g.derivative(p), nan=0.0, posinf=0.0)
        eta = 1.0 / (tau * max(1.0, float(stiff.max())))
        if method == "npg":
            theta += eta * A[z_of]
        else:
            theta += (eta / float(pi.max())) * pi * A[z_of]
    raise ConvergenceError(
        f"expected {method} dynamics not stationary after {max_steps} steps: residual "
        f"{res:.3g}, required <= {tol:.3g}", {"residual": res, "tol": tol, "steps": max_steps})


def fixed_point_solve(scenario, g) -> SolveResult | None:
    r"""Solve :math:`R_z - \tau g(p_z) = \lambda`, :math:`\sum p_z = 1` by a 1-D root find on λ.

    Needs g increasing on [0, 1] (then :math:`p_z(\lambda) = g^{-1}((R_z - \lambda)/\tau)`,
    clipped to [0, 1], is non-increasing in λ); returns None when g is not monotone.  Brent's
    method on :math:`\sum_z p_z(\lambda) - 1` to xtol = 4 eps |λ|.
    """
    from scipy.optimize import brentq

    sc = get_scenario(scenario)
    if not g.monotone:
        return None
    R, tau = sc.rewards, sc.tau

    def excess(lam):
        return float(g.inverse((R - lam) / tau).sum()) - 1.0

    lo = float(R.min() - tau * g.g1)          # every p_z = 1: excess = S - 1 > 0
    if math.isfinite(g.g0):
        hi = float(R.max() - tau * g.g0) + 1e-12 * (1 + abs(R.max() - tau * g.g0))
    else:
        hi, step = lo + 1.0, 1.0
        while excess(hi) > 0:
            step *= 2
            hi = lo + step
    lam = brentq(excess, lo, hi, xtol=1e-300, rtol=4 * _EPS, maxiter=500)
    p = g.inverse((R - lam) / tau)
    return SolveResult(p / p.sum(), float(lam))


@dataclass(frozen=True)
class ExactResult:
    """Fixed point of the expected dynamics for one (scenario, estimator, K).

    Attributes
    ----------
    scenario, estimator, K
    p : the fixed point p_K (from the direct solve when ψ_c is monotone, else the dynamics)
    tv : TV(p_K, p*) with p* the optimum of the estimator's game (``alpha``)
    tv_dynamics : TV(dynamics' end point, p*)
    agreement : TV(dynamics, solve), NaN when no solve
    monotone : whether ψ_c is increasing (grid check)
    lam : the common expected reward λ at the fixed point
    steps, residual : of the dynamics
    alpha : the game (1 = KL)
    baseline : the advantage baseline whose expected step was followed
    """

    scenario: str
    estimator: str
    K: int
    p: np.ndarray
    tv: float
    tv_dynamics: float
    agreement: float
    monotone: bool
    lam: float
    steps: int
    residual: float
    alpha: float = 1.0
    baseline: str = "others"


def run_exact(scenario, estimator, K: int, *, use_hp: bool = True, method: str = "npg",
              tol: float = 1e-12, agree_tol: float = 1e-9, baseline: str = "others",
              target=None) -> ExactResult:
    """Fixed point p_K of the expected dynamics and its TV distance to the game's optimum.

    The game is the estimator's (``Estimator.alpha``; ``target`` resolves names).  Runs
    ``fixed_point_dynamics`` and (monotone ψ_c) ``fixed_point_solve``; raises
    ``ConvergenceError`` if they disagree by more than ``agree_tol`` in TV.  ``baseline``:
    ``others`` / ``none`` follow the exact policy gradient; ``group`` / ``rloo`` the expected
    step under a within-group baseline (``aqpgen.game.meanfn``).
    """
    sc = get_scenario(scenario)
    est = as_estimator(estimator, target)
    K = 2 if est.is_oracle and K is None else K
    g = game_function(est, K, use_hp=use_hp, baseline=baseline)
    dyn = fixed_point_dynamics(sc, g, method=method, tol=tol)
    sol = fixed_point_solve(sc, g)
    ps = sc.optimum(est.alpha)
    agreement = float("nan")
    p, lam = dyn.p, dyn.lam
    if sol is not None:
        agreement = tv_distance(dyn.p, sol.p)
        if not agreement <= agree_tol:
            raise ConvergenceError(
                f"{est.name} K={K} ({sc.name}): dynamics and direct solve disagree, TV "
                f"{agreement:.3g} > {agree_tol:.3g}", {"agreement": agreement})
        p, lam = sol.p, sol.lam
    return ExactResult(sc.name, est.name, int(K), p, tv_distance(p, ps), tv_distance(dyn.p, ps),
                       agreement, g.monotone, lam, dyn.steps, dyn.residual, est.alpha, baseline)


def exact_sweep(scenario, estimators: Sequence, Ks: Sequence[int], *, use_hp: bool = True,
                slope_kmin: int = 16, baseline: str = "others", target=None) -> dict:
    """``{name: {"K": [...], "tv": [...], "slope": s, "slope_K": [...]}}`` of fixed-point TVs."""
    out = {}
    for e in estimators:
        est = as_estimator(e, target)
        tvs = [run_exact(scenario, est, K, use_hp=use_hp, baseline=baseline).tv for K in Ks]
        slope, used = tv_slope(Ks, tvs, slope_kmin)
        out[est.name] = {"K": [int(k) for k in Ks], "tv": tvs, "slope": slope, "slope_K": used}
    return out
