"""The audit's own high-precision row polynomials, target evaluations and extremum search.

One table row c_K[1..K] is turned into two ball-arithmetic (python-flint ``arb``) polynomials in
the monomial basis (docs/MATH.md §1):

    P(p) = p·g_c(p)        Bernstein coefficients d_j = (j/K)·c_j, j = 0..K (d_0 = 0),
    W(p) = p·E_p[c[n]²]    Bernstein coefficients (j/K)·c_j²,

so the weighted error is e(p) = P(p) − h(p) with h(p) = p·g(p) the weighted target, and
p·Var_p(c[n]) = W(p) − P(p)²/p.  The ball radii track the cancellation of the conversion; a
radius above 1e-24 relative raises :class:`PrecisionError` and :func:`with_prec` doubles the
precision.

This is deliberately NOT :mod:`aqpgen.numerics`: the audit re-derives what it checks with its
own code (see :mod:`aqpgen.audit`).

Public names
------------
AuditTarget              -- the weighted target h(p) = p·g(p): float64 and arb evaluations of h,
                            h', h'' for log p and p^a (own implementation), the plug-in table.
LOG_TARGET               -- AuditTarget for log p.
parse_audit_target(text) -- "log p" / "p^0.5" / "p^(-1/2)" -> AuditTarget (ValueError otherwise).
to_fraction(x)           -- exact rational of a stored value (float64, decimal or "a/b" string).
RowPoly                  -- P, W of one row; float64 evaluation of e and p·Var; exact V1;
                            Newton refinement of an extremum of e in ball arithmetic.
PrecisionError           -- the ball radii show that the working precision is insufficient.
choose_prec(values)      -- starting precision (bits) of a row.
grid(K)                  -- p_i = sin²(πi/2N), N = 8K + 400 (dense near 0).
local_maxima(a)          -- indices of the local maxima of a sampled curve.
sup_err(rp, grid)        -- sup_p |e(p)| with Newton-refined extrema.
sup_pvar(rp, grid)       -- sup_p p·Var_p with nested-grid refinement.
with_prec(fn, values)    -- run ``fn(RowPoly)`` raising the precision until the radii are small.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from aqpgen.numerics.precision import flint_prec
from aqpgen.targets import format_exponent

__all__ = [
    "LOG_TARGET",
    "AuditTarget",
    "PrecisionError",
    "RowPoly",
    "choose_prec",
    "grid",
    "local_maxima",
    "parse_audit_target",
    "sup_err",
    "sup_pvar",
    "to_fraction",
    "with_prec",
]

#: Precision (bits) of the low-cost parts of a Newton step (after the cancelling polynomial sums).
LOW_PREC = 192


# --------------------------------------------------------------------------------------------
# targets (the audit's own evaluations; docs/MATH.md §1, §2b)
# --------------------------------------------------------------------------------------------
class AuditTarget:
    """The weighted target h(p) = p·g(p) of g = log p (``a is None``) or g = p^a (a > −1).

    Attributes
    ----------
    name : str
        "log p" or "p^A" (A as written in the file, normalised).
    a : Fraction or None
        The exponent (exact rational), None for log p.
    rate : float
        r of the minimax rate E*_K = Θ(K^−r): 2 for log p, 2(a+1) for p^a (docs/MATH.md §4).
    """

    def __init__(self, a: Fraction | None):
        if a is not None and a <= -1:
            raise ValueError(f"the exponent a of p^a must be > -1, received {a}")
        self.a = a
        self.name = "log p" if a is None else f"p^{format_exponent(a)}"
        self.rate = 2.0 if a is None else 2.0 * float(a + 1)

    @property
    def is_log(self) -> bool:
        """True for log p."""
        return self.a is None

    def __eq__(self, other) -> bool:
        return isinstance(other, AuditTarget) and self.a == other.a

    def __hash__(self) -> int:
        return hash(self.a)

    def __repr__(self) -> str:
        return f"AuditTarget({self.name!r})"

    # float64 (locating extrema only)
    def h_f(self, ps: np.ndarray) -> np.ndarray:
        """h(p) in float64, h(0) = 0."""
        ps = np.asarray(ps, dtype=np.float64)
        safe = np.where(ps > 0, ps, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = safe * np.log(safe) if self.a is None else safe ** (float(self.a) + 1.0)
        return np.where(ps > 0, v, 0.0)

    # ball arithmetic at the caller's flint precision (x > 0)
    def _exp(self, shift: int):
        from flint import arb, fmpq

        e = self.a + shift
        return arb(fmpq(e.numerator, e.denominator))

    def h_arb(self, x):
        """h(x) for an arb x > 0."""
        return x * x.log() if self.a is None else x ** self._exp(1)

    def dh_arb(self, x):
        """h'(x): log x + 1, or (a+1)·x^a."""
        if self.a is None:
            return x.log() + 1
        return self._exp(1) * x ** self._exp(0)

    def d2h_arb(self, x):
        """h''(x): 1/x, or (a+1)·a·x^(a−1)."""
        if self.a is None:
            return 1 / x
        if self.a == 0:
            return x * 0
        return self._exp(1) * self._exp(0) * x ** self._exp(-1)

    def plugin_values(self, K: int) -> list[Fraction]:
        """The plug-in table g(n/K), n = 1..K, as the float64 values training code uses."""
        r = np.arange(1, K + 1) / K
        v = np.log(r) if self.a is None else np.power(r, float(self.a))
        return [Fraction(float(x)) for x in v]


