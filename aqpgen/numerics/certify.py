"""Rigorous upper bound on the weighted bias of a table for its target (docs/MATH.md §6).

Public names
------------
certify_beta(K, values=None, values_hp=None, *, target=LOG, rel_slack=0.003) -> Certificate
certify_exact(K, src, *, target=LOG, rel_slack=0.003) -> (Chebyshev coefficients, Certificate)
              -- the same without argument checks (used by ``aqpgen.numerics.metrics``).
Certificate   -- frozen result: beta_lower, beta_upper, n_points, prec, method.
H3_CONST      -- the constant in the bound |H'''(theta)| <= H3_CONST + cot(theta/2)/2 (log p).

Targets
-------
The method below is written for log p; a target supplies its own pieces as methods of
``aqpgen.targets.Target``: ``h_theta_bounds`` (H, H', H'' at the cell centres and their
rounding bounds), ``h3_bound`` (sup |H'''| on [lo, pi]), ``first_cell_bound`` and
``first_cell_pmax`` (step 1), ``h_abs_sup_arb`` (the overflow fallback).  A target without them
raises NotImplementedError naming the method.

The quantity
------------
For a table c_K[1..K] the weighted error is e(p) = p (g_c(p) - log p) = P(p) - p log p with
P(p) = p g_c(p) = sum_{j=0}^K a_j T_j(2p - 1) (exact Chebyshev coefficients from
`aqpgen.numerics.bernstein.to_chebyshev_exact`, computed in rational arithmetic from the exact table:
floats are exact dyadics, ``values_hp`` strings are exact decimals).  beta = sup_{[0,1]} |e|.

Method (derivation of the bound)
--------------------------------
Substitute p = sin^2(theta/2), theta in [0, pi].  Then 2p - 1 = -cos(theta) and
T_j(-cos theta) = (-1)^j cos(j theta), so e = f(theta) = F(theta) - H(theta) with

    F(theta)  = sum_j alpha_j cos(j theta),   alpha_j = (-1)^j a_j,
    H(theta)  = p log p,
    H'  = (log p + 1) sin(theta)/2,
    H'' = cos^2(theta/2) + (log p + 1) cos(theta)/2,
    H''' = -sin(theta)/2 + cot(theta/2) cos(theta)/2 - (log p + 1) sin(theta)/2,

(using dp/dtheta = sin(theta)/2 and sin^2(theta) = 4p(1-p)).  Since |sin theta| = 2 sqrt(p(1-p))
and sqrt(p)|log p| <= 2/e,  |H'''| <= 1 + 2/e + cot(theta/2)/2 =: H3_CONST + cot(theta/2)/2.
F is a cosine sum whose derivatives are again cosine/sine sums with coefficients j^s alpha_j.

1. First cell [0, theta_0] (p <= p_0 = sin^2(theta_0/2) <= 1/e).  P(0) = 0 and
   |dP/dp| = 2|dP/dx| <= 2 sum_j j^2 |a_j| (Markov: |T_j'| <= j^2 on [-1, 1]), and p|log p| is
   increasing on [0, 1/e], so  |e| <= p_0 (2 sum_j j^2 |a_j| + |log p_0|).  theta_0 is chosen so
   that this is at most half the sampled maximum.
2. Cells [c - h, c + h] covering [theta_0, pi].  Taylor's theorem at the centre c:
   f(c + t) = f(c) + f'(c) t + f''(c) t^2/2 + R,  |R| <= M3 |t|^3 / 6,  with
   M3 >= sup_cell |f'''| taken as |F'''(c)| + h sum_j j^4 |alpha_j| + H3_CONST
   + cot((c - h)/2)/2.  The quadratic model's maximum modulus on [-h, h] is computed exactly
   (endpoints and vertex), and the float64 rounding errors of f(c), f'(c), f''(c), F'''(c) are
   added as eps_0 + eps_1 h + eps_2 h^2/2 (+ h^3 eps_3 / 6).
3. Rounding (u = 2^-53): the float alpha_j are the correctly rounded exact values
   (|error| <= r_j = u|alpha_j| + 2^-1074); a computed cos(fl(j c)) differs from cos(j c) by at
   most u j c + 16u (argument rounding, Lipschitz 1, plus 16u for libm -- measured <= 0.25 ulp);
   a dot product of n terms computed in any order (BLAS) errs by at most gamma_n sum|x_i y_i|,
   gamma_n = n u / (1 - n u) (Higham, Accuracy and Stability, Thm. 3.1; FMA only helps).  So
   eps_s(F) = sum_j j^s [r_j + |alpha_j| (u j c + 17u)] + gamma_{K+2} sum_j j^s |alpha_j| (1 + 1e-12),
   and eps_s(H) <= 32u (|log p| + 3) (p, log, products each within a few ulp).  All bounds are
   inflated by a factor 1 + 1e-9 to absorb the rounding of their own evaluation.
4. Cells whose bound exceeds (1 + rel_slack) times the rigorous lower bound (max over evaluated
   points of |f(c)| - eps_0) are halved, until none does (or ``max_rounds`` rounds, or a
   refinement would exceed ``max_points`` evaluated cells: when the table's own rounding floor
   (the coefficient and evaluation rounding terms eps) is above ``rel_slack`` times beta, no
   refinement can converge, and the number of cells above the goal doubles every round; the
   bound then stays rigorous, with ``converged`` False, at the tightness reached).  The final
   beta_upper is the max over the first cell and all cells; every step above is an upper bound,
   so beta_upper >= beta (never below the true sup), and beta_upper <= (1 + rel_slack) beta_lower
   <= (1 + rel_slack) beta whenever the refinement converged (``converged``).

Cost: O(K) cells times O(K) flops, float64, vectorised (4 matrix products per chunk).

Huge coefficients (the float64-rounded minimax table at large K has beta ~ 1e280) are handled by
an exact power-of-two scaling of f; a result beyond float64 is returned as ``inf`` (still an upper
bound).  Possible issues: if the Chebyshev coefficients themselves overflow float64, the bound
falls back to the trivial |e| <= sum_j |a_j| + sup|h| (1/e for log p) computed in arb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aqpgen.numerics.bernstein import to_chebyshev_exact, to_chebyshev_f64
from aqpgen.numerics.precision import flint_prec
from aqpgen.records import STATUS_OK, as_int, as_K
from aqpgen.targets import LOG, LogTarget, Target, parse_target

__all__ = ["H3_CONST", "MAX_POINTS", "Certificate", "certify_beta", "certify_exact"]

_U = 2.0**-53
#: |H'''(theta)| <= H3_CONST + cot(theta/2)/2 on (0, pi] for log p (``LogTarget.H3_CONST``).
H3_CONST = LogTarget.H3_CONST
_SAFE = 1.0 + 1e-9  # inflation of every computed bound
_CHUNK_POINTS = 2048
_INITIAL_CELLS_PER_K = 3.0  # initial cell width ~ pi / (3 (K+1)) ~ 1/K
_MAX_ROUNDS = 40
#: Default cap on evaluated cells (a safety net far above what a converging certificate uses:
#: ~10^4 cells at K = 1024 for rel_slack = 0.003).
MAX_POINTS = 2**22


@dataclass(frozen=True)
class Certificate:
    """A rigorous enclosure of beta = sup_{p in [0,1]} p |g_c(p) - log p|.

    Attributes
    ----------
    K : int
        Batch size.
    beta_lower : float
        max over the evaluated points of |e| minus its rounding bound: a rigorous lower bound
        (<= the true sup).
    beta_upper : float
        Rigorous upper bound (>= the true sup).
    n_points : int
        Number of cells (Taylor centres) evaluated, first cell and refinements included.
    prec : int
        Working precision of the coefficient conversion in bits: 0 means exact rational
        arithmetic followed by one correctly rounded conversion to float64 (53-bit) coefficients.
    method : str
        Human-readable description of the method and the refinement outcome.
    converged : bool
        True iff beta_upper <= (1 + rel_slack) beta_lower was reached.
    rounds : int
        Refinement rounds used.
    """

    K: int
    beta_lower: float
    beta_upper: float
    n_points: int
    prec: int
    method: str
    converged: bool = True
    rounds: int = 0

    @property
    def ratio(self) -> float:
        """beta_upper / beta_lower (the certificate's tightness)."""
        return self.beta_upper / self.beta_lower if self.beta_lower > 0 else math.inf

    @property
    def status(self) -> str:
        """``records.STATUS_OK`` when the refinement converged, else the reason (the bound is
        rigorous either way, only looser)."""
        if self.converged:
            return STATUS_OK
        return (f"not converged: beta_upper / beta_lower = {self.ratio:.6g} after "
                f"{self.rounds} refinement rounds")


class _Evaluator:
    """f, f', f'', F''' at arrays of centres with rigorous rounding bounds."""

    def __init__(self, alpha: np.ndarray, r: np.ndarray):
        K1 = alpha.size
        self.j = np.arange(K1, dtype=np.float64)
        self.alpha = alpha
        j = self.j
        self.w = [alpha, -j * alpha, -(j * j) * alpha, (j * j * j) * alpha]
        absa = np.abs(alpha)
        gam = (K1 + 1) * _U / (1.0 - (K1 + 1) * _U)
        # per-term error pieces: sum_j j^s r_j, sum_j j^s |alpha_j| (17u + u j c), gamma sum j^s|alpha|
        self.js = [j**s for s in range(5)]
        self.coef_err = [float(np.sum(self.js[s] * (r + _U * absa))) for s in range(4)]
        self.base = [float(np.sum(self.js[s] * absa)) for s in range(5)]
        self.arg = [float(np.sum(self.js[s + 1] * absa)) for s in range(4)]  # times u c
        self.gam = gam

    def eval(self, c: np.ndarray):
        n = c.size
        out = np.empty((4, n))
        for s in range(0, n, _CHUNK_POINTS):
            sl = slice(s, min(n, s + _CHUNK_POINTS))
            ang = np.multiply.outer(c[sl], self.j)
            C = np.cos(ang)
            S = np.sin(ang)
            out[0, sl] = C @ self.w[0]
            out[1, sl] = S @ self.w[1]
            out[2, sl] = C @ self.w[2]
            out[3, sl] = S @ self.w[3]
        err = np.empty((4, n))
        for s in range(4):
            err[s] = (self.coef_err[s] + 17.0 * _U * self.base[s] + _U * c * self.arg[s]
                      + self.gam * self.base[s] * (1.0 + 1e-12)) * _SAFE
        return out, err


def _cell_bounds(ev: _Evaluator, lo: np.ndarray, hi: np.ndarray, target: Target, hs: float = 1.0):
    """Upper bounds of |f|/scale on cells [lo, hi] and rigorous lower values |f(c)|/scale - eps.

    ``hs`` = 1/scale is an exact power of two; the Chebyshev coefficients in ``ev`` are already
    divided by the scale, the H terms are multiplied by ``hs`` here (exact scaling, no rounding
    unless subnormal, which the 2^-1074 terms absorb).
    """
    c = 0.5 * (lo + hi)
    h = 0.5 * (hi - lo) + 4.0 * _U * np.pi  # covers the rounding of c
    F, Ferr = ev.eval(c)
    H0, H1, H2, eta = (x * hs for x in target.h_theta_bounds(c))
    eta = eta + 2.0**-1070
    f0 = F[0] - H0
    f1 = F[1] - H1
    f2 = F[2] - H2
    e0 = Ferr[0] + eta
    e1 = Ferr[1] + eta
    e2 = Ferr[2] + eta
    # max |q(t)| on [-h, h], q = f0 + f1 t + f2 t^2/2
    qa = np.abs(f0 - f1 * h + 0.5 * f2 * h * h)
    qb = np.abs(f0 + f1 * h + 0.5 * f2 * h * h)
    qmax = np.maximum(qa, qb)
    # the vertex t* = -f1/f2 lies in [-h, h] iff |f1| <= |f2| h (then f2 != 0 unless f1 = 0,
    # in which case q(t*) = f0 and the vertex term is 0)
    inside = (np.abs(f1) <= np.abs(f2) * h * (1.0 + 1e-9)) & (f2 != 0.0)
    vert_mag = np.zeros_like(f0)
    np.divide(f1 * f1, np.abs(2.0 * f2), out=vert_mag, where=inside)
    qv = np.where(inside, np.abs(f0 - np.sign(f2) * vert_mag), 0.0)
    qmax = np.maximum(qmax, qv)
    qround = 8.0 * _U * (np.abs(f0) + np.abs(f1) * h + np.abs(f2) * h * h + vert_mag)
    lo_pos = np.maximum(c - h, lo)  # > 0 (cells start at theta_0 > 0)
    M3 = (np.abs(F[3]) + Ferr[3] + h * ev.base[4] * _SAFE + target.h3_bound(lo_pos) * hs)
    bound = (qmax + qround + e0 + e1 * h + 0.5 * e2 * h * h + M3 * h**3 / 6.0) * _SAFE
    bound = np.where(np.isnan(bound), np.inf, bound)  # never let a NaN pass as "small"
    lower = np.nan_to_num(np.abs(f0) - e0, nan=0.0)
    return bound, lower


def _first_cell(a_abs_up_j2: float, goal: float, target: Target, hs: float = 1.0):
    """theta_0 and the bound on [0, theta_0] given S2 = sum j^2 |a_j| (upper) and a goal
    (both in units of the scale; hs = 1/scale multiplies the h term).

    On p <= p0: |e| <= |P(p)| + |h(p)| <= p0 (2 S2 + hs B(p0)), B = ``target.first_cell_bound``."""
    pmax = target.first_cell_pmax
    p0 = min(pmax, goal / (2.0 * a_abs_up_j2 + hs))
    for _ in range(1000):
        val = p0 * (2.0 * a_abs_up_j2 + hs * target.first_cell_bound(p0))
        if val <= goal or p0 < 1e-300:
            break
        p0 *= 0.5
    theta0 = 2.0 * math.asin(math.sqrt(p0))
    p0_up = math.sin(0.5 * theta0) ** 2 * (1.0 + 1e-12)
    p0_up = min(p0_up, pmax)
    bound = p0_up * (2.0 * a_abs_up_j2 + hs * target.first_cell_bound(p0_up)) * _SAFE
    return theta0, bound


def _certify_from_cheb(K: int, a: np.ndarray, err: np.ndarray, target: Target, rel_slack: float,
                       max_rounds: int = _MAX_ROUNDS, max_points: int = MAX_POINTS) -> Certificate:
    j = np.arange(K + 1, dtype=np.float64)
    sign = np.where(j % 2 == 0, 1.0, -1.0)
    # exact power-of-two scaling so that huge coefficients (float-rounded minimax tables) cannot
    # overflow in products like f'^2; bounds are computed for f / scale and scaled back.
    amax = float(np.max(np.abs(a)))
    scale = 2.0 ** max(0, math.frexp(amax)[1]) if amax > 1.0 else 1.0
    hs = 1.0 / scale
    a = a * hs
    err = err * hs + 2.0**-1074
    alpha = sign * a
    ev = _Evaluator(alpha, err)
    S2 = float(np.sum(j * j * (np.abs(a) + err))) * _SAFE * (1.0 + 4 * (K + 2) * _U)

    # pass 0: a quick lower bound on a uniform grid (excluding theta = 0) to size the first cell
    m0 = max(16, math.ceil(_INITIAL_CELLS_PER_K * (K + 1)))
    edges0 = np.linspace(0.0, np.pi, m0 + 1)
    _, low0 = _cell_bounds(ev, edges0[1:-1] * 0.999, edges0[1:-1], target, hs)  # near-degenerate
    Fpi, Fpi_err = ev.eval(np.array([np.pi]))
    Hpi, _, _, eta_pi = target.h_theta_bounds(np.array([np.pi]))  # p = 1
    low_pi = abs(Fpi[0, 0] - Hpi[0] * hs) - Fpi_err[0, 0] - eta_pi[0] * hs
    L = max(float(np.max(low0)), low_pi, 0.0)
    if L <= 0.0:
        L = float(np.max(np.abs(low0))) + 1e-300
    theta0, B0 = _first_cell(S2, 0.5 * L, target, hs)

    lo = np.linspace(theta0, np.pi, m0 + 1)[:-1]
    hi = np.append(lo[1:], np.pi)
    lo[0] = theta0
    n_points = 1 + m0
    bounds, lowers = _cell_bounds(ev, lo, hi, target, hs)
    best_lower = max(L, float(np.max(lowers)), low_pi)
    rounds = 0
    converged = False
    done_max = B0  # max bound over cells that are final
    while True:
        goal = (1.0 + rel_slack) * best_lower
        bad = bounds > goal
        if not np.any(bad):
            converged = B0 <= goal
            done_max = max(done_max, float(np.max(bounds)) if bounds.size else 0.0)
            break
        done_max = max(done_max, float(np.max(bounds[~bad])) if np.any(~bad) else 0.0)
        if rounds >= max_rounds or n_points + 2 * int(np.count_nonzero(bad)) > max_points:
            done_max = max(done_max, float(np.max(bounds)))
            break
        rounds += 1
        blo, bhi = lo[bad], hi[bad]
        mid = 0.5 * (blo + bhi)
        lo = np.concatenate([blo, mid])
        hi = np.concatenate([mid, bhi])
        bounds, lowers = _cell_bounds(ev, lo, hi, target, hs)
        n_points += lo.size
        best_lower = max(best_lower, float(np.max(lowers)))
    with np.errstate(over="ignore"):
        upper = float(done_max * _SAFE * scale)  # inf if beyond float64: still an upper bound
        best_lower = min(float(best_lower * scale), 1.7976931348623157e308)
    method = (f"exact rational Chebyshev coefficients -> float64 (correctly rounded); "
              f"theta-cells with quadratic Taylor model + rigorous remainder and rounding bounds; "
              f"first cell [0, {theta0:.3e}] by Markov; initial {m0} cells, {rounds} refinement "
              f"rounds, rel_slack={rel_slack}")
    return Certificate(K=K, beta_lower=best_lower, beta_upper=upper, n_points=n_points, prec=0,
                       method=method, converged=converged, rounds=rounds)


def _certify_trivial(K: int, exact, target: Target) -> Certificate:
    """Fallback when the coefficients overflow float64: |e| <= sum |a_j| + sup|h| (arb)."""
    with flint_prec(64) as flint:
        tot = flint.arb(0)
        for q in exact:
            tot += abs(flint.arb(q))
        tot += target.h_abs_sup_arb()
        up = float(tot.upper()) if tot.upper() < flint.arb("1e308") else math.inf
        # lower bound: |e(1)| = |P(1) - h(1)| = |sum a_j - g(1)|
        s = -target.g_arb(flint.arb(1))
        for q in exact:
            s += flint.arb(q)
        low = abs(s).lower()
        lowf = float(low) if low < flint.arb("1e308") else 1.7976931348623157e308
    return Certificate(K=K, beta_lower=lowf, beta_upper=up, n_points=1, prec=64,
                       method="coefficients overflow float64: trivial arb bound sum|a_j| + "
                              "sup|h| (lower bound |e(1)|)", converged=False, rounds=0)


def certify_beta(K, values=None, values_hp=None, *, target: Target = LOG, rel_slack: float = 0.003,
                 max_rounds: int = _MAX_ROUNDS, max_points: int = MAX_POINTS) -> Certificate:
    """Certified enclosure of beta = sup_{p in [0,1]} p |g_c(p) - log p| for a table.

    Parameters
    ----------
    K : int
        Batch size (the table has K entries).
    values : array_like of float, optional
        The float64 table ``values[n-1] = c_K[n]`` (exact dyadics).
    values_hp : sequence of str, optional
        The high-precision decimal (or "a/b") strings of the table; when given they are what is
        certified (exactly), and ``values`` is ignored.
    rel_slack : float
        Refine until beta_upper <= (1 + rel_slack) beta_lower (default 0.003; docs/MATH.md §6 allows 0.01).
    max_rounds : int
        Cap on refinement rounds (the bound stays rigorous if the cap is hit; ``converged`` is
        then False).
    max_points : int
        Cap on evaluated cells (default ``MAX_POINTS``); likewise.  A refinement that cannot
        converge (rounding floor above ``rel_slack``) doubles its cells every round: pass e.g.
        ``64 * (K + 1)`` when a bound within ~1e-4 of the floor is enough.

    Returns
    -------
    Certificate

    Notes
    -----
    Method and error analysis in the module docstring.  Measured (shared 2-core machine):
    K = 1024 peer table 0.3-0.5 s, minimax hp table ~0.8 s; K = 256 <= 0.05 s.  The achieved
    ratio beta_upper / beta_lower is ~1.003 for equioscillating (minimax) tables and 1.00001-1.002
    for the peers.
    """
    K = as_K(K)
    if not (rel_slack > 0 and math.isfinite(rel_slack)):
        raise ValueError(f"rel_slack must be a positive number, received {rel_slack!r}")
    max_points = as_int(max_points, "max_points", minimum=1)
    src = values_hp if values_hp is not None else values
    if src is None:
        raise ValueError("certify_beta needs values or values_hp, received neither")
    src = list(src) if not isinstance(src, np.ndarray) else src
    if len(src) != K:
        raise ValueError(f"the table must have K = {K} entries, received {len(src)}")
    return certify_exact(K, src, target=target, rel_slack=rel_slack, max_rounds=max_rounds,
                         max_points=max_points)[1]


def certify_exact(K: int, src, *, target: Target = LOG, rel_slack: float = 0.003,
                  max_rounds: int = _MAX_ROUNDS, max_points: int = MAX_POINTS):
    """(float64 Chebyshev coefficients of P, Certificate) for a table given exactly.

    ``certify_beta`` without its argument checks: ``src`` is a length-K sequence of floats or
    exact strings (``aqpgen.numerics.bernstein.exact_values``).  The coefficients are returned
    too, so ``aqpgen.numerics.metrics`` does not convert the table twice.
    """
    target = parse_target(target)
    a, err = to_chebyshev_f64(src)
    j = np.arange(K + 1, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        big = float(np.sum(j**4 * np.abs(a)))
    if not math.isfinite(big):
        return a, _certify_trivial(K, to_chebyshev_exact(src), target)
    return a, _certify_from_cheb(K, a, err, target, rel_slack, max_rounds, max_points)
