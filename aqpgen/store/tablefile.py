"""The table file format (HDF5, schema ``aqpgen.table`` version 1), hashing and the manifest.

Public names
------------
SCHEMA, SCHEMA_VERSION      -- schema name ``"aqpgen.table"`` and the version this code writes.
Row                         -- one table row (one K): values, values_hp, metrics, status, solver.
TableData                   -- a whole table in memory (frozen); ``.values(K)``, ``.row(K)``.
make_table(...)             -- assemble a TableData from per-K ``KResult`` records.
write_table(path, table)    -- write deterministically to a temp file, then ``os.replace``.
read_table(path)            -- read and check schema, structure and content hash.
content_hash(table)         -- sha256 (hex) of the canonical serialisation of a table.
canonical_json(obj)         -- the canonical JSON used for params, provenance, solver, hashes.
file_sha256(path)           -- sha256 (hex) of a file's bytes.
update_manifest(tables_dir) -- (re)write ``tables_dir/MANIFEST.json`` atomically.
check_manifest(path)        -- check a table file (or a whole directory) against its manifest.

File layout (flat: no groups; every dataset ``track_times=False``)
-----------------------------------------------------------------
Root attributes (fixed-length UTF-8 strings, except the integer ``schema_version``):
``schema``, ``schema_version``, ``name``, ``family``, ``target``, ``method``, ``params``
(canonical JSON), ``provenance`` (canonical JSON), ``inputs_hash``, ``content_sections``
(canonical JSON of per-section sha256, used to name what differs), ``content_hash``.

Datasets: ``K`` int64 (nK,) ascending; ``offsets`` int64 (nK+1,), the row of ``K[i]`` being
``values[offsets[i]:offsets[i+1]]`` (so ``values[offsets[i] + n - 1] = c_K[n]``, self-inclusive
count convention n in 1..K); ``values`` float64 (sum K,); optional ``values_hp`` fixed-length
ASCII decimal strings, same layout (empty string where a row has no high-precision values);
``metrics`` compound (nK,) of float64 fields in sorted name order (NaN = not applicable);
``status`` fixed-length ASCII (nK,), ``"ok"`` or the reason a row is unavailable; ``solver``
fixed-length ASCII (nK,), canonical JSON per row.

Content hash
------------
Each section (``attrs``, ``K``, ``offsets``, ``values``, ``values_hp``, ``metrics``, ``status``,
``solver``) is hashed on its own: sha256 over a header line ``"<section> <dtype> <shape>\\n"``
followed by little-endian bytes (numbers, NaN normalised to the canonical quiet NaN) or the
canonical JSON list of the strings.  ``attrs`` is the canonical JSON of every root attribute
except ``content_hash`` and ``content_sections``.  The content hash is the sha256 of the
canonical JSON ``{section: digest}``.  It does not depend on HDF5's byte layout, so it is stable
across h5py / HDF5 versions even where the file bytes are not.

Determinism
-----------
Files are created with ``libver=("earliest", "v110")`` (pinned object-header formats), no
groups, no time stamps, no chunking / compression / fill-value-only space, attributes and
datasets created in a fixed order.  With a fixed h5py/HDF5 build, the same TableData always
gives byte-identical files (checked by tests/test_tablefile.py).

This module imports only the standard library and numpy; h5py is imported lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from aqpgen.errors import TableFormatError

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Row",
    "TableData",
    "canonical_json",
    "check_manifest",
    "content_hash",
    "file_sha256",
    "make_table",
    "read_table",
    "update_manifest",
    "write_table",
]

SCHEMA = "aqpgen.table"
SCHEMA_VERSION = 1
MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = "aqpgen.manifest"
MANIFEST_VERSION = 1

#: h5py ``libver`` bounds used for every file (pins the on-disk object formats).
LIBVER = ("earliest", "v110")

_STR_ATTRS = ("schema", "name", "family", "target", "method", "params", "provenance", "inputs_hash")
_DATASETS_REQUIRED = ("K", "offsets", "values", "metrics", "status", "solver")
_HASH_EXCLUDED_ATTRS = ("content_hash", "content_sections")
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
        sha256 of the build inputs (see ``aqpgen.build.inputs_hash``); ``""`` if unknown.
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


def _f8(a) -> np.ndarray:
    """float64 little-endian copy with every NaN replaced by the canonical quiet NaN."""
    a = np.array(a, dtype="<f8", copy=True)
    a[np.isnan(a)] = _CANON_NAN
    return a


class _Raw(NamedTuple):
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


def _to_raw(t: TableData) -> _Raw:
    Ks = np.asarray(t.Ks, dtype="<i8")
    offsets = np.zeros(len(Ks) + 1, dtype="<i8")
    offsets[1:] = np.cumsum(Ks)
    values = _f8(np.concatenate([t.rows[K].values for K in t.Ks]) if t.Ks else np.zeros(0))
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
    metrics = _f8(metrics)
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
    return _Raw(attrs, Ks, offsets, values, hp, names, metrics, status, solver)


def _section_hashes(raw: _Raw) -> dict[str, str]:
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
        "values": num("values", _f8(raw.values)),
        "metrics": num("metrics", _f8(raw.metrics), " " + canonical_json(list(raw.metric_names))),
        "status": strs("status", raw.status),
        "solver": strs("solver", raw.solver),
    }
    if raw.values_hp is not None:
        sections["values_hp"] = strs("values_hp", raw.values_hp)
    return sections


def _combine(sections: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical_json(dict(sections)).encode()).hexdigest()


def content_hash(table: TableData) -> str:
    """sha256 (hex) of the canonical serialisation of ``table`` (see module docstring).

    Independent of the ``content_hash`` field and of the HDF5 byte layout.
    """
    return _combine(_section_hashes(_to_raw(table)))


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _str_attr(h5py, s: str):
    b = s.encode("utf-8")
    return np.array(b, dtype=h5py.string_dtype("utf-8", max(len(b), 1)))


def _fixed_ascii(items: list) -> np.ndarray:
    width = max([len(s) for s in items] + [1])
    return np.array([s.encode("ascii") for s in items], dtype=f"S{width}").reshape(len(items))


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success ``os.replace`` it onto ``path``,
    on any exception remove it (nothing partial is ever left behind)."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(path) + ".tmp-")
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_table(path: str | os.PathLike, table: TableData | None = None, **parts) -> TableData:
    """Write ``table`` to ``path`` deterministically and atomically.

    Parameters
    ----------
    path : path-like
        Destination ``.h5`` file (its directory is created if needed).
    table : TableData, optional
        The table; alternatively pass the TableData fields as keyword ``parts``.

    Returns
    -------
    TableData
        ``table`` with ``content_hash`` set to the freshly computed hash (any hash already in
        ``table`` is ignored: the hash is always recomputed from the data).

    Notes
    -----
    The file is written to a temporary file in the same directory and moved into place with
    ``os.replace``; on any exception the temporary file is removed and ``path`` is untouched.
    """
    import h5py

    if table is None:
        table = TableData(**parts)
    elif parts:
        raise TypeError("write_table: pass either a TableData or keyword parts, not both")
    if not isinstance(table, TableData):
        raise TypeError(f"write_table: table must be a TableData, received {type(table).__name__}")
    raw = _to_raw(table)
    sections = _section_hashes(raw)
    chash = _combine(sections)
    with _atomic_path(path) as tmp, h5py.File(tmp, "w", libver=LIBVER, track_order=False) as f:
        a = f.attrs
        for key in ("schema",):
            a.create(key, _str_attr(h5py, raw.attrs[key]))
        a.create("schema_version", np.int64(raw.attrs["schema_version"]))
        for key in _STR_ATTRS[1:]:
            a.create(key, _str_attr(h5py, raw.attrs[key]))
        a.create("content_sections", _str_attr(h5py, canonical_json(sections)))
        a.create("content_hash", _str_attr(h5py, chash))
        kw = {"track_times": False}
        f.create_dataset("K", data=raw.K, **kw)
        f.create_dataset("offsets", data=raw.offsets, **kw)
        f.create_dataset("values", data=raw.values, **kw)
        if raw.values_hp is not None:
            f.create_dataset("values_hp", data=_fixed_ascii(raw.values_hp), **kw)
        if raw.metric_names:
            dt = np.dtype([(n, "<f8") for n in raw.metric_names])
            rec = np.zeros(len(raw.K), dtype=dt)
            for j, n in enumerate(raw.metric_names):
                rec[n] = raw.metrics[:, j]
            f.create_dataset("metrics", data=rec, **kw)
        else:
            f.create_dataset("metrics", data=np.zeros((len(raw.K), 0), dtype="<f8"), **kw)
        f.create_dataset("status", data=_fixed_ascii(raw.status), **kw)
        f.create_dataset("solver", data=_fixed_ascii(raw.solver), **kw)
    return replace(table, content_hash=chash)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def _as_str(x) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, np.ndarray) and x.shape == ():
        return _as_str(x[()])
    return str(x)


def _strings(ds) -> list:
    arr = ds[()]
    return [s.decode("ascii") if isinstance(s, bytes) else str(s) for s in np.asarray(arr).reshape(-1)]


def read_table(path: str | os.PathLike, *, check_hash: bool = True) -> TableData:
    """Read a table file and check it.

    Parameters
    ----------
    path : path-like
        The ``.h5`` file.
    check_hash : bool
        Recompute the content hash and compare it with the stored one (default True).

    Returns
    -------
    TableData

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    aqpgen.errors.TableFormatError
        Not an HDF5 file or truncated; wrong schema name; a schema version newer than this
        aqpgen supports; missing datasets or inconsistent shapes; content hash mismatch (the
        message names the differing sections).
    """
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"table file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        size = os.path.getsize(path)
        raise TableFormatError(
            f"{path}: not a readable HDF5 table file (corrupted, truncated or not HDF5; "
            f"{size} bytes): {e}"
        ) from None
    try:
        with f:
            return _read_open(f, path, check_hash)
    except TableFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as e:
        raise TableFormatError(f"{path}: unreadable table file ({type(e).__name__}: {e})") from None


def _read_open(f, path: str, check_hash: bool) -> TableData:
    a = f.attrs
    if "schema" not in a:
        raise TableFormatError(f"{path}: HDF5 file has no 'schema' attribute; not an aqpgen table")
    schema = _as_str(a["schema"])
    if schema != SCHEMA:
        raise TableFormatError(f"{path}: schema is {schema!r}, expected {SCHEMA!r}; not an aqpgen table")
    if "schema_version" not in a:
        raise TableFormatError(f"{path}: missing attribute 'schema_version'")
    version = int(np.asarray(a["schema_version"]).reshape(()))
    if version > SCHEMA_VERSION:
        raise TableFormatError(
            f"{path}: schema_version {version} was written by a newer aqpgen (this aqpgen "
            f"supports up to {SCHEMA_VERSION}); upgrade aqpgen"
        )
    if version < 1:
        raise TableFormatError(f"{path}: invalid schema_version {version}")
    missing_attrs = [k for k in _STR_ATTRS + ("content_hash",) if k not in a]
    if missing_attrs:
        raise TableFormatError(f"{path}: missing attribute(s) {missing_attrs}")
    missing = [k for k in _DATASETS_REQUIRED if k not in f]
    if missing:
        raise TableFormatError(f"{path}: missing dataset(s) {missing}")
    for k in f:
        if not isinstance(f[k], _h5py_dataset_type()):
            raise TableFormatError(f"{path}: unexpected group {k!r} (the format is flat)")

    attrs = {"schema": schema, "schema_version": version}
    for k in _STR_ATTRS[1:]:
        attrs[k] = _as_str(a[k])
    stored_hash = _as_str(a["content_hash"])
    stored_sections = None
    if "content_sections" in a:
        try:
            stored_sections = json.loads(_as_str(a["content_sections"]))
        except json.JSONDecodeError:
            stored_sections = None

    Ks = np.asarray(f["K"][()], dtype="<i8").reshape(-1)
    offsets = np.asarray(f["offsets"][()], dtype="<i8").reshape(-1)
    values = np.asarray(f["values"][()], dtype="<f8").reshape(-1)
    nK = len(Ks)
    if len(offsets) != nK + 1:
        raise TableFormatError(f"{path}: 'offsets' has {len(offsets)} entries, expected nK+1 = {nK + 1}")
    if nK and (np.any(np.diff(Ks) <= 0) or Ks[0] < 1):
        raise TableFormatError(f"{path}: 'K' must be positive and strictly increasing")
    if offsets[0] != 0 or np.any(np.diff(offsets) != Ks) or offsets[-1] != len(values):
        raise TableFormatError(
            f"{path}: 'offsets' inconsistent with 'K' and 'values' (len(values) = {len(values)}, "
            f"sum K = {int(Ks.sum())})"
        )
    hp = None
    if "values_hp" in f:
        hp = _strings(f["values_hp"])
        if len(hp) != len(values):
            raise TableFormatError(f"{path}: 'values_hp' has {len(hp)} entries, 'values' has {len(values)}")
    mds = f["metrics"]
    if mds.dtype.names:
        names = tuple(mds.dtype.names)
        rec = mds[()]
        metrics = np.stack([np.asarray(rec[n], dtype="<f8") for n in names], axis=1) if nK else np.zeros((0, len(names)))
    else:
        names = ()
        metrics = np.zeros((nK, 0))
    if metrics.shape != (nK, len(names)):
        raise TableFormatError(f"{path}: 'metrics' has shape {mds.shape}, expected ({nK},)")
    status = _strings(f["status"])
    solver = _strings(f["solver"])
    for nm, lst in (("status", status), ("solver", solver)):
        if len(lst) != nK:
            raise TableFormatError(f"{path}: '{nm}' has {len(lst)} entries, expected {nK}")

    raw = _Raw(attrs, Ks, offsets, values, hp, names, _f8(metrics), status, solver)
    sections = _section_hashes(raw)
    computed = _combine(sections)
    if check_hash and computed != stored_hash:
        if isinstance(stored_sections, dict):
            diff = sorted(k for k in set(sections) | set(stored_sections) if sections.get(k) != stored_sections.get(k))
            what = f"differing: {', '.join(diff)}" if diff else "the stored per-section hashes agree; the content_hash attribute itself was altered"
        else:
            what = "per-section hashes unavailable"
        raise TableFormatError(
            f"{path}: content hash mismatch ({what}); stored {stored_hash[:16]}..., computed "
            f"{computed[:16]}...; the file was modified after it was written"
        )

    rows = {}
    for i, K in enumerate(Ks.tolist()):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        row_hp = None
        if hp is not None:
            chunk = hp[lo:hi]
            if any(s != "" for s in chunk):
                row_hp = tuple(chunk)
        m = {n: float(metrics[i, j]) for j, n in enumerate(names)}
        rows[K] = Row(values[lo:hi].copy(), row_hp, m, status[i], json.loads(solver[i]))
    return TableData(
        name=attrs["name"], family=attrs["family"], target=attrs["target"], method=attrs["method"],
        params=json.loads(attrs["params"]), provenance=json.loads(attrs["provenance"]),
        Ks=tuple(Ks.tolist()), rows=rows, inputs_hash=attrs["inputs_hash"], content_hash=computed
        if check_hash else stored_hash,
    )


def _h5py_dataset_type():
    import h5py

    return h5py.Dataset


def read_attrs(path: str | os.PathLike) -> dict:
    """Root attributes of a table file as str/int, without reading the datasets (cheap)."""
    import h5py

    try:
        with h5py.File(os.fspath(path), "r") as f:
            return {k: (_as_str(v) if k != "schema_version" else int(np.asarray(v).reshape(())))
                    for k, v in f.attrs.items()}
    except OSError as e:
        raise TableFormatError(f"{path}: not a readable HDF5 table file: {e}") from None


# --------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------


def _write_text_atomic(path: str, text: str) -> None:
    with _atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def row_digest(values, values_hp, status) -> str:
    """sha256 (hex, first 32 digits) of one row's canonical bytes: the float64 values
    (little-endian), the high-precision strings (newline-joined) and the status."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.asarray(values, dtype="<f8")).tobytes())
    h.update(b"\x00")
    if values_hp is not None:
        h.update("\n".join(s.decode("ascii") if isinstance(s, bytes) else str(s)
                            for s in values_hp).encode("ascii"))
    h.update(b"\x00")
    h.update(str(status).encode("utf-8"))
    return h.hexdigest()[:32]


