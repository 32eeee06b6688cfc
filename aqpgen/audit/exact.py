"""Exact audit of polynomial (U-statistic) tables, in rational and integer arithmetic.

A polynomial target sum_i a_i p^i of degree <= K−1 has exactly one unbiased table, the
U-statistic table c_K[n] = sum_i a_i (n−1)_i / (K−1)_i (docs/MATH.md §2).  The audit rebuilds it
here with Fractions and also checks unbiasedness directly: with Bernstein coefficients
c_0..c_{K-1}, g_c(p) = sum_k C(K−1,k) Δ^k c_0 p^k, so g_c equals a target of degree d iff
Δ^{d+1} c ≡ 0 and C(K−1,k) Δ^k c_0 = a_k for k <= d.

Public names
------------
exact_ustat_table(coeffs, K)       -- the exact table, n = 1..K, as Fractions.
mean_poly_equals(values, coeffs)   -- (ok, why): the exact unbiasedness test above.
parse_poly_target(text)            -- monomial coefficients of "p^2", "2p", "(1/3)p^2 - p".
params_coeffs(params)              -- the same from the params {"m": m} or {"coeffs": [...]}.
trim(coeffs)                       -- drop trailing zero coefficients.
float64_check(task, exact)         -- the stored float64 values are the correctly rounded exact ones.
audit_power_row(task)              -- the exact findings of one U-statistic row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from aqpgen.audit.findings import TOLERANCES, Finding, info, rel_diff
from aqpgen.audit.rowpoly import to_fraction

__all__ = [
    "audit_power_row",
    "exact_ustat_table",
    "float64_check",
    "mean_poly_equals",
    "params_coeffs",
    "parse_poly_target",
    "trim",
]


def exact_ustat_table(coeffs: Sequence[Fraction], K: int) -> list[Fraction]:
    """c_K[n] = sum_i a_i (n−1)_i / (K−1)_i, n = 1..K (docs/MATH.md §2), in rational arithmetic."""
    deg = max((i for i, a in enumerate(coeffs) if a != 0), default=0)
    if deg > K - 1:
        raise ValueError(f"no unbiased table exists for a degree-{deg} target with K={K} samples")
    out = []
    for n in range(1, K + 1):
        s = Fraction(0)
        num, den = Fraction(1), Fraction(1)
        for i, a in enumerate(coeffs):
            if i > 0:
                num *= (n - 1) - (i - 1)
                den *= (K - 1) - (i - 1)
            if a != 0:
                s += a * num / den
        out.append(s)
    return out


def mean_poly_equals(values: Sequence[Fraction], coeffs: Sequence[Fraction]) -> tuple[bool, str]:
    """Exact test that sum_m c_m b_{K-1,m}(p) equals sum_k a_k p^k (see the module docstring)."""
    K = len(values)
    n = K - 1
    den = 1
    for q in values:
        den = den * q.denominator // math.gcd(den, q.denominator)
    seq = [int(q * den) for q in values]
    deg = max((i for i, a in enumerate(coeffs) if a != 0), default=0)
    if deg > n:
        return False, f"target degree {deg} exceeds K-1 = {n}"
    diffs0 = []
    cur = seq
    for _k in range(deg + 1):
        diffs0.append(cur[0])
        cur = [cur[i + 1] - cur[i] for i in range(len(cur) - 1)]
    if any(cur):
        j = next(i for i, x in enumerate(cur) if x)
        return False, (f"forward differences of order {deg + 1} do not vanish (first at index {j}): "
                       f"the mean polynomial has degree > {deg}")
    for k in range(deg + 1):
        got = Fraction(math.comb(n, k) * diffs0[k], den)
        want = coeffs[k] if k < len(coeffs) else Fraction(0)
        if got != want:
            return False, f"coefficient of p^{k} of the mean polynomial is {got}, target has {want}"
    return True, "mean polynomial equals the target exactly"


def parse_poly_target(target: str) -> list[Fraction]:
    """Monomial coefficients of a header target such as ``"p^2"``, ``"2p"``, ``"(1/3)p^2 - p"``."""
    import sympy

    s = target.replace("^", "**")
    s = re.sub(r"(\d|\))\s*p", r"\1*p", s)
    p = sympy.Symbol("p")
    expr = sympy.sympify(s, locals={"p": p}, rational=True)
    poly = sympy.Poly(expr, p)
    return [Fraction(int(sympy.fraction(c)[0]), int(sympy.fraction(c)[1]))
            for c in reversed(poly.all_coeffs())]


def params_coeffs(params: Mapping) -> list[Fraction]:
    """Monomial coefficients from power params ``{"m": m}`` or ``{"coeffs": [...]}``."""
    if set(params) == {"m"}:
        m = int(params["m"])
        return [Fraction(0)] * m + [Fraction(1)]
    if set(params) == {"coeffs"}:
        return [Fraction(str(c)) for c in params["coeffs"]]
    raise ValueError(f"power params must be {{'m'}} or {{'coeffs'}}, received {dict(params)!r}")


def trim(c: Sequence[Fraction]) -> list[Fraction]:
    """The coefficients without trailing zeros (at least one kept)."""
    c = list(c)
    while len(c) > 1 and c[-1] == 0:
        c.pop()
    return c


def float64_check(task, exact: Sequence[Fraction]) -> Finding:
    """The stored float64 values are the correctly rounded ``exact`` values (bit-exact)."""
    want = np.array([float(q) for q in exact])
    v = np.asarray(task.values, dtype=np.float64)
    same = (v.view(np.uint64) == want.view(np.uint64)) | (v == want)
    if same.all():
        return info(task, "float64", True, "float64 values are the correctly rounded exact values",
                    tol="bit-exact")
    n = int(np.argmin(same)) + 1
    return info(task, "float64", False,
                f"K={task.K}: {int((~same).sum())} float64 value(s) differ from the correctly "
                f"rounded exact values, first n={n}: stored {v[n - 1]!r}, expected {want[n - 1]!r}",
                stored=float(v[n - 1]), recomputed=float(want[n - 1]),
                rel=rel_diff(v[n - 1], want[n - 1]), tol="bit-exact")


def audit_power_row(task) -> tuple[list[Finding], bool]:
    """Exact findings of one U-statistic row: exact.table, exact.unbiased, float64, exact,
    err_f64.  Returns (findings, go_on): go_on is False when no exact table exists at this K
    (then the variance metrics are not audited either)."""
    K = task.K
    coeffs = [Fraction(a, b) for a, b in task.target_coeffs]
    out: list[Finding] = []
    try:
        exact = exact_ustat_table(coeffs, K)
    except ValueError as exc:
        return [info(task, "exact.table", False, f"K={K}: {exc}")], False
    if task.values_hp is None:
        out.append(info(task, "exact.table", False, f"K={K}: no exact rationals stored (values_hp)"))
    else:
        try:
            stored = [to_fraction(s) for s in task.values_hp]
        except (ValueError, ZeroDivisionError) as exc:
            out.append(info(task, "exact.table", False, f"K={K}: unparsable values_hp: {exc}"))
        else:
            bad = [i for i, (s, e) in enumerate(zip(stored, exact)) if s != e]
            out.append(info(
                task, "exact.table", not bad,
                "stored rationals equal the exact table" if not bad else
                f"K={K}: {len(bad)} stored rational(s) differ from the exact table, first n="
                f"{bad[0] + 1}: stored {stored[bad[0]]}, exact {exact[bad[0]]}",
                stored=None if not bad else str(stored[bad[0]]),
                recomputed=None if not bad else str(exact[bad[0]]), tol="exact"))
            ok, why = mean_poly_equals(stored, coeffs)
            out.append(info(task, "exact.unbiased", ok, why if ok else f"K={K}: stored rationals: {why}",
                            tol="exact"))
    ok, why = mean_poly_equals(exact, coeffs)
    if not ok:  # pragma: no cover - the oracle itself failing would be a bug here
        out.append(info(task, "exact.oracle", False, f"K={K}: rebuilt table: {why}"))
    out.append(float64_check(task, exact))
    m = task.metrics
    err = max(abs(Fraction(float(v)) - q) for v, q in zip(task.values, exact))
    if "exact" in m:
        out.append(info(task, "exact", m["exact"] == 1.0,
                        "stored exact flag is 1" if m["exact"] == 1.0 else
                        f"K={K}: stored exact flag is {m['exact']!r}, expected 1.0",
                        stored=m["exact"], recomputed=1.0, tol="== 1"))
    if "err_f64" in m:
        e = float(err)
        st = m["err_f64"]
        valid = math.isfinite(st) and Fraction(st) >= err
        rd = 0.0 if e == st else rel_diff(st, e) if e > 0 else (0.0 if st < 1e-300 else math.inf)
        ok = valid and (rd <= TOLERANCES["err_f64"] or (e == 0 and st <= 1e-300))
        out.append(Finding(task.file, K, "err_f64", st, e, rd, f"bound, rel {TOLERANCES['err_f64']:g}",
                           ok, "" if ok else f"K={K}: stored err_f64 = {st!r} but max|float − exact| "
                           f"= {e!r}" + ("" if valid else " (not a valid bound)")))
    return out, True
