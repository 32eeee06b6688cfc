"""The table file format (HDF5, schema ``aqpgen.table`` version 1) and its hashing.

Public names
------------
write_table(path, table)    -- build the file image in memory, write it atomically (temp file, rename).
read_table(path)            -- read and check schema, structure and content hash.
check_schema(attrs)         -- (schema, version) of a file's root attributes, or TableFormatError.
read_attrs(path)            -- the root attributes (hash not checked).
The manifest (``MANIFEST.json``: every table's sha256 and row digests) is ``aqpgen.store.manifest``.

The in-memory records (``Row``, ``TableData``, ``make_table``, ``SCHEMA``, ``SCHEMA_VERSION``) and
the canonical serialisation (``canonical_json``, ``content_hash``, ``file_sha256``) live in
``aqpgen.store.content``; files are written through ``aqpgen.store.atomic`` (the one atomic write).

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
The runtime copies shipped in the wheel (``values_hp`` dropped) are described in
``aqpgen.store.wheeldata``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np

from aqpgen.errors import TableFormatError
from aqpgen.store.atomic import write_bytes_atomic
from aqpgen.store.content import (
    SCHEMA,
    SCHEMA_VERSION,
    RawTable,
    Row,
    TableData,
    canonical_json,
    combine_sections,
    f8_canonical,
    section_hashes,
    to_raw,
)

__all__ = ["check_schema", "read_attrs", "read_table", "write_table"]

#: h5py ``libver`` bounds used for every file (pins the on-disk object formats).
LIBVER = ("earliest", "v110")

_STR_ATTRS = ("schema", "name", "family", "target", "method", "params", "provenance", "inputs_hash")
_DATASETS_REQUIRED = ("K", "offsets", "values", "metrics", "status", "solver")



# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def _str_attr(h5py, s: str):
    b = s.encode("utf-8")
    return np.array(b, dtype=h5py.string_dtype("utf-8", max(len(b), 1)))


def _fixed_ascii(items: list) -> np.ndarray:
    width = max([len(s) for s in items] + [1])
    return np.array([s.encode("ascii") for s in items], dtype=f"S{width}").reshape(len(items))


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
    The file's bytes are built in memory, then written to a temporary file in the same
    directory and moved into place with ``os.replace``; on any exception (a full disk: the
    ``OSError`` of the write) the temporary file is removed and ``path`` is untouched.
    """
    if table is None:
        table = TableData(**parts)
    elif parts:
        raise TypeError("write_table: pass either a TableData or keyword parts, not both")
    if not isinstance(table, TableData):
        raise TypeError(f"write_table: table must be a TableData, received {type(table).__name__}")
    raw = to_raw(table)
    sections = section_hashes(raw)
    chash = combine_sections(sections)
    write_bytes_atomic(path, _file_image(raw, sections, chash))
    return replace(table, content_hash=chash)


def _file_image(raw: RawTable, sections: dict, chash: str) -> bytes:
    """The bytes of the HDF5 file of ``raw``, built in memory (HDF5's core driver, no backing
    file): the disk is touched only by the atomic write of these bytes, so a full disk is an
    ordinary ``OSError`` of that write.  The image is the byte-for-byte file HDF5 writes to disk
    for the same calls (tests/test_tablefile.py compares it with a committed table)."""
    import h5py

    f = h5py.File(f"aqpgen-image-{id(raw)}", "w", driver="core", backing_store=False, libver=LIBVER,
                  track_order=False)
    try:
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
        f.flush()
        return f.id.get_file_image()
    finally:
        f.close()


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


def check_schema(attrs) -> tuple[str, int]:
    """``(schema, schema_version)`` of a table file's root attributes (a mapping such as h5py's
    ``File.attrs``) when this aqpgen reads that format, else TableFormatError saying why: no
    ``schema`` attribute or another schema name; ``schema_version`` missing, not an integer, below
    1, or above ``SCHEMA_VERSION`` (written by a newer aqpgen).  The one schema check:
    ``read_table`` and the audit both use it."""
    if "schema" not in attrs:
        raise TableFormatError("HDF5 file has no 'schema' attribute; not an aqpgen table")
    schema = _as_str(attrs["schema"])
    if schema != SCHEMA:
        raise TableFormatError(f"schema is {schema!r}, expected {SCHEMA!r}; not an aqpgen table")
    if "schema_version" not in attrs:
        raise TableFormatError("missing attribute 'schema_version'")
    raw = np.asarray(attrs["schema_version"])
    if raw.shape not in ((), (1,)) or raw.dtype.kind not in "iu":
        raise TableFormatError(f"schema_version {raw!r} is not an integer")
    version = int(raw.reshape(()))
    if version > SCHEMA_VERSION:
        raise TableFormatError(
            f"schema_version {version} was written by a newer aqpgen (this aqpgen "
            f"supports up to {SCHEMA_VERSION}); upgrade aqpgen"
        )
    if version < 1:
        raise TableFormatError(f"invalid schema_version {version}")
    return schema, version


