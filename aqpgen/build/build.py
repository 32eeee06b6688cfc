"""Build orchestration: (re)build the out-of-date tables of a spec file, safely and reproducibly.

Public names
------------
build(spec_path, out_dir)  -- build every out-of-date table, write atomically, update manifest.
inputs_hash(spec, generator_version) -- sha256 of the build inputs (the up-to-date key).
is_up_to_date(spec, path)  -- True iff ``path`` holds a valid table built from these inputs.
current_table(spec, path, generator_version) -- that table (TableData) or None.
provenance_for(spec, spec_path, mod) -- the deterministic provenance a build records.
generator(spec)            -- import the generator module of a spec (lazily).
Progress, TableOutcome     -- progress events and per-table results of ``build``.
BuildError                 -- a generator raised, a table has no usable row, or a dirty tree.
git_commit()               -- ``git rev-parse HEAD`` of the aqpgen source (+ "+dirty"), or None.
GENERATORS, TableSpec, load_spec, standard_kmin, DEFAULT_SPEC, MAX_K -- from ``aqpgen.build.spec``.

Up-to-date rule (docs/ARCHITECTURE.md)
--------------------------------------
A file is current iff its stored ``inputs_hash`` equals sha256 of the canonical JSON of
``{name, family, method, params, Ks, generator_version, schema_version}`` (plus ``inputs``, the
content hashes of its declared input tables, when it has any: ``aqpgen.build.inputs``), its provenance's
``build_env`` equals the running environment's (``aqpgen.build.buildenv.env_key``: the hash of
the pinned numerical libraries of ``constraints.txt``, or ``"unlocked"``) *and* its content hash
checks.  Then ``build`` does nothing for it.

Reproducible bytes
------------------
Rows are computed in any order (largest K first; in process, a process pool or on Dask) and
assembled sorted by K.  The provenance stored in a file is ``{build_env, command,
generator, generator_version, spec_Ks}`` with the canonical command ``aqpgen build <spec file
name> --only <name>``: no git commit, no aqpgen version, no path, no time stamp, nothing that
depends on ``--jobs``, the core count (BLAS runs one thread per row) or the backend.  So a
``--force`` rebuild in an environment installed from ``constraints.txt`` reproduces the bytes of
every table whose generator (version and numerics) did not change (``make reproduce`` checks it
in a fresh virtual environment); the commit of a
shipped table is the git commit that added the file.  A build that would write into the source
checkout's ``tables/`` refuses to run from a tree with uncommitted changes outside ``tables/``
(``allow_dirty=True`` / ``--allow-dirty`` overrides), and from an environment that does not
match ``constraints.txt`` (``allow_unlocked=True`` / ``--allow-unlocked`` overrides).

No debris (a build may be killed at any instant, ``kill -9`` included)
-------------------------------------------------------------------
* One build per directory: ``out_dir/.build.lock`` (``aqpgen.build.lock``); a second build waits.
* Files are written with ``aqpgen.store.atomic`` (temporary file, fsync, rename): a table file is
  the old one or the new one, never partial.  Temporary files of a killed build are removed by
  the next build of the directory (under the lock).
* The manifest is rewritten after every table and at the end of every build, so the next build
  heals a manifest left stale by a kill between a table's rename and the manifest's rename;
  ``aqpgen verify`` says so when it finds one.
* Pool workers die with the build (``aqpgen.build.runner.die_with_parent``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aqpgen.errors import AqpgenError, TableFormatError
from aqpgen.numerics.precision import single_thread_blas
from aqpgen.records import KResult, as_int
from aqpgen.store.atomic import remove_stale_temp_files
from aqpgen.build.buildenv import UNLOCKED, describe, env_key
from aqpgen.build.inputs import InputError, InputTables, order_by_inputs
from aqpgen.store.locate import source_tables_dir
from aqpgen.build.lock import build_lock
from aqpgen.build.runner import RowFailed, make_runner
from aqpgen.build.spec import (
    DEFAULT_SPEC,
    GENERATORS,
    MAX_K,
    TableSpec,
    generator_module,
    load_spec,
    missing_extra,
    standard_kmin,
)
from aqpgen.store.tablefile import (
    SCHEMA_VERSION,
    canonical_json,
    make_table,
    read_attrs,
    read_table,
    update_manifest,
    write_table,
)

__all__ = [
    "DEFAULT_SPEC",
    "GENERATORS",
    "MAX_K",
    "BuildError",
    "Progress",
    "TableOutcome",
    "TableSpec",
    "build",
    "current_table",
    "generator",
    "git_commit",
    "inputs_hash",
    "is_up_to_date",
    "load_spec",
    "provenance_for",
    "standard_kmin",
]


class BuildError(AqpgenError, RuntimeError):
    """The build cannot write a table (a generator raised, no usable row, a dirty source tree);
    the message names the table and K.  Nothing was written for that table."""


@dataclass(frozen=True)
class Progress:
    """A build progress event passed to the ``progress`` callback.

    kind : ``"skip"`` (table up to date), ``"start"`` (table will be built; ``total`` = number
        of K), ``"K"`` (one K finished; ``done`` of ``total``), ``"written"`` (table file written),
        ``"note"`` (a message in ``table``: waiting for the lock, stale files removed).
    table : table name (the message for ``"note"``).  K : the finished K (kind ``"K"``), else None.
    """

    kind: str
    table: str
    K: int | None = None
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class TableOutcome:
    """Result of ``build`` for one table.

    action : ``"built"`` or ``"up-to-date"``.  path : the file.  not_ok : ``((K, status), ...)``
    rows whose status is not ``"ok"`` (recorded in the file; callers should report them loudly).
    content_hash : the file's content hash.  Ks : the table's K values.
    """

    name: str
    path: str
    action: str
    not_ok: tuple = ()
    content_hash: str = ""
    Ks: tuple = ()


# --------------------------------------------------------------------------------------------
# generators, hashes, provenance
# --------------------------------------------------------------------------------------------


def generator(spec: TableSpec):
    """Import and return the generator module for ``spec`` (ImportError names the table and the
    extra to install)."""
    try:
        return generator_module(spec.family, spec.method)
    except ImportError as e:
        raise ImportError(f"table {spec.name!r}: {e}") from e


def inputs_hash(spec: TableSpec, generator_version: str, inputs: dict | None = None) -> str:
    """sha256 (hex) of canonical JSON of {name, family, method, params, Ks, generator_version,
    schema_version} plus, for a table with declared inputs, ``inputs`` = {input table: its
    content hash} (``aqpgen.build.inputs``) -- the up-to-date key stored in each file.  A table
    without declared inputs hashes exactly the keys above (no ``inputs`` key)."""
    doc = {
        "name": spec.name,
        "family": spec.family,
        "method": spec.method,
        "params": spec.params,
        "Ks": list(spec.Ks),
        "generator_version": str(generator_version),
        "schema_version": SCHEMA_VERSION,
    }
    if inputs:
        doc["inputs"] = {str(k): str(v) for k, v in inputs.items()}
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def current_table(spec: TableSpec, path: str, generator_version: str, inputs: dict | None = None):
    """The valid full TableData at ``path`` if it was built from ``spec``'s inputs, else None.

    ``inputs``: {input table: content hash} of the declared inputs; default: read from the
    directory of ``path`` (a missing or unreadable input: None, the table is not current)."""
    if not os.path.isfile(path):
        return None
    if inputs is None:
        try:
            inputs = InputTables(os.path.dirname(os.path.abspath(path))).hashes(spec, generator(spec))
        except InputError:
            return None
    try:
        if read_attrs(path).get("inputs_hash") != inputs_hash(spec, generator_version, inputs):
            return None
        t = read_table(path, check_hash=True)
    except TableFormatError:
        return None
    if t.provenance.get("build_env") != env_key():
        return None  # built by other numerical libraries than the ones running now
    # a runtime copy (aqpgen.store.wheeldata: no values_hp) never counts as a built table
    return None if "runtime_copy_of" in t.provenance else t


def is_up_to_date(spec: TableSpec, path: str | os.PathLike, generator_version: str | None = None) -> bool:
    """True iff ``path`` exists, its ``inputs_hash`` matches ``spec`` and its content hash checks."""
    if generator_version is None:
        generator_version = generator(spec).GENERATOR_VERSION
    return current_table(spec, os.fspath(path), generator_version) is not None


def git_commit() -> str | None:
    """HEAD commit of the git checkout holding the aqpgen source, with ``"+dirty"`` appended when
    tracked or untracked (non-ignored) files outside ``tables/`` differ; None outside git."""
    src = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode != 0:
            return None
        commit = head.stdout.strip()
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=src, capture_output=True,
                             text=True, timeout=10, check=False).stdout.strip()
        st = subprocess.run(["git", "status", "--porcelain", "--", ".", ":(exclude)tables"],
                            cwd=top or src, capture_output=True, text=True, timeout=30, check=False)
        if st.returncode == 0 and st.stdout.strip():
            commit += "+dirty"
        return commit
    except (OSError, subprocess.SubprocessError):
        return None


def provenance_for(spec: TableSpec, spec_path: str, mod, command: str | None = None) -> dict:
    """Deterministic provenance: nothing machine-, time-, path- or commit-dependent."""
    if command is None:
        command = f"aqpgen build {os.path.basename(spec_path)} --only {spec.name}"
    return {
        "build_env": env_key(),
        "command": command,
        "generator": mod.__name__,
        "generator_version": str(mod.GENERATOR_VERSION),
        "spec_Ks": spec.Ks_spec if spec.Ks_spec == "standard" else list(spec.Ks_spec),
    }


def _is_shipped_dir(out_dir: str) -> bool:
    src = source_tables_dir()
    return src is not None and os.path.isdir(out_dir) and os.path.samefile(out_dir, src)


def _check_clean_tree(out_dir: str) -> None:
    commit = git_commit()
    if commit is not None and commit.endswith("+dirty") and _is_shipped_dir(out_dir):
        raise BuildError(
            f"refusing to write shipped tables into {out_dir} from a source tree with uncommitted "
            "changes outside tables/ (the tables would not match any commit): commit or stash "
            "them, or pass --allow-dirty (build(..., allow_dirty=True))"
        )


def _check_locked_env(out_dir: str) -> None:
    if _is_shipped_dir(out_dir) and env_key() == UNLOCKED:
        raise BuildError(
            f"refusing to write shipped tables into {out_dir}: {describe()}; the tables would not "
            "be reproducible from constraints.txt.  Run `make venv` (it installs the locked "
            "versions), or pass --allow-unlocked (build(..., allow_unlocked=True))")


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


def _check_result(spec: TableSpec, K: int, r) -> KResult:
    if not isinstance(r, KResult):
        raise BuildError(f"table {spec.name!r}: build_K({K}) returned {type(r).__name__}, not KResult")
    if int(r.K) != K:
        raise BuildError(f"table {spec.name!r}: build_K({K}) returned a row for K={r.K}")
    return r


def _declared_inputs(tables: InputTables, spec: TableSpec, mod, rows: bool = False) -> dict:
    """``tables.hashes`` (or ``row_inputs`` when ``rows``) of ``spec``, an InputError as BuildError."""
    try:
        return tables.row_inputs(spec, mod) if rows else tables.hashes(spec, mod)
    except InputError as e:
        raise BuildError(str(e)) from e


def _build_rows(spec: TableSpec, mod, runner, emit, row_inputs: dict) -> list:
    results = []
    total = len(spec.Ks)
    try:
        for K, r in runner.run(mod.__name__, spec.Ks, dict(spec.params), row_inputs):
            results.append(_check_result(spec, K, r))
            emit(Progress("K", spec.name, K, len(results), total))
    except RowFailed as e:
        hint = missing_extra(e.exc) if isinstance(e.exc, ImportError) else None
        raise BuildError(f"table {spec.name!r}: build_K failed at K={e.K}: {type(e.exc).__name__}: "
                         f"{e.exc}" + (f"; {hint}" if hint else "")) from e.exc
    if not any(r.status == "ok" for r in results):
        reasons = sorted({r.status for r in results})
        raise BuildError(f"table {spec.name!r}: no usable row (no K has status 'ok'; statuses: "
                         f"{'; '.join(reasons)[:500]}); nothing written -- check the params")
    return results


def _select(specs: list, only, spec_path: str) -> list:
    if only is None:
        return specs
    only = list(only)
    known = [s.name for s in specs]
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ValueError(f"unknown table name(s) {unknown} for --only; {spec_path} has {known}")
    return [s for s in specs if s.name in only]


def build(
    spec_path: str | os.PathLike = DEFAULT_SPEC,
    out_dir: str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    only: Iterable[str] | None = None,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    command: str | None = None,
    allow_dirty: bool = False,
    dask=None,
    allow_unlocked: bool = False,
) -> list[TableOutcome]:
    """Build every out-of-date table of a spec file, in spec-file order except that a table comes
    after the tables it reads (declared inputs, ``aqpgen.build.inputs``).

    Parameters
    ----------
    spec_path : path-like
        The spec file (default ``tables/tables.toml``); validated whole before anything runs.
    out_dir : path-like, optional
        Where ``<name>.h5`` and ``MANIFEST.json`` go; default: the spec file's directory.
    jobs : int
        Worker processes for the per-K ``build_K`` calls (1 = in process); with ``dask="local"``
        the number of Dask workers.
    only : iterable of str, optional
        Build only these table names (ValueError for an unknown name).
    force : bool
        Rebuild even up-to-date tables.
    progress : callable, optional
        Called with a :class:`Progress` event for every skipped table, started table, finished
        K, written table and note.
    command : str, optional
        Command recorded in the provenance; default the canonical
        ``aqpgen build <spec file name> --only <name>``.
    allow_dirty : bool
        Write into the source checkout's ``tables/`` even from a tree with uncommitted changes.
    allow_unlocked : bool
        Write into the source checkout's ``tables/`` even from an environment whose numerical
        libraries differ from ``constraints.txt`` (``aqpgen.build.buildenv``).
    dask : str or distributed.Client, optional
        Fan the per-K solves out on Dask: ``"local"``, a scheduler address or a Client
        (``aqpgen.build.runner.DaskRunner``).  Same bytes as the process pool.

    Returns
    -------
    list of TableOutcome
        One per selected table, in spec order.

    Raises
    ------
    ValueError
        Invalid spec or arguments (before anything is solved or written).
    BuildError
        A ``build_K`` raised, or a table has no usable row: nothing is written for that table;
        the message names table and K.  Tables finished before it are kept (and listed in the
        manifest).  Also a dirty source tree (see ``allow_dirty``) or an unlocked environment
        (see ``allow_unlocked``).
    """
    jobs = as_int(jobs, "jobs", minimum=1)
    spec_path = os.fspath(spec_path)
    specs = _select(load_spec(spec_path), only, spec_path)
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.dirname(os.path.abspath(spec_path))
    mods = {s.name: generator(s) for s in specs}
    specs = order_by_inputs(specs, mods)  # a table after the tables it reads
    emit = progress or (lambda ev: None)
    os.makedirs(out_dir, exist_ok=True)
    tables = InputTables(out_dir)

    runner = None
    tree_checked = False
    outcomes: list[TableOutcome] = []
    with build_lock(out_dir, on_wait=lambda msg: emit(Progress("note", msg))):
        removed = remove_stale_temp_files(out_dir)
        if removed:
            emit(Progress("note", f"removed {len(removed)} temporary file(s) left by an interrupted build: "
                          + ", ".join(p.name for p in removed)))
        try:
            for spec in specs:
                mod = mods[spec.name]
                path = os.path.join(out_dir, spec.filename)
                ins = _declared_inputs(tables, spec, mod)
                current = None if force else current_table(spec, path, mod.GENERATOR_VERSION, ins)
                if current is not None:
                    emit(Progress("skip", spec.name, total=len(spec.Ks)))
                    outcomes.append(TableOutcome(spec.name, path, "up-to-date", _not_ok(current),
                                                 current.content_hash, current.Ks))
                    continue
                if not tree_checked:  # before the first solve, once per build
                    if not allow_dirty:
                        _check_clean_tree(out_dir)
                    if not allow_unlocked:
                        _check_locked_env(out_dir)
                    tree_checked = True
                emit(Progress("start", spec.name, total=len(spec.Ks)))
                if runner is None:
                    runner = make_runner(jobs, dask)
                # the limit is set here, in the calling thread, and held while rows run: OpenBLAS
                # may ignore a limit set from another thread (a threaded Dask worker), so the
                # rows' own single_thread_blas then only joins this one
                with single_thread_blas():
                    results = _build_rows(spec, mod, runner, emit,
                                          _declared_inputs(tables, spec, mod, rows=True))
                table = make_table(
                    name=spec.name, family=spec.family, target=str(mod.target_name(dict(spec.params))),
                    method=spec.method, params=spec.params,
                    provenance=provenance_for(spec, spec_path, mod, command),
                    results=results, inputs_hash=inputs_hash(spec, mod.GENERATOR_VERSION, ins),
                )
                written = write_table(path, table)
                tables.replace(written)
                update_manifest(out_dir)
                emit(Progress("written", spec.name, done=len(spec.Ks), total=len(spec.Ks)))
                outcomes.append(TableOutcome(spec.name, path, "built", _not_ok(written),
                                             written.content_hash, written.Ks))
        except BaseException:
            with contextlib.suppress(Exception):  # never mask the error that stopped the build
                update_manifest(out_dir)
            raise
        else:
            update_manifest(out_dir)  # also heals a manifest left stale by a killed build
        finally:
            if runner is not None:
                runner.close()
    return outcomes


def _not_ok(t) -> tuple:
    return tuple((K, t.rows[K].status) for K in t.Ks if t.rows[K].status != "ok")
