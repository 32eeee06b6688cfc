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
The spec (``GENERATORS``, ``TableSpec``, ``load_spec``, ...) is ``aqpgen.build.spec``.

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
* ``--out`` is checked writable before anything is computed (``aqpgen.store.atomic.check_writable``).
* One build per directory: ``out_dir/.build.lock`` (``aqpgen.build.lock``); a second build waits.
  The lock file is removed when the build ends, failed or not; a build that wrote no table leaves
  no manifest either (and removes the output directory it created, if still empty).
* Files are written with ``aqpgen.store.atomic`` (temporary file, fsync, rename): a table file is
  the old one or the new one, never partial.  A table's bytes are built in memory first, so a
  full disk is an ordinary error of that write (BuildError naming the file; exit 1 from the CLI).  Temporary files of a killed build are removed by
  the next build of the directory (under the lock).
* The manifest is rewritten after every table and at the end of every build, so the next build
  heals a manifest left stale by a kill between a table's rename and the manifest's rename;
  ``aqpgen verify`` says so when it finds one.
* Pool workers die with the build (``aqpgen.build.runner.die_with_parent``); on Ctrl-C (SIGINT)
  or any failure the build kills them at once instead of waiting for the rows in progress.

Tamper resistance
-----------------
A current file is skipped only if it is also the file the directory's MANIFEST.json records
(``aqpgen.store.manifest.manifest_mismatch``: same sha256 and content hash).  Otherwise -- a
value edited and the file's own content hash recomputed, a file not listed, no manifest, or a
manifest left stale by a kill -- the table is rebuilt (a note names the file and both hashes), so
a build never rewrites the manifest to list a file it did not write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aqpgen.build.buildenv import UNLOCKED, describe, env_key
from aqpgen.build.inputs import InputError, InputTables, order_by_inputs
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
from aqpgen.errors import AqpgenError, TableFormatError
from aqpgen.numerics.precision import single_thread_blas
from aqpgen.records import KResult, as_int
from aqpgen.store.atomic import (
    NotWritableError,
    check_writable,
    remove_stale_temp_files,
)
from aqpgen.store.content import SCHEMA_VERSION, canonical_json, make_table
from aqpgen.store.locate import source_tables_dir
from aqpgen.store.manifest import MANIFEST_NAME, manifest_mismatch, update_manifest
from aqpgen.store.tablefile import read_attrs, read_table, write_table

__all__ = ["BuildError", "Progress", "TableOutcome", "build", "current_table", "generator",
           "git_commit", "inputs_hash", "is_up_to_date", "provenance_for"]


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
        Worker processes for the per-K ``build_K`` calls (1: one worker, so Ctrl-C stops a row
        at once; in process where processes cannot fork); with ``dask="local"``
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
        (see ``allow_unlocked``).  Also ``--out`` not writable (checked before any row is
        computed), and a write that fails (full disk, read-only, I/O error): one line naming the
        path; the previous files are unchanged.
    """
    jobs = as_int(jobs, "jobs", minimum=1)
    spec_path = os.fspath(spec_path)
    specs = _select(load_spec(spec_path), only, spec_path)
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.dirname(os.path.abspath(spec_path))
    mods = {s.name: generator(s) for s in specs}
    specs = order_by_inputs(specs, mods)  # a table after the tables it reads
    created = _prepare_out_dir(out_dir)
    run = _Run(spec_path, out_dir, mods, progress or (lambda ev: None), force=force, command=command,
               allow_dirty=allow_dirty, allow_unlocked=allow_unlocked, jobs=jobs, dask=dask)
    try:
        return _locked(run, specs)
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(out_dir)  # only if empty: a failed first build leaves no empty directory


def _locked(run: _Run, specs: list) -> list[TableOutcome]:
    """``run`` the tables holding the directory's lock; a failed write is a one-line BuildError."""
    try:
        with build_lock(run.out_dir, on_wait=lambda msg: run.emit(Progress("note", msg))):
            return run.tables(specs)
    except OSError as e:
        if e.errno not in _WRITE_ERRNOS:
            raise
        raise BuildError(f"cannot write in {run.out_dir}: {e.strerror or e} ({e.filename or run.out_dir}); "
                         "the directory keeps its previous files, nothing is half-written") from None


#: errno values of a write that cannot be done (full, read-only, forbidden, quota, I/O error).
_WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EROFS", "EACCES", "EPERM", "EDQUOT",
                                                      "EIO", "EFBIG") if hasattr(errno, n))


def _prepare_out_dir(out_dir: str) -> bool:
    """Check, before any row is computed, that files can be created in ``out_dir`` (the lock file
    and the tables); create it.  Returns whether it was created.  BuildError (one line) if not."""
    try:
        check_writable(out_dir, "--out", directory=True)
        created = not os.path.isdir(out_dir)
        os.makedirs(out_dir, exist_ok=True)
    except NotWritableError as e:
        raise BuildError(f"{e}; nothing was computed") from None
    except OSError as e:
        raise BuildError(f"cannot create --out {out_dir}: {e.strerror or e}; nothing was computed") from None
    return created


