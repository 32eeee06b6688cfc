"""Peers versus AQP presets: the comparison table (docs/MATH.md §7).

Public names
------------
compare(Ks, presets=PRESETS)  -- list of ``CompareRow``: every peer and preset at every K.
CompareRow                    -- one (K, estimator) row, every field documented.
PRESETS                       -- the shipped presets: eta3, eta15 (min V∞ at β <= (1+η)E*_K) and
                                 rho1, rho2 (min β at V∞ <= ρ V∞(plug-in)).
to_markdown(rows), to_json(rows) -- renderings (the README/report embeds the markdown).

For every classical peer (plug-in, digamma, Laplace, jackknife) the row also carries the AQP bias
at the peer's own worst variance: ``solve_rho(K, ρ)`` with ρ = V∞(peer)/V∞(plug-in), and the
ratio β(peer)/β(AQP).  The AQP frontier dominates the peer iff the ratio is > 1.  The minimax
table is the frontier's end point (η = 0), so it gets no ratio.

Numbers: β, β̄, V∞ and V1 of peers and presets come from one call of
``aqpgen.numerics.metrics.table_metrics`` (β̄ certified by ``aqpgen.numerics.certify``); the AQP
numbers at a peer's V∞ are those of ``aqpgen.generators.aqp.solve_rho`` (the same metrics).  Preset rows are read from the shipped table
(``tables/kl-aqp-<preset>.h5``) when it holds an ``ok`` row for K, and solved otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from aqpgen.errors import TableFormatError
from aqpgen.generators.aqp import build_K, plugin_constants, solve_rho
from aqpgen.generators.minimax import E_star, minimax_table
from aqpgen.generators.peers import PEERS, peer_table
from aqpgen.numerics.metrics import table_metrics
from aqpgen.records import STATUS_OK, as_K
from aqpgen.store.locate import find_table
from aqpgen.store.tablefile import read_table

__all__ = ["PRESETS", "CompareRow", "compare", "to_json", "to_markdown"]

#: preset name -> AQP params (the shipped tables tables/kl-aqp-<name>.h5).
PRESETS = {
    "eta3": {"eta": 3.0, "objective": "Vinf"},
    "eta15": {"eta": 15.0, "objective": "Vinf"},
    "rho1": {"rho": 1.0},
    "rho2": {"rho": 2.0},
}


@dataclass(frozen=True)
class CompareRow:
    """One estimator at one K.

    Attributes
    ----------
    K : int
    estimator : str
        Peer name ("plugin", "digamma", "laplace", "jackknife", "minimax") or preset ("eta3", ...).
    kind : str
        "peer" or "preset".
    beta, beta_cert, V_inf, V1, max_abs_c : float
        Measured β (lower bound), certified β̄, sup p·Var_p, ∫ p·Var_p dp, max |c|.
    aqp_beta : float
        Classical peers: β of the AQP table with the same V∞ (solve_rho at ρ = V∞/V∞(plug-in));
        NaN for the minimax peer and for presets.
    ratio : float
        β(peer)/aqp_beta (> 1: the AQP frontier dominates the peer); NaN where aqp_beta is.
    status : str
        "ok", or why a number is missing (e.g. the AQP solve at the peer's V∞ failed).
    """

    K: int
    estimator: str
    kind: str
    beta: float
    beta_cert: float
    V_inf: float
    V1: float
    max_abs_c: float
    aqp_beta: float = math.nan
    ratio: float = math.nan
    status: str = STATUS_OK


def _preset_values(name: str, K: int):
    """(values, status) of a preset at K: the shipped table's row when it has one (its recorded
    status when that row is out of reach — not solved again), else solved now."""
    try:
        path = find_table(f"kl-aqp-{name}")
    except FileNotFoundError:
        path = None
    if path is not None:
        try:
            t = read_table(path)
        except (TableFormatError, OSError):  # an unreadable shipped table: solve instead
            t = None
        if t is not None and K in t.Ks:
            row = t.row(K)
            if row.status == STATUS_OK:
                return np.asarray(t.values(K), dtype=np.float64), STATUS_OK
            return np.full(K, np.nan), f"{path.name}: {row.status}"
    r = build_K(K, dict(PRESETS[name]))
    return r.values, r.status


def _metric_row(K, name, kind, values, values_hp=None, status=STATUS_OK) -> dict:
    if status != STATUS_OK:
        nan = math.nan
        return dict(K=K, estimator=name, kind=kind, beta=nan, beta_cert=nan, V_inf=nan, V1=nan,
                    max_abs_c=nan, status=status)
    m = table_metrics(K, values, values_hp)
    return dict(K=K, estimator=name, kind=kind, beta=m["beta"], beta_cert=m["beta_cert"],
                V_inf=m["V_inf"], V1=m["V1"], max_abs_c=m["max_abs_c"], status=STATUS_OK)


def compare(Ks, presets=tuple(PRESETS)) -> list[CompareRow]:
    """Peers and presets at each K (see module docstring); rows ordered by K, peers first.

    Parameters
    ----------
    Ks : iterable of int
        Batch sizes (each >= 2).
    presets : iterable of str
        Preset names from ``PRESETS``.
    """
    Ks = [as_K(k, "Ks[i]", minimum=2) for k in Ks]
    for name in presets:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    rows: list[CompareRow] = []
    for K in Ks:
        Es = E_star(K)
        V_pl, _ = plugin_constants(K)
        for name in PEERS:
            d = _metric_row(K, name, "peer", peer_table(name, K))
            r = solve_rho(K, d["V_inf"] / V_pl, E_star=Es)
            if r.status == STATUS_OK:
                d.update(aqp_beta=r.beta_cert, ratio=d["beta"] / r.beta_cert)
            else:
                d.update(status=f"AQP at this V_inf: {r.status}")
            rows.append(CompareRow(**d))
        hp, f64, _ = minimax_table(K)
        rows.append(CompareRow(**_metric_row(K, "minimax", "peer", f64, hp)))
        for name in presets:
            values, status = _preset_values(name, K)
            rows.append(CompareRow(**_metric_row(K, name, "preset", values, status=status)))
    return rows


def _fmt(x: float) -> str:
    return "—" if not math.isfinite(x) else f"{x:.3e}"


def to_markdown(rows) -> str:
    """GitHub markdown table of ``compare`` rows (β and ratio use the certified AQP bias)."""
    head = ("| K | estimator | β | β̄ (certified) | V∞ | V1 | AQP β at same V∞ | β / β_AQP |\n"
            "|---:|:---|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        ratio = "—" if not math.isfinite(r.ratio) else f"{r.ratio:.1f}"
        name = r.estimator if r.status == STATUS_OK else f"{r.estimator} ({r.status})"
        lines.append(f"| {r.K} | {name} | {_fmt(r.beta)} | {_fmt(r.beta_cert)} | {_fmt(r.V_inf)} "
                     f"| {_fmt(r.V1)} | {_fmt(r.aqp_beta)} | {ratio} |")
    return "\n".join(lines) + "\n"


def to_json(rows) -> str:
    """Canonical JSON (sorted keys; NaN/inf as null) of ``compare`` rows."""
    def clean(d):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}

    return json.dumps([clean(asdict(r)) for r in rows], sort_keys=True, indent=1)
