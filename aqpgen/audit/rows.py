"""Per-row audits: one (file, K) row in, its findings out (the unit of the process pool).

Approximation rows (target log p or p^a; methods minimax and aqp) are recomputed from the
stored values with the audit's own ball-arithmetic polynomials (:mod:`aqpgen.audit.rowpoly`):
β (the sup of |e(p)| = p|g_c(p) − g(p)|), V∞, V1, max|c|; the stored certified bound and a fresh
one; for minimax rows the equioscillation (K+1 alternating extrema), the levelled spread and
E_star; for AQP rows the budget of the eta or rho program (docs/MATH.md §5).  Polynomial rows
(method ustat) are checked exactly by :mod:`aqpgen.audit.exact`.

Public names
------------
RowTask                  -- one row to audit (picklable).
audit_row(task)          -- worker entry point: (file, K, findings, extra); never raises.
common_metrics(task, v)  -- max_abs_c, V_inf, V1 (and their log10 forms) from values ``v``.
fresh_certificate(task)  -- (bound, note): a fresh certified bound from the library certifier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from aqpgen.audit import exact
from aqpgen.audit.findings import (
    FRESH_CERT_CELLS,
    FRESH_CERT_SLACK,
    TOLERANCES,
    Finding,
    cert_check,
    compare_rel,
    info,
    lower_check,
)
from aqpgen.audit.rowpoly import (
    LOG_TARGET,
    AuditTarget,
    grid,
    sup_err,
    sup_pvar,
    to_fraction,
    with_prec,
)
from aqpgen.numerics import certify
from aqpgen.numerics.precision import flint_prec
from aqpgen.targets import parse_target

__all__ = ["RowTask", "audit_row", "common_metrics", "fresh_certificate"]


@dataclass(frozen=True)
class RowTask:
    """One (file, K) row and what the audit needs to judge it (picklable)."""

    file: str
    family: str
    method: str
    params: dict
    target_coeffs: tuple | None     # ustat: exact monomial coefficients as (num, den)
    K: int
    values: np.ndarray
    values_hp: tuple | None
    metrics: dict
    status: str
    E_star_ref: float | None        # AQP eta presets: E*_K from the minimax table
    target: AuditTarget = LOG_TARGET  # approximation rows: the weighted target
    target_text: str = "log p"      # the file's target attribute (for the library certifier)


def common_metrics(task: RowTask, vals: Sequence[Fraction], approx: bool, rp=None, grid_=None):
    """max_abs_c, V_inf, V1 from ``vals`` (``rp``: a ready RowPoly for them).

    For approximation rows (``approx``) every one is required; for exact rows only those
    stored.  Where V∞ or V1 overflow float64 the file must store ``inf`` and their log10 forms
    are compared instead.
    """
    out = []
    m = task.metrics
    if "max_abs_c" in m or approx:
        mq = max(abs(q) for q in vals)
        fq = float(mq)
        out.append(compare_rel(task, "max_abs_c", m.get("max_abs_c"), fq, "max_abs_c"))
        if "log10_max_abs_c" in m:
            # compared like log10_V_inf: a relative tolerance on max|c| is an absolute one on its
            # log10 (a relative one would fail near max|c| = 1, where log10 is ~0); exact
            # numerator/denominator logs only where float(max|c|) underflows
            lg = (math.log10(fq) if fq > 0.0
                  else (math.log10(mq.numerator) - math.log10(mq.denominator)) if mq else -math.inf)
            out.append(_log10_check(task, "max_abs_c", lg))
    if not (("V_inf" in m) or ("V1" in m) or approx):
        return out
    g = grid(task.K) if grid_ is None else grid_

    def both(r):
        return r.unscale_log10(sup_pvar(r, g)), r.unscale_log10(r.v1())

    (vinf, lg_vinf), (v1, lg_v1) = both(rp) if rp is not None else with_prec(both, vals)
    for name, val, lg in (("V_inf", vinf, lg_vinf), ("V1", v1, lg_v1)):
        if math.isfinite(val):
            out.append(compare_rel(task, name, m.get(name), val, name))
        else:
            st = m.get(name)
            ok = st is not None and math.isinf(st) and st > 0
            out.append(Finding(task.file, task.K, name, st, val, None, "inf (overflow)", ok,
                               "" if ok else f"K={task.K}: {name} overflows float64 "
                               f"(log10 = {lg:.9g}) but the file stores {st!r}"))
        if "log10_" + name in m or not math.isfinite(val):
            out.append(_log10_check(task, name, lg))
    return out


def _log10_check(task: RowTask, name: str, lg: float) -> Finding:
    """The stored ``log10_<name>`` against the recomputed ``lg``: the relative tolerance of
    ``name`` becomes an absolute one on its log10."""
    st = task.metrics.get("log10_" + name)
    tol = TOLERANCES[name] / math.log(10)
    ok = st is not None and math.isfinite(st) and abs(st - lg) <= tol
    return Finding(task.file, task.K, "log10_" + name, st, lg, None if st is None else abs(st - lg),
                   f"abs {tol:.3g}", ok, "" if ok else f"K={task.K}: stored log10_{name} = {st!r} "
                   f"but recomputed {lg:.15g}")


def fresh_certificate(task: RowTask):
    """A fresh certified upper bound on β from :func:`aqpgen.numerics.certify.certify_beta`.

    Why the audit calls the library here: a certificate is a proof (ball arithmetic over the
    whole interval, docs/MATH.md §6), and the audit's job is to check the stored bound against
    a fresh proof and against its own independently recomputed sup (``cert_check``: the bound
    must lie in [sup, 1.01·sup]).  A wrong certifier would therefore be caught by the sup.

    Returns (bound, note); note is non-empty when the certifier did not converge (the bound is
    still rigorous, but may be loose).
    """
    kwargs = {"values": task.values, "values_hp": task.values_hp, "rel_slack": FRESH_CERT_SLACK,
              "target": parse_target(task.target_text), "max_points": FRESH_CERT_CELLS * (task.K + 1)}
    # ask for a tight bound (cells refined until within FRESH_CERT_SLACK of the grid maximum), so
    # budgets met with a 1e-3 margin by the build are not lost to the certificate's own slack; but
    # a row whose own rounding floor is above that slack (the p^0.5 minimax rows from K ~ 448:
    # floor ~1.1e-4 of beta) cannot converge, so the cells are capped (the bound stays rigorous,
    # within ~the floor, and is still checked against [sup, 1.01 sup])
    cert = certify.certify_beta(task.K, **kwargs)
    note = "" if cert.converged else f" (certify did not converge: {cert.method})"
    return float(cert.beta_upper), note


def _audit_approx_row(task: RowTask) -> tuple[list[Finding], dict]:
    K = task.K
    m = task.metrics
    T = task.target
    out: list[Finding] = []
    extra: dict = {}
    if task.values_hp is not None:
        try:
            vals = [to_fraction(s) for s in task.values_hp]
        except (ValueError, ZeroDivisionError) as exc:
            return [info(task, "values_hp", False, f"K={K}: unparsable values_hp: {exc}")], extra
        out.append(exact.float64_check(task, vals))
    else:
        if not np.all(np.isfinite(task.values)):
            return [info(task, "values", False, f"K={K}: non-finite values in an 'ok' row")], extra
        vals = [Fraction(float(v)) for v in task.values]
    g = grid(K)
    is_minimax = task.method == "minimax"

    def main(rp):
        beta, ext = sup_err(rp, g, all_maxima=is_minimax)
        return beta, ext, common_metrics(task, vals, True, rp=rp, grid_=g), rp.prec

    beta, ext, common, prec = with_prec(main, vals, target=T)
    extra["beta"] = beta
    out.append(lower_check(task, "beta", m.get("beta"), beta))
    out.extend(common)
    out.append(cert_check(task, "beta_cert", m.get("beta_cert"), beta))
    fresh, why = fresh_certificate(task)
    f = cert_check(task, "beta_cert.fresh", fresh, beta)
    out.append(f if f.ok or not why else Finding(**{**asdict(f), "detail": f.detail + why}))
    if task.values_hp is not None and "beta_f64" in m and math.isfinite(m["beta_f64"]):
        f64 = [Fraction(float(v)) for v in task.values]
        b64 = with_prec(lambda r: sup_err(r, g)[0], f64, with_w=False, target=T)
        out.append(cert_check(task, "beta_f64", m["beta_f64"], b64))
    if is_minimax:
        out.extend(_minimax_checks(task, ext, extra, prec))
    elif task.method == "aqp":
        out.extend(_aqp_checks(task, beta, common, fresh))
        out.extend(_shape_checks(task))
    return out, extra


def _minimax_checks(task: RowTask, ext, extra: dict, prec: int) -> list[Finding]:
    """Equioscillation (>= K+1 alternating extrema), levelled spread, level = E_star."""
    K = task.K
    signs = [1 if float(y.mid()) > 0 else -1 for _, y in ext]
    alternating = all(signs[i] != signs[i + 1] for i in range(len(signs) - 1))
    n = len(ext)
    ok = alternating and n >= K + 1
    out = [info(task, "equioscillation", ok,
                f"{n} extrema with alternating signs (need K+1 = {K + 1})" if ok else
                f"K={K}: found {n} extrema of the error (need K+1 = {K + 1}), signs "
                f"{'alternate' if alternating else 'do not alternate'}",
                stored=None, recomputed=float(n), tol=">= K+1 alternating")]
    if not ext:
        return out
    with flint_prec(prec):
        mags = [abs(y) for _, y in ext]
        hi, lo = mags[0], mags[0]
        for a in mags[1:]:
            hi = max(hi, a)
            lo = min(lo, a)
        spread = float(((hi - lo) / hi).mid())
        level = float(((hi + lo) / 2).mid())
    extra["level"] = level
    tol = TOLERANCES["spread"]
    out.append(info(task, "spread", spread <= tol,
                    f"levelled spread {spread:.3g}" if spread <= tol else
                    f"K={K}: levelled-error spread {spread:.3g} exceeds {tol:g} (max {float(hi.mid()):.15g}, "
                    f"min {float(lo.mid()):.15g})", stored=task.metrics.get("spread"),
                    recomputed=spread, rel=spread, tol=f"<= {tol:g}"))
    out.append(compare_rel(task, "E_star", task.metrics.get("E_star"), level, "E_star"))
    return out


def _aqp_checks(task: RowTask, beta: float, common, fresh) -> list[Finding]:
    """Eta presets: E_star copy, budget (1+η)E*_K met by the fresh certificate, eta_achieved.
    Rho presets: budget ρ·V∞(plug-in) (plug-in g(n/K) recomputed here), rho_achieved, and
    β below the plug-in's β."""
    K = task.K
    p = task.params
    m = task.metrics
    out = []
    if "eta" in p:
        eta = float(Fraction(str(p["eta"])))
        E = task.E_star_ref
        if E is None or not math.isfinite(E):
            return [info(task, "E_star", False, f"K={K}: no E*_K available from the minimax table")]
        out.append(compare_rel(task, "E_star", m.get("E_star"), E, "E_star_copy"))
        budget = (1 + eta) * E
        out.append(compare_rel(task, "eta_budget", m.get("eta_budget"), budget, "E_star_copy"))
        bound = float(fresh)
        slack = TOLERANCES["budget"]
        ok = bound <= budget * (1 + slack) and beta <= budget * (1 + slack)
        out.append(Finding(task.file, K, "budget", bound, budget, bound / budget - 1,
                           f"beta_cert <= (1+eta)*E*_K (rel slack {slack:g})", ok,
                           "" if ok else f"K={K}: certified beta {bound:.12g} (sampled {beta:.12g}) exceeds the "
                           f"budget (1+{eta:g})*E*_K = {budget:.12g}"))
        ach = beta / E - 1
        st = m.get("eta_achieved")
        if st is not None:
            # the stored value may use the stored grid β (a lower bound within TOLERANCES["beta"])
            lo = (1 - TOLERANCES["beta"]) * beta / E - 1 - TOLERANCES["achieved"]
            ok = lo <= st <= ach + TOLERANCES["achieved"]
            out.append(Finding(task.file, K, "eta_achieved", st, ach, abs(st - ach),
                               f"in [(0.99*beta)/E*-1, beta/E*-1] +- {TOLERANCES['achieved']:g}", ok,
                               "" if ok else f"K={K}: stored eta_achieved {st:.9g} vs recomputed {ach:.9g}"))
    elif "rho" in p:
        rho = float(Fraction(str(p["rho"])))
        pl = task.target.plugin_values(K)
        g = grid(K)
        pl_beta, pl_vinf = with_prec(lambda r: (sup_err(r, g)[0], sup_pvar(r, g)), pl, target=task.target)
        vinf = next(f for f in common if f.check == "V_inf").recomputed
        budget = rho * pl_vinf
        out.append(compare_rel(task, "rho_budget", m.get("rho_budget"), budget, "V_inf"))
        slack = TOLERANCES["V_inf"]
        ok = vinf <= budget * (1 + slack)
        out.append(Finding(task.file, K, "budget", vinf, budget, vinf / budget - 1,
                           f"V_inf <= rho*V_inf(plug-in) (rel slack {slack:g})", ok,
                           "" if ok else f"K={K}: V_inf {vinf:.12g} exceeds rho*V_inf(plug-in) = {budget:.12g}"))
        ach = vinf / pl_vinf
        st = m.get("rho_achieved")
        if st is not None:
            d = abs(st - ach)
            out.append(Finding(task.file, K, "rho_achieved", st, ach, d, f"abs {TOLERANCES['achieved']:g}",
                               d <= TOLERANCES["achieved"],
                               "" if d <= TOLERANCES["achieved"] else
                               f"K={K}: stored rho_achieved {st:.9g} vs recomputed {ach:.9g}"))
        ok = beta < pl_beta
        out.append(Finding(task.file, K, "beats_plugin", beta, pl_beta, beta / pl_beta - 1,
                           "beta < beta(plug-in)", ok,
                           "" if ok else f"K={K}: beta {beta:.12g} is not below plug-in's {pl_beta:.12g}"))
    return out


