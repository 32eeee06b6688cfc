"""``aqpgen experiment`` and ``aqpgen recommend``: thin layers over :mod:`aqpgen.experiments`
and :mod:`aqpgen.recommend`."""

from __future__ import annotations

import json
import math
import os
import time

import click

from aqpgen.cli import CONVENTIONS, jsonable, k_value
from aqpgen.cli.options import target_option
from aqpgen.experiments import plan as pl
from aqpgen.experiments.summary import check_recommendation
from aqpgen.recommend import NOISE_WEIGHTS, recommend
from aqpgen.report.experiments import write_experiment_report

EXPERIMENT_HELP = """\
Play the answer-level alignment game with a real TRL GRPOTrainer and measure how close each
estimator's run ends to the game's optimum.

\b
Games: (1) four one-token prompts, each with 16 answer tokens plus "other" (any other token)
and known rewards R; objective E[R] + tau*H(answer distribution) (the KL game; the alpha-game
with target p^-0.5 too), optimum pi* = softmax(R/tau); the answer distribution is read exactly
from the logits.  (2) The multi-token game: a completion is 2 digit tokens and its answer their
sum, so several completions give one answer; the answer distribution is enumerated from the
logits of every prefix.  A tiny Qwen2 is built locally (no hub).  The reward of a completion is
R(answer) - tau*c_K[n] (the table under test, through aqpgen.integrations.trl_reward_func),
- tau*log pi(answer) for the oracle, or the completion's own log-likelihood (sum or per-token
mean) for the sequence-likelihood proxies.

\b
Default plan: oracle, plugin, digamma, jackknife, grassberger, the minimax table where the float32
precision guard serves it, every shipped KL AQP preset (shape-constrained ones included), at
K = 8, 16, 32 (scale_rewards "none" and "group") and the held-out K = 12, 15, 24; the multi-token
game at K = 8, 16 (also Laplace and both sequence-likelihood proxies); the alpha-game (plugin,
Laplace, jackknife, the p^-0.5 tables) at K = 8, 16, 32; seeds 0-2, 300 steps each (lr 3e-2,
linear decay).  The page fits recommend's noise weight on part of the runs and checks it on the rest.
About 20 minutes on 2 CPU cores with --jobs 2 (the page records the measured time).

\b
Writes the results (every run's TV curve) to --out, then docs/experiments.md and its figures
(--report; --report-only rewrites them from an existing results file without training).
Needs torch and trl (make experiment installs them).

\b
Examples:
  aqpgen experiment                       # the default plan, then the report
  aqpgen experiment --quick --out /tmp/q.json --report /tmp/q.md
  aqpgen experiment --report-only         # regenerate docs/experiments.md
"""

RECOMMEND_HELP = """\
Name the table to use at batch size K, and say why.

\b
Rule: among the tables for the target on the table search path (shipped, or built by you into
a directory of $AQPGEN_TABLES; each is named by where it was found) whose row K is served in
the trainer's dtype (float32 for TRL / verl / OpenRLHF: the precision guard), take the one with
the lowest
beta_cert + NOISE * sqrt(V_inf): its certified bias plus NOISE times the reward's worst
standard deviation, the two things that set how far a run ends from the optimum.  The default
NOISE is inside the range the trainer experiment (aqpgen experiment, docs/experiments.md)
validated; with its results file present (--results, default docs/experiments.json), the
command also prints what the experiment measured at K.  Long runs / large batches average
more noise away: a smaller NOISE favours lower bias.  An integer power target p^A is
served by power-m<A> (exactly unbiased).  When no table serves K the command exits 1 with the
largest K served and the command that builds row K.

\b
Examples:
  aqpgen recommend --K 16
  aqpgen recommend --K 64 --json
  aqpgen recommend --K 16 --target p^-0.5
  aqpgen recommend --K 8 --target p^2       # power-m2
"""


def _default_results() -> str:
    return os.path.join("docs", "experiments.json")


@click.command("experiment", help=EXPERIMENT_HELP)
@click.option("--quick", is_flag=True, help="A minutes-long plan (oracle vs plug-in, K = 8, 2 seeds, 60 steps).")
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes (one torch thread each).")
@click.option("--out", type=click.Path(dir_okay=False), default=_default_results(),
              show_default=True, help="Results file (JSON).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              default=os.path.join("docs", "experiments.md"), show_default=True,
              help="Markdown report; its figures go to a 'figures' directory beside it.")
