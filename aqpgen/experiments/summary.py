r"""What the experiment measured, as numbers: final TV and its seed spread, steps to a TV
threshold, the gap each estimator closes, and what the simulator predicts for the same game.

Definitions (every run's TV is the mean over the game's prompts of TV(π_θ, π*))
---------------------------------------------------------------------------------
final TV         the TV after the last optimizer step; per cell (target, scale_rewards, K,
                 estimator) its mean and sample standard deviation over seeds (ddof = 1).
steps to TV <= t the first evaluation step at which the seed-mean TV curve is <= t
                 (``THRESHOLD``), None if never.
steps to plug-in the first evaluation step at which the seed-mean TV curve is <= the plug-in's
                 final TV (same target, scaling and K): how much sooner a table gets where the
                 plug-in ends; None if never.
gap closed       (TV_plugin − TV_est) / (TV_plugin − TV_oracle) from the cell means: 1 is the
                 oracle, 0 the plug-in, < 0 worse than the plug-in.
within spread    an estimator's mean is within the seed spread of the best when
                 mean − best_mean <= best_std + std (the two one-standard-deviation bars touch).
simulator        ``aqpgen.game.dynamics.run_exact`` on the prompts' scenarios with
                 ``baseline="group"`` (TRL's group-mean baseline, whose expected step follows the
                 table's leave-one-out effective table): the fixed point of the *expected*
                 dynamics, mean over the prompts.  It has no sampling noise and no std scaling, so
                 it predicts ``scale_rewards="none"`` runs in the limit of small steps.

Public names
------------
THRESHOLD, Cell, cells(results) -> list[Cell], select(cells, target, scale, K),
best_cell(cells, ...), within_spread(a, b), gap_closed(cell, plugin, oracle),
simulator_tv(results, target, estimator, K), check_recommendation(results, rec, scale),
noise_ranges(results, target, ..., game, Ks) -- per K, the noise weights λ of ``aqpgen
                                 recommend`` the runs validate
fit_noise(results, current, target, fit) -- λ fitted on the fit runs (the one-token game at
                                 ``plan.FIT_KS``)
held_out_runs(results, target), validate_noise(results, λ, target, held_out) -- the disjoint
                                 runs and the recommendation's check on them
collapses(results, mass)      -- runs whose final policy sits on one answer
proxy_fixed_point(game, j, mean) -- where a sequence-likelihood proxy drives prompt j
lambda_spans(grid, ok)        -- runs of consecutive grid values
LAMBDA_GRID
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aqpgen.experiments.answer_game import SPECIAL_TOKENS
from aqpgen.experiments.grpo_run import ORACLE
from aqpgen.experiments.plan import FIT_KS
from aqpgen.game.scenarios import tv_distance
from aqpgen.recommend import recommend
from aqpgen.store.locate import available_tables
from aqpgen.targets import parse_target

__all__ = [
    "LAMBDA_GRID",
    "THRESHOLD",
    "Cell",
    "best_cell",
    "cells",
    "check_recommendation",
    "collapses",
    "fit_noise",
    "gap_closed",
    "held_out_runs",
    "lambda_spans",
    "noise_ranges",
    "proxy_fixed_point",
    "select",
    "simulator_tv",
    "validate_noise",
    "within_spread",
]

#: TV threshold of "steps to reach".
THRESHOLD = 0.2
#: The noise weights λ tried by ``noise_ranges`` and ``fit_noise``: 0 and 81 points log-spaced
#: over 1e-4 .. 1.
LAMBDA_GRID = (0.0,) + tuple(float(x) for x in np.logspace(-4, 0, 81))


@dataclass(frozen=True)
class Cell:
    """The runs of one (target, scale_rewards, K, estimator), summarised over seeds.

    Attributes
    ----------
    target, scale, estimator : str
    K : int
    game : str
        ``"token"`` (one-token game) or ``"sequence"`` (multi-token game).
    seeds : tuple of int
    final : tuple of float
        Final TV of each seed's run (mean over prompts).
    by_scenario : dict[str, float]
        Mean over seeds of the final TV of the prompts of each scenario.
    mean, std : float
        Mean and sample standard deviation (ddof = 1; 0 for one seed) of ``final``.
    steps_to_threshold, steps_to_plugin : int or None
        First evaluation step of ``curve_mean`` at or below THRESHOLD / the plug-in's final mean
        TV (module docstring); None if never (or no plug-in run).
    curve_steps : tuple of int
    curve_mean : tuple of float
        Evaluation steps and the TV at each, averaged over seeds.
    metrics : dict
        β, β̄, V∞, V1 of the row served (empty for the oracle).
    seconds : float
        Mean wall time of ``train()``.
    """

    target: str
    scale: str
    K: int
    estimator: str
    seeds: tuple[int, ...]
    final: tuple[float, ...]
    by_scenario: dict
    mean: float
    std: float
    steps_to_threshold: int | None
    steps_to_plugin: int | None
    curve_steps: tuple[int, ...]
    curve_mean: tuple[float, ...]
    metrics: dict
    seconds: float
    game: str = "token"


def _mean_tv(tvs: Sequence[float]) -> float:
    return sum(tvs) / len(tvs)


def _first_below(steps: Sequence[int], curve: Sequence[float], t: float) -> int | None:
    for s, v in zip(steps, curve):
        if v <= t:
            return int(s)
    return None


def cells(results: dict) -> list[Cell]:
    """One Cell per (game, target, scale, K, estimator) of a results object, in run order."""
    groups: dict = {}
    for r in results["runs"]:
        c = r["config"]
        groups.setdefault((c.get("game", "token"), c["target"], c["scale_rewards"], c["K"],
                           r["estimator"]), []).append(r)
    out = []
    for (game, target, scale, K, est), runs in groups.items():
        prompts = results.get("games", {}).get(game, results["game"])["prompts"]
        runs = sorted(runs, key=lambda r: r["config"]["seed"])
        final = tuple(_mean_tv(r["final_tv"]) for r in runs)
        scen: dict = {}
        for j, p in enumerate(prompts):
            scen.setdefault(p["scenario"], []).append(
                statistics.fmean(r["final_tv"][j] for r in runs))
        steps = tuple(runs[0]["steps"])
        if any(tuple(r["steps"]) != steps for r in runs):
            raise ValueError(f"runs of {est} K={K} were evaluated at different steps")
        curve = tuple(statistics.fmean(_mean_tv(r["tv"][i]) for r in runs) for i in range(len(steps)))
        out.append(Cell(
            target=target, scale=scale, K=int(K), estimator=est,
            seeds=tuple(r["config"]["seed"] for r in runs), final=final,
            by_scenario={k: statistics.fmean(v) for k, v in scen.items()},
            mean=statistics.fmean(final), std=statistics.stdev(final) if len(final) > 1 else 0.0,
            steps_to_threshold=_first_below(steps, curve, THRESHOLD), steps_to_plugin=None,
            curve_steps=steps, curve_mean=curve, metrics=dict(runs[0]["metrics"]),
            seconds=statistics.fmean(r["seconds"] for r in runs), game=game))
    plugin = {(c.game, c.target, c.scale, c.K): c.mean for c in out if c.estimator == "plugin"}
    return [replace(c, steps_to_plugin=_first_below(c.curve_steps, c.curve_mean, plugin[key]))
            if (key := (c.game, c.target, c.scale, c.K)) in plugin else c for c in out]


def select(all_cells: Iterable[Cell], *, target: str, scale: str, K: int,
           game: str = "token") -> list[Cell]:
    """The cells of one (game, target, scale, K), lowest final TV first."""
    return sorted((c for c in all_cells if (c.game, c.target, c.scale, c.K) == (game, target, scale, K)),
                  key=lambda c: c.mean)


def within_spread(a: Cell, best: Cell) -> bool:
    """``a``'s mean is within the seed spread of ``best`` (module docstring)."""
    return a.mean - best.mean <= best.std + a.std


