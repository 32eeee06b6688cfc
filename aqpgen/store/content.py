"""Table content in memory and its canonical serialisation: the records and the content hash.

Public names
------------
SCHEMA, SCHEMA_VERSION -- schema name ``"aqpgen.table"`` and the version this code writes.
Row                    -- one table row (one K): values, values_hp, metrics, status, solver.
TableData              -- a whole table in memory (frozen); ``.values(K)``, ``.row(K)``.
make_table(...)        -- assemble a TableData from per-K ``KResult`` records.
canonical_json(obj)    -- the canonical JSON used for params, provenance, solver, hashes.
RawTable, to_raw(t)    -- the exact stored form of a table (what the HDF5 file holds).
section_hashes(raw), combine_sections(sections) -- per-section sha256 and the content hash.
content_hash(table)    -- sha256 (hex) of the canonical serialisation of a table.
file_sha256(path)      -- sha256 (hex) of a file's bytes.
f8_canonical(a)        -- float64 little-endian copy, every NaN the canonical quiet NaN.

The content hash is defined in ``aqpgen.store.tablefile`` (module docstring, "Content hash").
The HDF5 reading and writing live in ``aqpgen.store.tablefile``, which re-exports these names.

Standard library and numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "RawTable",
    "Row",
    "TableData",
    "canonical_json",
    "combine_sections",
    "content_hash",
    "f8_canonical",
    "file_sha256",
    "make_table",
    "section_hashes",
    "to_raw",
]

SCHEMA = "aqpgen.table"
SCHEMA_VERSION = 1
_CANON_NAN = np.float64(np.nan)

# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------


class Row(NamedTuple):
    """One table row (one K).

    values : float64 ndarray (K,), ``values[n-1] = c_K[n]``.
    values_hp : tuple of str or None -- exact / high-precision decimal strings.
    metrics : dict[str, float] -- named metrics (docs/ARCHITECTURE.md), NaN = not applicable.
    status : str -- ``"ok"`` or why the row is unavailable (values are then NaN).
    solver : dict -- JSON-serialisable solver provenance (name, status, precision, iterations).
    """

    values: np.ndarray
    values_hp: tuple[str, ...] | None
    metrics: dict[str, float]
    status: str
    solver: dict


@dataclass(frozen=True, eq=False)
class TableData:
    """A table file's content in memory.

    Attributes
    ----------
    name, family, target, method : str
        Table name (file stem), family (``"power"``, ``"kl"``), human target (``"log p"``,
        ``"p^2"``) and method (``"ustat"``, ``"minimax"``, ``"aqp"``).
    params : dict
        Generator parameters (JSON-serialisable; rationals as strings).
    provenance : dict
        aqpgen version, git commit, command, generator version (JSON-serialisable).
    Ks : tuple of int
        Sorted K values; ``rows`` has exactly these keys.
    rows : dict[int, Row]
        Per-K rows (a ``Row`` or any 5-tuple ``(values, values_hp, metrics, status, solver)``).
    inputs_hash : str
        sha256 of the build inputs (see ``aqpgen.build.build.inputs_hash``); ``""`` if unknown.
    content_hash : str or None
        Content hash; None before the table is written (``write_table`` computes it).
    """

    name: str
    family: str
    target: str
    method: str
    params: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    Ks: tuple = ()
    rows: dict = field(default_factory=dict)
    inputs_hash: str = ""
    content_hash: str | None = None

    def __post_init__(self) -> None:
        for attr in ("name", "family", "target", "method", "inputs_hash"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"TableData.{attr} must be a str, received {getattr(self, attr)!r}")
        Ks = tuple(int(k) for k in self.Ks)
        if list(Ks) != sorted(set(Ks)):
            raise ValueError(f"TableData.Ks must be strictly increasing, received {Ks!r}")
        if any(k < 1 for k in Ks):
            raise ValueError(f"TableData.Ks must be positive, received {Ks!r}")
        if set(self.rows) != set(Ks):
            missing = sorted(set(Ks) - set(self.rows))
            extra = sorted(set(self.rows) - set(Ks))
            raise ValueError(f"TableData.rows keys must equal Ks (missing {missing}, extra {extra})")
        rows = {}
        for K in Ks:
            r = self.rows[K]
            if not isinstance(r, Row):
                r = Row(*r)
            v = np.asarray(r.values, dtype=np.float64)
            if v.shape != (K,):
                raise ValueError(f"row K={K}: values must have shape ({K},), got {v.shape}")
            hp = None if r.values_hp is None else tuple(str(s) for s in r.values_hp)
            if hp is not None and len(hp) != K:
                raise ValueError(f"row K={K}: values_hp must have {K} entries, got {len(hp)}")
            metrics = {str(k): float(x) for k, x in dict(r.metrics).items()}
            rows[K] = Row(v, hp, metrics, str(r.status), dict(r.solver))
        object.__setattr__(self, "Ks", Ks)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "params", dict(self.params))
        object.__setattr__(self, "provenance", dict(self.provenance))

    # convenience -----------------------------------------------------------------------
    def row(self, K: int) -> Row:
        """The row for batch size ``K`` (KeyError naming the available range if absent)."""
        try:
            return self.rows[int(K)]
        except KeyError:
            raise KeyError(f"K={K} is not in table {self.name!r} (Ks {_describe_Ks(self.Ks)})") from None

    def values(self, K: int) -> np.ndarray:
        """float64 array ``c_K[1..K]`` (0-based: ``values(K)[n-1] = c_K[n]``)."""
        return self.row(K).values

    def metrics(self, K: int) -> dict[str, float]:
        """The metrics dict of row ``K``."""
        return self.row(K).metrics

    def status(self, K: int) -> str:
        """``"ok"`` or the reason row ``K`` is unavailable."""
        return self.row(K).status

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Sorted union of the metric names over all rows (the ``metrics`` fields)."""
        return tuple(sorted({k for r in self.rows.values() for k in r.metrics}))

    @property
    def has_hp(self) -> bool:
        """True when at least one row carries high-precision decimal strings."""
        return any(r.values_hp is not None for r in self.rows.values())


