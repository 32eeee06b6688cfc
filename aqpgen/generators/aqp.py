"""Variance-optimal augmented programs (AQP): the exchange, the programs, the generator.

For a target g (``aqpgen.targets``; log p unless the params say ``target = "p^a"``) and a table
c = c_K[1..K]: e(p) = p (g_c(p) - g(p)), beta(c) = sup |e|, V_inf(c) = sup_p p Var_p(c),
V1(c) = int_0^1 p Var_p dp (docs/MATH.md §1, §5).  Two programs:

* eta: minimise V_inf (or V1) subject to beta(c) <= (1 + eta) E*_K (E*_K: the minimax error);
* rho: minimise beta(c) subject to V_inf(c) <= rho V_inf(plug-in table at K).

Public names
------------
solve_eta(K, eta, objective="Vinf", *, target=LOG, shape="none") -> AQPResult   the eta program.
solve_rho(K, rho, *, target=LOG, shape="none") -> AQPResult                     the rho program.
                                     ``shape="monotone"``: c follows the target's monotonicity and
                                     sign (``aqpgen.generators.aqp_shape``, docs/MATH.md §5b).
frontier(K, etas=None, rhos=None, *, target=LOG)  sweep either program; one ``AQPResult`` each.
plugin_constants(K, target=LOG)      (V_inf, beta lower bound) of the plug-in table: the rho
                                     budgets and the "better than plug-in" test.
AQPResult                            frozen result of one solve (``status`` "ok" or the reason).
GENERATOR_VERSION, target_name, declared_inputs, build_K, verify_row   the generator interface
                                     (docs/ARCHITECTURE.md).

The exchange (why the programs stay accurate up to K = 1024)
------------------------------------------------------------
E*_K ~ 1e-7 at K = 1024 while |c| ~ 10.  Each solve is for a correction δ around a reference
table c_ref (the digamma table first, then the previous exchange iterate), bias rows are divided
by the bias scale (the budget) so every constraint is O(1), variance cones by sqrt(V∞(plug-in)).
Clarabel runs with explicit tolerances (``aqp_conic.SOLVER_SETTINGS``); a status other than "optimal" is
retried with relaxed settings (``aqp_conic.RETRY_SETTINGS``) and otherwise reported, never
shipped.  The solver's answer is a candidate: e(p) and p·Var_p are re-evaluated on a fine grid (``aqp_eval.evaluate``), local maxima above the
budget are refined and added to the grid (exchange), and the solver gets the budget tightened by
``TIGHTEN`` so the verified value meets the real budget.  The final acceptance for eta programs is
the rigorous bound of ``aqpgen.numerics.certify.certify_beta``; the stored numbers are
``aqpgen.numerics.metrics.table_metrics`` of the accepted table.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from aqpgen.errors import InfeasibleError
from aqpgen.generators import aqp_shape, minimax
from aqpgen.generators.aqp_conic import PMF_CUTOFF, SOLVER_SETTINGS, solve_checked
from aqpgen.generators.aqp_eval import Verified
from aqpgen.generators.peers import plugin_table, reference_table
from aqpgen.numerics.certify import certify_beta
from aqpgen.numerics.grids import theta_grid
from aqpgen.numerics.metrics import bias_sup, table_metrics, variance_sup
from aqpgen.records import STATUS_OK, Check, KResult, TableInput, as_K
from aqpgen.targets import LOG, Target, parse_target

__all__ = ["GENERATOR_VERSION", "AQPResult", "build_K", "declared_inputs", "frontier",
           "plugin_constants", "solve_eta", "solve_rho", "target_name", "verify_row"]

GENERATOR_VERSION = "5"

#: Relative tightening of the budget handed to the solver (verified value must meet the budget).
TIGHTEN = 1e-3
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
    info : dict
        Exchange history and settings.
    shape : str
        "none", or "monotone": the table follows the target's shape exactly (docs/MATH.md §5b).
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
    status: str = STATUS_OK
    info: dict = field(default_factory=dict)
    shape: str = "none"


# ----------------------------------------------------------------------------------------------
# reference tables and constants (peers, minimax)


def _certify(values: np.ndarray, target: Target = LOG):
    """Rigorous enclosure of β (``aqpgen.numerics.certify.certify_beta``): the Certificate."""


    c = np.asarray(values, dtype=np.float64)
    return certify_beta(len(c), c, target=target, rel_slack=CERT_SLACK)


# ----------------------------------------------------------------------------------------------
# public programs


def _nan_result(K, program, objective, param, budget, E_star, V_pl, beta_pl, it, solver_status,
                grid, status, info=None, shape="none") -> AQPResult:
    nan = float("nan")
    return AQPResult(K, program, objective, float(param), np.full(K, nan), nan, nan, nan, nan,
                     float(budget), nan, float(E_star), float(V_pl), float(beta_pl), int(it),
                     solver_status, int(grid), status, dict(info or {}), shape)


def plugin_constants(K: int, target: Target = LOG):
    """(V∞, β) of the plug-in table: ``metrics.variance_sup`` (the reference the audit uses) and
    ``metrics.bias_sup``, a rigorous lower bound on its β (so "β below the plug-in's" is proved);
    both evaluated in ball arithmetic, so the budgets are the same doubles on every machine.
    Computed once per (K, target) in a process (a pure function: ``aqpgen verify`` asks for it
    once per row of every ρ preset)."""
    return _plugin_constants_cached(as_K(K), parse_target(target).spec)


@functools.lru_cache(maxsize=4096)
def _plugin_constants_cached(K: int, target_spec: str) -> tuple[float, float]:
    target = parse_target(target_spec)
    c = plugin_table(K, target)
    return float(variance_sup(c, K)), float(bias_sup(c, K, target=target))


def _final_numbers(c: np.ndarray, ver: Verified, target: Target):
    """(metrics, V∞ for acceptance) of a candidate.  The metrics are the stored numbers
    (``metrics.table_metrics`` with the certificate's slack ``CERT_SLACK``); the exchange accepts
    on the larger of its own refined fine-grid V∞ and the metric's (conservative)."""
    m = table_metrics(len(c), c, target=target, rel_slack=CERT_SLACK)
    return m, max(ver.V_inf, m["V_inf"])


def solve_eta(K: int, eta: float, objective: str = "Vinf", *, target: Target = LOG,
              E_star: float | None = None, c_ref=None, max_rounds: int = MAX_ROUNDS,
              shape: str = "none") -> AQPResult:
    """Minimise V(c) subject to β(c) <= (1+η)·E*_K (docs/MATH.md §5).

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
        E*_K; default ``aqpgen.generators.minimax.E_star(K)``.
    c_ref : array, optional
        Reference table for the correction δ (default: the digamma table).
    max_rounds : int
        Maximum exchange rounds.
    shape : {"none", "monotone"}
        "monotone" adds the target's monotonicity and sign (docs/MATH.md §5b); the budget may
        then be below the smallest β of a monotone table (reported as infeasible).

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
    aqp_shape.check_shape(shape)
    if objective not in ("Vinf", "V1"):
        raise ValueError(f"objective must be 'Vinf' or 'V1', received {objective!r}")
    eta = float(eta)
    if not math.isfinite(eta):
        raise ValueError(f"eta must be finite, received {eta!r}")
    if eta < 0:
        raise InfeasibleError(f"eta must be >= 0: the budget (1+eta)*E*_K = {1 + eta}*E*_K is below "
                              f"the minimax error E*_K, so no table meets it (received eta={eta})")
    Es = float(E_star) if E_star is not None else minimax.E_star(K, target=target)
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
                     beta_pl=beta_pl, max_rounds=max_rounds, target=target, shape=shape)


def solve_rho(K: int, rho: float, *, target: Target = LOG, E_star: float | None = None,
              c_ref=None, max_rounds: int = MAX_ROUNDS, shape: str = "none") -> AQPResult:
    """Minimise β(c) subject to V∞(c) <= ρ·V∞(plug-in at K) (docs/MATH.md §5).

    ``status == "ok"`` iff every solve was "optimal", V∞ verified on the fine grid is <= ρ·V∞(plug-in)
    and β is below the plug-in's β.  ``E_star`` (default
    ``aqpgen.generators.minimax.E_star``) only feeds the reported metric; pass NaN to skip it.
    ``shape="monotone"`` adds the target's monotonicity and sign (docs/MATH.md §5b; still
    feasible: a constant table has the shape and V = 0).

    Raises
    ------
    InfeasibleError
        If ρ <= 0 (only a constant table has V∞ = 0, and its β is not below the plug-in's).
    """
    K = as_K(K, minimum=2)
    target = parse_target(target)
    aqp_shape.check_shape(shape)
    rho = float(rho)
    if not math.isfinite(rho):
        raise ValueError(f"rho must be finite, received {rho!r}")
    if rho <= 0:
        raise InfeasibleError(f"rho must be > 0 (received rho={rho})")
    Es = float(E_star) if E_star is not None else minimax.E_star(K, target=target)
    V_pl, beta_pl = plugin_constants(K, target)
    c = np.asarray(plugin_table(K, target) if c_ref is None else c_ref, dtype=np.float64)
    return _exchange(K, "rho", "beta", rho, c, budget=rho * V_pl, E_star=Es, V_pl=V_pl,
                     beta_pl=beta_pl, max_rounds=max_rounds, target=target, shape=shape)


def _why_no_candidate(K, program, param, status, it, shape) -> str:
    """The status of a row whose solve returned no candidate."""
    if not status.startswith("infeasible"):
        return (f"out of numerical reach: solver status {status} at K={K}, {program}={param}, "
                f"exchange round {it}")
    if program == "eta" and shape != "none":
        # the minimax table oscillates: a monotone table may not meet (1+η)E*_K at all
        return (f"infeasible: solver reports {status} at K={K}, eta={param}, shape={shape!r}, "
                f"exchange round {it}: the budget may be below the smallest beta of a table with "
                "that shape (docs/MATH.md §5b)")
    # both programs are feasible in exact arithmetic (eta: the minimax table; rho: any constant
    # table has V = 0 and the shape), so a reported infeasibility is numerical
    return (f"out of numerical reach: solver reports {status} at K={K}, {program}={param}, "
            f"exchange round {it}, although the program is feasible "
            f"({'the minimax table meets the budget' if program == 'eta' else 'a constant table has V = 0'})")


def _solve_round(K, program, objective, c, p_bias, p_var, *, budget, tighten, bias_scale, V_pl,
                 var_scale, target, shape):
    """One checked solve of the program on the current grids: (candidate or None, status, β of
    the grid optimum (rho) or NaN).  A candidate gets its shape restored exactly."""
    kw = {"bias_scale": bias_scale, "var_scale": V_pl, "target": target, "shape": shape}
    if program == "eta":
        c_new, status, _ = solve_checked(K, c, p_bias, p_var, mode="eta", objective=objective,
                                         alt_var_scale=var_scale,
                                         bias_bound=budget * (1.0 - tighten) / bias_scale, **kw)
        beta_grid = math.nan
    else:
        c_new, status, t_opt = solve_checked(K, c, p_bias, p_var, mode="rho",
                                             var_bound=budget * (1.0 - tighten) / V_pl, **kw)
        beta_grid = t_opt * bias_scale
    if c_new is not None and shape != "none":
        c_new = aqp_shape.repair(c_new, target)
    return c_new, status, beta_grid


def _exchange(K, program, objective, param, c, *, budget, E_star, V_pl, beta_pl, max_rounds,
              target, shape="none") -> AQPResult:
    p_bias = theta_grid(2 * K + 8)
    p_var = theta_grid(K + 8)
    tighten = TIGHTEN
    bias_scale = budget if program == "eta" else beta_pl
    var_scale = V_pl
    status = "not run"
    history = []
    fail = {"budget": budget, "E_star": E_star, "V_pl": V_pl, "beta_pl": beta_pl, "shape": shape}
    for it in range(1, max_rounds + 1):
        grid = len(p_bias) + len(p_var)
        c_new, status, beta_grid = _solve_round(
            K, program, objective, c, p_bias, p_var, budget=budget, tighten=tighten,
            bias_scale=bias_scale, V_pl=V_pl, var_scale=var_scale, target=target, shape=shape)
        if c_new is None:
            return _nan_result(K, program, objective, param, it=it, solver_status=status, grid=grid,
                               status=_why_no_candidate(K, program, param, status, it, shape),
                               info={"history": history}, **fail)
        c = c_new
        ver = Verified(c, target=target)
        history.append((ver.beta, ver.V_inf))
        if program == "eta":
            # scale the variance cones by the variance actually reached (objective O(1))
            var_scale = max(V_pl, ver.V_inf if objective == "Vinf" else ver.V1)
            if not ver.beta <= budget:
                p_bias = np.concatenate([p_bias, ver.points_above("e", budget * (1.0 - tighten))])
                continue
        else:
            bias_scale = max(ver.beta, 1e-300)
            if not ver.V_inf <= budget:
                p_var = np.concatenate([p_var, ver.points_above("v", budget * (1.0 - tighten))])
                continue
            # the verified β exceeds the grid optimum: the solver missed bias extrema, add them
            # (this only improves the optimum; acceptance does not depend on it)
            if not ver.beta < beta_pl or (ver.beta > beta_grid * (1.0 + 2e-3) and it < max_rounds // 2):
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
        return _accepted(K, program, objective, param, c, m, it=it, solver_status=status,
                         grid=grid, info={"history": history, "tighten": tighten}, target=target,
                         **fail)
    return _nan_result(K, program, objective, param, it=max_rounds, solver_status=status,
                       grid=len(p_bias) + len(p_var),
                       status=f"out of numerical reach: exchange did not meet the budget in "
                              f"{max_rounds} rounds at K={K}, {program}={param} (beta, V_inf "
                              f"history: {history[-3:]})", info={"history": history}, **fail)


def _accepted(K, program, objective, param, c, m, *, budget, E_star, V_pl, beta_pl, it,
              solver_status, grid, info, target, shape) -> AQPResult:
    """The result of an accepted candidate with metrics ``m``; a shape violation (impossible
    after ``aqp_shape.repair``, checked anyway) is reported instead."""
    bad = aqp_shape.violations(c, target) if shape != "none" else []
    if bad:
        return _nan_result(K, program, objective, param, budget=budget, E_star=E_star, V_pl=V_pl,
                           beta_pl=beta_pl, it=it, solver_status=solver_status, grid=grid,
                           status=f"shape {shape!r} violated: {'; '.join(bad[:3])}", info=info,
                           shape=shape)
    beta, V_inf = m["beta"], m["V_inf"]
    achieved = beta / E_star - 1.0 if program == "eta" else V_inf / V_pl
    return AQPResult(K, program, objective, float(param), c, beta, m["beta_cert"], V_inf, m["V1"],
                     float(budget), float(achieved), float(E_star), float(V_pl), float(beta_pl),
                     it, solver_status, grid, STATUS_OK,
                     {**info, "cert_ratio": m["beta_cert"] / beta}, shape)


def frontier(K: int, etas=None, rhos=None, *, objective: str = "Vinf", target: Target = LOG,
             E_star: float | None = None, shape: str = "none") -> list[AQPResult]:
    """Sweep the bias–variance frontier at one K: one ``AQPResult`` per η (``solve_eta``) or per
    ρ (``solve_rho``), in the order given.  Default: η in ``DEFAULT_ETAS``.  Points that fail keep
    their ``status`` (NaN numbers); nothing is dropped.  ``shape``: as in the programs.
    """
    K = as_K(K, minimum=2)
    if etas is not None and rhos is not None:
        raise ValueError("give either etas or rhos, not both")
    target = parse_target(target)
    Es = float(E_star) if E_star is not None else minimax.E_star(K, target=target)
    if rhos is not None:
        return [solve_rho(K, r, target=target, E_star=Es, shape=shape) for r in rhos]
    return [solve_eta(K, e, objective, target=target, E_star=Es, shape=shape)
            for e in (DEFAULT_ETAS if etas is None else etas)]


# ----------------------------------------------------------------------------------------------
# generator interface (docs/ARCHITECTURE.md)


def target_name(params) -> str:
    """The target of the table: ``"log p"`` unless ``params["target"]`` names another."""
    return _check_params(params)["target"].name


def _check_params(params) -> dict:
    """Validate {"eta": η, "objective": "Vinf"|"V1"} or {"rho": ρ}, each with an optional
    "target" ("log" when absent) and "shape" ("none" when absent, or "monotone"); returns a
    normalised copy with a Target under "target"."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, received {type(params).__name__}")
    keys = set(params) - {"target", "shape"}
    target = parse_target(params.get("target", LOG))
    shape = aqp_shape.check_shape(params.get("shape", "none"))
    if keys <= {"eta", "objective"} and "eta" in keys:
        obj = params.get("objective", "Vinf")
        if obj not in ("Vinf", "V1"):
            raise ValueError(f"params['objective'] must be 'Vinf' or 'V1', received {obj!r}")
        return {"eta": float(params["eta"]), "objective": obj, "target": target, "shape": shape}
    if keys == {"rho"}:
        return {"rho": float(params["rho"]), "target": target, "shape": shape}
    raise ValueError("AQP params must be {'eta': η[, 'objective': 'Vinf'|'V1']} or {'rho': ρ} "
                     f"(each with an optional 'target' and 'shape'), received {params!r}")


