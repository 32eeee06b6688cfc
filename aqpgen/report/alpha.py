"""The report's sections for the power targets p^a (the α-divergence games, α = a + 1).

One section per declared target (``POWER_TARGETS``: p^0.5 and p^-0.5), every number computed
from the shipped tables and the library:

* the rate audit of the minimax table ``pow<a>-minimax`` (``minimax.rate_audit`` with the target:
  fitted log-log slope of E*_K over K = 16…1024 against −2(a+1) within ``SLOPE_TOL``, and
  lim K^(2(a+1))·E*_K with the digits justified by the extrapolation's error estimate *and* the
  inputs' accuracy, the Remez spread of each E*_K — ``RateAudit.limit_digits``);
* the comparison with the peers (``aqpgen compare --target p^A --markdown``) at K = 8, 16, 64;
* the frontier (the rho sweep ``FRONTIER_RHOS`` of ``aqp.frontier`` with the target) at one K,
  as a figure and a table, with the peers;
* the α-game results, read from ``docs/game.json`` (written by
  ``python -m aqpgen.game.study --save``; never re-simulated here).

Every declared table must exist in ``tables_dir`` and be the one the library's table locator
finds (the compare rows are read through ``aqpgen.store.locate``); otherwise the section raises
(FileNotFoundError / ValueError naming the table) and the report fails.

Public names
------------
POWER_TARGETS, ALPHA_COMPARE_KS, FRONTIER_RHOS, SLOPE_TOL (the K range of the rate audit is
``aqpgen.audit.files.RATE_RANGE``, the K shown ``aqpgen.report.sections.RATE_SHOW_KS``)
declared_tables(target)                 -- (minimax, rho1) table names of a target.
check_tables(tables_dir, target)        -- the declared files, checked (raises when missing).
power_rate_data(tables_dir, target, ...) -- the rate audit (dict) of the target's minimax table.
power_rate_markdown(d)                  -- its Markdown.
power_compare_markdown(target, Ks)      -- what ``aqpgen compare --target ... --markdown`` prints.
frontier_data(K, target, rhos)          -- frontier points and peers' numbers at K.
frontier_markdown(d), frontier_figure(d, path)
alpha_game_results(path)                -- the α part of game.json (raises when absent).
game_summary(alpha_data, target, K)     -- one line per scenario: TV at K of plug-in and tables.
target_sections(tables_dir, target, ...) -- all of the above for one target (what the report uses).
alpha_of(target), heading(target), figure_name(target, K) -- small naming helpers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from aqpgen.audit.files import RATE_RANGE
from aqpgen.game import alpha as game_alphas
from aqpgen.game import study
from aqpgen import compare
from aqpgen.generators import aqp, minimax
from aqpgen.report import figures
from aqpgen.report.markdown import (
    limit_markdown,
    md_table,
    ok_Ks,
    read_named,
    sci,
    table_path,
)
from aqpgen.report.sections import RATE_SHOW_KS
from aqpgen.store.locate import find_table
from aqpgen.targets import PowerTarget, parse_target, table_prefix

__all__ = [
    "ALPHA_COMPARE_KS",
    "alpha_game_results",
    "FRONTIER_RHOS",
    "POWER_TARGETS",
    "SLOPE_TOL",
    "alpha_of",
    "check_tables",
    "declared_tables",
    "figure_name",
    "frontier_data",
    "frontier_figure",
    "frontier_markdown",
    "game_summary",
    "heading",
    "power_compare_markdown",
    "power_rate_data",
    "power_rate_markdown",
    "target_sections",
]

#: The power targets with shipped tables (tables/tables.toml, family "pow").
POWER_TARGETS = ("p^0.5", "p^-0.5")
ALPHA_COMPARE_KS = (8, 16, 64)
#: rho values of the frontier (V∞ from 0.5x to 4x the plug-in's, where the peers sit; dense just
#: above 1: for p^0.5 the minimum β falls ~100x between rho = 1 and 1.5, where the corrected peers sit).
FRONTIER_RHOS = (0.5, 0.75, 1.0, 1.02, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
#: the fitted slope must equal -2(a+1) within this (issue 10, rate audit).
SLOPE_TOL = 0.02


def _power(target) -> PowerTarget:
    t = parse_target(target)
    if not isinstance(t, PowerTarget):
        raise TypeError(f"target must be a power target p^a, received {target!r}")
    return t


def alpha_of(target) -> float:
    """α = a + 1 of the game served by p^a (``game.alpha.game_alpha`` of a power target)."""
    return game_alphas.game_alpha(_power(target))


def declared_tables(target) -> tuple[str, str]:
    """(minimax, rho1) table names of a power target: ("pow0.5-minimax", "pow0.5-aqp-rho1")."""
    t = _power(target)
    return minimax.table_name(t), compare.preset_table_name("rho1", t)


def check_tables(tables_dir, target) -> dict:
    """{name: TableData} of the declared tables of ``target`` in ``tables_dir``.

    Raises FileNotFoundError naming a missing table, ValueError when a file holds another
    target or when the table locator (``$AQPGEN_TABLES``, then the source tables/) would read
    another file than ``tables_dir``'s (the compare rows are read through the locator).
    """
    t = _power(target)
    out = {}
    for name in declared_tables(t):
        tab = read_named(tables_dir, name)
        if tab.target != t.name:
            raise ValueError(f"table {name!r} in {tables_dir} has target {tab.target!r}, expected {t.name!r}")
        found = find_table(name)
        if not os.path.samefile(found, table_path(tables_dir, name)):
            raise ValueError(f"table {name!r}: the table locator reads {found}, not "
                             f"{table_path(tables_dir, name)} (set AQPGEN_TABLES={tables_dir})")
        out[name] = tab
    return out


def power_rate_data(tables_dir, target, *, kmin: int | None = None, kmax: int | None = None,
              table=None) -> dict:
    """Rate audit of ``pow<a>-minimax`` over its ok rows K <= kmax (fit over K >= kmin;
    default ``RATE_RANGE``).  ``table``: that file's TableData when already read (else it is
    read from ``tables_dir``).

    Raises ValueError when the table lacks ok rows at kmin and kmax (the audit's range)."""
    t = _power(target)
    kmin = RATE_RANGE[0] if kmin is None else kmin
    kmax = RATE_RANGE[1] if kmax is None else kmax
    name = minimax.table_name(t)
    tab = read_named(tables_dir, name) if table is None else table
    ks = [K for K in ok_Ks(tab) if K <= kmax]
    if kmin not in ks or kmax not in ks:
        raise ValueError(f"table {name!r}: the rate audit needs ok rows at K = {kmin} and K = {kmax}")
    m = {K: tab.metrics(K) for K in ks}
    ra = minimax.rate_audit(ks, [m[K]["E_star"] for K in ks], Kmin=kmin, target=t, slope_tol=SLOPE_TOL,
                            spread=[m[K].get("spread", 0.0) for K in ks])
    return {"target": t, "name": name, "audit": ra, "metrics": m, "Ks": ks, "kmin": kmin,
            "kmax": kmax}


def _scaled(r: float) -> str:
    """"K^3·E*_K", "K·E*_K" (r = 1)."""
    return "K·E*_K" if r == 1 else f"K^{r:g}·E*_K"


def power_rate_markdown(d: dict) -> str:
    t, ra, m = d["target"], d["audit"], d["metrics"]
    r = _scaled(t.rate_exponent)
    show = [K for K in RATE_SHOW_KS if K in m] or d["Ks"][-4:]
    rows = [[K, f"{m[K]['E_star']:.10e}", f"{K ** t.rate_exponent * m[K]['E_star']:.12f}",
             sci(m[K].get("spread"), 2)] for K in show]
    return (f"`minimax.rate_audit` on `{d['name']}.h5` (E*_K from its rows, fit over "
            f"K = {d['kmin']}…{d['kmax']}, {ra.n_fit} values): fitted log-log slope "
            f"**{ra.slope:+.5f}** against −2(a+1) = {-t.rate_exponent:g} (tolerance ±{ra.slope_tol:g}: "
            f"{'passes' if ra.ok else 'FAILS'}); " + limit_markdown(ra, r) + ".\n\n"
            + md_table(["K", "E*_K", r, "Remez spread"], rows))


def power_compare_markdown(target, Ks: Sequence[int] = ALPHA_COMPARE_KS) -> str:
    """``compare.to_markdown(compare.compare(Ks, target=target))``: what
    ``aqpgen compare --target p^A --K ... --markdown`` prints."""
    return compare.to_markdown(compare.compare(list(Ks), target=_power(target))).strip("\n")


def frontier_data(K: int, target, rhos: Sequence[float] = FRONTIER_RHOS) -> dict:
    """The rho sweep at K (``aqp.frontier`` with the target) and the peers' / minimax numbers."""
    t = _power(target)
    Es = minimax.E_star(K, target=t)
    pts = aqp.frontier(K, rhos=list(rhos), target=t, E_star=Es)
    peers = [{"name": d["estimator"], "beta_cert": d["beta_cert"], "V_inf": d["V_inf"], "V1": d["V1"]}
             for d in compare.peer_metrics(K, t)]
    return {"K": K, "target": t, "E_star": Es, "points": pts, "peers": peers}


def frontier_markdown(d: dict) -> str:
    rows = []
    for p in d["points"]:
        st = "ok" if p.status == "ok" else p.status.split(":")[0]
        rows.append([f"AQP ρ = {p.param:g}", sci(p.beta_cert), sci(p.V_inf), sci(p.V1), st])
    for q in d["peers"]:
        rows.append([f"`{q['name']}`", sci(q["beta_cert"]), sci(q["V_inf"]), sci(q["V1"]), "peer"])
    return (f"Frontier of {d['target'].name} at K = {d['K']} (`aqpgen frontier --target "
            f"{d['target'].spec} --K {d['K']} --rho {','.join(f'{p.param:g}' for p in d['points'])}`; "
            f"E*_K = {sci(d['E_star'])}):\n\n"
            + md_table(["estimator", "β̄ (certified)", "V∞", "V1", "status"], rows,
                       "---|---:|---:|---:|---|"))


def frontier_figure(d: dict, path) -> str:
    """Figure: certified β against V∞ (log-log) of the AQP rho points and the peers (the minimax
    point is drawn only when its V∞ is below 1e3: its alternating coefficients grow like 2^K)."""
    return os.fspath(figures.frontier_figure(
        path, [(p.V_inf, p.beta_cert, f"ρ={p.param:g}") for p in d["points"] if p.status == "ok"],
        [(q["name"], q["V_inf"], q["beta_cert"]) for q in d["peers"]],
        f"Bias–variance frontier of {d['target'].name} (α = {alpha_of(d['target']):g}) at K = {d['K']}",
        label="AQP (ρ sweep)", figsize=(6.4, 4.2), dpi=110, peer_vmax=1e3))


def alpha_game_results(path) -> dict:
    """The α part of the game study's data (``docs/game.json``); raises FileNotFoundError
    or ValueError when it is absent or does not cover ``POWER_TARGETS``."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found (run `python -m aqpgen.game.study --save {path}`)")
    data = study.load_data(path).get("alpha")
    if not isinstance(data, dict) or not data.get("alphas"):
        raise ValueError(f"{path} has no alpha-game results")
    have = {r.get("target") for r in data["alphas"].values()}
    missing = [t for t in POWER_TARGETS if parse_target(t).name not in have]
    if missing:
        raise ValueError(f"{path}: no alpha-game results for {', '.join(missing)}")
    return data


def game_summary(data: dict, target, K: int = 64) -> str:
    """One sentence per scenario: exact fixed-point TV at K (independent baseline) of the plug-in
    and of the target's tables, and the sampled final TV at the largest sampled K."""
    t = _power(target)
    res = next(r for r in data["alphas"].values() if r.get("target") == t.name)
    names = ["plugin", *declared_tables(t)]
    out = []
    for sc, byname in res["exact"].items():
        bits = []
        for n in names:
            r = byname.get(n)
            if r is None or K not in r["K"]:
                raise ValueError(f"alpha-game data for {t.name}: no exact result of {n!r} at K = {K} ({sc})")
            bits.append(f"`{n}` {sci(r['tv'][r['K'].index(K)])}")
        samp = res["sampled"].get(sc, {})
        sb = []
        for n in names:
            r = samp.get(n)
            if r and r["K"]:
                sb.append(f"`{n}` {sci(r['mean'][-1])}")
        sK = samp["plugin"]["K"][-1] if samp.get("plugin") else None
        out.append(f"* `{sc}`: TV at the exact fixed point, K = {K}: " + ", ".join(bits)
                   + (f"; sampled final TV at K = {sK} (mean over {data['seeds']} seeds): "
                      + ", ".join(sb) if sb else "") + ".")
    return "\n".join(out)



def target_sections(tables_dir, target, *, K: int = 64, quick: bool = False, game=None,
                    fig_path=None) -> dict:
    """Every part of one target's section: {"rate", "compare", "frontier", "frontier_fig",
    "game"} (Markdown; "frontier_fig" the PNG written to ``fig_path``).  ``game``: the data of
    :func:`alpha_game_results` (None: no game part).  Raises on any failure (a missing table, a
    solver error)."""
    t = _power(target)
    tabs = check_tables(tables_dir, t)
    out = {"rate": power_rate_markdown(power_rate_data(tables_dir, t, table=tabs[minimax.table_name(t)])),
           "compare": power_compare_markdown(t, (8,) if quick else ALPHA_COMPARE_KS)}
    fd = frontier_data(K, t, (1.0, 2.0) if quick else FRONTIER_RHOS)
    out["frontier"] = frontier_markdown(fd)
    if fig_path is not None:
        out["frontier_fig"] = frontier_figure(fd, fig_path)
    if game is not None:
        out["game"] = game_summary(game, t, K=K)
    return out


def heading(target) -> str:
    t = _power(target)
    return f"{t.name} (α = {alpha_of(t):g}; tables `{'`, `'.join(declared_tables(t))}`)"


def figure_name(target, K: int) -> str:
    return f"frontier_{table_prefix(_power(target))}_K{K}.png"