@click.option("--report-only", is_flag=True, help="Do not train: rewrite the report from --out.")
def experiment_cmd(quick, jobs, out, report_path, report_only):
    if report_only:
        if not os.path.exists(out):
            raise click.BadParameter(f"{out!r} does not exist; run `aqpgen experiment` first",
                                     param_hint="--out")
        try:
            results = pl.read_results(out)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--out") from None
    else:
        plan = pl.quick_plan() if quick else pl.default_plan()
        t0 = time.perf_counter()
        results = pl.run_plan(plan, jobs, echo=click.echo)
        pl.write_results(out, results)
        click.echo(f"wrote {out}: {len(results['runs'])} runs in "
                   f"{time.perf_counter() - t0:.0f} s wall with --jobs {jobs}")
    written = write_experiment_report(results, report_path)
    for p in written:
        click.echo(f"wrote {p}")


@click.command("recommend", help=RECOMMEND_HELP + "\n" + CONVENTIONS)
@click.option("--K", "K", type=int, callback=k_value, required=True, help="Batch size K (num_generations).")
@target_option()
@click.option("--dtype", type=click.Choice(["float32", "float64", "bfloat16", "float16"]),
              default="float32", show_default=True, help="The dtype the trainer keeps rewards in.")
@click.option("--noise", type=click.FloatRange(min=0), default=None,
              help="Noise weight lambda of the rule (0: the smallest certified bias served); "
                   "default: the value the experiment measured for the target ("
                   + ", ".join(f"{k}: {v:g}" for k, v in NOISE_WEIGHTS.items())
                   + "; other targets: that of log).")
@click.option("--results", type=click.Path(dir_okay=False), default=None,
              help=f"Experiment results to report against (default {_default_results()} when present).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def recommend_cmd(K, target, dtype, noise, results, as_json):
    try:
        rec = recommend(K, target, dtype=dtype, noise=noise)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    measured = _measured(rec, results) if rec.name is not None else None
    if as_json:
        click.echo(json.dumps(jsonable({
            "K": rec.K, "target": rec.target, "dtype": rec.dtype, "noise": rec.noise,
            "noise_validated": rec.validated,
            "table": rec.name, "reason": rec.reason, "plugin_V_inf": rec.plugin_V_inf,
            "largest_K": rec.largest_K, "build": rec.build,
            "candidates": [c.__dict__ for c in rec.candidates], "experiment": measured},
        ), indent=1))
    else:
        _print_recommendation(rec, measured)
    if rec.name is None:
        raise SystemExit(1)


def _print_recommendation(rec, measured) -> None:
    """The text form of ``aqpgen recommend`` (no table: the reason and the build command)."""
    if rec.name is None:
        click.echo(f"no table serves K={rec.K}", err=True)
        click.echo(rec.reason.split("; to build")[0] + ".", err=True)
        if rec.build:
            click.echo(f"build row K={rec.K}:\n  {rec.build}", err=True)
    else:
        click.echo(rec.name)
        click.echo(f"why: {rec.reason}.")
    ref = "" if math.isnan(rec.plugin_V_inf) else f" (V_inf ratio to the plug-in's {rec.plugin_V_inf:.3g})"
    click.echo(f"candidates at K={rec.K}{ref}:", err=rec.name is None)
    for c in rec.candidates:
        if c.usable == "ok":
            mark = "*" if c.name == rec.name else " "
            v = f"V_inf {c.V_inf:.3e}" if math.isnan(c.ratio) else f"V_inf {c.ratio:9.3g} x plug-in"
            line = f"  {mark} {c.name:24s} score {c.score:.3e}  beta_cert {c.beta_cert:.3e}  {v}"
        else:
            line = f"    {c.name:24s} {c.usable}"
        click.echo(f"{line}  [{c.source}]", err=rec.name is None)
    if measured is not None:
        click.echo(measured["text"])


def register(group):
    """Add ``experiment`` and ``recommend`` to ``group``."""
    group.add_command(experiment_cmd)
    group.add_command(recommend_cmd)


def _measured(rec, results) -> dict | None:
    """What the experiment measured at rec.K (None when no results file / no such K)."""
    path = results or _default_results()
    if not os.path.exists(path):
        if results:
            raise click.BadParameter(f"{results!r} does not exist", param_hint="--results")
        return None
    try:
        data = pl.read_results(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--results") from None
    return check_recommendation(data, rec)

