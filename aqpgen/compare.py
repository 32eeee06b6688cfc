"""Peers versus AQP presets: the comparison table (docs/MATH.md §7).

It reads the shipped tables (``aqpgen.store.locate``), so it sits above the generators (which
read no files), beside ``aqpgen.recommend``.

Public names
------------
compare(Ks, presets=None, *, target=LOG) -- list of ``CompareRow``: every peer and preset at
                                 every K, for the target log p (default) or p^a.
CompareRow                    -- one (K, estimator) row, every field documented.
PRESETS                       -- the shipped presets: eta3, eta15 (min V∞ at β <= (1+η)E*_K) and
                                 rho1, rho2, rho4, rho8 (min β at V∞ <= ρ V∞(plug-in); rho4 and
                                 rho8 are the points the trainer experiment found best, see
                                 ``aqpgen.recommend``).
POWER_PRESETS, power_presets(target) -- the presets shipped for a target p^a (rho1 for both;
                                 rho8 and rho16 for p^-0.5, the experiment's α-game);
                                 PRESET_PARAMS: the params of every preset name.
peer_values(name, K, target) -- the classical peers of a target (names from
                                 ``peers.peer_names``): log p
                                 ``peers.PEERS``; p^a ``peers_power.POWER_PEERS`` (plug-in (n/K)^a and
                                 its classical corrections).
peer_metrics(K, target)       -- metric rows of the peers and the minimax table at K (also
                                 used by ``aqpgen frontier`` and the report).
minimax_values(K, target)     -- (values_hp, values) of the target's minimax table at K: the
                                 shipped file's row when present (p^a), else solved.
preset_table_name(name, target) -- "kl-aqp-rho1", "pow0.5-aqp-rho1", ...
to_markdown(rows), to_json(rows) -- renderings (the README/report embeds the markdown).

For every classical peer (plug-in, digamma, Laplace, jackknife, Grassberger) the row also carries the AQP bias
at the peer's own worst variance: ``solve_rho(K, ρ)`` with ρ = V∞(peer)/V∞(plug-in), and the
ratio β(peer)/β(AQP).  The AQP frontier dominates the peer iff the ratio is > 1.  The minimax
table is the frontier's end point (η = 0), so it gets no ratio.

Numbers: β, β̄, V∞ and V1 of peers and presets come from one call of
``aqpgen.numerics.metrics.table_metrics`` (β̄ certified by ``aqpgen.numerics.certify``); the AQP
numbers at a peer's V∞ are those of ``aqpgen.generators.aqp.solve_rho`` (the same metrics).  Preset rows are read from the shipped table
(``tables/kl-aqp-<preset>.h5``, ``tables/pow<a>-aqp-<preset>.h5``) when it holds a row for K, and
solved otherwise.  Every number is for the target passed (``target``; ρ is relative to that
target's plug-in (n/K)^a).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np

from aqpgen.generators.aqp import build_K, plugin_constants, solve_rho
from aqpgen.generators.minimax import E_star, minimax_table, table_name
from aqpgen.generators.peers import peer_names, peer_table
from aqpgen.generators.peers_power import power_peer_table
from aqpgen.numerics.metrics import table_metrics
from aqpgen.records import STATUS_OK, as_K
from aqpgen.store.locate import find_table
from aqpgen.store.tablefile import read_table
from aqpgen.targets import LOG, Target, parse_target, table_prefix

__all__ = ["DEFAULT_POWER_PRESETS", "POWER_PRESETS", "PRESETS", "PRESET_PARAMS", "CompareRow",
           "compare", "minimax_values", "peer_metrics", "peer_values", "power_presets",
           "preset_table_name", "to_json", "to_markdown"]

#: preset name -> AQP params, for every preset shipped for some target.
PRESET_PARAMS = {
    "eta3": {"eta": 3.0, "objective": "Vinf"},
    "eta15": {"eta": 15.0, "objective": "Vinf"},
    "rho1": {"rho": 1.0},
    "rho2": {"rho": 2.0},
    "rho4": {"rho": 4.0},
    "rho8": {"rho": 8.0},
    "rho16": {"rho": 16.0},
}
#: the presets shipped for log p (tables/kl-aqp-<name>.h5) -> AQP params.
PRESETS = {n: PRESET_PARAMS[n] for n in ("eta3", "eta15", "rho1", "rho2", "rho4", "rho8")}
#: the presets shipped for a power target p^a (tables/pow<a>-aqp-<name>.h5), by target; a target
#: not listed has ``DEFAULT_POWER_PRESETS``.
POWER_PRESETS = {"p^0.5": ("rho1",), "p^-0.5": ("rho1", "rho8", "rho16")}
DEFAULT_POWER_PRESETS = ("rho1",)


def power_presets(target) -> tuple[str, ...]:
    """The preset names shipped for the power target ``target`` (``POWER_PRESETS``)."""
    return POWER_PRESETS.get(parse_target(target).spec, DEFAULT_POWER_PRESETS)


@dataclass(frozen=True)
class CompareRow:
    """One estimator at one K.

    Attributes
    ----------
    K : int
    estimator : str
        Peer name (one of ``peers.peer_names(target)``, or "minimax") or preset ("eta3", ...).
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


