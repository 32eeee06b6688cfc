"""One conic solve of the AQP programs: a correction of a reference table (docs/MATH.md §5).

Public names
------------
solve_program(K, c_ref, p_bias, p_var, *, mode, ..., shape="none") -> (c, status, value)
                     one Clarabel solve (``shape="monotone"``: with the shape constraints).
solve_checked(...)   ``solve_program``, refined or retried on a non-optimal status; only an
                     "optimal" candidate is returned.
pmf_rows(K, p, cutoff=None)   sparse binomial rows b_{K-1,m}(p), truncated at ``PMF_CUTOFF``.
cone_groups(lengths, group=64) groups of variance cones of similar length (padded blocks).
PMF_CUTOFF, SOLVER_SETTINGS, RETRY_SETTINGS, REFINE_STEPS   the solver's explicit settings.

The programs (docs/MATH.md §5)
------------------------------
With b_m(p) = b_{K-1,m}(p) = C(K-1, m) p^m (1-p)^(K-1-m) and a table c = c_K[1..K],

.. math::

    g_c(p) = \\sum_m c_{m+1} b_m(p),\\qquad e(p) = p\\,(g_c(p) - \\log p),\\qquad
    \\mathrm{Var}_p(c) = \\sum_m b_m(p)\\,(c_{m+1} - g_c(p))^2 .

β(c) = sup |e| is a sup of affine functions of c; V∞(c) = sup_p p·Var_p(c) is a sup of convex
quadratics, written as second-order cones ‖sqrt(p_i b_{i,m})(c_{m+1} − g_i)‖₂ <= s with an
auxiliary scalar g_i = b_i^T c per grid point (two nonzeros per cone row).  Binomial rows are
truncated to the entries with b_m >= ``PMF_CUTOFF``·max_m b_m (a window O(sqrt(K p(1-p))) wide),
which keeps the cones sparse enough for K = 1024.

Scaling: each solve is for a correction δ around a reference table c_ref; bias rows are divided
by the bias scale so every constraint is O(1), variance cones by sqrt(var_scale).  Clarabel runs
with explicit tolerances (``SOLVER_SETTINGS``); a status other than "optimal" is refined or
retried (``RETRY_SETTINGS``) and otherwise reported to the caller, never returned as a table.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from aqpgen.generators import aqp_shape
from aqpgen.numerics.bernstein import binom_pmf
from aqpgen.numerics.grids import gauss_legendre01
from aqpgen.targets import LOG

__all__ = ["PMF_CUTOFF", "REFINE_STEPS", "RETRY_SETTINGS", "SOLVER_SETTINGS", "cone_groups",
           "pmf_rows", "solve_checked", "solve_program"]

#: Relative cutoff of the binomial rows fed to the solver (entries below cutoff·max are dropped).
PMF_CUTOFF = 1e-30
#: Clarabel settings, explicit.  Constraints are scaled to O(1), so tol_feas = 1e-6 means a bias
#: violation of ~1e-6·budget, far below the exchange's ``TIGHTEN`` margin (1e-3), and the relative gap 1e-6
#: bounds the objective's error; the exchange and the certificate accept or reject the candidate
#: independently anyway.  Measured on the shipped grid: at 1e-7 the last interior-point steps
#: often lose primal feasibility (residual 1e-8 -> 1e-3, Clarabel "InsufficientProgress" or
#: "AlmostSolved") at scattered K (5 of 263 rows for rho1, 28 for rho2); at 1e-6 those solve.
#: ``direct_solve_method="qdldl"``: on these KKT systems (thousands of bias rows coupled through
#: the K table entries) Clarabel's default faer factorisation was measured 6–17× slower than QDLDL
#: (K = 256: 4.15 s vs 0.24 s per solve; K = 1024 rho1: ~3 s with QDLDL).
#: ``RETRY_SETTINGS`` are tried in turn on failure; anything still not "optimal" is reported.
SOLVER_SETTINGS = dict(tol_gap_abs=1e-6, tol_gap_rel=1e-6, tol_feas=1e-6, tol_ktratio=1e-4,
                       max_iter=300, direct_solve_method="qdldl")
RETRY_SETTINGS = (
    dict(SOLVER_SETTINGS, equilibrate_enable=False),
    dict(tol_gap_abs=1e-6, tol_gap_rel=1e-6, tol_feas=1e-6, tol_ktratio=1e-4, max_iter=400,
         static_regularization_constant=1e-7, iterative_refinement_max_iter=20,
         direct_solve_method="qdldl"),
)
#: Refinement solves started from an "optimal_inaccurate" candidate before other retries.
REFINE_STEPS = 2


def pmf_rows(K: int, p: np.ndarray, cutoff: float | None = None):
    """Sparse CSR (len(p), K) of b_{K-1,m}(p), each row truncated to b_m >= cutoff·max b."""
    import scipy.sparse as sp

    cutoff = PMF_CUTOFF if cutoff is None else cutoff
    rows = []
    for start in range(0, len(p), 512):
        B = binom_pmf(K - 1, p[start:start + 512], method="boost")
        B[B < cutoff * B.max(axis=1, keepdims=True)] = 0.0
        rows.append(sp.csr_matrix(B))
    return sp.vstack(rows, format="csr")


def cone_groups(lengths: np.ndarray, group: int = 64):
    """Split cones (sorted by length) into groups of ``group``; each is padded to its max length."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + group] for i in range(0, len(order), group)]


