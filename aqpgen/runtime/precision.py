"""The runtime's precision guard: is a row still within its certificate once rounded to the
served dtype?

A row is certified for the values it was certified with (``beta_cert``: a rigorous upper bound
on its weighted bias β = sup_p p·|E c_K[n] − g(p)|; rows verified exactly unbiased have
certificate 0).  What is served is a rounding of those values to the output dtype.  Because the
Bernstein weights of E c_K[n] sum to 1 and p <= 1,

    β(served) <= β(certified values) + max_n |c_exact[n] − c_served[n]|,

where c_exact are the high-precision values when the file has them, else the float64 values.
:meth:`Table.precision` computes this bound in O(K) per row, using the stored ``beta_f64``
(a certified β of the float64 rounding) or ``err_f64`` (exact rows) where present.  A row is
served only if ``bound <= (1 + PRECISION_SLACK) * certificate + u``, u being the unit roundoff of
the served dtype (2^-53 float64, 2^-24 float32, 2^-11 float16, 2^-8 bfloat16): u bounds the
weighted error of rounding the exact target itself (sup_p p·|g(p)| <= 1 for log p and p^a,
a > -1), so no dtype can do better.  Otherwise ``lookup`` raises :class:`ImpreciseRowError`
naming K, the bound and the certificate; ``allow_imprecise=True`` serves it anyway.  Example:
the float64 minimax rows for log p lose their certificate from K = 49 on (β of the float64 table
is 1e16 at K = 128) and in float32 from K = 17 on.  Rows whose file stores no certificate at
all (neither ``beta_cert`` nor ``exact``) are served unguarded (``precision(K).certified`` is
False).  ``values(K)`` returns the stored float64 values unguarded (it is the file's content,
used by the audit); serve rewards through ``lookup``.

Public names
------------
PRECISION_SLACK, RowPrecision, ImpreciseRowError, dtype_name(dtype), row_precision(...).
Imports only numpy (``decimal`` for rows whose exact values are decimal strings).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

__all__ = ["PRECISION_SLACK", "ImpreciseRowError", "RowPrecision", "dtype_name", "needs_hp",
           "row_precision"]

#: Relative slack of the precision guard: the served row may exceed its certificate by 1%.
PRECISION_SLACK = 0.01

#: Unit roundoff of the served dtypes (round to nearest).
_UNIT_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11,
                  "bfloat16": 2.0 ** -8}
_FINITE_MAX = {"float64": float(np.finfo(np.float64).max), "float32": float(np.finfo(np.float32).max),
               "float16": 65504.0, "bfloat16": 3.3895313892515355e38}


class ImpreciseRowError(ValueError):
    """The served rounding of a row breaks the row's certified bias bound (see ``Table.precision``)."""


class RowPrecision(NamedTuple):
    """The precision guard's verdict for row K served in ``dtype``.

    K : int
    dtype : str -- ``"float64"``, ``"float32"``, ``"float16"`` or ``"bfloat16"``.
    certified : bool -- the file stores a certificate for this row (``beta_cert`` or ``exact``).
    certificate : float -- certified β of the row's values (0 for exact rows; NaN if uncertified).
    bound : float -- rigorous upper bound on β of the served rounding (inf on overflow; NaN if
        uncertified).
    allowed : float -- ``(1 + PRECISION_SLACK) * certificate + u`` (u: unit roundoff of dtype).
    ok : bool -- ``bound <= allowed`` (True for uncertified rows: nothing to compare against).
    how : str -- how ``bound`` was obtained (which stored metric, which rounding term).
    """

    K: int
    dtype: str
    certified: bool
    certificate: float
    bound: float
    allowed: float
    ok: bool
    how: str


