"""Exact U-statistic tables for polynomial (Bregman power) rewards.

For the target p^m and batch size K the falling-factorial table

.. math::

    c_K[n] = \\frac{(n-1)_m}{(K-1)_m}, \\qquad (x)_m = x (x-1) \\cdots (x-m+1),

is exactly unbiased for every m <= K-1 (docs/MATH.md §2): with n-1 ~ Binomial(K-1, p),
E[(n-1)_m] = (K-1)_m p^m (the m-th factorial moment of the binomial). Any polynomial reward
sum_i a_i p^i of degree <= K-1 follows by linearity.  Every number here is an exact rational
(:class:`fractions.Fraction`); float64 values are obtained by correctly rounded conversion.

Public functions
----------------
ustat_table_exact(m, K)        -- c_K[1..K] for p^m, exact rationals.
poly_table_exact(coeffs, K)    -- the table of sum_i coeffs[i] p^i, exact rationals.
to_float64(fractions)          -- correctly rounded float64 array.
mean_poly_exact(values, K)     -- monomial coefficients of the table's mean polynomial g_c(p).
verify_exact(values, coeffs, K) -- True iff g_c equals the target polynomial exactly.

Generator interface (docs/ARCHITECTURE.md)
------------------------------------------
GENERATOR_VERSION, target_name(params), build_K(K, params), verify_row(K, values, values_hp,
metrics, params).  ``params`` is ``{"m": int}`` or ``{"coeffs": ["a0", "a1", ...]}`` (rationals
as strings, low -> high degree).

Conventions
-----------
Self-inclusive counts n in 1..K; tables are returned 0-based (``table[n-1] = c_K[n]``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

import numpy as np

from aqpgen.numerics.metrics import variance_mean, variance_sup
from aqpgen.records import Check, KResult, as_int, as_K

__all__ = [
    "GENERATOR_VERSION",
    "build_K",
    "mean_poly_exact",
    "poly_table_exact",
    "target_coeffs",
    "target_name",
    "to_float64",
    "ustat_table_exact",
    "verify_exact",
    "verify_row",
]

#: Bump when build_K's output for the same inputs changes.
GENERATOR_VERSION = "4"



# ----------------------------------------------------------------------------- validation
def _check_m(m) -> int:
    return as_int(m, "m", minimum=0)


def _exact_coeff(x, what: str) -> Fraction:
    """An exact rational from a str ("1/3", "0.5"), int or Fraction; floats are refused."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, bool):
        raise TypeError(f"{what} must be a rational (str, int or Fraction), received {x!r}")
    if isinstance(x, numbers.Integral):
        return Fraction(int(x))
    if isinstance(x, str):
        try:
            return Fraction(x.strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"{what} is not a rational number: {x!r}") from exc
    raise TypeError(
        f"{what} must be a rational given exactly (str such as '1/3', int or Fraction), "
        f"received {x!r} of type {type(x).__name__}; pass floats as strings to keep them exact"
    )


def _exact_value(x, what: str) -> Fraction:
    """Like :func:`_exact_coeff` but also accepts binary floats (converted exactly) and bytes."""
    if isinstance(x, (bytes, np.bytes_)):
        x = x.decode("ascii")
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            raise ValueError(f"{what} must be finite, received {x!r}")
        return Fraction(float(x))
    if isinstance(x, np.integer):
        return Fraction(int(x))
    return _exact_coeff(x, what)


def _parse_coeffs(coeffs) -> list[Fraction]:
    if isinstance(coeffs, (str, bytes)) or not isinstance(coeffs, Iterable):
        raise TypeError(f"coeffs must be a sequence of rationals (low -> high), received {coeffs!r}")
    out = [_exact_coeff(c, f"coeffs[{i}]") for i, c in enumerate(coeffs)]
    if not out:
        raise ValueError("coeffs must contain at least one coefficient, received []")
    return out


def _degree(coeffs: Sequence[Fraction]) -> int:
    """Index of the highest non-zero coefficient (0 for the zero polynomial)."""
    for i in range(len(coeffs) - 1, -1, -1):
        if coeffs[i] != 0:
            return i
    return 0