def make_table(
    *,
    name: str,
    family: str,
    target: str,
    method: str,
    params: Mapping,
    provenance: Mapping,
    results: Iterable,
    inputs_hash: str = "",
) -> TableData:
    """Assemble a TableData from ``KResult`` records (any order; sorted by K here)."""
    results = sorted(results, key=lambda r: int(r.K))
    Ks = tuple(int(r.K) for r in results)
    if len(set(Ks)) != len(Ks):
        raise ValueError(f"duplicate K in results: {Ks!r}")
    rows = {
        int(r.K): Row(r.values, r.values_hp, dict(r.metrics), r.status, dict(r.solver))
        for r in results
    }
    return TableData(
        name=name, family=family, target=target, method=method, params=dict(params),
        provenance=dict(provenance), Ks=Ks, rows=rows, inputs_hash=inputs_hash,
    )


def _describe_Ks(Ks: tuple) -> str:
    if not Ks:
        return "none"
    if len(Ks) <= 6:
        return ", ".join(map(str, Ks))
    return f"{Ks[0]}..{Ks[-1]}, {len(Ks)} values"


# --------------------------------------------------------------------------------------------
# canonical serialisation and hashing
# --------------------------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, ASCII only (non-finite floats as NaN/Infinity)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def f8_canonical(a) -> np.ndarray:
    """float64 little-endian copy with every NaN replaced by the canonical quiet NaN."""
    a = np.array(a, dtype="<f8", copy=True)
    a[np.isnan(a)] = _CANON_NAN
    return a


class RawTable(NamedTuple):
    """The exact stored form of a table (what goes into / comes out of the HDF5 file)."""

    attrs: dict  # name -> str | int (without content_hash / content_sections)
    K: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    values_hp: list | None  # list of str or None
    metric_names: tuple
    metrics: np.ndarray  # float64 (nK, nmetrics)
    status: list
    solver: list


def to_raw(t: TableData) -> RawTable:
    Ks = np.asarray(t.Ks, dtype="<i8")
    offsets = np.zeros(len(Ks) + 1, dtype="<i8")
    offsets[1:] = np.cumsum(Ks)
    values = f8_canonical(np.concatenate([t.rows[K].values for K in t.Ks]) if t.Ks else np.zeros(0))
    hp = None
    if t.has_hp:
        hp = []
        for K in t.Ks:
            r = t.rows[K]
            hp.extend(r.values_hp if r.values_hp is not None else [""] * K)
        for s in hp:
            if not s.isascii():
                raise ValueError(f"values_hp entries must be ASCII decimal strings, received {s!r}")
    names = t.metric_names
    metrics = np.full((len(Ks), len(names)), np.nan)
    for i, K in enumerate(t.Ks):
        m = t.rows[K].metrics
        for j, nm in enumerate(names):
            if nm in m:
                metrics[i, j] = m[nm]
    metrics = f8_canonical(metrics)
    status = [t.rows[K].status for K in t.Ks]
    solver = [canonical_json(t.rows[K].solver) for K in t.Ks]
    for s in status:
        if not s.isascii():
            raise ValueError(f"status strings must be ASCII, received {s!r}")
    attrs = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "name": t.name,
        "family": t.family,
        "target": t.target,
        "method": t.method,
        "params": canonical_json(t.params),
        "provenance": canonical_json(t.provenance),
        "inputs_hash": t.inputs_hash,
    }
    return RawTable(attrs, Ks, offsets, values, hp, names, metrics, status, solver)


def section_hashes(raw: RawTable) -> dict[str, str]:
    def num(name: str, arr: np.ndarray, extra: str = "") -> str:
        arr = np.ascontiguousarray(arr)
        h = hashlib.sha256(f"{name} {arr.dtype.str} {list(arr.shape)}{extra}\n".encode())
        h.update(arr.tobytes())
        return h.hexdigest()

    def strs(name: str, items: list) -> str:
        return hashlib.sha256(f"{name} str [{len(items)}]\n{canonical_json(list(items))}".encode()).hexdigest()

    sections = {
        "attrs": hashlib.sha256(("attrs\n" + canonical_json(raw.attrs)).encode()).hexdigest(),
        "K": num("K", raw.K.astype("<i8")),
        "offsets": num("offsets", raw.offsets.astype("<i8")),
        "values": num("values", f8_canonical(raw.values)),
        "metrics": num("metrics", f8_canonical(raw.metrics), " " + canonical_json(list(raw.metric_names))),
        "status": strs("status", raw.status),
        "solver": strs("solver", raw.solver),
    }
    if raw.values_hp is not None:
        sections["values_hp"] = strs("values_hp", raw.values_hp)
    return sections


def combine_sections(sections: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical_json(dict(sections)).encode()).hexdigest()


def content_hash(table: TableData) -> str:
    """sha256 (hex) of the canonical serialisation of ``table`` (see module docstring).

    Independent of the ``content_hash`` field and of the HDF5 byte layout.
    """
    return combine_sections(section_hashes(to_raw(table)))


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

