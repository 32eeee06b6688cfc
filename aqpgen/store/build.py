"""Spec file and build orchestration: which tables exist, and (re)building them.

Public names
------------
GENERATORS                 -- registry ``(family, method) -> module name``.
TableSpec                  -- one validated ``[[table]]`` entry of the spec file.
load_spec(path)            -- parse and validate ``tables/tables.toml`` -> list of TableSpec.
standard_kmin(family, params) -- smallest valid K (2 for kl, m+1 for p^m, degree+1 for a poly).
generator(spec)            -- import the generator module of a spec (lazily).
inputs_hash(spec, generator_version) -- sha256 of the build inputs (the up-to-date key).
is_up_to_date(spec, path)  -- True iff ``path`` holds a valid table built from these inputs.
build(spec_path, out_dir)  -- build every out-of-date table, write atomically, update manifest.
Progress, TableOutcome     -- progress events and per-table results of ``build``.
BuildError                 -- a generator raised; names the table and K.
git_commit()               -- ``git rev-parse HEAD`` of the aqpgen source (+ "+dirty"), or None.

Up-to-date rule (docs/ARCHITECTURE.md)
--------------------------------------
A file is current iff its stored ``inputs_hash`` equals sha256 of the canonical JSON of
``{name, family, method, params, Ks, generator_version, schema_version}`` *and* its content
hash checks.  Then ``build`` does nothing for it.  Provenance (git commit, command) is recorded
but is not an input: rebuilding at a later commit with the same generator versions is a no-op.

Determinism
-----------
Rows are computed in any order (largest K first, in a process pool when ``jobs > 1``) and
assembled sorted by K; the recorded command is canonical (``aqpgen build <spec> --only <name>``,
independent of ``--jobs`` and of absolute paths), so the file bytes do not depend on how the
build was run.  No time stamps or timings are stored.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from aqpgen.errors import AqpgenError, TableFormatError
from aqpgen.records import KResult, standard_Ks
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
    "BuildError",
    "Progress",
    "TableOutcome",
    "TableSpec",
    "build",
    "generator",
    "git_commit",
    "inputs_hash",
    "is_up_to_date",
    "load_spec",
    "standard_kmin",
]

#: Generator registry: ``(family, method) -> importable module name`` (docs/ARCHITECTURE.md).
GENERATORS: dict[tuple[str, str], str] = {
    ("power", "ustat"): "aqpgen.generators.power",
    ("kl", "minimax"): "aqpgen.generators.minimax",
    ("kl", "aqp"): "aqpgen.generators.aqp",
    ("pow", "minimax"): "aqpgen.generators.minimax",
    ("pow", "aqp"): "aqpgen.generators.aqp",
}

#: The shipped spec file, relative to the repository root.
DEFAULT_SPEC = os.path.join("tables", "tables.toml")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SPEC_KEYS = {"name", "family", "method", "params", "Ks"}


class BuildError(AqpgenError, RuntimeError):
    """A generator failed; the message names the table and K.  Nothing was written."""


@dataclass(frozen=True)
class TableSpec:
    """One validated ``[[table]]`` entry.

    Attributes
    ----------
    name : str
        Table name; the file is ``<out_dir>/<name>.h5``.
    family, method : str
        Key into :data:`GENERATORS`.
    params : dict
        Generator parameters (JSON-serialisable; rationals as strings).
    Ks : tuple of int
        Sorted K values (the standard grid resolved, or the explicit list).
    Ks_spec : str or tuple
        As written in the spec: ``"standard"`` or the explicit list.
    """

    name: str
    family: str
    method: str
    params: dict = field(default_factory=dict)
    Ks: tuple = ()
    Ks_spec: object = "standard"

    @property
    def filename(self) -> str:
        return f"{self.name}.h5"


@dataclass(frozen=True)
class Progress:
    """A build progress event passed to the ``progress`` callback.

    kind : ``"skip"`` (table up to date), ``"start"`` (table will be built; ``total`` = number
        of K), ``"K"`` (one K finished; ``done`` of ``total``), ``"written"`` (table file written).
    table : table name.  K : the finished K (kind ``"K"``), else None.
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
    content_hash : the file's content hash.
    """

    name: str
    path: str
    action: str
    not_ok: tuple = ()
    content_hash: str = ""


# --------------------------------------------------------------------------------------------
# spec file
# --------------------------------------------------------------------------------------------


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: invalid TOML: {e}") from None


def _poly_degree(coeffs) -> int:
    deg = 0
    for i, c in enumerate(coeffs):
        if Fraction(str(c)) != 0:
            deg = i
    return deg


def standard_kmin(family: str, params: Mapping) -> int:
    """Smallest valid K for the standard grid.

    2 for ``family="kl"`` (log p); m+1 for ``family="power"`` with ``{"m": m}``; degree+1 for a
    general polynomial ``{"coeffs": [...]}`` (at least 2).  Other families: the generator
    module's ``kmin(params)``.
    """
    if family == "kl":
        return 2
    if family == "power":
        if "m" in params:
            m = params["m"]
            if isinstance(m, bool) or not isinstance(m, int) or m < 0:
                raise ValueError(f"power params 'm' must be a non-negative integer, received {m!r}")
            return max(m + 1, 2)
        if "coeffs" in params:
            try:
                return max(_poly_degree(params["coeffs"]) + 1, 2)
            except (ValueError, ZeroDivisionError, TypeError):
                raise ValueError(
                    f"power params 'coeffs' must be rationals as strings, received {params['coeffs']!r}"
                ) from None
        raise ValueError(f"power params need 'm' or 'coeffs', received {dict(params)!r}")
    for (fam, _meth), modname in GENERATORS.items():
        if fam == family:
            mod = importlib.import_module(modname)
            if hasattr(mod, "kmin"):
                return int(mod.kmin(params))
    raise ValueError(f"no standard K grid rule for family {family!r}; give an explicit Ks list")


def _validate_entry(i: int, entry, path: str) -> TableSpec:
    where = f"{path}: [[table]] #{i + 1}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table, received {entry!r}")  # noqa: TRY004 - spec error
    unknown = set(entry) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(_SPEC_KEYS)}")
    for key in ("name", "family", "method"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{where}: '{key}' must be a non-empty string, received {entry.get(key)!r}")
    name = entry["name"]
    where = f"{path}: table {name!r}"
    if not _NAME_RE.match(name):
        raise ValueError(f"{where}: name must match {_NAME_RE.pattern} (it is the file stem)")
    key = (entry["family"], entry["method"])
    if key not in GENERATORS:
        raise ValueError(
            f"{where}: unknown (family, method) {key!r}; known: {sorted(GENERATORS)}"
        )
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{where}: 'params' must be an inline table, received {params!r}")  # noqa: TRY004
    try:
        canonical_json(params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: 'params' must be JSON-serialisable: {e}") from None
    Ks_spec = entry.get("Ks", "standard")
    if Ks_spec == "standard":
        try:
            Ks = standard_Ks(standard_kmin(entry["family"], params))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    elif isinstance(Ks_spec, list) and Ks_spec:
        if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in Ks_spec):
            raise ValueError(f"{where}: 'Ks' must be \"standard\" or a list of positive integers, received {Ks_spec!r}")
        if len(set(Ks_spec)) != len(Ks_spec):
            raise ValueError(f"{where}: 'Ks' has duplicates: {Ks_spec!r}")
        Ks = tuple(sorted(Ks_spec))
        if entry["family"] in ("kl", "power"):
            kmin = standard_kmin(entry["family"], params)
            if Ks[0] < kmin:
                raise ValueError(f"{where}: K={Ks[0]} is below the smallest valid K={kmin} for this target")
        Ks_spec = tuple(Ks_spec)
    else:
        raise ValueError(f"{where}: 'Ks' must be \"standard\" or a non-empty list of integers, received {Ks_spec!r}")
    return TableSpec(name, entry["family"], entry["method"], dict(params), Ks, Ks_spec)


def load_spec(path: str | os.PathLike) -> list[TableSpec]:
    """Parse and validate a spec file (``[[table]]`` entries, see docs/ARCHITECTURE.md).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Invalid TOML, no ``[[table]]`` entries, an unknown key, family/method, a bad name,
        params or Ks, or a duplicate name; the message names the file and the entry.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"spec file not found: {path}")
    doc = _load_toml(path)
    extra = set(doc) - {"table"}
    if extra:
        raise ValueError(f"{path}: unknown top-level key(s) {sorted(extra)}; expected only [[table]] entries")
    entries = doc.get("table")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: no [[table]] entries")
    specs = [_validate_entry(i, e, path) for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"{path}: duplicate table name(s) {dups}")
    return specs


