"""The shared ``--target`` option (aqpgen.cli.options): parsing, defaults, exit status 2."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from aqpgen.cli.options import target_option
from aqpgen.targets import LOG, PowerTarget


@click.command()
@target_option()
def _cmd(target):
    click.echo(f"{type(target).__name__} {target.name}")


@click.command()
@target_option(default=None)
def _cmd_optional(target):
    click.echo(repr(target))


@pytest.mark.parametrize(("args", "out"), [
    ([], "LogTarget log p"),
    (["--target", "log"], "LogTarget log p"),
    (["--target", "p^0.5"], "PowerTarget p^0.5"),
    (["--target", "p^-0.5"], "PowerTarget p^-0.5"),
    (["--target", "p**1/3"], "PowerTarget p^1/3"),
    (["--target", "p^2"], "PowerTarget p^2"),
])
def test_target_option_parses(args, out):
    r = CliRunner().invoke(_cmd, args)
    assert r.exit_code == 0, r.output
    assert r.output.strip() == out


@pytest.mark.parametrize(("value", "why"), [
    ("p^-1", "must be > -1"),
    ("p^-1.5", "must be > -1"),
    ("p^abc", "real number"),
    ("sqrt", "unknown target"),
])
def test_target_option_rejects_with_exit_2(value, why):
    r = CliRunner().invoke(_cmd, ["--target", value])
    assert r.exit_code == 2
    assert "--target" in r.output and why in r.output and value in r.output


def test_target_option_optional():
    r = CliRunner().invoke(_cmd_optional, [])
    assert r.exit_code == 0 and r.output.strip() == "None"
    assert PowerTarget("0.5") != LOG
