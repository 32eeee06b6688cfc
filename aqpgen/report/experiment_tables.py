"""The tables and findings lines of docs/experiments.md shared by its sections
(``aqpgen.report.experiments`` for the one-token game, ``aqpgen.report.experiments_sequence`` for
the multi-token game and the noise-weight fit).

Public names
------------
arm_Ks(cells, target, scale, game), not_tables(target), pm(cell), fmt(x, d), game_name(target),
steps_text(s), cell_table(results, cells, target, scale, K, with_sim, game),
findings(results, cells, target, scale, game), fmt_spans(spans), figure_lines(figures, key)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from aqpgen.experiments.grpo_run import ORACLE, PROXIES
from aqpgen.experiments.summary import (
    THRESHOLD,
    Cell,
    gap_closed,
    select,
    simulator_tv,
    within_spread,
)
from aqpgen.generators.peers import peer_names
from aqpgen.report.markdown import md_table
from aqpgen.targets import LOG, parse_target

__all__ = ["arm_Ks", "cell_table", "figure_lines", "findings", "fmt", "fmt_spans", "game_name",
           "not_tables", "pm", "steps_text"]


def arm_Ks(all_cells: Sequence[Cell], target: str, scale: str, game: str = "token") -> list[int]:
    return sorted({c.K for c in all_cells if (c.game, c.target, c.scale) == (game, target, scale)})


def not_tables(target) -> tuple[str, ...]:
    """Estimators that are no aqpgen table: the classical peers, the proxies, the oracle."""
    return tuple(peer_names(parse_target(target))) + PROXIES + (ORACLE,)


def pm(c: Cell | None) -> str:
    return "—" if c is None else f"{c.mean:.3f} ± {c.std:.3f}"


def fmt(x, d: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def game_name(target: str) -> str:
    t = parse_target(target)
    return "KL game (target log p)" if t == LOG else f"α-game (target {t.spec}, α = {t.a + 1:g})"


def steps_text(s: int | None) -> str:
    return "never" if s is None else str(s)


def cell_table(results: dict, all_cells: Sequence[Cell], target: str, scale: str, K: int,
                with_sim: bool, game: str = "token") -> str:
    cs = select(all_cells, target=target, scale=scale, K=K, game=game)
    plugin = next((c for c in cs if c.estimator == "plugin"), None)
    oracle = next((c for c in cs if c.estimator == ORACLE), None)
    best = next((c for c in cs if c.estimator != ORACLE), None)
    scen = sorted({s for c in cs for s in c.by_scenario})
    ref = plugin.metrics.get("V_inf") if plugin is not None else None
    rows = []
    for c in cs:
        within = "" if c is best or c.estimator == ORACLE or best is None else \
            (" ≈" if within_spread(c, best) else "")
        row = [f"`{c.estimator}`" + (" (best)" if c is best else within), pm(c)]
        row += [fmt(c.by_scenario.get(s)) for s in scen]
        row += [steps_text(c.steps_to_threshold), steps_text(c.steps_to_plugin),
                fmt(gap_closed(c, plugin, oracle), 2)]
        if with_sim:
            row.append(fmt(simulator_tv(results, target, c.estimator, K)))
        m = c.metrics
        row += [f"{m['beta_cert']:.2e}" if "beta_cert" in m else "—",
                f"{m['V_inf'] / ref:.3g}" if "V_inf" in m and ref else "—"]
        rows.append(row)
    head = ["estimator", f"final TV ({len(cs[0].seeds)} seeds)"] + scen + \
        [f"steps to TV ≤ {THRESHOLD:g}", "steps to plug-in's final TV", "gap closed"] + \
        (["simulator"] if with_sim else []) + \
        ["β̄", "V∞ / plug-in"]
    return md_table(head, rows, "---|" + "---:|" * (len(head) - 1))


def findings(results: dict, all_cells: Sequence[Cell], target: str, scale: str,
              game: str = "token") -> list[str]:
    out = []
    for K in arm_Ks(all_cells, target, scale, game):
        cs = select(all_cells, target=target, scale=scale, K=K, game=game)
        tables = [c for c in cs if c.estimator != ORACLE]
        oracle = next((c for c in cs if c.estimator == ORACLE), None)
        plugin = next((c for c in cs if c.estimator == "plugin"), None)
        best = tables[0]
        near = [c.estimator for c in tables[1:] if within_spread(c, best)]
        line = (f"K = {K}: lowest final TV among the estimators a user can pick: `{best.estimator}` "
                f"{pm(best)}" + (f" (within its seed spread: {', '.join(f'`{n}`' for n in near)})"
                                  if near else ""))
        if best.estimator in not_tables(target):
            tab = next((c for c in tables if c.estimator not in not_tables(target)), None)
            line += (" — not a table: **no table does better here**"
                     + (f" (the best table, `{tab.estimator}`, {pm(tab)}"
                        + (", within that spread)" if within_spread(tab, best) else ")")
                        if tab is not None else ""))
        if oracle is not None:
            line += f"; the oracle reaches {pm(oracle)}"
        if plugin is not None:
            worse = [c.estimator for c in tables if c.estimator != "plugin"
                     and c.mean >= plugin.mean]
            line += (f"; no better than the plug-in ({pm(plugin)}): "
                     + ", ".join(f"`{n}`" for n in worse) if worse
                     else f"; every other estimator ends below the plug-in ({pm(plugin)})")
        out.append(line + ".")
    return out


def fmt_spans(spans: list[list[float]]) -> str:
    return " and ".join(f"{s[0]:.3g} … {s[-1]:.3g}" if len(s) > 1 else f"{s[0]:.3g}"
                        for s in spans) or "none"


def figure_lines(figures: dict, key: tuple) -> list[str]:
    out = []
    for kind in ("curves", "final"):
        f = figures.get(key + (kind,))
        if f:
            out += ["", f"![{kind}]({f})"]
    return out
