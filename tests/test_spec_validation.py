"""Validation first: the whole spec (params included) and every K list are checked before any
solve; bad input exits 2 at once with a message naming the key and value, never a traceback or
a hang; a table with no usable row is an error and writes nothing."""

from __future__ import annotations

import re
import sys
import time

import pytest
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.build.build import BuildError, build
from aqpgen.build.spec import MAX_K, check_Ks, load_spec, parse_K_list

ENTRY = "[[table]]\nname = 'x'\nfamily = '{family}'\nmethod = '{method}'\nparams = {params}\nKs = {Ks}\n"


def _spec(tmp_path, family="kl", method="aqp", params="{ rho = 1 }", Ks="[4, 8]"):
    p = tmp_path / "spec.toml"
    p.write_text(ENTRY.format(family=family, method=method, params=params, Ks=Ks))
    return p


def _never_solve(monkeypatch):
    """Any call of a generator's build_K fails the test: validation must come first."""
    from aqpgen.build import runner

    def boom(*a, **k):
        raise AssertionError("a solve started before validation finished")

    monkeypatch.setattr(runner, "run_K", boom)


@pytest.mark.parametrize(
    "family, method, params, Ks, match",
    [
        ("kl", "aqp", "{ rho = -1 }", "[4, 8]", "'rho' must be > 0"),
        ("kl", "aqp", "{ rho = 0 }", "[4, 8]", "'rho' must be > 0"),
        ("kl", "aqp", "{ rho = nan }", "[4, 8]", "'rho' must be a finite real"),
        ("kl", "aqp", "{ eta = -1 }", "[4, 8]", "'eta' must be >= 0"),
        ("kl", "aqp", "{ eta = 3, objective = 'V2' }", "[4, 8]", "'objective' must be 'Vinf' or 'V1'"),
        ("kl", "aqp", "{ eta = 3, colour = 'red' }", "[4, 8]", "rejected by aqpgen.generators.aqp"),
        ("kl", "aqp", "{ rho = true }", "[4, 8]", "'rho' must be a finite real"),
        ("kl", "minimax", "{ target = 'p^-2' }", "[4, 8]", "params 'target'"),
        ("kl", "minimax", "{ tol = 1 }", "[4, 8]", "rejected by aqpgen.generators.minimax"),
        ("power", "ustat", "{ m = -1 }", "[4, 8]", "'m' must be an integer >= 0, received -1"),
        ("power", "ustat", "{ coeffs = ['1/0'] }", "[4, 8]", "'coeffs' must be rationals"),
        ("power", "ustat", "{ m = 2 }", "[4, 100000000000]", f"K=100000000000 is above the maximum K = {MAX_K}"),
        ("power", "ustat", "{ m = 2 }", f"[4, {MAX_K + 1}]", f"above the maximum K = {MAX_K}"),
        ("power", "ustat", "{ m = 2 }", "[4, 4.5]", "entry must be an integer, received 4.5"),
        ("power", "ustat", "{ m = 2 }", "[2, 4]", "K=2 is below the smallest valid K=3"),
        ("power", "ustat", "{ m = 2 }", "[]", "'Ks' must be"),
        # what the build cannot do is refused before any work (these failed inside the build with
        # IndexError / OverflowError / "no usable row (...; statuses: )")
        ("power", "ustat", "{ coeffs = ['0'] }", "[4, 8]", "'coeffs' ['0'] is a constant target"),
        ("power", "ustat", "{ coeffs = ['1', '0'] }", "[4, 8]", "is a constant target"),
        ("power", "ustat", "{ coeffs = ['1e400'] }", "[4, 8]", "'coeffs': '1e400' is not representable"),
        ("power", "ustat", "{ coeffs = ['0', '1e-400'] }", "[4, 8]", "'1e-400' is not representable"),
        ("power", "ustat", "{ coeffs = ['1e308', '1e308'] }", "[4, 8]", "'coeffs': the sum of |coeff"),
        ("power", "ustat", "{ m = 0 }", "[4, 8]", "'m' = 0 is the constant target"),
        ("power", "ustat", "{ m = 5000 }", "'standard'", "'m' = 5000 needs K >= m+1 = 5001"),
        ("power", "ustat", "{ m = 2000 }", "'standard'", "'Ks' = \"standard\" has no K >= 2001"),
    ],
)
def test_bad_specs_fail_before_any_solve(tmp_path, monkeypatch, family, method, params, Ks, match):
    spec = _spec(tmp_path, family, method, params, Ks)
    with pytest.raises(ValueError, match=re.escape(match)):
        load_spec(spec)
    _never_solve(monkeypatch)
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and match.split("'")[1 if "'" in match else 0][:8] in res.output
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "out" / "x.h5").exists()


