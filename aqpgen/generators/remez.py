"""The Remez exchange for the best p-weighted uniform approximation of a target (docs/MATH.md §3).

For a target g (``aqpgen.targets``; log p by default) and batch size K, find Q of degree <= K-1
minimising sup_{p in [0,1]} |p Q(p) - p g(p)| = E*_K.  The space {p Q} is Haar on (0, 1], so the
optimum is unique and its error equioscillates at K+1 points (Chebyshev's alternation theorem).

Public names
------------
remez(K, *, target=LOG, prec=, tol=, maxiter=, init=) -> MinimaxResult   the exchange (below).
MinimaxResult         frozen result: E*_K, Chebyshev coefficients of Q, the reference, spread.
DEFAULT_TOL           default stopping tolerance on the relative levelled-error spread (1e-12).
default_prec(K)       bits of the high-precision stage (``aqpgen.numerics.precision.work_prec``).
Engine, grid_size, select_alternating, reference_p
                      the float64 building blocks (cosine series on the angle grid, extremum
                      location by Newton, alternating selection), also used by
                      ``aqpgen.generators.minimax.table_error_at_extrema``.

``remez`` runs in stages, each returning a status record (``_Status``: reference, iterations,
spread, best result, ``result`` or why it ``failed``): ``_float_stage``, then ``_hp_stage``
(arb helpers in ``aqpgen.generators.remez_hp``).

The Remez exchange
------------------
Basis and variable.  Q(p) = sum_j a_j T_j(2p-1), and with p = (1 - cos t)/2 = sin^2(t/2),
t in [0, pi], one has T_j(2p - 1) = (-1)^j cos(j t), so Q is the cosine series
sum_j b_j cos(j t), b_j = (-1)^j a_j.  The extrema of e(t) = p (Q - g(p)) are roughly uniform in
t (they crowd towards p = 0 on the 1/K^2 scale in p), so every grid and every Newton step lives
in t.  A reference point is stored as t = pi k / M + d (k an integer on the uniform grid of M
intervals, d a small float), so cos(j t) = cos(pi jk/M) cos(j d) - sin(pi jk/M) sin(j d) is
accurate to a few ulp for every j <= K (plain ``cos(j*t)`` would lose ~log2(jt) bits).

Each iteration (1) solves the levelled system sum_j b_j cos(j t_i) + (-1)^i h / p_i = g(p_i) on
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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aqpgen.errors import ConvergenceError
from aqpgen.generators.remez_hp import (
    cheb_strings,
    coeffs_from_strings,
    digits,
    hp_rows,
    hp_solve,
    hp_values,
)
from aqpgen.numerics.precision import flint_prec, work_prec
from aqpgen.records import STATUS_OK, as_int, as_K
from aqpgen.targets import LOG, Target, parse_target

__all__ = [
    "DEFAULT_TOL",
    "Engine",
    "MinimaxResult",
    "default_prec",
    "grid_size",
    "reference_p",
    "remez",
    "select_alternating",
]

#: default stopping tolerance on the relative levelled-error spread.
DEFAULT_TOL = 1e-12
#: the float64 stage hands over to high precision below this spread (or when it stagnates).
_FLOAT_HANDOVER = 1e-9


# --------------------------------------------------------------------------------------------
# precision helpers
# --------------------------------------------------------------------------------------------
def default_prec(K: int) -> int:
    """Working precision (bits) of the high-precision Remez stage: ``work_prec(K)``.

    128 bits up to K = 1024, 4 more bits per further doubling of K.  The Chebyshev basis is well
    conditioned on the reference, so the levelled error is accurate to ~2^-prec * K * sum|a_j|
    (sum|a_j| ~ 2 log K), far below 1e-12 E*_K ~ 3e-20 at K = 1024.
    """
    return work_prec(as_K(K))

# --------------------------------------------------------------------------------------------
# the float64 engine: cosine series on the t grid, solve, locate extrema
# --------------------------------------------------------------------------------------------
def grid_size(K: int) -> int:
    """Uniform t-grid intervals M: a power of two >= 16 (K+1) (>= 16 points per oscillation)."""
    return max(256, 1 << math.ceil(math.log2(16 * (K + 1))))


class Engine:
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
        """The levelled system A [b; h] = g(p) on the reference (float64)."""
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


def select_alternating(k, d, ev, n_keep: int):
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


def _to_grid(eng: Engine, t) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=np.float64)
    k = np.clip(np.rint(t / eng.h).astype(np.int64), 0, eng.M)
    return k, t - np.pi * k / eng.M


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
        E*_K as a float: the sup over the located extrema of |p Q(p) - p g(p)| for the returned Q
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
        Sign of e(p) = p Q(p) - p g(p) at each reference point (alternating, +-1).
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
    def status(self) -> str:
        """``records.STATUS_OK`` when ``converged``, else the reason."""
        if self.converged:
            return STATUS_OK
        return f"not converged: spread {self.spread:.3g} > tol {self.tol:.3g}"

    @property
    def cheb_f64(self) -> np.ndarray:
        """The Chebyshev coefficients a_j as float64 (for plotting / cheap evaluation)."""
        return np.array([float(s) for s in self.cheb])


def reference_p(k, d, M) -> tuple:
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


@dataclass(frozen=True)
class _Setup:
    """The validated arguments of one ``remez`` call and its float64 engine."""

    K: int
    target: Target
    prec: int
    tol: float
    maxiter: int
    M: int
    eng: Engine


@dataclass
class _Status:
    """Where the exchange stands after a stage: the reference (grid index k, offset d), the
    iterations so far, the spread reached and the best high-precision result; ``result`` is the
    converged result, ``failed`` why the exchange stopped without one ("" while it goes on)."""

    k: np.ndarray
    d: np.ndarray
    it: int = 0
    hp_it: int = 0
    spread: float = math.inf
    best: MinimaxResult | None = None
    result: MinimaxResult | None = None
    failed: str = ""


def _setup(K, target, prec, tol, maxiter) -> _Setup:
    K = as_K(K)
    target = parse_target(target)
    prec = default_prec(K) if prec is None else int(prec)
    if prec < 64:
        raise ValueError(f"prec must be >= 64 bits, received {prec}")
    tol = DEFAULT_TOL if tol is None else float(tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive finite number, received {tol!r}")
    maxiter = as_int(maxiter, "maxiter", minimum=1)
    M = grid_size(K)
    return _Setup(K, target, prec, tol, maxiter, M, Engine(K, M, target))


def _float_stage(su: _Setup, st: _Status) -> _Status:
    """Float64 iterations from ``st``'s reference until the spread is below the hand-over level
    (module docstring) or stagnates; ``failed`` when the alternation is lost."""
    prev = math.inf
    while st.it < su.maxiter:
        b, lev = su.eng.solve(st.k, st.d)
        st.it += 1
        noise = 20.0 * np.finfo(float).eps * np.sum(np.abs(b)) / max(abs(lev), 1e-300)
        k2, d2, ev = select_alternating(*su.eng.locate(b), su.K + 1)
        if k2.size < su.K + 1:
            st.spread, st.failed = prev, f"only {k2.size} alternating extrema found (float64 stage)"
            return st
        st.k, st.d = k2, d2
        s = _spread(ev)
        if s <= max(_FLOAT_HANDOVER, noise) or (s < 1e-5 and s > 0.5 * prev):
            break
        prev = s
    return st


def _hp_result(su: _Setup, st: _Status, k2, d2, cheb, coeffs):
    """The result of the polynomial ``coeffs`` with its error evaluated in arb at the located
    alternating extrema (k2, d2); also that reference's high-precision rows (Mfull, Ls)."""
    K, prec = su.K, su.prec
    Mfull2, ps2, Ls2 = hp_rows(k2, d2, su.M, K, prec, su.target)
    e_hp = hp_values(Mfull2, ps2, Ls2, coeffs, prec, K)
    sg = [1 if float(v) > 0 else -1 for v in e_hp]
    alternating = all(sg[i] != sg[i + 1] for i in range(K))
    with flint_prec(prec):
        absv = [abs(v).mid() for v in e_hp]  # exact midpoints: exact comparisons
        emax, emin = max(absv), min(absv)
        spread = float(((emax - emin) / emax).mid())
        nd = digits(prec)
        E_hp = emax.mid().str(nd, radius=False)
        bracket = (emin.mid().str(nd, radius=False), E_hp)
    res = MinimaxResult(
        K=K, E=float(E_hp), E_hp=E_hp, E_bracket=bracket, cheb=cheb,
        reference=reference_p(k2, d2, su.M), signs=tuple(sg), iterations=st.it,
        hp_iterations=st.hp_it, spread=spread, converged=alternating and spread <= su.tol,
        prec=prec, tol=su.tol, target=su.target.name)
    return res, Mfull2, Ls2


