"""Figures for the report (matplotlib, Agg backend, deterministic PNG bytes).

Every figure has a fixed size and dpi and is saved without the "Software" metadata, through a
temporary file renamed into place, so the same data and matplotlib version give the same bytes.

Public functions
----------------
pyplot()                                    -- matplotlib.pyplot, Agg backend (imported lazily).
save_png(fig, path)                         -- deterministic, atomic PNG write.
plot_fixed_point_tv(sweeps, path)           -- fixed-point TV(p_K, p*) against K, log-log, one
                                               panel per scenario, one line per estimator.
plot_learning_curves(curves, path, title=)  -- sampled TV against steps, mean and 10-90% band
                                               over seeds, one panel per K.
simulation_figures(outdir, ...)             -- both simulation figures for both scenarios.
frontier_figure(path, points, peers, title) -- a bias–variance frontier (β against V∞, log-log)
                                               with the peers as single points.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from aqpgen.game.dynamics import exact_sweep
from aqpgen.game.estimators import available_estimators
from aqpgen.game.sampled import sampled_sweep

__all__ = ["frontier_figure", "plot_fixed_point_tv", "plot_learning_curves", "pyplot", "save_png", "simulation_figures"]

DPI = 100
_PANEL = (4.8, 3.8)  # inches per panel


def pyplot():
    """matplotlib.pyplot with the Agg backend (imported here: matplotlib is an optional heavy
    dependency, needed only for figures)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path, *, dpi: int = DPI) -> Path:
    """Save ``fig`` as PNG at ``dpi`` without timestamps/software tags (temp file + rename;
    the parent directory is created if missing); closes the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        pyplot().close(fig)
    return path


def _style(name: str, i: int) -> dict:
    ls = "-" if name.startswith("kl-") else ("--" if name != "oracle-log" else ":")
    return {"linestyle": ls, "marker": "os^vD<>ph*"[i % 10], "markersize": 4, "label": name}


def plot_fixed_point_tv(sweeps: Mapping[str, Mapping[str, Mapping]], path) -> Path:
    """TV(p_K, p*) against K on log-log axes.

    Parameters
    ----------
    sweeps : {scenario: {estimator: {"K": [...], "tv": [...], "slope": s}}}
        E.g. ``{"zipf": aqpgen.game.dynamics.exact_sweep("zipf", names, Ks)}``.
    path : output PNG path.

    Zero TVs (the oracle) cannot be drawn on a log axis and are skipped.
    """
    plt = pyplot()
    n = max(1, len(sweeps))
    fig, axes = plt.subplots(1, n, figsize=(_PANEL[0] * n, _PANEL[1]), squeeze=False)
    for ax, (scenario, sweep) in zip(axes[0], sweeps.items()):
        for i, (name, row) in enumerate(sweep.items()):
            K = np.asarray(row["K"], dtype=float)
            tv = np.asarray(row["tv"], dtype=float)
            ok = np.isfinite(tv) & (tv > 0)
            if not ok.any():
                continue
            st = _style(name, i)
            slope = row.get("slope")
            if slope is not None and np.isfinite(slope):
                st["label"] = f"{name} (slope {slope:.2f})"
            ax.loglog(K[ok], tv[ok], **st)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K (completions per prompt)")
        ax.set_ylabel("TV(p_K, p*) at the fixed point")
        ax.set_title(f"scenario {scenario}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def plot_learning_curves(curves: Mapping[int, Mapping[str, object]], path, *,
                         title: str = "") -> Path:
    """Sampled learning curves: TV(p_t, p*) against steps, one panel per K.

    Parameters
    ----------
    curves : {K: {estimator: aqpgen.game.sampled.SampledResult}}
    path : output PNG path.
    title : figure title (e.g. the scenario).

    Each line is the mean over seeds; the band spans the 10% and 90% quantiles over seeds.
    """
    plt = pyplot()
    n = max(1, len(curves))
    fig, axes = plt.subplots(1, n, figsize=(_PANEL[0] * n, _PANEL[1]), squeeze=False)
    for ax, (K, per_est) in zip(axes[0], curves.items()):
        for i, (name, res) in enumerate(per_est.items()):
            steps = np.asarray(res.steps)
            tv = np.asarray(res.tv)
            st = _style(name, i)
            st.pop("marker")
            line, = ax.plot(steps, tv.mean(axis=0), **st)
            lo, hi = np.quantile(tv, [0.1, 0.9], axis=0)
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("policy-gradient step")
        ax.set_ylabel("TV(p, p*)")
        any_res = next(iter(per_est.values()), None)
        seeds = len(any_res.seeds) if any_res is not None else 0
        ax.set_title(f"K = {K} ({seeds} seeds, mean and 10-90% band)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path)


def simulation_figures(outdir, *, estimators: Sequence[str] | None = None,
                       Ks: Sequence[int] = (4, 8, 16, 32, 64, 128),
                       sampled_Ks: Sequence[int] = (8, 32), seeds: int = 20,
                       scenarios: Sequence[str] = ("zipf", "head")) -> dict[str, Path]:
    """Write ``sim-fixed-point-tv.png`` and ``sim-curves-<scenario>.png`` into ``outdir``.

    Returns ``{"fixed_point": path, "curves_<scenario>": path, ...}`` plus the data under
    ``"data"``: ``{"exact": {scenario: sweep}, "sampled": {scenario: summary}}``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(estimators) if estimators is not None else available_estimators()
    exact = {sc: exact_sweep(sc, names, Ks) for sc in scenarios}
    out: dict = {"fixed_point": plot_fixed_point_tv(exact, outdir / "sim-fixed-point-tv.png")}
    sampled = {}
    for sc in scenarios:
        summary, results = sampled_sweep(sc, names, sampled_Ks, range(seeds))
        sampled[sc] = summary
        curves = {k: {n: res[k] for n, res in results.items()} for k in sampled_Ks}
        out[f"curves_{sc}"] = plot_learning_curves(curves, outdir / f"sim-curves-{sc}.png",
                                                   title=f"scenario {sc}")
    out["data"] = {"exact": exact, "sampled": sampled}
    return out


