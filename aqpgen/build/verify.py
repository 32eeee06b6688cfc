"""Re-verification of table files (``aqpgen verify``).

Public names
------------
verify_file(path, manifest=True) -- schema, content hash, manifest entry, and per-row checks by
                                    the table's generator (``module.verify_row``; AQP tables whose
                                    params say shape = "monotone" also check the shape exactly).
verify_files(paths, jobs=1, progress=None) -- the same for many files, one process pool over
                                    their rows (``aqpgen verify --jobs``), BLAS on one thread
                                    as in the build.
verify_row_task(task)            -- the checks of one row (what a pool worker runs).
count_rows(paths)                -- rows of the readable files (the progress bar's length).
verify_rate(table)               -- the E*_K = Θ(1/K²) rate audit of a KL minimax table,
                                    delegated to ``aqpgen.generators.minimax.rate_audit``.
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

import concurrent.futures as cf
import importlib
import os
from collections.abc import Iterable

import numpy as np

from aqpgen.build.diff import diff_tables
from aqpgen.build.spec import GENERATORS
from aqpgen.errors import TableFormatError
from aqpgen.generators.minimax import rate_audit
from aqpgen.numerics.precision import single_thread_blas
from aqpgen.records import Check, as_K
from aqpgen.store.atomic import stale_temp_files
from aqpgen.store.content import TableData
from aqpgen.store.manifest import MANIFEST_NAME, check_manifest
from aqpgen.store.tablefile import read_table
from aqpgen.store.wheeldata import runtime_copy_of

__all__ = ["count_rows", "summarize", "verify_against", "verify_file", "verify_files", "verify_rate",
           "verify_row_task"]


def _row_tasks(table: TableData, modname: str | None) -> list:
    """One picklable task per row: (modname, K, status, values, values_hp, metrics, params)."""
    return [(modname, K, table.rows[K].status, table.rows[K].values, table.rows[K].values_hp,
             dict(table.rows[K].metrics), dict(table.params)) for K in table.Ks]


def verify_row_task(task) -> list:
    """The checks of one row (a task of :func:`_row_tasks`; runs in a worker process)."""
    modname, K, status, values, values_hp, metrics, params = task
    if status != "ok":
        # recorded on purpose (infeasible / out of reach); the runtime refuses to serve it
        return [Check("row.status", True, f"not served: {status}", K)]
    finite = bool(np.all(np.isfinite(values)))
    checks = [Check("row.finite", finite, "all values finite" if finite else "non-finite values in an ok row", K)]
    if modname is None:
        return checks
    try:
        checks.extend(importlib.import_module(modname).verify_row(K, values, values_hp, metrics, params))
    except Exception as e:  # noqa: BLE001 - a crash in a verifier is a failed check, not a crash of verify
        checks.append(Check("row.verify", False, f"verify_row raised {type(e).__name__}: {e}", K))
    return checks


def _generator_check(table: TableData) -> tuple[Check, str | None]:
    """(the ``generator`` check, the importable module name or None)."""
    modname = GENERATORS.get((table.family, table.method))
    if modname is None:
        return Check("generator", False, f"no generator registered for ({table.family!r}, {table.method!r})"), None
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        return Check("generator", False, f"{modname} cannot be imported: {e}"), None
    stored = table.provenance.get("generator_version")
    now = getattr(mod, "GENERATOR_VERSION", None)
    note = "" if stored == now else f" (file written by generator version {stored}, now {now})"
    return Check("generator", True, f"{modname}{note}"), modname


def _file_checks(path: str, manifest: bool) -> tuple[list, list]:
    """(the file-level checks, the row tasks) of one table file."""
    try:
        table = read_table(path, check_hash=True)
    except (TableFormatError, FileNotFoundError) as e:
        return [Check("file", False, str(e))], []
    checks = [Check("file", True, f"schema ok, content hash {table.content_hash[:16]}... ok")]
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
        return checks, _row_tasks(table, None)
    if manifest and os.path.exists(os.path.join(d, MANIFEST_NAME)):
        checks.extend(check_manifest(path))
    gen, modname = _generator_check(table)
    checks.append(gen)
    return checks, _row_tasks(table, modname)


def verify_files(paths, *, manifest: bool = True, jobs: int = 1, progress=None) -> dict:
    """Verify several table files with one process pool over their rows (largest K first).

    Parameters
    ----------
    paths : iterable of path-like
    manifest : bool
        Also check each file's entry in the ``MANIFEST.json`` beside it.
    jobs : int
        Worker processes (1: in this process).
    progress : callable, optional
        ``progress(n)`` after every n rows verified (for a progress bar).

    Returns
    -------
    dict
        ``{path: [Check, ...]}`` in the given order (the checks of :func:`verify_file`).
    """
    jobs = as_K(jobs, "jobs", minimum=1)
    files = {os.fspath(p): _file_checks(os.fspath(p), manifest) for p in paths}
    tasks = [(p, t) for p, (_, ts) in files.items() for t in ts]
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][1][1])
    done: dict = {}
    if jobs == 1 or len(tasks) <= 1:
        with single_thread_blas():
            for i in order:
                done[i] = verify_row_task(tasks[i][1])
                if progress:
                    progress(1)
    else:
        # one future per K: the rows of every file at one K go to one worker, which then computes
        # what they share (the plug-in's constants, E*_K) once
        by_K: dict = {}
        for i in order:
            by_K.setdefault(tasks[i][1][1], []).append(i)
        with cf.ProcessPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(_verify_batch, [tasks[i][1] for i in idx]): idx for idx in by_K.values()}
            for fut in cf.as_completed(futs):
                for i, res in zip(futs[fut], fut.result()):
                    done[i] = res
                if progress:
                    progress(len(futs[fut]))
    out = {p: list(checks) for p, (checks, _) in files.items()}
    for i, (p, _) in enumerate(tasks):  # tasks are in file, then K order
        out[p].extend(done[i])
    return out


def _verify_batch(batch: list) -> list:
    """:func:`verify_row_task` of each task of ``batch`` (one worker's unit: the rows of one K).

    BLAS runs on one thread (``aqpgen.numerics.precision.single_thread_blas``), as in the build:
    the pool's workers are the parallelism.  Measured on 2 cores, --jobs 2 over three tables: with
    each worker's BLAS on the machine's two threads, 32.6 s; on one, 20.8 s (oversubscription)."""
    with single_thread_blas():
        return [verify_row_task(t) for t in batch]


def count_rows(paths) -> int:
    """The number of rows of the readable table files among ``paths`` (for a progress bar)."""
    n = 0
    for p in paths:
        try:
            n += len(read_table(p).Ks)
        except (TableFormatError, OSError):
            pass
    return n


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
        ``file`` (schema, structure and content hash: from :func:`aqpgen.store.tablefile.read_table`),
        ``manifest`` (sha256/size/content hash vs the sibling manifest), ``generator`` (the
        table's generator module is importable), then per row ``row.finite`` and the generator's
        own checks (e.g. ``power.unbiased``: exact unbiasedness in rational arithmetic), or
        ``row.status`` for a recorded non-ok row.  ``debris`` fails when temporary files of an
        interrupted build lie next to the file.  A runtime copy (the wheel's package data,
        ``aqpgen.store.wheeldata``) gets ``runtime_copy`` and ``row.finite`` only.
    """
    path = os.fspath(path)
    return verify_files([path], manifest=manifest)[path]


def verify_rate(table: TableData | str | os.PathLike) -> list:
    """Rate audit of a minimax table: K^r·E*_K settles and the log-log slope is −r ± 0.01, r the
    target's rate exponent (2 for log p, 2(a+1) for p^a).

    Delegates to ``aqpgen.generators.minimax.rate_audit(Ks, E_star)`` on the table's ``ok`` rows (docs/MATH.md §4).

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
