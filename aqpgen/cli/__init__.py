"""Command-line interface: a thin click layer over the library.

One file per command family; each exposes ``register(group)`` which adds its commands:

* ``build_cmds``  -- build, show, verify
* ``solve_cmds``  -- solve minimax
* ``aqp_cmds``    -- frontier, compare
* ``audit_cmds``  -- audit, report
* ``sim_cmds``    -- simulate

Heavy imports (cvxpy, flint, mpmath, matplotlib) happen inside the command functions.
"""

from __future__ import annotations

import importlib

import click

from aqpgen import __version__

_COMMAND_MODULES = ("build_cmds", "solve_cmds", "aqp_cmds", "audit_cmds", "sim_cmds")

CONVENTIONS = """\
Conventions: K completions are sampled per prompt; completion i's count n_i is the number of the
K completions (itself included) with the same answer, so 1 <= n_i <= K and n_i - 1 ~
Binomial(K-1, p). A table c_K[1..K] gives completion i the reward c_K[n_i]. Errors are weighted
by p: beta = sup_p p*|E[c_K[n]] - target(p)|, V_inf = sup_p p*Var, V1 = int_0^1 p*Var dp.
"""


def k_list(ctx, param, value):
    """click callback: a comma-separated list of batch sizes K >= 2 ("4,8,16") -> list of int."""
    if value is None:
        return None
    try:
        out = [int(x) for x in str(value).split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"must be a comma-separated list of integers, received {value!r}",
                                 ctx=ctx, param=param) from None
    if not out or any(k < 2 for k in out):
        raise click.BadParameter(f"every K must be an integer >= 2, received {value!r}",
                                 ctx=ctx, param=param)
    return out


@click.group(help="aqpgen: unbiased and near-unbiased answer-level reward tables.\n\n" + CONVENTIONS)
@click.version_option(__version__, prog_name="aqpgen")
def main() -> None:
    pass


for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(main)