def _bias_rows(K, c_ref, p_bias, bias_scale, target):
    """Scaled bias rows: e_i(c_ref + δ)/bias_scale = (A δ + r)_i."""
    import scipy.sparse as sp

    Bb = pmf_rows(K, p_bias)
    with np.errstate(divide="ignore"):
        e_ref = p_bias * (Bb @ c_ref) - p_bias * target.g(p_bias)
    return sp.diags(p_bias / bias_scale) @ Bb, e_ref / bias_scale


def _cone_blocks(K, c_ref, Bv, wv, var_scale, nx):
    """Variance cone rows sqrt(w_i b_im / var_scale)(c_m − g_i), grouped (``cone_groups``) and
    padded: a list of (A, r, L, n) with the group's rows A @ x + r, L rows per cone, n cones."""
    import scipy.sparse as sp

    g_ref = Bv @ c_ref
    lengths = np.diff(Bv.indptr)
    blocks = []
    for grp in cone_groups(lengths):
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
        blocks.append((A, rhs, L, len(grp)))
    return blocks


def _shape_cons(K, c_ref, x, nx, shape, target):
    """The shape constraints (``aqp_shape.constraints``) on c_ref + δ, as cvxpy constraints."""
    import scipy.sparse as sp

    if aqp_shape.check_shape(shape) == "none":
        return []
    G, h = aqp_shape.constraints(K, target)
    Gx = sp.hstack([G, sp.csr_matrix((G.shape[0], nx - K))], format="csr")
    return [Gx @ x <= h - G @ c_ref]


def _objective(cp, x, mode, objective, blocks, bias, bias_bound, var_bound):
    """(objective, constraints) of the eta or rho program over the bias rows ``bias`` (A, r)."""
    Abx, rb = bias
    cons = []
    if mode == "eta":
        cons += [Abx @ x + rb <= bias_bound, -(Abx @ x + rb) <= bias_bound]
        if objective == "V1":
            return sum(cp.sum_squares(A @ x + r) for A, r, _, _ in blocks), cons
        s = cp.Variable()
        for A, r, L, n in blocks:
            X = cp.reshape(A @ x + r, (L, n), order="F")
            cons.append(cp.SOC(s * np.ones(n), X, axis=0))
        return s, cons
    t = cp.Variable()
    cons += [Abx @ x + rb <= t, -(Abx @ x + rb) <= t]
    sb = math.sqrt(var_bound)
    for A, r, L, n in blocks:
        X = cp.reshape(A @ x + r, (L, n), order="F")
        cons.append(cp.SOC(sb * np.ones(n), X, axis=0))
    return t, cons