#: log p.
LOG_TARGET = AuditTarget(None)

_POW = re.compile(r"p\s*(?:\^|\*\*)\s*\(?\s*([+-]?\s*\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:\s*/\s*\d+)?)\s*\)?")


def parse_audit_target(text: str) -> AuditTarget:
    """The AuditTarget of a file's ``target`` attribute.

    Accepts "log p", "log(p)", "log", "p^A" / "p**A" / "p^(A)" with A a decimal or a fraction
    "n/d" (exact: "p^0.5" has a = 1/2).  Raises ValueError naming the text otherwise.
    """
    s = str(text).strip()
    if s.replace(" ", "") in ("logp", "log(p)", "log"):
        return LOG_TARGET
    m = _POW.fullmatch(s)
    if not m:
        raise ValueError(f"target must be 'log p' or 'p^A' (A > -1), received {text!r}")
    a = Fraction(m.group(1).replace(" ", ""))
    return AuditTarget(a)


# --------------------------------------------------------------------------------------------
# exact inputs and ball polynomials
# --------------------------------------------------------------------------------------------
def to_fraction(x) -> Fraction:
    """Exact rational of a stored value: a float64, or a decimal / ``"a/b"`` string."""
    if isinstance(x, (bytes, np.bytes_)):
        x = x.decode("ascii")
    if isinstance(x, str):
        return Fraction(x.strip())
    return Fraction(float(x))


def _arb_of(q: Fraction):
    from flint import arb, fmpq

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


class PrecisionError(Exception):
    """The ball radii show that the working precision is insufficient."""


class RowPoly:
    """P(p) = p·g_c(p) and W(p) = p·E_p[c[n]²] of one row as monomial ball polynomials.

    ``P`` has Bernstein coefficients d_j = (j/K) c_j and ``W`` has (j/K) c_j², j = 0..K;
    the error is e(p) = P(p) − h(p) with h the weighted ``target``.
    """

    def __init__(self, values: Sequence[Fraction], prec: int, with_w: bool = True,
                 target: AuditTarget = LOG_TARGET):
        K = len(values)
        self.K = K
        self.prec = int(prec)
        self.target = target
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

    def check(self, y, scale: float = 1e-30) -> float:
        """float64 of a ball's midpoint; PrecisionError when its radius exceeds 1e-24 relative
        (or ``scale``·1e-24 absolute for values near zero)."""
        r = float(y.rad())
        if not math.isfinite(r) or r > 1e-24 * max(abs(float(y.mid())), scale):
            raise PrecisionError(f"radius {r:.3g} at prec {self.prec}")
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
                f[j] = self.check(poly(arb(float(pts[j]))))
        # f[j] = poly(p_j), p_j = (1 − cos(πj/K))/2, i.e. x_j = −cos(πj/K); reverse to x = cos(πj/K)
        f = f[::-1]
        ext = np.concatenate([f, f[-2:0:-1]])
        a = np.real(np.fft.fft(ext)) / K
        a = a[: K + 1].copy()
        a[0] /= 2
        a[K] /= 2
        return a

    def err_f(self, ps) -> np.ndarray:
        """e(p) = P(p) − h(p) in float64 (Clenshaw on the Chebyshev coefficients of P)."""
        ps = np.asarray(ps, dtype=np.float64)
        return np.polynomial.chebyshev.chebval(2 * ps - 1, self._pc) - self.target.h_f(ps)

    def pvar_f(self, ps) -> np.ndarray:
        """p·Var_p(c[n]) = W(p) − P(p)²/p in float64, scaled by 2**wexp (0 at p = 0)."""
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
        """∫_0^1 p·Var_p dp = ∫W − ∫P·G with G = P/p (exact monomial integration), scaled."""
        with flint_prec(self.prec):
            G = self.P.right_shift(1)
            Q = self.P * G
            total = self.W.coeffs()[0] * 0
            sc = _arb_of(Fraction(1, 2 ** -self.wexp))
            for k, a in enumerate(self.W.coeffs()):
                total += a / (k + 1)
            for k, a in enumerate(Q.coeffs()):
                total -= a * sc / (k + 1)
            return self.check(total, 1e-30)

    def newton_extremum(self, p0: float, lo: float, hi: float):
        """Refine a local extremum of e near p0 within [lo, hi]: Newton on e'(p) = 0.

        e'(p) = P'(p) − h'(p) and e''(p) = P''(p) − h''(p) are evaluated in ball arithmetic at
        float64 iterates (exact 53-bit inputs); the iteration stops when the step is below
        2 ulp.  At an extremum e' = 0, so a location error δ changes e by only e''δ²/2.
        Returns (p, e(p) as a ball).
        """
        from flint import arb

        T = self.target
        x = float(p0)
        for _ in range(40):
            with flint_prec(self.prec):
                xa = arb(x)
                d1 = self.P1(xa)
                d2 = self.P2(xa)
            with flint_prec(LOW_PREC):
                step = float(((d1 - T.dh_arb(xa)) / (d2 - T.d2h_arb(xa))).mid())
            xn = min(max(x - step, lo), hi) if math.isfinite(step) else x
            if xn == lo and lo == 0.0:
                xn = x / 2
            if abs(xn - x) <= 2 * np.spacing(x) or xn == x:
                x = xn
                break
            x = xn
        with flint_prec(self.prec):
            xa = arb(x)
            y = self.P(xa) - T.h_arb(xa) if x > 0 else self.P(xa)
            self.check(y)
            return x, y


