"""``aqpgen solve``: one-off solves (``aqpgen solve minimax``, ``aqpgen solve power``), a thin layer
over aqpgen.generators.minimax and aqpgen.generators.power."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import click

from aqpgen.cli import CONVENTIONS, k_value
from aqpgen.cli.options import target_option
from aqpgen.errors import ConvergenceError
from aqpgen.generators import minimax, power, remez
from aqpgen.numerics.precision import flint_prec, single_thread_blas
from aqpgen.records import as_int

MINIMAX_HELP = """\
Solve the minimax (bias-optimal) estimator of log p for one batch size K.

E*_K = min over tables c_K of sup_p p*|E[c_K[n]] - log p|: the best uniform approximation of
p log p by p*Q(p), deg Q <= K-1, found by a Remez exchange (float64 iterations, then high
precision in python-flint arb).  Prints E*_K (>= 12 significant digits), K^2*E*_K (which tends to
a constant, about 0.3250893), the iterations, the levelled-error spread (stopping rule: spread <=
--tol) and the time.  With --table also converts to the table c_K[1..K] (Bernstein coefficients,
growing like 2^K/K^2) and reports max|c|.

\b
Examples:
  aqpgen solve minimax --K 64
  aqpgen solve minimax --K 1024 --json
  aqpgen solve minimax --K 8 --table --json
  aqpgen solve minimax --target p^0.5 --K 12 --json   (the same program for p^0.5)

"""


POWER_HELP = """\
Exact unbiased table for a polynomial reward (Bregman power geometries).

The target is p^m (--m M) or any polynomial sum_i a_i p^i with rational coefficients, low to high
(--poly "0,2" is 2p, the Gini / squared geometry; --poly "1/3,0,-1" is 1/3 - p^2).  For p^m the
table is the U-statistic c_K[n] = (n-1)_m / (K-1)_m (falling factorials); a polynomial of degree
<= K-1 follows by linearity, and no unbiased table exists above that degree.  The table is
computed in exact rational arithmetic, verified exactly (its mean polynomial equals the target),
and printed as rationals and correctly rounded float64.

\b
Examples:
  aqpgen solve power --m 2 --K 8
  aqpgen solve power --poly "0,2" --K 4 --json

