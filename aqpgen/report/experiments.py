"""docs/experiments.md and its figures, from an experiment's results file
(``aqpgen.experiments.plan``): every number on the page is computed here from the runs.

Public names
------------
write_experiment_report(results, path) -> list[Path]  -- the Markdown page and its figures.
experiment_markdown(results, figures) -> str         -- the page's text.
figure_paths(results) -> dict                        -- the figures the page links, relative to it.
headline_markdown(results, link) -> str              -- the README's few lines on the experiment.
plot_experiment_curves(cells, path, ...), plot_final_tv(cells, path, ...)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aqpgen.experiments.grpo_run import ORACLE, PROXIES
from aqpgen.experiments.summary import (
    THRESHOLD,
    Cell,
    cells,
    check_recommendation,
    gap_closed,
    lambda_spans,
    noise_ranges,
    select,
    simulator_tv,
)
from aqpgen.recommend import noise_weight, recommend
from aqpgen.report.experiment_tables import (
    arm_Ks,
    cell_table,
    figure_lines,
    findings,
    fmt,
    fmt_spans,
    game_name,
    not_tables,
    pm,
)
from aqpgen.report.experiments_sequence import (
    held_out_summary,
    lambda_section,
    sequence_section,
    sequence_summary,
)
from aqpgen.report.figures import pyplot, save_png
from aqpgen.report.markdown import md_table
from aqpgen.store.atomic import write_text_atomic
from aqpgen.targets import LOG, parse_target

__all__ = ["experiment_markdown", "figure_paths", "headline_markdown", "plot_experiment_curves",
           "plot_final_tv", "write_experiment_report"]

_PANEL = (4.8, 3.8)
#: estimators always drawn in the learning-curve figure (the best table and the recommended one
#: are added per K)
_ALWAYS = (ORACLE, "plugin", "jackknife")
_GAME_TITLE = {"token": "", "sequence": "multi-token game, "}


def _arms(results: dict) -> list[tuple[str, str, str]]:
    """(game, target, scale) of the results, in plan order."""
    out = []
    for a in results["plan"]["arms"]:
        for s in a["scales"]:
            if (a.get("game", "token"), a["target"], s) not in out:
                out.append((a.get("game", "token"), a["target"], s))
    return out


def _recommended(target: str, K: int) -> str | None:
    try:
        return recommend(K, target).name
    except ValueError:
        return None


def plot_experiment_curves(all_cells: Sequence[Cell], path, *, target: str, scale: str,
                           game: str = "token") -> Path:
    """Mean TV over seeds against optimizer steps, one panel per K: the oracle, the plug-in,
    the jackknife (and in the multi-token game the proxies), the recommended table and the
    lowest-final-TV table."""
    plt = pyplot()
    Ks = arm_Ks(all_cells, target, scale, game)
    fig, axes = plt.subplots(1, len(Ks), figsize=(_PANEL[0] * len(Ks), _PANEL[1]), squeeze=False)
    for ax, K in zip(axes[0], Ks):
        cs = select(all_cells, target=target, scale=scale, K=K, game=game)
        tables = [c for c in cs if c.estimator not in not_tables(target)] or cs
        show = list(_ALWAYS) + list(PROXIES) + [tables[0].estimator, _recommended(target, K)]
        seen = []
        for name in show:
            c = next((c for c in cs if c.estimator == name), None)
            if c is None or name in seen:
                continue
            seen.append(name)
            y = np.maximum(np.asarray(c.curve_mean), 1e-4)
            ax.plot(c.curve_steps, y, label=f"{name} ({c.mean:.3f})",
                    linestyle=":" if name == ORACLE else ("--" if not name.startswith(("kl-", "pow")) else "-"))
        ax.axhline(THRESHOLD, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("TV(π_θ, π*), mean over prompts and seeds")
        ax.set_title(f"{_GAME_TITLE[game]}K = {K}"
                     + (f", scale_rewards={scale!r}" if game == "token" else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def plot_final_tv(all_cells: Sequence[Cell], path, *, target: str, scale: str,
                  game: str = "token") -> Path:
    """Final TV (mean ± one standard deviation over seeds) against K for every estimator."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(_PANEL[0] * 1.6, _PANEL[1] * 1.2))
    names = []
    for c in all_cells:
        if (c.game, c.target, c.scale) == (game, target, scale) and c.estimator not in names:
            names.append(c.estimator)
    for i, name in enumerate(names):
        cs = sorted((c for c in all_cells
                     if (c.game, c.target, c.scale, c.estimator) == (game, target, scale, name)),
                    key=lambda c: c.K)
        x = np.array([c.K for c in cs], dtype=float) * (1 + 0.02 * (i - len(names) / 2))
        ax.errorbar(x, [max(c.mean, 1e-4) for c in cs], yerr=[c.std for c in cs], marker="o",
                    markersize=3, capsize=2, label=name,
                    linestyle=":" if name == ORACLE else "-")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("K (completions per prompt)")
    ax.set_ylabel("final TV(π_θ, π*)")
    ax.set_title(f"{_GAME_TITLE[game]}{game_name(target)}, scale_rewards={scale!r}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save_png(fig, path)


def _recommend_lines(results: dict, target: str) -> list[str]:
    """The recommendation at every K the experiment ran, against what it measured there."""
    t = parse_target(target)
    flag = "" if t == LOG else f" --target {t.spec}"
    lines = []
    for K in sorted({r["config"]["K"] for r in results["runs"]
                     if parse_target(r["config"]["target"]) == t
                     and r["config"].get("game", "token") == "token"}):
        rec = recommend(K, t)
        chk = check_recommendation(results, rec)
        if rec.name is None or chk is None:
            lines.append(f"K = {K}: `aqpgen recommend --K {K}{flag}` names {rec.name or 'no table'}; "
                         "the experiment has no run of it.")
            continue
        got = (f"measured {chk['recommended_tv'][0]:.3f} ± {chk['recommended_tv'][1]:.3f}"
               if chk["recommended_tv"] else "which the experiment did not run")
        verdict = ("within the seed spread of the best" if chk["within_spread"]
                   else "**not** within the seed spread of the best")
        lines.append(f"K = {K}: `aqpgen recommend --K {K}{flag}` names `{rec.name}`, "
                     f"{got}; lowest `{chk['best']}` {chk['best_tv'][0]:.3f} ± "
                     f"{chk['best_tv'][1]:.3f}: {verdict}.")
    return lines


def _noise_lines(results: dict, target: str) -> list[str]:
    """Per K, the λ the runs validate, the joint range over K = 8 and 16 (and over every K),
    and where the target's default λ sits."""
    grid, per = noise_ranges(results, target)
    lam, validated = noise_weight(target)
    lines = [f"λ under which the recommendation is within the seed spread of the best (grid of "
             f"{len(grid)} values, 0 and 1e-4 … 1): "
             + "; ".join(f"K = {K}: {fmt_spans(lambda_spans(grid, ok))}" for K, ok in per.items()) + "."]
    for Ks in dict.fromkeys([(8, 16), tuple(per)]):
        if not all(K in per for K in Ks):
            continue
        spans = lambda_spans(grid, [x for x in grid if all(x in per[K] for K in Ks)])
        inside = any(s[0] <= lam <= s[-1] for s in spans)
        note = "" if validated else " (the KL game's weight: none is measured for this target)"
        lines.append(f"At every K of {', '.join(map(str, Ks))} at once: {fmt_spans(spans)}; the "
                     f"default λ = {lam:g}{note} is {'inside' if inside else '**outside**'} it.")
    return lines


def _simulator_lines(results: dict, all_cells: Sequence[Cell], target: str) -> list[str]:
    """How the measured final TVs (scale "none") compare with the simulator's fixed points."""
    lines = []
    for K in arm_Ks(all_cells, target, "none"):
        every = [c for c in select(all_cells, target=target, scale="none", K=K) if c.estimator != ORACLE]
        cs = [c for c in every if math.isfinite(simulator_tv(results, target, c.estimator, K))]
        none = [c.estimator for c in every if c not in cs]
        if not cs:
            continue
        pred = np.array([simulator_tv(results, target, c.estimator, K) for c in cs])
        meas = np.array([c.mean for c in cs])
        rho = _spearman(pred, meas)
        over = [(c, p) for c, p in zip(cs, pred) if c.mean - p > max(2 * c.std, 0.02)]
        under = [(c, p) for c, p in zip(cs, pred) if p - c.mean > max(2 * c.std, 0.02)]
        line = (f"K = {K}: rank correlation (Spearman) between predicted and measured final TV "
                f"over {len(cs)} estimators: {rho:.2f}; the simulator's best `{cs[int(np.argmin(pred))].estimator}` "
                f"(predicted {pred.min():.3f}), the trainer's best `{every[0].estimator}` (measured {every[0].mean:.3f})")
        if over:
            line += "; measured above the prediction (by more than 2 sd): " + ", ".join(
                f"`{c.estimator}` {c.mean:.3f} vs {p:.3f}" + _vratio(c, every) for c, p in over)
        if under:
            line += "; measured below it: " + ", ".join(
                f"`{c.estimator}` {c.mean:.3f} vs {p:.3f}" + _vratio(c, every) for c, p in under)
        if none:
            line += "; no prediction (the simulator's fixed point not certified): " + ", ".join(
                f"`{n}`" for n in none)
        lines.append(line + ".")
    return lines


def _excess_line(results: dict, all_cells: Sequence[Cell], target: str) -> str:
    """How the measured-minus-predicted final TV relates to the rows' variance, over every
    (K, table) of ``scale_rewards="none"``."""
    ex, vr, plug = [], [], []
    for K in arm_Ks(all_cells, target, "none"):
        cs = select(all_cells, target=target, scale="none", K=K)
        p = next((c for c in cs if c.estimator == "plugin"), None)
        for c in cs:
            pred = simulator_tv(results, target, c.estimator, K)
            if c.estimator == ORACLE or not math.isfinite(pred) or p is None or "V_inf" not in c.metrics:
                continue
            ex.append(c.mean - pred)
            vr.append(c.metrics["V_inf"] / p.metrics["V_inf"])
            if c.estimator == "plugin":
                plug.append(f"{c.mean - pred:+.3f} at K = {K}")
    if len(ex) < 3:
        return ""
    rho = _spearman(np.log(np.array(vr)), np.array(ex))
    reading = ("the noisier the reward, the further the trainer ends from the simulator's fixed "
               "point" if rho >= 0.3 else "the variance does not explain which estimators end "
               "further from their predicted fixed point" if rho > -0.3 else
               "the noisier rows end *closer* to their prediction")
    return (f"Over the {len(ex)} (K, estimator) cells, the measured minus the predicted final TV "
            f"has Spearman correlation {rho:.2f} with the row's V∞ / plug-in's: {reading}.  The plug-in "
            f"itself (V∞ ratio 1) ends {', '.join(plug)} from its prediction: the part every "
            "estimator shares (finite steps, sampling noise at the end of the schedule).")


def _vratio(c: Cell, cs: Sequence[Cell]) -> str:
    plugin = next((x for x in cs if x.estimator == "plugin"), None)
    if plugin is None or "V_inf" not in c.metrics or "V_inf" not in plugin.metrics:
        return ""
    return f" (V∞ {c.metrics['V_inf'] / plugin.metrics['V_inf']:.3g}× plug-in)"


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else math.nan


def _scale_lines(all_cells: Sequence[Cell], target: str) -> list[str]:
    """TRL's default std scaling against "none", per K: which estimators it helps or hurts."""
    lines = []
    for K in arm_Ks(all_cells, target, "group"):
        none = {c.estimator: c for c in select(all_cells, target=target, scale="none", K=K)}
        grp = select(all_cells, target=target, scale="group", K=K)
        worse = [c for c in grp if c.estimator in none and c.mean - none[c.estimator].mean
                 > c.std + none[c.estimator].std]
        better = [c for c in grp if c.estimator in none and none[c.estimator].mean - c.mean
                  > c.std + none[c.estimator].std]
        best = next(c for c in grp if c.estimator != ORACLE)
        line = f"K = {K}: with `scale_rewards=\"group\"` the lowest final TV is `{best.estimator}` {pm(best)}"
        if worse:
            line += "; worse than with `\"none\"` (beyond the seed spreads): " + ", ".join(
                f"`{c.estimator}` {c.mean:.3f} vs {none[c.estimator].mean:.3f}" for c in worse)
        if better:
            line += "; better: " + ", ".join(
                f"`{c.estimator}` {c.mean:.3f} vs {none[c.estimator].mean:.3f}" for c in better)
        lines.append(line + ".")
    return lines


def _intro(results: dict) -> list[str]:
    env, plan = results["environment"], results["plan"]
    n = len(results["runs"])
    total_train = sum(r["seconds"] for r in results["runs"])
    prompts = ", ".join(f"`{p['prompt']}`: `{p['scenario']}` (best answer `{p['best']}`)"
                        for p in results["game"]["prompts"])
    return [
        "# The trainer experiment: real GRPO runs with each estimator",
        "",
        "<!-- Generated by `aqpgen experiment` (aqpgen/report/experiments.py) from "
        "docs/experiments.json: edit the code, not this file. -->",
        "",
        f"{n} runs of an unmodified TRL `GRPOTrainer` (TRL {env.get('trl')}, transformers "
        f"{env.get('transformers')}, torch {env.get('torch')}, on {env.get('cpus')} CPUs)"
        + f", `--jobs {results['jobs']}`: **{results['wall_seconds'] / 60:.1f} minutes** wall "
        f"clock ({total_train / n:.1f} s of `train()` per run on average{_cpu_text(results)}).  "
        f"Command: `{results.get('command') or 'aqpgen experiment'}`."
        + "  Two games: the one-token game "
        "below and the [multi-token game](#the-multi-token-game) (completions of several tokens, "
        "many per answer); `aqpgen recommend`'s noise weight is [fitted on part of the runs and "
        "validated on the others](#the-noise-weight-fitted-and-held-out).",
        "",
        "## The game",
        "",
        f"Prompts {prompts}; τ = {results['game']['tau']:g}.  Each prompt's answers are 16 answer "
        "tokens and `other` (any other token); the scenarios are `aqpgen.game.scenarios` "
        "(`aqpgen simulate --scenario grpo-head` plays the same game in the simulator).  The model "
        f"is a one-layer Qwen2 of width {results['game']['hidden_size']} built locally; a "
        "completion is one sampled token (temperature 1, no top-k / top-p), so the policy's answer "
        "distribution π_θ is read exactly from the logits at every evaluation.  The reward of a "
        "completion with answer z and count n among the prompt's K completions is "
        "R_z − τ·c_K[n] (through `aqpgen.integrations.trl_reward_func`); the oracle uses "
        "−τ·log π_θ(z) from the logits — what perfect estimation would give.  The α-game uses "
        "R_z − τ·(A·c_K[n] + B), the affine map of docs/MATH.md §2b.",
        "",
        f"Each run: {plan['steps']} optimizer steps, learning rate {plan['lr']:g} decayed "
        "linearly to 0 (TRL's default schedule), AdamW, `beta=0`, one generation per step "
        "holding every prompt once, TV(π_θ, π*) (mean over the four prompts) every "
        f"{plan['eval_every']} steps.  Same seeds (model initialisation and sampling) for every "
        "estimator.",
        "",
        "Columns: final TV (mean ± sample sd over seeds) and per scenario; the first evaluation "
        f"step at which the seed-mean TV reaches {THRESHOLD:g}, and the plug-in's final TV "
        "(how much sooner an estimator gets where the plug-in ends); the gap closed, "
        "(TV_plugin − TV) / (TV_plugin − TV_oracle); the simulator's fixed point for the same "
        "game (`aqpgen.game.dynamics.run_exact`, group-mean baseline: expected dynamics, no "
        "sampling noise); the row's certified bias β̄ and V∞ relative to the plug-in's.  "
        "≈: within the seed spread of the best (the one-sd bars touch).",
    ] + _skipped_lines(results)


def _cpu_text(results: dict) -> str:
    runs = results["runs"]
    if not runs or any("cpu_seconds" not in r for r in runs):
        return ""
    cpu = sum(r["cpu_seconds"] for r in runs)
    return (f"; their CPU time totals {cpu / 60:.1f} CPU-minutes, {cpu / 60 / results['jobs']:.1f} "
            f"minutes over {results['jobs']} cores: the wall clock above less that is the rest of "
            "each run and the time lost to other jobs on the machine")


def _skipped_lines(results: dict) -> list[str]:
    parts = []
    if results["skipped"]:
        parts += ["", "Not run (the trainer may not use these rows): " + "; ".join(
            f"`{s['estimator']}` at K = {s['K']} ({s['reason'].split(':', 1)[-1].strip()[:120]}…)"
            for s in results["skipped"])]
    if results["plan"].get("candidates"):
        parts += ["", "Candidates (AQP presets not shipped, built for the experiment's K with "
                  "their certificates): " + ", ".join(
                      f"`{c['name']}` ({', '.join(f'{k}={v}' for k, v in c['params'].items())})"
                      for c in results["plan"]["candidates"]) + "."]
    return parts


def _token_section(results: dict, all_cells: Sequence[Cell], figures: dict, target: str,
                   scale: str) -> list[str]:
    parts = ["", f"## {game_name(target)}, `scale_rewards=\"{scale}\"`"
             + (" (the README's setting)" if scale == "none" else " (TRL's default)"), ""]
    for K in arm_Ks(all_cells, target, scale):
        parts += [f"**K = {K}**", "", cell_table(results, all_cells, target, scale, K,
                                                  with_sim=scale == "none"), ""]
    parts += ["*What it shows:*", ""] + [f"* {x}" for x in findings(results, all_cells, target, scale)]
    if scale == "group":
        parts += [f"* {x}" for x in _scale_lines(all_cells, target)]
    parts += figure_lines(figures, ("token", target, scale))
    if scale == "none":
        parts += ["", "*Against the simulator* (`aqpgen simulate --exact --baseline group` on "
                  "the same scenarios):", ""] + [f"* {x}" for x in _simulator_lines(results, all_cells, target)]
        parts += ["", "*The recommendation* (`aqpgen recommend`: the shipped table served in "
                  f"float32 with the lowest β̄ + λ·√V∞, λ = {noise_weight(target)[0]:g}):", ""]
        parts += [f"* {x}" for x in _recommend_lines(results, target) + _noise_lines(results, target)]
    return parts


def experiment_markdown(results: dict, figures: dict) -> str:
    """The page (module docstring); ``figures`` maps (game, target, scale, kind) to a relative
    path."""
    all_cells = cells(results)
    parts = _intro(results)
    for game, target, scale in _arms(results):
        if game == "token":
            parts += _token_section(results, all_cells, figures, target, scale)
    if any(c.game == "sequence" for c in all_cells):
        parts += sequence_section(results, all_cells, figures)
    if any(c.target == "log" for c in all_cells):
        parts += lambda_section(results)
    parts += ["", "## Why the trainer and the simulator differ", "",
              "The simulator's fixed point is where the *expected* dynamics stop: it sees the "
              "table's bias only (docs/MATH.md §11).  A trainer samples K completions per prompt, "
              "so its updates also carry the reward's variance (V∞ above), and it stops after a "
              "finite number of steps with a decaying learning rate; its policy is a network "
              "whose weights the prompts share, not one softmax per scenario.  "
              + _excess_line(results, all_cells, "log"), ""]
    return "\n".join(parts) + "\n"


def headline_markdown(results: dict, link: str = "docs/experiments.md") -> str:
    """A few README lines: per K, the final TV of the oracle, the plug-in and the recommended
    table (KL game, scale_rewards "none"), with the gap closed; ``link``: the full page."""
    all_cells = cells(results)
    cands = {c["name"] for c in results["plan"].get("candidates", ())}
    rows = []
    for K in arm_Ks(all_cells, "log", "none"):
        cs = select(all_cells, target="log", scale="none", K=K)
        get = {c.estimator: c for c in cs}
        rec = recommend(K, "log").name
        tables = [c for c in cs if c.estimator != ORACLE]
        plugin, oracle = get.get("plugin"), get.get(ORACLE)
        r = get.get(rec)
        rows.append([str(K), pm(oracle), pm(plugin), f"`{rec}` {pm(r)}",
                     fmt(gap_closed(r, plugin, oracle), 2) if r else "—",
                     f"`{tables[0].estimator}` {pm(tables[0])}"
                     + (" (candidate, not shipped)" if tables[0].estimator in cands else "")])
    n_seeds = len(all_cells[0].seeds) if all_cells else 0
    held = "\n\n".join(x for x in (sequence_summary(all_cells), held_out_summary(results)) if x) \
        if any(c.game != "token" for c in all_cells) else ""
    return (f"Real TRL `GRPOTrainer` runs on a game with a known optimum (KL game, "
            f"`scale_rewards=\"none\"`, {n_seeds} seeds; final TV(π_θ, π*), lower is better; "
            f"[{link}]({link}) has every estimator, TRL's default scaling, the multi-token game "
            f"with the sequence-likelihood proxies, the α-game and the simulator's predictions):\n\n"
            + md_table(["K", "oracle (exact log π)", "plug-in log(n/K)", "recommended table",
                        "gap closed", "lowest measured"], rows, "---:|---:|---:|---:|---:|---|")
            + (f"\n\n{held}" if held else ""))


def write_experiment_report(results: dict, path) -> list[Path]:
    """Write the page at ``path`` and its figures to ``<dir of path>/figures/exp-*.png``."""
    path = Path(path)
    all_cells = cells(results)
    plots = {"curves": plot_experiment_curves, "final": plot_final_tv}
    written = [plots[key[3]](all_cells, path.parent / rel, target=key[1], scale=key[2], game=key[0])
               for key, rel in figure_paths(results).items()]
    write_text_atomic(path, experiment_markdown(results, figure_paths(results)))
    return [path] + written


def figure_paths(results: dict) -> dict:
    """``{(game, target, scale, kind): path of the figure relative to the page}``, kind "curves"
    or "final": the figures :func:`write_experiment_report` draws and the page links."""
    out = {}
    for game, target, scale in _arms(results):
        tag = "kl" if parse_target(target) == LOG else parse_target(target).spec.replace("^", "")
        tag = tag if game == "token" else f"{game}-{tag}"
        for kind in ("curves", "final"):
            out[(game, target, scale, kind)] = f"figures/exp-{kind}-{tag}-{scale}.png"
    return out
