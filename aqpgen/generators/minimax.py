"""Minimax (bias-optimal) estimator of log p: Remez exchange, table conversion, rate audit.

The problem (docs/MATH.md §3)
-----------------------------------------
For batch size K the table c_K[1..K] has mean g_c(p) = sum_m c_{m+1} b_{K-1,m}(p), any polynomial
Q of degree <= K-1.  The bias-optimal table minimises the p-weighted bias of log p,

.. math::  E^*_K = \\min_{\\deg Q \\le K-1}\\ \\sup_{p\\in[0,1]} |p\\,Q(p) - p\\log p| ,

the best uniform approximation of h(p) = p log p from {p Q(p)}.  The space is Haar on (0, 1], so
the optimum is unique and its error equioscillates at K+1 points of (0, 1] (Chebyshev's
alternation theorem; p = 1 is one of them at every K computed (1..1024), p = 0 never, since
e(0) = 0).  K = 1 has a
closed form: E*_1 = W(1/e) (Lambert W) with the table c_1 = [-W(1/e)].  Theory
(Ditzian-Totik, omega^2_phi(p log p, 1/K) ~ 1/K^2): K^2 E*_K -> const; ``rate_audit`` checks it.

Public names
------------
remez(K, prec=, tol=, maxiter=, init=)  -> MinimaxResult   the Remez exchange (below).
MinimaxResult                            frozen result: E*_K, Chebyshev coefficients, reference.
minimax_table(K, ...)                    -> (values_hp, values_f64, result): the table c_K.
cheb_to_bernstein(cheb, prec)            Chebyshev -> Bernstein coefficients (arb balls).
table_prec(K)                            working precision (bits) of the table conversion.
E_star(K)                                E*_K from tables/kl-minimax.h5, else solved.
rate_audit(Ks, E) -> RateAudit           K^2 E*_K, fitted log-log slope, limit extrapolation.
GENERATOR_VERSION, target_name, build_K, verify_row   the generator interface (ARCHITECTURE.md).

The Remez exchange
------------------
Basis and variable.  Q(p) = sum_j a_j T_j(2p-1), and with p = (1 - cos t)/2 = sin^2(t/2),
t in [0, pi], one has T_j(2p - 1) = (-1)^j cos(j t), so Q is the cosine series
sum_j b_j cos(j t), b_j = (-1)^j a_j.  The extrema of e(t) = p (Q - log p) are roughly uniform in
t (they crowd towards p = 0 on the 1/K^2 scale in p), so every grid and every Newton step lives
in t.  A reference point is stored as t = pi k / M + d (k an integer on the uniform grid of M
intervals, d a small float), so cos(j t) = cos(pi jk/M) cos(j d) - sin(pi jk/M) sin(j d) is
accurate to a few ulp for every j <= K (plain ``cos(j*t)`` would lose ~log2(jt) bits).

Each iteration (1) solves the levelled system sum_j b_j cos(j t_i) + (-1)^i h / p_i = log p_i on
the reference t_0 < ... < t_K, then (2) locates the local extrema of e: values on the uniform
grid t = pi k / M (M >= 16 (K+1), by one DCT-I), the grid maxima are refined by Newton's method
on e'(t) (analytic e', e'' from the cosine series; vectorised), (3) keeps one extremum per sign
run and drops the smallest until K+1 alternating points remain (the new reference).

Two stages.  The first iterations run in float64 (about 3 from the initial guess below; the
float64 noise floor of the relative spread is ~20 eps sum_j |b_j| / E*_K: ~1e-9 at K = 256,
~1e-7 at K = 1024; the stage hands over when the spread is below max(1e-9, that floor) or stops
decreasing).  Then the
stage switches to high precision: the system is built in python-flint ``arb`` at ``prec`` bits
(default 128) and solved by float64 LU plus iterative refinement with arb residuals; the new
extrema are located with float64 derivatives of that polynomial (an extremum's value is
insensitive to its position to first order, so float64 positions cost only ~(1e-15/E)^2 in
relative value) and the error is re-evaluated there in arb.  Usually one high-precision
iteration suffices (Remez converges quadratically).

Initial reference: t_i = pi (i + i/(2K) + f(i)) / (K + 1/2), f(i) = 0.479 (1 - i/K) / (i + 1.157),
a fit of the converged references at K = 64, 128 (the boundary layer near p = 0); it converges in
~3 float64 iterations for every K tried (1..1024).

Stopping rule: stop when the relative levelled-error spread
``spread = (max_i |e(x_i)| - min_i |e(x_i)|) / max_i |e(x_i)|`` over the K+1 located alternating
extrema x_i, evaluated in high precision, is <= ``tol`` (default 1e-12).  By de la Vallee Poussin
min_i |e(x_i)| <= E*_K <= max_i |e(x_i)|, so E*_K is known to relative accuracy ``spread``.

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

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqpgen.errors import ConvergenceError
from aqpgen.numerics.fit import loglog_slope, richardson_limit
from aqpgen.numerics.metrics import table_metrics
from aqpgen.numerics.precision import flint_prec, work_prec
from aqpgen.records import Check, KResult, as_K
from aqpgen.store.locate import find_table
from aqpgen.targets import LOG, Target, parse_target, pow_kmin

__all__ = [
    "DEFAULT_TOL",
    "GENERATOR_VERSION",
    "VERIFY_SPREAD",
    "E_star",
    "MinimaxResult",
    "RateAudit",
    "build_K",
    "cheb_to_bernstein",
    "default_prec",
    "minimax_table",
    "rate_audit",
    "remez",
    "table_prec",
    "target_name",
    "verify_row",
]

#: bump when the output for the same inputs changes.
GENERATOR_VERSION = "2"
#: default stopping tolerance on the relative levelled-error spread.
DEFAULT_TOL = 1e-12
#: the acceptance threshold checked by ``verify_row`` (SPEC / issue 3).
VERIFY_SPREAD = 1e-10
#: relative agreement required between a re-evaluated table and its stored E_star (8 digits).
VERIFY_E_DIGITS = 8
#: the float64 stage hands over to high precision below this spread (or when it stagnates).
_FLOAT_HANDOVER = 1e-9
#: name of the shipped minimax table (found by ``aqpgen.store.locate``).
TABLE_NAME = "kl-minimax"
#: former private validator, imported by generators/minimax_lp.py (helper "alpha" switches it to
#: aqpgen.records.as_K); remove with that import.
_as_K = as_K


# --------------------------------------------------------------------------------------------
# validation and precision helpers
# --------------------------------------------------------------------------------------------
def default_prec(K: int) -> int:
    """Working precision (bits) of the high-precision Remez stage: ``work_prec(K)``.

    128 bits up to K = 1024, 4 more bits per further doubling of K.  The Chebyshev basis is well
    conditioned on the reference, so the levelled error is accurate to ~2^-prec * K * sum|a_j|
    (sum|a_j| ~ 2 log K), far below 1e-12 E*_K ~ 3e-20 at K = 1024.
    """
    return work_prec(as_K(K))


def table_prec(K: int) -> int:
    """Working precision (bits) of the Chebyshev -> Bernstein conversion:
    ``work_prec(K, magnitude_bits=K)`` = K + 128 up to K = 1024.

    The table's coefficients reach max|c_K| ~ 2^K / K while the polynomial they represent is
    O(log K) (module docstring), so ~K bits cancel in sum_m c_{m+1} b_{K-1,m}(p); 128 bits are left
    for the result (E*_K ~ 0.325 / K^2 needs ~2 log2 K + 70 of them for 20 digits beyond E*_K).
    """
    K = as_K(K)
    return work_prec(K, magnitude_bits=K)


def _digits(prec: int) -> int:
    """Significant decimal digits printed for a quantity computed at ``prec`` bits."""
    return int(prec * math.log10(2)) + 2


# --------------------------------------------------------------------------------------------
# the float64 engine: cosine series on the t grid, solve, locate extrema
# --------------------------------------------------------------------------------------------
def _grid_size(K: int) -> int:
    """Uniform t-grid intervals M: a power of two >= 16 (K+1) (>= 16 points per oscillation)."""
    return max(256, 1 << math.ceil(math.log2(16 * (K + 1))))


class _Engine:
    """float64 machinery for one K: reference points t = pi k/M + d, cosine series of degree K-1.

    The series is Q and e = p (Q - g(p)) for the target g (``target.g_theta``).
    """

    def __init__(self, K: int, M: int, target: Target = LOG):
        self.K, self.M = K, M
        self.target = target
        m = np.arange(2 * M)
        self.CT = np.cos(np.pi * m / M)
        self.ST = np.sin(np.pi * m / M)
        self.j = np.arange(K, dtype=np.float64)
        self.ji = np.arange(K, dtype=np.int64)
        self.h = np.pi / M

    def theta(self, k, d):
        return np.pi * np.asarray(k) / self.M + np.asarray(d)

    def base(self, k):
        """cos(pi j k / M), sin(pi j k / M), shape (len(k), K), exact table look-ups."""
        idx = np.outer(np.asarray(k, dtype=np.int64), self.ji) % (2 * self.M)
        return self.CT[idx], self.ST[idx]

    def cs(self, k, d, base=None):
        """cos(j t), sin(j t) for t = pi k/M + d (rows) and j = 0..K-1 (columns)."""
        C0, S0 = self.base(k) if base is None else base
        jd = np.outer(np.asarray(d, dtype=np.float64), self.j)
        cd, sd = np.cos(jd), np.sin(jd)
        return C0 * cd - S0 * sd, S0 * cd + C0 * sd

    def pL(self, t):
        """p = sin^2(t/2) and g(p) (t in (0, pi])."""
        s = np.sin(0.5 * t)
        return s * s, self.target.g_theta(t)[0]

    def system(self, k, d):
        """The levelled system A [b; h] = log p on the reference (float64)."""
        K = self.K
        C, _ = self.cs(k, d)
        p, L = self.pL(self.theta(k, d))
        A = np.empty((K + 1, K + 1))
        A[:, :K] = C
        A[:, K] = (-1.0) ** np.arange(K + 1) / p
        return A, L, p

    def solve(self, k, d):
        A, L, _ = self.system(k, d)
        x = np.linalg.solve(A, L)
        return x[: self.K], x[self.K]

    def grid_error(self, b):
        """e(t) on t = pi k / M, k = 0..M, by one DCT-I of the cosine series."""
        import scipy.fft

        M = self.M
        x = np.zeros(M + 1)
        x[: self.K] = b
        x[1:] *= 0.5
        S = scipy.fft.dct(x, type=1)
        t = np.pi * np.arange(M + 1) / M
        with np.errstate(divide="ignore", invalid="ignore"):
            p, L = self.pL(t)
            e = p * (S - L)
        e[0] = 0.0
        return e

    def derivs(self, b, k, d, base=None):
        """e, de/dt, d2e/dt2 at t = pi k/M + d (vectorised)."""
        C, S = self.cs(k, d, base)
        j = self.j
        Q = C @ b
        Q1 = -(S @ (j * b))
        Q2 = -(C @ (j * j * b))
        t = self.theta(k, d)
        s, c = np.sin(0.5 * t), np.cos(0.5 * t)
        p, p1, p2 = s * s, s * c, 0.5 * (c * c - s * s)
        L, L1, L2 = self.target.g_theta(t)
        r = Q - L
        e = p * r
        e1 = p1 * r + p * (Q1 - L1)
        e2 = p2 * r + 2.0 * p1 * (Q1 - L1) + p * (Q2 - L2)
        return e, e1, e2

    def locate(self, b):
        """Local extrema of e: grid maxima of |e| refined by safeguarded Newton on e'(t).

        Returns (k, d, e) of all refined local extrema, sorted by t (t = pi k/M + d).
        """
        M, h = self.M, self.h
        e = self.grid_error(b)
        a = np.abs(e)
        kk = np.arange(1, M)
        loc = kk[(a[1:M] >= a[0 : M - 1]) & (a[1:M] > a[2 : M + 1])]
        if a[M] > a[M - 1]:
            loc = np.append(loc, M)
        if loc.size == 0:
            return loc, np.zeros(0), np.zeros(0)
        base = self.base(loc)
        d = np.zeros(loc.size)
        top = loc == M
        ev = e[loc]
        active = np.ones(loc.size, dtype=bool)
        conv = np.zeros(loc.size, dtype=bool)
        last = np.full(loc.size, np.inf)  # size of the last Newton step
        for _ in range(10):
            ia = np.flatnonzero(active)
            if ia.size == 0:
                break
            ba = (base[0][ia], base[1][ia])
            e0, e1, e2 = self.derivs(b, loc[ia], d[ia], ba)
            ok = e2 * np.sign(e0) < 0  # a maximum of |e|: curvature of e opposite to e
            step = np.where(ok, -e1 / np.where(ok, e2, 1.0), 0.0)
            dn = np.clip(d[ia] + step, -1.5 * h, 1.5 * h)
            dn = np.where(top[ia], np.minimum(dn, 0.0), dn)  # t <= pi
            small = ok & (np.abs(dn - d[ia]) <= 1e-8 * h)  # float noise ~1e-10 h
            last[ia] = np.abs(dn - d[ia])
            d[ia] = dn
            conv[ia[small]] = True
            active[ia[small | ~ok]] = False
        e0, _, _ = self.derivs(b, loc, d, base)
        # safeguard: where Newton did not converge, keep the grid point if it is better; a Newton
        # iterate whose last step is < 1e-4 h is noise-limited, not unconverged (tiny E*_K: p^a)
        settled = conv | (last <= 1e-4 * h)
        worse = ~settled & (np.abs(e0) < np.abs(ev))
        d = np.where(worse, 0.0, d)
        e0 = np.where(worse, ev, e0)
        return loc, d, e0


def _select(k, d, ev, n_keep: int):
    """Keep one extremum per run of equal sign (the largest), then drop the smallest until
    ``n_keep`` alternating points remain (an interior drop merges its two neighbours)."""
    k, d, ev = list(k), list(d), list(ev)

    def merge(k, d, ev):
        ok, od, oe = [], [], []
        for a, b, c in zip(k, d, ev):
            if c == 0.0:
                continue
            if oe and (c > 0) == (oe[-1] > 0):
                if abs(c) > abs(oe[-1]):
                    ok[-1], od[-1], oe[-1] = a, b, c
            else:
                ok.append(a)
                od.append(b)
                oe.append(c)
        return ok, od, oe

    k, d, ev = merge(k, d, ev)
    while len(k) > n_keep:
        if len(k) - n_keep == 1:
            i = 0 if abs(ev[0]) < abs(ev[-1]) else len(k) - 1
        else:
            i = int(np.argmin(np.abs(ev)))
        del k[i], d[i], ev[i]
        k, d, ev = merge(k, d, ev)
    return np.asarray(k, dtype=np.int64), np.asarray(d, dtype=np.float64), np.asarray(ev)


def _spread(ev) -> float:
    a = np.abs(np.asarray(ev, dtype=np.float64))
    return float((a.max() - a.min()) / a.max())


def _initial_theta(K: int) -> np.ndarray:
    """Initial reference t_0 < ... < t_K = pi (module docstring, fit at K = 64, 128)."""
    i = np.arange(K + 1, dtype=np.float64)
    f = 0.479 * (1.0 - i / K) / (i + 1.157)
    return np.pi * (i + i / (2.0 * K) + f) / (K + 0.5)


def _to_grid(eng: _Engine, t) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    k = np.clip(np.rint(t / eng.h).astype(np.int64), 0, eng.M)
    return k, t - np.pi * k / eng.M


# --------------------------------------------------------------------------------------------
# the high-precision stage (python-flint arb)
# --------------------------------------------------------------------------------------------
def _hp_rows(k, d, M: int, K: int, prec: int, target: Target):
    """arb rows [cos(j t_i), j < K] + [(-1)^i / p_i], and p_i, g(p_i) at t_i = pi k_i/M + d_i."""
    with flint_prec(prec) as flint:
        arb = flint.arb
        pi = arb.pi()
        rows, ps, Ls = [], [], []
        for i, (ki, di) in enumerate(zip(k, d)):
            t = pi * int(ki) / M + arb(float(di))
            c = t.cos()
            s = (t / 2).sin()
            p = s * s
            ps.append(p)
            Ls.append(target.g_arb_sin(s))
            r = [arb(1), c.mid()] if K > 1 else [arb(1)]
            c2 = 2 * c
            T0, T1 = r[0], r[-1]
            for _ in range(2, K):
                T0, T1 = T1, (c2 * T1 - T0).mid()
                r.append(T1)
            r.append((1 if i % 2 == 0 else -1) / p)
            rows.append(r)
        return flint.arb_mat(rows), ps, Ls


def _hp_solve(Mfull, Ls, A_float, prec: int, K: int):
    """Solve Mfull x = log p to ~prec bits: float64 LU + iterative refinement, arb residuals."""
    import scipy.linalg

    lu = scipy.linalg.lu_factor(A_float)
    with flint_prec(prec) as flint:
        arb_mat = flint.arb_mat
        rhs = arb_mat([[L] for L in Ls])
        x = arb_mat(K + 1, 1)
        xf = np.zeros(K + 1)
        for _ in range(12):
            r = rhs - Mfull * x
            rf = np.array([float(v.mid()) for v in r.entries()])
            dx = scipy.linalg.lu_solve(lu, rf)
            x = x + arb_mat([[float(v)] for v in dx])
            xf = xf + dx
            if np.max(np.abs(dx)) <= 2.0 ** (-prec + 4) * np.max(np.abs(xf)):
                break
        return [v.mid() for v in x.entries()]


def _hp_values(Mfull, ps, Ls, coeffs, prec: int, K: int):
    """Errors e_i = p_i (Q(t_i) - log p_i) in arb, Q given by arb cosine coefficients."""
    with flint_prec(prec) as flint:
        arb, arb_mat = flint.arb, flint.arb_mat
        x = arb_mat([[c] for c in coeffs] + [[arb(0)]])
        Q = (Mfull * x).entries()
        return [ps[i] * (Q[i] - Ls[i]) for i in range(K + 1)]


def _cheb_strings(b_arb, prec: int) -> tuple[str, ...]:
    """Chebyshev coefficients a_j = (-1)^j b_j as decimal strings (``_digits(prec)`` digits)."""
    n = _digits(prec)
    out = []
    with flint_prec(prec):  # negation rounds to the context precision
        for j, v in enumerate(b_arb):
            v = v.mid() if j % 2 == 0 else -v.mid()
            out.append(v.str(n, radius=False))
    return tuple(out)


def _coeffs_from_strings(cheb: Sequence[str], prec: int):
    """Cosine coefficients b_j = (-1)^j a_j as arb at ``prec`` bits from decimal strings."""
    with flint_prec(prec) as flint:
        return [flint.arb(s) if j % 2 == 0 else -flint.arb(s) for j, s in enumerate(cheb)]


# --------------------------------------------------------------------------------------------
# the result object and remez()
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MinimaxResult:
    """Result of the Remez exchange for one K.

    Attributes
    ----------
    K : int
        Batch size; Q has degree <= K-1 (K coefficients).
    E : float
        E*_K as a float: the sup over the located extrema of |p Q(p) - p log p| for the returned Q
        (``E_hp`` rounded).
    E_hp : str
        The same number as a decimal string with floor(0.30103 prec) + 2 (40 at 128 bits)
        significant digits.  It is the returned polynomial's maximal error (an upper bound on
        E*_K); E*_K itself is known to relative accuracy ``spread`` (``E_bracket``).
    E_bracket : tuple of str
        (min_i |e(x_i)|, max_i |e(x_i)|) over the K+1 located extrema: de la Vallee Poussin's
        bracket min <= E*_K <= max.
    cheb : tuple of str
        Chebyshev coefficients a_0..a_{K-1} of Q on [0, 1]: Q(p) = sum_j a_j T_j(2p - 1), as
        decimal strings of the arb midpoints (they define the returned polynomial exactly).
    reference : tuple of float
        The K+1 located alternating extrema p_0 < ... < p_K of the returned error (p_K = 1).
    signs : tuple of int
        Sign of e(p) = p Q(p) - p log p at each reference point (alternating, +-1).
    iterations : int
        Total Remez iterations (float64 stage + high-precision stage).
    hp_iterations : int
        Of these, iterations done in high precision.
    spread : float
        Relative levelled-error spread (max|e_i| - min|e_i|) / max|e_i| over the located
        extrema, evaluated in arb at ``prec`` bits.
    converged : bool
        ``spread <= tol`` and K+1 alternating extrema were found.
    prec : int
        Working precision (bits) of the high-precision stage.
    tol : float
        The stopping tolerance used.
    target : str
        The target's name ("log p", "p^0.5", ...).
    """

    K: int
    E: float
    E_hp: str
    E_bracket: tuple
    cheb: tuple
    reference: tuple
    signs: tuple
    iterations: int
    hp_iterations: int
    spread: float
    converged: bool
    prec: int
    tol: float
    target: str = LOG.name

    @property
    def cheb_f64(self) -> np.ndarray:
        """The Chebyshev coefficients a_j as float64 (for plotting / cheap evaluation)."""
        return np.array([float(s) for s in self.cheb])


def _reference_p(k, d, M) -> tuple:
    t = np.pi * np.asarray(k) / M + np.asarray(d)
    return tuple(float(v) for v in np.sin(0.5 * t) ** 2)


def _init_theta(K: int, init) -> np.ndarray:
    if init is None:
        return _initial_theta(K)
    if isinstance(init, MinimaxResult):
        p = np.asarray(init.reference, dtype=np.float64)
        t = 2.0 * np.arcsin(np.sqrt(np.clip(p, 0.0, 1.0)))
        if init.K == K:
            return t
        # rescale the phase profile (module docstring) from init.K to K
        Ki = init.K
        i0 = np.arange(Ki + 1)
        f0 = t * (Ki + 0.5) / np.pi - i0 - i0 / (2.0 * Ki)
        i = np.arange(K + 1, dtype=np.float64)
        f = np.interp(i, i0, f0) if K <= Ki else np.where(i <= Ki // 2, np.interp(i, i0, f0), 0.0)
        f = f * (1.0 - i / K) if K > Ki else f
        return np.pi * (i + i / (2.0 * K) + f) / (K + 0.5)
    p = np.asarray(init, dtype=np.float64)
    if p.shape != (K + 1,) or not np.all(np.isfinite(p)):
        raise ValueError(f"init must hold K+1 = {K + 1} finite points p in (0, 1], received shape {p.shape}")
    if np.any(p <= 0) or np.any(p > 1) or np.any(np.diff(p) <= 0):
        raise ValueError("init must be strictly increasing points p in (0, 1]")
    return 2.0 * np.arcsin(np.sqrt(p))


def remez(K: int, *, target: Target = LOG, prec: int | None = None, tol: float | None = None,
          maxiter: int = 50, init=None) -> MinimaxResult:
    """Best weighted uniform approximation of log p: the Remez exchange for E*_K.

    Finds Q of degree <= K-1 minimising

    .. math::  \\sup_{p\\in[0,1]} |p\\,Q(p) - p\\log p| = E^*_K

    (docs/MATH.md §3; Chebyshev alternation theorem on the Haar space {p Q} on (0, 1]).

    Parameters
    ----------
    K : int
        Batch size >= 1.
    target : Target or str
        The target g (default log p): minimises sup |p Q(p) - p g(p)|.
    prec : int, optional
        Bits of the high-precision stage (default ``default_prec(K)``: 128 up to K = 1024).
    tol : float, optional
        Stopping tolerance on the relative levelled-error spread (default ``DEFAULT_TOL`` = 1e-12).
    maxiter : int
        Maximal total number of Remez iterations (float64 + high precision).
    init : None, MinimaxResult or array of K+1 points p
        Initial reference: the built-in asymptotic profile (None), a previous result (its
        reference, rescaled in t when its K differs), or explicit increasing points in (0, 1].

    Returns
    -------
    MinimaxResult

    Raises
    ------
    ConvergenceError
        If ``spread <= tol`` is not reached in ``maxiter`` iterations or the alternation is lost;
        ``info`` holds K, tol, the achieved spread, iterations and the best iterate (``best``).

    Notes
    -----
    Stopping rule: ``spread = (max|e_i| - min|e_i|)/max|e_i| <= tol`` over the K+1 alternating
    extrema of the current error, located by Newton's method and evaluated in arb at ``prec``
    bits.  The float64 stage hands over to high precision once its spread is below
    max(1e-9, 20 eps sum|b_j| / E*_K) or stagnates.  Measured: 3 float64 + 1 high-precision
    iteration at every K of the standard grid; spread ~1e-25 (K = 16) to ~1e-17 (K = 1024);
    K = 1024 takes ~4 s (+1 s table conversion).  Possible issues: the extrema are located in
    float64, which limits the attainable spread to ~(1e-15 / E*_K)^2 (1e-17 at K = 1024), so
    tol below ~1e-16 may not be reachable for large K.
    """
    K = as_K(K)
    target = parse_target(target)
    prec = default_prec(K) if prec is None else int(prec)
    if prec < 64:
        raise ValueError(f"prec must be >= 64 bits, received {prec}")
    tol = DEFAULT_TOL if tol is None else float(tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive finite number, received {tol!r}")
    if isinstance(maxiter, bool) or int(maxiter) != maxiter or maxiter < 1:
        raise ValueError(f"maxiter must be a positive integer, received {maxiter!r}")
    maxiter = int(maxiter)

    M = _grid_size(K)
    eng = _Engine(K, M, target)
    k, d = _to_grid(eng, _init_theta(K, init))
    it = 0
    best = None

    def fail(msg, spread):
        info = {"K": K, "tol": tol, "spread": spread, "iterations": it, "prec": prec, "best": best}
        raise ConvergenceError(
            f"remez(K={K}): {msg}; achieved spread {spread:.3g}, required <= {tol:.3g} "
            f"after {it} iterations", info)

    # ---- float64 stage
    prev = math.inf
    while it < maxiter:
        b, lev = eng.solve(k, d)
        it += 1
        noise = 20.0 * np.finfo(float).eps * np.sum(np.abs(b)) / max(abs(lev), 1e-300)
        k2, d2, ev = _select(*eng.locate(b), K + 1)
        if k2.size < K + 1:
            fail(f"only {k2.size} alternating extrema found (float64 stage)", prev)
        k, d = k2, d2
        s = _spread(ev)
        if s <= max(_FLOAT_HANDOVER, noise) or (s < 1e-5 and s > 0.5 * prev):
            break
        prev = s

    # ---- high-precision stage
    Mfull, _, Ls = _hp_rows(k, d, M, K, prec, target)
    hp_it = 0
    while True:
        A, _, _ = eng.system(k, d)
        b_arb = _hp_solve(Mfull, Ls, A, prec, K)
        it += 1
        hp_it += 1
        cheb = _cheb_strings(b_arb[:K], prec)
        coeffs = _coeffs_from_strings(cheb, prec)
        bf = np.array([float(v) for v in coeffs])
        k2, d2, ev = _select(*eng.locate(bf), K + 1)
        n_alt = k2.size
        if n_alt == K + 1:
            Mfull2, ps2, Ls2 = _hp_rows(k2, d2, M, K, prec, target)
            e_hp = _hp_values(Mfull2, ps2, Ls2, coeffs, prec, K)
            sg = [1 if float(v) > 0 else -1 for v in e_hp]
            alternating = all(sg[i] != sg[i + 1] for i in range(K))
            with flint_prec(prec):
                absv = [abs(v).mid() for v in e_hp]  # exact midpoints: exact comparisons
                emax, emin = max(absv), min(absv)
                spread = float(((emax - emin) / emax).mid())
                nd = _digits(prec)
                E_hp = emax.mid().str(nd, radius=False)
                bracket = (emin.mid().str(nd, radius=False), E_hp)
            ok = alternating and spread <= tol
            res = MinimaxResult(
                K=K, E=float(E_hp), E_hp=E_hp, E_bracket=bracket, cheb=cheb,
                reference=_reference_p(k2, d2, M), signs=tuple(sg), iterations=it,
                hp_iterations=hp_it, spread=spread, converged=ok, prec=prec, tol=tol,
                target=target.name)
            if best is None or spread < best.spread:
                best = res
            if ok:
                return res
            k, d, Mfull, Ls = k2, d2, Mfull2, Ls2
            s = spread
        else:
            s = best.spread if best is not None else math.inf
        if it >= maxiter or n_alt < K + 1:
            fail("no convergence" if n_alt == K + 1 else
                 f"only {n_alt} alternating extrema found (high-precision stage)", s)


# --------------------------------------------------------------------------------------------
# Chebyshev -> Bernstein conversion and the table
# --------------------------------------------------------------------------------------------
def cheb_to_bernstein(cheb: Sequence, prec: int) -> list:
    """Bernstein coefficients of Q(p) = sum_{j<K} a_j T_j(2p - 1) (degree n = K-1), as arb balls.

    With t = p/(1-p), b_{n,m}(p) = C(n,m) t^m (1+t)^(-n) and 2p - 1 = (t-1)/(t+1), so
    (1+t)^n Q = sum_m c_m C(n,m) t^m.  Clenshaw's recurrence b_j = a_j + 2x b_{j+1} - b_{j+2},
    Q = a_0 + x b_1 - b_2, multiplied through by (1+t)^(n-j) (beta_j = (1+t)^(n-j) b_j) becomes
    polynomial:

    .. math::  \\beta_j = a_j (1+t)^{n-j} + 2(t-1)\\beta_{j+1} - (1+t)^2 \\beta_{j+2},\\qquad
               (1+t)^n Q = a_0 (1+t)^n + (t-1)\\beta_1 - (1+t)^2\\beta_2 .

    Parameters
    ----------
    cheb : sequence of str, arb or numbers
        a_0..a_{K-1} (strings are parsed exactly to ``prec`` bits; floats are taken exactly).
    prec : int
        Working precision in bits; use ``table_prec(K)`` (the coefficients grow like 2^K / K).

    Returns
    -------
    list of arb
        c_1..c_K (``c[m]`` multiplies b_{K-1,m}), with rigorous ball radii.
    """
    K = len(cheb)
    if K < 1:
        raise ValueError("cheb must hold at least one coefficient")
    n = K - 1
    with flint_prec(prec) as flint:
        arb, arb_poly = flint.arb, flint.arb_poly
        a = [arb(str(v)) if isinstance(v, str) else arb(v) for v in cheb]
        if n == 0:
            return [a[0]]
        one_t = arb_poly([1, 1])
        sq = arb_poly([1, 2, 1])
        two_tm1 = arb_poly([-2, 2])
        tm1 = arb_poly([-1, 1])
        P = arb_poly([1])  # (1+t)^(n-j), j = n
        b1 = arb_poly([])  # beta_{j+1}
        b2 = arb_poly([])  # beta_{j+2}
        for j in range(n, 0, -1):
            bj = P * a[j] + two_tm1 * b1 - sq * b2
            b1, b2 = bj, b1
            P = P * one_t
        R = P * a[0] + tm1 * b1 - sq * b2
        coeffs = R.coeffs()
        coeffs += [arb(0)] * (K - len(coeffs))
        return [coeffs[m] / arb.bin_uiui(n, m) for m in range(K)]


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
    target = parse_target(target)
    return TABLE_NAME if target == LOG else f"pow{target.spec[2:]}-minimax"


def E_star(K: int, *, target: Target = LOG, path: str | os.PathLike | None = None) -> float:
    """E*_K as a float: from the shipped table if it holds K, else by ``remez(K)``.

    Parameters
    ----------
    K : int
        Batch size >= 1.
    path : path-like, optional
        Minimax table file.  Default: the table named ``kl-minimax`` on the table search path
        (``aqpgen.store.locate``); the build passes the file of the directory it writes.  A file's ``E_star`` metric is used when the
        file exists, reads cleanly (schema and content hash checked by
        ``aqpgen.tablefile.read_table``) and has an ``ok`` row for K.
    """
    K = as_K(K)
    target = parse_target(target)
    if path is None:
        try:
            paths = [find_table(table_name(target))]
        except FileNotFoundError:
            paths = []
    else:
        paths = [Path(path)]
    for p in paths:
        if not p.is_file():
            continue
        try:
            from aqpgen.store.tablefile import read_table

            t = read_table(p)
            if t.target == target.name and K in t.Ks and t.status(K) == "ok":
                v = float(t.metrics(K).get("E_star", float("nan")))
                if math.isfinite(v) and v > 0:
                    return v
        except Exception:  # noqa: BLE001, S112 - an unreadable table is not fatal: solve instead
            continue
    return remez(K, target=target).E


@dataclass(frozen=True)
class RateAudit:
    """The Theta(1/K^2) audit of E*_K (docs/MATH.md §4: slope -2 +- 0.01 over K >= 16).

    Attributes
    ----------
    Ks : tuple of int
        The K values, ascending.
    E : tuple of float
        E*_K for each K.
    K2E : tuple of float
        K^2 E*_K for each K.
    slope : float
        Least-squares slope of log E*_K against log K over K >= ``Kmin`` (NaN if < 2 points).
    Kmin : int
        Smallest K used in the slope fit (16).
    n_fit : int
        Number of K values in the slope fit.
    ok : bool
        ``|slope + 2| <= 0.01`` (and at least two K >= Kmin).
    limit_value : float
        Extrapolated lim K^2 E*_K (Richardson / Neville extrapolation in h = 1/K^2 through the
        ``len(estimates) + 1`` largest K; the expansion K^2 E*_K = C + c_2/K^2 + c_4/K^4 + ...
        is measured: first differences of K^2 E*_K fall by 4 per doubling of K, and those of the
        once-extrapolated values by 16, so no odd powers appear).
    limit_err : float
        Error estimate: the larger of |last estimate - previous estimate| and |last estimate -
        the same-order extrapolation through the next-largest K|, floored at 8 ulp of the limit.
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
    slope: float
    Kmin: int
    n_fit: int
    ok: bool
    limit_value: float
    limit_err: float
    limit_digits: int
    limit: str
    estimates: tuple

    def to_text(self) -> str:
        """Human-readable K, E*_K, K^2 E*_K table with the slope and the limit."""
        lines = [f"{'K':>6}  {'E*_K':>22}  {'K^2 E*_K':>18}"]
        for K, E, f in zip(self.Ks, self.E, self.K2E):
            lines.append(f"{K:>6}  {E:>22.15e}  {f:>18.15f}")
        lines.append(f"fitted log-log slope over K >= {self.Kmin} ({self.n_fit} values): "
                     f"{self.slope:+.6f} (required -2 +- 0.01): {'ok' if self.ok else 'FAIL'}")
        lines.append(f"lim K^2 E*_K = {self.limit} ({self.limit_digits} digits; "
                     f"Richardson in 1/K^2, error estimate {self.limit_err:.1e})")
        return "\n".join(lines)


