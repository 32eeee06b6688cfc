"""Tests of aqpgen.compare and the frontier/compare CLI (small K)."""

from __future__ import annotations

import json
import math

from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.compare import PRESETS, compare, to_json, to_markdown
from aqpgen.generators.peers import PEERS, peer_table
from aqpgen.numerics.metrics import variance_sup


def test_compare_dominance_small_K():
    rows = compare([4, 8], presets=("eta15", "rho1"))
    assert len(rows) == 2 * (len(PEERS) + 1 + 2)
    for r in rows:
        assert r.status == "ok", r
        assert r.beta <= r.beta_cert <= 1.01 * r.beta
    for r in rows:
        if r.kind == "peer" and r.estimator != "minimax":
            assert r.ratio > 1, r
            # the AQP point has the peer's V_inf: its bias must be below the peer's
            assert r.aqp_beta < r.beta
            assert math.isclose(r.V_inf, variance_sup(peer_table(r.estimator, r.K), r.K), rel_tol=1e-9)
    md = to_markdown(rows)
    assert md.startswith("| K | estimator |") and md.count("\n") == len(rows) + 2
    data = json.loads(to_json(rows))
    assert {d["estimator"] for d in data} >= set(PEERS) | {"minimax", "eta15", "rho1"}


def test_compare_rejects_bad_input():
    import pytest

    with pytest.raises(ValueError, match="K"):
        compare([1])
    with pytest.raises(ValueError, match="preset"):
        compare([4], presets=("eta99",))
    assert set(PRESETS) == {"eta3", "eta15", "rho1", "rho2", "rho4", "rho8"}


def test_cli_compare_and_frontier(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["compare", "--K", "4", "--markdown"])
    assert res.exit_code == 0, res.output
    assert "| 4 | plugin |" in res.output and "| 4 | rho2 |" in res.output
    bad = runner.invoke(main, ["compare", "--K", "1"])
    assert bad.exit_code != 0 and "K" in bad.output

    png1, png2 = tmp_path / "a.png", tmp_path / "b.png"
    res = runner.invoke(main, ["frontier", "--K", "8", "--eta", "1,7", "--json", "--plot", str(png1)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert [p["status"] for p in d["points"]] == ["ok", "ok"]
    assert {q["name"] for q in d["peers"]} == set(PEERS) | {"minimax"}
    runner.invoke(main, ["frontier", "--K", "8", "--eta", "1,7", "--plot", str(png2)])
    assert png1.read_bytes() == png2.read_bytes()  # deterministic figure
    res = runner.invoke(main, ["frontier", "--K", "8", "--rho", "1,2"])
    assert res.exit_code == 0 and "rho=1" in res.output
    bad = runner.invoke(main, ["frontier", "--K", "8", "--eta", "-1"])
    assert bad.exit_code != 0 and "eta" in bad.output