def row_digests(table: TableData) -> dict:
    """``{str(K): row_digest(...)}`` for every row (the manifest records them, so an audit can
    name the K of a changed row even when the file's own hash was recomputed)."""
    return {str(K): row_digest(r.values, r.values_hp, r.status) for K, r in table.rows.items()}


def manifest_entry(path: str | os.PathLike) -> dict:
    """``{"sha256", "content_hash", "size", "rows"}`` for one table file (hash attribute read, not
    checked; ``rows`` maps each K to its `row_digest`)."""
    attrs = read_attrs(path)
    return {
        "sha256": file_sha256(path),
        "content_hash": attrs.get("content_hash", ""),
        "size": os.path.getsize(path),
        "rows": row_digests(read_table(path, check_hash=False)),
    }


def update_manifest(tables_dir: str | os.PathLike) -> dict:
    """(Re)write ``tables_dir/MANIFEST.json`` listing every ``*.h5`` file in ``tables_dir``.

    The manifest is sorted JSON ``{"schema": "aqpgen.manifest", "version": 1, "files":
    {"<file>.h5": {"sha256": ..., "content_hash": ..., "size": ..., "rows": {K: digest}}}}``,
    written atomically.
    An identical existing manifest is left untouched.  Returns the manifest dict.
    """
    d = os.fspath(tables_dir)
    files = {}
    for fn in sorted(os.listdir(d)):
        p = os.path.join(d, fn)
        if fn.endswith(".h5") and os.path.isfile(p):
            files[fn] = manifest_entry(p)
    manifest = {"schema": MANIFEST_SCHEMA, "version": MANIFEST_VERSION, "files": files}
    text = json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    mpath = os.path.join(d, MANIFEST_NAME)
    try:
        with open(mpath, encoding="utf-8") as fh:
            unchanged = fh.read() == text
    except OSError:
        unchanged = False
    if not unchanged:  # leave an identical manifest untouched (no spurious mtime changes)
        _write_text_atomic(mpath, text)
    return manifest


