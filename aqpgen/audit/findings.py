"""The audit's vocabulary: tolerances, findings and the comparison rules.

Public names
------------
TOLERANCES             -- every tolerance of the audit (the single place they are defined).
TOLERANCE_HELP         -- the same rules in prose (printed by ``aqpgen audit --help``).
FRESH_CERT_SLACK       -- relative slack asked of the fresh certificate.
FRESH_CERT_CELLS       -- its cap on evaluated cells, per K + 1.
Finding                -- one compared quantity: file, K, check, stored, recomputed, rel. diff, ok.
FileAudit              -- the findings of one file (``ok``, ``failures``).
rel_diff(a, b)         -- |a − b| / |b| with the conventions for 0 and non-finite values.
info(task, ...)        -- a Finding for one row (any object with ``file`` and ``K``).
file_finding(...)      -- a file-level Finding (K is None).
compare_rel(task, ...) -- stored metric against the recomputed value, relative tolerance.
lower_check(...)       -- a stored grid maximum against the recomputed sup (it is a lower bound).
cert_check(...)        -- a certified bound must lie in [sup, 1.01·sup] (docs/MATH.md §6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FRESH_CERT_CELLS",
    "FRESH_CERT_SLACK",
    "TOLERANCES",
    "TOLERANCE_HELP",
    "FileAudit",
    "Finding",
    "cert_check",
    "compare_rel",
    "file_finding",
    "info",
    "lower_check",
    "rel_diff",
]

#: Every tolerance of the audit (the single place they are defined).
TOLERANCES: dict[str, float] = {
    "beta": 0.01,          # stored β is a grid max (a lower bound): (1 − 0.01)·sup <= β <= sup
    "V_inf": 1e-9,         # rel. diff stored V∞ vs recomputed sup (the two sups agree to ~1e-12)
    "V1": 1e-9,            # rel. diff stored V1 vs exact integral
    "max_abs_c": 1e-12,    # rel. diff
    "err_f64": 1e-6,       # rel. diff (power: max |float - exact|, rounded up)
    "cert_upper": 0.01,    # certified bound <= (1 + 0.01)·β
    "cert_lower": 1e-12,   # certified bound >= (1 - 1e-12)·β (β recomputed to ~1e-15)
    "E_star": 1e-8,        # rel. diff: levelled error vs stored E_star (8 digits)
    "E_star_copy": 1e-12,  # rel. diff: AQP file's E_star vs the minimax table's
    "spread": 1e-10,       # relative levelled-error spread of the minimax extrema
    "slope": 0.01,         # log p: |slope + 2| over K in [16, 1024]
    "slope_pow": 0.02,     # p^a: |slope + 2(a+1)| over K in [16, 1024]
    "budget": 1e-12,       # relative slack allowed on a budget comparison (float rounding)
    "achieved": 1e-6,      # abs. diff eta_achieved / rho_achieved
    "shape": 0.0,          # shape = "monotone": stored floats compared exactly (no slack)
}

#: Relative slack asked of the fresh certificate (``certify_beta(rel_slack=...)``).
FRESH_CERT_SLACK = 1e-4
#: Cells per K + 1 the fresh certificate may evaluate (``certify_beta(max_points=...)``); a
#: converging one uses ~10-25.
FRESH_CERT_CELLS = 64

TOLERANCE_HELP = (
    "Tolerances: beta (stored as a grid maximum, i.e. a lower bound) must satisfy "
    "0.99*sup <= beta <= sup (1e-9 rel slack), the sup being recomputed by Newton refinement in "
    "ball arithmetic; V_inf, V1 rel 1e-9 (sup refined by local grids, integral exact); max_abs_c "
    "rel 1e-12; err_f64 rel 1e-6; every certified bound (stored beta_cert, a fresh one from "
    "aqpgen.numerics.certify, beta_f64) must lie in [beta, 1.01*beta] (lower end with 1e-12 rel "
    "slack); minimax: >= K+1 alternating extrema, levelled spread <= 1e-10 rel, level = E_star "
    "to 1e-8 rel (8 digits), slope of log E*_K vs log K over K in [16,1024] = -2 +- 0.01 for "
    "log p and -2(a+1) +- 0.02 for p^a; AQP: E_star equals the minimax table's to 1e-12 rel, eta "
    "presets need the fresh certified beta <= (1+eta)*E*_K, rho presets V_inf <= "
    "rho*V_inf(plug-in) and beta < beta(plug-in) (budget slack 1e-12 rel; plug-in log(n/K) or "
    "(n/K)^a); achieved ratios abs 1e-6; AQP tables whose params say shape = \"monotone\": every "
    "step c[n+1] - c[n] has the target's direction and the extreme entry its sign, comparing the "
    "stored floats exactly (tolerance 0); power tables: stored rationals equal the exact table, "
    "mean polynomial equals the target in exact arithmetic, float64 correctly rounded (bit-exact)."
)


@dataclass(frozen=True)
class Finding:
    """One audited quantity.

    Attributes
    ----------
    file : str
        File name (basename) of the audited table.
    K : int or None
        Batch size the check concerns (None for file-level checks).
    check : str
        Check name (see :mod:`aqpgen.audit`).
    stored : float, str or None
        What the file claims (None when the check has no stored counterpart).
    recomputed : float, str or None
        What the audit recomputed.
    rel_diff : float or None
        |stored − recomputed| / |recomputed| where meaningful (or the quantity compared with
        the tolerance, e.g. the spread or |slope − expected|).
    tolerance : str
        The rule applied, human readable.
    ok : bool
        True when the rule holds.
    detail : str
        Explanation with the numbers (always set for failures).
    """

    file: str
    K: int | None
    check: str
    stored: float | str | None
    recomputed: float | str | None
    rel_diff: float | None
    tolerance: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class FileAudit:
    """The audit of one file: its header facts and every finding (file-level then by K)."""

    path: str
    name: str
    family: str
    method: str
    findings: tuple = ()
    rate: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every finding is ok."""
        return all(f.ok for f in self.findings)

    @property
    def failures(self) -> tuple:
        """The failing findings."""
        return tuple(f for f in self.findings if not f.ok)


