"""Auditing figures (matplotlib Agg, deterministic PNG bytes).

Public functions
----------------
bias_curves(K, tables_dir, path)   -- p·bias(p) = P(p) − p log p of the peers and the shipped KL
                                      tables at one K (log-p axis).
beta_vs_K(tables_dir, path, Ks)    -- β against K, log-log, with the fitted slope over K >= 16
                                      annotated per estimator.
k2_estar(tables_dir, path)         -- K²·E*_K against K from the minimax table.
frontier(K, path)                  -- the AQP bias–variance frontier at one K (``aqp.frontier``)
                                      with the peers on the same axes.
weighted_bias_curve(values, p)     -- the curve itself (float64 numpy array).
peer_beta(name, K)                 -- β of a peer table (the audit's refined sup, :mod:`aqpgen.audit.rowpoly`).

Every figure has a fixed size and dpi and is saved with ``metadata={"Software": None}`` so the
same data gives byte-identical PNG files.  The minimax table is evaluated through its exact
Chebyshev coefficients (:func:`aqpgen.numerics.bernstein.to_chebyshev_f64`, Clenshaw): its float64
Bernstein sum cancels catastrophically.  Each function returns the path written, or raises
FileNotFoundError naming the missing table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from aqpgen.audit.rowpoly import grid, sup_err, sup_pvar, with_prec
from aqpgen.generators import aqp, peers
from aqpgen.numerics.bernstein import mean_poly_cheb, to_chebyshev_f64
from aqpgen.report.figures import frontier_figure, pyplot, save_png
from aqpgen.store import tablefile

__all__ = [
    "DPI",
    "FIGSIZE",
    "KL_TABLES",
    "beta_vs_K",
    "bias_curves",
    "fit_slope",
    "frontier",
    "k2_estar",
    "peer_beta",
    "weighted_bias_curve",
]

FIGSIZE = (6.4, 4.2)
DPI = 110
#: Shipped KL tables drawn next to the peers (those present are used).
KL_TABLES = ("kl-minimax", "kl-aqp-eta3", "kl-aqp-eta15", "kl-aqp-rho1", "kl-aqp-rho2")
_SLOPE_KMIN = 16


def _save(fig, path) -> str:
    return os.fspath(save_png(fig, path, dpi=DPI))


def weighted_bias_curve(values, p) -> np.ndarray:
    """e(p) = p·(g_c(p) − log p) = P(p) − p log p, via the exact Chebyshev coefficients of P.

    ``values``: float64 table or high-precision strings (converted exactly).
    """
    a, _ = to_chebyshev_f64(values)
    p = np.asarray(p, dtype=np.float64)
    P = mean_poly_cheb(a, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return P - np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


def peer_beta(name: str, K: int) -> float:
    """β of ``peers.peer_table(name, K)``: grid + Newton refinement in ball arithmetic."""
    vals = [Fraction(float(x)) for x in peers.peer_table(name, K)]
    g = grid(K)
    return with_prec(lambda r: sup_err(r, g)[0], vals, with_w=False)


def _read(tables_dir, name):
    path = os.path.join(os.fspath(tables_dir), f"{name}.h5")
    if not os.path.exists(path):
        raise FileNotFoundError(f"table {name!r} not found in {tables_dir}")
    return tablefile.read_table(path)


def _available(tables_dir) -> list:
    return [n for n in KL_TABLES if os.path.exists(os.path.join(os.fspath(tables_dir), f"{n}.h5"))]


def bias_curves(K: int, tables_dir, path, peers_list: Sequence[str] | None = None) -> str:
    """Figure: p·bias(p) of every peer and every shipped KL table at batch size ``K``."""
    plt = pyplot()
    p = np.concatenate([[0.0], np.logspace(-6, 0, 1200)])
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name in peers_list or peers.PEERS:
        ax.plot(p[1:], weighted_bias_curve(peers.peer_table(name, K), p)[1:], lw=1.2, label=name)
    for name in _available(tables_dir):
        t = _read(tables_dir, name)
        if K not in t.Ks or t.status(K) != "ok":
            continue
        r = t.row(K)
        src = r.values_hp if r.values_hp is not None else r.values
        ax.plot(p[1:], weighted_bias_curve(src, p)[1:], lw=1.6, ls="--" if "minimax" in name else "-",
                label=name)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("p (answer probability)")
    ax.set_ylabel("p · bias(p)")
    ax.set_title(f"Weighted bias of log p estimators, K = {K}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, path)


def fit_slope(Ks, ys, kmin: int = _SLOPE_KMIN) -> float:
    """Least-squares slope of log y against log K over K >= kmin (NaN if < 2 points)."""
    Ks = np.asarray(Ks, dtype=float)
    ys = np.asarray(ys, dtype=float)
    sel = (Ks >= kmin) & np.isfinite(ys) & (ys > 0)
    if sel.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(Ks[sel]), np.log(ys[sel]), 1)[0])


def beta_series(tables_dir, Ks: Sequence[int]) -> dict:
    """``{estimator: (Ks, betas)}``: peers recomputed at ``Ks``; shipped tables' stored β."""
    out = {}
    for name in peers.PEERS:
        out[name] = (list(Ks), [peer_beta(name, K) for K in Ks])
    for name in _available(tables_dir):
        t = _read(tables_dir, name)
        ks = [K for K in t.Ks if t.status(K) == "ok" and math.isfinite(t.metrics(K).get("beta", math.nan))]
        if ks:
            out[name] = (ks, [t.metrics(K)["beta"] for K in ks])
    return out


