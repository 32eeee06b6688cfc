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


def test_solve_minimax_target_json():
    """aqpgen solve minimax --target p^A: keys K, E_star, target; K = 1 against the closed form."""
    import json

    from _power_oracles import E1_closed_form

    from aqpgen.cli import main

    r = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^0.5", "--K", "12", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["K"] == 12 and out["target"] == "p^0.5" and 5e-5 < out["E_star"] < 6e-5
    r = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^-0.5", "--K", "1", "--json"])
    assert json.loads(r.output)["E_star"] == pytest.approx(E1_closed_form("-0.5"), rel=1e-13)
    r = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^-1", "--K", "3"])
    assert r.exit_code == 2 and "must be > -1" in r.output
    r = CliRunner().invoke(main, ["solve", "minimax", "--K", "3", "--json"])
    assert json.loads(r.output)["target"] == "log p"
