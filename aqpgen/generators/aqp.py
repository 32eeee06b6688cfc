"""Variance-optimal augmented programs (AQP) for the KL reward ``log p``.

Public functions
----------------
solve_eta(K, eta, objective="Vinf")  -- minimise V (V∞ or V1) subject to β(c) <= (1+η)·E*_K.
solve_rho(K, rho)                    -- minimise β(c) subject to V∞(c) <= ρ·V∞(plug-in at K).
frontier(K, etas=None, rhos=None)    -- sweep either program; one ``AQPResult`` per point.
v1_matrix(K)                         -- the exact quadratic form of V1 (Gram matrix, Beta functions).
evaluate(values)                     -- float64 fine-grid evaluator of e(p) and p·Var_p (exchange).
AQPResult                            -- frozen result of one solve.
GENERATOR_VERSION, target_name, build_K, verify_row -- the generator interface (ARCHITECTURE.md).

Mathematics (docs/MATH.md §1, §5)
-----------------------------------
With b_m(p) = b_{K-1,m}(p) = C(K-1, m) p^m (1-p)^(K-1-m) and a table c = c_K[1..K],

.. math::

    g_c(p) = \\sum_m c_{m+1} b_m(p),\\qquad e(p) = p\\,(g_c(p) - \\log p),\\qquad
    \\mathrm{Var}_p(c) = \\sum_m b_m(p)\\,(c_{m+1} - g_c(p))^2 .

β(c) = sup |e| is a sup of affine functions of c; V∞(c) = sup_p p·Var_p(c) is a sup of convex
quadratics, written as second-order cones ‖sqrt(p_i b_{i,m})(c_{m+1} − g_i)‖₂ <= s with an
auxiliary scalar g_i = b_i^T c per grid point (two nonzeros per cone row).  Binomial rows are
truncated to the entries with b_m >= ``PMF_CUTOFF``·max_m b_m (a window O(sqrt(K p(1-p))) wide),
which keeps the cones sparse enough for K = 1024.

V1(c) = ∫_0^1 p·Var_p dp = c^T M c with (Beta integrals, DLMF 5.12.1)

.. math::

    M = \\mathrm{diag}\\Big(\\frac{m+1}{K(K+1)}\\Big) - G,\\qquad
    G_{ij} = \\binom{K-1}{i}\\binom{K-1}{j}\\,\\frac{(i+j+1)!\\,(2K-2-i-j)!}{(2K)!},

since ∫ p b_m dp = C(K-1,m) B(m+2, K-m) = (m+1)/(K(K+1)) and
∫ p b_i b_j dp = C(K-1,i) C(K-1,j) B(i+j+2, 2K-1-i-j).  p·Var_p is a polynomial of degree
2K-1, so K-point Gauss–Legendre quadrature on [0, 1] is exact for it; the solver uses that
sparse form (one cone block per node), ``v1_matrix`` is the dense closed form (both are tested).

Numerics (why the programs stay accurate up to K = 1024)
--------------------------------------------------------
E*_K ~ 1e-7 at K = 1024 while |c| ~ 10.  Each solve is for a correction δ around a reference
table c_ref (the digamma table first, then the previous exchange iterate), bias rows are divided
by the bias scale (the budget) so every constraint is O(1), variance cones by sqrt(V∞(plug-in)).
Clarabel runs with explicit tolerances (``SOLVER_SETTINGS``); a status other than "optimal" is
retried with relaxed settings (``_RETRY_SETTINGS``) and otherwise reported, never shipped.  The solver's answer is a
candidate: e(p) and p·Var_p are re-evaluated on a fine grid (``evaluate``), local maxima above the
budget are refined and added to the grid (exchange), and the solver gets the budget tightened by
``TIGHTEN`` so the verified value meets the real budget.  The final acceptance for eta programs is
the rigorous bound of ``aqpgen.certify.certify_beta``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aqpgen.errors import InfeasibleError
from aqpgen.generators import minimax
from aqpgen.generators.peers import plugin_table, reference_table
from aqpgen.numerics.bernstein import binom_pmf
from aqpgen.numerics.certify import certify_beta
from aqpgen.numerics.extrema import local_maxima, refine_maxima
from aqpgen.numerics.grids import gauss_legendre01, theta_grid
from aqpgen.numerics.metrics import table_metrics, variance_mean, variance_sup
from aqpgen.records import Check, KResult, as_K
from aqpgen.targets import LOG, Target, parse_target, pow_kmin

__all__ = [
    "GENERATOR_VERSION",
    "PMF_CUTOFF",
    "SOLVER_SETTINGS",
    "AQPResult",
    "build_K",
    "evaluate",
    "frontier",
    "plugin_constants",
    "solve_eta",
    "solve_rho",
    "target_name",
    "v1_matrix",
    "verify_row",
]

GENERATOR_VERSION = "3"

#: Relative cutoff of the binomial rows fed to the solver (entries below cutoff·max are dropped).
PMF_CUTOFF = 1e-30
#: Relative tightening of the budget handed to the solver (verified value must meet the budget).
TIGHTEN = 1e-3
#: Clarabel settings, explicit.  Constraints are scaled to O(1), so tol_feas = 1e-6 means a bias
#: violation of ~1e-6·budget, far below the ``TIGHTEN`` margin (1e-3), and the relative gap 1e-6
#: bounds the objective's error; the exchange and the certificate accept or reject the candidate
#: independently anyway.  Measured on the shipped grid: at 1e-7 the last interior-point steps
#: often lose primal feasibility (residual 1e-8 -> 1e-3, Clarabel "InsufficientProgress" or
#: "AlmostSolved") at scattered K (5 of 263 rows for rho1, 28 for rho2); at 1e-6 those solve.
#: ``direct_solve_method="qdldl"``: on these KKT systems (thousands of bias rows coupled through
#: the K table entries) Clarabel's default faer factorisation was measured 6–17× slower than QDLDL
#: (K = 256: 4.15 s vs 0.24 s per solve; K = 1024 rho1: ~3 s with QDLDL).
#: ``_RETRY_SETTINGS`` are tried in turn on failure; anything still not "optimal" is reported.
SOLVER_SETTINGS = dict(tol_gap_abs=1e-6, tol_gap_rel=1e-6, tol_feas=1e-6, tol_ktratio=1e-4,
                       max_iter=300, direct_solve_method="qdldl")
_RETRY_SETTINGS = (
    dict(SOLVER_SETTINGS, equilibrate_enable=False),
    dict(tol_gap_abs=1e-6, tol_gap_rel=1e-6, tol_feas=1e-6, tol_ktratio=1e-4, max_iter=400,
         static_regularization_constant=1e-7, iterative_refinement_max_iter=20,
         direct_solve_method="qdldl"),
)
#: Refinement solves started from an "optimal_inaccurate" candidate before other retries.
REFINE_STEPS = 2
#: Relative slack of the certificate (β̄ <= (1 + CERT_SLACK)·β_lower); below ``TIGHTEN``.
CERT_SLACK = 2e-4
#: Smallest η attempted: below it the budget is within the tightening/rounding margin of E*_K.
ETA_MIN = 0.01
#: Maximum exchange rounds before giving up with a reported status.
MAX_ROUNDS = 12
#: Default frontier sweeps.
DEFAULT_ETAS = (0.0, 0.5, 1.0, 3.0, 7.0, 15.0, 31.0)
DEFAULT_RHOS = (0.5, 1.0, 2.0, 4.0)


# ----------------------------------------------------------------------------------------------
# result record


@dataclass(frozen=True)
class AQPResult:
    """One AQP solve, verified on a fine grid after the exchange.

    Attributes
    ----------
    K : int
        Batch size.
    program : str
        "eta" (minimise V subject to the bias budget) or "rho" (minimise β subject to V∞).
    objective : str
        "Vinf" or "V1" for eta programs; "beta" for rho programs.
    param : float
        η or ρ.
    values : numpy.ndarray
        float64 table c_K[1..K] (``values[n-1]``); all NaN when ``status != "ok"``.
    beta, beta_cert, V_inf, V1 : float
        ``aqpgen.numerics.metrics.table_metrics`` of the table (certificate slack
        ``CERT_SLACK``): rigorous lower and upper bounds on β, sampled V∞, exact V1.
    budget : float
        (1+η)·E*_K for eta programs, ρ·V∞(plug-in) for rho programs.
    achieved : float
        β/E*_K − 1 (eta) or V∞/V∞(plug-in) (rho).
    E_star, V_inf_plugin, beta_plugin : float
        The reference constants the budgets were built from.
    iterations : int
        Exchange rounds (solver calls that produced a candidate).
    solver_status : str
        Clarabel's status of the last solve ("optimal" for shipped results).
    grid_size : int
        Number of bias + variance grid points of the last solve.
    status : str
        "ok", or why the program failed (infeasible, out of numerical reach, ...).
    """

    K: int
    program: str
    objective: str
    param: float
    values: np.ndarray
    beta: float
    beta_cert: float
    V_inf: float
    V1: float
    budget: float
    achieved: float
    E_star: float
    V_inf_plugin: float
    beta_plugin: float
    iterations: int
    solver_status: str
    grid_size: int
    status: str = "ok"
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# binomial rows, grids, the fine-grid evaluator


def _pmf_rows(K: int, p: np.ndarray, cutoff: float | None = None):
    """Sparse CSR (len(p), K) of b_{K-1,m}(p), each row truncated to b_m >= cutoff·max b."""
    import scipy.sparse as sp

    cutoff = PMF_CUTOFF if cutoff is None else cutoff
    rows = []
    for start in range(0, len(p), 512):
        B = binom_pmf(K - 1, p[start:start + 512], method="boost")
        B[B < cutoff * B.max(axis=1, keepdims=True)] = 0.0
        rows.append(sp.csr_matrix(B))
    return sp.vstack(rows, format="csr")


class _Eval:
    """e(p) = p·(g_c(p) − g(p)) and p·Var_p(c) for many p, in float64 (g the target).

    g_c (degree K−1) and p·Var_p (degree 2K−1) are interpolated exactly at Chebyshev points of
    [0, 1] from accurate pointwise values (binomial pmf, two-pass variance) and evaluated by
    Clenshaw (numpy.polynomial.chebyshev), so a fine grid costs O(K) per point.  Absolute error
    ~ 1e-14·max|c| (Lebesgue constant O(log K)), far below the budgets (>= 1e-7 at K <= 1024).
    """

    def __init__(self, values: np.ndarray, target: Target = LOG):
        from numpy.polynomial import chebyshev as C

        c = np.asarray(values, dtype=np.float64)
        K = len(c)
        self.K = K
        self.target = target
        self._C = C

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
        return self._C.chebval(2.0 * np.asarray(p) - 1.0, self.cg)

    def bias(self, p):
        """e(p) = p·g_c(p) − h(p), h(p) = p·g(p) the weighted target (0 at p = 0)."""
        p = np.asarray(p, dtype=np.float64)
        return p * self.g(p) - self.target.h(p)

    def pvar(self, p):
        return self._C.chebval(2.0 * np.asarray(p, dtype=np.float64) - 1.0, self.cv)


class Verified:
    """Fine-grid verification of a table: β, V∞ (refined local maxima), V1 (exact quadrature),
    and the maxima locations used by the exchange."""

    def __init__(self, values: np.ndarray, n_fine: int | None = None, target: Target = LOG):
        K = len(values)
        ev = _Eval(values, target)
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


# ----------------------------------------------------------------------------------------------
# reference tables and constants (peers, minimax)


def _E_star(K: int, tables_dir=None, target: Target = LOG) -> float:
    """E*_K: from the target's minimax table in ``tables_dir`` when given (the build's output
    directory), else from the table found by name (``minimax.E_star``), else solved."""
    path = None
    name = minimax.table_name(target)
    if tables_dir is not None and (Path(tables_dir) / f"{name}.h5").is_file():
        path = Path(tables_dir) / f"{name}.h5"
    return float(minimax.E_star(K, target=target, path=path))


def _certify(values: np.ndarray, target: Target = LOG):
    """Rigorous enclosure of β (``aqpgen.certify.certify_beta``): the Certificate."""


    c = np.asarray(values, dtype=np.float64)
    return certify_beta(len(c), c, target=target, rel_slack=CERT_SLACK)


# ----------------------------------------------------------------------------------------------
# the conic program


def _cone_groups(lengths: np.ndarray, group: int = 64):
    """Split cones (sorted by length) into groups of ``group``; each is padded to its max length."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + group] for i in range(0, len(order), group)]


