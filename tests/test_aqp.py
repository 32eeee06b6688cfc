"""Tests of aqpgen.aqp against independent oracles (mpmath, sympy, peers, closed forms)."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from aqpgen.errors import InfeasibleError
from aqpgen.generators import aqp, aqp_eval
from aqpgen.generators.minimax import E_star
from aqpgen.generators.peers import PEERS, peer_table
from aqpgen.numerics.metrics import variance_sup


def _mp_bias_max(values, n_points=1500, dps=40):
    """max_p p|sum_m c_{m+1} b_{K-1,m}(p) - log p| at many p (theta grid + dense near 0), mpmath."""
    K = len(values)
    with mp.workdps(dps):
        c = [mp.mpf(float(v)) for v in values]
        ps = [mp.sin(mp.pi * j / (2 * n_points)) ** 2 for j in range(1, n_points + 1)]
        ps += [mp.mpf(j) / (50 * K * K) for j in range(1, 200)]
        best = mp.mpf(0)
        for p in ps:
            g = mp.fsum(c[m] * mp.binomial(K - 1, m) * p**m * (1 - p) ** (K - 1 - m) for m in range(K))
            best = max(best, abs(p * (g - mp.log(p))))
        return float(best)


def _solved_eta(K, eta):
    """(result, budget) of solve_eta, asserting the solve was accepted."""
    Es = E_star(K)
    r = aqp.solve_eta(K, eta, E_star=Es)
    assert r.status == "ok", r.status
    return r, (1 + eta) * Es


@pytest.fixture(autouse=True)
def _reset_mp():
    dps = mp.mp.dps
    yield
    mp.mp.dps = dps


def test_eta_budget_met_in_high_precision():
    r, budget = _solved_eta(12, 3.0)
    assert r.beta_cert <= budget
    measured = _mp_bias_max(r.values)
    assert measured <= budget
    assert measured <= r.beta_cert * (1 + 1e-12)
    # the budget is (nearly) active: the optimum uses the bias it is allowed
    assert measured >= 0.99 * budget


def test_vinf_not_above_any_feasible_peer():
    K = 4
    r, budget = _solved_eta(K, 15.0)
    n_feasible = 0
    for name in PEERS:
        c = peer_table(name, K)
        if _mp_bias_max(c, n_points=600) <= budget:
            n_feasible += 1
            assert r.V_inf <= variance_sup(c, K) * (1 + 1e-6), name
    assert n_feasible >= 1


def test_rho1_beats_plugin():
    K = 16
    r = aqp.solve_rho(K, 1.0)
    assert r.status == "ok", r.status
    pl = peer_table("plugin", K)
    assert r.beta_cert < _mp_bias_max(pl, n_points=600)
    assert variance_sup(r.values, K) <= variance_sup(pl, K) * (1 + 1e-12)
    assert r.V_inf <= r.V_inf_plugin


def test_large_eta_tends_to_constant_table():
    # budget 1e4*E*_8 ~ 50 > sup p|log p| = 1/e: a constant table (V = 0) is feasible
    K = 8
    Es = E_star(K)
    vs = [aqp.solve_eta(K, eta, E_star=Es).V_inf for eta in (1.0, 7.0, 31.0)]
    assert vs[0] >= vs[1] >= vs[2] > 0
    big = aqp.solve_eta(K, 1e4, E_star=Es)
    assert big.status == "ok"
    assert big.V_inf < 1e-6
    assert np.ptp(big.values) < 1e-2


def test_v1_matrix_matches_sympy():
    import sympy as sp

    p = sp.symbols("p")
    for K, cs in [(2, ["1", "-3"]), (3, ["-2", "1/2", "5"]), (4, ["0", "1", "-1", "3/7"])]:
        c = [sp.Rational(x) for x in cs]
        b = [sp.binomial(K - 1, m) * p**m * (1 - p) ** (K - 1 - m) for m in range(K)]
        g = sum(ci * bi for ci, bi in zip(c, b))
        var = sum(bi * ci**2 for ci, bi in zip(c, b)) - g**2
        exact = sp.integrate(p * var, (p, 0, 1))
        cf = np.array([float(Fraction(x)) for x in cs])
        M = aqp_eval.v1_matrix(K)
        assert cf @ M @ cf == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
        assert aqp_eval.evaluate(cf)["V1"] == pytest.approx(float(exact), rel=1e-12, abs=1e-15)


def test_v1_matrix_psd_constant_kernel():
    M = aqp_eval.v1_matrix(10)
    assert np.allclose(M @ np.ones(10), 0, atol=1e-15)
    assert np.linalg.eigvalsh(M).min() > -1e-15


def test_v1_objective_minimises_v1():
    K, eta = 8, 3.0
    Es = E_star(K)
    r1 = aqp.solve_eta(K, eta, "V1", E_star=Es)
    ri = aqp.solve_eta(K, eta, "Vinf", E_star=Es)
    assert r1.status == ri.status == "ok"
    assert r1.V1 <= ri.V1 * (1 + 1e-6)
    assert ri.V_inf <= r1.V_inf * (1 + 1e-6)


def test_bad_inputs():
    with pytest.raises(InfeasibleError, match="eta"):
        aqp.solve_eta(8, -0.5, E_star=E_star(8))
    with pytest.raises(InfeasibleError, match="rho"):
        aqp.solve_rho(8, 0.0)
    with pytest.raises(ValueError, match="objective"):
        aqp.solve_eta(8, 1.0, "V2")
    with pytest.raises(ValueError, match="K"):
        aqp.solve_eta(1, 1.0)
    r = aqp.solve_eta(8, 0.0, E_star=E_star(8))
    assert r.status.startswith("infeasible") and math.isnan(r.beta)


def test_generator_interface_and_verify_row():
    K = 6
    kr = aqp.build_K(K, {"eta": 3, "objective": "Vinf"}, inputs={"E_star": E_star(K)})
    assert kr.status == "ok"
    for key in ("E_star", "beta", "beta_cert", "V_inf", "V1", "max_abs_c", "eta_budget",
                "eta_achieved", "iterations"):
        assert key in kr.metrics
    assert kr.metrics["beta_cert"] <= kr.metrics["eta_budget"]
    assert kr.solver["status"] == "optimal"
    checks = aqp.verify_row(K, kr.values, None, kr.metrics, {"eta": 3, "objective": "Vinf"})
    assert checks and all(c.ok for c in checks), checks
    bad = kr.values.copy()
    bad[0] += 0.05
    assert not all(c.ok for c in aqp.verify_row(K, bad, None, kr.metrics, {"eta": 3}))
    kr2 = aqp.build_K(K, {"rho": 1})
    assert kr2.status == "ok" and kr2.metrics["rho_achieved"] <= 1.0
    assert all(c.ok for c in aqp.verify_row(K, kr2.values, None, kr2.metrics, {"rho": 1}))
    assert aqp.target_name({"rho": 2}) == "log p"
    with pytest.raises(ValueError, match="params"):
        aqp.build_K(K, {"eta": 1, "rho": 1})


def test_frontier_monotone():
    K = 8
    res = aqp.frontier(K, etas=[1.0, 7.0])
    assert [r.status for r in res] == ["ok", "ok"]
    assert res[0].beta_cert <= res[0].budget and res[1].beta_cert <= res[1].budget
    assert res[0].V_inf >= res[1].V_inf
    with pytest.raises(ValueError):
        aqp.frontier(K, etas=[1.0], rhos=[1.0])


def test_target_param():
    assert aqp.target_name({"rho": 1}) == "log p"
    assert aqp.target_name({"rho": 1, "target": "p^0.5"}) == "p^0.5"
    assert aqp.target_name({"eta": 3, "objective": "V1", "target": "log"}) == "log p"
    with pytest.raises(ValueError, match="target"):
        aqp.target_name({"rho": 1, "target": "sqrt"})


def test_rho_program_for_another_target_without_touching_the_solver():
    # p^0.5: the same exchange, certificate and verification as for log p
    r = aqp.build_K(6, {"rho": 1, "target": "p^0.5"})
    assert r.status == "ok"
    assert r.metrics["V_inf"] <= r.metrics["rho_budget"]
    assert all(c.ok for c in aqp.verify_row(6, r.values, None, r.metrics, {"rho": 1, "target": "p^0.5"}))
