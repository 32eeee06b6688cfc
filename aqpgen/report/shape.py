"""What the shape constraint costs (docs/MATH.md §5b): the report section, its figure, and the
sentences that open the section (the README points to it) and that ``aqpgen show`` prints.

Two sources, both computed here, never typed:

* **solved**: the ρ program with and without ``shape="monotone"`` at K in ``SOLVED_KS`` and ρ in
  ``SOLVED_RHOS`` (``aqpgen.generators.aqp.solve_rho``, certified like every table);
* **shipped**: ``kl-aqp-rho4-mono`` against ``kl-aqp-rho4`` (and ``kl-aqp-rho8``) at every shipped
  K.  Where the shape-constrained ρ = 4 row does not use its variance budget (V∞ below 4× the
  plug-in's), it is also the smallest β of any monotone table, so it is the ρ = 8 optimum too.

Public names
------------
SOLVED_KS, SOLVED_KS_QUICK, SOLVED_RHOS, FREE, MONO  -- what is solved / read.
solved_data(Ks, rhos)            -- {(K, ρ): {"free": AQPResult, "mono": AQPResult}}.
shipped_data(tables_dir, free, mono, free8) -- per shipped K: β of the free / mono / ρ = 8 rows,
                                   ratios (default: the KL pair; ``POW_PAIR`` for p^-0.5).
decreasing_steps(values)         -- number of n with c[n+1] < c[n].
shape_markdown(solved, shipped)  -- the report section's Markdown.
shape_figure(solved, shipped, path) -- β(monotone)/β(free) against K, one line per ρ; both
                                   frontiers (β against V∞) at K = 64.
shape_sentence(tables_dir)       -- the section's first sentence (why tables oscillate, the cost).
shape_note(table, K, tables_dir) -- the same for ``aqpgen show`` of an AQP table (row K or all):
                                   steps against the target's direction, the cost for its target.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from aqpgen.generators import aqp, aqp_shape
from aqpgen.report.figures import pyplot, save_png
from aqpgen.report.markdown import md_table, sci
from aqpgen.store import tablefile
from aqpgen.targets import LOG, parse_target

__all__ = ["FREE", "MONO", "POW_PAIR", "POW_TARGET", "SOLVED_KS", "SOLVED_KS_QUICK", "SOLVED_RHOS", "decreasing_steps",
           "shape_figure", "shape_markdown", "shape_note", "shape_sentence", "shipped_data",
           "solved_data"]

#: K and ρ at which both programs are solved for the report.
SOLVED_KS = (8, 16, 32, 64, 128)
SOLVED_KS_QUICK = (8, 16)
SOLVED_RHOS = (1, 2, 4, 8)
#: The shipped pair compared at every K (and the ρ = 8 table for the unconstrained-V optimum).
FREE, MONO, FREE8 = "kl-aqp-rho4", "kl-aqp-rho4-mono", "kl-aqp-rho8"
#: The shipped p^-0.5 pair (free, mono) and its target.
POW_PAIR = ("pow-0.5-aqp-rho8", "pow-0.5-aqp-rho8-mono")
POW_TARGET = "p^-0.5"
#: Relative margin below ρ·V∞(plug-in) under which the variance budget counts as unused.
UNUSED = 0.01
_SHOWN_KS = (8, 16, 32, 64, 128, 256, 512, 1024)


def decreasing_steps(values) -> int:
    """Number of n in 1..K-1 with c[n+1] < c[n] (the stored floats compared exactly)."""
    v = np.asarray(values, dtype=np.float64)
    return int(np.sum(v[1:] < v[:-1]))


def solved_data(Ks: Sequence[int] = SOLVED_KS, rhos: Sequence[float] = SOLVED_RHOS) -> dict:
    """Both programs at every (K, ρ); a failed solve keeps its status (NaN β)."""
    return {(K, r): {"free": aqp.solve_rho(K, r), "mono": aqp.solve_rho(K, r, shape="monotone")}
            for K in Ks for r in rhos}


def _ok_rows(t) -> dict:
    return {K: r for K, r in t.rows.items() if r.status == "ok"}


def shipped_data(tables_dir: str, free: str = FREE, mono: str = MONO,
                 free8: str | None = FREE8) -> list[dict]:
    """One dict per K where tables ``free`` and ``mono`` both have an ok row: K, the β (stored,
    certified β̄ in "cert") of each, the ratio, the mono row's V∞/V∞(plug-in), the free row's
    decreasing steps; "ratio8" = β(mono)/β(``free8``) where the mono row leaves its budget
    unused (V∞ below (1 − ``UNUSED``)·ρ·V∞(plug-in), ρ from the mono table's params)."""
    read = lambda n: tablefile.read_table(os.path.join(tables_dir, n + ".h5"))
    tm = read(mono)
    rho = float(tm.params["rho"])
    free, mono = _ok_rows(read(free)), _ok_rows(tm)
    path8 = os.path.join(tables_dir, f"{free8}.h5")
    free8 = _ok_rows(tablefile.read_table(path8)) if free8 and os.path.exists(path8) else {}
    out = []
    for K in sorted(set(free) & set(mono)):
        mf, mm = free[K].metrics, mono[K].metrics
        unused = mm["rho_achieved"] < rho * (1 - UNUSED)
        r8 = (mm["beta"] / free8[K].metrics["beta"]) if unused and K in free8 else math.nan
        out.append({"K": K, "beta_free": mf["beta"], "beta_mono": mm["beta"],
                    "cert_mono": mm["beta_cert"], "ratio": mm["beta"] / mf["beta"],
                    "rho_mono": mm["rho_achieved"], "steps_free": decreasing_steps(free[K].values),
                    "steps_mono": decreasing_steps(mono[K].values), "ratio8": r8,
                    "rising_free": decreasing_steps(-np.asarray(free[K].values))})
    return out


def _ratio(d) -> float:
    f, m = d["free"], d["mono"]
    return m.beta / f.beta if f.status == "ok" and m.status == "ok" else math.nan


def _solved_table(solved: dict) -> str:
    Ks = sorted({K for K, _ in solved})
    rhos = sorted({r for _, r in solved})
    rows = []
    for K in Ks:
        cells = []
        for r in rhos:
            d = solved[(K, r)]
            cells.append(f"{_ratio(d):.3f} ({decreasing_steps(d['free'].values)})"
                         if d["free"].status == "ok" else "n/a")
        top = solved[(K, rhos[-1])]["mono"]
        rows.append([K, *cells, sci(top.beta), f"{K * top.beta:.4f}", f"{top.achieved:.3f}"])
    return md_table(["K", *(f"ρ = {r:g}" for r in rhos), f"β monotone (ρ = {rhos[-1]:g})", "K·β",
                     "its V∞/V∞(plug-in)"], rows)


def shape_markdown(solved: dict, shipped: list[dict], pow_pair: list[dict] | None = None) -> str:
    """The report section: solved ratios at small K, the shipped pair at every K, and the p^-0.5
    pair ``POW_PAIR`` (``shipped_data(dir, *POW_PAIR, None)``) when given."""
    sel = [d for d in shipped if d["K"] in _SHOWN_KS]
    rows = [[d["K"], sci(d["beta_free"]), sci(d["beta_mono"]), sci(d["cert_mono"]),
             f"{d['ratio']:.3f}", "—" if math.isnan(d["ratio8"]) else f"{d['ratio8']:.3f}",
             f"{d['rho_mono']:.3f}", f"{d['steps_free']} / {d['K'] - 1}", d["steps_mono"]]
            for d in sel]
    lo, hi = _range(shipped, "ratio")
    return "\n\n".join([
        ("Unconstrained AQP tables constrain only the mean g_c(p) = E[c_K[n]], so their entries "
         "may fall as n rises; `shape = \"monotone\"` (docs/MATH.md §5b) keeps c_K[n] "
         "nondecreasing with c_K[K] <= 0.  **Cost**: the smallest β with the shape over the "
         "smallest β without it, at the same V∞ budget ρ·V∞(plug-in), both solved and certified "
         "(β: the rigorous lower bound stored with every table; its certified upper bound β̄ "
         f"is computed to a relative slack of {aqp.CERT_SLACK:g}; in parentheses: the decreasing "
         "steps of the unconstrained table).  The last columns give the monotone table at the largest ρ, its "
         "K·β and the variance it uses: where that is below ρ, the budget is unused and this is "
         "the smallest β of any monotone table (the monotone frontier ends there; β stops "
         "improving with ρ)."),
        _solved_table(solved),
        (f"The shipped pair `{MONO}` / `{FREE}` (stored β; β̄: certified bound) at every shipped "
         f"K: the ratio lies in {lo:.3f}–{hi:.3f} over K = {shipped[0]['K']}…{shipped[-1]['K']}.  "
         f"Where `{MONO}` uses less than its variance budget (V∞/V∞(plug-in) below "
         f"{4 * (1 - UNUSED):g}) it is the smallest β of any monotone table, hence also the ρ = 8 "
         f"optimum: the column ρ = 8 compares it with `{FREE8}`."),
        md_table(["K", f"β {FREE}", f"β {MONO}", "β̄ (cert.)", "ratio ρ = 4", "ratio ρ = 8",
                  "V∞/V∞(plug-in)", "decreasing steps (free)", "(mono)"], rows),
    ] + ([_pow_sentence(pow_pair)] if pow_pair else []))


def _pow_sentence(pair: list[dict]) -> str:
    lo, hi = _range(pair, "ratio")
    worst = min(pair, key=lambda d: d["ratio"])
    rising = sum(d["rising_free"] > 0 for d in pair)
    return (f"Target p^-0.5 (c_K[n] nonincreasing and >= 0): `{POW_PAIR[1]}` / `{POW_PAIR[0]}` "
            f"has β ratio {lo:.3f}–{hi:.3f} over K = {pair[0]['K']}…{pair[-1]['K']} (where it is "
            f"below 1, e.g. {worst['ratio']:.3f} at K = {worst['K']}, the unconstrained exchange "
            f"stopped above its optimum); `{POW_PAIR[0]}` rises somewhere in {rising} of its "
            f"{len(pair)} rows.")


def _range(shipped: list[dict], key: str):
    vals = [d[key] for d in shipped if math.isfinite(d[key])]
    return min(vals), max(vals)


def shape_figure(solved: dict, shipped: list[dict], path, K_frontier: int = 64) -> str:
    """Left: β(monotone)/β(free) against K (log x), solved points per ρ and the shipped pairs.
    Right: both frontiers (β against V∞/V∞(plug-in)) at ``K_frontier`` (or the largest solved K
    below it), from the solved points."""
    plt = pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.0, 4.0))
    rhos = sorted({r for _, r in solved})
    for r in rhos:
        Ks = sorted(K for K, rr in solved if rr == r)
        ax.plot(Ks, [_ratio(solved[(K, r)]) for K in Ks], "o", label=f"solved, ρ = {r:g}")
    ax.plot([d["K"] for d in shipped], [d["ratio"] for d in shipped], "-", color="C2", lw=1,
            label=f"shipped {MONO} / {FREE}")
    K8 = [d for d in shipped if math.isfinite(d["ratio8"])]
    ax.plot([d["K"] for d in K8], [d["ratio8"] for d in K8], "-", color="C3", lw=1,
            label=f"shipped {MONO} / {FREE8}")
    top = max([d["ratio"] for d in shipped] + [d["ratio8"] for d in K8]
              + [_ratio(v) for v in solved.values() if math.isfinite(_ratio(v))])
    ax.set_ylim(0.95, top + 0.3)  # room for the legend above the data
    ax.set_xscale("log", base=2)
    ax.set_xlabel("K")
    ax.set_ylabel("β monotone / β unconstrained")
    ax.set_title("What the shape costs at the same V∞ budget")
    Kf = max(K for K, _ in solved if K <= K_frontier) if min(K for K, _ in solved) <= K_frontier \
        else min(K for K, _ in solved)
    for key, style in (("free", "o-"), ("mono", "s--")):
        pts = [solved[(Kf, r)][key] for r in rhos]
        bx.plot([q.achieved for q in pts], [q.beta for q in pts], style,
                label="unconstrained" if key == "free" else "shape = monotone")
    bx.set_xscale("log", base=2)
    bx.set_yscale("log")
    bx.set_xlabel("V∞ / V∞(plug-in)")
    bx.set_ylabel("β")
    bx.set_title(f"Frontiers at K = {Kf} (ρ = {', '.join(f'{r:g}' for r in rhos)})")
    for a, where in ((ax, "upper left"), (bx, "upper right")):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7, loc=where, ncol=2 if a is ax else 1)
    fig.tight_layout()
    return os.fspath(save_png(fig, path))


