"""Row-by-row comparison of two builds of a table: which values, metrics and solver records moved.

Public names
------------
diff_tables(a, b)       -- TableDiff of two table files (or TableData), matched by K.
TableDiff               -- the differences: ``values`` / ``metrics`` per K with the largest
                           relative difference, solver records, statuses, K present in one only;
                           ``identical`` (every compared row equal), ``summary()`` (one line per
                           kind of difference: what ``aqpgen verify --against`` prints).
rel_diff(x, y)          -- elementwise |x - y| / max(|x|, |y|) (0 where equal, inf / nan aware).

"Values differ" and "metrics differ in the last bits" are different verdicts: the first changes
the rewards a trainer is served, the second changes a number quoted about them.  ``summary``
says which, with the K and the size (relative difference; 1.1e-16 is one float64 ulp).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from aqpgen.store.content import TableData
from aqpgen.store.tablefile import read_table

__all__ = ["TableDiff", "diff_tables", "rel_diff"]


def rel_diff(x, y) -> np.ndarray:
    """|x - y| / max(|x|, |y|) elementwise; 0 where x == y (inf == inf, nan == nan), inf where
    exactly one is non-finite."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.maximum(np.abs(x), np.abs(y))
        r = np.abs(x - y) / np.where(scale > 0, scale, 1.0)
    r = np.where(np.isfinite(r), r, np.inf)
    return np.where(same, 0.0, r)


@dataclass
class TableDiff:
    """Differences between two builds of one table (a: reference, b: the other)."""

    name: str
    compared: int = 0
    only_a: list = field(default_factory=list)
    only_b: list = field(default_factory=list)
    values: dict = field(default_factory=dict)  # K -> max relative difference of the values
    values_hp: list = field(default_factory=list)  # K whose high-precision strings differ
    metrics: dict = field(default_factory=dict)  # metric name -> {K: relative difference}
    solver: list = field(default_factory=list)  # K whose solver records differ
    status: list = field(default_factory=list)  # K whose status differs

    @property
    def identical(self) -> bool:
        """Every row present in both compares equal (values, strings, metrics, solver, status)."""
        return not (self.values or self.values_hp or self.metrics or self.solver or self.status)

    @property
    def values_identical(self) -> bool:
        return not (self.values or self.values_hp or self.status)

    def summary(self) -> list[str]:
        """Human-readable lines, most important first."""
        n = self.compared
        out = []
        if self.status:
            out.append(f"status differs at {len(self.status)} of {n} K ({_ks(self.status)})")
        if self.values:
            worst = max(self.values.values())
            out.append(f"VALUES differ at {len(self.values)} of {n} K ({_ks(self.values)}; max "
                       f"relative difference {worst:.2g}): the served rewards change")
        elif self.values_hp:
            out.append(f"values identical; the high-precision strings differ at "
                       f"{len(self.values_hp)} of {n} K ({_ks(self.values_hp)})")
        else:
            out.append(f"values identical at all {n} K")
        for name in sorted(self.metrics):
            d = self.metrics[name]
            worst = max(d.values())
            kind = "in the last bits" if worst < 1e-13 else "by more than rounding"
            out.append(f"metric {name} differs {kind} at {len(d)} of {n} K ({_ks(d)}; max "
                       f"relative difference {worst:.2g})")
        if self.solver:
            out.append(f"solver records differ at {len(self.solver)} of {n} K ({_ks(self.solver)})")
        if self.only_a or self.only_b:
            out.append(f"K only in the reference: {_ks(self.only_a) or 'none'}; only in the "
                       f"other: {_ks(self.only_b) or 'none'}")
        return out


def _ks(ks) -> str:
    ks = sorted(int(k) for k in ks)
    if len(ks) <= 6:
        return ", ".join(map(str, ks))
    return ", ".join(map(str, ks[:3])) + f", ..., {ks[-1]}"


def _table(t) -> TableData:
    return t if isinstance(t, TableData) else read_table(os.fspath(t), check_hash=False)


def diff_tables(a, b) -> TableDiff:
    """Compare two builds of a table row by row (rows matched by K).

    Parameters
    ----------
    a, b : path-like or TableData
        The reference (e.g. the committed file) and the other build.
    """
    ta, tb = _table(a), _table(b)
    d = TableDiff(ta.name)
    ka, kb = set(ta.Ks), set(tb.Ks)
    d.only_a, d.only_b = sorted(ka - kb), sorted(kb - ka)
    for K in sorted(ka & kb):
        ra, rb = ta.rows[K], tb.rows[K]
        d.compared += 1
        if ra.status != rb.status:
            d.status.append(K)
        r = rel_diff(ra.values, rb.values)
        if np.any(r > 0):
            d.values[K] = float(np.max(r))
        if ra.values_hp != rb.values_hp:
            d.values_hp.append(K)
        for m in sorted(set(ra.metrics) | set(rb.metrics)):
            x, y = ra.metrics.get(m, math.nan), rb.metrics.get(m, math.nan)
            if m not in ra.metrics or m not in rb.metrics:
                d.metrics.setdefault(m, {})[K] = math.inf
                continue
            rd = float(rel_diff(x, y))
            if rd > 0:
                d.metrics.setdefault(m, {})[K] = rd
        if ra.solver != rb.solver:
            d.solver.append(K)
    return d
