"""Minimax (bias-optimal) tables: the Remez solution as a table, E*_K, the rate audit.

The problem (docs/MATH.md §3)
-----------------------------
For batch size K the table c_K[1..K] has mean g_c(p) = sum_m c_{m+1} b_{K-1,m}(p), any polynomial
Q of degree <= K-1.  The bias-optimal table for the target g (``aqpgen.targets``; log p unless
the params say ``target = "p^a"``) minimises the p-weighted bias,

.. math::  E^*_K = \\min_{\\deg Q \\le K-1}\\ \\sup_{p\\in[0,1]} |p\\,Q(p) - p\\,g(p)| ,

solved by ``aqpgen.generators.remez.remez``.  For log p the error equioscillates at K+1 points of
(0, 1] (p = 1 is one of them at every K computed (1..1024), p = 0 never, since e(0) = 0); K = 1
has the closed form E*_1 = W(1/e) (Lambert W), c_1 = [-W(1/e)]; theory (Ditzian-Totik,
omega^2_phi(p log p, 1/K) ~ 1/K^2) gives K^2 E*_K -> const, checked by ``rate_audit``
(docs/MATH.md §4).  For p^a the rate is K^(-2(a+1)).

Public names
------------
(The Remez exchange itself, ``remez`` and ``MinimaxResult``, is ``aqpgen.generators.remez``.)
minimax_table(K, *, target=LOG, ...)     -> (values_hp, values_f64, result): the table c_K.
table_prec(K)                            working precision (bits) of the table conversion.
table_name(target)                       "kl-minimax" for log p, "pow0.5-minimax" for p^0.5, ...
E_star(K, *, target=LOG)                 E*_K solved by remez (what the table stores).
rate_audit(Ks, E, *, target=LOG) -> RateAudit   K^r E*_K, fitted log-log slope, limit.
table_error_at_extrema(values_hp, *, target=LOG) the table's error at its located extrema (arb).
GENERATOR_VERSION, TABLE_NAME, target_name, build_K, verify_row   the generator interface
                                         (docs/ARCHITECTURE.md).

Table conversion and the growth of the coefficients
---------------------------------------------------
The table is the Bernstein coefficient vector of Q: c_K[m+1] = coefficient of b_{K-1,m}.  With
t = p/(1-p) one has b_{n,m}(p) = C(n,m) t^m (1+t)^(-n), so (1+t)^n Q = sum_m c_{m+1} C(n,m) t^m,
computed by Clenshaw's recurrence homogenised by (1+t):
beta_j = a_j (1+t)^(n-j) + 2(t-1) beta_{j+1} - (1+t)^2 beta_{j+2}, (1+t)^n Q = a_0 (1+t)^n +
(t-1) beta_1 - (1+t)^2 beta_2 (n = K-1), in ``arb_poly`` at ``table_prec(K)`` bits.

Growth (measured, K = 1..1024): the coefficients alternate in sign (c_1 < 0) and

    log2 max|c_K| = K - 2 log2 K - 1.12   (to +-0.01 for 64 <= K <= 1024),

i.e. max|c_K| ~ 0.46 * 2^K / K^2 (K = 64: 2^50.9; 256: 2^238.9; 512: 2^492.9; 1024: 2^1002.9
~ 1e302).  The 2^K is that of the Bernstein coefficients of T_{K-1}(2p-1)
(C(2n,n)/C(n,n/2) ~ 2^n); the Chebyshev coefficients of Q (~2(-1)^(j+1)/j, as for log p) add in
phase.  float64 still holds the table at K = 1024; it overflows from K ~ 1046 on.  Hence:

* the conversion precision is table_prec(K) = K + 128 bits: ~K bits are cancelled when the table
  is summed (sum_m c b_m = O(log K) while |c| ~ 2^K) and 128 bits remain; the result's ball
  radii are checked (max rad(c) <= 1e-20 E*_K, else the precision is raised);
* the decimal strings carry D = ceil(log10(max|c| / E*_K)) + 20 significant digits, so that the
  rounding of the strings moves Q by at most ~1e-20 E*_K (sum_m b_m(p) = 1).

Possible issues
---------------
* Never evaluate the table in float64 Bernstein form for large K (cancellation ~2^K); use the
  strings in high precision (``verify_row``) or the Chebyshev coefficients ``result.cheb``.
* The float64 table (``values_f64``) is the correctly rounded strings; its own bias differs from
  E*_K by up to ~2^-53 max|c|, astronomically for K >~ 60 (metric ``beta_f64`` records it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aqpgen.errors import ConvergenceError
from aqpgen.generators.remez import (
    Engine,
    MinimaxResult,
    grid_size,
    reference_p,
    remez,
    select_alternating,
)
from aqpgen.numerics.bernstein import cheb_to_bernstein
from aqpgen.numerics.fit import loglog_slope, neville0_weights, richardson_limit
from aqpgen.numerics.metrics import table_metrics
from aqpgen.numerics.precision import flint_prec, work_prec
from aqpgen.records import STATUS_OK, Check, KResult, as_K
from aqpgen.targets import LOG, Target, parse_target, table_prefix

__all__ = ["GENERATOR_VERSION", "TABLE_NAME", "VERIFY_SPREAD", "E_star", "RateAudit", "build_K",
           "minimax_table", "rate_audit", "table_error_at_extrema", "table_name", "table_prec",
           "target_name", "verify_row"]

#: bump when the output for the same inputs changes.
GENERATOR_VERSION = "3"
#: the acceptance threshold checked by ``verify_row``.
VERIFY_SPREAD = 1e-10
#: relative agreement required between a re-evaluated table and its stored E_star (8 digits).
VERIFY_E_DIGITS = 8
#: name of the minimax table of log p (``table_name(target)`` for any target).
TABLE_NAME = "kl-minimax"
#: float64 unit roundoff (the rounding of E*_K and of K^r E*_K in the rate audit).
_U = 2.0**-53


def table_prec(K: int) -> int:
    """Working precision (bits) of the Chebyshev -> Bernstein conversion:
    ``work_prec(K, magnitude_bits=K)`` = K + 128 up to K = 1024.

    The table's coefficients reach max|c_K| ~ 2^K / K while the polynomial they represent is
    O(log K) (module docstring), so ~K bits cancel in sum_m c_{m+1} b_{K-1,m}(p); 128 bits are left
    for the result (E*_K ~ 0.325 / K^2 needs ~2 log2 K + 70 of them for 20 digits beyond E*_K).
    """
    K = as_K(K)
    return work_prec(K, magnitude_bits=K)


def minimax_table(K: int, *, target: Target = LOG, prec: int | None = None,
                  tol: float | None = None, result: MinimaxResult | None = None,
                  conv_prec: int | None = None):
    """The minimax (bias-optimal) table c_K[1..K] for log p.

    Parameters
    ----------
    K : int
        Batch size >= 1.
    prec, tol : optional
        Passed to ``remez`` (ignored when ``result`` is given).
    result : MinimaxResult, optional
        A previous ``remez(K)`` result to convert instead of solving.
    conv_prec : int, optional
        Bits of the conversion (default ``table_prec(K)`` = K + 128; raised automatically until the
        ball radii satisfy max rad(c) <= 1e-20 E*_K).

    Returns
    -------
    values_hp : tuple of str
        c_K[1..K] as decimal strings with D = ceil(log10(max|c| / E*_K)) + 20 significant digits
        (module docstring: rounding them moves Q by <= ~1e-20 E*_K).
    values_f64 : numpy.ndarray
        The same, correctly rounded from the strings to float64.
    result : MinimaxResult
        The Remez result the table was converted from.
    """
    K = as_K(K)
    target = parse_target(target)
    if result is None:
        result = remez(K, target=target, prec=prec, tol=tol)
    elif not isinstance(result, MinimaxResult) or result.K != K or result.target != target.name:
        raise ValueError(f"result must be a MinimaxResult for K={K} and the target "
                         f"{target.name!r}, received {result!r:.80}")
    bits = table_prec(K) if conv_prec is None else int(conv_prec)
    E = result.E
    for _ in range(4):
        c = cheb_to_bernstein(result.cheb, bits)
        with flint_prec(bits):
            rad = max(float(v.rad()) for v in c)
            cmax = max(abs(float(v.mid())) for v in c)
            if rad <= 1e-20 * E:
                D = max(0, math.ceil(math.log10(cmax) - math.log10(E))) + 20 if cmax > 0 else 20
                strings = tuple(v.mid().str(D, radius=False) for v in c)
                break
        bits += 64 + bits // 4
    else:
        raise ConvergenceError(
            f"minimax_table(K={K}): conversion radii {rad:.3g} > 1e-20*E*_K = {1e-20 * E:.3g} "
            f"at {bits} bits", {"K": K, "bits": bits, "rad": rad})
    values = np.array([float(s) for s in strings], dtype=np.float64)
    return strings, values, result


# --------------------------------------------------------------------------------------------
# E*_K look-up and the Theta(1/K^2) rate audit
# --------------------------------------------------------------------------------------------
def table_name(target: Target = LOG) -> str:
    """Name of the shipped minimax table of a target: "kl-minimax" (log p), "pow0.5-minimax"."""
    return f"{table_prefix(target)}-minimax"


def E_star(K: int, *, target: Target = LOG) -> float:
    """E*_K as a float, solved by ``remez(K)`` (default precision and tolerance: the value the
    minimax table stores as its ``E_star`` metric, bit for bit; ~2 s at K = 1024).

    Generators read no files: a table that needs the stored value declares it as an input
    (``aqpgen.records.TableInput``; the AQP eta presets) and the build passes it.  Solved once per
    (K, target) in a process (a pure function: ``aqpgen verify`` asks for it once per eta row).
    """
    return _E_star_cached(as_K(K), parse_target(target).spec)


@functools.lru_cache(maxsize=4096)
def _E_star_cached(K: int, target_spec: str) -> float:
    return remez(K, target=parse_target(target_spec)).E


@dataclass(frozen=True)
class RateAudit:
    """The Theta(K^-r) audit of E*_K (docs/MATH.md §4: r = 2, slope -2 +- 0.01 for log p; r =
    2(a+1), slope -r +- 0.02 for p^a; the slope is fitted over K >= 16).

    Attributes
    ----------
    Ks : tuple of int
        The K values, ascending.
    E : tuple of float
        E*_K for each K.
    K2E : tuple of float
        K^r E*_K for each K (K^2 E*_K for log p; the name is kept from then).
    rate : float
        r, the target's rate exponent (``target.rate_exponent``).
    slope : float
        Least-squares slope of log E*_K against log K over K >= ``Kmin`` (NaN if < 2 points).
    slope_tol : float
        ``ok`` requires ``|slope + rate| <= slope_tol``.
    Kmin : int
        Smallest K used in the slope fit (16).
    n_fit : int
        Number of K values in the slope fit.
    ok : bool
        ``|slope + rate| <= slope_tol`` (and at least two K >= Kmin).
    limit_value : float
        Extrapolated lim K^r E*_K (Richardson / Neville extrapolation in h = 1/K^2 through the
        ``len(estimates) + 1`` largest K; for log p the expansion K^2 E*_K = C + c_2/K^2 +
        c_4/K^4 + ... is measured: first differences of K^2 E*_K fall by 4 per doubling of K,
        and those of the once-extrapolated values by 16, so no odd powers appear).
    extrap_err : float
        The extrapolation's own error estimate: the larger of |last estimate - previous
        estimate| and |last estimate - the same-order extrapolation through the next-largest K|,
        floored at 8 ulp of the limit.
    input_err : float
        What the inputs' accuracy allows: sum |w_i| |K_i^r E_i| (spread_i + 8u) over the final
        stencil (w: Lagrange weights at h = 0, about 54 in total for K = 640…1024; spread_i: the
        relative accuracy of E_i passed as ``spread``, e.g. the Remez levelled-error spread;
        u = 2^-53 for the float64 rounding of E_i and of K^r E_i).
    limit_err : float
        ``extrap_err + input_err``.
    limit_digits : int
        Significant digits of the limit justified by ``limit_err`` (floor(-log10(err/C))).
    limit : str
        The limit rounded to ``limit_digits`` significant digits.
    estimates : tuple of float
        Successive extrapolations through 2, 3, ... of the largest K (orders h^1, h^2, ...).
    """

    Ks: tuple
    E: tuple
    K2E: tuple
    rate: float
    slope: float
    slope_tol: float
    Kmin: int
    n_fit: int
    ok: bool
    limit_value: float
    extrap_err: float
    input_err: float
    limit_err: float
    limit_digits: int
    limit: str
    estimates: tuple

    def to_text(self) -> str:
        """Human-readable K, E*_K, K^r E*_K table with the slope and the limit."""
        kr = f"K^{self.rate:g} E*_K"
        lines = [f"{'K':>6}  {'E*_K':>22}  {kr:>18}"]
        for K, E, f in zip(self.Ks, self.E, self.K2E):
            lines.append(f"{K:>6}  {E:>22.15e}  {f:>18.15f}")
        lines.append(f"fitted log-log slope over K >= {self.Kmin} ({self.n_fit} values): "
                     f"{self.slope:+.6f} (required {-self.rate:g} +- {self.slope_tol:g}): "
                     f"{'ok' if self.ok else 'FAIL'}")
        lines.append(f"lim {kr} = {self.limit} ({self.limit_digits} digits; Richardson in 1/K^2, "
                     f"error estimate {self.limit_err:.1e} = extrapolation {self.extrap_err:.1e} "
                     f"+ inputs {self.input_err:.1e})")
        return "\n".join(lines)


def rate_audit(Ks: Sequence[int], E: Sequence[float], *, Kmin: int = 16, order: int = 3,
               target: Target = LOG, slope_tol: float = 0.01,
               spread: Sequence[float] | None = None) -> RateAudit:
    """Audit E*_K = Theta(K^-r), r = ``target.rate_exponent`` (2 for log p): the K^r E*_K table,
    the log-log slope, the extrapolated limit.

    Parameters
    ----------
    Ks : sequence of int
        Batch sizes (distinct, any order).
    E : sequence of float
        E*_K for each K (positive).
    Kmin : int
        The slope is fitted by least squares on log E against log K over K >= Kmin
        (``aqpgen.numerics.fit.loglog_slope``).
    order : int
        Highest order of the extrapolation in h = 1/K^2 (uses the order+1 largest K;
        ``aqpgen.numerics.fit.richardson_limit``).
    target : Target or str
        The target whose rate is audited (default log p).
    slope_tol : float
        ``ok`` requires |slope + r| <= slope_tol.
    spread : sequence of float, optional
        Relative accuracy of each E*_K (a table's ``spread`` metric); default 0 (only the
        float64 rounding counts).  Enters ``input_err`` and so the justified digits.

    Returns
    -------
    RateAudit
    """
    target = parse_target(target)
    r = float(target.rate_exponent)
    Ks = [as_K(k, "Ks[i]") for k in Ks]
    E = [float(e) for e in E]
    if len(Ks) != len(E) or not Ks:
        raise ValueError(f"Ks and E must be non-empty and of equal length, received {len(Ks)} and {len(E)}")
    if len(set(Ks)) != len(Ks):
        raise ValueError("Ks must be distinct")
    if not all(math.isfinite(e) and e > 0 for e in E):
        raise ValueError("E must hold positive finite numbers")
    sp = [0.0] * len(Ks) if spread is None else [float(x) for x in spread]
    if len(sp) != len(Ks) or not all(math.isfinite(x) and x >= 0 for x in sp):
        raise ValueError(f"spread must hold one non-negative number per K, received {spread!r}")
    triples = sorted(zip(Ks, E, sp))
    Ks = tuple(k for k, _, _ in triples)
    E = tuple(e for _, e, _ in triples)
    sp = [s for _, _, s in triples]
    K2E = tuple(k * k * e if r == 2.0 else k**r * e for k, e in zip(Ks, E))
    slope, used = loglog_slope(Ks, E, Kmin)
    ok = len(used) >= 2 and abs(slope + r) <= slope_tol
    C, extrap, ests = richardson_limit(Ks, K2E, order=order, power=2)
    n = min(len(Ks), int(order) + 1)
    w = neville0_weights([1.0 / K**2 for K in Ks[-n:]])
    inp = sum(abs(wi) * abs(y) * (s + 8 * _U) for wi, y, s in zip(w, K2E[-n:], sp[-n:]))
    err = extrap + inp
    digits = max(1, min(16, math.floor(-math.log10(err / abs(C)))))
    limit = f"{float(f'{C:.{digits}g}'):.{digits}g}"
    return RateAudit(Ks=Ks, E=E, K2E=K2E, rate=r, slope=slope, slope_tol=float(slope_tol),
                     Kmin=int(Kmin), n_fit=len(used), ok=bool(ok), limit_value=float(C),
                     extrap_err=float(extrap), input_err=float(inp), limit_err=float(err),
                     limit_digits=digits, limit=limit, estimates=ests)


# --------------------------------------------------------------------------------------------
# generator interface (docs/ARCHITECTURE.md)
# --------------------------------------------------------------------------------------------
def target_name(params) -> str:
    """The target of the table: ``"log p"`` unless ``params["target"]`` names another."""
    return _check_params(params)["target"].name


def _check_params(params) -> dict:
    """{} or {"target": "p^0.5"} (absent: log p) -> {"target": Target}."""
    params = dict(params or {})
    extra = set(params) - {"target"}
    if extra:
        raise ValueError(f"the minimax generator's params may hold only 'target', received "
                         f"{params!r}")
    return {"target": parse_target(params.get("target", LOG))}


def build_K(K: int, params) -> KResult:
    """Build the minimax table row for batch size K (generator interface).

    Solves ``remez(K)`` (default precision and tolerance), converts to the table
    (``minimax_table``), and measures it with ``aqpgen.numerics.metrics.table_metrics`` (beta, beta_cert,
    V_inf, V1, beta_f64, max_abs_c).  Metrics added here: ``E_star`` (the returned polynomial's
    levelled sup error, equal to E*_K to relative ``spread``), ``spread``, ``iterations``,
    ``max_abs_c`` (from the high-precision strings).  ``solver`` is deterministic (no timings).
    """
    K = as_K(K)
    target = _check_params(params)["target"]
    strings, values, res = minimax_table(K, target=target)
    metrics = dict(table_metrics(K, values, strings, target=target))
    with flint_prec(table_prec(K)) as flint:
        cmax = max(abs(flint.arb(s)) for s in strings)
        max_abs_c = float(cmax.mid())
    metrics.update({
        "E_star": float(res.E),
        "spread": float(res.spread),
        "iterations": float(res.iterations),
        "max_abs_c": max_abs_c,
    })
    solver = {
        "solver": "remez", "status": "converged", "prec": int(res.prec),
        "table_prec": int(table_prec(K)), "tol": float(res.tol),
        "iterations": int(res.iterations), "hp_iterations": int(res.hp_iterations),
        "E_star": res.E_hp,
    }
    return KResult(K=K, values=values, values_hp=strings, metrics=metrics, status=STATUS_OK,
                   solver=solver)


def _bernstein_eval(strings: Sequence[str], pts, prec: int):
    """g(p) = sum_m c_{m+1} b_{K-1,m}(p) in arb at ``prec`` bits, from decimal strings alone.

    ``pts`` are (s, c) pairs of arb with p = s^2, 1 - p = c^2 (t = pi k/M + d: s = sin(t/2),
    c = cos(t/2)), so no cancellation occurs in 1 - p.  With n = K-1: for p <= 1/2,
    g = (1-p)^n R(p/(1-p)), R(x) = sum_m c_{m+1} C(n,m) x^m; for p > 1/2 the reversed form
    g = p^n R~((1-p)/p) (b_{n,m} = C(n,m) p^m (1-p)^(n-m)).
    """
    K = len(strings)
    n = K - 1
    with flint_prec(prec) as flint:
        arb, arb_poly = flint.arb, flint.arb_poly
        c = [arb(s) * arb.bin_uiui(n, m) for m, s in enumerate(strings)]
        R, Rr = arb_poly(c), arb_poly(c[::-1])
        lo = [i for i, (s, co) in enumerate(pts) if float(s) <= float(co)]
        hi = [i for i, (s, co) in enumerate(pts) if float(s) > float(co)]
        out = [None] * len(pts)
        if lo:
            xs = [(pts[i][0] / pts[i][1]) ** 2 for i in lo]
            for i, x in zip(lo, xs):  # one point at a time: multipoint evaluation is unstable
                out[i] = R(x) * pts[i][1] ** (2 * n)
        if hi:
            xs = [(pts[i][1] / pts[i][0]) ** 2 for i in hi]
            for i, x in zip(hi, xs):
                out[i] = Rr(x) * pts[i][0] ** (2 * n)
        return out


def _sc_points(k, d, M: int, prec: int):
    """(sin(t/2), cos(t/2)) as arb for t = pi k/M + d."""
    with flint_prec(prec) as flint:
        arb = flint.arb
        pi = arb.pi()
        out = []
        for ki, di in zip(k, d):
            half = (pi * int(ki) / M + arb(float(di))) / 2
            out.append((half.sin(), half.cos()))
        return out


def table_error_at_extrema(values_hp: Sequence[str], *, target: Target = LOG,
                           prec: int | None = None):
    """Re-locate the extrema of a table's weighted error and evaluate it there, from the strings.

    The error is e(p) = p (g(p) - log p), g(p) = sum_m c_{m+1} b_{K-1,m}(p).  (1) g is evaluated
    in arb (Bernstein form, ``prec`` bits, default ``table_prec(K)``) at the K Chebyshev points
    t_k = pi k/(K-1) and its cosine coefficients are obtained by a DCT-I (float64, for locating
    only); (2) the local extrema of e are found on a dense t-grid and refined by Newton's method
    (float64), and one per sign run is kept until K+1 alternating points remain; (3) e is
    re-evaluated at those points in arb directly from the Bernstein form.

    Returns
    -------
    (p, e) : (numpy.ndarray, list of arb)
        The located points p (float64) and the high-precision errors there (K+1 of them when the
        table equioscillates; fewer otherwise).
    """
    import scipy.fft

    target = parse_target(target)
    strings = tuple(str(s) for s in values_hp)
    K = len(strings)
    if K < 1:
        raise ValueError("values_hp must not be empty")
    prec = table_prec(K) if prec is None else int(prec)
    M = grid_size(K)
    eng = Engine(K, M, target)
    if K == 1:
        b = np.array([float(strings[0])])
    else:
        n = K - 1
        Mc = 2 * n
        # Chebyshev points t = pi k / n are grid points of the M' = 2n grid (k' = 2k, d = 0).
        pts = _sc_points(2 * np.arange(K), np.zeros(K), Mc, prec)
        Q = np.array([float(v.mid()) for v in _bernstein_eval(strings, pts, prec)])
        x = scipy.fft.dct(Q, type=1) / (2.0 * n)
        b = x.copy()
        b[1:n] *= 2.0
    k, d, _ = select_alternating(*eng.locate(b), K + 1)
    pts = _sc_points(k, d, M, prec)
    g = _bernstein_eval(strings, pts, prec)
    with flint_prec(prec):
        e = [(s * s) * (gi - target.g_arb_sin(s)) for (s, _), gi in zip(pts, g)]
    return np.array(reference_p(k, d, M)), e


def verify_row(K, values, values_hp, metrics, params) -> list:
    """Re-verify one stored minimax row from its values alone (generator interface).

    Checks
    ------
    ``minimax.values_hp``       -- high-precision strings present, K of them, parseable.
    ``minimax.float64``         -- ``values`` are the strings correctly rounded to float64.
    ``minimax.equioscillation`` -- the error e(p) = p (g(p) - log p) of the table, evaluated in
                                   arb from the strings alone (``table_error_at_extrema``), has
                                   K+1 alternating extrema with relative spread <= 1e-10.
    ``minimax.E_star``          -- max |e| there reproduces the stored ``E_star`` to >= 8 digits.
    """
    checks = []
    try:
        K = as_K(K)
        target = _check_params(params)["target"]
    except (TypeError, ValueError) as exc:
        return [Check("minimax.values_hp", False, str(exc), None)]
    if values_hp is None or len(values_hp) != K:
        n = None if values_hp is None else len(values_hp)
        return [Check("minimax.values_hp", False, f"expected {K} high-precision strings, found {n}", K)]
    strings = tuple(str(s) for s in values_hp)
    try:
        f = np.array([float(s) for s in strings])
    except ValueError as exc:
        return [Check("minimax.values_hp", False, f"unparseable string: {exc}", K)]
    checks.append(Check("minimax.values_hp", True, f"{K} strings, {max(len(s) for s in strings)} chars max", K))
    v = np.asarray(values, dtype=np.float64)
    same = v.shape == f.shape and bool(np.all(v == f))
    checks.append(Check("minimax.float64", same,
                        "float64 values are the correctly rounded strings" if same else
                        "float64 values differ from the correctly rounded strings", K))
    _, e = table_error_at_extrema(strings, target=target)
    prec = table_prec(K)
    with flint_prec(prec):
        a = [abs(x).mid() for x in e]
        sg = [float(x.mid()) > 0 for x in e]
        if a:
            amax, amin = max(a), min(a)
            spread = float(((amax - amin) / amax).mid())
            emax = float(amax)
        else:
            spread, emax = math.inf, math.nan
    alt = len(e) == K + 1 and all(sg[i] != sg[i + 1] for i in range(len(sg) - 1))
    ok = alt and spread <= VERIFY_SPREAD
    checks.append(Check("minimax.equioscillation", ok,
                        f"{len(e)} extrema (need {K + 1}), alternating={alt}, relative spread "
                        f"{spread:.2e} (required <= {VERIFY_SPREAD:.0e})", K))
    stored = float(dict(metrics or {}).get("E_star", math.nan))
    rel = abs(emax - stored) / stored if math.isfinite(stored) and stored > 0 else math.inf
    checks.append(Check("minimax.E_star", rel <= 10.0 ** -VERIFY_E_DIGITS,
                        f"re-evaluated max|e| = {emax:.15e}, stored E_star = {stored:.15e}, "
                        f"relative difference {rel:.1e} (required <= 1e-{VERIFY_E_DIGITS})", K))
    return checks
