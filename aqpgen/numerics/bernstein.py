"""Bernstein-basis numerics for count tables: float64-stable evaluation and exact conversion.

A table c_K[1..K] (stored 0-based, ``values[n-1] = c_K[n]``) has the mean polynomial

.. math::  g_c(p) = \\sum_{m=0}^{K-1} c_{m+1}\\, b_{K-1,m}(p),
           \\qquad b_{N,m}(p) = \\binom{N}{m} p^m (1-p)^{N-m},

and the *weighted mean* P(p) = p g_c(p), a degree-K polynomial with Bernstein coefficients
d_j = (j/K) c_j, j = 0..K (d_0 = 0), because p b_{K-1,m}(p) = ((m+1)/K) b_{K,m+1}(p).

Public functions
----------------
binom_pmf(N, p)             -- matrix b_{N,m}(p_i), shape (len(p), N+1), float64, log-space.
mean_poly(values, p)        -- g_c(p) in float64 (moderate tables only).
second_moment(values, p)    -- E_p[c[n]^2] = sum_m c_{m+1}^2 b_{K-1,m}(p).
variance(values, p)         -- Var_p(c[n]) = sum_m b_{K-1,m}(p) (c_{m+1} - g_c(p))^2 (no cancellation).
exact_values(values)        -- the table as exact rationals (python-flint ``fmpq``).
to_chebyshev_exact(values)  -- exact Chebyshev coefficients a_0..a_K of P in x = 2p - 1.
to_chebyshev_arb(values, prec) -- the same as arb balls at ``prec`` bits.
to_chebyshev_f64(values)    -- correctly rounded float64 coefficients and their error bound.
mean_poly_cheb(cheb, p)     -- P(p) = sum_j a_j T_j(2p - 1) by Clenshaw's recurrence (float64).
from_chebyshev_exact(cheb)  -- the exact table whose P has the given Chebyshev coefficients.
cheb_to_bernstein(cheb, prec) -- Bernstein coefficients of Q(p) = sum_{j<K} a_j T_j(2p-1) (degree
                               K-1, the mean g_c itself, not P = p g_c) as arb balls: the minimax
                               table's conversion.

Two kinds of tables
-------------------
(a) moderate coefficients (peers, AQP; |c| <~ 50): float64 Bernstein evaluation is accurate.
(b) the minimax table of log p: Bernstein coefficients are astronomically large and alternate
    in sign (cancellation ~ max|c| / |g|).  Never evaluate such a table with ``mean_poly``; convert
    it exactly with ``to_chebyshev_exact`` (its Chebyshev coefficients are moderate, |a_j| <~ 1)
    and evaluate with ``mean_poly_cheb``.

The exact conversion
--------------------
With x = cos t = (z + 1/z)/2, z = e^{it}, one has 1 + x = (z+1)^2/(2z) and 1 - x = -(z-1)^2/(2z),
so with e_j = d_j binom(K, j)

.. math::  z^K P = 4^{-K} W(z), \\qquad
           W(z) = \\sum_{j=0}^K e_j (-1)^{K-j} (z+1)^{2j} (z-1)^{2K-2j},

while z^K \\sum_j a_j T_j(x) = \\sum_j a_j (z^{K+j} + z^{K-j})/2.  Hence a_0 = 4^{-K} W_K and
a_j = 2\\cdot 4^{-K} W_{K+j} (j >= 1).  W is formed exactly with two Taylor shifts:
W(z) = (z-1)^{2K} A((z+1)/(z-1)) with A(v) = sum_j e_j (-1)^{K-j} v^{2j}; writing
A(1 + w) = sum_i alpha_i w^i gives W(z) = sum_i alpha_i 2^i (z-1)^{2K-i}.  Everything is done in
exact rational arithmetic (``fmpq_poly``), so the only rounding is the final conversion.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from functools import lru_cache

import numpy as np

from aqpgen.numerics.precision import flint_prec, mp_prec, work_prec
from aqpgen.records import as_K

__all__ = [
    "as_p",
    "binom_pmf",
    "cheb_to_bernstein",
    "exact_values",
    "from_chebyshev_exact",
    "mean_poly",
    "mean_poly_cheb",
    "second_moment",
    "to_chebyshev_arb",
    "to_chebyshev_exact",
    "to_chebyshev_f64",
    "variance",
]

#: rows of the p-grid processed at once by the float64 evaluators (memory ~ rows * (K+1) * 8 B).
_CHUNK_ROWS = 4096


def as_p(p) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(p, dtype=np.float64))
    if arr.ndim != 1:
        raise ValueError(f"p must be a scalar or a 1-d array, received shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
        bad = arr[~((arr >= 0.0) & (arr <= 1.0))]
        raise ValueError(f"p must lie in [0, 1], received e.g. {bad[:3].tolist()}")
    return arr


def _as_values(values, name: str = "values") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d table c_K[1..K], received shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, received non-finite entries at "
                         f"n = {(np.flatnonzero(~np.isfinite(v)) + 1)[:5].tolist()}")
    return v


@lru_cache(maxsize=128)
def _log_binom(N: int) -> np.ndarray:
    """log binom(N, m), m = 0..N, correctly rounded (computed at ``work_prec()`` bits)."""
    out = np.empty(N + 1)
    with mp_prec(work_prec()) as mp:
        lf = [mp.mpf(0)] * (N + 1)
        acc = mp.mpf(0)
        for n in range(1, N + 1):
            acc += mp.log(n)
            lf[n] = acc
        for m in range(N + 1):
            out[m] = float(lf[N] - lf[m] - lf[N - m])
    out.setflags(write=False)
    return out


def binom_pmf(N, p, *, method: str = "logspace") -> np.ndarray:
    """Binomial probabilities b_{N,m}(p) = C(N,m) p^m (1-p)^(N-m) for all m = 0..N.

    Parameters
    ----------
    N : int
        Number of trials, N >= 0 (for a table of size K, N = K - 1).
    p : float or 1-d array_like
        Probabilities in [0, 1] (0 and 1 included).
    method : {"logspace", "boost"}
        "logspace" (default; the metrics): see Notes.  "boost": ``scipy.stats.binom.pmf``
        (Boost's binomial density, a few ulp; ~7x slower), the numbers the AQP programs are
        solved with.  Both are kept because the shipped tables pin their bits: the AQP values
        depend on the solver's pmf, and the AQP budgets on V_inf of the plug-in table
        (``aqpgen.numerics.metrics.variance_sup``, log-space).

    Returns
    -------
    numpy.ndarray
        float64 matrix of shape (len(p), N + 1); row i is the pmf at p[i] and sums to 1.

    Notes
    -----
    Computed in log space, exp(log C(N,m) + m log p + (N-m) log1p(-p)), with log C(N,m) correctly
    rounded (40-digit mpmath, cached per N) and 0 log 0 = 0 at p in {0, 1} (exact 0/1 entries).
    Never overflows or underflows spuriously (entries below ~1e-308 flush to 0).

    Possible issues: the relative error of an entry is about u (|log C| + m|log p| +
    (N-m)|log(1-p)|), u = 2^-53, i.e. <~ 1e-12 at N = 1024 (measured ~7e-13); adequate for
    moderate tables, useless for tables of kind (b) (use the Chebyshev route).
    """
    N = as_K(N, "N", minimum=0)
    p = as_p(p)
    if method == "boost":
        from scipy.stats import binom

        return binom.pmf(np.arange(N + 1)[None, :], N, p[:, None])
    if method != "logspace":
        raise ValueError(f"method must be 'logspace' or 'boost', received {method!r}")
    m = np.arange(N + 1, dtype=np.float64)
    lc = _log_binom(N)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(p)
        lq = np.log1p(-p)
        # 0 * log 0 := 0 (m = 0 at p = 0; m = N at p = 1)
        t1 = np.where(m[None, :] == 0, 0.0, m[None, :] * lp[:, None])
        t2 = np.where(m[None, :] == N, 0.0, (N - m)[None, :] * lq[:, None])
    return np.exp(lc[None, :] + t1 + t2)


def _chunks(n: int):
    for s in range(0, n, _CHUNK_ROWS):
        yield slice(s, min(n, s + _CHUNK_ROWS))


def mean_poly(values, p) -> np.ndarray:
    """The mean polynomial g_c(p) = sum_{m=0}^{K-1} c[m+1] b_{K-1,m}(p) in float64.

    Parameters
    ----------
    values : array_like, shape (K,)
        The table, ``values[n-1] = c_K[n]``.
    p : float or 1-d array_like in [0, 1]

    Returns
    -------
    numpy.ndarray, shape (len(p),)

    Possible issues: the absolute error is about 1e-12 max|c| at K = 1024 (see `binom_pmf`);
    for a table of kind (b) (huge alternating c) use ``mean_poly_cheb(to_chebyshev_f64(...))``.
    """
    v = _as_values(values)
    p = as_p(p)
    out = np.empty(p.size)
    for sl in _chunks(p.size):
        out[sl] = binom_pmf(v.size - 1, p[sl]) @ v
    return out


def second_moment(values, p) -> np.ndarray:
    """E_p[c[n]^2] = sum_{m=0}^{K-1} c[m+1]^2 b_{K-1,m}(p) (float64, positive terms)."""
    v = _as_values(values)
    p = as_p(p)
    out = np.empty(p.size)
    for sl in _chunks(p.size):
        out[sl] = binom_pmf(v.size - 1, p[sl]) @ (v * v)
    return out


def variance(values, p) -> np.ndarray:
    """Var_p(c[n]) = sum_m b_{K-1,m}(p) (c[m+1] - g_c(p))^2, n - 1 ~ Binomial(K-1, p).

    The centred form has no cancellation (unlike E[c^2] - g^2), so the relative error is that of
    `binom_pmf` plus that of g.
    """
    v = _as_values(values)
    p = as_p(p)
    out = np.empty(p.size)
    for sl in _chunks(p.size):
        B = binom_pmf(v.size - 1, p[sl])
        g = B @ v
        out[sl] = np.einsum("ij,ij->i", B, (v[None, :] - g[:, None]) ** 2)
    return out


# ----------------------------------------------------------------------------- exact side

def _to_fraction(x, i: int) -> Fraction:
    from flint import fmpq, fmpz

    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"values[{i}] must be a number or a string, received {x!r}")
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer, fmpz)):
        return Fraction(int(x))
    if isinstance(x, fmpq):
        return Fraction(int(x.p), int(x.q))
    if isinstance(x, (float, np.floating)):
        xf = float(x)
        if not np.isfinite(xf):
            raise ValueError(f"values[{i}] must be finite, received {xf!r}")
        return Fraction(xf)  # exact dyadic
    if isinstance(x, bytes):
        x = x.decode("ascii")
    if isinstance(x, str):
        try:
            return Fraction(x.strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"values[{i}] is not a decimal or 'a/b' string: {x!r}") from exc
    raise TypeError(f"values[{i}] must be a float, int, Fraction, fmpq or string, received "
                    f"{type(x).__name__}")


def exact_values(values: Iterable) -> list:
    """The table as exact rationals (``flint.fmpq``).

    floats are exact dyadics; strings are decimal ("-1.25e3") or rational ("a/b") literals and are
    converted exactly (no working precision, no radius).
    """
    from flint import fmpq

    vals = list(values) if not isinstance(values, np.ndarray) else list(values.ravel())
    if len(vals) == 0:
        raise ValueError("values must be a non-empty table c_K[1..K], received an empty one")
    out = []
    for i, x in enumerate(vals):
        f = _to_fraction(x, i)
        out.append(fmpq(f.numerator, f.denominator))
    return out


def to_chebyshev_exact(values: Sequence) -> list:
    """Exact Chebyshev coefficients of the weighted mean P(p) = p g_c(p).

    Parameters
    ----------
    values : sequence of float / str / Fraction / fmpq, length K
        The table (see `exact_values`).

    Returns
    -------
    list of flint.fmpq, length K + 1
        a_0..a_K with P(p) = sum_j a_j T_j(2p - 1) exactly.

    Notes
    -----
    Method in the module docstring (two exact Taylor shifts, no matrices); cost ~10 ms at
    K = 1024 for float input.
    """
    from flint import fmpq, fmpq_poly, fmpz

    c = exact_values(values)
    K = len(c)
    # e_j = d_j binom(K, j) with d_j = (j/K) c_j; (j/K) binom(K,j) = binom(K-1, j-1).
    coeffs = [fmpq(0)] * (2 * K + 1)
    b = fmpz(1)  # binom(K-1, j-1)
    for j in range(1, K + 1):
        if j > 1:
            b = b * (K - j + 1) // (j - 1)
        e = c[j - 1] * b
        coeffs[2 * j] = e if (K - j) % 2 == 0 else -e
    A = fmpq_poly(coeffs)
    A1 = A(fmpq_poly([1, 1]))  # A(1 + w)
    alpha = A1.coeffs() + [fmpq(0)] * (2 * K + 1 - (A1.degree() + 1))
    # A2(s) = sum_i alpha_i 2^i s^(2K - i)
    rev = [fmpq(0)] * (2 * K + 1)
    for i in range(2 * K + 1):
        rev[2 * K - i] = alpha[i] * (fmpz(1) << i)
    W = fmpq_poly(rev)(fmpq_poly([-1, 1]))  # A2(z - 1)
    w = W.coeffs() + [fmpq(0)] * (2 * K + 1 - (W.degree() + 1))
    scale = fmpq(1, fmpz(1) << (2 * K))
    out = [w[K] * scale]
    out += [2 * w[K + j] * scale for j in range(1, K + 1)]
    return out


def to_chebyshev_arb(values: Sequence, prec: int) -> list:
    """Chebyshev coefficients a_0..a_K of P(p) = p g_c(p) in x = 2p - 1 as arb balls.

    Parameters
    ----------
    values : sequence, length K
        The table as floats (exact dyadics), decimal / "a/b" strings, Fractions or fmpq.
    prec : int
        Working precision in bits (>= 2).  The coefficients are computed exactly and then rounded
        to ``prec`` bits, so each ball has relative radius <= 2^(1-prec).

    Returns
    -------
    list of flint.arb, length K + 1, each ball containing the exact a_j.
    """
    prec = as_K(prec, "prec", minimum=2)
    exact = to_chebyshev_exact(values)
    with flint_prec(prec) as flint:
        return [flint.arb(a) for a in exact]


def to_chebyshev_f64(values: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Correctly rounded float64 Chebyshev coefficients of P and a rigorous bound on their error.

    Returns
    -------
    a : numpy.ndarray, shape (K+1,)
        fl(a_j), the exact a_j rounded to nearest (Python's int/int true division is correctly
        rounded); +-inf if |a_j| exceeds the float64 range.
    err : numpy.ndarray, shape (K+1,)
        |a_j - fl(a_j)| <= err_j = 2^-53 |fl(a_j)| + 2^-1074.
    """
    exact = to_chebyshev_exact(values)
    a = np.empty(len(exact))
    for j, q in enumerate(exact):
        try:
            a[j] = int(q.p) / int(q.q)
        except OverflowError:
            a[j] = np.inf if q > 0 else -np.inf
    err = np.ldexp(np.abs(a), -53) + np.ldexp(1.0, -1074)
    return a, err


def mean_poly_cheb(cheb, p) -> np.ndarray:
    """Evaluate the weighted mean P(p) = p g_c(p) = sum_j a_j T_j(2p - 1) in float64.

    Parameters
    ----------
    cheb : array_like, shape (K+1,)
        float64 Chebyshev coefficients of P in x = 2p - 1 (e.g. ``to_chebyshev_f64(values)[0]``).
    p : float or 1-d array_like in [0, 1]

    Returns
    -------
    numpy.ndarray
        P(p); divide by p (p > 0) for g_c(p).

    Notes
    -----
    Clenshaw's recurrence b_k = a_k + 2x b_{k+1} - b_{k+2}, P = a_0 + x b_1 - b_2, vectorised over p
    (numpy ``chebval`` uses the same recurrence).  Backward stable: the error is
    O(K u) sum_j |a_j| in the interior, growing to O(K^2 u) sum_j |a_j| at x = +-1 in the worst
    case (Gentleman 1969) -- ~1e-10 at K = 1024, far below the errors being measured.  Cost O(K)
    numpy operations on len(p)-vectors.
    """
    a = np.asarray(cheb, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"cheb must be a non-empty 1-d array, received shape {a.shape}")
    x = 2.0 * as_p(p) - 1.0
    b1 = np.zeros_like(x)
    b2 = np.zeros_like(x)
    x2 = 2.0 * x
    for k in range(a.size - 1, 0, -1):
        b1, b2 = a[k] + x2 * b1 - b2, b1
    return a[0] + x * b1 - b2


def from_chebyshev_exact(cheb: Sequence) -> list:
    """The table c_K[1..K] whose weighted mean is P(p) = sum_{j=0}^K a_j T_j(2p - 1), exactly.

    Parameters
    ----------
    cheb : sequence of exact numbers (float / str / Fraction / fmpq), length K + 1
        Chebyshev coefficients a_0..a_K of P in x = 2p - 1.  P(0) = sum_j (-1)^j a_j must be 0
        (P = p g_c(p) vanishes at p = 0).

    Returns
    -------
    list of flint.fmpq, length K: ``c[n-1] = c_K[n]`` (the inverse of `to_chebyshev_exact`).

    Notes
    -----
    P's monomial form M(y) in y = p is built by Clenshaw's recurrence on exact polynomials; its
    Bernstein coefficients e_j (P = sum_j e_j y^j (1-y)^(K-j)) follow from
    sum_j e_j s^j = (1+s)^K M(s/(1+s)) = s^K Mrev(1 + 1/s), Mrev(w) = w^K M(1/w), i.e. one exact
    Taylor shift; then d_j = e_j / binom(K, j) and c_j = K d_j / j.
    """
    from flint import fmpq, fmpq_poly, fmpz

    a = exact_values(cheb)
    K = len(a) - 1
    if K < 1:
        raise ValueError(f"cheb must have at least 2 coefficients (K >= 1), received {K + 1}")
    if sum((a[j] if j % 2 == 0 else -a[j]) for j in range(K + 1)) != 0:
        raise ValueError("cheb must satisfy P(0) = sum_j (-1)^j a_j = 0 (P = p g_c(p))")
    x = fmpq_poly([-1, 2])  # x = 2y - 1
    b1 = fmpq_poly([])
    b2 = fmpq_poly([])
    for k in range(K, 0, -1):
        b1, b2 = a[k] + 2 * x * b1 - b2, b1
    M = a[0] + x * b1 - b2
    m = M.coeffs() + [fmpq(0)] * (K + 1 - (M.degree() + 1))
    Mrev = fmpq_poly(list(reversed(m)))  # w^K M(1/w)
    beta = Mrev(fmpq_poly([1, 1]))
    bc = beta.coeffs() + [fmpq(0)] * (K + 1 - (beta.degree() + 1))
    e = list(reversed(bc))  # e_j = beta_{K-j}
    out = []
    binom = fmpz(1)  # binom(K, j)
    for j in range(1, K + 1):
        binom = binom * (K - j + 1) // j
        out.append(e[j] * K / (binom * j))
    return out


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