def _shape_checks(task: RowTask) -> list[Finding]:
    """params shape = "monotone" (docs/MATH.md §5b): the stored floats follow the target's
    direction (log p and p^a, a >= 0: nondecreasing; -1 < a < 0: nonincreasing) and sign
    (log p: c_K <= 0; a >= 0: c_1 >= 0; a < 0: c_K >= 0), compared exactly (audit's own code)."""
    shape = task.params.get("shape", "none")
    if shape == "none":
        return []
    if shape != "monotone":
        return [info(task, "shape", False, f"K={task.K}: unknown shape {shape!r} in params")]
    a = task.target.a
    v = [float(x) for x in task.values]
    rising = a is None or a >= 0
    bad = [f"c[{i + 2}] {'<' if rising else '>'} c[{i + 1}] ({v[i + 1]!r} vs {v[i]!r})"
           for i in range(len(v) - 1) if not (v[i + 1] >= v[i] if rising else v[i + 1] <= v[i])]
    if a is None and not v[-1] <= 0:
        bad.append(f"c[{len(v)}] = {v[-1]!r} > 0")
    elif a is not None and not min(v[0], v[-1]) >= 0:
        bad.append(f"min(c[1], c[{len(v)}]) = {min(v[0], v[-1])!r} < 0")
    return [info(task, "shape", not bad,
                 f"K={task.K}: shape 'monotone' violated: " + "; ".join(bad[:5])
                 + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else "") if bad else
                 "nondecreasing" if rising else "nonincreasing",
                 stored=shape, recomputed=float(len(bad)), tol="exact (0 violations)")]


def audit_row(task: RowTask) -> tuple[str, int, list[Finding], dict]:
    """Worker entry point: audit one (file, K) row; never raises (errors become findings)."""
    try:
        if task.status != "ok":
            finite = bool(np.any(np.isfinite(task.values)))
            return task.file, task.K, [info(
                task, "status", not finite,
                f"row unavailable: {task.status}" if not finite else
                f"K={task.K}: row marked {task.status!r} but holds finite values")], {}
        if task.method == "ustat":
            out, go_on = exact.audit_power_row(task)
            if go_on:
                out.extend(common_metrics(task, [Fraction(float(v)) for v in task.values], approx=False))
            return task.file, task.K, out, {}
        out, extra = _audit_approx_row(task)
        return task.file, task.K, out, extra
    except Exception as exc:  # a crash in the audit of one row is itself a failed check  # noqa: BLE001
        return task.file, task.K, [info(task, "audit.error", False,
                                        f"K={task.K}: audit raised {type(exc).__name__}: {exc}")], {}