# --------------------------------------------------------------------------------------------
# generators, hashes, provenance
# --------------------------------------------------------------------------------------------


def generator(spec: TableSpec):
    """Import and return the generator module for ``spec`` (ImportError names the table)."""
    modname = GENERATORS[(spec.family, spec.method)]
    try:
        return importlib.import_module(modname)
    except ImportError as e:
        raise ImportError(f"table {spec.name!r}: generator module {modname!r} cannot be imported: {e}") from e


def inputs_hash(spec: TableSpec, generator_version: str) -> str:
    """sha256 (hex) of canonical JSON of {name, family, method, params, Ks, generator_version,
    schema_version} -- the up-to-date key stored in each file."""
    doc = {
        "name": spec.name,
        "family": spec.family,
        "method": spec.method,
        "params": spec.params,
        "Ks": list(spec.Ks),
        "generator_version": str(generator_version),
        "schema_version": SCHEMA_VERSION,
    }
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def _current_table(spec: TableSpec, path: str, generator_version: str):
    """The valid TableData at ``path`` if it was built from ``spec``'s inputs, else None."""
    if not os.path.isfile(path):
        return None
    try:
        if read_attrs(path).get("inputs_hash") != inputs_hash(spec, generator_version):
            return None
        return read_table(path, check_hash=True)
    except TableFormatError:
        return None


