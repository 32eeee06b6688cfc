"""Small shared records and conventions used by every generator.

Public names
------------
as_int(x, name, *, minimum=None) -- the one validation of an integer argument (K, jobs, m, ...).
as_K(K, name="K", minimum=1) -- a batch size: ``as_int`` with minimum 1.
TableInput(table, metric) -- a generator's declared input: a metric of another table's row K.
STATUS_OK          -- "ok": the status of a usable result; anything else is the reason why not.
standard_Ks(kmin)  -- the standard K grid of docs/MATH.md §9 (every K from kmin to 256, then 320..1024).
KResult            -- what a generator returns for one K (values, optional high-precision
                      strings, metrics, status, solver info).

Conventions (used everywhere in aqpgen)
---------------------------------------
* Counts are self-inclusive: n in 1..K, n-1 ~ Binomial(K-1, p).
* A table for batch size K is c_K[1..K], stored 0-based as ``values[n-1]``.
* Mean polynomial g_c(p) = sum_{m=0}^{K-1} c[m+1] b_{K-1,m}(p).
* Weighted error quantities carry the factor p (docs/MATH.md §1): beta, V_inf, V1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["STANDARD_TAIL", "STATUS_OK", "Check", "KResult", "TableInput", "as_K", "as_int", "standard_Ks"]

#: the status of a usable result; any other status string is a human-readable reason why the
#: result is not usable.  Used by KResult.status (table rows), AQPResult.status,
#: MinimaxResult.status and Certificate.status (their boolean ``converged`` is status == "ok"),
#: and the compare rows.
STATUS_OK = "ok"


def as_int(x, name: str, *, minimum: int | None = None) -> int:
    """Validate an integer argument (K, jobs, maxiter, m, n, ...) and return it as ``int``.

    ``int`` and ``numpy.integer`` are accepted; bools, floats (``2.0`` too: a float count is a
    caller's mistake somewhere), strings and anything else raise ``TypeError``; a value below
    ``minimum`` (when given) raises ``ValueError``.  Both messages name the argument and the value.
    """
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, received {x!r}")
    x = int(x)
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, received {x}")
    return x


def as_K(K, name: str = "K", minimum: int = 1) -> int:
    """A batch size (or any count >= ``minimum``): ``as_int(K, name, minimum=minimum)``."""
    return as_int(K, name, minimum=minimum)


@dataclass(frozen=True)
class TableInput:
    """A declared input of a generator: the metric ``metric`` of the row K of the table ``table``
    (built from the same spec into the same directory), passed to ``build_K(K, params,
    inputs={key: value})``.  The build resolves it, orders the tables by it and hashes the input
    table's content into the dependent table's ``inputs_hash`` (docs/ARCHITECTURE.md)."""

    table: str
    metric: str


#: K values beyond 256 in the standard grid (docs/MATH.md §9).
STANDARD_TAIL = (320, 384, 448, 512, 640, 768, 896, 1024)


def standard_Ks(kmin: int) -> tuple[int, ...]:
    """The standard K grid: every K from ``kmin`` to 256, then 320, 384, ..., 1024."""
    kmin = as_K(kmin, "kmin")
    return tuple(range(kmin, 257)) + tuple(k for k in STANDARD_TAIL if k >= kmin)


@dataclass(frozen=True)
class KResult:
    """The result of building one table row (one K).

    Attributes
    ----------
    K : int
        Batch size.
    values : numpy.ndarray
        float64 array of length K, ``values[n-1] = c_K[n]`` (correctly rounded from the
        exact / high-precision value when one exists).
    values_hp : tuple of str or None
        Decimal strings of the exact or high-precision values, when the solve was done in
        high precision (minimax).  None when float64 is the exact value (e.g. AQP solves).
    metrics : Mapping[str, float]
        Named float metrics; the names in docs/ARCHITECTURE.md ("Metric names").  NaN is allowed
        only for a metric that does not apply (e.g. ``E_star`` for a power table).
    status : str
        "ok", or a human-readable reason why this K is infeasible / out of reach.  A row whose
        status is not "ok" still has ``values`` (all NaN) so the file records it; the runtime
        refuses to serve it.
    solver : Mapping[str, object]
        Provenance of the solve: solver name and status, working precision (bits), iterations.
        JSON-serialisable; must be deterministic (no timings).
    """

    K: int
    values: np.ndarray
    values_hp: tuple[str, ...] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    status: str = "ok"
    solver: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64)
        if v.shape != (self.K,):
            raise ValueError(f"values for K={self.K} must have shape ({self.K},), got {v.shape}")
        object.__setattr__(self, "values", v)
        if self.values_hp is not None and len(self.values_hp) != self.K:
            raise ValueError(f"values_hp for K={self.K} must have {self.K} entries")


@dataclass(frozen=True)
class Check:
    """One verification outcome: ``name`` of the check, ``ok``, a human ``detail`` with the
    numbers, and the ``K`` it concerns (None for file-level checks)."""

    name: str
    ok: bool
    detail: str = ""
    K: int | None = None