def best_cell(all_cells: Iterable[Cell], *, target: str, scale: str, K: int,
              tables_only: bool = False, game: str = "token") -> Cell | None:
    """The lowest mean final TV of a (game, target, scale, K); ``tables_only`` leaves out the
    oracle."""
    cs = [c for c in select(all_cells, target=target, scale=scale, K=K, game=game)
          if not (tables_only and c.estimator == ORACLE)]
    return cs[0] if cs else None


def gap_closed(cell: Cell, plugin: Cell | None, oracle: Cell | None) -> float:
    """(TV_plugin − TV) / (TV_plugin − TV_oracle); NaN when either reference is missing or they
    coincide."""
    if plugin is None or oracle is None or not plugin.mean > oracle.mean:
        return math.nan
    return (plugin.mean - cell.mean) / (plugin.mean - oracle.mean)


def simulator_tv(results: dict, target: str, estimator: str, K: int) -> float:
    """The simulator's prediction recorded with the runs (``aqpgen.experiments.plan.prediction``:
    fixed point of the expected dynamics under the group-mean baseline, mean over the prompts);
    NaN when the results hold none."""
    return float(results.get("predictions", {}).get(target, {}).get(str(K), {}).get(estimator, math.nan))


def check_recommendation(results: dict, rec, scale: str = "none", game: str = "token",
                         all_cells: Sequence[Cell] | None = None) -> dict | None:
    """What the experiment measured at ``rec.K`` (an ``aqpgen.recommend.Recommendation``) with
    ``scale_rewards=scale`` in ``game``: the best estimator a user can pick (the oracle and the
    plan's candidate presets that are not shipped left out), the recommended table's final TV, and whether it is within the seed spread of the
    best.  None when the experiment did not run that (game, target, K).  ``all_cells``:
    ``cells(results)`` when the caller has them."""
    target = next((a["target"] for a in results["plan"]["arms"]
                   if parse_target(a["target"]) == parse_target(rec.target)), None)
    if target is None:
        return None
    all_cells = cells(results) if all_cells is None else all_cells
    unshipped = _unshipped_candidates(results)
    cs = [c for c in select(all_cells, target=target, scale=scale, K=rec.K, game=game)
          if c.estimator != ORACLE and c.estimator not in unshipped]
    if not cs:
        return None
    best = cs[0]
    chosen = next((c for c in cs if c.estimator == rec.name), None)
    out = {"K": rec.K, "scale_rewards": scale, "game": game, "best": best.estimator,
           "best_tv": [best.mean, best.std], "recommended": rec.name,
           "recommended_tv": None if chosen is None else [chosen.mean, chosen.std],
           "within_spread": None if chosen is None else within_spread(chosen, best)}
    where = "" if game == "token" else f", {game} game"
    head = (f"experiment (docs/experiments.md){where}, K={rec.K}, scale_rewards={scale!r}: lowest final "
            f"TV {best.estimator} {best.mean:.3f} +- {best.std:.3f}")
    if chosen is None:
        out["text"] = head + f"; {rec.name} was not run."
    else:
        verdict = "within" if out["within_spread"] else "NOT within"
        out["text"] = (head + f"; {rec.name} {chosen.mean:.3f} +- {chosen.std:.3f}, {verdict} the "
                       "seed spread of the best.")
    return out


