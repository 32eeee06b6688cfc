"""``aqpgen simulate``: the toy alignment game of docs/MATH.md §8 (thin layer over
the modules of :mod:`aqpgen.game`)."""

from __future__ import annotations

import json
import math

import click

from aqpgen.cli import jsonable, k_list
from aqpgen.cli.options import target_option
from aqpgen.errors import ConvergenceError
from aqpgen.game.alpha import game_alpha
from aqpgen.game.dynamics import exact_sweep
from aqpgen.game.estimators import PEER_NAMES, available_estimators, get_estimator
from aqpgen.game.sampled import sampled_sweep
from aqpgen.game.scenarios import SCENARIOS, get_scenario
from aqpgen.report import figures

_HELP = """Play the entropy-regularised alignment game with each estimator's log-p reward.

\b
Game: answers z = 1..S, three latent traces per answer, softmax policy over traces,
objective E[R(z)] + tau*H(p), optimum p* = softmax(R/tau).  A completion with answer z and
self-inclusive count n (of K) gets the reward R_z - tau*c_K[n].
Scenarios: zipf (default; S=100, tau=0.5, R_z = -1.1*tau*ln z, p* ~ z^-1.1, long tail)
           head (S=5, tau=0.5, R = (1.0, 0.8, 0.5, 0.2, 0.0), no rare answers);
           grpo-head, grpo-tail (S=17: the prompts of `aqpgen experiment`, the real GRPO run).

\b
--exact   expected dynamics (reward of answer z = R_z - tau*g_c(p_z), g_c the table's mean,
          evaluated exactly) run to the fixed point p_K, cross-checked by a direct solve of
          R_z - tau*g_c(p_z) = lambda; reports TV(p_K, p*) = 1/2 sum |p_K - p*|.
default   sampled REINFORCE (G groups of K per step, baseline = other groups' mean reward,
          no clipping), --seeds runs; reports the final TV (mean and std over seeds).

\b
Estimators: peers {peers}; table names or .h5 paths
(kl-minimax, kl-aqp-eta3, kl-aqp-eta15, kl-aqp-rho1, kl-aqp-rho2, ...); oracle-log (the exact
log p -- no table can do this; a reference).  Default: every peer and shipped table found.

\b
--json prints {name: {"K": [...], "tv": [...], "slope": s, "slope_K": [...]}} (sampled mode
adds "tv_std"); slope = least-squares slope of log tv against log K over K >= 16 (all K when
fewer than two are >= 16), null when undefined.

\b
Examples:
  aqpgen simulate --exact --K 4,8,16,32,64,128 --json
  aqpgen simulate --scenario head --exact --K 8,32 --estimators plugin,kl-minimax
  aqpgen simulate --K 8,32 --seeds 20 --plot curves.png
"""


@click.command("simulate", help=_HELP.replace("{peers}", ", ".join(PEER_NAMES)))
@click.option("--scenario", type=click.Choice(sorted(SCENARIOS)), default="zipf",
              show_default=True, help="Which game.")
@click.option("--exact", is_flag=True, help="Fixed point of the expected dynamics (no sampling).")
@click.option("--K", "K", callback=k_list, default="4,8,16,32,64,128", show_default=True,
              help="Comma-separated batch sizes K.")
@click.option("--estimators", default=None,
              help="Comma-separated estimator names (default: all peers and shipped tables found).")
@click.option("--seeds", type=click.IntRange(min=1), default=20, show_default=True,
              help="Sampled mode: number of seeds (0..N-1).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Sampled mode: policy-gradient steps (default per scenario: zipf 5000, head 2000).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sampled mode: learning rate (default per scenario: zipf 5, head 2).")
@click.option("--groups", type=click.IntRange(min=2), default=None,
              help="Sampled mode: groups of K completions per step (default 4).")
@click.option("--init", type=click.Choice(["uniform", "optimum"]), default=None,
              help="Sampled mode: initial policy (default: zipf optimum, head uniform).")