def peer_values(name: str, K: int, target: Target = LOG) -> np.ndarray:
    """The float64 table of peer ``name`` (one of ``peer_names(target)``) at K."""
    target = parse_target(target)
    return peer_table(name, K) if target == LOG else power_peer_table(name, K, target)


def preset_table_name(name: str, target: Target = LOG) -> str:
    """Shipped file name (without .h5) of an AQP preset: "kl-aqp-rho1", "pow0.5-aqp-rho1"."""
    return f"{table_prefix(target)}-aqp-{name}"


def _shipped(name: str, target: Target):
    """The shipped table ``name`` (TableData) for ``target`` and its path, or (None, None) when
    no file of that name is found; a file that cannot be read is an error (TableFormatError)."""
    try:
        path = find_table(name)
    except FileNotFoundError:
        return None, None
    t = read_table(path)
    return (t if t.target == target.name else None), path


def minimax_values(K: int, target: Target = LOG):
    """(values_hp, values_f64) of the target's minimax table at K.  log p: solved (as always);
    p^a: the row of the shipped ``pow<a>-minimax`` file when it has an ok row at K, else solved."""
    target = parse_target(target)
    if target != LOG:
        t, _ = _shipped(table_name(target), target)
        if t is not None and K in t.Ks and t.status(K) == STATUS_OK:
            r = t.row(K)
            return r.values_hp, np.asarray(r.values, dtype=np.float64)
    hp, f64, _ = minimax_table(K, target=target)
    return hp, f64


def _preset_values(name: str, K: int, target: Target = LOG):
    """(values, status) of a preset at K: the shipped table's row when it has one (its recorded
    status when that row is out of reach — not solved again), else solved now."""
    t, path = _shipped(preset_table_name(name, target), target)
    if t is not None and K in t.Ks:
        row = t.row(K)
        if row.status == STATUS_OK:
            return np.asarray(t.values(K), dtype=np.float64), STATUS_OK
        return np.full(K, np.nan), f"{path.name}: {row.status}"
    params = dict(PRESETS[name]) if target == LOG else {**PRESET_PARAMS[name], "target": target.spec}
    inputs = {"E_star": E_star(K, target=target)} if "eta" in params else None  # solved, explicitly
    r = build_K(K, params, inputs=inputs)
    return r.values, r.status


def _metric_row(K, name, kind, values, values_hp=None, status=STATUS_OK, target=LOG) -> dict:
    if status != STATUS_OK:
        nan = math.nan
        return dict(K=K, estimator=name, kind=kind, beta=nan, beta_cert=nan, V_inf=nan, V1=nan,
                    max_abs_c=nan, status=status)
    m = table_metrics(K, values, values_hp, target=target)
    return dict(K=K, estimator=name, kind=kind, beta=m["beta"], beta_cert=m["beta_cert"],
                V_inf=m["V_inf"], V1=m["V1"], max_abs_c=m["max_abs_c"], status=STATUS_OK)


def peer_metrics(K: int, target: Target = LOG) -> list[dict]:
    """Metric rows at K (``CompareRow`` fields without the AQP columns: estimator, kind "peer",
    β, β̄, V∞, V1, max|c|, status) of every classical peer of the target, then of its minimax
    table ("minimax")."""
    target = parse_target(target)
    rows = [_metric_row(K, name, "peer", peer_values(name, K, target), target=target)
            for name in peer_names(target)]
    hp, f64 = minimax_values(K, target)
    rows.append(_metric_row(K, "minimax", "peer", f64, hp, target=target))
    return rows


def compare(Ks, presets=None, *, target: Target = LOG) -> list[CompareRow]:
    """Peers and presets at each K (see module docstring); rows ordered by K, peers first.

    Parameters
    ----------
    Ks : iterable of int
        Batch sizes (each >= 2).
    presets : iterable of str, optional
        Preset names from ``PRESET_PARAMS`` (default: every preset shipped for the target,
        ``PRESETS`` for log p, ``power_presets(target)`` for p^a).
    target : Target or str
        log p (default) or p^a ("p^0.5"): the peers are ``peer_names(target)``, the minimax and
        preset tables those of the target.
    """
    target = parse_target(target)
    Ks = [as_K(k, "Ks[i]", minimum=2) for k in Ks]
    if presets is None:
        presets = tuple(PRESETS) if target == LOG else power_presets(target)
    for name in presets:
        if name not in (PRESETS if target == LOG else PRESET_PARAMS):
            known = PRESETS if target == LOG else PRESET_PARAMS
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(known)}")
    rows: list[CompareRow] = []
    for K in Ks:
        Es = E_star(K, target=target)
        V_pl, _ = plugin_constants(K, target)
        for d in peer_metrics(K, target):
            if d["estimator"] != "minimax":  # a classical peer: the AQP bias at its V_inf
                r = solve_rho(K, d["V_inf"] / V_pl, E_star=Es, target=target)
                if r.status == STATUS_OK:
                    d.update(aqp_beta=r.beta_cert, ratio=d["beta"] / r.beta_cert)
                else:
                    d.update(status=f"AQP at this V_inf: {r.status}")
            rows.append(CompareRow(**d))
        for name in presets:
            values, status = _preset_values(name, K, target)
            rows.append(CompareRow(**_metric_row(K, name, "preset", values, status=status, target=target)))
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