def _solve_program(K, c_ref, p_bias, p_var, *, mode, bias_scale, var_scale, bias_bound=None,
                   var_bound=None, objective="Vinf", settings=None, target=LOG):
    """One conic solve for δ around ``c_ref``.

    mode "eta": minimise V (``objective``) s.t. |e_i| <= bias_bound on p_bias.
    mode "rho": minimise t s.t. |e_i| <= t on p_bias and p·Var <= var_bound on p_var.
    Rows: bias (e_ref_i + p_i b_i^T δ)/bias_scale; cones sqrt(p_i b_im / var_scale)(c_m − g_i).
    Returns (c, status, objective value).
    """
    import cvxpy as cp
    import scipy.sparse as sp

    Bb = _pmf_rows(K, p_bias)
    with np.errstate(divide="ignore"):
        e_ref = p_bias * (Bb @ c_ref) - p_bias * target.g(p_bias)
    Ab = sp.diags(p_bias / bias_scale) @ Bb
    rb = e_ref / bias_scale

    # variance cones: points of the V∞ grid (and Gauss nodes for V1)
    if mode == "eta" and objective == "V1":
        pq, wq = gauss_legendre01(K)
        pv, wv = pq, wq * pq
    else:
        pv = p_var
        wv = pv
    Bv = _pmf_rows(K, pv).tocsr()
    nv = len(pv)
    nx = K + nv  # δ (K), then g_i − g_ref_i (nv)
    x = cp.Variable(nx)
    g_ref = Bv @ c_ref
    # equality: gδ_i − b_i^T δ = 0
    Aeq = sp.hstack([-Bv, sp.identity(nv, format="csr")], format="csr")
    cons = [Aeq @ x == 0]
    Abx = sp.hstack([Ab, sp.csr_matrix((len(p_bias), nv))], format="csr")
    # cone rows
    lengths = np.diff(Bv.indptr)
    groups = _cone_groups(lengths)
    cone_blocks = []
    for grp in groups:
        L = int(lengths[grp].max())
        rows, cols, vals, rhs = [], [], [], np.zeros(L * len(grp))
        for k, i in enumerate(grp):
            lo, hi = Bv.indptr[i], Bv.indptr[i + 1]
            ms = Bv.indices[lo:hi]
            wts = np.sqrt(wv[i] * Bv.data[lo:hi] / var_scale)
            r = k * L + np.arange(hi - lo)
            rows += [r, r]
            cols += [ms, np.full(hi - lo, K + i)]
            vals += [wts, -wts]
            rhs[r] = wts * (c_ref[ms] - g_ref[i])
        A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(L * len(grp), nx))
        cone_blocks.append((A, rhs, L, len(grp)))

    if mode == "eta":
        cons += [Abx @ x + rb <= bias_bound, -(Abx @ x + rb) <= bias_bound]
        if objective == "V1":
            obj = sum(cp.sum_squares(A @ x + r) for A, r, _, _ in cone_blocks)
        else:
            s = cp.Variable()
            for A, r, L, n in cone_blocks:
                X = cp.reshape(A @ x + r, (L, n), order="F")
                cons.append(cp.SOC(s * np.ones(n), X, axis=0))
            obj = s
    else:
        t = cp.Variable()
        cons += [Abx @ x + rb <= t, -(Abx @ x + rb) <= t]
        sb = math.sqrt(var_bound)
        for A, r, L, n in cone_blocks:
            X = cp.reshape(A @ x + r, (L, n), order="F")
            cons.append(cp.SOC(sb * np.ones(n), X, axis=0))
        obj = t
    prob = cp.Problem(cp.Minimize(obj), cons)
    opts = dict(SOLVER_SETTINGS if settings is None else settings)
    try:
        with warnings.catch_warnings():  # the status is checked below; no stray warnings
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=cp.CLARABEL, **opts)
    except cp.error.SolverError as exc:  # numerical failure inside the solver
        return None, f"solver_error: {exc}", float("nan")
    if x.value is None:
        return None, str(prob.status), float("nan")
    return c_ref + x.value[:K], str(prob.status), float(prob.value)


