"""The Markdown sections of the report and README computed from the tables and the library.

Every section function returns Markdown or raises (a missing table is FileNotFoundError naming
it); :mod:`aqpgen.report.write` turns any failure into a failed report.  No timings: measured
times belong to ``make bench``.

Public names
------------
tables_section(tables_dir)     -- every file of MANIFEST.json with its header and row counts.
usage_section(tables_dir)      -- a runtime example executed at generation time (real output).
rate_data / rate_markdown      -- the Θ(1/K²) audit of the minimax table (``minimax.rate_audit``).
f64_markdown(rate_data)        -- the float64-rounded minimax table's certified bias.
preset_reach / reach_markdown  -- how far in K each AQP preset reaches; V∞ / V∞(plug-in).
compare_markdown(Ks)           -- ``compare.to_markdown(compare(Ks))``, what ``aqpgen compare
                                  --markdown`` prints, so the numbers agree by construction.
frontier_points(K)             -- the rho sweep ``FRONTIER_RHOS`` then the default eta sweep.
headline_markdown(rate_data)   -- the README's lines on the minimax rate and its float64 limit.
recommend_markdown(Ks)         -- ``aqpgen.recommend.recommend`` at each K: table, β̄, V∞.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from aqpgen import compare
from aqpgen.audit.files import RATE_RANGE
from aqpgen.generators import aqp, minimax, peers
from aqpgen.numerics import metrics
from aqpgen.recommend import noise_weight, recommend
from aqpgen.report.markdown import (
    K_list,
    K_span,
    limit_markdown,
    md_table,
    ok_Ks,
    read_named,
    sci,
    short,
    table_path,
)
from aqpgen.store import tablefile
from aqpgen.store.manifest import MANIFEST_NAME, load_manifest

__all__ = [
    "COMPARE_KS",
    "COMPARE_KS_QUICK",
    "FRONTIER_RHOS",
    "PRESET_TABLES",
    "RECOMMEND_KS",
    "compare_markdown",
    "f64_markdown",
    "frontier_points",
    "headline_markdown",
    "preset_reach",
    "rate_data",
    "rate_markdown",
    "reach_markdown",
    "recommend_markdown",
    "tables_section",
    "usage_section",
]

#: K values of the report's compare table and of the README's (K = 8, 16, 64).
COMPARE_KS = (4, 8, 16, 32, 64, 128, 256, 1024)
COMPARE_KS_QUICK = (4, 8)
#: the K of the README's recommendation table
RECOMMEND_KS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: rho values added to the default eta sweep in the frontier figure.
FRONTIER_RHOS = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
#: AQP preset tables (shipped names).
PRESET_TABLES = tuple(compare.preset_table_name(n) for n in compare.PRESETS)
#: K values shown in the small rate / float64 / V∞ tables.
RATE_SHOW_KS = (16, 32, 64, 128, 256, 512, 1024)
F64_SHOW_KS = (8, 16, 24, 32, 48, 56, 64, 128, 1024)
VRATIO_KS = (8, 64, 128, 256, 512, 1024)


def tables_section(tables_dir: str = "tables") -> str:
    """Markdown: every file of ``tables_dir/MANIFEST.json`` with its header and row counts."""
    man = load_manifest(os.path.join(tables_dir, MANIFEST_NAME))
    rows = []
    for fname in sorted(man["files"]):
        ent = man["files"][fname]
        t = tablefile.read_table(os.path.join(tables_dir, fname))
        ok = ok_Ks(t)
        params = ", ".join(f"{k}={v}" for k, v in sorted(t.params.items())) or "—"
        rows.append([f"`{t.name}`", t.target, t.method, params, K_span(list(t.Ks)),
                     f"{len(ok)} / {len(t.Ks) - len(ok)}", K_span(ok) if ok else "—",
                     f"{ent['size'] / 1e6:.2f} MB", f"`{ent['sha256'][:12]}`"])
    head = ["table", "target", "method", "params", "K range", "rows ok / not ok", "ok K span",
            "size", "sha256"]
    return (f"{len(rows)} files listed in `{tables_dir}/MANIFEST.json` (read from each file's "
            "header and rows with `aqpgen.store.tablefile`; `aqpgen show NAME` prints one):\n\n"
            + md_table(head, rows, "---|---|---|---|---:|---:|---:|---:|---|"))


_USAGE_SETUP = """\
import numpy as np
from aqpgen.runtime import load_table, answers_to_counts

