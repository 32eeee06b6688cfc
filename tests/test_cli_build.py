"""CLI tests: --help / --version, build, show, verify on small fake tables."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import pytest
from click.testing import CliRunner

import aqpgen
from aqpgen.cli import main

SPEC = """
[[table]]
name = "fake-a"
family = "fake"
method = "lin"
params = { a = "1/2", hp = true }
Ks = [2, 3, 6]
"""


@pytest.fixture
def built(tmp_path, fake_generator):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "t"), "--jobs", "1"])
    assert res.exit_code == 0, res.output
    return tmp_path / "t" / "fake-a.h5"


def test_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and aqpgen.__version__ in res.output


@pytest.mark.parametrize("cmd", [[], ["build"], ["show"], ["verify"]])
def test_help_teaches_conventions(cmd):
    res = CliRunner().invoke(main, cmd + ["--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "itself included" in text and "Binomial(K-1, p)" in text
    if cmd:
        assert "Examples" in text


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-c", "from aqpgen.cli import main; main()", "--help"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "build" in out.stdout


def test_build_then_up_to_date(tmp_path, built):
    spec = tmp_path / "spec.toml"
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0 and "0 built, 1 up to date" in res.output


def test_build_errors_are_clean(tmp_path, fake_generator):
    r = CliRunner()
    res = r.invoke(main, ["build", str(tmp_path / "missing.toml")])
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("hp = true", "fail_at = 3"))
    res = r.invoke(main, ["build", str(spec), "--out", str(tmp_path / "t")])
    assert res.exit_code == 1 and "K=3" in res.output and "fake-a" in res.output
    assert not (tmp_path / "t" / "fake-a.h5").exists()
    res = r.invoke(main, ["build", str(spec), "--only", "zzz"])
    assert res.exit_code == 2 and "zzz" in res.output
    res = r.invoke(main, ["build", str(spec), "--jobs", "0"])
    assert res.exit_code == 2


def test_build_reports_non_ok_rows(tmp_path, fake_generator):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("hp = true", "bad = [3]"))
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0 and "1 unavailable: K 3 (out of reach (fake))" in res.output
    # the end-of-build summary says this is the expected state and where the rows are listed
    assert "WARNING" not in res.output
    assert "1 row(s) are recorded as unavailable (status != ok), as expected" in res.output
    assert "`aqpgen show NAME` lists each with its reason" in res.output


def test_show(built):
    r = CliRunner()
    res = r.invoke(main, ["show", str(built)])
    assert res.exit_code == 0 and "fake-a" in res.output and "2, 3, 6" in res.output
    res = r.invoke(main, ["show", str(built), "--K", "6", "--json"])
    doc = json.loads(res.output)
    assert doc["K"] == 6 and doc["values"] == [n / 12 for n in range(1, 7)]
    assert doc["values_hp"][0] == "1/12" and doc["status"] == "ok"
    res = r.invoke(main, ["show", str(built), "--K", "6"])
    assert res.exit_code == 0 and "1/12" in res.output
    res = r.invoke(main, ["show", str(built), "--K", "5"])
    assert res.exit_code == 2 and "K=5 is not in fake-a" in res.output
    res = r.invoke(main, ["show", "no-such-table"])
    assert res.exit_code == 2 and "no-such-table" in res.output and "Traceback" not in res.output


def test_show_by_name(built, monkeypatch):
    monkeypatch.setenv("AQPGEN_TABLES", str(built.parent))
    res = CliRunner().invoke(main, ["show", "fake-a", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["Ks"] == [2, 3, 6]


def test_verify_ok_and_tampered(built):
    r = CliRunner()
    res = r.invoke(main, ["verify", str(built)])
    assert res.exit_code == 0, res.output
    assert "fake-exact" in res.output and "manifest" in res.output
    res = r.invoke(main, ["verify", str(built), "--json"])
    doc = json.loads(res.output)
    assert doc["failed"] == 0 and any(c["name"] == "fake-exact" for c in doc["files"][str(built)])
    with h5py.File(built, "r+") as f:
        f["values"][0] = 0.3
    res = r.invoke(main, ["verify", str(built)])
    assert res.exit_code == 1 and "content hash mismatch" in res.output
    res = r.invoke(main, ["verify", str(built), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["failed"] >= 1


def test_verify_rowcheck_failure_detected(built, monkeypatch):
    """A wrong value written with a consistent hash (re-written file) fails the generator check."""
    from aqpgen.store.manifest import update_manifest
    from aqpgen.store.tablefile import read_table, write_table

    t = read_table(built)
    row = t.rows[3]
    v = row.values.copy()
    v[1] += 1e-3
    rows = dict(t.rows)
    rows[3] = row._replace(values=v)
    write_table(built, type(t)(**{**t.__dict__, "rows": rows}))
    update_manifest(built.parent)
    res = CliRunner().invoke(main, ["verify", str(built)])
    assert res.exit_code == 1 and "FAIL fake-exact: K=3" in res.output


def test_verify_rate_on_non_kl_table_fails(built):
    res = CliRunner().invoke(main, ["verify", str(built), "--rate"])
    assert res.exit_code == 1 and "E_star" in res.output


def test_cli_solve_power_poly_and_errors():
    """`aqpgen solve power`: 2p table equals 2(n-1)/(K-1) (closed form), m > K-1 is refused."""
    import json
    from fractions import Fraction

    from click.testing import CliRunner

    from aqpgen.cli import main

    r = CliRunner().invoke(main, ["solve", "power", "--poly", "0,2", "--K", "5", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["exact_unbiased"] is True
    assert [Fraction(s) for s in out["values_exact"]] == [Fraction(2 * (n - 1), 4) for n in range(1, 6)]
    r = CliRunner().invoke(main, ["solve", "power", "--m", "3", "--K", "3"])
    assert r.exit_code != 0 and "no unbiased table exists for p^m with K samples" in r.output
    r = CliRunner().invoke(main, ["solve", "power", "--poly", "x,1", "--K", "3"])
    assert r.exit_code != 0 and "coeffs[0]" in r.output


def test_summary_compresses_unavailable_K_ranges():
    from aqpgen.cli.build_cmds import K_ranges

    grid = list(range(2, 257)) + [320, 384, 448, 512, 640, 768, 896, 1024]
    assert K_ranges(grid, list(range(140, 257)) + [320, 384, 1024]) == "140..384, 1024"
    assert K_ranges(grid, [5, 6, 9]) == "5, 6, 9"
    assert K_ranges(grid, [640, 768, 896, 1024]) == "640..1024"
    assert K_ranges(grid, []) == ""


def test_build_prints_one_line_per_table_and_every_K_with_v(tmp_path, fake_generator):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("hp = true", "bad = [3, 6]"))
    r = CliRunner()
    res = r.invoke(main, ["build", str(spec), "--out", str(tmp_path / "t"), "-q"])
    assert res.exit_code == 0
    lines = [ln for ln in res.output.splitlines() if ln.startswith("fake-a")]
    assert lines == [lines[0]] and "2 unavailable: K 3, 6 (out of reach (fake))" in lines[0]
    res = r.invoke(main, ["build", str(spec), "--out", str(tmp_path / "t"), "-v", "--force"])
    assert "fake-a K=3: out of reach (fake)" in res.output and "K=2 done" in res.output
