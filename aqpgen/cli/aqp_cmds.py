"""``aqpgen frontier`` and ``aqpgen compare``: thin layers over aqpgen.generators.aqp and
aqpgen.compare.  Both solve with BLAS limited to one thread, as the build does
(``aqpgen.numerics.precision.single_thread_blas``), so their numbers equal the shipped rows'."""

from __future__ import annotations

import json
import math

import click

from aqpgen.cli import CONVENTIONS, k_list, k_value
from aqpgen.cli.options import target_option
from aqpgen.generators import aqp
from aqpgen.compare import (
    PRESETS,
    compare,
    peer_metrics,
    to_json,
    to_markdown,
)
from aqpgen.generators.minimax import E_star
from aqpgen.numerics.precision import single_thread_blas
from aqpgen.report.figures import frontier_figure
from aqpgen.targets import LOG

FRONTIER_HELP = """\
Sweep the AQP bias-variance frontier for one batch size K.

For each eta: minimise V_inf subject to beta <= (1+eta)*E*_K (or V1 with --objective V1); for
each rho (--rho instead of --eta): minimise beta subject to V_inf <= rho*V_inf(plug-in).  Each
point is a convex program (cvxpy + Clarabel) refined by exchange until the bias verified on a fine
grid, and certified by rigorous arithmetic, meets the budget.  Prints beta, certified beta, V_inf
and V1 per point, with the peers (plug-in, digamma, Laplace, jackknife, Grassberger, minimax) on the same axes.
With --target p^A the target is p^A (rho relative to the plug-in (n/K)^A; the peers are those of
aqpgen.generators.peers_power: plug-in, laplace, jackknife, delta, series, minimax) and the JSON
gains the key "target".

\b
Examples:
  aqpgen frontier --K 64
  aqpgen frontier --K 64 --rho 0.5,1,2,4 --json
  aqpgen frontier --K 64 --plot frontier.png
  aqpgen frontier --K 64 --target p^0.5 --rho 0.5,1,2

"""

COMPARE_HELP = f"""\
Compare the classical peers and the AQP presets ({', '.join(PRESETS)}) at each K.
With --target p^A: the peers of p^A (plug-in (n/K)^A, laplace, jackknife, delta, series), its
minimax table and its shipped preset rho1 (rows read from pow<A>-minimax / pow<A>-aqp-rho1 when
found, solved otherwise).

For every estimator: beta (sampled), certified beta, V_inf, V1.  For every classical peer also the
AQP bias at the peer's own V_inf (the rho program with rho = V_inf(peer)/V_inf(plug-in)) and the
ratio beta(peer)/beta(AQP); a ratio > 1 means the AQP frontier dominates the peer.

\b
Examples:
  aqpgen compare --K 8,16,64 --markdown
  aqpgen compare --K 4,8,16,32,64,128,256,1024 --json
  aqpgen compare --K 8,16,64 --target p^-0.5 --markdown

"""


def _float_list(ctx, param, value):
    if value is None:
        return None
    try:
        out = [float(x) for x in str(value).split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"must be a comma-separated list of numbers, received {value!r}",
                                 ctx=ctx, param=param) from None
    if not out or not all(math.isfinite(x) for x in out):
        raise click.BadParameter(f"must be finite numbers, received {value!r}", ctx=ctx, param=param)
    return out


def _num(x):
    return None if not (isinstance(x, float) and math.isfinite(x)) else x


def frontier_plot(path, K, points, peers, target=LOG):
    """Draw the frontier (certified β against V∞, log-log) with the peers; deterministic PNG."""
    frontier_figure(path, [(p["V_inf"], p["beta_cert"], p["label"]) for p in points
                           if p["status"] == "ok"],
                    [(q["name"], q["V_inf"], q["beta_cert"]) for q in peers],
                    f"{target.name} estimators at K = {K}", peer_vmax=1e6)


@click.command(name="frontier", help=FRONTIER_HELP + CONVENTIONS)
@click.option("--K", "K", type=int, required=True, callback=k_value, help="Batch size 2 <= K <= 4096.")
@click.option("--eta", "etas", callback=_float_list, default=None,
              help="Comma-separated bias slacks eta >= 0 (default 0,0.5,1,3,7,15,31).")
@click.option("--rho", "rhos", callback=_float_list, default=None,
              help="Comma-separated variance factors rho > 0 (instead of --eta).")
