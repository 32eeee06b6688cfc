"""Reports of an audit: the per-(file, check) summary, plain text, JSON and Markdown.

Public names
------------
summary_rows(audits)  -- per (file, check) aggregation: worst K, worst rel. diff, failures.
format_text(audits)   -- the plain-text discrepancy table the CLI prints.
to_json(audits)       -- JSON-serialisable dict of everything (schema ``aqpgen.audit`` v1).
to_markdown(audits)   -- a Markdown report (summary per file and every failure).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from aqpgen.audit.findings import TOLERANCE_HELP, TOLERANCES, FileAudit

__all__ = ["format_text", "summary_rows", "to_json", "to_markdown"]


def summary_rows(audits: Sequence[FileAudit]) -> list[dict]:
    """One row per (file, check): number of findings, failures, and the worst one.

    The worst finding is the first failure if any, else the one with the largest rel. diff.
    """
    rows = []
    for a in audits:
        by: dict = {}
        for f in a.findings:
            by.setdefault(f.check, []).append(f)
        for check, fs in by.items():
            bad = [f for f in fs if not f.ok]
            w = bad[0] if bad else max(fs, key=lambda f: -1.0 if f.rel_diff is None else f.rel_diff)
            rows.append({"file": a.path and os.path.basename(a.path), "check": check, "n": len(fs),
                         "failed": len(bad), "K": w.K, "stored": w.stored, "recomputed": w.recomputed,
                         "rel_diff": w.rel_diff, "tolerance": w.tolerance, "ok": not bad,
                         "detail": w.detail})
    return rows


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.10g}"
    s = str(x)
    return s if len(s) <= 18 else s[:15] + "..."


def format_text(audits: Sequence[FileAudit], all_rows: bool = False) -> str:
    """The plain-text discrepancy table: per (file, check) the worst K, then every failure."""
    head = ("file", "check", "rows", "fail", "worst K", "stored", "recomputed", "rel diff", "tolerance", "ok")
    rows = summary_rows(audits)
    table = [head] + [(r["file"], r["check"], str(r["n"]), str(r["failed"]), _fmt(r["K"]), _fmt(r["stored"]),
                       _fmt(r["recomputed"]), "-" if r["rel_diff"] is None else f"{r['rel_diff']:.2e}",
                       r["tolerance"], "ok" if r["ok"] else "FAIL") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    fails = [f for a in audits for f in a.findings if not f.ok]
    shown = [f for a in audits for f in a.findings] if all_rows else fails
    if shown:
        lines += ["", "All findings:" if all_rows else "Failures:"]
        for f in shown:
            k = f"K={f.K}" if f.K is not None else "file"
            lines.append(f"  {'FAIL' if not f.ok else 'ok  '} {f.file} {k} {f.check}: {f.detail}")
    nrows = sum(len({f.K for f in a.findings if f.K is not None}) for a in audits)
    lines += ["", (f"{len(audits)} file(s), {nrows} row(s), {sum(len(a.findings) for a in audits)} checks, "
              f"{len(fails)} failure(s): {'AUDIT PASSED' if not fails else 'AUDIT FAILED'}")]
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, np.generic):  # numpy scalars (bool_, float64, int64) -> Python
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def to_json(audits: Sequence[FileAudit]) -> dict:
    """Everything as a JSON-serialisable dict (schema ``aqpgen.audit`` version 1)."""
    return {
        "schema": "aqpgen.audit",
        "version": 1,
        "ok": bool(all(a.ok for a in audits)),
        "tolerances": dict(TOLERANCES),
        "files": [{
            "file": os.path.basename(a.path), "name": a.name, "family": a.family, "method": a.method,
            "ok": bool(a.ok), "checks": len(a.findings), "failures": len(a.failures), "rate": a.rate,
        } for a in audits],
        "summary": [{k: _jsonable(v) for k, v in r.items()} for r in summary_rows(audits)],
        "findings": [{k: _jsonable(v) for k, v in asdict(f).items()} for a in audits for f in a.findings],
    }


def _md_cell(x) -> str:
    return _fmt(x).replace("|", "\\|")


def to_markdown(audits: Sequence[FileAudit], title: str = "Audit report") -> str:
    """A Markdown report: verdict, tolerances, per-file summary tables and every failure."""
    fails = [f for a in audits for f in a.findings if not f.ok]
    out = [f"# {title}", "",
           (f"**{'PASSED' if not fails else 'FAILED'}**: {len(audits)} file(s), "
            f"{sum(len(a.findings) for a in audits)} checks, {len(fails)} failure(s)."), "",
           TOLERANCE_HELP, ""]
    for a in audits:
        out += [f"## {os.path.basename(a.path)} ({a.family}/{a.method}) — {'ok' if a.ok else 'FAILED'}", ""]
        if a.rate:
            r = -a.rate["expected"]
            out += [(f"Rate: slope {a.rate['slope']:.5f} (expected {a.rate['expected']:g}) over K in "
                    f"{a.rate['K_range']}, K^{r:g}·E*_K at K={a.rate['K_range'][1]}: "
                    f"{a.rate['KrE_at_Kmax']:.10g}"), ""]
        out.append("| check | rows | failed | worst K | stored | recomputed | rel diff | tolerance |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in summary_rows([a]):
            rd = "-" if r["rel_diff"] is None else f"{r['rel_diff']:.2e}"
            out.append(f"| {r['check']} | {r['n']} | {r['failed']} | {_md_cell(r['K'])} | {_md_cell(r['stored'])} "
                       f"| {_md_cell(r['recomputed'])} | {rd} | {r['tolerance']} |")
        out.append("")
        if a.failures:
            out += ["Failures:", ""]
            out += [f"* {'K=' + str(f.K) if f.K is not None else 'file'} `{f.check}`: {f.detail}"
                    for f in a.failures]
            out.append("")
    return "\n".join(out).rstrip() + "\n"