def solve_program(K, c_ref, p_bias, p_var, *, mode, bias_scale, var_scale, bias_bound=None,
                  var_bound=None, objective="Vinf", settings=None, target=LOG, shape="none"):
    """One conic solve for δ around ``c_ref``.

    mode "eta": minimise V (``objective``) s.t. |e_i| <= bias_bound on p_bias.
    mode "rho": minimise t s.t. |e_i| <= t on p_bias and p·Var <= var_bound on p_var.
    shape "monotone": also the linear shape constraints of ``aqp_shape.constraints`` (the
    solution satisfies them to the solver's tolerance; ``aqp_shape.repair`` makes them exact).
    Rows: bias (e_ref_i + p_i b_i^T δ)/bias_scale; cones sqrt(p_i b_im / var_scale)(c_m − g_i).
    Returns (c, status, objective value).
    """
    import cvxpy as cp
    import scipy.sparse as sp

    Ab, rb = _bias_rows(K, c_ref, p_bias, bias_scale, target)
    # variance cones: points of the V∞ grid (and Gauss nodes for V1)
    if mode == "eta" and objective == "V1":
        pv, wq = gauss_legendre01(K)
        wv = wq * pv
    else:
        pv = wv = p_var
    Bv = pmf_rows(K, pv).tocsr()
    nv = len(pv)
    nx = K + nv  # δ (K), then g_i − g_ref_i (nv)
    x = cp.Variable(nx)
    # equality: gδ_i − b_i^T δ = 0
    cons = [sp.hstack([-Bv, sp.identity(nv, format="csr")], format="csr") @ x == 0]
    cons += _shape_cons(K, c_ref, x, nx, shape, target)
    Abx = sp.hstack([Ab, sp.csr_matrix((len(p_bias), nv))], format="csr")
    obj, more = _objective(cp, x, mode, objective, _cone_blocks(K, c_ref, Bv, wv, var_scale, nx),
                           (Abx, rb), bias_bound, var_bound)
    prob = cp.Problem(cp.Minimize(obj), cons + more)
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


def solve_checked(*args, alt_var_scale=None, **kw):
    """``_solve_program``, refined or retried on a non-optimal status; only "optimal" is returned.

    An "optimal_inaccurate" candidate is first *refined*: it becomes the reference table of a new
    correction solve (the correction is then small and the scaled rows well conditioned), up to
    ``REFINE_STEPS`` times.  Then the solve is retried with ``RETRY_SETTINGS`` and with the
    variance cones rescaled by ``alt_var_scale`` (the variance reached so far).  The inaccurate
    candidate itself is never returned.
    """
    c, status, val = solve_program(*args, **kw)
    if status == "optimal":
        return c, status, val
    if status in ("infeasible", "infeasible_inaccurate"):
        return None, status, val
    tried = [status.split(":")[0]]
    K, _, p_bias, p_var = args
    for _ in range(REFINE_STEPS):
        if c is None or not np.all(np.isfinite(c)):
            break
        c, status, val2 = solve_program(K, c, p_bias, p_var, **kw)
        if status == "optimal":
            return c, status, val2
        tried.append("refined " + status.split(":")[0])
    attempts = [dict(settings=st) for st in RETRY_SETTINGS]
    if alt_var_scale is not None and alt_var_scale != kw.get("var_scale"):
        attempts += [dict(var_scale=alt_var_scale, settings=st)
                     for st in (SOLVER_SETTINGS,) + RETRY_SETTINGS]
    for extra in attempts:
        c2, status2, val2 = solve_program(*args, **{**kw, **extra})
        if status2 == "optimal":
            return c2, status2, val2
        tried.append(status2.split(":")[0])
    return None, " / ".join(tried), val