t = load_table("{name}")
answers = ["42", "42", "17", "42", "9", "17", "42", "42"]   # one group, K = 8"""
#: (statement, what it computes; the value is shown in a comment below it)
_USAGE_LINES = (("counts = answers_to_counts(answers)", "n_i"),
                ("rewards = t.lookup(counts, 8)", "c_8[n_i]"),
                ("plugin = np.log(counts / 8)", "log(n_i / 8), the plug-in, for comparison"))


def usage_section(tables_dir: str = "tables") -> str:
    """Markdown: the runtime example, run now (its output is real and deterministic); the block
    pastes and runs as written (each value in a comment under its statement).

    Timings are not part of the README: the lookup overhead is measured by ``make bench``
    (``bench/bench_lookup.py``)."""
    name = next((n for n in ("kl-aqp-rho1", "kl-aqp-eta3", "kl-minimax", "power-m2")
                 if os.path.exists(table_path(tables_dir, n))), None)
    if name is None:
        raise FileNotFoundError(f"no table to demonstrate in {tables_dir}")
    setup = _USAGE_SETUP.format(name=name)
    ns: dict = {}
    exec(setup.replace(f'load_table("{name}")', f'load_table({table_path(tables_dir, name)!r})'), ns)  # noqa: S102 - our own fixed snippet
    lines = [setup]
    with np.printoptions(precision=3, suppress=False, floatmode="maxprec", linewidth=200):
        for stmt, what in _USAGE_LINES:
            exec(stmt, ns)  # noqa: S102 - our own fixed snippet
            lines += [f"{stmt:<38}# {what}:", f"# {ns[stmt.split(' =')[0]]}"]
    note = ("" if name == "kl-aqp-rho1" else
            f"\n\n*(kl-aqp-rho1 is not built in `{tables_dir}/`; the example uses `{name}`.)*")
    return (f"Values computed when this README was generated (`{name}` at K = 8; the reward of "
            "completion i is c_K[n_i]):\n\n```python\n" + "\n".join(lines) + "\n```" + note + "\n\n"
            "The lookup is one gather; its overhead against `np.log(counts / K)` is measured by "
            "`make bench` (`bench/bench_lookup.py`), not recorded here.")