def choose_prec(values: Sequence[Fraction]) -> int:
    """Working precision (bits) for the Bernstein -> monomial conversion of one row.

    The monomial coefficients are bounded by 2^K·max|c| (plus factorial ratios that the
    product form keeps exact), so 3K + 2·log2(max|c|) + 200 bits suffice with guard bits; the
    ball radii are checked anyway and :func:`with_prec` doubles the precision on failure.
    """
    K = len(values)
    m = max((abs(float(v)) for v in values), default=1.0)
    lg = math.log2(m) if m > 1 and math.isfinite(m) else 0.0
    return int(3 * K + 2 * lg + 200)


def grid(K: int) -> np.ndarray:
    """p_i = sin²(π i / 2N), N = 8K + 400: dense near 0, where the extrema crowd (1/K² scale)."""
    N = 8 * K + 400
    return np.sin(np.pi * np.arange(N + 1) / (2 * N)) ** 2


def local_maxima(a: np.ndarray) -> np.ndarray:
    """Indices i >= 1 with a[i] > 0 and a[i] >= both neighbours (one-sided at the right end)."""
    a = np.asarray(a)
    n = len(a)
    idx = [i for i in range(1, n)
           if a[i] >= a[i - 1] and (i == n - 1 or a[i] >= a[i + 1]) and a[i] > 0]
    return np.asarray(idx, dtype=int)


def sup_err(rp: RowPoly, grid: np.ndarray, keep: float = 0.9, all_maxima: bool = False):
    """sup_p |e(p)| with Newton-refined extrema.

    Returns (sup, extrema) where extrema is a list of (p, ball e(p)) sorted by p for every grid
    maximum with |e| >= keep·max (every maximum with |e| >= 0.5·max if ``all_maxima``).
    """
    a = np.abs(rp.err_f(grid))
    idx = local_maxima(a)
    if len(idx) == 0:
        return 0.0, []
    top = a[idx].max()
    idx = idx[a[idx] >= (0.5 if all_maxima else keep) * top]
    ext = []
    n = len(grid)
    for i in idx:
        cand = rp.newton_extremum(grid[i], grid[i - 1], grid[min(i + 1, n - 1)])
        if i == n - 1:  # a maximum at the end point p = 1 need not be a critical point
            end = rp.newton_extremum(1.0, 1.0, 1.0)
            cand = end if abs(float(end[1].mid())) >= abs(float(cand[1].mid())) else cand
        ext.append(cand)
    sup = max(abs(float(y.mid())) for _, y in ext)
    return max(sup, float(top)), ext


def sup_pvar(rp: RowPoly, grid: np.ndarray, passes: int = 5, m: int = 21) -> float:
    """sup_p p·Var_p: grid maxima within 1 % of the largest (at most 8), refined by nested grids."""
    v = rp.pvar_f(grid)
    idx = local_maxima(v)
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


def with_prec(fn, values, *args, with_w: bool = True, target: AuditTarget = LOG_TARGET):
    """Run ``fn(RowPoly(values), *args)`` doubling the precision (at most 4 tries) until the
    ball radii are small; RuntimeError naming the last radius otherwise."""
    prec = choose_prec(values)
    last = None
    for _ in range(4):
        try:
            return fn(RowPoly(values, prec, with_w=with_w, target=target), *args)
        except PrecisionError as exc:
            last = exc
            prec *= 2
    raise RuntimeError(f"ball arithmetic did not reach the required accuracy: {last}")
