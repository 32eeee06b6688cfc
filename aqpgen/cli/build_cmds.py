"""CLI commands ``build``, ``show`` and ``verify`` (thin layer over aqpgen.build / tablefile / verify).

Imports the light store modules at the top; the generators and their solvers load when a command runs them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import click

from aqpgen.build.build import BuildError, build
from aqpgen.build.spec import DEFAULT_SPEC, missing_extra
from aqpgen.build.verify import (
    count_rows,
    summarize,
    verify_against,
    verify_files,
    verify_rate,
)
from aqpgen.cli import CONVENTIONS, progress_bar
from aqpgen.errors import TableFormatError
from aqpgen.report.shape import shape_note
from aqpgen.store.locate import find_table, packaged_tables_dir, source_tables_dir
from aqpgen.store.tablefile import read_table

TABLE_HELP = """\
A table file (tables/<name>.h5, HDF5 schema 'aqpgen.table' v1) holds, for every K it covers,
the K rewards c_K[1..K] (float64, plus exact / high-precision decimal strings where they
exist), per-K metrics, a status ("ok" or why the row is unavailable), solver provenance and a
content hash.  TABLE is a path or a shipped table name such as power-m2 or kl-aqp-eta15.
"""


def _default_spec() -> str:
    if os.path.isfile(DEFAULT_SPEC):
        return DEFAULT_SPEC
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(repo, DEFAULT_SPEC)


def resolve_table(ref: str) -> str:
    """A path or a table name (``aqpgen.store.locate.find_table``), as a click error when neither."""
    try:
        return str(find_table(ref))
    except FileNotFoundError as e:
        raise click.BadParameter(str(e), param_hint="TABLE") from None


def _json_float(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _fmt(x: float) -> str:
    return "nan" if isinstance(x, float) and math.isnan(x) else f"{x:.6g}"


def _Ks_text(Ks) -> str:
    if len(Ks) <= 8:
        return ", ".join(map(str, Ks))
    return f"{Ks[0]}..{Ks[-1]} ({len(Ks)} values)"


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def K_ranges(Ks_all, Ks_sel) -> str:
    """Compress ``Ks_sel`` (a subset of the table's sorted ``Ks_all``) into runs of consecutive
    grid entries: ``"300..512, 1024"``."""
    pos = {K: i for i, K in enumerate(Ks_all)}
    runs: list[list[int]] = []
    for K in sorted(Ks_sel):
        if runs and pos.get(K, -2) == pos.get(runs[-1][-1], -9) + 1:
            runs[-1].append(K)
        else:
            runs.append([K])
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def _unavailable_text(Ks_all, not_ok) -> str:
    """``"125 unavailable: K 140..1024 (out of numerical reach)"``: grouped by the reason's kind
    (its text before the first colon; ``-v`` prints each row's full reason)."""
    by: dict[str, list[int]] = {}
    for K, s in not_ok:
        kind = s.split(":", 1)[0].strip() or s
        by.setdefault(kind if len(kind) <= 60 else kind[:57] + "...", []).append(K)
    parts = [f"K {K_ranges(Ks_all, Ks)} ({kind})" for kind, Ks in by.items()]
    return f"{len(not_ok)} unavailable: " + "; ".join(parts)


def _n_K(Ks) -> str:
    if not Ks:
        return "0 K"
    return f"{len(Ks)} K ({Ks[0]}..{Ks[-1]})" if len(Ks) > 3 else f"{len(Ks)} K ({', '.join(map(str, Ks))})"


class _Reporter:
    """Progress callback of ``aqpgen build``: a transient progress bar on a terminal (unless
    quiet), a line per finished K with ``verbose``, notes, and a summary line per table."""

    def __init__(self, quiet: bool, verbose: bool):
        self.quiet, self.verbose = quiet, verbose
        self.bar = None
        self.t0: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.last_line = 0.0

    def __call__(self, ev) -> None:
        now = time.monotonic()
        if ev.kind == "note":
            click.echo(f"note: {ev.table}", err=True)
        elif ev.kind == "start":
            self.t0[ev.table] = now
            self.last_line = now
            if self.verbose:
                click.echo(f"{ev.table}: building {ev.total} K values", err=True)
            elif not self.quiet and sys.stderr.isatty():
                self.bar = click.progressbar(length=ev.total, label=ev.table, file=sys.stderr,
                                             show_pos=True, item_show_func=lambda K: f"K={K}" if K else "")
                self.bar.__enter__()
        elif ev.kind == "K":
            if self.bar is not None:
                self.bar.update(1, ev.K)
            elif self.verbose:
                click.echo(f"  {ev.table}: K={ev.K} done ({ev.done}/{ev.total})", err=True)
            elif not self.quiet and now - self.last_line >= 30:  # a long build on a pipe: a line each 30 s
                self.last_line = now
                click.echo(f"  {ev.table}: {ev.done}/{ev.total} K done", err=True)
        elif ev.kind == "written":
            self.close()
            self.seconds[ev.table] = now - self.t0.get(ev.table, now)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def summary(self, o) -> str:
        if o.action == "built":
            head = f"{o.name}: built {_n_K(o.Ks)} in {self.seconds.get(o.name, 0.0):.1f} s"
        else:
            head = f"{o.name}: up to date, {_n_K(o.Ks)}"
        if not o.not_ok:
            return head
        return f"{head}; {_unavailable_text(o.Ks, o.not_ok)}"


@click.command(
    "build",
    help="Build the tables listed in a spec file (default tables/tables.toml).\n\n"
    "The whole spec (keys, params, K lists; K at most MAX_K = 4096) is validated before anything "
    "is solved.  Each [[table]] entry makes <out>/<name>.h5.  A table whose recorded inputs (name, "
    "family, method, params, Ks, generator and schema versions) match the spec and whose content "
    "hash checks is skipped, so rerunning is cheap.  Files are written to a temporary file and "
    "renamed (never left half-written; temporary files of an interrupted build are removed by the "
    "next one), one build at a time per directory (<out>/.build.lock), bytes are reproducible "
    "(no time stamp, path or git commit inside), and <out>/MANIFEST.json is updated.  Writing the "
    "source checkout's tables/ from a tree with uncommitted changes needs --allow-dirty, and from "
    "an environment whose numerical libraries differ from constraints.txt --allow-unlocked (the "
    "provenance records the lock's hash; `make venv` installs from it; a table built by other "
    "versions counts as out of date).\n\n"
    "Prints one line per table (unavailable K ranges compressed); -v for every K.\n\n"
    "The spec keys (name, family, method, params, Ks) and every family's params: docs/BUILDING.md; "
    "an example to copy: README.md, section 'Build your own table'.\n\n"
    "\b\nExamples:\n  aqpgen build                       # everything, in spec order\n"
    "  aqpgen build --only power-m2 --jobs 2\n  aqpgen build my.toml --out /tmp/t --force\n"
    "  aqpgen build my.toml --out /tmp/t --dask local --jobs 2\n"
    "  aqpgen build my.toml --out /shared/t --dask tcp://scheduler:8786   # docs/SCALING.md\n\n"
    + CONVENTIONS,
)
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(min=1),
              help="Worker processes for the per-K builds (largest K first); Dask workers with --dask local.")
@click.option("--only", multiple=True, metavar="NAME", help="Build only this table (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild even tables that are up to date.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: the spec file's directory).")
@click.option("--dask", "dask", metavar="ADDRESS", default=None,
              help="Run the per-K solves on Dask: 'local' (a LocalCluster of --jobs workers) or a "
              "scheduler address such as tcp://host:8786.  Needs pip install 'aqpgen[dask]'.")
@click.option("--allow-dirty", is_flag=True,
              help="Allow writing the source checkout's tables/ from a tree with uncommitted changes.")
@click.option("--allow-unlocked", is_flag=True,
              help="Allow writing the source checkout's tables/ from an environment that does not "
              "match constraints.txt.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar / progress lines (summary lines only).")
@click.option("--verbose", "-v", is_flag=True, help="A line per finished K, and every unavailable row.")
def build_cmd(spec, jobs, only, force, out_dir, dask, allow_dirty, allow_unlocked, quiet, verbose):
    spec = spec or _default_spec()
    if not os.path.isfile(spec):
        raise click.BadParameter(f"spec file {spec!r} not found", param_hint="SPEC")
    rep = _Reporter(quiet, verbose)
    try:
        outcomes = build(spec, out_dir, jobs=jobs, only=list(only) or None, force=force, progress=rep,
                         allow_dirty=allow_dirty, dask=dask, allow_unlocked=allow_unlocked)
    except BuildError as e:
        raise click.ClickException(f"build failed, nothing written for this table: {e}") from None
    except ConnectionError as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    except ImportError as e:
        hint = missing_extra(e.__cause__ or e) if not isinstance(e, ModuleNotFoundError) else missing_extra(e)
        raise click.ClickException(str(e) + (f"\n{hint}" if hint and hint not in str(e) else "")) from None
    finally:
        rep.close()
    for o in outcomes:
        click.echo(rep.summary(o))
        if verbose:
            for K, s in o.not_ok:
                click.echo(f"  {o.name} K={K}: {s}")
    built = [o.name for o in outcomes if o.action == "built"]
    click.echo(f"{len(built)} built, {len(outcomes) - len(built)} up to date")
    n_bad = sum(len(o.not_ok) for o in outcomes)
    if n_bad:
        click.echo(f"note: {n_bad} row(s) are recorded as unavailable (status != ok), as expected where a "
                   "preset is out of numerical reach at that K: not a build failure; the runtime refuses "
                   "to serve them; `aqpgen show NAME` lists each with its reason (-v here)")


# --------------------------------------------------------------------------------------------
# show
# --------------------------------------------------------------------------------------------


@click.command(
    "show",
    help="Show a table's metadata, or one row with --K.  A row recorded as unavailable (status "
    "not ok: infeasible, out of numerical reach) prints its status and reason instead of values "
    "and exits 1 (with --json too: \"values\" is null).\n\n" + TABLE_HELP
    + "\n\b\nExamples:\n  aqpgen show power-m2\n  aqpgen show power-m2 --K 8\n"
    "  aqpgen show tables/kl-minimax.h5 --K 16 --json\n\n" + CONVENTIONS,
)
@click.argument("table")
@click.option("--K", "K", type=int, default=None, help="Print the row c_K[1..K] with its metrics.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON (NaN as null).")
def show_cmd(table, K, as_json):
    path = resolve_table(table)
    try:
        t = read_table(path)
    except TableFormatError as e:
        raise click.ClickException(str(e)) from None
    if K is not None and K not in t.rows:
        raise click.BadParameter(f"K={K} is not in {t.name} (Ks {_Ks_text(t.Ks)})", param_hint="--K")
    doc = _show_doc(path, t, K)
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        _show_header(path, t)
        if t.method == "aqp":  # why rows may fall as n rises, and what the shape costs (MATH §5b)
            click.echo(f"  shape         {shape_note(t, K, os.path.dirname(path))}")
        if K is None:
            _show_summary(t, doc)
        else:
            _show_row(t, K)
    if K is not None and t.rows[K].status != "ok":
        raise SystemExit(1)


def _show_doc(path: str, t, K) -> dict:
    """The JSON document of ``aqpgen show`` (a row's values are null when it is unavailable)."""
    head = {
        "file": path, "name": t.name, "family": t.family, "target": t.target, "method": t.method,
        "params": t.params, "provenance": t.provenance, "content_hash": t.content_hash,
        "inputs_hash": t.inputs_hash,
    }
    if K is None:
        return {**head, "Ks": list(t.Ks), "metric_names": list(t.metric_names),
                "not_ok": {str(k): t.rows[k].status for k in t.Ks if t.rows[k].status != "ok"},
                "metrics": {str(k): {m: _json_float(v) for m, v in t.rows[k].metrics.items()} for k in t.Ks}}
    r = t.rows[K]
    ok = r.status == "ok"
    return {**head, "K": K, "status": r.status,
            "values": [_json_float(float(v)) for v in r.values] if ok else None,
            "values_hp": list(r.values_hp) if ok and r.values_hp is not None else None,
            "metrics": {k: _json_float(v) for k, v in r.metrics.items()}, "solver": r.solver}


def _show_header(path: str, t) -> None:
    click.echo(f"{t.name}: target {t.target}  (family {t.family}, method {t.method}, params {json.dumps(t.params)})")
    click.echo(f"  file          {path}")
    click.echo(f"  Ks            {_Ks_text(t.Ks)}")
    click.echo(f"  content hash  {t.content_hash}")
    for k, v in sorted(t.provenance.items()):
        click.echo(f"  {k:<13} {v}")


def _show_summary(t, doc) -> None:
    click.echo(f"  metrics       {', '.join(t.metric_names) or '-'}")
    bad = doc["not_ok"]
    click.echo(f"  rows not ok   {len(bad)}" + "".join(f"\n    K={k}: {s}" for k, s in bad.items()))
    click.echo("Use --K K to print a row: c_K[n] is the reward of a completion whose answer is shared by n of the K.")


def _show_row(t, K) -> None:
    r = t.rows[K]
    if r.status != "ok":
        click.echo(f"K = {K}: unavailable (status: {r.status}); solver {json.dumps(r.solver, sort_keys=True)}")
        click.echo(f"The runtime refuses to serve this row; `aqpgen show {t.name}` lists every row "
                   "that is not ok.", err=True)
        return
    click.echo(f"K = {K}: status {r.status}; solver {json.dumps(r.solver, sort_keys=True)}")
    for k, v in r.metrics.items():
        click.echo(f"  {k:<13} {_fmt(v)}")
    hp = r.values_hp is not None
    click.echo(f"{'n':>6}  {'c_K[n]':>24}" + ("  exact/high-precision" if hp else ""))
    for n in range(1, K + 1):
        line = f"{n:>6}  {float(r.values[n - 1]):>24.17g}"
        if hp:
            s = r.values_hp[n - 1]
            line += "  " + (s if len(s) <= 60 else s[:57] + "...")
        click.echo(line)


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


@click.command(
    "verify",
    help="Re-verify table files: schema, content hash, manifest entry and, per K, the "
    "generator's own checks from the stored values (for power tables: exact unbiasedness in "
    "rational arithmetic).  Exits non-zero if any check fails.  With no TABLES: every table of "
    "the tables directory (the checkout's tables/, else the tables installed with the package). "
    "Rows are verified by --jobs worker processes, largest K first, with a progress bar on "
    "stderr.\n\n" + TABLE_HELP
    + "\n\nWith --against REF (a table file, or a directory holding a file of the same name) each "
    "file is also compared row by row with that reference build: 'values differ' (the served "
    "rewards change) and 'metrics differ in the last bits' are reported separately, with the K "
    "and the largest relative difference."
    + "\n\n\b\nExamples:\n  aqpgen verify\n  aqpgen verify tables/*.h5 --jobs 4\n"
    "  aqpgen verify kl-minimax --rate\n"
    "  aqpgen verify /tmp/rebuilt/power-m1.h5 --against tables/\n\n" + CONVENTIONS,
)
@click.argument("tables", nargs=-1)
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes over the (file, K) rows, BLAS on one thread each (as "
                   "`aqpgen audit`; 1: in this process).")
@click.option("--rate", is_flag=True, help="Also audit the rate: K^2*E*_K settles, log-log slope -2 +- 0.01 "
              "(KL minimax tables).")
@click.option("--against", "against", metavar="REF", default=None,
              type=click.Path(exists=True),
              help="Also compare with this reference build (a file, or a directory with a file of "
              "the same name).")
@click.option("--json", "as_json", is_flag=True, help="Every check as JSON.")
@click.option("--all", "show_all", is_flag=True, help="Print every check, not only a summary and the failures.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify_cmd(tables, jobs, rate, against, as_json, show_all, quiet):
    paths = [resolve_table(ref) for ref in tables] if tables else default_tables()
    refs = {p: _against_ref(p, against) for p in paths} if against is not None else {}
    total = 0 if quiet else count_rows(paths)
    if total:
        with progress_bar(total, "verifying rows") as bar:
            results = verify_files(paths, jobs=jobs, progress=bar.update)
    else:
        results = verify_files(paths, jobs=jobs)
    for path in paths:
        if rate:
            results[path] += verify_rate(path)
        if path in refs:
            results[path] += verify_against(path, refs[path])
    failed = sum(not c.ok for cs in results.values() for c in cs)
    if as_json:
        doc = {p: [{"name": c.name, "ok": c.ok, "K": c.K, "detail": c.detail} for c in cs] for p, cs in results.items()}
        click.echo(json.dumps({"failed": failed, "files": doc}, indent=2, sort_keys=True))
    else:
        for path, cs in results.items():
            _print_checks(path, cs, show_all)
    if failed:
        raise SystemExit(1)


def default_tables(*, installed: bool = True) -> list:
    """Every ``*.h5`` of the tables directory (the checkout's ``tables/``, else -- with
    ``installed`` -- the tables installed with the package); a usage error when there is none."""
    d = source_tables_dir() or (packaged_tables_dir() if installed else None)
    files = sorted(str(f) for f in d.glob("*.h5")) if d is not None else []
    if not files:
        where = "neither a checkout's tables/ nor installed tables" if installed else "no checkout's tables/"
        raise click.UsageError(f"no TABLES given and no tables directory with *.h5 files found ({where})")
    return files


def _against_ref(path: str, against: str) -> str:
    other = os.path.join(against, os.path.basename(path)) if os.path.isdir(against) else against
    if not os.path.isfile(other):
        raise click.BadParameter(f"no reference {other!r} for {path}", param_hint="--against")
    return other


def _print_checks(path: str, cs, show_all: bool) -> None:
    """One file's summary table and its failures (every check with ``show_all``)."""
    nbad = sum(not c.ok for c in cs)
    click.secho(f"{path}: {'OK' if nbad == 0 else f'{nbad} FAILED'} ({len(cs)} checks)",
                fg="green" if nbad == 0 else "red", bold=True)
    click.echo(f"  {'check':<22} {'passed':>7} {'failed':>7}")
    for name, (p, f) in summarize(cs).items():
        click.echo(f"  {name:<22} {p:>7} {f:>7}")
    for c in cs:
        if show_all or not c.ok or c.K is None:
            where = f"K={c.K}: " if c.K is not None else ""
            click.echo(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {where}{c.detail}")


def register(group):
    """Add ``build``, ``show`` and ``verify`` to ``group``."""
    group.add_command(build_cmd)
    group.add_command(show_cmd)
    group.add_command(verify_cmd)
