"""The quality numbers of a table: beta, V_inf, V1 (docs/MATH.md §1) -- their one home.

Every generator (power, minimax, AQP) and compare store these numbers; ``target`` (default
log p, ``aqpgen.targets``) matters for beta only.

Public functions
----------------
table_metrics(K, values, values_hp=None, *, target=LOG, rel_slack=0.003) -> dict
                                                        -- beta, beta_cert, V_inf, V1, max_abs_c,
                                                           log10 forms (and beta_f64 when
                                                           values_hp is given); kl_metrics is
                                                           its former name.
weighted_bias(values, K, *, target=LOG, grid=None, values_hp=None)
                                                        -- sampled beta = max_p p|g_c(p) - g(p)|.
variance_sup(values, K, *, values_hp=None)              -- V_inf = sup_p p Var_p(c[n]) (sampled +
                                                           golden-section refinement).
variance_mean(values, K, *, values_hp=None)             -- V1 = int_0^1 p Var_p dp (exact rational,
                                                           correctly rounded); variance_mean_exact.
variance_mean_exact(values, K, *, values_hp=None)       -- V1 as an exact rational (flint fmpq).

Precision policy
----------------
The bias is always computed from the exact Chebyshev coefficients of P(p) = p g_c(p)
(`aqpgen.numerics.bernstein.to_chebyshev_exact`, exact rationals, then correctly rounded float64 and
Clenshaw), which is accurate for both kinds of tables.  The variance uses
p Var_p = S(p) - P(p)^2 / p with S(p) = sum_j s_j b_{K,j}(p), s_j = (j/K) c_j^2 >= 0 (again because
p b_{K-1,m} = ((m+1)/K) b_{K,m+1}).  For moderate tables (max|c| <= `HP_THRESHOLD`) the centred
float64 form `aqpgen.numerics.bernstein.variance` is used; above it (the minimax table of kind (b), given
as ``values_hp``) S is evaluated as s_max * sum_j (s_j/s_max) b_{K,j}(p) (positive terms: relative
error ~1e-12) with s_max kept in mpmath, so astronomically large variances are returned as
float64 (``inf`` beyond 1.8e308) instead of garbage.  beta and beta_cert are the enclosure of
``aqpgen.numerics.certify``; V1 is exact (``variance_mean_exact``), so its stored value is the
correctly rounded float64 of the exact V1 of the table.

Grids
-----
The weighted error oscillates about K times in theta, p = sin^2(theta/2); sampled maxima use a
uniform theta grid with `POINTS_PER_OSCILLATION` points per oscillation plus p = 0 and p = 1.
"""

from __future__ import annotations

import math

import numpy as np

from aqpgen.numerics import hpsup
from aqpgen.numerics.bernstein import (
    as_p,
    binom_pmf,
    exact_values,
    mean_poly_cheb,
    to_chebyshev_exact,
    to_chebyshev_f64,
    variance,
)
from aqpgen.numerics.certify import certify_exact
from aqpgen.numerics.grids import theta_grid_closed
from aqpgen.numerics.precision import flint_prec, mp_prec, work_prec
from aqpgen.records import as_K
from aqpgen.targets import LOG, Target, parse_target

__all__ = [
    "CERT_BITS",
    "HP_THRESHOLD",
    "POINTS_PER_OSCILLATION",
    "bias_sup",
    "kl_metrics",
    "table_metrics",
    "variance_mean",
    "variance_mean_exact",
    "variance_sup",
    "weighted_bias",
]

#: tables with max|c| above this are treated as kind (b) (high-precision variance path).
HP_THRESHOLD = 1e6
#: theta-grid density of sampled maxima (points per oscillation of the weighted error).
POINTS_PER_OSCILLATION = 20
#: significant bits of the stored certificate upper bounds (beta_cert, beta_f64), rounded up.
CERT_BITS = 24
_GUARD_REL = 2.0**-80  # a ball wider than this (relative) is recomputed at twice the precision