def shape_sentence(tables_dir: str) -> str:
    """Why unconstrained tables oscillate and what the shape costs, from the shipped pair."""
    sh = shipped_data(tables_dir)
    lo, hi = _range(sh, "ratio")
    at16 = next((d for d in sh if d["K"] == 16), sh[0])
    return (f"Only the mean reward is constrained, so an unconstrained table may reward an answer "
            f"seen more often less (`{FREE}` falls at {at16['steps_free']} of "
            f"{at16['K'] - 1} steps at K = {at16['K']}); `{MONO}` rises with the count, for a "
            f"β {lo:.2f}–{hi:.2f}× that of `{FREE}` over K = "
            f"{sh[0]['K']}…{sh[-1]['K']}.")


def shape_note(table, K: int | None, tables_dir: str) -> str:
    """One sentence for ``aqpgen show`` of an AQP table ``table`` (a TableData): this row's (or
    every row's) steps against the target's direction (falling for log p and p^a, a >= 0;
    rising for a < 0), and the cost of the shape from the shipped pair of that target."""
    rows = _ok_rows(table)
    target = parse_target("log" if table.target == "log p" else table.target)
    d = aqp_shape.target_shape(target).direction
    against = lambda v: decreasing_steps(d * np.asarray(v, dtype=np.float64))
    word = "falls" if d > 0 else "rises"
    if K is not None and K not in rows:
        seen = f"row K = {K} unavailable"
    elif K is not None:
        seen = f"this row {word} at {against(table.rows[K].values)} of {K - 1} steps"
    else:
        n_bad = sum(against(r.values) > 0 for r in rows.values())
        seen = f"{n_bad} of {len(rows)} ok rows {word[:-1]} somewhere"
    if table.params.get("shape", "none") != "none":
        return f"shape {table.params['shape']!r}: c_K[n] follows the target ({seen})."
    pair = {LOG: (FREE, MONO), parse_target(POW_TARGET): POW_PAIR}.get(target)
    cost = ""
    if pair and all(os.path.exists(os.path.join(tables_dir, n + ".h5")) for n in pair):
        lo, hi = _range(shipped_data(tables_dir, *pair, None), "ratio")
        cost = f"; `{pair[1]}` keeps the shape for β ×{lo:.2f}–{hi:.2f} of `{pair[0]}`'s"
    return (f"only the mean is constrained, so a reward may move against the target as the count "
            f"rises ({seen}){cost} (docs/MATH.md §5b).")