def is_up_to_date(spec: TableSpec, path: str | os.PathLike, generator_version: str | None = None) -> bool:
    """True iff ``path`` exists, its ``inputs_hash`` matches ``spec`` and its content hash checks."""
    if generator_version is None:
        generator_version = generator(spec).GENERATOR_VERSION
    return _current_table(spec, os.fspath(path), generator_version) is not None


_GIT_CACHE: dict = {}


def git_commit() -> str | None:
    """HEAD commit of the git checkout holding the aqpgen source, with ``"+dirty"`` appended when
    tracked or untracked (non-ignored) files outside ``tables/`` differ; None outside git."""
    if "commit" in _GIT_CACHE:
        return _GIT_CACHE["commit"]
    src = os.path.dirname(os.path.abspath(__file__))
    commit = None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode == 0:
            commit = head.stdout.strip()
            top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=src, capture_output=True,
                                 text=True, timeout=10, check=False).stdout.strip()
            st = subprocess.run(["git", "status", "--porcelain", "--", ".", ":(exclude)tables"],
                                cwd=top or src, capture_output=True, text=True, timeout=30, check=False)
            if st.returncode == 0 and st.stdout.strip():
                commit += "+dirty"
    except (OSError, subprocess.SubprocessError):
        commit = None
    _GIT_CACHE["commit"] = commit
    return commit


def _display_path(path: str) -> str:
    """``path`` relative to the working directory when below it, else its base name (so that the
    recorded command never contains machine-specific absolute paths)."""
    rel = os.path.relpath(os.path.abspath(path), os.getcwd())
    return rel.replace(os.sep, "/") if not rel.startswith("..") else os.path.basename(path)


def _provenance(spec: TableSpec, spec_path: str, mod, command: str | None) -> dict:
    from aqpgen import __version__

    if command is None:
        command = f"aqpgen build {_display_path(spec_path)} --only {spec.name}"
    return {
        "aqpgen_version": __version__,
        "git_commit": git_commit(),
        "command": command,
        "generator": mod.__name__,
        "generator_version": str(mod.GENERATOR_VERSION),
        "spec_Ks": spec.Ks_spec if spec.Ks_spec == "standard" else list(spec.Ks_spec),
    }


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


def _run_K(modname: str, K: int, params: dict, tables_dir: str) -> KResult:
    """Worker: import the generator by name and build one row (picklable entry point)."""
    return importlib.import_module(modname).build_K(K, params, tables_dir=tables_dir)


def _pool_context():
    import multiprocessing

    # fork keeps generators registered at run time (tests) visible to workers; spawn elsewhere
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _check_result(spec: TableSpec, K: int, r) -> KResult:
    if not isinstance(r, KResult):
        raise BuildError(f"table {spec.name!r}: build_K({K}) returned {type(r).__name__}, not KResult")
    if int(r.K) != K:
        raise BuildError(f"table {spec.name!r}: build_K({K}) returned a row for K={r.K}")
    return r