def target_coeffs(params: Mapping) -> list[Fraction]:
    """Monomial coefficients (low -> high, exact) of the target named by ``params``.

    ``{"m": m}`` gives p^m; ``{"coeffs": [...]}`` gives sum_i coeffs[i] p^i.
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, received {params!r}")
    keys = set(params)
    if keys == {"m"}:
        m = _check_m(params["m"])
        return [Fraction(0)] * m + [Fraction(1)]
    if keys == {"coeffs"}:
        return _parse_coeffs(params["coeffs"])
    raise ValueError(
        f"power params must be {{'m': int}} or {{'coeffs': [str, ...]}}, received {dict(params)!r}"
    )


def target_name(params: Mapping) -> str:
    """Human-readable target: ``"p^2"`` for m=2, ``"2p"`` for coeffs ["0", "2"], ``"1/3 - p^2"``."""
    coeffs = target_coeffs(params)
    terms: list[tuple[int, str]] = []  # (sign, magnitude text)
    for i, a in enumerate(coeffs):
        if a == 0:
            continue
        mono = "" if i == 0 else ("p" if i == 1 else f"p^{i}")
        mag = abs(a)
        if i == 0:
            txt = str(mag)
        elif mag == 1:
            txt = mono
        elif mag.denominator == 1:
            txt = f"{mag}{mono}"
        else:
            txt = f"({mag}){mono}"
        terms.append((1 if a > 0 else -1, txt))
    if not terms:
        return "0"
    out = ("-" if terms[0][0] < 0 else "") + terms[0][1]
    for sign, txt in terms[1:]:
        out += (" + " if sign > 0 else " - ") + txt
    return out


# ----------------------------------------------------------------------------- exact tables
def _falling_weights(K: int, degree: int, coeffs: Sequence[Fraction]) -> list[Fraction]:
    """w_i = a_i / (K-1)_i, i = 0..degree, so that c_K[n] = sum_i w_i (n-1)_i."""
    w = []
    ff = 1  # (K-1)_i
    for i in range(degree + 1):
        w.append(coeffs[i] / ff if i < len(coeffs) else Fraction(0))
        ff *= K - 1 - i
    return w


def _table_from_weights(K: int, w: Sequence[Fraction]) -> list[Fraction]:
    """c_K[n] = sum_i w_i (n-1)_i for n = 1..K, in integer arithmetic over a common denominator."""
    L = math.lcm(*(x.denominator for x in w))
    W = [x.numerator * (L // x.denominator) for x in w]
    x = np.arange(K, dtype=object)  # n - 1 = 0..K-1 as Python ints
    acc = np.zeros(K, dtype=object)
    ff = np.ones(K, dtype=object)  # (n-1)_i
    for i, Wi in enumerate(W):
        if Wi:
            acc = acc + Wi * ff
        if i + 1 < len(W):
            ff = ff * (x - i)
    return [Fraction(int(a), L) for a in acc]


def ustat_table_exact(m: int, K: int) -> list[Fraction]:
    """The exactly unbiased table for p^m: ``[c_K[1], ..., c_K[K]]`` with c_K[n] = (n-1)_m/(K-1)_m.

    Parameters
    ----------
    m : int
        Power, 0 <= m <= K-1.
    K : int
        Batch size, K >= 1.

    Returns
    -------
    list of Fraction
        Length K, 0-based (``table[n-1] = c_K[n]``).

    Notes
    -----
    Unbiasedness: for X ~ Binomial(K-1, p), E[(X)_m] = (K-1)_m p^m (factorial moments of the
    binomial distribution; e.g. Johnson, Kemp & Kotz, *Univariate Discrete Distributions*, §3.3).

    Raises
    ------
    ValueError
        If m > K-1: then no unbiased table exists, since every table's mean is a polynomial of
        degree <= K-1 (docs/MATH.md §1).
    """
    m = _check_m(m)
    K = as_K(K)
    if m > K - 1:
        raise ValueError(
            f"no unbiased table exists for p^m with K samples: m={m}, K={K} (need m <= K-1)"
        )
    den = math.perm(K - 1, m)  # (K-1)_m
    return [Fraction(math.perm(n - 1, m), den) for n in range(1, K + 1)]


def poly_table_exact(coeffs, K: int) -> list[Fraction]:
    """The exactly unbiased table for the polynomial reward sum_i coeffs[i] p^i.

    Parameters
    ----------
    coeffs : sequence of str, int or Fraction
        Monomial coefficients, low -> high degree, given exactly (``"1/3"``, ``2``,
        ``Fraction(1, 3)``; floats are refused).  Trailing zeros are allowed.
    K : int
        Batch size.

    Returns
    -------
    list of Fraction
        c_K[n] = sum_i a_i (n-1)_i/(K-1)_i, n = 1..K (linearity of the U-statistic tables).

    Raises
    ------
    ValueError
        If the degree (highest non-zero coefficient) exceeds K-1.
    """
    K = as_K(K)
    a = _parse_coeffs(coeffs)
    d = _degree(a)
    if d > K - 1:
        raise ValueError(
            f"no unbiased table exists for a polynomial of degree {d} with K samples: "
            f"degree={d}, K={K} (need degree <= K-1)"
        )
    return _table_from_weights(K, _falling_weights(K, d, a))


def to_float64(fractions: Iterable) -> np.ndarray:
    """Correctly rounded float64 values of exact rationals.

    ``float(Fraction(a, b))`` is correctly rounded (round-half-even) in CPython: it computes
    ``a / b`` with ``int.__truediv__``, which CPython implements as a correctly rounded integer
    division (Objects/longobject.c, ``long_true_divide``).

    Raises
    ------
    OverflowError
        If a value is outside the float64 range.
    """
    return np.array([float(_exact_value(f, "value")) for f in fractions], dtype=np.float64)


# ----------------------------------------------------------------------------- verification
def _common_denominator(values: Sequence[Fraction]) -> tuple[list[int], int]:
    D = math.lcm(*(v.denominator for v in values)) if values else 1
    return [v.numerator * (D // v.denominator) for v in values], D


def _differences_at_zero(N: Sequence[int]) -> list[int]:
    """Forward differences Δ^j N[0], j = 0..len(N)-1, in exact integer arithmetic."""
    arr = np.array(list(N), dtype=object)
    out = [int(arr[0])] if len(arr) else []
    while len(arr) > 1:
        arr = arr[1:] - arr[:-1]
        out.append(int(arr[0]))
    return out


def _mean_poly_scaled(values, K: int) -> tuple[list[int], int]:
    """Integers A_j and denominator D with g_c(p) = sum_j (A_j / D) p^j (not reduced)."""
    K = as_K(K)
    vals = [_exact_value(v, f"values[{i}]") for i, v in enumerate(values)]
    if len(vals) != K:
        raise ValueError(f"values must have K={K} entries, received {len(vals)}")
    N, D = _common_denominator(vals)
    diffs = _differences_at_zero(N)
    A = []
    binom = 1  # C(K-1, j)
    for j, dj in enumerate(diffs):
        A.append(binom * dj)
        binom = binom * (K - 1 - j) // (j + 1)
    return A, D


def mean_poly_exact(values, K: int) -> list[Fraction]:
    """Monomial coefficients (low -> high, exact) of the mean polynomial of a table.

    .. math::

        g_c(p) = \\sum_{m=0}^{K-1} c[m+1] \\binom{K-1}{m} p^m (1-p)^{K-1-m}
               = \\sum_{j=0}^{K-1} \\binom{K-1}{j} (\\Delta^j c)[1] \\, p^j,

    the exact Bernstein -> monomial conversion (expand (1-p)^{K-1-m} by the binomial theorem and
    collect powers; Δ is the forward difference).  Computed with integers over a common
    denominator, O(K^2) big-integer subtractions.

    Parameters
    ----------
    values : sequence
        The K table values (Fraction, int, str such as "3/7", or float — converted exactly).
    K : int
        Batch size.

    Returns
    -------
    list of Fraction
        Length K.
    """
    A, D = _mean_poly_scaled(values, K)
    return [Fraction(a, D) for a in A]


def verify_exact(values, coeffs, K: int) -> bool:
    """True iff the table's mean polynomial equals sum_i coeffs[i] p^i exactly.

    Values are read exactly (floats too, so a float64 table can be checked for exactness).
    The comparison is done in integers: D·a_j == A_j for every j (a_j = 0 beyond the target's
    length), with g_c(p) = sum_j (A_j/D) p^j from :func:`mean_poly_exact`.
    """
    a = _parse_coeffs(coeffs)
    A, D = _mean_poly_scaled(values, K)
    if _degree(a) > len(A) - 1:
        return False
    for j, Aj in enumerate(A):
        t = a[j] if j < len(a) else Fraction(0)
        if t.numerator * D != Aj * t.denominator:
            return False
    return True


def _round_up(x: Fraction) -> float:
    """The smallest float64 >= x (x >= 0)."""
    f = float(x)
    if Fraction(f) < x:
        f = float(np.nextafter(f, np.inf))
    return f


def _hp_string(x: Fraction) -> str:
    return f"{x.numerator}/{x.denominator}"


# ----------------------------------------------------------------------------- generator
def build_K(K: int, params: Mapping) -> KResult:
    """Build the exact table row for batch size K (generator interface).

    Parameters
    ----------
    K : int
        Batch size.
    params : mapping
        ``{"m": int}`` (target p^m) or ``{"coeffs": ["a0", "a1", ...]}`` (target sum_i a_i p^i).

    Returns
    -------
    KResult
        ``values`` = correctly rounded float64; ``values_hp`` = the exact rationals as
        ``"a/b"`` strings; metrics ``exact`` (1.0: the rational table's mean polynomial was
        verified equal to the target in exact arithmetic), ``err_f64`` (max_n |float − exact|,
        rounded up; bounds sup_p |g_float(p) − target(p)| since the Bernstein weights are
        non-negative and sum to 1), ``max_abs_c``, ``V_inf`` and ``V1`` (exact rational rounded
        to float64) from ``aqpgen.numerics.metrics`` (``variance_sup``, ``variance_mean``).

    Raises
    ------
    ValueError
        For m > K-1 (or degree > K-1) and malformed params.
    """
    K = as_K(K)
    coeffs = target_coeffs(params)
    if set(params) == {"m"}:
        table = ustat_table_exact(int(params["m"]), K)
    else:
        table = poly_table_exact(coeffs, K)
    if not verify_exact(table, coeffs, K):  # pragma: no cover - would be a bug in the algebra
        raise AssertionError(f"exact verification failed for K={K}, params={dict(params)!r}")
    values = to_float64(table)
    err = max((abs(Fraction(float(v)) - c) for v, c in zip(values, table)), default=Fraction(0))
    metrics = {
        "exact": 1.0,
        "err_f64": _round_up(err),
        "max_abs_c": float(np.max(np.abs(values))),
    }
    strings = tuple(_hp_string(c) for c in table)
    metrics["V_inf"] = variance_sup(values, K)
    metrics["V1"] = variance_mean(values, K, values_hp=strings)
    return KResult(
        K=K,
        values=values,
        values_hp=strings,
        metrics=metrics,
        status="ok",
        solver={"method": "ustat", "arithmetic": "exact rational", "target": target_name(params)},
    )


def verify_row(K, values, values_hp, metrics, params) -> list[Check]:
    """Re-verify one stored row from its values alone (generator interface).

    Checks
    ------
    ``power.values_hp``  -- the stored rationals equal the re-derived exact table.
    ``power.float64``    -- the stored float64 values are the correctly rounded rationals.
    ``power.unbiased``   -- the stored rationals' mean polynomial equals the target, exactly
                            (Bernstein -> monomial conversion in integers; independent of the
                            falling-factorial construction).
    ``power.err_f64``    -- the stored ``err_f64`` metric is >= the actual max rounding error.
    """
    K = as_K(K)
    checks: list[Check] = []
    try:
        coeffs = target_coeffs(params)
        expected = (ustat_table_exact(int(params["m"]), K) if set(params) == {"m"}
                    else poly_table_exact(coeffs, K))
    except (ValueError, TypeError) as exc:
        return [Check("power.params", False, f"cannot re-derive the table: {exc}", K)]

    stored: list[Fraction] | None = None
    if values_hp is None:
        checks.append(Check("power.values_hp", False, "no exact values stored (values_hp missing)", K))
    else:
        try:
            stored = [_exact_value(s, f"values_hp[{i}]") for i, s in enumerate(values_hp)]
        except (ValueError, TypeError) as exc:
            checks.append(Check("power.values_hp", False, f"unparsable: {exc}", K))
        else:
            if len(stored) != K:
                checks.append(Check("power.values_hp", False,
                                    f"{len(stored)} exact values stored, expected K={K}", K))
                stored = None
            else:
                bad = [i for i, (s, e) in enumerate(zip(stored, expected)) if s != e]
                checks.append(Check(
                    "power.values_hp", not bad,
                    "stored rationals equal the exact table" if not bad else
                    f"{len(bad)} entries differ, first n={bad[0] + 1}: stored {stored[bad[0]]}, "
                    f"exact {expected[bad[0]]}", K))

    v = np.asarray(values, dtype=np.float64)
    want = to_float64(expected)
    if v.shape != (K,):
        checks.append(Check("power.float64", False, f"values shape {v.shape}, expected ({K},)", K))
    else:
        same = v.view(np.uint64) == want.view(np.uint64)
        i = int(np.argmin(same)) if not same.all() else -1
        checks.append(Check(
            "power.float64", bool(same.all()),
            "float64 values are the correctly rounded exact values" if i < 0 else
            f"n={i + 1}: stored {v[i]!r}, correctly rounded {want[i]!r}", K))

    if stored is not None:
        ok = verify_exact(stored, coeffs, K)
        checks.append(Check(
            "power.unbiased", ok,
            f"mean polynomial == {target_name(params)} exactly" if ok else
            f"mean polynomial of the stored rationals differs from {target_name(params)}", K))

    if metrics is not None and "err_f64" in metrics and v.shape == (K,) and np.all(np.isfinite(v)):
        err = max(abs(Fraction(float(x)) - c) for x, c in zip(v, expected))
        claimed = float(metrics["err_f64"])
        ok = Fraction(claimed) >= err if math.isfinite(claimed) else False
        checks.append(Check("power.err_f64", ok,
                            f"claimed {claimed!r}, actual max rounding error {float(err)!r}", K))
    return checks