def _unshipped_candidates(results: dict) -> frozenset:
    """Candidate presets of the plan that are not shipped: a user cannot pick them (and
    ``recommend`` cannot name them), so the best a user can pick leaves them out."""
    names = {c["name"] for c in results.get("plan", {}).get("candidates", ())}
    return frozenset(names - set(available_tables())) if names else frozenset()


def noise_ranges(results: dict, target: str = "log", grid: Sequence[float] | None = None,
                 scale: str = "none", game: str = "token",
                 Ks: Sequence[int] | None = None) -> tuple[list[float], dict[int, list[float]]]:
    """The noise weights λ of ``aqpgen.recommend`` under which the recommendation is within the
    seed spread of the best measured estimator, for each K the experiment ran for ``target`` in
    ``game`` (or each of ``Ks``).

    Returns ``(grid, {K: admissible λ})``: the λ tried (default ``LAMBDA_GRID``: 0 and 81 points
    log-spaced over 1e-4 .. 1).  The tables are the shipped ones the locator finds, as for any
    ``aqpgen recommend`` call."""
    t = parse_target(target)
    grid = list(LAMBDA_GRID) if grid is None else list(grid)
    if Ks is None:
        Ks = sorted({r["config"]["K"] for r in results["runs"]
                     if parse_target(r["config"]["target"]) == t
                     and r["config"]["scale_rewards"] == scale
                     and r["config"].get("game", "token") == game})
    all_cells = cells(results)
    out = {}
    for K in Ks:
        out[K] = [lam for lam in grid
                  if (c := check_recommendation(results, recommend(K, t, noise=lam), scale, game,
                                                all_cells)) is not None and c["within_spread"]]
    return grid, out


