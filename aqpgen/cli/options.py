"""Shared click options of the command line (not a command module: nothing to register).

Public names
------------
TARGET_HELP            -- the help text of ``--target``.
parse_target_param     -- click callback: text -> ``aqpgen.targets.Target`` (click.BadParameter,
                          i.e. exit status 2 with the reason, on a bad target).
target_option(...)     -- the decorator ``--target`` (default "log"), used by every command that
                          takes a target:

    @solve.command(name="minimax")
    @target_option()
    def minimax_cmd(K, target, ...):   # target is a Target (LOG or PowerTarget(a))
        ...

The accepted spellings are those of ``aqpgen.targets.parse_target``: "log" (also "log p") or
"p^A" / "p**A" with A a real number > -1 written as a decimal or a fraction ("p^0.5",
"p^-0.5", "p^1/3").  A <= -1 or an A that is not a number is rejected with a message that names
the option and the value.
"""

from __future__ import annotations

import click

from aqpgen.targets import parse_target

__all__ = ["TARGET_HELP", "parse_target_param", "target_option"]

TARGET_HELP = ('Target g(p) the table estimates: "log" (log p, the KL game; default) or "p^A" '
               '(p to a real power A > -1, e.g. "p^0.5", "p^-0.5": the alpha-divergence game '
               'with alpha = A + 1).')


def parse_target_param(ctx, param, value):
    """click callback: parse ``--target`` with ``aqpgen.targets.parse_target``.

    Returns the Target (None passes through when the option has no default).  A bad value
    raises ``click.BadParameter`` (exit status 2) carrying the parser's reason.
    """
    if value is None:
        return None
    try:
        return parse_target(value)
    except (TypeError, ValueError) as exc:
        msg = str(exc) if repr(value) in str(exc) else f"{value!r}: {exc}"
        raise click.BadParameter(msg, ctx=ctx, param=param) from None


def target_option(default: str | None = "log", help: str = TARGET_HELP):
    """The ``--target`` click option (the parameter arrives as a ``Target``).

    Parameters
    ----------
    default : str or None
        Default target text ("log"); None makes the option optional with value None.
    help : str
        Help text (default ``TARGET_HELP``).
    """
    return click.option("--target", "target", default=default, show_default=default is not None,
                        metavar="TARGET", callback=parse_target_param, help=help)