@click.option("--objective", type=click.Choice(["Vinf", "V1"]), default="Vinf",
              show_default=True, help="Variance minimised by the eta program.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="Write the frontier figure (PNG) here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@target_option()
def frontier_cmd(K, etas, rhos, objective, plot, as_json, target):
    _check_frontier_args(K, etas, rhos)
    with single_thread_blas():
        Es = E_star(K, target=target)
        res = aqp.frontier(K, etas=etas, rhos=rhos, objective=objective, E_star=Es, target=target)
        points = [_point(r) for r in res]
        peers = [{"name": d["estimator"], "beta": d["beta"], "beta_cert": d["beta_cert"],
                  "V_inf": _num(d["V_inf"]), "V1": _num(d["V1"])}
                 for d in peer_metrics(K, target)]
    if plot:
        frontier_plot(plot, K, points, peers, target)
    if as_json:
        out = {"K": K, "E_star": Es, "objective": objective, "points": points, "peers": peers}
        if target != LOG:  # the log p keys are unchanged
            out["target"] = target.name
        click.echo(json.dumps(out, sort_keys=True, indent=1))
        return
    click.echo(f"K = {K}, E*_K = {Es:.6e}, objective = {objective}"
               + ("" if target == LOG else f", target = {target.name}"))
    click.echo(f"{'point':>12} {'beta':>11} {'beta_cert':>11} {'V_inf':>11} {'V1':>11}  status")
    for p in points:
        click.echo(f"{p['label']:>12} {_f(p['beta'])} {_f(p['beta_cert'])} {_f(p['V_inf'])} "
                   f"{_f(p['V1'])}  {p['status']}")
    for q in peers:
        click.echo(f"{q['name']:>12} {_f(q['beta'])} {_f(q['beta_cert'])} {_f(q['V_inf'])} "
                   f"{_f(q['V1'])}  peer")
    if plot:
        click.echo(f"figure: {plot}")


def _f(x) -> str:
    return "nan" if x is None else f"{x:.4e}"


def _check_frontier_args(K, etas, rhos) -> None:
    if K < 2:
        raise click.BadParameter(f"must be >= 2, received {K}", param_hint="--K")
    if etas is not None and rhos is not None:
        raise click.BadParameter("give --eta or --rho, not both", param_hint="--rho")
    if etas is not None and any(e < 0 for e in etas):
        raise click.BadParameter(f"eta must be >= 0 (the budget (1+eta)*E*_K is below E*_K "
                                 f"otherwise), received {etas}", param_hint="--eta")
    if rhos is not None and any(r <= 0 for r in rhos):
        raise click.BadParameter(f"rho must be > 0, received {rhos}", param_hint="--rho")


def _point(r) -> dict:
    label = f"eta={r.param:g}" if r.program == "eta" else f"rho={r.param:g}"
    return {"label": label, "program": r.program, "param": r.param,
            "beta": _num(r.beta), "beta_cert": _num(r.beta_cert),
            "V_inf": _num(r.V_inf), "V1": _num(r.V1),
            "iterations": r.iterations, "status": r.status}


@click.command(name="compare", help=COMPARE_HELP + CONVENTIONS)
@click.option("--K", "Ks", callback=k_list, default="4,8,16,32,64,128,256,1024",
              show_default=True, help="Comma-separated batch sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
@click.option("--markdown", "as_md", is_flag=True, help="Print a markdown table.")
@target_option()
def compare_cmd(Ks, as_json, as_md, target):
    with single_thread_blas():
        rows = compare(Ks, target=target)
    if as_json:
        click.echo(to_json(rows))
    elif as_md:
        click.echo(to_markdown(rows), nl=False)
    else:
        for r in rows:
            ratio = "" if not math.isfinite(r.ratio) else f" ratio {r.ratio:.2f}"
            aq = "" if not math.isfinite(r.aqp_beta) else f" AQP beta@V_inf {r.aqp_beta:.3e}"
            click.echo(f"K={r.K:<5} {r.estimator:<10} beta {r.beta:.3e}  beta_cert "
                       f"{r.beta_cert:.3e}  V_inf {r.V_inf:.3e}  V1 {r.V1:.3e}{aq}{ratio}"
                       + ("" if r.status == "ok" else f"  [{r.status}]"))
    bad = [r for r in rows if r.kind == "peer" and math.isfinite(r.ratio) and r.ratio <= 1]
    if bad:
        raise click.ClickException("frontier dominance fails for: " + ", ".join(
            f"{r.estimator}@K={r.K} (ratio {r.ratio:.3f})" for r in bad))


def register(group):
    """Add ``frontier`` and ``compare`` to ``group``."""
    group.add_command(frontier_cmd)
    group.add_command(compare_cmd)
