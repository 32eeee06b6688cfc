"""`aqpgen compare` / `aqpgen frontier` with --target p^A (small K, independent oracles)."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from _kl_oracles import mp_pvar_max
from _power_oracles import mp_beta_power
from click.testing import CliRunner

from aqpgen import compare as C
from aqpgen.cli import main
from aqpgen.generators import minimax
from aqpgen.generators.peers import peer_names
from aqpgen.records import KResult

LOG_KEYS = {"K", "estimator", "kind", "beta", "beta_cert", "V_inf", "V1", "max_abs_c", "aqp_beta",
            "ratio", "status"}


def _plugin_oracle(K: int, a: float):
    """(β, V∞) of the exact plug-in (n/K)^a (entries to 40 digits): the shared mpmath oracles
    ``mp_beta_power`` and ``mp_pvar_max`` (grids refined by golden section; no aqpgen numerics)."""
    with mpmath.workdps(50):
        c = [mpmath.nstr((mpmath.mpf(n) / K) ** mpmath.mpf(a), 40) for n in range(1, K + 1)]
    return mp_beta_power(c, a), mp_pvar_max([Fraction(s) for s in c])


@pytest.fixture
def no_shipped_pow(monkeypatch, tmp_path):
    """Tables searched only in an empty directory first (the repository's tables/ may hold the
    shipped p^a files; the tests that need a file make their own)."""
    monkeypatch.setenv("AQPGEN_TABLES", str(tmp_path))
    return tmp_path


def test_peer_names_and_values():
    assert peer_names("log") == ("plugin", "digamma", "laplace", "jackknife", "grassberger")
    assert peer_names("p^0.5") == ("plugin", "laplace", "jackknife", "delta", "series")
    with mpmath.workdps(40):  # correctly rounded entries: 1/sqrt(n/5) from 40 digits
        want = [float(1 / mpmath.sqrt(mpmath.mpf(n) / 5)) for n in range(1, 6)]
    np.testing.assert_array_equal(C.peer_values("plugin", 5, "p^-0.5"), want)
    assert C.preset_table_name("rho1", "p^0.5") == "pow0.5-aqp-rho1"
    assert C.preset_table_name("rho1", "p^-0.5") == "pow-0.5-aqp-rho1"
    assert C.preset_table_name("rho1", "log") == "kl-aqp-rho1"


@pytest.mark.parametrize("a", [0.5, -0.5])
def test_compare_power_plugin_against_mpmath(a):
    K = 6
    rows = C.compare([K], target=f"p^{a}")
    by = {r.estimator: r for r in rows}
    assert list(by) == ["plugin", "laplace", "jackknife", "delta", "series", "minimax",
                        *C.power_presets(f"p^{a}")]
    assert C.power_presets(f"p^{a}")[0] == "rho1"
    beta, vinf = _plugin_oracle(K, a)
    # β is the metrics' sampled lower bound (measured 1.5e-4 below the true sup at a = 0.5, K = 6),
    # β̄ a rigorous upper bound within 1%
    assert by["plugin"].beta <= beta * (1 + 1e-12)
    assert by["plugin"].beta == pytest.approx(beta, rel=1e-3)
    assert beta <= by["plugin"].beta_cert <= 1.01 * beta
    assert by["plugin"].V_inf == pytest.approx(vinf, rel=1e-7)
    # the minimax row is the target's E*_K; the rho1 preset keeps V∞ <= V∞(plug-in) with smaller β
    assert by["minimax"].beta == pytest.approx(minimax.E_star(K, target=f"p^{a}"), rel=1e-6)
    assert by["rho1"].V_inf <= by["plugin"].V_inf * (1 + 1e-9)
    assert by["rho1"].beta < by["plugin"].beta
    for name in peer_names(f"p^{a}"):  # the AQP β at the peer's V∞ never exceeds the peer's
        r = by[name]
        assert r.status == "ok" and r.aqp_beta <= r.beta_cert and r.ratio > 1 - 1e-3


def test_compare_reads_the_shipped_preset_rows(no_shipped_pow):
    """A file named pow0.5-aqp-rho1 in the search path is read, not solved: here it holds the
    plug-in table, so the rho1 row must reproduce the plug-in row's numbers."""
    from aqpgen.store.content import make_table
    from aqpgen.store.tablefile import write_table

    Ks = (4, 5)
    res = [KResult(K=K, values=C.peer_values("plugin", K, "p^0.5"), values_hp=None,
                   metrics={"beta": 0.0}, status="ok", solver={}) for K in Ks]
    write_table(no_shipped_pow / "pow0.5-aqp-rho1.h5", make_table(
        name="pow0.5-aqp-rho1", family="pow", target="p^0.5", method="aqp",
        params={"target": "p^0.5", "rho": 1.0}, provenance={"command": "test"}, results=res))
    rows = C.compare([5], target="p^0.5")
    by = {r.estimator: r for r in rows}
    assert by["rho1"].beta == by["plugin"].beta and by["rho1"].V_inf == by["plugin"].V_inf


def test_cli_compare_target_json_keys_and_log_unchanged(no_shipped_pow):
    r = CliRunner().invoke(main, ["compare", "--K", "4", "--target", "p^-0.5", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {tuple(sorted(d)) for d in rows} == {tuple(sorted(LOG_KEYS))}
    assert [d["estimator"] for d in rows] == list(peer_names("p^-0.5")) + ["minimax", "rho1", "rho8",
                                                                              "rho16"]
    r = CliRunner().invoke(main, ["compare", "--K", "4", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {tuple(sorted(d)) for d in rows} == {tuple(sorted(LOG_KEYS))}
    assert [d["estimator"] for d in rows][:5] == ["plugin", "digamma", "laplace", "jackknife", "grassberger"]


@pytest.mark.parametrize("cmd", [["compare", "--K", "4"], ["frontier", "--K", "4"]])
@pytest.mark.parametrize("bad", ["p^-1", "p^-2", "p^x", "q^2"])
def test_bad_target_exits_2(cmd, bad):
    r = CliRunner().invoke(main, [*cmd, "--target", bad])
    assert r.exit_code == 2 and "--target" in r.output and bad in r.output


def test_cli_frontier_target_rho1_below_plugin(no_shipped_pow):
    K = 8
    r = CliRunner().invoke(main, ["frontier", "--K", str(K), "--target", "p^0.5", "--rho", "1,2",
                                  "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["target"] == "p^0.5" and d["E_star"] == pytest.approx(minimax.E_star(K, target="p^0.5"))
    beta_pl, vinf_pl = _plugin_oracle(K, 0.5)
    pts = {p["label"]: p for p in d["points"]}
    assert pts["rho=1"]["status"] == "ok"
    assert pts["rho=1"]["V_inf"] <= vinf_pl * (1 + 1e-9)
    assert pts["rho=1"]["beta_cert"] < beta_pl
    assert pts["rho=2"]["beta_cert"] < pts["rho=1"]["beta_cert"]  # more variance, less bias
    assert [q["name"] for q in d["peers"]] == list(peer_names("p^0.5")) + ["minimax"]
    plug = d["peers"][0]
    assert plug["beta"] == pytest.approx(beta_pl, rel=1e-3) and beta_pl <= plug["beta_cert"] <= 1.01 * beta_pl
    assert plug["V_inf"] == pytest.approx(vinf_pl, rel=1e-7)
    # log p: the JSON keys of before (no "target")
    r = CliRunner().invoke(main, ["frontier", "--K", "4", "--rho", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.output)) == {"K", "E_star", "objective", "points", "peers"}
    assert math.isfinite(json.loads(r.output)["E_star"])