def _solver_info(r: AQPResult) -> dict:
    import clarabel
    import cvxpy

    return {"solver": "CLARABEL", "cvxpy": cvxpy.__version__, "clarabel": clarabel.__version__,
            "status": r.solver_status, "exchange_rounds": int(r.iterations),
            "grid_size": int(r.grid_size), "settings": dict(SOLVER_SETTINGS),
            "pmf_cutoff": PMF_CUTOFF, "tighten": float(r.info.get("tighten", TIGHTEN)),
            "precision": "float64 solve; beta certified by aqpgen.certify"}


def declared_inputs(params) -> dict:
    """The inputs of a row (generator interface): an eta preset's budget (1+η)·E*_K needs E*_K,
    the ``E_star`` metric of the target's minimax table at the same K; a rho preset declares none
    (the E*_K it reports is solved by ``minimax.E_star``, ~2 s at K = 1024, the same double)."""
    prm = _check_params(params)
    if "eta" not in prm:
        return {}
    return {"E_star": TableInput(minimax.table_name(prm["target"]), "E_star")}


def _input_E_star(K: int, prm: dict, inputs) -> float:
    """E*_K of a row: the declared input (eta), else solved (rho: a reported number only)."""
    if "eta" not in prm:
        return minimax.E_star(K, target=prm["target"])
    E = dict(inputs or {}).get("E_star")
    if E is None:
        raise ValueError(f"an eta row needs its declared input E*_K: build_K({K}, params, "
                         f"inputs={{'E_star': E}}) with E the E_star metric of table "
                         f"{minimax.table_name(prm['target'])!r} at K={K} (the build passes it), or "
                         "minimax.E_star(K) to solve it")
    E = float(E)
    if not (math.isfinite(E) and E > 0):
        raise ValueError(f"inputs['E_star'] must be a finite E*_K > 0, received {E!r}")
    return E