def lambda_spans(grid: Sequence[float], ok: Sequence[float]) -> list[list[float]]:
    """Runs of consecutive grid values of ``ok``."""
    spans: list[list[float]] = []
    for lam in ok:
        if spans and grid.index(lam) == grid.index(spans[-1][-1]) + 1:
            spans[-1].append(lam)
        else:
            spans.append([lam])
    return spans


def fit_noise(results: dict, current: float, target: str = "log",
              fit: Sequence[tuple[str, int]] | None = None) -> dict:
    """Fit λ on the ``fit`` runs ((game, K) pairs, scale "none"; default the one-token game at
    ``FIT_KS``): the grid values under which the recommendation is within the seed spread of
    the best at every fit run at once.  The fit keeps ``current`` when it is admissible, else
    takes the geometric middle of the widest admissible span (None when none is).

    Returns ``{"fit": [(game, K)], "spans": [[λ...]], "lambda": λ or None, "moved": bool}``."""
    if fit is None:
        ran = {(r["config"].get("game", "token"), r["config"]["K"]) for r in results["runs"]
               if parse_target(r["config"]["target"]) == parse_target(target)
               and r["config"]["scale_rewards"] == "none"}
        fit = [("token", K) for K in FIT_KS if ("token", K) in ran]
    fit = list(fit)
    grid = list(LAMBDA_GRID)
    ok = set(grid)
    for game in dict.fromkeys(g for g, _ in fit):
        _, per = noise_ranges(results, target, grid, game=game, Ks=[K for g, K in fit if g == game])
        for lams in per.values():
            ok &= set(lams)
    spans = lambda_spans(grid, [x for x in grid if x in ok])
    if any(s[0] <= current <= s[-1] for s in spans):
        lam, moved = current, False
    elif spans:
        w = max(spans, key=len)
        lo = w[0] if w[0] > 0 else (w[1] if len(w) > 1 else 1e-4)
        lam, moved = float(math.sqrt(lo * w[-1])), True
    else:
        lam, moved = None, False
    return {"fit": fit, "spans": spans, "lambda": lam, "moved": moved}


def held_out_runs(results: dict, target: str = "log",
                  fit: Sequence[tuple[str, int]] | None = None) -> list[tuple[str, int]]:
    """The (game, K) of ``target`` (scale "none") that are not fit runs: the held-out part."""
    fit = {("token", K) for K in FIT_KS} if fit is None else set(fit)
    t = parse_target(target)
    keys = {(r["config"].get("game", "token"), r["config"]["K"]) for r in results["runs"]
            if parse_target(r["config"]["target"]) == t and r["config"]["scale_rewards"] == "none"}
    return sorted(keys - fit, key=lambda k: (k[0] != "token", k[0], k[1]))