def _read_open(f, path: str, check_hash: bool) -> TableData:
    attrs, stored_hash, stored_sections = _read_header(f, path)
    raw = _read_datasets(f, path, attrs)
    computed = _checked_hash(raw, stored_hash, stored_sections, path, check_hash)
    return _table_of(raw, computed if check_hash else stored_hash)


def _read_header(f, path: str) -> tuple[dict, str, dict | None]:
    """The root attributes (schema checked, every required attribute and dataset present, no
    group), the stored content hash and the stored per-section hashes (None if unreadable)."""
    a = f.attrs
    try:
        schema, version = check_schema(a)
    except TableFormatError as e:
        raise TableFormatError(f"{path}: {e}") from None
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
    stored_sections = None
    if "content_sections" in a:
        try:
            stored_sections = json.loads(_as_str(a["content_sections"]))
        except json.JSONDecodeError:
            stored_sections = None
    return attrs, _as_str(a["content_hash"]), stored_sections


def _read_datasets(f, path: str, attrs: dict) -> RawTable:
    """The datasets as a RawTable, their shapes checked against each other."""
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
    names, metrics = _read_metrics(f["metrics"], nK, path)
    status = _strings(f["status"])
    solver = _strings(f["solver"])
    for nm, lst in (("status", status), ("solver", solver)):
        if len(lst) != nK:
            raise TableFormatError(f"{path}: '{nm}' has {len(lst)} entries, expected {nK}")
    return RawTable(attrs, Ks, offsets, values, hp, names, f8_canonical(metrics), status, solver)


def _read_metrics(mds, nK: int, path: str) -> tuple[tuple, np.ndarray]:
    """(field names, (nK, len(names)) float64 array) of the compound ``metrics`` dataset."""
    if mds.dtype.names:
        names = tuple(mds.dtype.names)
        rec = mds[()]
        metrics = np.stack([np.asarray(rec[n], dtype="<f8") for n in names], axis=1) if nK else np.zeros((0, len(names)))
    else:
        names = ()
        metrics = np.zeros((nK, 0))
    if metrics.shape != (nK, len(names)):
        raise TableFormatError(f"{path}: 'metrics' has shape {mds.shape}, expected ({nK},)")
    return names, metrics


def _checked_hash(raw: RawTable, stored_hash: str, stored_sections, path: str, check_hash: bool) -> str:
    """The recomputed content hash; with ``check_hash``, TableFormatError when it differs from
    the stored one (naming the differing sections when the file records them)."""
    sections = section_hashes(raw)
    computed = combine_sections(sections)
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
    return computed


def _table_of(raw: RawTable, chash: str) -> TableData:
    """The TableData of checked raw sections, with content hash ``chash``."""
    rows = {}
    offsets, hp, metrics, names = raw.offsets, raw.values_hp, raw.metrics, raw.metric_names
    for i, K in enumerate(raw.K.tolist()):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        row_hp = None
        if hp is not None:
            chunk = hp[lo:hi]
            if any(s != "" for s in chunk):
                row_hp = tuple(chunk)
        m = {n: float(metrics[i, j]) for j, n in enumerate(names)}
        rows[K] = Row(raw.values[lo:hi].copy(), row_hp, m, raw.status[i], json.loads(raw.solver[i]))
    attrs = raw.attrs
    return TableData(
        name=attrs["name"], family=attrs["family"], target=attrs["target"], method=attrs["method"],
        params=json.loads(attrs["params"]), provenance=json.loads(attrs["provenance"]),
        Ks=tuple(raw.K.tolist()), rows=rows, inputs_hash=attrs["inputs_hash"], content_hash=chash,
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