def _source(values, values_hp, K: int):
    """The exact source of the table (values_hp preferred) and its float64 version."""
    K = as_K(K)
    if values_hp is not None:
        src = list(values_hp)
        if len(src) != K:
            raise ValueError(f"values_hp must have K = {K} entries, received {len(src)}")
    else:
        if values is None:
            raise ValueError("values (or values_hp) is required, received None")
        src = np.asarray(values, dtype=np.float64)
        if src.shape != (K,):
            raise ValueError(f"values must have shape ({K},), received {src.shape}")
        if not np.all(np.isfinite(src)):
            raise ValueError("values must be finite")
    return K, src


def _hp_moments(src, K: int):
    """(max|c| as mpf, s/s_max float array, s_max as mpf)."""
    import mpmath as mp

    with mp_prec(work_prec()):
        c = [mp.mpf(int(q.p)) / int(q.q) for q in exact_values(src)]
        s = [mp.mpf(j + 1) / K * c[j] ** 2 for j in range(K)]
        smax = max(s)
        if smax == 0:
            smax = mp.mpf(1)
        sr = np.array([0.0] + [float(x / smax) for x in s])
        maxc = max(abs(x) for x in c)
    return maxc, sr, smax


class _PVar:
    """p Var_p(c[n]) evaluator for one table (float path or scaled high-precision path)."""

    def __init__(self, src, K: int, cheb: np.ndarray | None = None):
        import mpmath as mp

        self.K = K
        maxc, sr, smax = _hp_moments(src, K)
        self.maxc = maxc
        self.hp = maxc > HP_THRESHOLD
        self.smax = smax
        self.sr = sr
        self.cheb = cheb if cheb is not None else to_chebyshev_f64(src)[0]
        if not self.hp:
            with mp_prec(work_prec()):
                self.values = np.array([float(mp.mpf(int(q.p)) / int(q.q))
                                        for q in exact_values(src)])

    def scaled(self, p: np.ndarray) -> np.ndarray:
        """p Var_p / scale (scale = 1 on the float path, s_max on the hp path)."""
        p = np.asarray(p, dtype=np.float64)
        if not self.hp:
            return p * variance(self.values, p)
        S = np.empty(p.size)
        for s in range(0, p.size, 4096):
            S[s:s + 4096] = binom_pmf(self.K, p[s:s + 4096]) @ self.sr
        P = mean_poly_cheb(self.cheb, p)
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            corr = np.where(p > 0, (P * P) / np.where(p > 0, p, 1.0), 0.0) / float(self.smax)
        return S - corr


def weighted_bias(values, K, *, target: Target = LOG, grid=None, values_hp=None) -> float:
    """Sampled weighted bias max_p p |g_c(p) - g(p)| for the target g (default log p).

    Parameters
    ----------
    values : array_like, shape (K,)
        float64 table (ignored when ``values_hp`` is given).
    K : int
    grid : array_like of p in [0, 1], optional
        Points to sample; default: uniform theta grid, p = sin^2(theta/2), with
        `POINTS_PER_OSCILLATION` * (K+1) cells, p = 0 and p = 1 included.
    values_hp : sequence of str, optional
        Exact / high-precision decimal strings of the table (kind (b) tables).

    Returns
    -------
    float
        The sampled maximum, a lower bound on beta up to ~1e-12 rounding (use
        `aqpgen.numerics.certify.certify_beta` for the rigorous upper bound).
    """
    K, src = _source(values, values_hp, K)
    a, _ = to_chebyshev_f64(src)
    p = theta_grid_closed(POINTS_PER_OSCILLATION * (K + 1))[1] if grid is None else as_p(grid)
    e = mean_poly_cheb(a, p) - parse_target(target).h(p)
    return float(np.max(np.abs(e)))


def _pvar_candidates(pv: _PVar, K: int):
    th, p = theta_grid_closed(POINTS_PER_OSCILLATION * (K + 1))
    return th, hpsup.candidates(pv.scaled(p))