def _hp_stage(su: _Setup, st: _Status) -> _Status:
    """High-precision iterations (arb system, float64 extremum location, arb errors) until the
    spread is <= tol (``result``), the alternation is lost or ``maxiter`` is reached (``failed``)."""
    K = su.K
    Mfull, _, Ls = hp_rows(st.k, st.d, su.M, K, su.prec, su.target)
    while True:
        A, _, _ = su.eng.system(st.k, st.d)
        b_arb = hp_solve(Mfull, Ls, A, su.prec, K)
        st.it += 1
        st.hp_it += 1
        cheb = cheb_strings(b_arb[:K], su.prec)
        coeffs = coeffs_from_strings(cheb, su.prec)
        bf = np.array([float(v) for v in coeffs])
        k2, d2, _ = select_alternating(*su.eng.locate(bf), K + 1)
        n_alt = k2.size
        if n_alt == K + 1:
            res, Mfull2, Ls2 = _hp_result(su, st, k2, d2, cheb, coeffs)
            if st.best is None or res.spread < st.best.spread:
                st.best = res
            if res.converged:
                st.result = res
                return st
            st.k, st.d, Mfull, Ls = k2, d2, Mfull2, Ls2
            st.spread = res.spread
        else:
            st.spread = st.best.spread if st.best is not None else math.inf
        if st.it >= su.maxiter or n_alt < K + 1:
            st.failed = ("no convergence" if n_alt == K + 1 else
                         f"only {n_alt} alternating extrema found (high-precision stage)")
            return st


def _not_converged(su: _Setup, st: _Status) -> ConvergenceError:
    info = {"K": su.K, "tol": su.tol, "spread": st.spread, "iterations": st.it, "prec": su.prec,
            "best": st.best}
    return ConvergenceError(
        f"remez(K={su.K}): {st.failed}; achieved spread {st.spread:.3g}, required <= {su.tol:.3g} "
        f"after {st.it} iterations", info)


def remez(K: int, *, target: Target = LOG, prec: int | None = None, tol: float | None = None,
          maxiter: int = 50, init=None) -> MinimaxResult:
    """Best weighted uniform approximation of a target g (default log p): the Remez exchange.

    Finds Q of degree <= K-1 minimising

    .. math::  \\sup_{p\\in[0,1]} |p\\,Q(p) - p\\,g(p)| = E^*_K

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
    su = _setup(K, target, prec, tol, maxiter)
    k, d = _to_grid(su.eng, _init_theta(su.K, init))
    st = _float_stage(su, _Status(k, d))
    if not st.failed:
        st = _hp_stage(su, st)
    if st.result is None:
        raise _not_converged(su, st)
    return st.result