def _solve_checked(*args, alt_var_scale=None, **kw):
    """``_solve_program``, refined or retried on a non-optimal status; only "optimal" is returned.

    An "optimal_inaccurate" candidate is first *refined*: it becomes the reference table of a new
    correction solve (the correction is then small and the scaled rows well conditioned), up to
    ``REFINE_STEPS`` times.  Then the solve is retried with ``_RETRY_SETTINGS`` and with the
    variance cones rescaled by ``alt_var_scale`` (the variance reached so far).  The inaccurate
    candidate itself is never returned.
    """
    c, status, val = _solve_program(*args, **kw)
    if status == "optimal":
        return c, status, val
    if status in ("infeasible", "infeasible_inaccurate"):
        return None, status, val
    tried = [status.split(":")[0]]
    K, _, p_bias, p_var = args
    for _ in range(REFINE_STEPS):
        if c is None or not np.all(np.isfinite(c)):
            break
        c, status, val2 = _solve_program(K, c, p_bias, p_var, **kw)
        if status == "optimal":
            return c, status, val2
        tried.append("refined " + status.split(":")[0])
    attempts = [dict(settings=st) for st in _RETRY_SETTINGS]
    if alt_var_scale is not None and alt_var_scale != kw.get("var_scale"):
        attempts += [dict(var_scale=alt_var_scale, settings=st)
                     for st in (SOLVER_SETTINGS,) + _RETRY_SETTINGS]
    for extra in attempts:
        c2, status2, val2 = _solve_program(*args, **{**kw, **extra})
        if status2 == "optimal":
            return c2, status2, val2
        tried.append(status2.split(":")[0])
    return None, " / ".join(tried), val