def beta_vs_K(tables_dir, path, Ks: Sequence[int] = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
              series: dict | None = None) -> str:
    """Figure: β against K (log-log) per estimator, slope over K >= 16 in the legend."""
    plt = pyplot()
    series = beta_series(tables_dir, Ks) if series is None else series
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, (ks, bs) in series.items():
        s = fit_slope(ks, bs)
        ax.loglog(ks, bs, marker="o" if len(ks) < 20 else None, ms=3, lw=1.2,
                  label=f"{name} (slope {s:.3f})" if math.isfinite(s) else name)
    ax.set_xlabel("K")
    ax.set_ylabel("β = sup p·|bias|")
    ax.set_title(f"Weighted bias against K (slopes fitted over K ≥ {_SLOPE_KMIN})")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    return _save(fig, path)


def k2_estar(tables_dir, path) -> str:
    """Figure: K²·E*_K against K (log K axis) from the shipped minimax table."""
    plt = pyplot()
    t = _read(tables_dir, "kl-minimax")
    ks = [K for K in t.Ks if t.status(K) == "ok"]
    E = np.array([t.metrics(K)["E_star"] for K in ks])
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.semilogx(ks, np.asarray(ks, float) ** 2 * E, marker=".", ms=3, lw=1)
    s = fit_slope(ks, E)
    ax.set_xlabel("K")
    ax.set_ylabel("K² · E*_K")
    ax.set_title(f"Minimax error rate: slope of log E*_K over K ≥ {_SLOPE_KMIN} = {s:.4f}")
    ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    return _save(fig, path)


def frontier(K: int, path, points=None) -> str:
    """Figure: the AQP frontier (β against V∞) at one K with the peers on the same axes.

    ``points``: the frontier as a list of objects/dicts with ``beta`` and ``V_inf`` (default:
    :func:`aqpgen.generators.aqp.frontier` at K).
    """
    if points is None:
        points = aqp.frontier(K)
    g = grid(K)
    peer_pts = []
    for name in peers.PEERS:
        vals = [Fraction(float(x)) for x in peers.peer_table(name, K)]
        b, v = with_prec(lambda r: (sup_err(r, g)[0], sup_pvar(r, g)), vals)
        peer_pts.append((name, v, b))
    return os.fspath(frontier_figure(path, [(_get(q, "V_inf"), _get(q, "beta"), None) for q in points],
                                     peer_pts, f"Bias–variance frontier at K = {K}",
                                     figsize=FIGSIZE, dpi=DPI))


def _get(q, key):
    if isinstance(q, dict):
        return float(q.get(key, math.nan))
    return float(getattr(q, key, math.nan))
