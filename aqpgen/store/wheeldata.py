"""Runtime copies of the shipped tables: what the wheel carries as package data.

Public names
------------
PACKAGE_DATA            -- ``"aqpgen.store.shipped"``: the package whose data files are the copies.
DROPPED_SECTIONS        -- ``("values_hp",)``: what a runtime copy leaves out.
runtime_copy(table)     -- the TableData of a runtime copy of a full table.
runtime_copy_of(table)  -- the full table's reference recorded in a copy (None for a full table).
write_runtime_tables(src_dir, dst_dir) -- write the copy of every ``*.h5`` of ``src_dir``, and
                          ``dst_dir/MANIFEST.json`` listing them.

What a trainer needs
--------------------
A trainer reads the float64 values ``c_K[n]``, the per-K metrics (certified β, V∞, V1, ...), the
row status and the solver record: all of them are kept, bit for bit.  The high-precision decimal
strings ``values_hp`` (exact rationals of the power tables, 60+ digit minimax coefficients) are
what ``aqpgen verify`` / ``aqpgen audit`` re-check rigorously; they are ~75 % of the repository's
table bytes (12.7 MB of the 13 MB ``kl-minimax.h5``) and stay in the repository.

A runtime copy is an ordinary table file (schema ``aqpgen.table`` v1, read by
``aqpgen.store.tablefile.read_table`` with every check, its own content hash) listed in the
installed ``MANIFEST.json`` (``load_table(name)`` refuses an installed file its manifest does not
record: an edited file, even with its own content hash recomputed), whose provenance
adds ``"runtime_copy_of": {"content_hash": <full table's content hash>, "dropped": ["values_hp"]}``,
so a copy names the exact full table it was made from.  ``load_table(name)`` serves identical
lookups from the copy and from the full table (tests/test_wheel.py checks every shipped table).
Copies are made at wheel-build time by ``setup.py`` (``build_py``) from the committed
``tables/*.h5``; the same inputs give the same bytes (tablefile's deterministic writer).

numpy + h5py only.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from aqpgen.store.content import Row, TableData
from aqpgen.store.manifest import update_manifest
from aqpgen.store.tablefile import read_table, write_table

__all__ = ["DROPPED_SECTIONS", "PACKAGE_DATA", "runtime_copy", "runtime_copy_of", "write_runtime_tables"]

#: The (sub)package whose data files are the runtime copies (not ``tables``: that is PyTables).
PACKAGE_DATA = "aqpgen.store.shipped"

#: Sections a runtime copy does not carry.
DROPPED_SECTIONS = ("values_hp",)

_KEY = "runtime_copy_of"


def runtime_copy_of(table: TableData) -> dict | None:
    """``{"content_hash": ..., "dropped": [...]}`` for a runtime copy, None for a full table."""
    ref = table.provenance.get(_KEY)
    return dict(ref) if isinstance(ref, dict) else None


def runtime_copy(table: TableData) -> TableData:
    """The runtime copy of ``table`` (read with its hash checked): same values, metrics, status,
    solver, params, inputs hash; no ``values_hp``; provenance records the full content hash.

    Raises
    ------
    ValueError
        ``table`` has no content hash (not read from a file / not written yet) or already is a
        runtime copy.
    """
    if not table.content_hash:
        raise ValueError(f"runtime_copy: table {table.name!r} has no content hash; read it with read_table")
    if runtime_copy_of(table) is not None:
        raise ValueError(f"runtime_copy: table {table.name!r} already is a runtime copy")
    rows = {K: Row(r.values, None, r.metrics, r.status, r.solver) for K, r in table.rows.items()}
    prov = dict(table.provenance)
    prov[_KEY] = {"content_hash": table.content_hash, "dropped": list(DROPPED_SECTIONS)}
    return replace(table, rows=rows, provenance=prov, content_hash=None)


def write_runtime_tables(src_dir: str | os.PathLike, dst_dir: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Write ``dst_dir/<name>.h5``, the runtime copy of every ``src_dir/*.h5`` (sorted by name).

    Every source file is read with its content hash checked (a corrupted table never ships) and
    every copy is read back and compared row by row with its source.

    Returns
    -------
    list of (name, full content hash, copy content hash)

    ``dst_dir/MANIFEST.json`` is (re)written to list the copies (``load_table`` checks an
    installed copy against it).
    """
    src, dst = Path(src_dir), Path(dst_dir)
    files = sorted(src.glob("*.h5"))
    if not files:
        raise FileNotFoundError(f"no *.h5 table files in {src}")
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        full = read_table(f)
        copy = write_table(dst / f.name, runtime_copy(full))
        back = read_table(dst / f.name)
        for K in full.Ks:
            a, b = full.rows[K], back.rows[K]
            if not (a.values.tobytes() == b.values.tobytes() and a.status == b.status
                    and a.metrics.keys() == b.metrics.keys()):
                raise RuntimeError(f"runtime copy of {f.name} differs from the table at K={K}")
        out.append((full.name, full.content_hash, copy.content_hash))
    update_manifest(dst)
    return out