def test_a_bad_entry_anywhere_stops_the_whole_spec(tmp_path, monkeypatch):
    good = ENTRY.format(family="power", method="ustat", params="{ m = 1 }", Ks="[2, 3]")
    bad = ENTRY.format(family="kl", method="aqp", params="{ eta = -1 }", Ks="[4]").replace("'x'", "'y'")
    spec = tmp_path / "spec.toml"
    spec.write_text(good + bad)
    _never_solve(monkeypatch)
    with pytest.raises(ValueError, match="table 'y'.*'eta' must be >= 0"):
        build(spec, tmp_path / "out")
    assert not (tmp_path / "out" / "x.h5").exists()  # the good table before it was not built either


def test_valid_params_pass(tmp_path):
    for params in ("{ rho = 1 }", "{ rho = 0.5 }", "{ eta = 0 }", "{ eta = 15, objective = 'V1' }"):
        assert load_spec(_spec(tmp_path, params=params))[0].Ks == (4, 8)
    assert load_spec(_spec(tmp_path, "power", "ustat", "{ coeffs = ['0', '1/2'] }", "[2]"))[0].Ks == (2,)


def test_table_with_no_usable_row_is_an_error_and_writes_nothing(tmp_path, fake_generator):
    spec = tmp_path / "spec.toml"
    spec.write_text("[[table]]\nname='f'\nfamily='fake'\nmethod='lin'\nparams={a='1', bad=[2, 3]}\nKs=[2, 3]\n")
    with pytest.raises(BuildError, match="no usable row.*out of reach"):
        build(spec, tmp_path / "out")
    assert not (tmp_path / "out" / "f.h5").exists()
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 1 and "no usable row" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize(
    "text, match",
    [
        ("8,,", "empty item #2"),
        (",8", "empty item #1"),
        ("8, ,16", "empty item #2"),
        ("4,x", "'x' .* not an integer"),
        ("4,1e5", "not an integer"),
        ("4,100000000000", f"above the maximum K = {MAX_K}"),
        (str(10**400), "above the maximum"),
        ("1,4", "every K must be >= 2"),
        ("-3", "every K must be >= 2"),
    ],
)
def test_parse_K_list_rejects(text, match):
    with pytest.raises(ValueError, match=match):
        parse_K_list(text)


def test_parse_K_list_and_check_Ks_accept():
    assert parse_K_list(" 4, 8 ,16") == [4, 8, 16]
    assert parse_K_list(str(MAX_K)) == [MAX_K]
    assert check_Ks([8, 4], kmin=2) == (4, 8)


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "--K", "8,,"],
        ["compare", "--K", "4,100000000000"],
        ["frontier", "--K", "100000"],
        ["frontier", "--K", "4,8"],
        ["solve", "minimax", "--K", "100000"],
        ["solve", "minimax", "--K", "0"],
        ["solve", "power", "--m", "2", "--K", "100000000000"],
        ["simulate", "--exact", "--K", "4,,8"],
    ],
)
def test_cli_K_lists_fail_at_once_with_exit_2(args):
    t0 = time.monotonic()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "--K" in res.output
    assert time.monotonic() - t0 < 5


def test_missing_optional_dependency_names_the_extra(monkeypatch, tmp_path):
    """A command whose optional dependency is missing says which extra to install (exit 1)."""
    import click

    from aqpgen.cli import AqpgenGroup

    @click.group(cls=AqpgenGroup)
    def grp():
        pass

    @grp.command()
    def needs_cvxpy():
        import cvxpy  # noqa: F401

    monkeypatch.setitem(sys.modules, "cvxpy", None)
    res = CliRunner().invoke(grp, ["needs-cvxpy"])
    assert res.exit_code == 1 and "pip install 'aqpgen[build]'" in res.output and "Traceback" not in res.output


def test_a_solver_missing_at_solve_time_names_the_extra(tmp_path, fake_generator, monkeypatch):
    def needs_cvxpy(K, params, *, tables_dir=None):
        import cvxpy  # noqa: F401

    monkeypatch.setattr(fake_generator, "build_K", needs_cvxpy)
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    spec = tmp_path / "spec.toml"
    spec.write_text("[[table]]\nname='f'\nfamily='fake'\nmethod='lin'\nparams={a='1'}\nKs=[2]\n")
    with pytest.raises(BuildError, match=r"K=2: ModuleNotFoundError.*pip install 'aqpgen\[build\]'"):
        build(spec, tmp_path / "out")
