"""Independent audit of table files: recompute every claim from the stored values alone.

The audit trusts neither the file's metadata nor the solver that produced it.  For each file it
checks the container (readable HDF5, schema name and version, the content hash recomputed with
:func:`aqpgen.tablefile.content_hash`, the file's sha256 against ``MANIFEST.json``), and for
each K it recomputes the mathematics from the stored values (the high-precision strings when
present, else the float64 values) and compares every stored metric with the recomputed one.

Public names
------------
TOLERANCES            -- every tolerance used, in one place (also printed by ``aqpgen audit --help``).
Finding               -- one compared quantity: file, K, check, stored, recomputed, rel. diff, ok.
FileAudit             -- the findings of one file (``ok``, ``failures``).
audit_file(path)      -- audit one file (``jobs`` processes over its rows).
audit_files(paths)    -- audit several files with one process pool over (file, K) tasks.
summary_rows(audits)  -- per (file, check) aggregation: worst K, worst rel. diff, failures.
to_json(audits)       -- JSON-serialisable dict of everything.
to_markdown(audits)   -- a Markdown report (summary per file and every failure).
format_text(audits)   -- the plain-text discrepancy table the CLI prints.

What is recomputed (checks, by name)
------------------------------------
File level: ``readable``, ``schema``, ``layout``, ``content_hash``, ``manifest`` (sha256, size
and content hash of the manifest entry, and per-row digests: ``manifest.row`` names each K whose
values, strings or status differ from the manifest's record), ``target`` (the header's target parses and agrees
with ``params``), ``metrics.unaudited`` (names of stored metrics the audit cannot recompute,
listed so that nothing is silently passed), ``rate`` (minimax: Θ(1/K²) slope).

Power rows (target sum_i a_i p^i parsed from the header):

* ``exact.table``  -- the stored rationals equal the exact U-statistic table
  c_K[n] = sum_i a_i (n-1)_i / (K-1)_i, rebuilt here in rational arithmetic;
* ``exact.unbiased`` -- the stored rationals' mean polynomial equals the target exactly: with
  Bernstein coefficients c_0..c_{K-1}, g_c(p) = sum_k C(K-1,k) Δ^k c_0 p^k, so g_c equals the
  target of degree d iff Δ^{d+1} c ≡ 0 and C(K-1,k) Δ^k c_0 = a_k for k <= d (integer arithmetic);
* ``float64``      -- the stored float64 values are the correctly rounded rationals;
* ``err_f64``, ``exact``, ``max_abs_c``, ``V_inf``, ``V1``.

KL rows (target log p): the weighted error e(p) = P(p) − p log p with P(p) = p·g_c(p) of degree
K, whose Bernstein coefficients are d_j = (j/K)·c_j (docs/ARCHITECTURE.md), converted to the
monomial basis in ball arithmetic (python-flint ``arb``) at a precision chosen from K and
max|c| and checked through the ball radii:

* ``beta``       -- the stored β is a grid maximum (a lower bound), so it must lie in
  [0.99·sup, sup + 1e-9·sup + 4(K+1)·eps·max|c|] (the last term: the float64 evaluation it came
  from, which matters for AQP tables with large coefficients); the sup is recomputed: sampled on p = sin²(πi/2N), N = 8K + 400, then every grid
  maximum within 10 % of the largest refined by Newton's method on e'(p) = P'(p) − log p − 1
  in ball arithmetic (so the recomputed β is the true sup to ~1e-15 relative);
* ``beta_cert``  -- the stored certified bound must satisfy β <= β̄ <= 1.01 β (SPEC §3);
* ``beta_cert.fresh`` -- a fresh certificate from :func:`aqpgen.certify.certify_beta` asked for
  relative slack ``FRESH_CERT_SLACK`` (1e-4), same rule;
* ``beta_f64``   -- β of the float64-rounded values (minimax), same rule as ``beta_cert``;
* ``V_inf``      -- sup_p p·Var_p = sup_p [W(p) − P(p)²/p], W(p) = p·sum_m b_{K-1,m}(p) c_{m+1}²,
  sampled on the same grid and refined locally;
* ``V1``         -- ∫_0^1 p·Var_p dp = ∫W − ∫P·(P/p), integrated exactly in the monomial basis;
  V∞ and V1 agree within rel 1e-9 (the stored and recomputed values agree to ~1e-12; a coefficient changed by 1e-6 relative moves V1 by ~1e-7), or within 1e-12·max(1, max|c|)² absolute (a near-constant
  table, whose variance is at rounding level); where they overflow float64 (the minimax table at
  large K) the file must store ``inf`` and ``log10_V_inf`` / ``log10_V1`` are compared instead;
* ``max_abs_c``, ``float64`` (float64 values = correctly rounded high-precision strings);
* minimax: ``equioscillation`` (at least K+1 extrema of e with alternating signs),
  ``spread`` (max|e| − min|e|)/max|e| over them <= 1e-10, ``E_star`` (the levelled error equals
  the stored E_star to 8 digits), and at file level ``rate`` (fitted slope of log E*_K against
  log K over K in [16, 1024] is −2 ± 0.01);
* AQP eta presets: ``E_star`` (equals the minimax table's), ``eta_budget`` = (1+η)·E*_K,
  ``budget`` (the fresh certified β̄ <= (1+η)·E*_K), ``eta_achieved`` = β/E*_K − 1;
* AQP rho presets: ``rho_budget`` = ρ·V∞(plug-in) with the plug-in table log(n/K) recomputed
  here, ``budget`` (V∞ <= ρ·V∞(plug-in)), ``rho_achieved``, ``beats_plugin`` (β < β(plug-in)).

Rows whose status is not "ok" are reported (check ``status``) and not otherwise audited.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from aqpgen.numerics.precision import flint_prec

__all__ = [
    "TOLERANCES",
    "TOLERANCE_HELP",
    "FileAudit",
    "Finding",
    "audit_file",
    "audit_files",
    "format_text",
    "summary_rows",
    "to_json",
    "to_markdown",
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
    "slope": 0.01,         # |slope + 2| over K in [16, 1024]
    "budget": 1e-12,       # relative slack allowed on a budget comparison (float rounding)
    "achieved": 1e-6,      # abs. diff eta_achieved / rho_achieved
}

TOLERANCE_HELP = (
    "Tolerances: beta (stored as a grid maximum, i.e. a lower bound) must satisfy "
    "0.99*sup <= beta <= sup (1e-9 rel slack), the sup being recomputed by Newton refinement in "
    "ball arithmetic; V_inf, V1 rel 1e-9 (sup refined by local grids, integral exact); max_abs_c rel 1e-12; err_f64 rel 1e-6; every certified bound "
    "(stored beta_cert, a fresh one from aqpgen.certify, beta_f64) must lie in "
    "[beta, 1.01*beta] (lower end with 1e-12 rel slack); minimax: >= K+1 alternating extrema, "
    "levelled spread <= 1e-10 rel, level = E_star to 1e-8 rel (8 digits), slope of log E*_K "
    "vs log K over K in [16,1024] = -2 +- 0.01; AQP: E_star equals the minimax table's to "
    "1e-12 rel, eta presets need the fresh certified beta <= (1+eta)*E*_K, rho presets V_inf "
    "<= rho*V_inf(plug-in) and beta < beta(plug-in) (budget slack 1e-12 rel); achieved "
    "ratios abs 1e-6; power tables: stored rationals equal the exact table, mean polynomial "
    "equals the target in exact arithmetic, float64 correctly rounded (bit-exact)."
)

_RATE_RANGE = (16, 1024)
#: Precision (bits) of the low-cost parts of a Newton step (after the cancelling polynomial sums).
_LOW_PREC = 192


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


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
        Check name (see the module docstring).
    stored : float, str or None
        What the file claims (None when the check has no stored counterpart).
    recomputed : float, str or None
        What the audit recomputed.
    rel_diff : float or None
        |stored − recomputed| / |recomputed| where meaningful (or the quantity compared with
        the tolerance, e.g. the spread or |slope + 2|).
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


def _rel(a: float, b: float) -> float:
    """|a − b| / |b| (0 when both are 0; inf when only b is 0)."""
    a, b = float(a), float(b)
    if a == b:
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / abs(b) if b != 0 else math.inf


# --------------------------------------------------------------------------------------------
# ball-arithmetic polynomials of one row
# --------------------------------------------------------------------------------------------


def _to_fraction(x) -> Fraction:
    """Exact rational of a stored value: a float64, or a decimal / ``"a/b"`` string."""
    if isinstance(x, (bytes, np.bytes_)):
        x = x.decode("ascii")
    if isinstance(x, str):
        return Fraction(x.strip())
    return Fraction(float(x))


def _arb_of(x):
    from flint import arb, fmpq

    q = x if isinstance(x, Fraction) else _to_fraction(x)
    return arb(fmpq(q.numerator, q.denominator))


def _bernstein_to_monomial(d: Sequence, prec: int):
    """Monomial ``arb_poly`` of sum_j d_j C(n,j) p^j (1-p)^(n-j) (n = len(d) − 1).

    a_k = C(n,k) Δ^k d_0 = n!/(n−k)! · [x^k] (sum_j d_j x^j / j!)(sum_i (−x)^i / i!), one
    polynomial product in ball arithmetic (the radii track the cancellation).
    """
    from flint import arb, arb_poly

    with flint_prec(prec):
        n = len(d) - 1
        fac = [arb(1)]
        for j in range(1, n + 1):
            fac.append(fac[-1] * j)
        dh = arb_poly([d[j] / fac[j] for j in range(n + 1)])
        eh = arb_poly([(1 if i % 2 == 0 else -1) / fac[i] for i in range(n + 1)])
        A = (dh * eh).coeffs()[: n + 1]
        A += [arb(0)] * (n + 1 - len(A))
        out, r = [], arb(1)  # r = n!/(n-k)!
        for k in range(n + 1):
            if k:
                r = r * (n - k + 1)
            out.append(A[k] * r)
        return arb_poly(out)


class _Precision(Exception):
    """Raised internally when the ball radii show the working precision is insufficient."""


class _RowPoly:
    """P(p) = p·g_c(p) and W(p) = p·E_p[c[n]²] of one row as monomial ball polynomials.

    ``P`` has Bernstein coefficients d_j = (j/K) c_j and ``W`` has (j/K) c_j², j = 0..K.
    """

    def __init__(self, values: Sequence[Fraction], prec: int, with_w: bool = True):
        K = len(values)
        self.K = K
        self.prec = int(prec)
        # W = p·E[c²] overflows float64 for the minimax table at large K (max|c|² ~ 1e603):
        # W is carried scaled by the exact power of two 2**wexp (wexp <= 0) and V_inf, V1 are
        # compared in log10 there (``log10_V_inf``, ``log10_V1``).
        cmax = max((abs(v) for v in values), default=Fraction(0))
        lg2 = (cmax.numerator.bit_length() - cmax.denominator.bit_length()) if cmax else 0
        self.wexp = -2 * (lg2 + 2) if lg2 > 400 else 0
        with flint_prec(self.prec):
            c = [_arb_of(v) for v in values]
            d = [c[0] * 0] + [c[j - 1] * j / K for j in range(1, K + 1)]
            self.P = _bernstein_to_monomial(d, self.prec)
            self.W = None
            if with_w:
                sc = _arb_of(Fraction(1, 2 ** -self.wexp))
                w = [c[0] * 0] + [c[j - 1] * c[j - 1] * sc * j / K for j in range(1, K + 1)]
                self.W = _bernstein_to_monomial(w, self.prec)
            self.P1 = self.P.derivative()
            self.P2 = self.P1.derivative()

            self._pc = self._cheb(self.P)
            self._wc = self._cheb(self.W) if with_w else None

    # -- helpers
    def _check(self, y, scale: float = 1e-30) -> float:
        """float64 of a ball's midpoint, raising _Precision when its radius exceeds
        1e-24 relative (or ``scale``·1e-24 absolute for values near zero)."""
        r = float(y.rad())
        if not math.isfinite(r) or r > 1e-24 * max(abs(float(y.mid())), scale):
            raise _Precision(f"radius {r:.3g} at prec {self.prec}")
        return float(y.mid())

    def _cheb(self, poly) -> np.ndarray:
        """float64 Chebyshev coefficients (x = 2p − 1) of ``poly`` by DCT-I of its ball values
        at the K+1 Chebyshev–Lobatto points (interpolation is exact for degree K; the float
        rounding of the values is amplified by at most the Lebesgue constant ~ (2/π) log K + 1).

        The nodes are the float64-rounded Lobatto points (exact 53-bit inputs keep the ball
        evaluation cheap); the node perturbation (~1e-16) adds an error ~1e-16·max|P'|.  These
        coefficients only locate extrema and sample V∞: every β, level and certificate value is
        evaluated in ball arithmetic at the refined points."""
        from flint import arb

        K = self.K
        f = np.empty(K + 1)
        pts = (1 - np.cos(np.pi * np.arange(K + 1) / K)) / 2
        with flint_prec(self.prec):
            for j in range(K + 1):
                f[j] = self._check(poly(arb(float(pts[j]))))
        # f[j] = poly(p_j), p_j = (1 − cos(πj/K))/2, i.e. x_j = −cos(πj/K); reverse to x = cos(πj/K)
        f = f[::-1]
        ext = np.concatenate([f, f[-2:0:-1]])
        a = np.real(np.fft.fft(ext)) / K
        a = a[: K + 1].copy()
        a[0] /= 2
        a[K] /= 2
        return a

    def err_f(self, ps) -> np.ndarray:
        """e(p) = P(p) − p log p in float64 (Clenshaw on the Chebyshev coefficients of P)."""
        ps = np.asarray(ps, dtype=np.float64)
        P = np.polynomial.chebyshev.chebval(2 * ps - 1, self._pc)
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(ps > 0, ps * np.log(np.where(ps > 0, ps, 1.0)), 0.0)
        return P - plogp

    def pvar_f(self, ps) -> np.ndarray:
        """p·Var_p(c[n]) = W(p) − P(p)²/p in float64 (0 at p = 0)."""
        ps = np.asarray(ps, dtype=np.float64)
        x = 2 * ps - 1
        P = np.polynomial.chebyshev.chebval(x, self._pc)
        W = np.polynomial.chebyshev.chebval(x, self._wc)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            return np.where(ps > 0, W - math.ldexp(1.0, self.wexp) * P * P
                            / np.where(ps > 0, ps, 1.0), 0.0)

    def unscale_log10(self, x: float) -> tuple[float, float]:
        """(value, log10 value) of a scaled p·Var quantity: value may be inf, log10 stays finite."""
        if not x > 0:
            return float(x), -math.inf
        lg = math.log10(x) - self.wexp * math.log10(2.0)
        return (math.ldexp(x, -self.wexp) if lg < 308 else math.inf), lg

    def v1(self) -> float:
        """∫_0^1 p·Var_p dp = ∫W − ∫P·G with G = P/p (exact monomial integration)."""
        with flint_prec(self.prec):
            G = self.P.right_shift(1)
            Q = self.P * G
            total = self.W.coeffs()[0] * 0
            sc = _arb_of(Fraction(1, 2 ** -self.wexp))
            for k, a in enumerate(self.W.coeffs()):
                total += a / (k + 1)
            for k, a in enumerate(Q.coeffs()):
                total -= a * sc / (k + 1)
            return self._check(total, 1e-30)  # scaled by 2**wexp

    def newton_extremum(self, p0: float, lo: float, hi: float):
        """Refine a local extremum of e near p0 within [lo, hi]: Newton on e'(p) = 0.

        e'(p) = P'(p) − log p − 1 and e''(p) = P''(p) − 1/p are evaluated in ball arithmetic
        at float64 iterates (exact 53-bit inputs); the iteration stops when the step is below
        2 ulp.  At an extremum e' = 0, so a location error δ changes e by only e''δ²/2
        (relative ~1e-26 here).  Returns (p, e(p) as a ball).
        """
        from flint import arb

        x = float(p0)
        for _ in range(40):
            with flint_prec(self.prec):
                xa = arb(x)
                d1 = self.P1(xa)
                d2 = self.P2(xa)
            with flint_prec(_LOW_PREC):
                step = float(((d1 - xa.log() - 1) / (d2 - 1 / xa)).mid())
            xn = min(max(x - step, lo), hi)
            if xn == lo and lo == 0.0:
                xn = x / 2
            if abs(xn - x) <= 2 * np.spacing(x) or xn == x:
                x = xn
                break
            x = xn
        with flint_prec(self.prec):
            xa = arb(x)
            y = self.P(xa) - xa * xa.log() if x > 0 else self.P(xa)
            self._check(y)
            return x, y


def _choose_prec(values: Sequence[Fraction]) -> int:
    """Working precision (bits) for the Bernstein -> monomial conversion of one row.

    The monomial coefficients are bounded by 2^K·max|c| (plus factorial ratios that the
    product form keeps exact), so 2K + log2(max|c|²) + 160 guard bits suffice; the ball radii
    are checked anyway and the caller doubles the precision on failure.
    """
    K = len(values)
    m = max((abs(float(v)) for v in values), default=1.0)
    lg = math.log2(m) if m > 1 and math.isfinite(m) else 0.0
    return int(3 * K + 2 * lg + 200)


def _grid(K: int) -> np.ndarray:
    """p_i = sin²(π i / 2N), N = 8K + 400: dense near 0, where the extrema crowd (1/K² scale)."""
    N = 8 * K + 400
    return np.sin(np.pi * np.arange(N + 1) / (2 * N)) ** 2


def _local_maxima(a: np.ndarray) -> np.ndarray:
    """Indices i >= 1 with a[i] >= both neighbours (one-sided at the right end)."""
    idx = []
    n = len(a)
    for i in range(1, n):
        left = a[i] >= a[i - 1]
        right = i == n - 1 or a[i] >= a[i + 1]
        if left and right and a[i] > 0:
            idx.append(i)
    return np.asarray(idx, dtype=int)


def _sup_err(rp: _RowPoly, grid: np.ndarray, keep: float = 0.9, all_maxima: bool = False):
    """sup_p |e(p)| with Newton-refined extrema.

    Returns (sup, extrema) where extrema is a list of (p, ball e(p)) sorted by p for every grid
    maximum with |e| >= keep·max (every maximum with |e| >= 0.5·max if ``all_maxima``).
    """
    e = rp.err_f(grid)
    a = np.abs(e)
    idx = _local_maxima(a)
    if len(idx) == 0:
        return 0.0, []
    top = a[idx].max()
    idx = idx[a[idx] >= (0.5 if all_maxima else keep) * top]
    ext = []
    n = len(grid)
    for i in idx:
        lo = grid[i - 1]
        hi = grid[min(i + 1, n - 1)]
        cand = rp.newton_extremum(grid[i], lo, hi)
        if i == n - 1:  # a maximum at the end point p = 1 need not be a critical point
            end = rp.newton_extremum(1.0, 1.0, 1.0)
            cand = end if abs(float(end[1].mid())) >= abs(float(cand[1].mid())) else cand
        ext.append(cand)
    sup = max(abs(float(y.mid())) for _, y in ext)
    return max(sup, float(top)), ext


def _sup_pvar(rp: _RowPoly, grid: np.ndarray, passes: int = 5, m: int = 21) -> float:
    """sup_p p·Var_p: grid maxima within 1 % of the largest (at most 8), refined by nested grids."""
    v = rp.pvar_f(grid)
    idx = _local_maxima(v)
    if len(idx) == 0:
        return float(v.max())
    top = v[idx].max()
    idx = idx[v[idx] >= 0.99 * top]
    idx = idx[np.argsort(-v[idx])][:8]
    best = float(top)
    n = len(grid)
    for i in idx:
        lo, hi = grid[i - 1], grid[min(i + 1, n - 1)]
        for _ in range(passes):
            xs = np.linspace(lo, hi, m)
            ys = rp.pvar_f(xs)
            j = int(np.argmax(ys))
            best = max(best, float(ys[j]))
            lo, hi = xs[max(j - 1, 0)], xs[min(j + 1, m - 1)]
    return best


def _with_prec(fn, values, *args, with_w=True):
    """Run ``fn(rowpoly, *args)`` raising the precision until the ball radii are small."""
    prec = _choose_prec(values)
    last = None
    for _ in range(4):
        try:
            return fn(_RowPoly(values, prec, with_w=with_w), *args)
        except _Precision as exc:
            last = exc
            prec *= 2
    raise RuntimeError(f"ball arithmetic did not reach the required accuracy: {last}")


# --------------------------------------------------------------------------------------------
# row audits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowTask:
    file: str
    family: str
    method: str
    params: dict
    target_coeffs: tuple | None  # power: exact monomial coefficients as (num, den)
    K: int
    values: np.ndarray
    values_hp: tuple | None
    metrics: dict
    status: str
    E_star_ref: float | None  # AQP: E*_K from the minimax table


def _cmp(task, check, stored, recomputed, tol_key, detail="") -> Finding:
    """Relative comparison of a stored metric with the recomputed value."""
    tol = TOLERANCES[tol_key]
    if stored is None or (isinstance(stored, float) and math.isnan(stored)):
        return Finding(task.file, task.K, check, None, recomputed, None, f"rel {tol:g}", False,
                       f"metric {check!r} missing from the file (recomputed {recomputed:.12g})")
    if recomputed == 0 and stored == 0:
        rd = 0.0
    else:
        rd = _rel(stored, recomputed)
    ok = rd <= tol
    if not ok and tol_key in ("V_inf", "V1") and math.isfinite(float(stored)):
        # a (near-)constant table has p·Var at rounding level: compare absolutely there
        cmax = float(np.max(np.abs(task.values))) if np.all(np.isfinite(task.values)) else 0.0
        ok = bool(abs(float(stored) - float(recomputed)) <= 1e-12 * max(1.0, cmax) ** 2)
    if not ok and not detail:
        detail = (f"K={task.K}: stored {check} = {stored:.12g} but recomputed {recomputed:.12g} "
                  f"(rel diff {rd:.3g} > {tol:g})")
    return Finding(task.file, task.K, check, float(stored), float(recomputed), rd, f"rel {tol:g}",
                   ok, detail)


def _lower_check(task, check, stored, sup) -> Finding:
    """A stored grid maximum must satisfy (1 − tol)·sup <= stored <= (1 + 1e-9)·sup."""
    tol = TOLERANCES["beta"]
    rule = f"(1-{tol:g})*sup <= stored <= sup"
    if stored is None or not math.isfinite(float(stored)):
        return Finding(task.file, task.K, check, None if stored is None else float(stored), sup, None,
                       rule, False, f"K={task.K}: {check} missing or not finite ({stored!r})")
    stored = float(stored)
    rd = _rel(stored, sup)
    # the stored grid maximum was evaluated in float64 from the float64 table: allow its rounding,
    # ~K·eps·max|c| absolute (Bernstein weights sum to 1), above the ball-arithmetic sup
    cmax = float(np.max(np.abs(task.values))) if np.all(np.isfinite(task.values)) else 0.0
    slack = 1e-9 * sup + 4.0 * (task.K + 1) * 2.0 ** -52 * cmax
    ok = bool(sup * (1 - tol) <= stored <= sup + slack)
    detail = "" if ok else (
        f"K={task.K}: stored {check} = {stored:.12g} but the recomputed sup is {sup:.12g} "
        f"({'above the sup: not a lower bound' if stored > sup else f'more than {tol:.0%} below'})")
    return Finding(task.file, task.K, check, stored, sup, rd, rule, ok, detail)


def _cert_check(task, check, bound, beta) -> Finding:
    """A certified bound must satisfy (1 − 1e-12)·β <= bound <= 1.01·β."""
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
        why = "below the recomputed sup (invalid bound)" if bound < beta * (1 - lo) else \
            f"more than {up:.0%} above the recomputed sup"
        detail = (f"K={task.K}: {check} = {bound:.12g} is {why}: recomputed beta = {beta:.12g} "
                  f"(ratio {ratio:.9f})")
    return Finding(task.file, task.K, check, bound, beta, ratio - 1, rule, ok, detail)


def _info(task, check, ok, detail, stored=None, recomputed=None, rel=None, tol="") -> Finding:
    return Finding(task.file, task.K, check, stored, recomputed, rel, tol, ok, detail)


def _float64_check(task, exact: Sequence[Fraction]) -> Finding:
    """The stored float64 values are the correctly rounded ``exact`` values (bit-exact)."""
    want = np.array([float(q) for q in exact])
    v = np.asarray(task.values, dtype=np.float64)
    same = (v.view(np.uint64) == want.view(np.uint64)) | (v == want)
    if same.all():
        return _info(task, "float64", True, "float64 values are the correctly rounded exact values",
                     tol="bit-exact")
    n = int(np.argmin(same)) + 1
    return _info(task, "float64", False,
                 f"K={task.K}: {int((~same).sum())} float64 value(s) differ from the correctly "
                 f"rounded exact values, first n={n}: stored {v[n - 1]!r}, expected {want[n - 1]!r}",
                 stored=float(v[n - 1]), recomputed=float(want[n - 1]),
                 rel=_rel(v[n - 1], want[n - 1]), tol="bit-exact")


def _exact_ustat_table(coeffs: Sequence[Fraction], K: int) -> list[Fraction]:
    """c_K[n] = sum_i a_i (n−1)_i / (K−1)_i, n = 1..K (SPEC §2), in rational arithmetic."""
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


def _mean_poly_equals(values: Sequence[Fraction], coeffs: Sequence[Fraction]) -> tuple[bool, str]:
    """Exact test that sum_m c_m b_{K-1,m}(p) equals sum_k a_k p^k (see module docstring)."""
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
    for k in range(deg + 1):
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


def _audit_power_row(task: _RowTask) -> list[Finding]:
    K = task.K
    coeffs = [Fraction(a, b) for a, b in task.target_coeffs]
    out: list[Finding] = []
    try:
        exact = _exact_ustat_table(coeffs, K)
    except ValueError as exc:
        return [_info(task, "exact.table", False, f"K={K}: {exc}")]
    stored = None
    if task.values_hp is None:
        out.append(_info(task, "exact.table", False, f"K={K}: no exact rationals stored (values_hp)"))
    else:
        try:
            stored = [_to_fraction(s) for s in task.values_hp]
        except (ValueError, ZeroDivisionError) as exc:
            out.append(_info(task, "exact.table", False, f"K={K}: unparsable values_hp: {exc}"))
        else:
            bad = [i for i, (s, e) in enumerate(zip(stored, exact)) if s != e]
            out.append(_info(
                task, "exact.table", not bad,
                "stored rationals equal the exact table" if not bad else
                f"K={K}: {len(bad)} stored rational(s) differ from the exact table, first n="
                f"{bad[0] + 1}: stored {stored[bad[0]]}, exact {exact[bad[0]]}",
                stored=None if not bad else str(stored[bad[0]]),
                recomputed=None if not bad else str(exact[bad[0]]), tol="exact"))
            ok, why = _mean_poly_equals(stored, coeffs)
            out.append(_info(task, "exact.unbiased", ok, why if ok else f"K={K}: stored rationals: {why}",
                             tol="exact"))
    ok, why = _mean_poly_equals(exact, coeffs)
    if not ok:  # pragma: no cover - the oracle itself failing would be a bug here
        out.append(_info(task, "exact.oracle", False, f"K={K}: rebuilt table: {why}"))
    out.append(_float64_check(task, exact))
    m = task.metrics
    err = max(abs(Fraction(float(v)) - q) for v, q in zip(task.values, exact))
    if "exact" in m:
        out.append(_info(task, "exact", m["exact"] == 1.0,
                         "stored exact flag is 1" if m["exact"] == 1.0 else
                         f"K={K}: stored exact flag is {m['exact']!r}, expected 1.0",
                         stored=m["exact"], recomputed=1.0, tol="== 1"))
    if "err_f64" in m:
        e = float(err)
        st = m["err_f64"]
        valid = math.isfinite(st) and Fraction(st) >= err
        rd = 0.0 if e == st else _rel(st, e) if e > 0 else (0.0 if st < 1e-300 else math.inf)
        ok = valid and (rd <= TOLERANCES["err_f64"] or (e == 0 and st <= 1e-300))
        out.append(Finding(task.file, K, "err_f64", st, e, rd, f"bound, rel {TOLERANCES['err_f64']:g}",
                           ok, "" if ok else f"K={K}: stored err_f64 = {st!r} but max|float − exact| "
                           f"= {e!r}" + ("" if valid else " (not a valid bound)")))
    out.extend(_common_metrics(task, [Fraction(float(v)) for v in task.values], kl=False))
    return out


def _common_metrics(task: _RowTask, vals: Sequence[Fraction], kl: bool, rp=None, grid=None):
    """max_abs_c, V_inf, V1 from the given values (rp: a ready _RowPoly for them)."""
    out = []
    m = task.metrics
    if "max_abs_c" in m or kl:
        out.append(_cmp(task, "max_abs_c", m.get("max_abs_c"),
                        float(max(abs(q) for q in vals)), "max_abs_c"))
        if "log10_max_abs_c" in m:
            mq = max(abs(q) for q in vals)
            lg = (math.log10(mq.numerator) - math.log10(mq.denominator)) if mq else -math.inf
            out.append(_cmp(task, "log10_max_abs_c", m.get("log10_max_abs_c"), lg, "max_abs_c"))
    need_v = ("V_inf" in m) or ("V1" in m) or kl
    if need_v:
        grid = _grid(task.K) if grid is None else grid

        def both(r):
            return r.unscale_log10(_sup_pvar(r, grid)), r.unscale_log10(r.v1())

        (vinf, lg_vinf), (v1, lg_v1) = both(rp) if rp is not None else _with_prec(both, vals)
        for name, val, lg in (("V_inf", vinf, lg_vinf), ("V1", v1, lg_v1)):
            if math.isfinite(val):
                out.append(_cmp(task, name, m.get(name), val, name))
            else:  # overflows float64: the file must say inf, and its log10 form is checked
                st = m.get(name)
                ok = st is not None and math.isinf(st) and st > 0
                out.append(Finding(task.file, task.K, name, st, val, None, "inf (overflow)", ok,
                                   "" if ok else f"K={task.K}: {name} overflows float64 "
                                   f"(log10 = {lg:.9g}) but the file stores {st!r}"))
            if "log10_" + name in m or not math.isfinite(val):
                st = m.get("log10_" + name)
                tol = TOLERANCES[name] / math.log(10)  # rel tol on V -> abs tol on log10 V
                ok = st is not None and math.isfinite(st) and abs(st - lg) <= tol
                out.append(Finding(task.file, task.K, "log10_" + name, st, lg,
                                   None if st is None else abs(st - lg), f"abs {tol:.3g}", ok,
                                   "" if ok else f"K={task.K}: stored log10_{name} = {st!r} but "
                                   f"recomputed {lg:.12g}"))
    return out


#: Relative slack asked of the fresh certificate (``certify_beta(rel_slack=...)``).
FRESH_CERT_SLACK = 1e-4


def _fresh_certificate(values, values_hp, K):
    """A fresh certified upper bound on β from :mod:`aqpgen.certify` (float), or an error text."""
    try:
        from aqpgen.numerics import certify
    except ImportError as exc:
        return None, f"aqpgen.certify unavailable ({exc})"
    fn = getattr(certify, "certify_beta", None)
    if fn is None:
        return None, "aqpgen.certify.certify_beta unavailable"
    # a certificate is any rigorous upper bound: ask for a tight one (cells refined until the
    # bound is within FRESH_CERT_SLACK of the grid maximum), so budgets met with a 1e-3 margin by
    # the build are not lost to the certificate's own slack
    cert = fn(K, values=values, values_hp=values_hp, rel_slack=FRESH_CERT_SLACK)
    note = "" if getattr(cert, "converged", True) else f" (certify did not converge: {cert.method})"
    return float(cert.beta_upper), note


def _audit_kl_row(task: _RowTask) -> tuple[list[Finding], dict]:
    K = task.K
    m = task.metrics
    out: list[Finding] = []
    extra: dict = {}
    if task.values_hp is not None:
        try:
            vals = [_to_fraction(s) for s in task.values_hp]
        except (ValueError, ZeroDivisionError) as exc:
            return [_info(task, "values_hp", False, f"K={K}: unparsable values_hp: {exc}")], extra
        out.append(_float64_check(task, vals))
    else:
        if not np.all(np.isfinite(task.values)):
            return [_info(task, "values", False, f"K={K}: non-finite values in an 'ok' row")], extra
        vals = [Fraction(float(v)) for v in task.values]
    grid = _grid(K)
    is_minimax = task.method == "minimax"

    def main(rp):
        beta, ext = _sup_err(rp, grid, all_maxima=is_minimax)
        return beta, ext, _common_metrics(task, vals, kl=True, rp=rp, grid=grid), rp.prec

    beta, ext, common, prec = _with_prec(main, vals)
    extra["beta"] = beta
    out.append(_lower_check(task, "beta", m.get("beta"), beta))
    out.extend(common)
    out.append(_cert_check(task, "beta_cert", m.get("beta_cert"), beta))
    fresh, why = _fresh_certificate(task.values, task.values_hp, K)
    if fresh is None:
        out.append(_info(task, "beta_cert.fresh", False, f"K={K}: cannot certify: {why}"))
    else:
        f = _cert_check(task, "beta_cert.fresh", fresh, beta)
        out.append(f if f.ok or not why else Finding(**{**asdict(f), "detail": f.detail + why}))
    if task.values_hp is not None and "beta_f64" in m and math.isfinite(m["beta_f64"]):
        f64 = [Fraction(float(v)) for v in task.values]
        b64 = _with_prec(lambda r: _sup_err(r, grid)[0], f64, with_w=False)
        out.append(_cert_check(task, "beta_f64", m["beta_f64"], b64))

    if is_minimax:
        out.extend(_minimax_checks(task, ext, extra, prec))
    elif task.method == "aqp":
        out.extend(_aqp_checks(task, beta, common, fresh))
    return out, extra


def _minimax_checks(task, ext, extra, prec) -> list[Finding]:
    K = task.K
    out = []
    signs = [1 if float(y.mid()) > 0 else -1 for _, y in ext]
    alternating = all(signs[i] != signs[i + 1] for i in range(len(signs) - 1))
    n = len(ext)
    ok = alternating and n >= K + 1
    out.append(_info(task, "equioscillation", ok,
                     f"{n} extrema with alternating signs (need K+1 = {K + 1})" if ok else
                     f"K={K}: found {n} extrema of the error (need K+1 = {K + 1}), signs "
                     f"{'alternate' if alternating else 'do not alternate'}",
                     stored=None, recomputed=float(n), tol=">= K+1 alternating"))
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
    out.append(_info(task, "spread", spread <= tol,
                     f"levelled spread {spread:.3g}" if spread <= tol else
                     f"K={K}: levelled-error spread {spread:.3g} exceeds {tol:g} (max {float(hi.mid()):.15g}, "
                     f"min {float(lo.mid()):.15g})", stored=task.metrics.get("spread"),
                     recomputed=spread, rel=spread, tol=f"<= {tol:g}"))
    out.append(_cmp(task, "E_star", task.metrics.get("E_star"), level, "E_star"))
    return out


def _plugin_row(K: int) -> list[Fraction]:
    """The plug-in table log(n/K), n = 1..K, as float64 (the values training code uses)."""
    return [Fraction(float(x)) for x in np.log(np.arange(1, K + 1) / K)]


def _aqp_checks(task, beta, common, fresh) -> list[Finding]:
    K = task.K
    p = task.params
    m = task.metrics
    out = []
    if "eta" in p:
        eta = float(Fraction(str(p["eta"])))
        E = task.E_star_ref
        if E is None or not math.isfinite(E):
            return [_info(task, "E_star", False, f"K={K}: no E*_K available from the minimax table")]
        out.append(_cmp(task, "E_star", m.get("E_star"), E, "E_star_copy"))
        budget = (1 + eta) * E
        out.append(_cmp(task, "eta_budget", m.get("eta_budget"), budget, "E_star_copy"))
        # the budget is judged on the fresh certificate (the stored one is checked separately)
        bound = math.inf if fresh is None else float(fresh)
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
        pl = _plugin_row(K)
        grid = _grid(K)
        pl_beta, pl_vinf = _with_prec(lambda r: (_sup_err(r, grid)[0], _sup_pvar(r, grid)), pl)
        vinf = _find(common, "V_inf")[0].recomputed
        budget = rho * pl_vinf
        out.append(_cmp(task, "rho_budget", m.get("rho_budget"), budget, "V_inf"))
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


def _find(findings, check):
    return [f for f in findings if f.check == check]


def _audit_row(task: _RowTask) -> tuple[str, int, list[Finding], dict]:
    """Worker entry point: audit one (file, K) row; never raises (errors become findings)."""
    try:
        if task.status != "ok":
            finite = bool(np.any(np.isfinite(task.values)))
            return task.file, task.K, [_info(
                task, "status", not finite,
                f"row unavailable: {task.status}" if not finite else
                f"K={task.K}: row marked {task.status!r} but holds finite values")], {}
        if task.family == "power":
            return task.file, task.K, _audit_power_row(task), {}
        out, extra = _audit_kl_row(task)
        return task.file, task.K, out, extra
    except Exception as exc:  # a crash in the audit of one row is itself a failed check  # noqa: BLE001 - isolate one part's failure
        return task.file, task.K, [_info(task, "audit.error", False,
                                         f"K={task.K}: audit raised {type(exc).__name__}: {exc}")], {}


# --------------------------------------------------------------------------------------------
# file audits
# --------------------------------------------------------------------------------------------


_KNOWN_METRICS = {
    "power": {"exact", "err_f64", "max_abs_c", "V_inf", "V1"},
    "kl": {"E_star", "beta", "beta_cert", "beta_f64", "V_inf", "V1", "max_abs_c", "eta_budget",
           "log10_V_inf", "log10_V1", "log10_max_abs_c",
           "eta_achieved", "rho_budget", "rho_achieved", "spread"},
}


def _parse_target(target: str) -> list[Fraction]:
    """Monomial coefficients of a header target such as ``"p^2"``, ``"2p"``, ``"(1/3)p^2 - p"``."""
    import sympy

    s = target.replace("^", "**")
    s = re.sub(r"(\d|\))\s*p", r"\1*p", s)
    p = sympy.Symbol("p")
    expr = sympy.sympify(s, locals={"p": p}, rational=True)
    poly = sympy.Poly(expr, p)
    coeffs = [Fraction(int(sympy.fraction(c)[0]), int(sympy.fraction(c)[1])) for c in reversed(poly.all_coeffs())]
    return coeffs


def _params_coeffs(params: Mapping) -> list[Fraction]:
    if set(params) == {"m"}:
        m = int(params["m"])
        return [Fraction(0)] * m + [Fraction(1)]
    if set(params) == {"coeffs"}:
        return [Fraction(str(c)) for c in params["coeffs"]]
    raise ValueError(f"power params must be {{'m'}} or {{'coeffs'}}, received {dict(params)!r}")


def _trim(c: list[Fraction]) -> list[Fraction]:
    c = list(c)
    while len(c) > 1 and c[-1] == 0:
        c.pop()
    return c


class _Prepared:
    """A file opened for audit: file-level findings and the row tasks (None if unreadable)."""

    def __init__(self, path, findings, tasks, header):
        self.path = path
        self.findings = findings
        self.tasks = tasks
        self.header = header


def _file_finding(fname, check, ok, detail, stored=None, recomputed=None, tol="") -> Finding:
    return Finding(fname, None, check, stored, recomputed, None, tol, ok, detail)


def _manifest_findings(path: str, fname: str, manifest: str | None, chash: str | None,
                       table=None) -> list[Finding]:
    from aqpgen.store import tablefile

    mpath = manifest
    if mpath is None:
        cand = os.path.join(os.path.dirname(os.path.abspath(path)), tablefile.MANIFEST_NAME)
        if not os.path.exists(cand):
            return [_file_finding(fname, "manifest", True,
                                  "no MANIFEST.json beside the file and none given (--manifest): not checked",
                                  tol="sha256")]
        mpath = cand
    try:
        files = tablefile.load_manifest(mpath)["files"]
    except (OSError, Exception) as exc:  # malformed manifest is a failure of this check
        return [_file_finding(fname, "manifest", False, f"{mpath}: {exc}")]
    base = os.path.basename(path)
    if base not in files:
        return [_file_finding(fname, "manifest", False, f"{base} is not listed in {mpath}")]
    want = files[base]
    sha = tablefile.file_sha256(path)
    out = [_file_finding(fname, "manifest.sha256", want.get("sha256") == sha,
                         "file sha256 matches the manifest" if want.get("sha256") == sha else
                         f"file sha256 {sha[:16]}... differs from manifest {str(want.get('sha256'))[:16]}... "
                         f"({mpath}): the file bytes changed", stored=want.get("sha256"), recomputed=sha,
                         tol="equal")]
    size = os.path.getsize(path)
    out.append(_file_finding(fname, "manifest.size", want.get("size") == size,
                             f"size {size} matches" if want.get("size") == size else
                             f"file size {size} differs from manifest {want.get('size')}",
                             stored=want.get("size"), recomputed=size, tol="equal"))
    if chash is not None:
        out.append(_file_finding(fname, "manifest.content_hash", want.get("content_hash") == chash,
                                 "manifest content hash matches the recomputed one"
                                 if want.get("content_hash") == chash else
                                 f"manifest content_hash {str(want.get('content_hash'))[:16]}... differs "
                                 f"from the recomputed {chash[:16]}...", stored=want.get("content_hash"),
                                 recomputed=chash, tol="equal"))
    rows = want.get("rows")
    if table is not None and isinstance(rows, dict):
        got = tablefile.row_digests(table)
        bad = sorted(int(k) for k in set(got) | set(rows) if got.get(k) != rows.get(k))
        out.append(_file_finding(fname, "manifest.rows", not bad,
                                 f"all {len(got)} row digests match the manifest" if not bad else
                                 f"{len(bad)} row(s) differ from the manifest's record",
                                 tol="equal"))
        for K in bad:
            out.append(Finding(fname, K, "manifest.row", rows.get(str(K)), got.get(str(K)), None,
                               "equal", False, f"K={K}: the row (values, strings or status) differs "
                               f"from the manifest's record ({mpath})"))
    return out


def _prepare(path: str, manifest: str | None, minimax: str | None) -> _Prepared:
    """File-level checks and the row tasks of one file."""
    import h5py

    from aqpgen.errors import TableFormatError
    from aqpgen.store import tablefile

    fname = os.path.basename(path)
    F: list[Finding] = []
    if not os.path.exists(path):
        return _Prepared(path, [_file_finding(fname, "readable", False, f"{path}: no such file")], [], {})
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as exc:
        return _Prepared(path, [_file_finding(
            fname, "readable", False,
            f"{path}: not a readable HDF5 table ({os.path.getsize(path)} bytes; truncated, corrupted "
            f"or not HDF5): {exc}")], [], {})
    F.append(_file_finding(fname, "readable", True, "HDF5 file opens"))

    def s(x):
        return x.decode() if isinstance(x, bytes) else str(x)

    schema = s(attrs.get("schema", ""))
    try:
        version = int(np.asarray(attrs.get("schema_version", -1)).reshape(()))
    except (TypeError, ValueError):
        version = -1
    if schema != tablefile.SCHEMA or version != tablefile.SCHEMA_VERSION:
        why = (f"schema {schema!r} is not {tablefile.SCHEMA!r}" if schema != tablefile.SCHEMA else
               f"schema_version {version} is newer than the supported {tablefile.SCHEMA_VERSION} "
               f"(written by a newer aqpgen; upgrade aqpgen)" if version > tablefile.SCHEMA_VERSION else
               f"schema_version {version} is invalid (supported: {tablefile.SCHEMA_VERSION})")
        F.append(_file_finding(fname, "schema", False, f"{path}: {why}",
                               stored=f"{schema} v{version}",
                               recomputed=f"{tablefile.SCHEMA} v{tablefile.SCHEMA_VERSION}", tol="equal"))
        return _Prepared(path, F, [], {})
    F.append(_file_finding(fname, "schema", True, f"{schema} v{version}", tol="equal"))
    try:
        t = tablefile.read_table(path, check_hash=False)
    except (TableFormatError, OSError, ValueError, KeyError, TypeError) as exc:
        F.append(_file_finding(fname, "layout", False, f"{path}: {exc}"))
        return _Prepared(path, F, [], {})
    F.append(_file_finding(fname, "layout", True, f"{len(t.Ks)} rows, K {t.Ks[0] if t.Ks else '-'}.."
                           f"{t.Ks[-1] if t.Ks else '-'}"))
    stored_hash = t.content_hash
    chash = tablefile.content_hash(t)
    F.append(_file_finding(fname, "content_hash", chash == stored_hash,
                           "stored content hash equals the recomputed one" if chash == stored_hash else
                           f"{path}: stored content_hash {str(stored_hash)[:16]}... but the data hash to "
                           f"{chash[:16]}...: the file was modified after it was written",
                           stored=stored_hash, recomputed=chash, tol="equal"))
    F.extend(_manifest_findings(path, fname, manifest, chash, t))

    header = {"name": t.name, "family": t.family, "method": t.method, "target": t.target,
              "params": t.params, "Ks": t.Ks}
    tc = None
    if t.family == "power":
        try:
            tc = _trim(_parse_target(t.target))
            pc = _trim(_params_coeffs(t.params))
            ok = tc == pc
            F.append(_file_finding(fname, "target", ok, f"target {t.target!r} agrees with params" if ok else
                                   f"header target {t.target!r} parses to {[str(c) for c in tc]} but params "
                                   f"{t.params!r} give {[str(c) for c in pc]}"))
        except Exception as exc:  # noqa: BLE001 - isolate one part's failure
            F.append(_file_finding(fname, "target", False, f"cannot parse header target {t.target!r}: {exc}"))
            return _Prepared(path, F, [], header)
    elif t.family == "kl":
        ok = t.target.replace(" ", "") in ("logp", "log(p)")
        F.append(_file_finding(fname, "target", ok, f"target {t.target!r}" if ok else
                               f"KL table with target {t.target!r}, expected 'log p'"))
        if t.method not in ("minimax", "aqp"):
            F.append(_file_finding(fname, "method", False, f"unknown KL method {t.method!r}"))
            return _Prepared(path, F, [], header)
    else:
        F.append(_file_finding(fname, "family", False, f"unknown family {t.family!r}"))
        return _Prepared(path, F, [], header)

    unknown = sorted(set(t.metric_names) - _KNOWN_METRICS[t.family])
    if unknown:
        F.append(_file_finding(fname, "metrics.unaudited", True,
                               f"stored metrics not recomputed (solver bookkeeping): {', '.join(unknown)}"))

    E_ref: dict = {}
    if t.family == "kl" and t.method == "aqp" and "eta" in t.params:
        mm = minimax or os.path.join(os.path.dirname(os.path.abspath(path)), "kl-minimax.h5")
        try:
            mt = tablefile.read_table(mm)
            E_ref = {K: mt.metrics(K).get("E_star") for K in mt.Ks if mt.status(K) == "ok"}
            F.append(_file_finding(fname, "E_star.source", True, f"E*_K from {mm} (content hash checked)"))
        except (OSError, TableFormatError, ValueError) as exc:
            F.append(_file_finding(fname, "E_star.source", False,
                                   f"cannot read the minimax table for E*_K ({mm}): {exc}; pass --minimax"))

    tasks = []
    for K in t.Ks:
        r = t.row(K)
        tasks.append(_RowTask(
            file=fname, family=t.family, method=t.method, params=dict(t.params),
            target_coeffs=None if tc is None else tuple((q.numerator, q.denominator) for q in tc),
            K=K, values=r.values, values_hp=r.values_hp, metrics=dict(r.metrics), status=r.status,
            E_star_ref=E_ref.get(K)))
    return _Prepared(path, F, tasks, header)


def _rate_findings(fname: str, Ks, E) -> tuple[list[Finding], dict]:
    """Slope of log E*_K against log K over K in [16, 1024] (least squares) and K²·E*_K."""
    Ks = np.asarray(Ks, dtype=float)
    E = np.asarray(E, dtype=float)
    sel = (Ks >= _RATE_RANGE[0]) & (Ks <= _RATE_RANGE[1]) & np.isfinite(E) & (E > 0)
    if sel.sum() < 2:
        return [_file_finding(fname, "rate", True,
                              f"fewer than two K in [{_RATE_RANGE[0]}, {_RATE_RANGE[1]}]: rate not audited")], {}
    slope, _icpt = np.polyfit(np.log(Ks[sel]), np.log(E[sel]), 1)
    tol = TOLERANCES["slope"]
    ok = abs(slope + 2) <= tol
    kmax = int(Ks[sel].max())
    k2e = float(kmax ** 2 * E[Ks == kmax][0])
    info = {"slope": float(slope), "K_range": [int(Ks[sel].min()), kmax], "K2E_at_Kmax": k2e}
    return [Finding(fname, None, "rate", None, float(slope), abs(slope + 2), f"|slope + 2| <= {tol:g}", ok,
                    f"slope of log E*_K vs log K over K in [{int(Ks[sel].min())}, {kmax}] = {slope:.5f}; "
                    f"K²E*_K at K={kmax}: {k2e:.10g}" if ok else
                    f"Θ(1/K²) rate fails: slope {slope:.5f} over K in [{int(Ks[sel].min())}, {kmax}] "
                    f"is not -2 +- {tol:g}")], info


_CHECK_ORDER = ["readable", "schema", "layout", "content_hash", "manifest", "manifest.sha256",
                "manifest.size", "manifest.content_hash", "manifest.rows", "target", "family", "method",
                "metrics.unaudited", "E_star.source", "rate"]


def audit_files(paths: Sequence[str], *, manifest: str | None = None, minimax: str | None = None,
                jobs: int = 2, progress=None) -> list[FileAudit]:
    """Audit several table files with one process pool over their (file, K) rows.

    Parameters
    ----------
    paths : sequence of path-like
        Table files (``.h5``).
    manifest : path-like, optional
        MANIFEST.json to check the files against (default: the one beside each file, if any).
    minimax : path-like, optional
        The minimax table supplying E*_K for AQP eta presets (default: ``kl-minimax.h5``
        beside the AQP file).
    jobs : int
        Worker processes (1 = in this process).
    progress : callable, optional
        Called with the number of rows finished after each row (for a progress bar).

    Returns
    -------
    list of FileAudit
        One per path, in the given order.
    """
    if int(jobs) != jobs or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, received {jobs!r}")
    prepared = [_prepare(os.fspath(p), manifest, minimax) for p in paths]
    tasks = [t for pr in prepared for t in pr.tasks]
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].K)  # big rows first
    results: dict = {}
    if jobs == 1 or len(tasks) <= 1:
        for i in order:
            results[i] = _audit_row(tasks[i])
            if progress:
                progress(1)
    else:
        with cf.ProcessPoolExecutor(max_workers=int(jobs)) as ex:
            futs = {ex.submit(_audit_row, tasks[i]): i for i in order}
            for fut in cf.as_completed(futs):
                results[futs[fut]] = fut.result()
                if progress:
                    progress(1)
    audits = []
    k = 0
    for pr in prepared:
        rows = [results[i] for i in range(k, k + len(pr.tasks))]
        k += len(pr.tasks)
        findings = list(pr.findings)
        rate = {}
        if pr.header.get("method") == "minimax" and rows:
            Ks = [K for (_, K, _, ex) in rows if "level" in ex]
            E = [ex["level"] for (_, K, _, ex) in rows if "level" in ex]
            rf, rate = _rate_findings(os.path.basename(pr.path), Ks, E)
            findings.extend(rf)
        findings.sort(key=lambda f: _CHECK_ORDER.index(f.check) if f.check in _CHECK_ORDER else 99)
        for _, _, fs, _ in sorted(rows, key=lambda r: r[1]):
            findings.extend(fs)
        audits.append(FileAudit(path=pr.path, name=pr.header.get("name", os.path.basename(pr.path)),
                                family=pr.header.get("family", "?"), method=pr.header.get("method", "?"),
                                findings=tuple(findings), rate=rate))
    return audits


def audit_file(path, *, manifest=None, minimax=None, jobs: int = 1) -> FileAudit:
    """Audit one table file (see :func:`audit_files`)."""
    return audit_files([path], manifest=manifest, minimax=minimax, jobs=jobs)[0]


# --------------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------------


def summary_rows(audits: Sequence[FileAudit]) -> list[dict]:
    """One row per (file, check): number of findings, failures, and the worst one.

    The worst finding is the first failure if any, else the one with the largest rel. diff.
    """
    rows = []
    for a in audits:
        by: dict = {}
        for f in a.findings:
            by.setdefault(f.check, []).append(f)
        for check, fs in by.items():
            bad = [f for f in fs if not f.ok]
            if bad:
                w = bad[0]
            else:
                w = max(fs, key=lambda f: -1.0 if f.rel_diff is None else f.rel_diff)
            rows.append({"file": a.path and os.path.basename(a.path), "check": check, "n": len(fs),
                         "failed": len(bad), "K": w.K, "stored": w.stored, "recomputed": w.recomputed,
                         "rel_diff": w.rel_diff, "tolerance": w.tolerance, "ok": not bad,
                         "detail": w.detail})
    return rows


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.10g}"
    s = str(x)
    return s if len(s) <= 18 else s[:15] + "..."


def format_text(audits: Sequence[FileAudit], all_rows: bool = False) -> str:
    """The plain-text discrepancy table: per (file, check) the worst K, then every failure."""
    head = ("file", "check", "rows", "fail", "worst K", "stored", "recomputed", "rel diff", "tolerance", "ok")
    lines = []
    rows = summary_rows(audits)
    table = [head] + [(r["file"], r["check"], str(r["n"]), str(r["failed"]), _fmt(r["K"]), _fmt(r["stored"]),
                       _fmt(r["recomputed"]), _fmt(r["rel_diff"]) if r["rel_diff"] is None else f"{r['rel_diff']:.2e}",
                       r["tolerance"], "ok" if r["ok"] else "FAIL") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    fails = [f for a in audits for f in a.findings if not f.ok]
    shown = [f for a in audits for f in a.findings] if all_rows else fails
    if shown:
        lines.append("")
        lines.append("Failures:" if not all_rows else "All findings:")
        for f in shown:
            k = f"K={f.K}" if f.K is not None else "file"
            lines.append(f"  {'FAIL' if not f.ok else 'ok  '} {f.file} {k} {f.check}: {f.detail}")
    nrows = sum(len({f.K for f in a.findings if f.K is not None}) for a in audits)
    lines.append("")
    lines.append(f"{len(audits)} file(s), {nrows} row(s), "
                 f"{sum(len(a.findings) for a in audits)} checks, {len(fails)} failure(s): "
                 f"{'AUDIT PASSED' if not fails else 'AUDIT FAILED'}")
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, np.generic):  # numpy scalars (bool_, float64, int64) -> Python
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def to_json(audits: Sequence[FileAudit]) -> dict:
    """Everything as a JSON-serialisable dict (schema ``aqpgen.audit`` version 1)."""
    return {
        "schema": "aqpgen.audit",
        "version": 1,
        "ok": bool(all(a.ok for a in audits)),
        "tolerances": dict(TOLERANCES),
        "files": [{
            "file": os.path.basename(a.path), "name": a.name, "family": a.family, "method": a.method,
            "ok": bool(a.ok), "checks": len(a.findings), "failures": len(a.failures), "rate": a.rate,
        } for a in audits],
        "summary": [{k: _jsonable(v) for k, v in r.items()} for r in summary_rows(audits)],
        "findings": [{k: _jsonable(v) for k, v in asdict(f).items()} for a in audits for f in a.findings],
    }


def _md_cell(x) -> str:
    return _fmt(x).replace("|", "\\|")


def to_markdown(audits: Sequence[FileAudit], title: str = "Audit report") -> str:
    """A Markdown report: verdict, tolerances, per-file summary tables and every failure."""
    fails = [f for a in audits for f in a.findings if not f.ok]
    out = [f"# {title}", "",
           (f"**{'PASSED' if not fails else 'FAILED'}**: {len(audits)} file(s), "
            f"{sum(len(a.findings) for a in audits)} checks, {len(fails)} failure(s)."), "",
           TOLERANCE_HELP, ""]
    for a in audits:
        out.append(f"## {os.path.basename(a.path)} ({a.family}/{a.method}) — {'ok' if a.ok else 'FAILED'}")
        out.append("")
        if a.rate:
            out.append(f"Rate: slope {a.rate['slope']:.5f} over K in {a.rate['K_range']}, "
                       f"K²E*_K at K={a.rate['K_range'][1]}: {a.rate['K2E_at_Kmax']:.10g}")
            out.append("")
        out.append("| check | rows | failed | worst K | stored | recomputed | rel diff | tolerance |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in summary_rows([a]):
            rd = "-" if r["rel_diff"] is None else f"{r['rel_diff']:.2e}"
            out.append(f"| {r['check']} | {r['n']} | {r['failed']} | {_md_cell(r['K'])} | {_md_cell(r['stored'])} "
                       f"| {_md_cell(r['recomputed'])} | {rd} | {r['tolerance']} |")
        out.append("")
        if a.failures:
            out.append("Failures:")
            out.append("")
            for f in a.failures:
                out.append(f"* {'K=' + str(f.K) if f.K is not None else 'file'} `{f.check}`: {f.detail}")
            out.append("")
    return "\n".join(out).rstrip() + "\n"
