"""Tests of the alignment-game simulator (aqpgen.game, `aqpgen simulate`, figures).

Oracles: closed forms (p* = softmax(R/tau); the K = 2 plug-in has a linear mean, whose KKT
system is solved here by sorting), exact rational Bernstein coefficients of a Chebyshev
polynomial, a second method (plain PG vs natural PG vs the direct Lagrange solve).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from aqpgen.game.dynamics import (
    exact_sweep,
    fixed_point_dynamics,
    fixed_point_solve,
    run_exact,
)
from aqpgen.game.estimators import ORACLE, ArrayEstimator, get_estimator
from aqpgen.game.meanfn import MeanFunction, mean_function
from aqpgen.game.sampled import run_sampled
from aqpgen.game.scenarios import SCENARIOS, get_scenario, tv_distance, tv_slope
from aqpgen.generators import remez
from aqpgen.records import KResult
from aqpgen.store import tablefile as tf
from aqpgen.store.content import make_table


def _plugin(Ks):
    return ArrayEstimator("plugin-local", {K: [math.log(n / K) for n in range(1, K + 1)] for K in Ks})


# ----------------------------------------------------------------------------- scenarios
def test_scenario_optima_closed_form():
    z = np.arange(1, 101, dtype=float)
    w = z ** -1.1
    assert np.allclose(SCENARIOS["zipf"].p_star, w / w.sum(), rtol=1e-13, atol=0)
    e = np.exp(np.array([1.0, 0.8, 0.5, 0.2, 0.0]) / 0.5)
    assert np.allclose(SCENARIOS["head"].p_star, e / e.sum(), rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="scenario"):
        get_scenario("tail")


@pytest.mark.parametrize("scenario", ["zipf", "head"])
def test_exact_log_oracle_reproduces_p_star(scenario):
    r = run_exact(scenario, ORACLE, 8)
    assert r.tv < 1e-14 and r.tv_dynamics < 1e-14
    assert r.agreement < 1e-14
    assert np.allclose(r.p, SCENARIOS[scenario].p_star, rtol=1e-12, atol=0)


def _linear_kkt(R, tau, a, b):
    """Fixed point for g(p) = a + b p (b > 0): p_z = max(0, (R_z - lam)/tau - a)/b, sum 1,
    solved by sorting (water filling)."""
    R = np.asarray(R, float)
    Rs = np.sort(R)[::-1]
    for m in range(len(R), 0, -1):
        lam = (Rs[:m].sum() / tau - m * a - b) * tau / m
        p = np.maximum(0.0, ((R - lam) / tau - a) / b)
        if np.all(((R - lam) / tau - a)[np.argsort(-R)[:m]] > 0):
            return p / p.sum()
    raise AssertionError


@pytest.mark.parametrize("scenario", ["zipf", "head"])
def test_K2_plugin_matches_linear_closed_form(scenario):
    # c_2 = (log 1/2, log 1) -> g(p) = log(1/2)(1 - p) = -log 2 + log 2 * p.
    sc = SCENARIOS[scenario]
    r = run_exact(scenario, _plugin([2]), 2)
    expect = _linear_kkt(sc.R, sc.tau, -math.log(2), math.log(2))
    assert tv_distance(r.p, expect) < 1e-10
    assert abs(r.tv - tv_distance(expect, sc.p_star)) < 1e-10


@pytest.mark.parametrize("scenario,K", [("head", 4), ("head", 32), ("zipf", 8), ("zipf", 16)])
def test_solver_agrees_with_dynamics(scenario, K):
    g = mean_function(_plugin([K]), K)
    assert g.monotone
    dyn = fixed_point_dynamics(scenario, g)
    sol = fixed_point_solve(scenario, g)
    assert tv_distance(dyn.p, sol.p) < 1e-9
    # the Lagrange system holds at the solve: live answers share lambda, dead ones are below it
    sc = SCENARIOS[scenario]
    F = sc.rewards - sc.tau * g(sol.p)
    live = sol.p > 1e-12
    assert np.abs(F[live] - sol.lam).max() < 1e-9
    assert np.all(sc.rewards[~live] - sc.tau * g.g0 <= sol.lam + 1e-9)


def test_plain_pg_reaches_the_same_fixed_point():
    g = mean_function(_plugin([32]), 32)
    pg = fixed_point_dynamics("head", g, method="pg", tol=1e-10)
    npg = fixed_point_dynamics("head", g, method="npg")
    assert tv_distance(pg.p, npg.p) < 1e-8
    with pytest.raises(ValueError, match="method"):
        fixed_point_dynamics("head", g, method="adam")


def test_plugin_tv_decreases_like_one_over_K():
    Ks = [32, 64, 128]
    est = _plugin(Ks)
    tv = [run_exact("head", est, K).tv for K in Ks]
    assert tv[0] > tv[1] > tv[2] > 0
    slope, used = tv_slope(Ks, tv)
    assert used == Ks
    assert -1.4 < slope < -0.8, slope  # measured: -1.19


# ----------------------------------------------------------------------------- accurate g_c
def _cheb_T_bernstein(n):
    """Exact Bernstein coefficients (degree n) of T_n(2p - 1)."""
    t0, t1 = [Fraction(1)], [Fraction(0), Fraction(1)]  # monomial coefficients in x
    for _ in range(n - 1):
        nxt = [Fraction(0)] + [2 * c for c in t1]
        for i, c in enumerate(t0):
            nxt[i] -= c
        t0, t1 = t1, nxt
    tx = t1 if n >= 1 else t0
    a = [Fraction(0)] * (n + 1)  # x = 2p - 1, coefficients in p
    for j, c in enumerate(tx):
        for i in range(j + 1):
            a[i] += c * math.comb(j, i) * 2 ** i * (-1) ** (j - i)
    return [sum(Fraction(math.comb(k, j), math.comb(n, j)) * a[j] for j in range(k + 1))
            for k in range(n + 1)]


def test_mean_function_exact_for_huge_alternating_table():
    n = 47
    vals = _cheb_T_bernstein(n)  # a table with K = n + 1 = 48; |c| ~ 1e13, alternating
    assert max(abs(v) for v in vals) > 1e10
    g = mean_function(ArrayEstimator("cheb", {n + 1: vals}), n + 1)
    p = np.linspace(0, 1, 1001)
    exact = np.cos(n * np.arccos(np.clip(2 * p - 1, -1, 1)))
    assert np.abs(g(p) - exact).max() < 1e-12
    # the naive float64 Bernstein sum is far off (why mean_function exists)
    from scipy.stats import binom
    naive = binom.pmf(np.arange(n + 1)[None, :], n, p[:, None]) @ np.array([float(v) for v in vals])
    assert np.abs(naive - exact).max() > 1e-6


def test_mean_function_matches_plugin_closed_form_small_K():
    K = 5
    g = mean_function(_plugin([K]), K)
    for p in (0.0, 0.13, 0.5, 0.97, 1.0):
        want = sum(math.comb(K - 1, m) * p ** m * (1 - p) ** (K - 1 - m) * math.log((m + 1) / K)
                   for m in range(K))
        assert abs(float(g(p)) - want) < 1e-14


def test_missing_K_is_named():
    est = _plugin([4, 8])
    with pytest.raises(ValueError, match="K=16"):
        run_exact("head", est, 16)


# ----------------------------------------------------------------------------- sampled runs
def test_sampled_runs_are_seed_deterministic():
    est = _plugin([8])
    a = run_sampled("head", est, 8, [0, 1, 2], steps=60)
    b = run_sampled("head", est, 8, [0, 1, 2], steps=60)
    c = run_sampled("head", est, 8, [2], steps=60)
    assert np.array_equal(a.tv, b.tv)
    assert np.array_equal(a.tv[2], c.tv[0])  # a seed's run does not depend on the others
    assert not np.array_equal(a.tv[0], a.tv[1])
    assert a.tv.shape == (3, len(a.steps)) and a.steps[0] == 0 and a.steps[-1] == 60


def test_sampled_oracle_and_plugin_reach_their_fixed_points():
    sc = "head"
    orc = run_sampled(sc, ORACLE, 8, range(4), steps=600)
    assert orc.final_mean < 1e-3  # unbiased for log p: at p* every reward is the same
    plug = run_sampled(sc, _plugin([8]), 8, range(4), steps=600)
    fixed = run_exact(sc, _plugin([8]), 8).tv
    assert abs(plug.final_mean - fixed) < 0.05  # noise floor at lr = 2, G*K = 32


def test_sampled_input_errors():
    with pytest.raises(ValueError, match="groups"):
        run_sampled("head", ORACLE, 8, [0], steps=5, groups=1)
    with pytest.raises(ValueError, match="init"):
        run_sampled("head", ORACLE, 8, [0], steps=5, init="random")


def test_slope_helper():
    s, used = tv_slope([4, 8, 16, 32, 64], [1 / 16, 1 / 64, 1 / 256, 1 / 1024, 1 / 4096])
    assert used == [16, 32, 64] and abs(s + 2) < 1e-12
    assert math.isnan(tv_slope([16, 32], [0.0, 0.0])[0])


# ----------------------------------------------------------------------------- minimax
def test_minimax_beats_plugin():
    K = 16
    g = MeanFunction(remez.remez(K).cheb_f64)
    sol = fixed_point_dynamics("head", g)
    tv_mm = tv_distance(sol.p, SCENARIOS["head"].p_star)
    tv_pl = run_exact("head", _plugin([K]), K).tv
    assert tv_mm < tv_pl / 10  # measured: 2.5e-3 vs 8.7e-2


# ----------------------------------------------------------------------------- tables via runtime
@pytest.fixture
def small_table_file(tmp_path):
    res = []
    for K in (4, 8):
        hp = tuple(str(Fraction(math.log(n / K)).limit_denominator(10 ** 15)) for n in range(1, K + 1))
        res.append(KResult(K, np.array([float(Fraction(s)) for s in hp]), hp, {}, "ok", {}))
    data = make_table(name="small", family="kl", target="log p", method="test", params={},
                         provenance={}, results=res)
    path = tmp_path / "small.h5"
    tf.write_table(path, data)
    return path


def test_table_estimator_through_runtime(small_table_file):
    est = get_estimator(str(small_table_file))
    assert est.Ks == (4, 8)
    assert isinstance(est.values_exact(8)[0], str)
    r = run_exact("head", est, 8)
    r0 = run_exact("head", _plugin([8]), 8)
    assert abs(r.tv - r0.tv) < 1e-12
    s = run_sampled("head", est, 8, [0], steps=5)
    assert s.tv.shape[0] == 1


# ----------------------------------------------------------------------------- CLI and figures
def _cli(args):
    from click.testing import CliRunner

    from aqpgen.cli import main
    return CliRunner().invoke(main, args)


def test_cli_json_shape():
    names = ["oracle-log", "plugin"]
    res = _cli(["simulate", "--scenario", "head", "--exact", "--K", "4,8,16,32",
                "--estimators", ",".join(names), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert list(out) == names
    for row in out.values():
        assert row["K"] == [4, 8, 16, 32] and len(row["tv"]) == 4
        assert set(row) >= {"K", "tv", "slope"}
    assert out["plugin"]["slope"] < -0.5


def test_cli_errors(small_table_file):
    res = _cli(["simulate", "--exact", "--K", "4,16", "--estimators", str(small_table_file)])
    assert res.exit_code != 0 and "K=16" in res.output
    res = _cli(["simulate", "--exact", "--K", "4", "--estimators", "no-such-table"])
    assert res.exit_code != 0 and "no-such-table" in res.output
    res = _cli(["simulate", "--K", "4,x"])
    assert res.exit_code != 0 and "integers" in res.output


def test_figures_are_deterministic(tmp_path):
    pytest.importorskip("matplotlib")
    from aqpgen.report import figures

    sweep = {"head": exact_sweep("head", [_plugin([4, 8, 16]), ORACLE], [4, 8, 16])}
    a = figures.plot_fixed_point_tv(sweep, tmp_path / "a.png").read_bytes()
    b = figures.plot_fixed_point_tv(sweep, tmp_path / "b.png").read_bytes()
    assert a == b and a[:8] == b"\x89PNG\r\n\x1a\n"
    res = {8: {"plugin-local": run_sampled("head", _plugin([8]), 8, [0, 1], steps=20)}}
    c = figures.plot_learning_curves(res, tmp_path / "c.png", title="head").read_bytes()
    d = figures.plot_learning_curves(res, tmp_path / "d.png", title="head").read_bytes()
    assert c == d


def test_cli_target_and_baseline():
    res = _cli(["simulate", "--scenario", "head", "--exact", "--K", "4,8", "--target", "p^0.5",
                "--estimators", "plugin,oracle", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert list(out) == ["plugin", "oracle-p^0.5"]
    assert out["plugin"]["tv"] == [run_exact("head", "plugin", K, target="p^0.5").tv
                                   for K in (4, 8)]
    res = _cli(["simulate", "--scenario", "head", "--exact", "--K", "8", "--baseline", "rloo",
                "--estimators", "plugin", "--json"])
    assert json.loads(res.output)["plugin"]["tv"] == [
        run_exact("head", "plugin", 8, baseline="rloo").tv]
    res = _cli(["simulate", "--scenario", "head", "--K", "8", "--seeds", "2", "--steps", "5",
                "--baseline", "group", "--scale", "batch", "--estimators", "plugin", "--json"])
    assert json.loads(res.output)["plugin"]["tv"] == [run_sampled(
        "head", "plugin", 8, [0, 1], steps=5, baseline="group", scale="batch").final_mean]
    for args, msg in ((["--target", "p^-2"], "> -1"), (["--scale", "group"], "--exact"),
                      (["--target", "p^0.5", "--estimators", "kl-aqp-rho1"], "p^0.5")):
        res = _cli(["simulate", "--exact", "--K", "8", *args])
        assert res.exit_code == 2 and msg in res.output, res.output
