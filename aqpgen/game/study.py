"""The game's result tables for the README: the α-game and the advantage conventions.

Everything here is computed when called (no number is typed by hand); ``python -m
aqpgen.game.study --seeds 20 --out docs/game.md --save docs/game.json`` writes the
Markdown fragment and its data (measured: conventions 393 s, alpha 345 s on a loaded 2-core
machine; ``--quick`` for a smoke run).  One part can be refreshed alone, e.g. once the shipped
p^a tables exist: ``--only alpha --reuse docs/game.json --save docs/game.json``
(``--only none``: rewrite the Markdown from the data).  The report may call :func:`alpha_study`,
:func:`conventions_study` and the ``*_markdown`` functions directly.

Public names
------------
alpha_study(...)        -- α = 0.5 / 1.5: exact fixed-point TV (independent and RLOO baselines)
                           and sampled final TV for plug-in, minimax and AQP tables of p^(α-1).
conventions_study(...)  -- KL game: final sampled TV per advantage convention, plug-in vs the
                           AQP presets, plus the exact fixed point under RLOO.
recommend(conv)         -- the recommended convention, from the numbers.
alpha_markdown, conventions_markdown, game_markdown, write_game_markdown
ALPHAS, CONVENTIONS, AQP_PRESETS
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aqpgen.game.alpha import game_target
from aqpgen.game.dynamics import run_exact
from aqpgen.game.estimators import ArrayEstimator, get_estimator, table_names
from aqpgen.game.meanfn import loo_compensated_table
from aqpgen.game.sampled import advantage_rms, run_sampled
from aqpgen.game.scenarios import get_scenario, tv_slope
from aqpgen.generators import aqp, minimax
from aqpgen.store.atomic import write_text_atomic

__all__ = [
    "ALPHAS",
    "AQP_PRESETS",
    "CONVENTIONS",
    "PREFERENCE",
    "TIE_MARGIN",
    "alpha_markdown",
    "alpha_study",
    "conventions_markdown",
    "conventions_study",
    "game_markdown",
    "load_data",
    "main",
    "recommend",
    "write_game_markdown",
]

ALPHAS = (0.5, 1.5)
#: (baseline, scale) pairs: the reference (other groups' mean, exact policy gradient), Dr. GRPO /
#: TRL scale_rewards="none", TRL GRPO default ("group"), TRL "batch", RLOO and its scaled forms.
CONVENTIONS = (("others", "none"), ("group", "none"), ("group", "group"), ("group", "batch"),
               ("rloo", "none"), ("rloo", "group"), ("rloo", "batch"))
AQP_PRESETS = ("kl-aqp-eta3", "kl-aqp-eta15", "kl-aqp-rho1", "kl-aqp-rho2")
SCENARIO_NAMES = ("zipf", "head")


def _conv_name(conv) -> str:
    return f"{conv[0]}/{conv[1]}" + (f"@{conv[2]}" if len(conv) > 2 else "")


def _available(name, target, notes):
    try:
        return get_estimator(name, target)
    except ValueError as exc:
        notes.append(f"`{name}`: not available ({str(exc).split('(')[0].strip()})")
        return None


#: In-process builds standing in for a shipped p^a table that is not found: (name suffix,
#: generator module, params).  The generators' own ``build_K`` (the one home of each table).
_STAND_INS = (("-minimax", minimax, {}), ("-aqp-rho1", aqp, {"rho": 1}))


def _built(name, target, Ks, notes):
    """A stand-in for the missing shipped table ``name`` of ``target``: its rows built here by
    the generator's ``build_K`` for the study's K (rows that fail are left out, with a note)."""
    for suffix, gen, params in _STAND_INS:
        if name.endswith(suffix):
            rows = {}
            for K in Ks:
                r = gen.build_K(K, dict(params, target=target.spec))
                if r.status != "ok":
                    notes.append(f"`{name}` K={K} (built here): {r.status}")
                    continue
                rows[K] = list(r.values_hp) if r.values_hp is not None else list(r.values)
            notes.append(f"`{name}`: the shipped file is not on the table path; its rows for "
                         f"K in {list(Ks)} were built here by `aqpgen.generators."
                         f"{gen.__name__.rsplit('.', 1)[-1]}.build_K`")
            return ArrayEstimator(name, rows, target) if rows else None
    return None


def _has_K(est, K) -> bool:
    try:
        if not est.is_oracle:
            est.check_K(K)
        return True
    except ValueError:
        return False


def _compensated(est, K) -> ArrayEstimator:
    """Row K of ``est`` times ``loo_compensation`` (exact), as an in-memory estimator."""
    vals = loo_compensated_table(est.values_exact(K), est.target, K)
    return ArrayEstimator(f"{est.name}*comp", {K: [str(v) for v in vals]}, est.target)


def _sampled(sc, est, K, seeds, notes, **kw) -> list[float]:
    """[final mean, std] of ``run_sampled``; [NaN, NaN] with a note when the runtime refuses the
    row (e.g. its precision guard) or the run fails."""
    try:
        r = run_sampled(sc, est, K, seeds, **kw)
    except (ValueError, ArithmeticError) as exc:
        notes.append(f"sampled {sc} `{est.name}` K={K}: {type(exc).__name__}: {exc}")
        return [math.nan, math.nan]
    return [r.final_mean, r.final_std]


def _exact_tv(sc, est, K, baseline, notes) -> float:
    if est is None or not _has_K(est, K):
        return math.nan
    try:
        return float(run_exact(sc, est, K, baseline=baseline).tv)
    except Exception as exc:  # noqa: BLE001 - one failing cell is n/a, with a note
        notes.append(f"exact {sc} `{est.name}` K={K} ({baseline}): {type(exc).__name__}: {exc}")
        return math.nan


# --------------------------------------------------------------------------------------------
# studies
# --------------------------------------------------------------------------------------------
def alpha_study(alphas: Sequence[float] = ALPHAS, Ks: Sequence[int] = (4, 8, 16, 32, 64, 128),
                sampled_Ks: Sequence[int] = (8, 32), seeds: Sequence[int] = tuple(range(10)),
                scenarios: Sequence[str] = SCENARIO_NAMES, estimators: Sequence[str] | None = None,
                steps: int | None = None, build_missing: bool = True) -> dict:
    """Exact and sampled TV of the α-game for each α, scenario and estimator.

    Estimators (default): ``oracle``, ``plugin`` and the shipped tables of p^(α-1)
    (``table_names``).  A minimax / AQP-rho1 table that is not found is built here for the
    study's K by the generator's ``build_K`` when ``build_missing`` (else left out); both cases
    are listed in ``notes``.  Returns
    ``{"alphas": {alpha: {"target", "live": {scenario: #answers with p* > 0}, "exact":
    {scenario: {name: {"K", "tv", "tv_rloo", "slope"}}}, "sampled": {scenario: {name: {"K",
    "mean", "std"}}}}}, "seeds", "notes", "seconds"}``."""
    t0 = time.perf_counter()
    seeds = tuple(int(s) for s in seeds)
    notes: list[str] = []
    out: dict = {}
    for alpha in alphas:
        target = game_target(alpha)
        names = list(estimators) if estimators is not None else (
            ["oracle", "plugin"] + list(table_names(target)))
        ests = {}
        for n in names:
            scratch: list[str] = []
            est = _available(n, target, scratch)
            if est is None and build_missing:
                est = _built(n, target, sorted(set(Ks) | set(sampled_Ks)), notes)
            if est is None:
                notes.extend(scratch)
            else:
                ests[n] = est
        res = {"target": target.spec, "live": {}, "exact": {}, "sampled": {}}
        for sc in scenarios:
            res["live"][sc] = int((get_scenario(sc).optimum(alpha) > 0).sum())
            res["exact"][sc] = {}
            res["sampled"][sc] = {}
            for est in ests.values():
                tv = [_exact_tv(sc, est, K, "others", notes) for K in Ks]
                tvr = [_exact_tv(sc, est, K, "rloo", notes) for K in Ks]
                tvc = [math.nan if est.is_oracle or not _has_K(est, K) else
                       _exact_tv(sc, _compensated(est, K), K, "rloo", notes) for K in Ks]
                # a slope of round-off (the oracle, TV ~ 1e-17) is not a rate: n/a
                fin = [(k, v) for k, v in zip(Ks, tv) if math.isfinite(v) and v > 1e-12]
                slope = tv_slope([k for k, _ in fin], [v for _, v in fin])[0] \
                    if len(fin) >= 2 else math.nan
                res["exact"][sc][est.name] = {"K": list(Ks), "tv": tv, "tv_rloo": tvr,
                                              "tv_rloo_comp": tvc, "slope": slope}
                mean, std = [], []
                for K in sampled_Ks:
                    if not _has_K(est, K):
                        mean.append(math.nan)
                        std.append(math.nan)
                        continue
                    m, sd = _sampled(sc, est, K, seeds, notes, steps=steps)
                    mean.append(m)
                    std.append(sd)
                res["sampled"][sc][est.name] = {"K": list(sampled_Ks), "mean": mean, "std": std}
        out[float(alpha)] = res
    return {"alphas": out, "seeds": len(seeds), "notes": notes,
            "seconds": time.perf_counter() - t0}


def conventions_study(Ks: Sequence[int] = (8, 32), seeds: Sequence[int] = tuple(range(10)),
                      scenarios: Sequence[str] = SCENARIO_NAMES,
                      estimators: Sequence[str] = ("plugin",) + AQP_PRESETS,
                      conventions: Sequence[tuple[str, str]] = CONVENTIONS,
                      steps: int | None = None, matched: bool = True) -> dict:
    """Final sampled TV (mean, std over seeds) of the KL game per advantage convention.

    Std scaling multiplies the step: with ``matched`` the scaled group-mean conventions also run
    as ``"group/scale@lr-matched"`` (the RLOO ones would repeat them exactly) with the learning rate divided by its RMS-advantage ratio to
    the reference (``advantage_rms`` at the optimum, per estimator), i.e. at the reference's
    step size.  Returns ``{"sampled": {scenario: {K: {"baseline/scale": {name: [mean, std]}}}},
    "rms": {scenario: {K: {"baseline/scale": {name: ratio}}}}, "exact": {scenario: {K: {name:
    {"others": tv, "rloo": tv}}}}, "seeds", "steps", "notes", "seconds"}``; scenario defaults
    for lr, groups, init and steps (unless ``steps``)."""
    t0 = time.perf_counter()
    seeds = tuple(int(s) for s in seeds)
    notes: list[str] = []
    ests = {n: _available(n, None, notes) for n in estimators}
    ests = {n: e for n, e in ests.items() if e is not None}
    sampled: dict = {}
    exact: dict = {}
    rms: dict = {}
    for sc in scenarios:
        sampled[sc], exact[sc], rms[sc] = {}, {}, {}
        lr0 = get_scenario(sc).lr
        for K in Ks:
            sampled[sc][K], rms[sc][K] = {}, {}
            exact[sc][K] = {n: {b: _exact_tv(sc, e, K, b, notes) for b in ("others", "rloo")}
                            for n, e in ests.items()}
            live = {n: e for n, e in ests.items() if _has_K(e, K)}
            ref = {n: advantage_rms(sc, e, K) for n, e in live.items()}
            runs = [(conv, 1.0) for conv in conventions]
            for conv in conventions:
                ratio = {n: advantage_rms(sc, e, K, *conv) / ref[n] for n, e in live.items()}
                rms[sc][K][_conv_name(conv)] = ratio
                # rloo advantages are K/(K-1) times the group-mean ones, so at a matched step
                # rloo/<scale> is group/<scale> exactly: only the group baseline is re-run
                if matched and conv[1] != "none" and conv[0] == "group":
                    runs.append(((conv[0], conv[1], "lr-matched"), ratio))
            for conv, ratio in runs:
                cell = {}
                for n, est in ests.items():
                    if n not in live:
                        cell[n] = [math.nan, math.nan]
                        continue
                    f = ratio[n] if isinstance(ratio, dict) else ratio
                    cell[n] = _sampled(sc, est, K, seeds, notes, steps=steps, baseline=conv[0],
                                       scale=conv[1], lr=lr0 / f)
                sampled[sc][K][_conv_name(conv)] = cell
    return {"sampled": sampled, "rms": rms, "exact": exact, "seeds": len(seeds),
            "steps": {sc: steps or get_scenario(sc).steps for sc in scenarios},
            "notes": notes, "seconds": time.perf_counter() - t0}


#: Conventions whose score is within this relative margin of the lowest are a tie; the tie is
#: broken by ``PREFERENCE`` (simplest first: no std scaling, then a matched step).
TIE_MARGIN = 0.02
PREFERENCE = ("group/none", "rloo/none", "group/batch@lr-matched", "group/group@lr-matched",
              "group/batch", "group/group", "rloo/batch", "rloo/group")


def recommend(conv: dict) -> dict:
    """The recommended trainer convention (not the ``others`` reference): among those whose
    final TV of the AQP presets, relative to the reference and averaged over scenarios and K, is
    within ``TIE_MARGIN`` of the lowest, the first in ``PREFERENCE``.

    Returns ``{"best": "baseline/scale", "score": {conv: mean TV ratio}, "noise": {conv: summed
    seed std / the reference's}, "gain": {conv: mean TV(AQP)/TV(plug-in)}}``."""
    score: dict = {}
    noise: dict = {}
    gain: dict = {}
    for byK in conv["sampled"].values():
        for cells in byK.values():
            ref = cells.get("others/none")
            for c, cell in cells.items():
                aqp = [cell[n] for n in cell if n in AQP_PRESETS and math.isfinite(cell[n][0])]
                if not aqp or "plugin" not in cell:
                    continue
                m = float(np.mean([a[0] for a in aqp]))
                s = float(np.mean([a[1] for a in aqp]))
                gain.setdefault(c, []).append(m / cell["plugin"][0])
                if ref is not None:
                    rm = float(np.mean([ref[n][0] for n in cell if n in AQP_PRESETS
                                        and math.isfinite(cell[n][0])]))
                    rs = float(np.mean([ref[n][1] for n in cell if n in AQP_PRESETS
                                        and math.isfinite(cell[n][0])]))
                    score.setdefault(c, []).append(m / rm)
                    noise.setdefault(c, []).append((s, rs))
    score = {c: float(np.mean(v)) for c, v in score.items()}
    # ratio of summed stds (a mean of ratios would blow up where the reference std is ~0)
    noise = {c: float(sum(a for a, _ in v) / sum(b for _, b in v)) for c, v in noise.items()}
    gain = {c: float(np.mean(v)) for c, v in gain.items()}
    trainer = {c: v for c, v in score.items() if c != "others/none"}
    best = lowest = None
    if trainer:
        lowest = min(trainer, key=trainer.get)
        tied = [c for c, v in trainer.items() if v <= trainer[lowest] * (1 + TIE_MARGIN)]
        best = min(tied, key=lambda c: PREFERENCE.index(c) if c in PREFERENCE else len(PREFERENCE))
    return {"best": best, "lowest": lowest, "score": score, "noise": noise, "gain": gain}


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def _fmt(x, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits - 1}e}"


def _pm(m, s) -> str:
    return "n/a" if not math.isfinite(m) else f"{m:.3f} ± {s:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _where_tables_help(res: dict) -> list[str]:
    """Sentences comparing, per table, the table with the plug-in per scenario and K: exact
    fixed point (independent baseline) and sampled final TV (mean over seeds)."""
    out = []
    for mode, key in (("exact fixed point", "tv"), ("sampled", "mean")):
        for sc, byname in res["exact" if key == "tv" else "sampled"].items():
            plug = byname.get("plugin")
            if plug is None:
                continue
            for n, r in byname.items():
                if n == "plugin" or n.startswith("oracle"):
                    continue
                helps, hurts = [], []
                for i, K in enumerate(plug["K"]):
                    v, w = r[key][i], plug[key][i]
                    if math.isfinite(v) and math.isfinite(w):
                        (helps if v < w else hurts).append(f"K={K} ({_fmt(v)} vs {_fmt(w)})")
                if helps or hurts:
                    said = ([f"better at {', '.join(helps)}"] if helps else []) + \
                           ([f"not better at {', '.join(hurts)}"] if hurts else [])
                    out.append(f"- `{sc}`, {mode}, `{n}` vs plug-in: " + "; ".join(said) + ".")
    return ["**Where the tables help** (TV of the table vs TV of the plug-in):\n\n"
            + "\n".join(out)] if out else []


def alpha_markdown(data: dict) -> str:
    """Markdown of :func:`alpha_study`."""
    parts = []
    for alpha, res in data["alphas"].items():
        live = ", ".join(f"`{sc}` {n}" for sc, n in res["live"].items())
        parts.append(f"### α = {alpha:g} (tables for `{res['target']}`)\n\n"
                     f"Answers alive at the optimum: {live}.")
        for sc, byname in res["exact"].items():
            Ks = next(iter(byname.values()))["K"]
            rows = [[f"`{n}`"] + [_fmt(v) for v in r["tv"]] + [_fmt(r["slope"])]
                    for n, r in byname.items()]
            parts.append(f"*`{sc}`, exact fixed point* — TV(p_K, p*), independent baseline:\n\n"
                         + _table(["estimator"] + [f"K={k}" for k in Ks] + ["slope (K>=16)"],
                                  rows))
            rows = [[f"`{n}`"] + [_fmt(v) for v in r["tv_rloo"]] for n, r in byname.items()]
            rows += [[f"`{n}` × (K-1)/(K-1-a)"] + [_fmt(v) for v in r["tv_rloo_comp"]]
                     for n, r in byname.items() if not n.startswith("oracle")]
            parts.append(f"*`{sc}`, exact fixed point under the RLOO / group-mean baseline* "
                         "(rows × (K-1)/(K-1-a): the table multiplied by `loo_compensation`):\n\n"
                         + _table(["estimator"] + [f"K={k}" for k in Ks], rows))
        for sc, byname in res["sampled"].items():
            Ks = next(iter(byname.values()))["K"]
            rows = [[f"`{n}`"] + [_pm(m, s) for m, s in zip(r["mean"], r["std"])]
                    for n, r in byname.items()]
            parts.append(f"*`{sc}`, sampled* — final TV, mean ± std over {data['seeds']} "
                         "seeds:\n\n" + _table(["estimator"] + [f"K={k}" for k in Ks], rows))
        parts.extend(_where_tables_help(res))
    if data["notes"]:
        parts.append("Notes: " + "; ".join(sorted(set(data["notes"]))) + ".")
    return "\n\n".join(parts)


def conventions_markdown(conv: dict) -> str:
    """Markdown of :func:`conventions_study` with the recommendation of :func:`recommend`."""
    parts = []
    for sc, byK in conv["sampled"].items():
        for K, cells in byK.items():
            names = list(next(iter(cells.values())))
            rows = [[f"`{c}`"] + [_pm(*cell[n]) for n in names] for c, cell in cells.items()]
            parts.append(f"*`{sc}`, K = {K}* — final TV after {conv['steps'][sc]} steps, mean ± "
                         f"std over {conv['seeds']} seeds (baseline/scale):\n\n"
                         + _table(["convention"] + [f"`{n}`" for n in names], rows))
    if conv.get("rms"):
        cols = [(sc, K) for sc, byK in conv["rms"].items() for K in byK]
        convs = list(next(iter(next(iter(conv["rms"].values())).values())))
        rows = [[f"`{c}`"] + [f"{float(np.mean(list(conv['rms'][sc][K][c].values()))):.2f}"
                              for sc, K in cols] for c in convs]
        parts.append("*Step size*: RMS advantage at the optimum relative to `others/none` "
                     "(mean over the estimators); `@lr-matched` rows above ran with the learning "
                     "rate divided by this ratio (per estimator; RLOO advantages are K/(K-1) "
                     "times the group-mean ones, so `rloo/<scale>@lr-matched` would repeat "
                     "`group/<scale>@lr-matched` exactly):\n\n"
                     + _table(["convention"] + [f"`{sc}` K={K}" for sc, K in cols], rows))
    rows = []
    for sc, byK in conv["exact"].items():
        for K, byname in byK.items():
            for n, v in byname.items():
                rows.append([f"`{sc}`", str(K), f"`{n}`", _fmt(v["others"]), _fmt(v["rloo"])])
    parts.append("*Exact fixed point* — TV(p_K, p*) of the expected dynamics with an independent "
                 "baseline and with the RLOO / group-mean baseline (effective table):\n\n"
                 + _table(["scenario", "K", "estimator", "independent", "RLOO / group mean"], rows))
    rec = recommend(conv)
    if rec["best"] is not None:
        rows = [[f"`{c}`", f"{rec['score'][c]:.3f}", f"{rec['noise'][c]:.2f}",
                 f"{rec['gain'][c]:.3f}"] for c in rec["score"]]
        parts.append("*Summary over scenarios and K* (AQP presets averaged): final TV relative to "
                     "the `others/none` reference, seed std relative to the reference, and TV "
                     "relative to the plug-in under the same convention:\n\n"
                     + _table(["convention", "TV / reference", "std / reference",
                               "TV(AQP) / TV(plug-in)"], rows))
        b, lo = rec["best"], rec["lowest"]
        tie = "" if b == lo else (f" (lowest: `{lo}` at {rec['score'][lo]:.3f}, within "
                                  f"{TIE_MARGIN:.0%}: a tie, the simpler setting is chosen)")
        parts.append(f"**Recommended: `{b}`** — final TV {rec['score'][b]:.3f} × the reference"
                     f"{tie}, seed std {rec['noise'][b]:.2f} × the reference, AQP presets at "
                     f"{rec['gain'][b]:.3f} × the plug-in's TV under it.")
    if conv["notes"]:
        parts.append("Notes: " + "; ".join(sorted(set(conv["notes"]))) + ".")
    return "\n\n".join(parts)


_INTRO = (
    "Every number below is computed by `aqpgen.game.study` (docs/MATH.md §8). Conventions are "
    "`baseline/scale`: `others` = mean reward of the other groups of the step (independent of "
    "the sample: the exact policy gradient, the reference), `group` = the group's mean (GRPO), "
    "`rloo` = leave-one-out; scale `group` / `batch` divides by the group's / step's reward std "
    "+ 1e-4 (TRL `scale_rewards`). A within-group baseline serves a count-based table through "
    "its effective table c'[n] = ((K-n) c[n] + (n-1) c[n-1]) / (K-1) "
    "(`aqpgen.game.loo_effective_table`): nearly a constant shift for log p tables, the factor "
    "1 - a/(K-1) for p^a tables, which `aqpgen.game.loo_compensation` undoes.")


def game_markdown(alpha_data: dict | None, conv_data: dict | None) -> str:
    """The page docs/game.md: both studies, generated."""
    parts = ["# The simulator's game with trainers' advantages, and the α-game",
             "<!-- generated by `python -m aqpgen.game.study`; do not edit by hand -->", _INTRO]
    if conv_data is not None:
        parts += ["## Advantage conventions (KL game, `aqpgen simulate --baseline --scale`)",
                  conventions_markdown(conv_data)]
    if alpha_data is not None:
        parts += ["## The α-game (`aqpgen simulate --target p^A`)", alpha_markdown(alpha_data)]
    return "\n\n".join(parts) + "\n"


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _from_json(obj):
    """Undo ``_json_safe``: None -> NaN, numeric dict keys back to float / int."""
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            try:
                key = int(k)
            except ValueError:
                try:
                    key = float(k)
                except ValueError:
                    key = k
            out[key] = _from_json(v)
        return out
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def load_data(path) -> dict:
    """The ``{"alpha": ..., "conventions": ...}`` data saved by ``--save``."""
    return _from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def write_game_markdown(path="docs/game.md", *, seeds: int = 10, quick: bool = False,
                        alpha: bool = True, conventions: bool = True, reuse: dict | None = None,
                        save=None) -> Path:
    """Run the studies and write the Markdown fragment atomically; returns the path.

    ``alpha`` / ``conventions`` False: take that part from ``reuse`` (data of :func:`load_data`)
    or leave it out.  ``save``: also write the data as JSON there."""
    reuse = reuse or {}
    kw = {"seeds": range(2), "steps": 200} if quick else {"seeds": range(seeds)}
    ad = (alpha_study(Ks=(4, 8, 16) if quick else (4, 8, 16, 32, 64, 128), **kw) if alpha
          else reuse.get("alpha"))
    cd = conventions_study(**kw) if conventions else reuse.get("conventions")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, game_markdown(ad, cd))
    if save is not None:
        write_text_atomic(Path(save), json.dumps(_json_safe({"alpha": ad, "conventions": cd}),
                                           indent=1) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aqpgen.game.study", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--out", default="docs/game.md")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 200 steps, K <= 16")
    ap.add_argument("--only", choices=("alpha", "conventions", "none"), default=None,
                    help="recompute only this part (the other from --reuse, else left out); "
                         "none: only rewrite the Markdown from --reuse")
    ap.add_argument("--save", default=None, help="also write the data as JSON to this file")
    ap.add_argument("--reuse", default=None, help="JSON data of an earlier --save")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    reuse = load_data(a.reuse) if a.reuse else None
    p = write_game_markdown(a.out, seeds=a.seeds, quick=a.quick, alpha=a.only in (None, "alpha"),
                            conventions=a.only in (None, "conventions"), reuse=reuse, save=a.save)
    print(f"wrote {p} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