def frontier_figure(path, points: Sequence, peers: Sequence, title: str, *,
                    label: str = "AQP frontier", figsize=(6.4, 4.8), dpi: int = DPI,
                    peer_vmax: float = math.inf) -> Path:
    """The bias–variance frontier at one K: β against V∞ on log-log axes, one line through the
    frontier points (sorted by V∞), each peer a single square.

    Parameters
    ----------
    path : output PNG path.
    points : sequence of ``(V_inf, beta, annotation)``; annotation a short string or None.
        Points with a non-finite coordinate are skipped.
    peers : sequence of ``(name, V_inf, beta)``; drawn only when finite and ``V_inf < peer_vmax``
        (a minimax row's alternating coefficients make its V∞ grow like 2^K).
    title : axes title.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize)
    ok = sorted((float(v), float(b), a) for v, b, a in points
                if v is not None and b is not None and math.isfinite(v) and math.isfinite(b))
    ax.loglog([v for v, _, _ in ok], [b for _, b, _ in ok], "-o", ms=3, color="C0", label=label)
    for v, b, a in ok:
        if a:
            ax.annotate(a, (v, b), textcoords="offset points", xytext=(4, 3), fontsize=6)
    for i, (name, v, b) in enumerate(peers):
        if (v is not None and b is not None and math.isfinite(v) and math.isfinite(b)
                and v < peer_vmax):
            ax.loglog([v], [b], "s", ms=6, color=f"C{i + 1}", label=name)
    ax.set_xlabel("V∞ = sup p·Var")
    ax.set_ylabel("β = sup p·|bias|")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    return save_png(fig, path, dpi=dpi)