def rate_data(tables_dir: str = "tables") -> dict:
    """Rate audit of the shipped minimax table over K in ``RATE_RANGE`` and the per-K metrics."""
    t = read_named(tables_dir, "kl-minimax")
    ks = [K for K in ok_Ks(t) if K <= RATE_RANGE[1]]
    m = {K: t.metrics(K) for K in ks}
    ra = minimax.rate_audit(ks, [m[K]["E_star"] for K in ks], Kmin=RATE_RANGE[0],
                            spread=[m[K].get("spread", 0.0) for K in ks])
    big = [K for K in ks if K >= 128]
    if len(big) < 2:  # few rows (tests, partial tables): the upper half
        big = ks[len(ks) // 2:]
    growth = (float(np.polyfit(big, [m[K]["log10_max_abs_c"] for K in big], 1)[0])
              if len(big) >= 2 else math.nan)
    f64_bad = next((K for K in ks if m[K].get("beta_f64", math.nan) > 2 * m[K]["E_star"]), None)
    f64_last_good = max((K for K in ks if (f64_bad is None or K < f64_bad)), default=None)
    return {"audit": ra, "metrics": m, "Ks": ks, "growth_log10_per_K": growth, "growth_Kmin": big[0] if big else None,
            "f64_first_bad": f64_bad, "f64_last_good": f64_last_good}


def rate_markdown(d: dict, *, full: bool = False) -> str:
    ra, m = d["audit"], d["metrics"]
    show = d["Ks"] if full else [K for K in RATE_SHOW_KS if K in m]
    rows = [[K, f"{m[K]['E_star']:.12e}", f"{K * K * m[K]['E_star']:.12f}",
             f"{m[K].get('log10_max_abs_c', math.nan):.1f}"] for K in show]
    fit_Ks = [K for K in ra.Ks if K >= ra.Kmin]
    g = d["growth_log10_per_K"]
    text = (f"`minimax.rate_audit` on the shipped `kl-minimax.h5` (E*_K from its rows, "
            f"K = {fit_Ks[0]}…{fit_Ks[-1]}, {ra.n_fit} values): fitted log-log slope "
            f"**{ra.slope:+.5f}** (required −2 ± 0.01: {'passes' if ra.ok else 'FAILS'}); "
            + limit_markdown(ra, "K²·E*_K") + ".\n\n"
            + md_table(["K", "E*_K", "K²·E*_K", "log10 max|c|"], rows)
            + f"\n\n**Coefficient growth.** log10 max|c_K| grows linearly in K: fitted slope "
            f"{g:.4f} per unit K over K ≥ {d['growth_Kmin']}, i.e. max|c_K| ≈ {10 ** g:.3f}^K "
            f"(max|c| = 10^{m[d['Ks'][-1]].get('log10_max_abs_c', math.nan):.1f} at "
            f"K = {d['Ks'][-1]}). The conversion's working precision grows with K accordingly.")
    return text


def f64_markdown(d: dict, *, full: bool = False) -> str:
    m = d["metrics"]
    show = d["Ks"] if full else [K for K in F64_SHOW_KS if K in m]
    rows = [[K, sci(m[K]["E_star"]), sci(m[K].get("beta_f64")),
             sci(m[K].get("beta_f64", math.nan) / m[K]["E_star"])] for K in show]
    bad, good = d["f64_first_bad"], d["f64_last_good"]
    where = (f"up to K = {good} the float64 table's certified bias β_f64 stays within a few per "
             f"mille of E*_K (the bound's own slack); from K = {bad} on it is more than 2·E*_K and "
             "then explodes" if bad else "β_f64 stays within 2·E*_K at every shipped K")
    return ("**What the runtime serves is the float64-rounded table.** The minimax values "
            "alternate in sign with max|c| ≈ 2^K, so rounding them to float64 destroys the "
            f"cancellation: {where}. The exact (high-precision string) table keeps β = E*_K; use "
            "`values_hp` or an AQP preset, not the float64 minimax table, beyond that K.\n\n"
            + md_table(["K", "E*_K", "β_f64 (certified)", "β_f64 / E*_K"], rows))


def preset_reach(tables_dir: str = "tables") -> dict:
    """Per present preset: ok/not-ok counts, largest ok K, contiguous reach, first failure,
    and V∞/V∞(plug-in) at ``VRATIO_KS`` (plug-in's V∞ from ``metrics.variance_sup``)."""
    out = {}
    vpl: dict = {}
    for name in PRESET_TABLES:
        if not os.path.exists(table_path(tables_dir, name)):
            continue
        t = read_named(tables_dir, name)
        ok = ok_Ks(t)
        bad = [K for K in t.Ks if t.status(K) != "ok"]
        first_bad = bad[0] if bad else None
        contiguous = max((K for K in t.Ks if first_bad is None or K < first_bad), default=None)
        ratios = {}
        for K in VRATIO_KS:
            if K in ok:
                if K not in vpl:
                    vpl[K] = float(metrics.variance_sup(peers.peer_table("plugin", K), K))
                ratios[K] = t.metrics(K)["V_inf"] / vpl[K]
        out[name] = {"params": t.params, "n_ok": len(ok), "n_bad": len(bad), "bad": bad,
                     "largest_ok": ok[-1] if ok else None, "contiguous": contiguous,
                     "first_bad": first_bad, "reason": t.status(first_bad) if bad else "",
                     "vratio": ratios}
    return out


def reach_markdown(reach: dict) -> str:
    if not reach:
        raise FileNotFoundError("no AQP preset table (kl-aqp-*.h5) found")
    rows = [[f"`{n}`", f"{r['n_ok']} / {r['n_bad']}", r["largest_ok"], r["contiguous"],
             K_list(r["bad"]), short(r["reason"], 140) if r["reason"] else "—"]
            for n, r in reach.items()]
    t1 = md_table(["preset", "rows ok / not ok", "largest ok K", "every K ok up to",
                    "failing K", "recorded status of the first failing K"], rows,
                   "---|---:|---:|---:|---|---|")
    vrows = [[f"`{n}`"] + [sci(r["vratio"].get(K), 2) for K in VRATIO_KS] for n, r in reach.items()]
    t2 = md_table(["preset"] + [f"K={K}" for K in VRATIO_KS], vrows)
    eta = {n: r for n, r in reach.items() if "eta" in r["params"]}
    msg = []
    for n, r in eta.items():
        ks = sorted(r["vratio"])
        if ks:
            msg.append(f"`{n}` V∞/V∞(plug-in) = {sci(r['vratio'][ks[-1]], 2)} at K = {ks[-1]}")
    tail = ("For a fixed η the minimum variance explodes with K (the table must follow log p down "
            "to p ~ 1/K²): " + "; ".join(msg) + ". Rows the conic solver cannot solve accurately in "
            "float64 are recorded as \"out of numerical reach\" and refused by the runtime; such "
            "tables would be useless for training anyway — use the rho presets at large K."
            ) if msg else ""
    return ("**How far each AQP preset reaches** (rows of the shipped files):\n\n" + t1
            + "\n\n**V∞ / V∞(plug-in)** of the shipped rows (n/a: no ok row at that K):\n\n"
            + t2 + ("\n\n" + tail if tail else ""))


def compare_markdown(Ks: Sequence[int]) -> str:
    """``aqpgen.compare.to_markdown(compare(Ks))`` -- what ``aqpgen compare --markdown`` prints."""
    return compare.to_markdown(compare.compare(list(Ks))).strip("\n")


def frontier_points(K: int) -> list:
    """The frontier at K: the rho sweep ``FRONTIER_RHOS`` (V∞ from 0.5× to 4× the plug-in's, where
    the peers sit) followed by the default eta sweep (small bias, large variance)."""
    return aqp.frontier(K, rhos=FRONTIER_RHOS) + aqp.frontier(K)


def headline_markdown(d: dict) -> str:
    """The README's summary of ``rate_data``: the minimax rate and where float64 stops serving it."""
    ra = d["audit"]
    fit_Ks = [K for K in ra.Ks if K >= ra.Kmin]
    bad = d["f64_first_bad"]
    return (f"**The best possible bias for log p falls like 1/K²**: the shipped minimax rows give "
            f"K²·E*_K → {ra.limit} (fitted log-log slope {ra.slope:+.5f} over "
            f"K = {fit_Ks[0]}…{fit_Ks[-1]}; Ditzian–Totik, docs/MATH.md §4), against 1/K for "
            "the plug-in log(n/K) and the classical corrections."
            + (f"  Its coefficients grow like 2^K, so its float64 rounding keeps the certificate "
               f"only up to K = {d['f64_last_good']} (float32: see the precision guard); the AQP "
               "presets trade a little bias for variances a trainer can use." if bad else ""))


def recommend_markdown(Ks: Sequence[int] = RECOMMEND_KS) -> str:
    """``aqpgen recommend --K K`` for each K, as a table."""
    rows = []
    for K in Ks:
        r = recommend(K)
        ok = [c for c in r.candidates if c.usable == "ok"]
        if r.name is None:
            rows.append([K, "none", "—", "—", "—"])
            continue
        best, nxt = ok[0], (ok[1] if len(ok) > 1 else None)
        rows.append([K, f"`{best.name}`", sci(best.beta_cert), f"{best.ratio:.3g}",
                     f"`{nxt.name}`" if nxt else "—"])
    return (f"`aqpgen recommend --K K` (λ = {noise_weight('log')[0]:g}, float32) at the shipped "
            "tables:\n\n"
            + md_table(["K", "table", "β̄ (certified)", "V∞ / plug-in's", "next best"], rows,
                       "---:|---|---:|---:|---|"))