class _Run:
    """One build of a directory, its steps in order: remove debris, for each table skip it (up
    to date and recorded by the manifest) or build and write it, then rewrite the manifest and
    release the workers (killed, on a failure or Ctrl-C)."""

    def __init__(self, spec_path, out_dir, mods, emit, *, force, command, allow_dirty, allow_unlocked,
                 jobs, dask):
        self.spec_path, self.out_dir, self.mods, self.emit = spec_path, out_dir, mods, emit
        self.force, self.command, self.jobs, self.dask = force, command, jobs, dask
        self.allow_dirty, self.allow_unlocked = allow_dirty, allow_unlocked
        self.inputs = InputTables(out_dir)
        self.runner = None
        self.tree_checked = False

    def tables(self, specs: list) -> list[TableOutcome]:
        """Every table of ``specs`` (called holding the directory's lock)."""
        removed = remove_stale_temp_files(self.out_dir)
        if removed:
            self.emit(Progress("note", f"removed {len(removed)} temporary file(s) left by an interrupted "
                               "build: " + ", ".join(p.name for p in removed)))
        failed = True
        try:
            outcomes = [self.table(spec) for spec in specs]
            failed = False
        finally:
            self.finish(failed)
        return outcomes

    def table(self, spec: TableSpec) -> TableOutcome:
        mod = self.mods[spec.name]
        path = os.path.join(self.out_dir, spec.filename)
        ins = _declared_inputs(self.inputs, spec, mod)
        current = None if self.force else self.current(spec, mod, path, ins)
        if current is not None:
            self.emit(Progress("skip", spec.name, total=len(spec.Ks)))
            return TableOutcome(spec.name, path, "up-to-date", _not_ok(current), current.content_hash,
                                current.Ks)
        self.check_once()
        self.emit(Progress("start", spec.name, total=len(spec.Ks)))
        if self.runner is None:
            self.runner = make_runner(self.jobs, self.dask)
        # the limit is set here, in the calling thread, and held while rows run: OpenBLAS may
        # ignore a limit set from another thread (a threaded Dask worker), so the rows' own
        # single_thread_blas then only joins this one
        with single_thread_blas():
            results = _build_rows(spec, mod, self.runner, self.emit,
                                  _declared_inputs(self.inputs, spec, mod, rows=True))
        written = self.write(spec, mod, path, results, ins)
        self.inputs.replace(written)
        self.emit(Progress("written", spec.name, done=len(spec.Ks), total=len(spec.Ks)))
        return TableOutcome(spec.name, path, "built", _not_ok(written), written.content_hash, written.Ks)

    def current(self, spec: TableSpec, mod, path: str, ins: dict):
        """The table at ``path`` if it is current (``current_table``) and is the file the
        directory's manifest records; a file that differs from its record (edited, even with its
        own content hash recomputed; or left by a build killed before the manifest was written)
        is rebuilt, with a note naming the file and both hashes."""
        t = current_table(spec, path, mod.GENERATOR_VERSION, ins)
        if t is None:
            return None
        why = manifest_mismatch(path)
        if why is not None:
            self.emit(Progress("note", f"{why}: not treated as up to date; rebuilding it"))
            return None
        return t

    def check_once(self) -> None:
        """Before the first solve, once per build: the source tree and environment checks."""
        if self.tree_checked:
            return
        if not self.allow_dirty:
            _check_clean_tree(self.out_dir)
        if not self.allow_unlocked:
            _check_locked_env(self.out_dir)
        self.tree_checked = True

    def write(self, spec: TableSpec, mod, path: str, results: list, ins: dict):
        table = make_table(
            name=spec.name, family=spec.family, target=str(mod.target_name(dict(spec.params))),
            method=spec.method, params=spec.params,
            provenance=provenance_for(spec, self.spec_path, mod, self.command),
            results=results, inputs_hash=inputs_hash(spec, mod.GENERATOR_VERSION, ins),
        )
        try:
            written = write_table(path, table)
        except OSError as e:
            if e.errno not in _WRITE_ERRNOS:
                raise
            raise BuildError(f"table {spec.name!r}: cannot write {path}: {e.strerror or e}; the "
                             "previous file (if any) is unchanged") from None
        _write_manifest(self.out_dir)
        return written

    def finish(self, failed: bool) -> None:
        """Release the workers (killed at once on a failure or Ctrl-C), then rewrite the manifest
        (it also heals a manifest left stale by a killed build); on a failure the manifest is
        best effort, never masking the error that stopped the build."""
        try:
            if self.runner is not None:
                self.runner.abort() if failed else self.runner.close()
        finally:
            if failed:
                with contextlib.suppress(Exception):
                    _write_manifest(self.out_dir)
            else:
                _write_manifest(self.out_dir)


def _write_manifest(out_dir: str) -> None:
    """``update_manifest(out_dir)`` unless the directory has neither a manifest nor a table (a
    build that wrote nothing leaves no empty manifest)."""
    if os.path.exists(os.path.join(out_dir, MANIFEST_NAME)) or any(
            fn.endswith(".h5") for fn in os.listdir(out_dir)):
        update_manifest(out_dir)


def _not_ok(t) -> tuple:
    return tuple((K, t.rows[K].status) for K in t.Ks if t.rows[K].status != "ok")