def build_K(K: int, params: dict, *, inputs=None):
    """Build one AQP row (generator interface): a ``KResult`` whose status explains any failure.

    ``inputs``: the values of ``declared_inputs(params)`` at K (``{"E_star": E*_K}`` for an eta
    row; a missing one is a ValueError).
    Metrics: ``E_star``, ``beta``, ``beta_cert``, ``V_inf``, ``V1``, ``max_abs_c``, ``iterations``
    and ``eta_budget``/``eta_achieved`` or ``rho_budget``/``rho_achieved``.
    """
    K = as_K(K, minimum=2)
    prm = _check_params(params)
    E = _input_E_star(K, prm, inputs)
    try:
        tg = prm["target"]
        sh = prm["shape"]
        r = (solve_eta(K, prm["eta"], prm["objective"], target=tg, E_star=E, shape=sh)
             if "eta" in prm else solve_rho(K, prm["rho"], target=tg, E_star=E, shape=sh))
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
    ``aqp.beta_cert``  -- the rigorous β̄ recomputed from ``values``
                          (``aqpgen.numerics.certify``) is >= the stored ``beta`` and
                          <= 1.01·(its own lower end).
    ``aqp.eta_budget`` -- (eta presets) recomputed β̄ <= (1+η)·E*_K, E*_K from ``aqpgen.generators.minimax``.
    ``aqp.rho_budget`` -- (rho presets) V∞ recomputed by ``aqpgen.numerics.metrics.variance_sup`` <=
                          ρ·V∞(plug-in) (same routine), and β̄ < the plug-in's β lower bound.
    ``aqp.shape``      -- (params shape = "monotone") the stored floats follow the target's
                          monotonicity and sign exactly (``aqp_shape.violations``; docs/MATH.md §5b).
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
        Es = minimax.E_star(K, target=prm["target"])
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
    if prm["shape"] != "none":
        bad = aqp_shape.violations(v, prm["target"])
        checks.append(Check("aqp.shape", not bad,
                            f"shape {prm['shape']!r}: " + ("; ".join(bad[:5]) + (
                                f" (and {len(bad) - 5} more)" if len(bad) > 5 else "")
                                if bad else "every difference and the sign bound hold"), K))
    return checks