def rel_diff(a: float, b: float) -> float:
    """|a − b| / |b| (0 when both are equal; inf when only b is 0 or a value is not finite)."""
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / abs(b) if b != 0 else math.inf


def info(task, check, ok, detail, stored=None, recomputed=None, rel=None, tol="") -> Finding:
    """A Finding about row ``task`` (an object with ``file`` and ``K``)."""
    return Finding(task.file, task.K, check, stored, recomputed, rel, tol, ok, detail)


def file_finding(fname, check, ok, detail, stored=None, recomputed=None, tol="") -> Finding:
    """A file-level Finding (K is None)."""
    return Finding(fname, None, check, stored, recomputed, None, tol, ok, detail)


def _cmax(task) -> float:
    v = np.asarray(task.values, dtype=np.float64)
    return float(np.max(np.abs(v))) if v.size and np.all(np.isfinite(v)) else 0.0


def compare_rel(task, check, stored, recomputed, tol_key, detail="") -> Finding:
    """Relative comparison of a stored metric with the recomputed value (``TOLERANCES[tol_key]``).

    V∞ and V1 of a (near-)constant table sit at rounding level; there they are compared with
    the absolute tolerance 1e-12·max(1, max|c|)².
    """
    tol = TOLERANCES[tol_key]
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return Finding(task.file, task.K, check, None, recomputed, None, f"rel {tol:g}", False,
                       f"metric {check!r} missing from the file (recomputed {recomputed:.12g})")
    rd = 0.0 if (recomputed == 0 and stored == 0) else rel_diff(stored, recomputed)
    ok = rd <= tol
    if not ok and tol_key in ("V_inf", "V1") and math.isfinite(float(stored)):
        ok = bool(abs(float(stored) - float(recomputed)) <= 1e-12 * max(1.0, _cmax(task)) ** 2)
    if not ok and not detail:
        detail = (f"K={task.K}: stored {check} = {stored:.12g} but recomputed {recomputed:.12g} "
                  f"(rel diff {rd:.3g} > {tol:g})")
    return Finding(task.file, task.K, check, float(stored), float(recomputed), rd, f"rel {tol:g}",
                   ok, detail)


def lower_check(task, check, stored, sup) -> Finding:
    """A stored grid maximum must satisfy (1 − tol)·sup <= stored <= sup + slack.

    The slack 1e-9·sup + 4(K+1)·eps·max|c| allows for the float64 evaluation the stored value
    came from (Bernstein weights sum to 1, so the rounding is ~K·eps·max|c| absolute).
    """
    tol = TOLERANCES["beta"]
    rule = f"(1-{tol:g})*sup <= stored <= sup"
    if stored is None or not math.isfinite(float(stored)):
        return Finding(task.file, task.K, check, None if stored is None else float(stored), sup, None,
                       rule, False, f"K={task.K}: {check} missing or not finite ({stored!r})")
    stored = float(stored)
    rd = rel_diff(stored, sup)
    slack = 1e-9 * sup + 4.0 * (task.K + 1) * 2.0 ** -52 * _cmax(task)
    ok = bool(sup * (1 - tol) <= stored <= sup + slack)
    detail = "" if ok else (
        f"K={task.K}: stored {check} = {stored:.12g} but the recomputed sup is {sup:.12g} "
        f"({'above the sup: not a lower bound' if stored > sup else f'more than {tol:.0%} below'})")
    return Finding(task.file, task.K, check, stored, sup, rd, rule, ok, detail)


def cert_check(task, check, bound, beta) -> Finding:
    """A certified bound must satisfy (1 − 1e-12)·β <= bound <= 1.01·β (docs/MATH.md §6)."""
    up, lo = TOLERANCES["cert_upper"], TOLERANCES["cert_lower"]
    rule = f"beta <= bound <= {1 + up:g}*beta"
    if bound is None or not math.isfinite(float(bound)):
        return Finding(task.file, task.K, check, None if bound is None else float(bound), beta,
                       None, rule, False, f"K={task.K}: {check} missing or not finite ({bound!r})")
    bound = float(bound)
    ratio = bound / beta if beta > 0 else math.inf
    ok = (bound >= beta * (1 - lo)) and (bound <= beta * (1 + up))
    detail = ""
    if not ok:
        why = ("below the recomputed sup (invalid bound)" if bound < beta * (1 - lo) else
               f"more than {up:.0%} above the recomputed sup")
        detail = (f"K={task.K}: {check} = {bound:.12g} is {why}: recomputed beta = {beta:.12g} "
                  f"(ratio {ratio:.9f})")
    return Finding(task.file, task.K, check, bound, beta, ratio - 1, rule, ok, detail)