def _build_rows(spec: TableSpec, mod, executor, emit, tables_dir: str) -> list:
    order = sorted(spec.Ks, reverse=True)  # largest first: better load balance
    total = len(order)
    results = []
    if executor is None:
        for i, K in enumerate(order):
            try:
                r = mod.build_K(K, dict(spec.params), tables_dir=tables_dir)
            except Exception as e:
                raise BuildError(f"table {spec.name!r}: build_K failed at K={K}: {type(e).__name__}: {e}") from e
            results.append(_check_result(spec, K, r))
            emit(Progress("K", spec.name, K, i + 1, total))
        return results
    from concurrent.futures import FIRST_EXCEPTION, wait

    futures = {executor.submit(_run_K, mod.__name__, K, dict(spec.params), tables_dir): K for K in order}
    pending = set(futures)
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in sorted(finished, key=lambda f: -futures[f]):
                K = futures[fut]
                exc = fut.exception()
                if exc is not None:
                    raise BuildError(
                        f"table {spec.name!r}: build_K failed at K={K}: {type(exc).__name__}: {exc}"
                    ) from exc
                results.append(_check_result(spec, K, fut.result()))
                emit(Progress("K", spec.name, K, len(results), total))
    except BaseException:
        for fut in pending:
            fut.cancel()
        raise
    return results


def build(
    spec_path: str | os.PathLike = DEFAULT_SPEC,
    out_dir: str | os.PathLike | None = None,
    *,
    jobs: int = 1,
    only: Iterable[str] | None = None,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    command: str | None = None,
) -> list[TableOutcome]:
    """Build every out-of-date table of a spec file, in spec-file order.

    Parameters
    ----------
    spec_path : path-like
        The spec file (default ``tables/tables.toml``).
    out_dir : path-like, optional
        Where ``<name>.h5`` and ``MANIFEST.json`` go; default: the spec file's directory.
    jobs : int
        Worker processes for the per-K ``build_K`` calls (1 = in process).
    only : iterable of str, optional
        Build only these table names (ValueError for an unknown name).
    force : bool
        Rebuild even up-to-date tables.
    progress : callable, optional
        Called with a :class:`Progress` event for every skipped table, started table, finished
        K and written table.
    command : str, optional
        Command recorded in the provenance; default the canonical
        ``aqpgen build <spec> --only <name>``.

    Returns
    -------
    list of TableOutcome
        One per selected table, in spec order.

    Raises
    ------
    BuildError
        A ``build_K`` raised: nothing is written for that table; the message names table and K.
        Tables finished before it are kept (and listed in the manifest).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, received {jobs!r}")
    spec_path = os.fspath(spec_path)
    specs = load_spec(spec_path)
    out_dir = os.fspath(out_dir) if out_dir is not None else os.path.dirname(os.path.abspath(spec_path))
    if only is not None:
        only = list(only)
        known = [s.name for s in specs]
        unknown = [n for n in only if n not in known]
        if unknown:
            raise ValueError(f"unknown table name(s) {unknown} for --only; {spec_path} has {known}")
        specs = [s for s in specs if s.name in only]
    emit = progress or (lambda ev: None)
    os.makedirs(out_dir, exist_ok=True)

    executor = None
    outcomes: list[TableOutcome] = []
    try:
        for spec in specs:
            mod = generator(spec)
            path = os.path.join(out_dir, spec.filename)
            ihash = inputs_hash(spec, mod.GENERATOR_VERSION)
            current = None if force else _current_table(spec, path, mod.GENERATOR_VERSION)
            if current is not None:
                emit(Progress("skip", spec.name))
                outcomes.append(TableOutcome(spec.name, path, "up-to-date", _not_ok(current),
                                             current.content_hash))
                continue
            emit(Progress("start", spec.name, total=len(spec.Ks)))
            if jobs > 1 and executor is None:
                from concurrent.futures import ProcessPoolExecutor

                executor = ProcessPoolExecutor(max_workers=jobs, mp_context=_pool_context())
            results = _build_rows(spec, mod, executor, emit, os.path.abspath(out_dir))
            table = make_table(
                name=spec.name, family=spec.family, target=str(mod.target_name(dict(spec.params))),
                method=spec.method, params=spec.params,
                provenance=_provenance(spec, spec_path, mod, command),
                results=results, inputs_hash=ihash,
            )
            written = write_table(path, table)
            update_manifest(out_dir)
            emit(Progress("written", spec.name, done=len(spec.Ks), total=len(spec.Ks)))
            outcomes.append(TableOutcome(spec.name, path, "built", _not_ok(written), written.content_hash))
        if any(o.action == "up-to-date" for o in outcomes) or not outcomes:
            update_manifest(out_dir)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return outcomes


def _not_ok(t) -> tuple:
    return tuple((K, t.rows[K].status) for K in t.Ks if t.rows[K].status != "ok")