def validate_noise(results: dict, lam: float, target: str = "log",
                   held_out: Sequence[tuple[str, int]] | None = None) -> list[dict]:
    """``check_recommendation`` of ``recommend(K, target, noise=lam)`` on every held-out run
    (default ``held_out_runs``); the runs the experiment has no cell for are left out."""
    held_out = held_out_runs(results, target) if held_out is None else held_out
    all_cells = cells(results)
    out = []
    for game, K in held_out:
        chk = check_recommendation(results, recommend(K, parse_target(target), noise=lam), "none",
                                   game, all_cells)
        if chk is not None:
            out.append(chk)
    return out


def collapses(results: dict, mass: float = 0.9) -> list[dict]:
    """Runs whose final policy puts at least ``mass`` on one answer class of a prompt whose
    optimum puts less than ``mass`` on every class (a collapse: TV near 1 − π*_max); one entry
    per (run, prompt) with game, K, estimator, seed, prompt index, class index and its mass."""
    out = []
    for r in results["runs"]:
        c = r["config"]
        game = results.get("games", {}).get(c.get("game", "token"), results["game"])
        for j, d in enumerate(r.get("final_dist", ())):
            top = int(np.argmax(d))
            opt = game["prompts"][j].get("optimum")
            if d[top] >= mass and (opt is None or max(opt) < mass):
                out.append({"game": c.get("game", "token"), "K": c["K"], "estimator": r["estimator"],
                            "seed": c["seed"], "scale": c["scale_rewards"], "target": c["target"],
                            "prompt": j, "class": top, "mass": float(d[top])})
    return out


def proxy_fixed_point(game: dict, j: int, mean: bool) -> tuple[np.ndarray, float]:
    """Where a sequence-likelihood proxy drives prompt j of the multi-token game (a results
    file's ``games["sequence"]``), and its TV to the answer-level optimum.

    A completion y (L tokens, or fewer when it ends with the end-of-sequence token) is rewarded
    R_z(y) − τ w_y log π(y), w_y = 1 for the sum and 1/|y| for the per-token mean.  With a policy
    free over completions the expected update stops where that reward is the same constant c for
    every completion: π(y) = exp((R_z(y) − c) / (τ w_y)), c fixed by Σ π = 1 (bisection).  The
    completions are counted from the game: N_z digit sequences per sum; the ``other`` ones are
    every other completion the vocabulary allows (special tokens, prompt tokens, an early end:
    (v − 1)^(ℓ−1) of length ℓ < L, (v − 1)^(L−1) v − V^L of length L, v the vocabulary size)."""
    p = game["prompts"][j]
    tau, L, V = float(game["tau"]), int(game["completion_length"]), int(game["digits"])
    v = len(SPECIAL_TOKENS) + len(game["prompts"]) + V
    R = np.asarray(p["R"], dtype=np.float64)
    cls, n, w = [], [], []
    for k, z in enumerate(p["order"]):
        cls.append(k), n.append(game["multiplicity"][z]), w.append(L)
    for ell in range(1, L + 1):
        cls.append(len(p["order"])), w.append(ell)
        n.append((v - 1) ** (ell - 1) if ell < L else (v - 1) ** (L - 1) * v - V ** L)
    cls, n = np.array(cls), np.array(n, dtype=np.float64)
    scale = (np.array(w, dtype=np.float64) if mean else np.ones(len(w))) / tau

    def log_total(c):
        e = np.log(n) + scale * (R[cls] - c)
        return float(e.max() + np.log(np.exp(e - e.max()).sum()))

    lo, hi = float(R.min()) - 50.0 * tau, float(R.max()) + 50.0 * tau
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if log_total(mid) > 0 else (lo, mid)
    mass = n * np.exp(scale * (R[cls] - 0.5 * (lo + hi)))
    dist = np.bincount(cls, weights=mass, minlength=len(R))
    dist = dist / dist.sum()
    return dist, tv_distance(dist, np.asarray(p["optimum"], dtype=np.float64))