def rate_audit(Ks: Sequence[int], E: Sequence[float], *, Kmin: int = 16, order: int = 3,
               target: Target = LOG, slope_tol: float = 0.01) -> RateAudit:
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
    pairs = sorted(zip(Ks, E))
    Ks = tuple(k for k, _ in pairs)
    E = tuple(e for _, e in pairs)
    K2E = tuple(k * k * e if r == 2.0 else k**r * e for k, e in pairs)
    slope, used = loglog_slope(Ks, E, Kmin)
    ok = len(used) >= 2 and abs(slope + r) <= slope_tol
    C, err, ests = richardson_limit(Ks, K2E, order=order, power=2)
    digits = max(1, min(16, int(math.floor(-math.log10(err / abs(C))))))
    limit = f"{float(f'{C:.{digits}g}'):.{digits}g}"
    return RateAudit(Ks=Ks, E=E, K2E=K2E, slope=slope, Kmin=int(Kmin), n_fit=len(used), ok=bool(ok),
                     limit_value=float(C), limit_err=float(err), limit_digits=digits, limit=limit,
                     estimates=ests)


# --------------------------------------------------------------------------------------------
# generator interface (docs/ARCHITECTURE.md)
# --------------------------------------------------------------------------------------------
def target_name(params) -> str:
    """The target of the table: ``"log p"`` unless ``params["target"]`` names another."""
    return _check_params(params)["target"].name


def kmin(params) -> int:
    """Smallest K of the standard grid of a family "pow" table: ``aqpgen.targets.pow_kmin``."""
    return pow_kmin(params)


def _check_params(params) -> dict:
    """{} or {"target": "p^0.5"} (absent: log p) -> {"target": Target}."""
    params = dict(params or {})
    extra = set(params) - {"target"}
    if extra:
        raise ValueError(f"the minimax generator's params may hold only 'target', received "
                         f"{params!r}")
    return {"target": parse_target(params.get("target", LOG))}


def build_K(K: int, params, *, tables_dir=None) -> KResult:
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
    return KResult(K=K, values=values, values_hp=strings, metrics=metrics, status="ok",
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
    M = _grid_size(K)
    eng = _Engine(K, M, target)
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
    k, d, _ = _select(*eng.locate(b), K + 1)
    pts = _sc_points(k, d, M, prec)
    g = _bernstein_eval(strings, pts, prec)
    with flint_prec(prec):
        e = [(s * s) * (gi - target.g_arb_sin(s)) for (s, _), gi in zip(pts, g)]
    return np.array(_reference_p(k, d, M)), e


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