def _precise(compute, K: int):
    """compute(prec) -> arb, at increasing precision until the ball is narrow (relative)."""
    prec = hpsup.sup_prec(K)
    for _ in range(6):
        x = compute(prec)
        if x.rad() <= _GUARD_REL * abs(x.mid()) or x.rad() == 0:
            return x
        prec *= 2
    return x


def _variance_sup_arb(src, K: int, pv: _PVar):
    """sup_p p Var_p as an arb: located on the sampled grid, refined by Newton in arb."""
    th, idx = _pvar_candidates(pv, K)
    c = exact_values(src)
    S_cheb = to_chebyshev_exact([q * q for q in c])  # S(p) = sum_j (j/K) c_j^2 b_{K,j}(p)
    P_cheb = to_chebyshev_exact(c)

    def compute(prec):
        S = hpsup.CosSeries(S_cheb, prec)
        P = hpsup.CosSeries(P_cheb, prec)

        def fun(t):
            ts = hpsup.t_series(t, prec)
            s = (ts / 2).sin()
            Pt = P.series(t)
            return S.series(t) - Pt * Pt / (s * s)

        return hpsup.hp_max(fun, th, idx, prec)

    return _precise(compute, K)


def _poly_target_cheb(target: Target, K: int):
    """Exact Chebyshev coefficients (length K + 1) of p g(p) for a polynomial target p^m, else None."""
    if not getattr(target, "polynomial", False):
        return None
    from flint import fmpq, fmpz

    k = int(target.a_exact) + 1  # p^(m+1) = ((1 + x) / 2)^(m+1)
    if k > K:
        return None
    out = [fmpq(0)] * (K + 1)
    for i in range(k + 1):  # ((1 + x)/2)^k = 2^-k sum_i C(k, i) x^i
        ci = fmpq(fmpz.bin_uiui(k, i) if hasattr(fmpz, "bin_uiui") else math.comb(k, i), 2**k)
        for j in range(i % 2, i + 1, 2):  # x^i = 2^(1-i) sum C(i, (i-j)/2) T_j, T_0 halved
            w = fmpq(math.comb(i, (i - j) // 2), 2 ** (i - 1)) if i > 0 else fmpq(1)
            if j == 0 and i > 0:
                w = w / 2
            out[j] += ci * w
    return out


def _bias_sup_arb(src, K: int, a_f64: np.ndarray, target: Target):
    """sup_p p |g_c(p) - g(p)| as an arb (0 exactly for an unbiased polynomial-target table)."""
    import flint

    th, p = theta_grid_closed(POINTS_PER_OSCILLATION * (K + 1))
    P_cheb = to_chebyshev_exact(exact_values(src))
    poly = _poly_target_cheb(target, K)
    if poly is None:
        e = mean_poly_cheb(a_f64, p) - target.h(p)
    else:
        # e is a polynomial: its exact coefficients, so that a tiny bias (a float64-rounded
        # unbiased table: ~1e-17) is sampled without the float64 noise of P - p^(m+1)
        P_cheb = [x - y for x, y in zip(P_cheb, poly)]
        if all(x == 0 for x in P_cheb):
            return flint.arb(0)
        e = mean_poly_cheb(np.array([int(q.p) / int(q.q) for q in P_cheb]), p)
    idx = hpsup.candidates(np.abs(e))
    signs = np.where(e[idx] >= 0, 1, -1)

    def compute(prec):
        F = hpsup.CosSeries(P_cheb, prec)
        best = None
        for sg in (1, -1):
            sel = idx[signs == sg]
            if not sel.size:
                continue

            def fun(t, sg=sg):
                if poly is not None:
                    return sg * F.series(t)
                ts = hpsup.t_series(t, prec)
                s = (ts / 2).sin()
                return sg * (F.series(t) - s * s * target.g_arb_sin(s))

            v = hpsup.hp_max(fun, th, sel, prec)
            if best is None or v.mid() > best.mid():
                best = v
        with flint_prec(prec):  # the end point p = 1: e(1) = c_K - g(1)
            end = abs(F.series(flint.arb.pi()).coeffs()[0] - (0 if poly is not None else
                                                               target.g_arb(flint.arb(1))))
        return end if end.mid() > best.mid() else best

    return _precise(compute, K)


def bias_sup(values, K, *, target: Target = LOG, values_hp=None) -> float:
    """beta = sup_p p |g_c(p) - g(p)|: located in float64, refined and evaluated in arb, rounded
    down (a rigorous lower bound on the sup, within ~2^-100 of it; ``aqpgen.numerics.hpsup``)."""
    target = parse_target(target)
    K, src = _source(values, values_hp, K)
    a, _ = to_chebyshev_f64(src)
    return max(0.0, hpsup.round_down(_bias_sup_arb(src, K, a, target)))


def _vinf_numbers(src, K: int, pv: _PVar) -> tuple[float, float]:
    """(V_inf correctly rounded (inf beyond float64), log10 V_inf) from the arb supremum."""
    import flint

    v = _variance_sup_arb(src, K, pv)
    if not v.mid() > 0:
        return 0.0, -math.inf
    with flint_prec(hpsup.sup_prec(K)):
        lg = hpsup.round_nearest(v.log() / flint.arb(10).log())
    return hpsup.round_nearest(v), lg


def variance_sup(values, K, *, values_hp=None) -> float:
    """V_inf = sup_{p in [0,1]} p Var_p(c[n]), n - 1 ~ Binomial(K-1, p).

    Located on a uniform theta grid (p = sin^2(theta/2), 20 (K+1) cells, endpoints included):
    every sampled local maximum within 5% of the largest is refined by Newton's method in arb and
    p Var_p evaluated there (``aqpgen.numerics.hpsup``); the result is that supremum correctly
    rounded to float64, the same double whatever numpy / BLAS computed the samples.  Kind (b)
    tables (max|c| > `HP_THRESHOLD`) are sampled on the scaled path (module docstring); the result
    is ``inf`` if it exceeds float64.
    """
    K, src = _source(values, values_hp, K)
    return _vinf_numbers(src, K, _PVar(src, K))[0]


def variance_mean_exact(values, K, *, values_hp=None):
    """V1 = int_0^1 p Var_p(c[n]) dp as an exact rational (``flint.fmpq``) of the exact table.

    .. math::  V_1 = \\frac{1}{K(K+1)}\\sum_{n=1}^K n\\,c_n^2 - \\int_0^1 p\\,g_c(p)^2\\,dp

    (p b_{K-1,n-1} = (n/K) b_{K,n} and int_0^1 b_{K,n} = 1/(K+1)).  g_c's monomial coefficients
    are a_k = C(K-1, k) Delta^k c_1 (forward differences of the table), obtained from the
    exponential generating function product (sum_m c_{m+1} x^m/m!) e^{-x}; then
    int_0^1 p g^2 = sum_k [g^2]_k / (k+2).  All in exact rational arithmetic (python-flint).
    """
    from flint import fmpq, fmpq_poly, fmpz

    K, src = _source(values, values_hp, K)
    c = exact_values(src)
    n = K - 1
    second = sum((fmpq(j + 1) * c[j] * c[j] for j in range(K)), fmpq(0)) / (K * (K + 1))
    fact = [fmpz(1)] * K
    for i in range(1, K):
        fact[i] = fact[i - 1] * i
    D = fmpq_poly([c[m] / fact[m] for m in range(K)])
    Em = fmpq_poly([fmpq(1 if k % 2 == 0 else -1, fact[k]) for k in range(K)])
    H = (D * Em).coeffs()[:K]
    H += [fmpq(0)] * (K - len(H))
    g = fmpq_poly([H[k] * (fact[n] / fact[n - k]) for k in range(K)])
    G2 = (g * g).coeffs()
    mean_sq = sum((G2[k] / (k + 2) for k in range(len(G2))), fmpq(0))
    return second - mean_sq


def _float_log10(q) -> tuple[float, float]:
    """(q correctly rounded to float64 (inf beyond its range), log10 q) for a rational q >= 0."""
    import mpmath as mp

    num, den = int(q.p), int(q.q)
    try:
        f = num / den
    except OverflowError:
        f = math.inf
    with mp_prec(work_prec()):
        lg = float(mp.log10(mp.mpf(num) / den)) if num > 0 else -math.inf
    return f, lg


def variance_mean(values, K, *, values_hp=None) -> float:
    """V1 = int_0^1 p Var_p(c[n]) dp: ``variance_mean_exact`` correctly rounded to float64."""
    return _float_log10(variance_mean_exact(values, K, values_hp=values_hp))[0]


def _log10_mpf(x) -> float:
    import mpmath as mp

    with mp_prec(work_prec()):
        return float(mp.log10(abs(mp.mpf(x)))) if x != 0 else -math.inf


def table_metrics(K, values, values_hp=None, *, target: Target = LOG,
                  rel_slack: float = 0.003) -> dict:
    """All measured and certified numbers of a table for one K and its target (default log p).

    Parameters
    ----------
    K : int
    values : array_like, shape (K,)
        The float64 table as stored.
    values_hp : sequence of str, optional
        High-precision strings (minimax tables).  When given, beta / beta_cert / V_inf / V1 /
        max_abs_c describe the exact table and ``beta_f64`` certifies the float64-rounded table.
    target : Target or str
        The target g the table estimates (beta and beta_cert depend on it; V_inf, V1 do not).
    rel_slack : float
        Passed to `aqpgen.numerics.certify.certify_beta`.

    Returns
    -------
    dict
        ``beta`` (rigorous lower bound: max over the certification grid), ``beta_cert`` (rigorous
        upper bound), ``V_inf``, ``V1``, ``max_abs_c``, their base-10 logarithms ``log10_V_inf``,
        ``log10_V1``, ``log10_max_abs_c`` (finite where the minimax table's numbers overflow
        float64 and the plain fields are ``inf``), and ``beta_f64`` (certified upper bound for
        the float64 table) when ``values_hp`` is given.  All plain floats.
    """
    target = parse_target(target)
    K, src = _source(values, values_hp, K)
    a, cert = certify_exact(K, src, target=target, rel_slack=rel_slack)
    pv = _PVar(src, K, cheb=a)
    beta = max(0.0, hpsup.round_down(_bias_sup_arb(src, K, a, target)))
    vinf, log10_vinf = _vinf_numbers(src, K, pv)
    v1, log10_v1 = _float_log10(variance_mean_exact(values, K, values_hp=values_hp))
    out = {
        "beta": beta,
        # the enclosure's upper end is a float64 computation (BLAS sums): rounded up to CERT_BITS
        # significant bits it stays an upper bound and loses the last-bit noise
        "beta_cert": hpsup.round_up_bits(max(float(cert.beta_upper), beta), CERT_BITS),
        "V_inf": vinf,
        "V1": v1,
        "max_abs_c": float(pv.maxc) if pv.maxc < 1.7976931348623157e308 else math.inf,
        # log10 forms stay finite where the minimax table's variance overflows float64 (K ~ 1024)
        "log10_V_inf": log10_vinf,
        "log10_V1": log10_v1,
        "log10_max_abs_c": _log10_mpf(pv.maxc),
    }
    if values_hp is not None:
        vf = np.asarray(values, dtype=np.float64) if values is not None else None
        if vf is None or vf.shape != (K,) or not np.all(np.isfinite(vf)):
            out["beta_f64"] = math.inf
        else:
            out["beta_f64"] = hpsup.round_up_bits(float(
                certify_exact(K, vf, target=target, rel_slack=rel_slack)[1].beta_upper), CERT_BITS)
    return out


#: the former name of ``table_metrics`` (target log p).
kl_metrics = table_metrics
