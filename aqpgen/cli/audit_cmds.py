"""CLI commands ``audit`` and ``report`` (thin layer over aqpgen.audit / aqpgen.report).

Heavy imports (h5py, flint, matplotlib) happen inside the command functions.
"""

from __future__ import annotations

import json
import os
import sys

import click

from aqpgen import audit as A
from aqpgen.audit import TOLERANCE_HELP
from aqpgen.cli import CONVENTIONS
from aqpgen.cli.build_cmds import resolve_table

_AUDIT_HELP = """\
Independently audit table files: recompute every claim from the stored values alone.

Checks the container (HDF5 readable, schema name/version, content hash recomputed, file sha256
against MANIFEST.json), then for every K: power tables -- the stored rationals equal the exact
U-statistic table, their mean polynomial equals the header's target in exact arithmetic, float64
values correctly rounded; KL tables -- beta (sup of p|g_c(p) - log p|, located on a fine grid
and refined by Newton's method in ball arithmetic), V_inf, V1 (exact integral), max|c|, a fresh
certified bound (aqpgen.certify), and the stored beta_cert; minimax -- K+1 alternating
extrema, levelled spread, E_star, and the Theta(1/K^2) rate; AQP presets -- the budget.

Prints a discrepancy table (per file and check: rows, failures, worst K, stored, recomputed,
rel diff, tolerance) and every failure with its K; exits 1 on any failure.
"""


def register(group):
    """Add ``audit`` and ``report`` to ``group``."""
    @group.command("audit", help=_AUDIT_HELP + "\n" + TOLERANCE_HELP + "\n\n" + CONVENTIONS)
    @click.argument("tables", nargs=-1, required=True)
    @click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
                  help="Write the full audit (every finding) as JSON to this file ('-' = stdout).")
    @click.option("--markdown", "md_path", type=click.Path(dir_okay=False), default=None,
                  help="Write a Markdown report to this file.")
    @click.option("--manifest", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="MANIFEST.json to check file sha256 against (default: the one beside each file).")
    @click.option("--minimax", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Minimax table supplying E*_K for AQP eta presets (default: kl-minimax.h5 beside the file).")
    @click.option("--jobs", "-j", type=int, default=2, show_default=True,
                  help="Worker processes over (file, K) rows.")
    @click.option("--all", "all_rows", is_flag=True, help="Print every finding, not only failures.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
    def audit_cmd(tables, json_path, md_path, manifest, minimax, jobs, all_rows, quiet):
        if jobs < 1:
            raise click.BadParameter(f"must be >= 1, received {jobs}", param_hint="--jobs")
        paths = [resolve_table(t) for t in tables]
        total = _count_rows(paths)
        if quiet or total == 0:
            audits = A.audit_files(paths, manifest=manifest, minimax=minimax, jobs=jobs)
        else:
            with click.progressbar(length=total, label="auditing rows", file=sys.stderr) as bar:
                audits = A.audit_files(paths, manifest=manifest, minimax=minimax, jobs=jobs,
                                       progress=bar.update)
        click.echo(A.format_text(audits, all_rows=all_rows))
        if json_path:
            text = json.dumps(A.to_json(audits), indent=1, sort_keys=True) + "\n"
            if json_path == "-":
                click.echo(text)
            else:
                _write(json_path, text)
        if md_path:
            _write(md_path, A.to_markdown(audits))
        if not all(a.ok for a in audits):
            sys.exit(1)

    @group.command("report", help="Write docs/report.md: figures (docs/figures/*.png), the compare "
                   "tables and the simulation results, all generated from the shipped tables by "
                   "code; optionally rewrite the generated sections of README.md.\n\n" + CONVENTIONS)
    @click.option("--out", type=click.Path(dir_okay=False), default="docs/report.md", show_default=True,
                  help="Report file (figures go to figures/ beside it).")
    @click.option("--tables", "tables_dir", type=click.Path(file_okay=False), default="tables",
                  show_default=True, help="Directory of the shipped tables.")
    @click.option("--quick", is_flag=True, help="Fewer K values and seeds (for tests / previews).")
    @click.option("--readme", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="Also rewrite the README's <!-- generated:NAME --> sections (tables, usage, cli, "
                       "results, choices) from the same run.")
    @click.option("--K", "K", type=int, default=64, show_default=True,
                  help="K of the bias-curve and frontier figures.")
    def report_cmd(out, tables_dir, quick, readme, K):
        from aqpgen.report import core as R

        res = R.write_report(out, tables_dir=tables_dir, quick=quick, K=K, readme=readme)
        click.echo(f"wrote {out} ({len(res.figures)} figures)")
        for note in res.notes:
            click.echo(f"note: {note}", err=True)
        if readme:
            changed = R.update_readme(readme, res.sections)
            click.echo(f"{readme}: rewrote {len(changed)} generated section(s): {', '.join(changed) or 'none'}")


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


def _write(path: str, text: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
