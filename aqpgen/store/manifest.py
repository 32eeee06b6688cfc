"""The manifest of a tables directory: ``MANIFEST.json``, every table file's sha256, content hash
and row digests, so a changed, replaced or re-hashed file is named with what changed.

Public names
------------
MANIFEST_NAME                  -- "MANIFEST.json".
update_manifest(tables_dir)    -- (re)write ``tables_dir/MANIFEST.json`` atomically.
check_manifest(path)           -- check a table file (or a whole directory) against its manifest.
manifest_mismatch(path, manifest=None) -- why a table file is not the one its manifest records
                                  (naming both hashes), or None when it is.
load_manifest, manifest_entry, row_digest, row_digests -- see their docstrings.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from aqpgen.errors import TableFormatError
from aqpgen.records import Check
from aqpgen.store.atomic import write_text_atomic
from aqpgen.store.content import TableData, file_sha256
from aqpgen.store.tablefile import read_attrs, read_table

__all__ = ["MANIFEST_NAME", "check_manifest", "load_manifest", "manifest_entry", "manifest_mismatch", "row_digest", "row_digests", "update_manifest"]

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_SCHEMA = "aqpgen.manifest"
MANIFEST_VERSION = 1


# --------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------


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
    """``{"sha256", "content_hash", "size", "rows", "sections"}`` for one table file (hash
    attribute read, not checked; ``rows`` maps each K to its `row_digest`, ``sections`` is the
    file's per-section content hashes, so a changed file says *what* changed)."""
    attrs = read_attrs(path)
    try:
        sections = json.loads(attrs.get("content_sections") or "{}")
    except ValueError:
        sections = {}
    return {
        "sha256": file_sha256(path),
        "content_hash": attrs.get("content_hash", ""),
        "size": os.path.getsize(path),
        "rows": row_digests(read_table(path, check_hash=False)),
        "sections": sections,
    }


def _what_changed(fp: str, want: dict) -> str:
    """Which part of a file differs from its manifest entry: the values (by row digest, naming K)
    or only metrics / solver records / attributes (by section hash)."""
    try:
        have = manifest_entry(fp)
    except (TableFormatError, OSError, ValueError) as e:
        return f"unreadable: {e}"
    rows_w, rows_h = want.get("rows") or {}, have["rows"]
    changed = sorted(int(k) for k in set(rows_w) | set(rows_h) if rows_w.get(k) != rows_h.get(k))
    if changed:
        ks = ", ".join(map(str, changed[:5])) + (", ..." if len(changed) > 5 else "")
        return f"VALUES differ from the manifest at {len(changed)} K ({ks})"
    sec_w = want.get("sections") or {}
    secs = sorted(k for k in set(sec_w) | set(have["sections"]) if sec_w.get(k) != have["sections"].get(k))
    where = f" (sections: {', '.join(secs)})" if sec_w and secs else ""
    return (f"values identical to the manifest's at all {len(rows_h)} K; the difference is in the "
            f"metrics, solver records or attributes{where} -- `aqpgen verify FILE --against REF` "
            "measures it")


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
        write_text_atomic(mpath, text)
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


_HEAL = ("if a build was interrupted, rerun `aqpgen build SPEC --out DIR` for this directory: it re-checks "
         "every table (rebuilding what is not current) and rewrites the manifest; otherwise the file "
         "was changed after it was built")


def manifest_mismatch(path: str | os.PathLike, manifest: str | os.PathLike | None = None) -> str | None:
    """Why the table file ``path`` is not the file its manifest records, or None when it is.

    ``manifest`` defaults to ``MANIFEST.json`` next to ``path``.  The file's sha256 (its bytes) and
    its stored content hash are compared with the manifest's record of the file name: a file whose
    values were edited and whose own content hash was recomputed still differs in sha256.  The
    reason names the file and both hashes (or says the manifest or its record is missing or
    unreadable).  Cost: one sha256 of the file.
    """
    p = os.fspath(path)
    fn = os.path.basename(p)
    mpath = os.fspath(manifest) if manifest is not None else os.path.join(os.path.dirname(os.path.abspath(p)), MANIFEST_NAME)
    if not os.path.exists(mpath):
        return f"{fn}: no {MANIFEST_NAME} records it ({mpath} does not exist)"
    try:
        want = load_manifest(mpath)["files"].get(fn)
    except (TableFormatError, OSError, ValueError) as e:
        return f"{fn}: its manifest is unreadable ({e})"
    if not isinstance(want, dict):
        return f"{fn}: not listed in {mpath}"
    sha = file_sha256(p)
    if want.get("sha256") != sha:
        return f"{fn}: sha256 {sha} differs from {MANIFEST_NAME}'s {want.get('sha256')}"
    try:
        ch = read_attrs(p).get("content_hash")
    except TableFormatError as e:
        return f"{fn}: unreadable ({e})"
    if want.get("content_hash") != ch:
        return f"{fn}: content hash {ch} differs from {MANIFEST_NAME}'s {want.get('content_hash')}"
    return None


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
            checks.append(Check("manifest", False, f"{fn}: not listed in {MANIFEST_NAME}; {_HEAL}"))
            continue
        if not os.path.exists(fp):
            checks.append(Check("manifest", False, f"{fn}: listed in {MANIFEST_NAME} but missing; {_HEAL}"))
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
        if problems and want.get("rows"):
            problems.append(_what_changed(fp, want))
        if problems:
            checks.append(Check("manifest", False, f"{fn}: " + "; ".join(problems) + "; " + _HEAL))
        else:
            checks.append(Check("manifest", True, f"{fn}: sha256 {sha[:12]}... matches"))
    return checks