# ----------------------------------------------------------------------------------------------
# public programs


def _nan_result(K, program, objective, param, budget, E_star, V_pl, beta_pl, it, solver_status,
                grid, status, info=None) -> AQPResult:
    nan = float("nan")
    return AQPResult(K, program, objective, float(param), np.full(K, nan), nan, nan, nan, nan,
                     float(budget), nan, float(E_star), float(V_pl), float(beta_pl), int(it),
                     solver_status, int(grid), status, dict(info or {}))


def plugin_constants(K: int, target: Target = LOG):
    """(V∞, β) of the plug-in table: ``metrics.variance_sup`` (the reference the audit uses) and
    the rigorous lower end of its β enclosure (so "β below the plug-in's" is proved)."""
    target = parse_target(target)
    c = plugin_table(K, target)
    return float(variance_sup(c, K)), float(_certify(c, target).beta_lower)


def _final_numbers(c: np.ndarray, ver: Verified, target: Target):
    """(metrics, V∞ for acceptance) of a candidate.  The metrics are the stored numbers
    (``metrics.table_metrics`` with the certificate's slack ``CERT_SLACK``); the exchange accepts
    on the larger of its own refined fine-grid V∞ and the metric's (conservative)."""
    m = table_metrics(len(c), c, target=target, rel_slack=CERT_SLACK)
    return m, max(ver.V_inf, m["V_inf"])


