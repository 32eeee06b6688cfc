"""Two sections of docs/experiments.md (``aqpgen.report.experiments`` assembles the page): the
multi-token game (``aqpgen.experiments.sequence_game``) with the sequence-likelihood proxies, and
the noise weight λ of ``aqpgen recommend`` fitted on part of the runs and validated on the
others.  Every number is computed here from the results file.

Public names
------------
sequence_section(results, all_cells, figures) -> list[str]   -- the multi-token game's lines.
lambda_section(results) -> list[str]                         -- the λ fit and its held-out check.
held_out_summary(results) -> str                             -- the README's sentence on it.
sequence_summary(all_cells) -> str                           -- the README's multi-token lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from aqpgen.experiments.grpo_run import ORACLE, PROXIES
from aqpgen.experiments.summary import (
    Cell,
    cells,
    collapses,
    fit_noise,
    held_out_runs,
    lambda_spans,
    noise_ranges,
    proxy_fixed_point,
    select,
    validate_noise,
    within_spread,
)
from aqpgen.recommend import NOISE_WEIGHTS
from aqpgen.report.experiment_tables import (
    arm_Ks,
    cell_table,
    figure_lines,
    findings,
    fmt_spans,
    not_tables,
    pm,
)

__all__ = ["held_out_summary", "lambda_section", "sequence_section", "sequence_summary"]

_LITERATURE = (
    "Which one the literature uses: the self-rewarding methods average over the completion's "
    "tokens — self-certainty (Intuitor, Zhao et al. 2025) the per-token KL(uniform ‖ "
    "π(·|prefix)), RENT (Prabhudesai et al. 2025) the per-token entropy; both are per-token means "
    "of quantities of the whole next-token distribution, and `seqlik-mean` is the per-token mean "
    "of the sampled tokens' log-probabilities, the same average of the same logits.  The sum is "
    "the trajectory-level reward of EM-RL (Agarwal et al. 2025), the completion's "
    "log-likelihood.  Here both are computed from the model's logits for the completion's "
    "tokens, under the weights that generated it: `seqlik-sum` rewards −τ·Σ_t log π(y_t | "
    "prefix), `seqlik-mean` −τ·(1/|y|)·Σ_t log π(y_t | prefix).")


def _n_seq(n: int) -> str:
    return f"{n} sequence" + ("" if n == 1 else "s")


def _game_lines(results: dict) -> list[str]:
    g = results["games"]["sequence"]
    L, V = g["completion_length"], g["digits"]
    mult = ", ".join(f"{k}: {v}" for k, v in g["multiplicity"].items())
    prompts = "; ".join(f"`{p['prompt']}`: `{p['scenario']}`, best answer `{p['best']}` "
                        f"(π* {max(p['optimum']):.3f}, {_n_seq(g['multiplicity'][p['best']])})"
                        for p in g["prompts"])
    return [
        "", "## The multi-token game", "",
        f"A completion is {L} tokens from {V} digit tokens `d0` … `d{V - 1}`; its answer is "
        f"their sum (`s0` … `s{L * (V - 1)}`), or `other` when a token is not a digit (a special "
        f"token, an early end).  The {V ** L} digit sequences reach the sums in different "
        f"numbers ({mult}), so π(answer) is a sum over up to "
        f"{max(g['multiplicity'].values())} sequences and the trainer never sees it.  The "
        "experiment does: it enumerates every sequence from the model's logits (one batched "
        "forward pass over all prefixes; `aqpgen.experiments.sequence_game`) and reads the exact "
        f"answer distribution.  Prompts {prompts}; τ = {g['tau']:g}; same model, trainer "
        "settings, seeds and step budget as the one-token game "
        f"(`max_completion_length={L}`).",
        "",
        "Peers: the oracle (−τ·log π_θ(answer), exact, available to the experiment only), the "
        "plug-in and the classical corrections (digamma ψ(n) − ψ(K); Grassberger's G(n) − log K, "
        "his 2003 correction of the digamma estimator for Poisson counts; Laplace (add-½); the "
        "jackknife), "
        "the tables, and the **sequence-likelihood "
        "proxies**: the completion's own log-likelihood in place of log π(answer).  "
        + _LITERATURE + "  The proxy plays a *sequence* game, not the answer game: with the sum "
        "its fixed point is π(z) ∝ N_z·e^{R_z/τ} (N_z completions of answer z, `other` "
        "included), with the mean π(z) ∝ N_z·e^{L·R_z/τ} for the completions of L tokens, not "
        "softmax(R/τ).",
    ]


def _proxy_fixed_point_line(results: dict) -> str:
    g = results["games"]["sequence"]
    parts = []
    for name, mean in (("seqlik-sum", False), ("seqlik-mean", True)):
        fp = [proxy_fixed_point(g, j, mean) for j in range(len(g["prompts"]))]
        tvs = [t for _, t in fp]
        parts.append(f"`{name}` {sum(tvs) / len(tvs):.3f} (per prompt "
                     + ", ".join(f"{t:.3f}" for t in tvs) + "; its mass on `other` "
                     + ", ".join(f"{d[-1]:.3f}" for d, _ in fp) + " where π* has "
                     + ", ".join(f"{p['optimum'][-1]:.3f}" for p in g["prompts"]) + ")")
    return ("The proxies' fixed points, computed from the game (`summary.proxy_fixed_point`: "
            "the reward the same for every completion, with a policy free over completions; "
            "`other` counts every completion the vocabulary allows): TV to π* " + "; ".join(parts)
            + ".  No amount of training removes this bias (`other`, the class with the most "
            "completions, draws the most); a table's bias shrinks with K.")


def _proxy_lines(all_cells: Sequence[Cell], K: int) -> str:
    cs = select(all_cells, target="log", scale="none", K=K, game="sequence")
    proxies = [c for c in cs if c.estimator in PROXIES]
    if not proxies:
        return f"K = {K}: no proxy run."
    p = proxies[0]
    tables = [c for c in cs if c.estimator not in not_tables("log")]
    below = [c for c in tables if p.mean - c.mean > p.std + c.std]
    tied = [c for c in tables if c not in below and within_spread(c, p) and within_spread(p, c)]
    above = [c for c in tables if c not in below and c not in tied]
    peers = [c for c in cs if c not in tables and c.estimator not in PROXIES
             and c.estimator != ORACLE]

    def names(xs):
        return ", ".join(f"`{c.estimator}` {c.mean:.3f}" for c in xs) or "none"

    other = "".join(f"; `{c.estimator}` {pm(c)}" for c in proxies[1:])
    return (f"K = {K}, tables against the better proxy `{p.estimator}` ({pm(p)}{other}): lower "
            f"beyond the seed spreads: {names(below)}; within: {names(tied)}; higher: "
            f"{names(above)}.  Classical peers: {names(peers)}.")


def held_out_summary(results: dict) -> str:
    """One sentence for the README: the λ fit and how many held-out runs it passes."""
    current = NOISE_WEIGHTS["log"]
    fit = fit_noise(results, current)
    lam = fit["lambda"] if fit["lambda"] is not None else current
    checks = validate_noise(results, lam)
    if not checks:
        return ""
    fails = [c for c in checks if not c["within_spread"]]
    fit_txt = ", ".join(str(K) for _, K in fit["fit"])
    where = "; ".join(("one-token" if c["game"] == "token" else "multi-token") + f" K = {c['K']}: "
                      f"`{c['recommended']}` {c['recommended_tv'][0]:.3f} vs `{c['best']}` "
                      f"{c['best_tv'][0]:.3f}" if c["recommended_tv"] else
                      f"{c['game']} K = {c['K']}: `{c['recommended']}` not run" for c in fails)
    return (f"`aqpgen recommend`'s λ = {lam:.3g} (fitted on the one-token game at K = {fit_txt}) "
            f"picks a table within the seed spread of the best on {len(checks) - len(fails)} of "
            f"{len(checks)} held-out runs" + (f"; **not** on {where}." if fails else "."))


def _shape_lines(all_cells: Sequence[Cell], game: str) -> list[str]:
    out = []
    for c in all_cells:
        if c.game != game or c.scale != "none" or not c.estimator.endswith("-mono"):
            continue
        base = next((b for b in all_cells if (b.game, b.scale, b.K, b.target) ==
                     (game, "none", c.K, c.target) and b.estimator == c.estimator[:-5]), None)
        if base is None:
            continue
        rel = ("within the seed spreads" if within_spread(c, base) and within_spread(base, c)
               else "lower beyond them" if c.mean < base.mean else "higher beyond them")
        out.append((c.K, f"K = {c.K}: `{c.estimator}` {pm(c)} vs `{base.estimator}` {pm(base)}, {rel}"))
    if not out:
        return []
    return [f"{_GAME[game].capitalize()}, shape-constrained (c_K[n] nondecreasing, c_K[K] ≤ 0) "
            "against the unconstrained preset of the same ρ: " + "; ".join(t for _, t in sorted(out))
            + "."]


def _collapse_line(results: dict, game: str) -> str:
    cl = [c for c in collapses(results) if c["game"] == game]
    g = results["games"][game]
    top = max(max(p["optimum"]) for p in g["prompts"])
    if not cl:
        return ("No run collapsed: no final policy puts 0.9 or more on one answer of any prompt "
                f"(the optimum puts at most {top:.3f} on one).")
    by: dict = {}
    for c in cl:
        cls = g["prompts"][c["prompt"]]["order"] + ["other"]
        by.setdefault((c["estimator"], c["K"]), {}).setdefault(cls[c["class"]], set()).add(c["seed"])
    return (f"Collapses (final policy ≥ 0.9 on one answer of a prompt; the optimum puts at most "
            f"{top:.3f} on one): " + "; ".join(
                f"`{e}` K = {K}: " + ", ".join(f"onto `{z}` (seeds {sorted(s)})" for z, s in zs.items())
                for (e, K), zs in sorted(by.items()))
            + ".  Every other run of every estimator, the oracle's included, ends spread over the "
            "answers.")


def _oracle_floor(all_cells: Sequence[Cell], Ks: Sequence[int]) -> list[str]:
    """The oracle's final TV in the multi-token game against the one-token game's."""
    pairs = []
    for K in Ks:
        seq = next((c for c in select(all_cells, target="log", scale="none", K=K, game="sequence")
                    if c.estimator == ORACLE), None)
        tok = next((c for c in select(all_cells, target="log", scale="none", K=K)
                    if c.estimator == ORACLE), None)
        if seq is not None and tok is not None:
            pairs.append(f"K = {K}: {pm(seq)} (one-token game {pm(tok)})")
    if not pairs:
        return []
    return ["The oracle, with exact answer-level rewards, ends at " + "; ".join(pairs) + ": the "
            "two-token policy is still converging at the last step (the curves below), so the "
            "floor of this game's budget is the oracle's TV, not 0; the other estimators are "
            "ranked above it."]


def sequence_section(results: dict, all_cells: Sequence[Cell], figures: dict) -> list[str]:
    """The multi-token game: description, one table per K, what it shows, figures."""
    parts = _game_lines(results)
    Ks = arm_Ks(all_cells, "log", "none", "sequence")
    for K in Ks:
        parts += ["", f"**K = {K}** (multi-token game)", "",
                  cell_table(results, all_cells, "log", "none", K, with_sim=False,
                              game="sequence")]
    parts += ["", "*What it shows:*", ""]
    parts += [f"* {x}" for x in findings(results, all_cells, "log", "none", "sequence")]
    parts += [f"* {_proxy_lines(all_cells, K)}" for K in Ks]
    parts += [f"* {x}" for x in _oracle_floor(all_cells, Ks)]
    parts += [f"* {x}" for x in _shape_lines(all_cells, "sequence") + _shape_lines(all_cells, "token")]
    parts += [f"* {_proxy_fixed_point_line(results)}", f"* {_collapse_line(results, 'sequence')}"]
    return parts + figure_lines(figures, ("sequence", "log", "none"))


_GAME = {"token": "one-token game", "sequence": "multi-token game"}


def _held_line(chk: dict) -> str:
    where = _GAME[chk["game"]] + f", K = {chk['K']}"
    if chk["recommended_tv"] is None:
        return f"{where}: names `{chk['recommended']}`, which was not run."
    verdict = "within the seed spread of the best" if chk["within_spread"] else \
        "**not** within the seed spread of the best"
    return (f"{where}: names `{chk['recommended']}` {chk['recommended_tv'][0]:.3f} ± "
            f"{chk['recommended_tv'][1]:.3f}; lowest `{chk['best']}` {chk['best_tv'][0]:.3f} ± "
            f"{chk['best_tv'][1]:.3f}: {verdict}.")


def lambda_section(results: dict) -> list[str]:
    """λ fitted on the one-token game at the fit K, validated on the disjoint runs."""
    current = NOISE_WEIGHTS["log"]
    fit = fit_noise(results, current)
    fit_txt = ", ".join(f"K = {K}" for _, K in fit["fit"])
    lam = fit["lambda"] if fit["lambda"] is not None else current
    held = held_out_runs(results)
    checks = validate_noise(results, lam)
    fails = [c for c in checks if not c["within_spread"]]
    parts = ["", "## The noise weight, fitted and held out", "",
             f"Fit runs: the one-token KL game at {fit_txt} (`scale_rewards=\"none\"`, every seed).  "
             f"λ under which `aqpgen recommend` is within the seed spread of the best at all of "
             f"them at once: {fmt_spans(fit['spans'])}.  "
             + (f"The shipped λ = {current:g} is inside it and is kept." if not fit["moved"] and
                fit["lambda"] is not None else
                f"The shipped λ = {current:g} is outside it; the fit gives λ = {lam:.3g}." if
                fit["moved"] else "No λ fits all of them; the shipped λ = "
                f"{current:g} is validated as it is."),
             "",
             "Held-out runs (disjoint: other K of the same game and the multi-token game; "
             f"none was used by the fit): {', '.join(f'{_GAME[g]} K = {K}' for g, K in held)}.  "
             f"`aqpgen recommend` with λ = {lam:.3g}:", ""]
    parts += [f"* {_held_line(c)}" for c in checks]
    per_lines = []
    for game in dict.fromkeys(g for g, _ in held):
        grid, per = noise_ranges(results, "log", game=game, Ks=[K for g, K in held if g == game])
        per_lines += [f"{_GAME[game]} K = {K}: {fmt_spans(lambda_spans(grid, ok))}"
                      for K, ok in per.items()]
    parts += ["", "λ that would have been within the spread on each held-out run: "
              + "; ".join(per_lines) + "."]
    parts += ["", "**Where the choice fails:** " + ("nowhere on these held-out runs." if not fails
              else "; ".join(_held_line(c) for c in fails))]
    return parts + _candidate_lines(results, list(fit["fit"]) + list(held), checks)


def _candidate_lines(results: dict, runs: Sequence[tuple[str, int]], checks: Sequence[dict]) -> list[str]:
    """Where a candidate preset (not shipped, so neither pickable nor recommendable) ends lower
    than the best a user can pick."""
    names = {c["name"] for c in results["plan"].get("candidates", ())}
    all_cells = cells(results)
    out = []
    for game, K in runs:
        cs = select(all_cells, target="log", scale="none", K=K, game=game)
        best = next((c for c in cs if c.estimator != ORACLE and c.estimator not in names), None)
        for c in cs:
            if c.estimator in names and best is not None and c.mean < best.mean:
                rel = "within its seed spread" if within_spread(best, c) else "beyond the seed spreads"
                out.append(f"{_GAME[game]} K = {K}: `{c.estimator}` {pm(c)} below `{best.estimator}` "
                           f"{pm(best)} ({rel})")
    if not out:
        return []
    return ["", "The comparisons above leave out the candidate presets, which are not shipped "
            "(a user can neither pick them nor have them recommended); where one ends lower than "
            "the best a user can pick: " + "; ".join(out) + "."]


def sequence_summary(all_cells: Sequence[Cell]) -> str:
    """README lines: per K of the multi-token game, the oracle, the better proxy, the best
    classical peer and the best table."""
    lines = []
    for K in arm_Ks(all_cells, "log", "none", "sequence"):
        cs = select(all_cells, target="log", scale="none", K=K, game="sequence")
        pick = {
            "oracle": [c for c in cs if c.estimator == ORACLE],
            "proxy": [c for c in cs if c.estimator in PROXIES],
            "peer": [c for c in cs if c.estimator in not_tables("log")
                     and c.estimator not in PROXIES + (ORACLE,)],
            "table": [c for c in cs if c.estimator not in not_tables("log")],
        }
        best = {k: v[0] for k, v in pick.items() if v}
        if len(best) < 4:
            continue
        lines.append(f"K = {K}: oracle {pm(best['oracle'])}; best proxy `{best['proxy'].estimator}` "
                     f"{pm(best['proxy'])}; best classical `{best['peer'].estimator}` "
                     f"{pm(best['peer'])}; best table `{best['table'].estimator}` {pm(best['table'])}")
    if not lines:
        return ""
    return ("Multi-token game (each answer reached by several completions; the proxies reward "
            "the completion's own log-likelihood, as self-certainty / entropy rewards do): "
            + "; ".join(lines) + ".")