def load_manifest(path: str | os.PathLike) -> dict:
    """Load and validate a MANIFEST.json (TableFormatError on a malformed file)."""
    try:
        with open(path, encoding="utf-8") as fh:
            m = json.load(fh)
    except json.JSONDecodeError as e:
        raise TableFormatError(f"{path}: malformed manifest JSON: {e}") from None
    if not isinstance(m, dict) or m.get("schema") != MANIFEST_SCHEMA or not isinstance(m.get("files"), dict):
        raise TableFormatError(f"{path}: not an {MANIFEST_SCHEMA} file")
    if int(m.get("version", 0)) > MANIFEST_VERSION:
        raise TableFormatError(f"{path}: manifest version {m.get('version')} is newer than supported; upgrade aqpgen")
    return m


def check_manifest(path: str | os.PathLike) -> list:
    """Check table files against the manifest in their directory.

    Parameters
    ----------
    path : path-like
        A ``.h5`` table file (its entry in the sibling ``MANIFEST.json`` is checked), or a
        directory / a ``MANIFEST.json`` (every listed file is checked, and every ``.h5`` in the
        directory must be listed).

    Returns
    -------
    list of aqpgen.records.Check
        One ``manifest`` check per file (``ok`` False with the reason when the file is not
        listed, missing, or its sha256 / size / content hash differ).
    """
    from aqpgen.records import Check

    p = os.fspath(path)
    if os.path.isdir(p):
        d, only = p, None
    elif os.path.basename(p) == MANIFEST_NAME:
        d, only = os.path.dirname(os.path.abspath(p)), None
    else:
        d, only = os.path.dirname(os.path.abspath(p)), os.path.basename(p)
    mpath = os.path.join(d, MANIFEST_NAME)
    if not os.path.exists(mpath):
        return [Check("manifest", False, f"no {MANIFEST_NAME} in {d}")]
    try:
        files = load_manifest(mpath)["files"]
    except TableFormatError as e:
        return [Check("manifest", False, str(e))]
    if only is not None:
        names = [only]
    else:
        names = sorted(set(files) | {fn for fn in os.listdir(d) if fn.endswith(".h5")})
    checks = []
    for fn in names:
        fp = os.path.join(d, fn)
        if fn not in files:
            checks.append(Check("manifest", False, f"{fn}: not listed in {MANIFEST_NAME}"))
            continue
        if not os.path.exists(fp):
            checks.append(Check("manifest", False, f"{fn}: listed in {MANIFEST_NAME} but missing"))
            continue
        want = files[fn]
        size = os.path.getsize(fp)
        sha = file_sha256(fp)
        problems = []
        if want.get("size") != size:
            problems.append(f"size {size} != manifest {want.get('size')}")
        if want.get("sha256") != sha:
            problems.append(f"sha256 {sha[:12]}... != manifest {str(want.get('sha256'))[:12]}...")
        try:
            ch = read_attrs(fp).get("content_hash")
        except TableFormatError:
            ch = None
        if want.get("content_hash") != ch:
            problems.append("content_hash differs from manifest")
        if problems:
            checks.append(Check("manifest", False, f"{fn}: " + "; ".join(problems)))
        else:
            checks.append(Check("manifest", True, f"{fn}: sha256 {sha[:12]}... matches"))
    return checks