def solve_eta(K: int, eta: float, objective: str = "Vinf", *, target: Target = LOG,
              E_star: float | None = None, c_ref=None, max_rounds: int = MAX_ROUNDS) -> AQPResult:
    """Minimise V(c) subject to β(c) <= (1+η)·E*_K (docs/MATH.md §5, η program).

    Parameters
    ----------
    K : int
        Batch size, >= 2.
    eta : float
        Bias slack η >= 0 (η = 0 is the minimax table itself, up to solver accuracy).
    objective : {"Vinf", "V1"}
        V∞ = sup p·Var_p (default) or V1 = ∫ p·Var_p dp.
    target : Target or str
        The target g (default log p).
    E_star : float, optional
        E*_K; default ``aqpgen.minimax.E_star(K)``.
    c_ref : array, optional
        Reference table for the correction δ (default: the digamma table).
    max_rounds : int
        Maximum exchange rounds.

    Returns
    -------
    AQPResult
        ``status == "ok"`` iff the verified β (fine grid with refined maxima) and the certified β̄
        are <= (1+η)·E*_K and every solve was "optimal".  Otherwise values are NaN and ``status``
        says why.

    Raises
    ------
    InfeasibleError
        If η < 0 (the budget would be below the minimax error E*_K: no table exists).

    Possible issues
    ---------------
    For a fixed η the minimum variance grows faster than any power of K: the table must follow
    log p down to p ~ 1/K², which takes differences of c growing roughly like exp(c·sqrt K)
    (measured for η = 15: V∞/V∞(plug-in) ≈ 2.4 at K = 64, ≈ 1e3 at K = 256, ≈ 1e9 at K = 512).
    Once V∞ is ~1e6–1e9 times the plug-in's, the interior-point iterations lose feasibility in
    float64 (k/τ grows, Clarabel reports NumericalError) and the row is reported as "out of
    numerical reach".  A continuation in η (solving looser budgets first and starting from their
    tables) was tried and reached at most one budget halving further at 10–20× the cost, so it
    is not used.  At such variances the tables would be useless for training; prefer the rho
    presets at large K.
    """
    K = as_K(K, minimum=2)
    target = parse_target(target)
    if objective not in ("Vinf", "V1"):
        raise ValueError(f"objective must be 'Vinf' or 'V1', received {objective!r}")
    eta = float(eta)
    if not math.isfinite(eta):
        raise ValueError(f"eta must be finite, received {eta!r}")
    if eta < 0:
        raise InfeasibleError(f"eta must be >= 0: the budget (1+eta)*E*_K = {1 + eta}*E*_K is below "
                              f"the minimax error E*_K, so no table meets it (received eta={eta})")
    Es = float(E_star) if E_star is not None else _E_star(K, target=target)
    budget = (1.0 + eta) * Es
    if eta < ETA_MIN:
        # β <= E*_K has exactly one solution, the minimax table (Haar uniqueness); the solver's
        # tightened budget excludes it and its float64 rounding exceeds E*_K: report, don't solve
        return _nan_result(K, "eta", objective, eta, budget, Es, math.nan, math.nan, 0,
                           "not run", 0,
                           f"infeasible in float64: for eta={eta} < {ETA_MIN} the budget "
                           f"(1+eta)*E*_K leaves no room for the solver's tightening and rounding; "
                           f"eta = 0 is the minimax table itself (table {minimax.table_name(target)})")
    V_pl, beta_pl = plugin_constants(K, target)
    c = np.asarray(reference_table(K, target) if c_ref is None else c_ref, dtype=np.float64)
    return _exchange(K, "eta", objective, eta, c, budget=budget, E_star=Es, V_pl=V_pl,
                     beta_pl=beta_pl, max_rounds=max_rounds, target=target)


