"""Command-line interface: a thin click layer over the library.

One file per command family; each exposes ``register(group)`` which adds its commands:

* ``build_cmds``  -- build, show, verify
* ``solve_cmds``  -- solve minimax
* ``aqp_cmds``    -- frontier, compare
* ``audit_cmds``  -- audit, report
* ``sim_cmds``    -- simulate
* ``experiment_cmds`` -- experiment, recommend

Heavy imports (cvxpy, flint, mpmath, matplotlib) happen inside the command functions.

The command line needs the ``[build]`` extra (click and the solvers).  Without click the
``aqpgen`` entry point prints which extra to install; a command whose optional dependency is
missing (e.g. cvxpy for ``solve``/``build``) says the same instead of a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import sys
import time

from aqpgen import __version__
from aqpgen.build.spec import MAX_K, missing_extra, parse_K_list

try:
    import click
except ModuleNotFoundError as _exc:  # the light install: runtime + tables only
    click = None
    _CLICK_ERROR = _exc

#: command name -> the module whose ``register(group)`` defines it.  Loaded on first use, so
#: ``aqpgen build`` does not import the report, the simulator or the solvers' front ends (a
#: test checks this map against what the modules register).
COMMANDS = {"build": "build_cmds", "show": "build_cmds", "verify": "build_cmds",
            "solve": "solve_cmds", "frontier": "aqp_cmds", "compare": "aqp_cmds",
            "audit": "audit_cmds", "report": "audit_cmds", "simulate": "sim_cmds",
            "experiment": "experiment_cmds", "recommend": "experiment_cmds"}

CONVENTIONS = """\
Conventions: K completions are sampled per prompt; completion i's count n_i is the number of the
K completions (itself included) with the same answer, so 1 <= n_i <= K and n_i - 1 ~
Binomial(K-1, p). A table c_K[1..K] gives completion i the reward c_K[n_i]. Errors are weighted
by p: beta = sup_p p*|E[c_K[n]] - target(p)|, V_inf = sup_p p*Var, V1 = int_0^1 p*Var dp.
"""


def jsonable(obj):
    """``obj`` with every non-finite float replaced by None (JSON has no inf / NaN), through
    dicts, lists and tuples."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


class _LineProgress:
    """``update(n)`` prints "LABEL: done/total" every ``every`` seconds, and at the end once it
    has printed (the progress of a long command when stderr is not a terminal; a short one
    prints nothing)."""

    def __init__(self, total: int, label: str, every: float = 10.0):
        self.total, self.label, self.every, self.done = total, label, every, 0
        self._clock = time.monotonic
        self._last = self._clock()
        self._printed = False

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if now - self._last >= self.every or (self._printed and self.done >= self.total):
            self._last, self._printed = now, True
            sys.stderr.write(f"{self.label}: {self.done}/{self.total}\n")
            sys.stderr.flush()


def progress_bar(total: int, label: str):
    """A context manager yielding an object with ``update(n)``: click's progress bar on a
    terminal, else a line on stderr every 10 s (and when done)."""
    if sys.stderr.isatty():
        return click.progressbar(length=total, label=label, file=sys.stderr)
    return contextlib.nullcontext(_LineProgress(total, label))


def k_list(ctx, param, value):
    """click callback: a comma-separated list of batch sizes 2 <= K <= MAX_K ("4,8,16") -> list
    of int.  Empty items ("8,,"), non-integers and K above ``aqpgen.build.spec.MAX_K`` are usage
    errors (exit 2) raised at once."""
    if value is None:
        return None
    try:
        return parse_K_list(value, kmin=2)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


def k_value(ctx, param, value):
    """click callback: one batch size 1 <= K <= MAX_K (None passes through); a usage error
    (exit 2) otherwise.  For single ``--K`` options (solve, compare, show)."""
    if value is None:
        return None
    try:
        Ks = parse_K_list(str(value), kmin=1)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None
    if len(Ks) != 1:
        raise click.BadParameter(f"one batch size K expected, received {value!r}", ctx=ctx, param=param)
    return Ks[0]


if click is None:

    def main() -> None:
        """Entry point of the light install: say which extra the command line needs."""
        sys.stderr.write(
            f"aqpgen: the command line needs the [build] extra ({_CLICK_ERROR}).\n"
            "Install it with:  pip install 'aqpgen[build]'\n"
            "(The light install serves tables to Python: from aqpgen.runtime import load_table.)\n"
        )
        raise SystemExit(2)

else:

    class AqpgenGroup(click.Group):
        """Loads each command family on first use (``COMMANDS``) and turns a missing optional
        dependency into "pip install 'aqpgen[extra]'" (exit 1)."""

        def list_commands(self, ctx):
            return sorted(set(self.commands) | set(COMMANDS))

        def get_command(self, ctx, cmd_name):
            if cmd_name not in self.commands and cmd_name in COMMANDS:
                importlib.import_module(f"{__name__}.{COMMANDS[cmd_name]}").register(self)
            return super().get_command(ctx, cmd_name)

        def invoke(self, ctx):
            try:
                return super().invoke(ctx)
            except ImportError as e:
                hint = missing_extra(e) or missing_extra(e.__cause__ or e)
                if hint is None:
                    raise
                raise click.ClickException(f"{e}\n{hint}") from None

    @click.group(cls=AqpgenGroup, help="aqpgen: unbiased and near-unbiased answer-level reward tables.\n\n"
                 + CONVENTIONS + f"\nBatch sizes K are at most {MAX_K} (aqpgen.build.spec.MAX_K).\n")
    @click.version_option(__version__, prog_name="aqpgen")
    def main() -> None:
        pass

