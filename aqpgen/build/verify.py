"""Re-verification of table files (``aqpgen verify``).

Public names
------------
verify_file(path, manifest=True) -- schema, content hash, manifest entry, and per-row checks by
                                    the table's generator (``module.verify_row``; AQP tables whose
                                    params say shape = "monotone" also check the shape exactly).
verify_rate(table)               -- the E*_K = Θ(1/K²) rate audit of a KL minimax table,
                                    delegated to ``aqpgen.minimax.rate_audit``.
verify_against(path, ref)        -- the file against a reference build of the same table
                                    (``aqpgen.build.diff``): identical rows, or what differs --
                                    values (served rewards) or metrics in the last bits.
summarize(checks)                -- per check name: number passed, number failed.

Every function returns a list of :class:`aqpgen.records.Check`; nothing raises for a bad file
(the failure is a Check with ``ok=False`` and the reason), so a caller can verify many files and
report all problems at once.  ``aqpgen audit`` goes further (recomputes every metric from the
values alone, with rigorous bounds); this module is the fast gate run by ``make verify``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable

import numpy as np

from aqpgen.errors import TableFormatError
from aqpgen.generators.minimax import rate_audit
from aqpgen.records import Check
from aqpgen.store.atomic import stale_temp_files
from aqpgen.build.build import GENERATORS
from aqpgen.build.diff import diff_tables
from aqpgen.store.tablefile import MANIFEST_NAME, TableData, check_manifest, read_table
from aqpgen.store.wheeldata import runtime_copy_of

__all__ = ["summarize", "verify_against", "verify_file", "verify_rate"]


def _row_checks(table: TableData, mod) -> list:
    checks = []
    for K in table.Ks:
        row = table.rows[K]
        if row.status != "ok":
            # recorded on purpose (infeasible / out of reach); the runtime refuses to serve it
            checks.append(Check("row.status", True, f"not served: {row.status}", K))
            continue
        finite = bool(np.all(np.isfinite(row.values)))
        checks.append(Check("row.finite", finite, "all values finite" if finite else "non-finite values in an ok row", K))
        if mod is None:
            continue
        try:
            out = mod.verify_row(K, row.values, row.values_hp, dict(row.metrics), dict(table.params))
        except Exception as e:  # noqa: BLE001 - a crash in a verifier is a failed check, not a crash of verify
            checks.append(Check("row.verify", False, f"verify_row raised {type(e).__name__}: {e}", K))
            continue
        checks.extend(out)
    return checks


def verify_file(path: str | os.PathLike, *, manifest: bool = True) -> list:
    """Verify one table file.

    Parameters
    ----------
    path : path-like
        A table file.
    manifest : bool
        Also check the file's entry in ``MANIFEST.json`` when one sits next to the file.

    Returns
    -------
    list of Check
        ``file`` (schema, structure and content hash: from :func:`aqpgen.tablefile.read_table`),
        ``manifest`` (sha256/size/content hash vs the sibling manifest), ``generator`` (the
        table's generator module is importable), then per row ``row.finite`` and the generator's
        own checks (e.g. ``power.unbiased``: exact unbiasedness in rational arithmetic), or
        ``row.status`` for a recorded non-ok row.  ``debris`` fails when temporary files of an
        interrupted build lie next to the file.  A runtime copy (the wheel's package data,
        ``aqpgen.store.wheeldata``) gets ``runtime_copy`` and ``row.finite`` only.
    """
    path = os.fspath(path)
    checks = []
    try:
        table = read_table(path, check_hash=True)
    except (TableFormatError, FileNotFoundError) as e:
        return [Check("file", False, str(e))]
    checks.append(Check("file", True, f"schema ok, content hash {table.content_hash[:16]}... ok"))
    d = os.path.dirname(os.path.abspath(path))
    debris = stale_temp_files(d)
    if debris:
        checks.append(Check("debris", False, f"{len(debris)} temporary file(s) in {d} left by an interrupted "
                            f"build ({', '.join(f.name for f in debris[:3])}...): the next `aqpgen build` "
                            "of this directory removes them (unless a build is running right now)"))
    ref = runtime_copy_of(table)
    if ref is not None:
        checks.append(Check("runtime_copy", True, f"runtime copy of the table with content hash "
                            f"{str(ref.get('content_hash'))[:16]}... (without {', '.join(ref.get('dropped', []))}); "
                            "the generator's checks need the full table: run `aqpgen verify` on the "
                            f"repository's tables/{os.path.basename(path)}"))
        checks.extend(_row_checks(table, None))
        return checks
    if manifest and os.path.exists(os.path.join(os.path.dirname(os.path.abspath(path)), MANIFEST_NAME)):
        checks.extend(check_manifest(path))
    modname = GENERATORS.get((table.family, table.method))
    mod = None
    if modname is None:
        checks.append(Check("generator", False, f"no generator registered for ({table.family!r}, {table.method!r})"))
    else:
        try:
            mod = importlib.import_module(modname)
        except ImportError as e:
            checks.append(Check("generator", False, f"{modname} cannot be imported: {e}"))
        else:
            stored = table.provenance.get("generator_version")
            now = getattr(mod, "GENERATOR_VERSION", None)
            note = "" if stored == now else f" (file written by generator version {stored}, now {now})"
            checks.append(Check("generator", True, f"{modname}{note}"))
    checks.extend(_row_checks(table, mod))
    return checks


def verify_rate(table: TableData | str | os.PathLike) -> list:
    """Rate audit of a minimax table: K^r·E*_K settles and the log-log slope is −r ± 0.01, r the
    target's rate exponent (2 for log p, 2(a+1) for p^a).

    Delegates to ``aqpgen.minimax.rate_audit(Ks, E_star)`` on the table's ``ok`` rows (docs/MATH.md §4).

    Returns
    -------
    list of Check
        One ``rate`` check (detail: fitted slope) -- ``ok=False`` when the table has no
        ``E_star`` metric or the audit fails.
    """
    if not isinstance(table, TableData):
        try:
            table = read_table(table)
        except (TableFormatError, FileNotFoundError) as e:
            return [Check("rate", False, str(e))]
    Ks = [K for K in table.Ks if table.rows[K].status == "ok"]
    E = [table.rows[K].metrics.get("E_star", float("nan")) for K in Ks]
    if not Ks or not np.all(np.isfinite(E)):
        return [Check("rate", False, f"{table.name}: no finite E_star metric on every ok row; not a KL minimax table?")]
    audit = rate_audit(tuple(Ks), np.asarray(E, dtype=np.float64), target=table.target)
    return [Check("rate", bool(audit.ok), f"{table.name}: fitted log-log slope of E*_K {float(audit.slope):+.5f} "
                  f"(required {-audit.rate:g} within {audit.slope_tol:g})")]


def verify_against(path: str | os.PathLike, ref: str | os.PathLike) -> list:
    """Compare a table file with a reference build of the same table, row by row.

    Returns ``against.values`` (ok iff every common row's values, strings and status are equal)
    and ``against.metrics`` (ok iff every metric and solver record is equal too), each with the
    lines of ``TableDiff.summary`` as detail: a rebuild whose values match but whose metrics moved
    in the last bits fails only the second, and says so.
    """
    try:
        d = diff_tables(ref, path)
    except (TableFormatError, OSError) as e:
        return [Check("against", False, f"cannot compare with {os.fspath(ref)}: {e}")]
    lines = d.summary()
    checks = [Check("against.values", d.values_identical, lines[0] if d.values_identical else
                    "; ".join(x for x in lines if x.startswith(("VALUES", "status", "values"))))]
    rest = [x for x in lines[1:]]
    checks.append(Check("against.metrics", d.identical and not (d.only_a or d.only_b),
                        "; ".join(rest) if rest else f"metrics and solver records identical at all "
                        f"{d.compared} K"))
    return checks


def summarize(checks: Iterable[Check]) -> dict:
    """``{name: (n_passed, n_failed)}`` in first-seen order."""
    out: dict = {}
    for c in checks:
        p, f = out.get(c.name, (0, 0))
        out[c.name] = (p + bool(c.ok), f + (not c.ok))
    return out
