"""CLI commands ``audit`` and ``report`` (thin layer over aqpgen.audit / aqpgen.report).

Heavy optional dependencies (h5py, flint, matplotlib) are imported inside the functions that
need them (here: h5py in ``_count_rows``).
"""

from __future__ import annotations

import json
import os
import sys

import click

from aqpgen import audit as A
from aqpgen.audit import TOLERANCE_HELP
from aqpgen.cli import CONVENTIONS, progress_bar
from aqpgen.cli.build_cmds import default_tables, resolve_table
from aqpgen.report import readme as R
from aqpgen.report import write as W
from aqpgen.store.atomic import NotWritableError, check_writable, write_text_atomic

_AUDIT_HELP = """\
Independently audit table files: recompute every claim from the stored values alone.

Checks the container (HDF5 readable, schema name/version, content hash recomputed, file sha256
against MANIFEST.json), then for every K: polynomial (ustat) tables -- the stored rationals equal
the exact U-statistic table, their mean polynomial equals the header's target in exact
arithmetic, float64 values correctly rounded; minimax and AQP tables for log p or p^a -- beta
(sup of p|g_c(p) - g(p)|, located on a fine grid and refined by Newton's method in ball
arithmetic), V_inf, V1 (exact integral), max|c|, a fresh certified bound
(aqpgen.numerics.certify) and the stored beta_cert; minimax -- K+1 alternating extrema, levelled
spread, E_star, and the rate Theta(K^-2) (log p) or Theta(K^-2(a+1)) (p^a); AQP presets -- the
budget (rho presets against the plug-in log(n/K) or (n/K)^a).

Prints a discrepancy table (per file and check: rows, failures, worst K, stored, recomputed,
rel diff, tolerance) and every failure with its K; exits 1 on any failure.  With no TABLES: every
table of the checkout's tables/.  Slower than `aqpgen verify` (the fast gate), which re-checks
each row through its own generator.
"""


@click.command("audit", help=_AUDIT_HELP + "\n" + TOLERANCE_HELP
               + "\n\n\b\nExamples:\n  aqpgen audit\n  aqpgen audit kl-minimax --all\n"
               "  aqpgen audit tables/*.h5 --jobs 4 --markdown /tmp/audit.md\n\n" + CONVENTIONS)
@click.argument("tables", nargs=-1)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the full audit (every finding) as JSON to this file ('-' = stdout).")
@click.option("--markdown", "md_path", type=click.Path(dir_okay=False), default=None,
              help="Write a Markdown report to this file.")
@click.option("--manifest", type=click.Path(dir_okay=False, exists=True), default=None,
              help="MANIFEST.json to check file sha256 against (default: the one beside each file).")
@click.option("--minimax", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Minimax table supplying E*_K for AQP eta presets (default: kl-minimax.h5 beside the file).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes over (file, K) rows.")
@click.option("--all", "all_rows", is_flag=True, help="Print every finding, not only failures.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def audit_cmd(tables, json_path, md_path, manifest, minimax, jobs, all_rows, quiet):
    for opt, target in (("--json", json_path), ("--markdown", md_path)):
        if target and target != "-":
            _check_writable(target, opt)
    paths = [resolve_table(t) for t in tables] if tables else default_tables(installed=False)
    total = _count_rows(paths)
    if quiet or total == 0:
        audits = A.audit_files(paths, manifest=manifest, minimax=minimax, jobs=jobs)
    else:
        with progress_bar(total, "auditing rows") as bar:
            audits = A.audit_files(paths, manifest=manifest, minimax=minimax, jobs=jobs,
                                   progress=bar.update)
    click.echo(A.format_text(audits, all_rows=all_rows))
    if json_path:
        text = json.dumps(A.to_json(audits), indent=1, sort_keys=True) + "\n"
        if json_path == "-":
            click.echo(text)
        else:
            write_text_atomic(json_path, text)
    if md_path:
        write_text_atomic(md_path, A.to_markdown(audits))
    if not all(a.ok for a in audits):
        sys.exit(1)


def _check_writable(path: str, option: str) -> None:
    """A usage error, before any work, when ``path`` cannot be written (the one check:
    ``aqpgen.store.atomic.check_writable``)."""
    try:
        check_writable(path, option)
    except NotWritableError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command("report", help="Write docs/report.md and its figures (docs/figures/*.png) from "
               "the shipped tables, and optionally assemble README.md from docs/readme/*.md with "
               "its generated blocks filled. Fails (exit 1, naming every part) when any section "
               "cannot be produced; nothing is written then.\n\n" + CONVENTIONS)
@click.option("--out", type=click.Path(dir_okay=False), default="docs/report.md", show_default=True,
              help="Report file (figures go to figures/ beside it).")
@click.option("--tables", "tables_dir", type=click.Path(file_okay=False), default="tables",
              show_default=True, help="Directory of the shipped tables.")
@click.option("--quick", is_flag=True, help="Fewer K values and seeds (for tests / previews).")
@click.option("--readme", type=click.Path(dir_okay=False), default=None,
              help="Also assemble this README from the fragments (see --fragments).")
@click.option("--fragments", type=click.Path(file_okay=False, exists=True), default=None,
              help="README fragments directory (default: docs/readme beside --readme's directory).")
@click.option("--readme-only", is_flag=True,
              help="Only re-assemble --readme from the fragments, reusing the generated blocks "
                   "already in it (no tables read, no figures).")
@click.option("--K", "K", type=click.IntRange(min=2), default=64, show_default=True,
              help="K of the bias-curve and frontier figures.")
@click.pass_context
def report_cmd(ctx, out, tables_dir, quick, readme, fragments, readme_only, K):
    frag = fragments or os.path.join(os.path.dirname(os.path.abspath(readme or "README.md")),
                                     R.FRAGMENTS_DIR)
    if readme_only:
        _readme_only(readme, frag)
        return
    try:
        res = W.write_report(out, tables_dir=tables_dir, quick=quick, K=K, readme_path=readme,
                             cli_group=ctx.find_root().command)
    except W.ReportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {out} ({len(res.figures)} figures)")
    if readme:
        try:
            changed = R.write_readme(readme, frag, res.sections)
        except (ValueError, FileNotFoundError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{readme}: {'assembled' if changed else 'unchanged'} from {frag}")


def _readme_only(readme, frag) -> None:
    """``report --readme-only``: re-assemble the README, reusing its generated blocks."""
    if not readme:
        raise click.UsageError("--readme-only needs --readme PATH")
    with open(readme, encoding="utf-8") as fh:
        old = R.extract_generated(fh.read())
    try:
        changed = R.write_readme(readme, frag, old)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(f"{exc} (run `make report` to generate every block)") from None
    click.echo(f"{readme}: {'re-assembled' if changed else 'unchanged'}")


def register(group):
    """Add ``audit`` and ``report`` to ``group``."""
    group.add_command(audit_cmd)
    group.add_command(report_cmd)


def _count_rows(paths) -> int:
    import h5py

    n = 0
    for p in paths:
        try:
            with h5py.File(p, "r") as f:
                n += int(f["K"].shape[0])
        except (OSError, KeyError):
            pass
    return n