"""


def _positive_int(ctx, param, value):
    """click callback: None, or an integer >= 1 (``aqpgen.records.as_int``)."""
    if value is None:
        return value
    try:
        return as_int(value, param.name, minimum=1)
    except (TypeError, ValueError) as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


@click.group(name="solve", help="One-off solves (no table file written).  Runs with BLAS limited "
             "to one thread, as the build does (aqpgen.numerics.precision.single_thread_blas), "
             "so its numbers equal the shipped rows'.\n\n" + CONVENTIONS)
def solve():
    pass


@solve.command(name="power", help=POWER_HELP + CONVENTIONS)
@click.option("--K", "K", type=int, required=True, callback=k_value, help="Batch size 1 <= K <= 4096.")
@click.option("--m", "m", type=int, default=None, help="Target p^m (m >= 0).")
@click.option("--poly", default=None,
              help='Target polynomial coefficients, low to high, comma-separated rationals ("0,2" = 2p).')
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def power_cmd(K, m, poly, as_json):
    if (m is None) == (poly is None):
        raise click.UsageError("give exactly one of --m or --poly")
    params = {"m": m} if m is not None else {"coeffs": [t.strip() for t in poly.split(",")]}
    try:
        coeffs = power.target_coeffs(params)
        exact = (power.ustat_table_exact(m, K) if m is not None
                 else power.poly_table_exact(coeffs, K))
        ok = power.verify_exact(exact, coeffs, K)
    except (ValueError, TypeError) as exc:
        hint = "--m" if m is not None else "--poly"
        raise click.BadParameter(str(exc), param_hint=hint) from exc
    values = power.to_float64(exact)
    name = power.target_name(params)
    if as_json:
        click.echo(json.dumps({"K": K, "target": name, "exact_unbiased": ok,
                               "values_exact": [f"{q.numerator}/{q.denominator}" for q in exact],
                               "values": [float(v) for v in values]}, indent=1))
        return
    click.echo(f"target {name}, K = {K}: exact unbiasedness verified in rational arithmetic: {ok}")
    for n, (q, v) in enumerate(zip(exact, values), start=1):
        click.echo(f"  c_K[{n}] = {q!s:>20}  = {float(v)!r}")
    if not ok:  # pragma: no cover - would be a bug in aqpgen.generators.power
        raise click.ClickException("exact verification failed")


@contextlib.contextmanager
def heartbeat(label: str, every: float = 10.0, quiet: bool = False):
    """Print "LABEL ..." on stderr, then "LABEL: N s" every ``every`` seconds until the block ends
    (the progress of a solve that reports none of its own; nothing when ``quiet``)."""
    if quiet:
        yield
        return
    stop = threading.Event()
    t0 = time.perf_counter()
    click.echo(f"{label} ...", err=True)

    def beat():
        while not stop.wait(every):
            click.echo(f"{label}: {time.perf_counter() - t0:.0f} s", err=True)

    th = threading.Thread(target=beat, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


@solve.command(name="minimax", help=MINIMAX_HELP + CONVENTIONS)
@click.option("--K", "K", type=int, required=True, callback=k_value,
              help="Batch size K >= 1 (Q has degree <= K-1).")
@click.option("--prec", type=int, default=None, callback=_positive_int,
              help="Bits of the high-precision Remez stage (default 128 up to K = 1024).")
@click.option("--tol", type=float, default=None,
              help="Stopping tolerance on the relative levelled-error spread (default 1e-12).")
@click.option("--table", "with_table", is_flag=True,
              help="Also convert to the table c_K[1..K] (high-precision strings); --json then "
                   "includes values_hp.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@target_option()
def minimax_cmd(K, prec, tol, with_table, as_json, quiet, target):
    if prec is not None and prec < 64:
        raise click.BadParameter(f"must be >= 64 bits, received {prec}", param_hint="--prec")
    if tol is not None and not tol > 0:
        raise click.BadParameter(f"must be positive, received {tol}", param_hint="--tol")
    t0 = time.perf_counter()
    try:
        with single_thread_blas(), heartbeat(f"solving K={K} (Remez exchange)", quiet=quiet or K < 256):
            res = remez.remez(K, prec=prec, tol=tol, target=target)
            t_solve = time.perf_counter() - t0
            strings = values = None
            if with_table:
                strings, values, _ = minimax.minimax_table(K, result=res, target=target)
    except ConvergenceError as exc:
        raise click.ClickException(str(exc)) from exc
    out = _minimax_doc(K, res, target, t_solve, time.perf_counter() - t0, strings)
    if as_json:
        if strings is not None:
            out["values_hp"] = list(strings)
            out["values"] = [float(v) for v in values]
        click.echo(json.dumps(out, indent=1))
    else:
        _print_minimax(out, res, target)


def _minimax_doc(K, res, target, t_solve, elapsed, strings) -> dict:
    out = {
        "K": K, "target": res.target, "E_star": res.E, "E_star_hp": res.E_hp,
        "K2_E_star": K * K * res.E, "rate": target.rate_exponent,
        "Kr_E_star": K ** target.rate_exponent * res.E, "iterations": res.iterations,
        "hp_iterations": res.hp_iterations, "spread": res.spread, "converged": res.converged,
        "prec": res.prec, "tol": res.tol, "seconds_solve": round(t_solve, 3),
        "seconds": round(elapsed, 3),
    }
    if strings is not None:
        with flint_prec(minimax.table_prec(K)) as flint:
            out["max_abs_c"] = float(max(abs(flint.arb(s)) for s in strings).mid())
        out["table_prec"] = minimax.table_prec(K)
    return out


def _print_minimax(out, res, target) -> None:
    K, r = out["K"], target.rate_exponent
    click.echo(f"K            = {K}   (target {res.target})")
    click.echo(f"E*_K         = {res.E:.15g}")
    click.echo(f"E*_K (hp)    = {res.E_hp}   (E*_K to relative {max(res.spread, 1e-30):.1e})")
    click.echo(f"{f'K^{r:g} * E*_K':<12} = {K ** r * res.E:.15g}   (E*_K = Θ(K^-{r:g}))")
    click.echo(f"iterations   = {res.iterations} ({res.hp_iterations} in high precision, "
               f"{res.prec} bits)")
    click.echo(f"spread       = {res.spread:.3e} (tol {res.tol:.1e})")
    if "max_abs_c" in out:
        click.echo(f"max|c_K|     = {out['max_abs_c']:.6e} (table converted at "
                   f"{out['table_prec']} bits)")
    click.echo(f"time         = {out['seconds']:.2f} s")


def register(group):
    """Add ``solve`` (with ``solve power`` and ``solve minimax``) to ``group``."""
    group.add_command(solve)