@click.option("--float64-values", "float64_values", is_flag=True,
              help="--exact: use the float64 values the runtime serves instead of the "
                   "tables' high-precision strings.")
@target_option()
@click.option("--baseline", type=click.Choice(["others", "group", "rloo", "none"]),
              default="others", show_default=True,
              help="Advantage baseline: other groups' mean (exact policy gradient), group "
                   "mean (GRPO), leave-one-out (RLOO), none.  --exact: group/rloo follow "
                   "their effective table.")
@click.option("--scale", type=click.Choice(["none", "group", "batch"]), default="none",
              show_default=True,
              help="Sampled mode: divide advantages by the group / batch reward std + 1e-4 "
                   "(TRL scale_rewards).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write a PNG: TV against K (--exact) or learning curves (sampled).")
def simulate_cmd(scenario, exact, K, estimators, seeds, steps, lr, groups, init,
                 float64_values, target, baseline, scale, as_json, plot):
    try:
        game_alpha(target)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--target") from None
    if exact and scale != "none":
        raise click.BadParameter("std scaling has no exact (expected) dynamics; use it "
                                 "without --exact", param_hint="--scale")
    ests = _estimators(estimators, target, K)

    try:
        if exact:
            out = exact_sweep(scenario, ests, K, use_hp=not float64_values,
                                 baseline=baseline)
            results = None
        else:
            out, results = sampled_sweep(scenario, ests, K, range(seeds), steps=steps,
                                            lr=lr, groups=groups, init=init,
                                            baseline=baseline, scale=scale)
    except (ValueError, ConvergenceError) as exc:
        raise click.ClickException(str(exc)) from None

    if plot:
        if exact:
            figures.plot_fixed_point_tv({scenario: out}, plot)
        else:
            curves = {k: {name: res[k] for name, res in results.items()} for k in K}
            figures.plot_learning_curves(curves, plot, title=f"scenario {scenario}")

    if as_json:
        click.echo(json.dumps(jsonable(out), indent=1, sort_keys=False))
        return
    _print_table(scenario, exact, seeds, K, out)
    if plot:
        click.echo(f"wrote {plot}")


def _estimators(estimators, target, K) -> list:
    """The estimators named by ``--estimators`` (default: every peer and table found), each
    checked at every K."""
    if estimators is None:
        names = available_estimators(target)
        if not names:
            raise click.UsageError("no estimators available (aqpgen.peers missing and no "
                                   "tables found); pass --estimators oracle-log")
    else:
        names = [s.strip() for s in estimators.split(",") if s.strip()]
        if not names:
            raise click.BadParameter(f"no estimator names in {estimators!r}",
                                     param_hint="--estimators")
    ests = []
    for name in names:
        try:
            est = get_estimator(name, target)
            if not est.is_oracle:
                for k in K:
                    est.check_K(k)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--estimators / --K") from None
        ests.append(est)
    return ests


def _print_table(scenario, exact, seeds, K, out) -> None:
    """The text form: TV per estimator and K, and the log-log slope."""
    sc = get_scenario(scenario)
    mode = "exact fixed point" if exact else f"sampled, {seeds} seeds, final TV mean (std)"
    click.echo(f"scenario {sc.name}: {sc.description}")
    click.echo(f"TV(p, p*) -- {mode}")
    width = max(len(n) for n in out) + 2
    click.echo("estimator".ljust(width) + "".join(f"{'K=' + str(k):>20}" for k in K) + "   slope")
    for name, row in out.items():
        if exact:
            cells = [f"{v:20.4e}" for v in row["tv"]]
        else:
            cells = [f"{m:>11.4e} ({s:.1e})" for m, s in zip(row["tv"], row["tv_std"])]
        slope = "nan" if not math.isfinite(row["slope"]) else f"{row['slope']:.3f}"
        click.echo(name.ljust(width) + "".join(cells) + f"   {slope}")


def register(group):
    """Add ``simulate`` to ``group``."""
    group.add_command(simulate_cmd)