def solve_rho(K: int, rho: float, *, target: Target = LOG, E_star: float | None = None,
              c_ref=None, max_rounds: int = MAX_ROUNDS) -> AQPResult:
    """Minimise β(c) subject to V∞(c) <= ρ·V∞(plug-in at K) (docs/MATH.md §5, ρ program).

    ``status == "ok"`` iff every solve was "optimal", V∞ verified on the fine grid is <= ρ·V∞(plug-in)
    and β is below the plug-in's β.  ``E_star`` (default ``aqpgen.minimax.E_star``) only feeds the
    reported metric; pass NaN to skip it.

    Raises
    ------
    InfeasibleError
        If ρ <= 0 (only a constant table has V∞ = 0, and its β is not below the plug-in's).
    """
    K = as_K(K, minimum=2)
    target = parse_target(target)
    rho = float(rho)
    if not math.isfinite(rho):
        raise ValueError(f"rho must be finite, received {rho!r}")
    if rho <= 0:
        raise InfeasibleError(f"rho must be > 0 (received rho={rho})")
    Es = float(E_star) if E_star is not None else _E_star(K, target=target)
    V_pl, beta_pl = plugin_constants(K, target)
    c = np.asarray(plugin_table(K, target) if c_ref is None else c_ref, dtype=np.float64)
    return _exchange(K, "rho", "beta", rho, c, budget=rho * V_pl, E_star=Es, V_pl=V_pl,
                     beta_pl=beta_pl, max_rounds=max_rounds, target=target)