def dtype_name(dtype) -> str:
    """Normalise a numpy / torch / jax float dtype (or None = float64) to a name."""
    if dtype is None:
        return "float64"
    s = str(dtype).rsplit(".", 1)[-1]
    if s in _UNIT_ROUNDOFF:
        return s
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a floating dtype, received {dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, received {dtype!r}")
    return dt.name if dt.name in _UNIT_ROUNDOFF else "float64"  # longdouble holds float64 exactly


def _finite(x) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _hp_distance(values: np.ndarray, values_hp) -> float:
    """Upper bound on max_n |values_hp[n] - values[n]| (exact decimal arithmetic, rounded up)."""
    worst = decimal.Decimal(0)
    with decimal.localcontext() as ctx:
        ctx.prec = 4000  # exact for float64 (<= 767 significant digits) against stored strings
        ctx.Emax, ctx.Emin = decimal.MAX_EMAX, decimal.MIN_EMIN
        for s, v in zip(values_hp, values.tolist()):
            d = abs(decimal.Decimal(s) - decimal.Decimal(v))
            worst = max(worst, d)
    return math.nextafter(float(worst), math.inf)


def _rounding_distance(values: np.ndarray, dtype: str) -> float:
    """max_n |values[n] - round_dtype(values[n])| (rigorous; inf when a value overflows)."""
    if dtype == "float64" or values.size == 0:
        return 0.0
    big = float(np.max(np.abs(values)))
    if big > _FINITE_MAX[dtype]:
        return math.inf
    with np.errstate(over="ignore"):
        if dtype == "bfloat16":
            r = _round_bfloat16(values.astype(np.float32)).astype(np.float64)
        else:
            r = values.astype(dtype).astype(np.float64)
        d = float(np.max(np.abs(values - r)))  # exact: the difference is representable
    return math.inf if not math.isfinite(d) else d


def _round_bfloat16(x32: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (ties to even), as float32.  Rounding float64 -> float32 ->
    bfloat16 is never closer than rounding float64 -> bfloat16 directly, so the distance computed
    through it is an upper bound whichever way a framework converts."""
    bits = x32.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.astype(np.uint32).view(np.float32)


def needs_hp(metrics: Mapping) -> bool:
    """Whether :func:`row_precision` reads the row's high-precision strings (only when no stored
    metric bounds the float64 rounding: no ``beta_f64``, and not an exact row with ``err_f64``),
    so a loaded table keeps them only for such rows."""
    if _finite(metrics.get("beta_f64")) is not None:
        return False
    exact = _finite(metrics.get("beta_cert")) is None and _finite(metrics.get("exact")) == 1.0
    return not (exact and _finite(metrics.get("err_f64")) is not None)


def row_precision(K: int, dtype: str, metrics: Mapping, values: np.ndarray, values_hp=None) -> RowPrecision:
    """The guard's verdict for row K (stored ``metrics``, float64 ``values``, optional ``values_hp``)
    served in ``dtype`` (a name from :func:`dtype_name`): see the module docstring.  O(K)."""
    m = metrics
    u = _UNIT_ROUNDOFF[dtype]
    cert = _finite(m.get("beta_cert"))
    how = "beta_cert"
    if cert is None and _finite(m.get("exact")) == 1.0:
        cert, how = 0.0, "exact (certificate 0)"
    if cert is None:
        nan = math.nan
        return RowPrecision(K, dtype, False, nan, nan, nan, True,
                            "no certificate stored (neither beta_cert nor exact): not guarded")
    b64, e64 = _finite(m.get("beta_f64")), _finite(m.get("err_f64"))
    if b64 is not None:
        bound64, how64 = b64, "stored beta_f64 (certified beta of the float64 values)"
    elif cert == 0.0 and e64 is not None:
        bound64, how64 = e64, "stored err_f64 (float64 rounding of an exact row)"
    elif values_hp is None:
        bound64, how64 = cert, f"{how} (the float64 values are the certified ones)"
    else:
        bound64 = cert + _hp_distance(values, values_hp)
        how64 = f"{how} + max|c_hp - c_f64|"
    d = _rounding_distance(values, dtype)
    bound = math.nextafter(bound64 + d, math.inf) if d else bound64
    how_all = how64 if not d else f"{how64} + max|c_f64 - {dtype}(c)| = {d:.3g}"
    allowed = (1.0 + PRECISION_SLACK) * cert + u
    return RowPrecision(K, dtype, True, cert, bound, allowed, bool(bound <= allowed), how_all)