def _exchange(K, program, objective, param, c, *, budget, E_star, V_pl, beta_pl, max_rounds,
              target) -> AQPResult:
    p_bias = theta_grid(2 * K + 8)
    p_var = theta_grid(K + 8)
    tighten = TIGHTEN
    bias_scale = budget if program == "eta" else beta_pl
    var_scale = V_pl
    status = "not run"
    history = []
    for it in range(1, max_rounds + 1):
        grid = len(p_bias) + len(p_var)
        if program == "eta":
            c_new, status, _ = _solve_checked(
                K, c, p_bias, p_var, mode="eta", objective=objective, bias_scale=bias_scale,
                var_scale=V_pl, alt_var_scale=var_scale,
                bias_bound=budget * (1.0 - tighten) / bias_scale, target=target)
        else:
            c_new, status, t_opt = _solve_checked(
                K, c, p_bias, p_var, mode="rho", bias_scale=bias_scale, var_scale=V_pl,
                var_bound=budget * (1.0 - tighten) / V_pl, target=target)
            beta_grid = t_opt * bias_scale
        if c_new is None:
            if status.startswith("infeasible"):
                # both programs are feasible in exact arithmetic (eta: the minimax table; rho: any
                # constant table has V = 0), so a reported infeasibility is numerical
                why = (f"out of numerical reach: solver reports {status} at K={K}, "
                       f"{program}={param}, exchange round {it}, although the program is feasible "
                       f"({'the minimax table meets the budget' if program == 'eta' else 'a constant table has V = 0'})")
            else:
                why = (f"out of numerical reach: solver status {status} at K={K}, "
                       f"{program}={param}, exchange round {it}")
            return _nan_result(K, program, objective, param, budget, E_star, V_pl, beta_pl, it,
                               status, grid, why, {"history": history})
        c = c_new
        ver = Verified(c, target=target)
        history.append((ver.beta, ver.V_inf))
        if program == "eta":
            # scale the variance cones by the variance actually reached (objective O(1))
            var_scale = max(V_pl, ver.V_inf if objective == "Vinf" else ver.V1)
            ok = ver.beta <= budget
            if not ok:
                p_bias = np.concatenate([p_bias, ver.points_above("e", budget * (1.0 - tighten))])
                continue
            rho_ok = True
        else:
            ok = ver.V_inf <= budget
            rho_ok = ver.beta < beta_pl
            if not ok:
                p_var = np.concatenate([p_var, ver.points_above("v", budget * (1.0 - tighten))])
                bias_scale = max(ver.beta, 1e-300)
                continue
            bias_scale = max(ver.beta, 1e-300)
            # the verified β exceeds the grid optimum: the solver missed bias extrema, add them
            # (this only improves the optimum; acceptance does not depend on it)
            if not rho_ok or (ver.beta > beta_grid * (1.0 + 2e-3) and it < max_rounds // 2):
                p_bias = np.concatenate([p_bias, ver.points_above("e", beta_grid)])
                continue
        m, V_acc = _final_numbers(c, ver, target)
        beta_up = m["beta_cert"]
        if program == "eta" and not beta_up <= budget:
            # the certified bound exceeds the budget: tighten what the solver sees and retry
            tighten = min(0.05, tighten + beta_up / budget - 1.0 + 0.5 * TIGHTEN)
            p_bias = np.concatenate([p_bias, ver.points_above("e", budget * (1.0 - tighten))])
            continue
        if program == "rho" and not (V_acc <= budget and beta_up < beta_pl):
            tighten = min(0.05, tighten + max(V_acc / budget - 1.0, 0.0) + 0.5 * TIGHTEN)
            p_var = np.concatenate([p_var, ver.points_above("v", budget * (1.0 - tighten))])
            continue
        beta, V_inf = m["beta"], m["V_inf"]
        achieved = beta / E_star - 1.0 if program == "eta" else V_inf / V_pl
        return AQPResult(K, program, objective, float(param), c, beta, beta_up, V_inf, m["V1"],
                         float(budget), float(achieved), float(E_star), float(V_pl),
                         float(beta_pl), it, status, grid, "ok",
                         {"history": history, "tighten": tighten, "cert_ratio": beta_up / beta})
    return _nan_result(K, program, objective, param, budget, E_star, V_pl, beta_pl, max_rounds,
                       status, len(p_bias) + len(p_var),
                       f"out of numerical reach: exchange did not meet the budget in {max_rounds} "
                       f"rounds at K={K}, {program}={param} (beta, V_inf history: {history[-3:]})",
                       {"history": history})


def frontier(K: int, etas=None, rhos=None, *, objective: str = "Vinf", target: Target = LOG,
             E_star: float | None = None) -> list[AQPResult]:
    """Sweep the bias–variance frontier at one K: one ``AQPResult`` per η (``solve_eta``) or per
    ρ (``solve_rho``), in the order given.  Default: η in ``DEFAULT_ETAS``.  Points that fail keep
    their ``status`` (NaN numbers); nothing is dropped.
    """
    K = as_K(K, minimum=2)
    if etas is not None and rhos is not None:
        raise ValueError("give either etas or rhos, not both")
    target = parse_target(target)
    Es = float(E_star) if E_star is not None else _E_star(K, target=target)
    if rhos is not None:
        return [solve_rho(K, r, target=target, E_star=Es) for r in rhos]
    return [solve_eta(K, e, objective, target=target, E_star=Es)
            for e in (DEFAULT_ETAS if etas is None else etas)]


# ----------------------------------------------------------------------------------------------
# generator interface (docs/ARCHITECTURE.md)


def target_name(params) -> str:
    """The target of the table: ``"log p"`` unless ``params["target"]`` names another."""
    return _check_params(params)["target"].name


def kmin(params) -> int:
    """Smallest K of the standard grid of a family "pow" table: ``aqpgen.targets.pow_kmin``."""
    return pow_kmin(params)


def _check_params(params) -> dict:
    """Validate {"eta": η, "objective": "Vinf"|"V1"} or {"rho": ρ}, each with an optional
    "target" ("log" when absent); returns a normalised copy with a Target under "target"."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, received {type(params).__name__}")
    keys = set(params) - {"target"}
    target = parse_target(params.get("target", LOG))
    if keys <= {"eta", "objective"} and "eta" in keys:
        obj = params.get("objective", "Vinf")
        if obj not in ("Vinf", "V1"):
            raise ValueError(f"params['objective'] must be 'Vinf' or 'V1', received {obj!r}")
        return {"eta": float(params["eta"]), "objective": obj, "target": target}
    if keys == {"rho"}:
        return {"rho": float(params["rho"]), "target": target}
    raise ValueError("AQP params must be {'eta': η[, 'objective': 'Vinf'|'V1']} or {'rho': ρ} "
                     f"(each with an optional 'target'), received {params!r}")


def _solver_info(r: AQPResult) -> dict:
    import clarabel
    import cvxpy

    return {"solver": "CLARABEL", "cvxpy": cvxpy.__version__, "clarabel": clarabel.__version__,
            "status": r.solver_status, "exchange_rounds": int(r.iterations),
            "grid_size": int(r.grid_size), "settings": dict(SOLVER_SETTINGS),
            "pmf_cutoff": PMF_CUTOFF, "tighten": float(r.info.get("tighten", TIGHTEN)),
            "precision": "float64 solve; beta certified by aqpgen.certify"}


def build_K(K: int, params: dict, *, tables_dir=None):
    """Build one AQP row (generator interface): a ``KResult`` whose status explains any failure.

    Metrics: ``E_star``, ``beta``, ``beta_cert``, ``V_inf``, ``V1``, ``max_abs_c``, ``iterations``
    and ``eta_budget``/``eta_achieved`` or ``rho_budget``/``rho_achieved``.
    """
    K = as_K(K, minimum=2)
    prm = _check_params(params)
    try:
        tg = prm["target"]
        E = _E_star(K, tables_dir, tg)
        r = (solve_eta(K, prm["eta"], prm["objective"], target=tg, E_star=E) if "eta" in prm
             else solve_rho(K, prm["rho"], target=tg, E_star=E))
    except InfeasibleError as exc:
        nan = float("nan")
        r = _nan_result(K, "eta" if "eta" in prm else "rho", prm.get("objective", "beta"),
                        prm.get("eta", prm.get("rho")), nan, nan, nan, nan, 0, "not run", 0,
                        f"infeasible: {exc}")
    m = {"E_star": r.E_star, "beta": r.beta, "beta_cert": r.beta_cert, "V_inf": r.V_inf,
         "V1": r.V1, "max_abs_c": float(np.max(np.abs(r.values))), "iterations": float(r.iterations)}
    if r.program == "eta":
        m.update(eta_budget=r.budget, eta_achieved=r.achieved)
    else:
        m.update(rho_budget=r.budget, rho_achieved=r.achieved)
    return KResult(K=K, values=r.values, values_hp=None, metrics=m, status=r.status,
                   solver=_solver_info(r))


def verify_row(K, values, values_hp, metrics, params) -> list:
    """Re-check one stored AQP row from its values alone (generator interface).

    Checks
    ------
    ``aqp.beta_cert``  -- the rigorous β̄ recomputed from ``values`` (``aqpgen.certify``) is >= the
                          stored ``beta`` and <= 1.01·(its own lower end).
    ``aqp.eta_budget`` -- (eta presets) recomputed β̄ <= (1+η)·E*_K, E*_K from ``aqpgen.minimax``.
    ``aqp.rho_budget`` -- (rho presets) V∞ recomputed by ``aqpgen.metrics.variance_sup`` <=
                          ρ·V∞(plug-in) (same routine), and β̄ < the plug-in's β lower bound.
    """
    try:
        K = as_K(K, minimum=2)
        prm = _check_params(params)
    except (TypeError, ValueError) as exc:
        return [Check("aqp.params", False, str(exc), None)]
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (K,) or not np.all(np.isfinite(v)):
        return [Check("aqp.values", False, f"expected {K} finite float64 values", K)]
    metrics = dict(metrics or {})
    cert = _certify(v, prm["target"])
    stored = float(metrics.get("beta", math.nan))
    ok = cert.beta_upper >= stored * (1 - 1e-12) and cert.beta_upper <= 1.01 * cert.beta_lower
    checks = [Check("aqp.beta_cert", bool(ok),
                    f"recomputed beta in [{cert.beta_lower:.10e}, {cert.beta_upper:.10e}], stored "
                    f"beta {stored:.10e}, stored beta_cert {metrics.get('beta_cert', math.nan):.10e}",
                    K)]
    if "eta" in prm:
        Es = _E_star(K, target=prm["target"])
        budget = (1.0 + prm["eta"]) * Es
        checks.append(Check("aqp.eta_budget", bool(cert.beta_upper <= budget),
                            f"certified beta {cert.beta_upper:.10e} <= (1+{prm['eta']:g})*E*_K = "
                            f"{budget:.10e}", K))
    else:
        V_pl, beta_pl = plugin_constants(K, prm["target"])
        V = float(variance_sup(v, K))
        ok = V <= prm["rho"] * V_pl and cert.beta_upper < beta_pl
        checks.append(Check("aqp.rho_budget", bool(ok),
                            f"V_inf {V:.10e} <= {prm['rho']:g}*V_inf(plug-in) = "
                            f"{prm['rho'] * V_pl:.10e}; certified beta {cert.beta_upper:.10e} < "
                            f"plug-in beta {beta_pl:.10e}", K))
    return checks
