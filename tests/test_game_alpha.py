"""Tests of the alpha-game (aqpgen.game.alpha and the simulator with p^a tables).

Oracles: closed forms for two answers (alpha = 1.5 and 2), an independent 1-D root find for
alpha = 0.5, a convex solver (cvxpy, in the test only) for the full scenarios, water filling for
the K = 2 plug-in (linear mean), a minimax table solved here by a linear program and its fixed
point checked against a direct float64 Bernstein evaluation of the Lagrange system.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom

from aqpgen.game.alpha import alpha_optimum, game_alpha, game_target, kkt_residual, phi_prime, reward_affine
from aqpgen.game.dynamics import run_exact
from aqpgen.game.estimators import ArrayEstimator, available_estimators, get_estimator
from aqpgen.game.sampled import run_sampled
from aqpgen.game.scenarios import SCENARIOS, get_scenario, tv_distance
from aqpgen.store import content, tablefile
from aqpgen.targets import LOG, PowerTarget


# ----------------------------------------------------------------------------- the optimum
def _two_answers(R1, R2, tau, alpha):
    """p_1 of the two-answer alpha-game, by hand."""
    if alpha == 1.5:  # 2 sqrt(p) - 4/3: sqrt(p1) - sqrt(p2) = d, p1 + p2 = 1
        d = (R1 - R2) / (2 * tau)
        return 1.0 if d >= 1 else ((d + math.sqrt(2 - d * d)) / 2) ** 2
    if alpha == 2.0:  # p - 1/2: p1 - p2 = (R1 - R2)/tau
        return min(1.0, max(0.0, (1 + (R1 - R2) / tau) / 2))
    if alpha == 0.5:  # 4 - 2/sqrt(p): R1 + 2 tau / sqrt(p1) = R2 + 2 tau / sqrt(1 - p1)
        f = lambda x: R1 - R2 + 2 * tau * (1 / math.sqrt(x) - 1 / math.sqrt(1 - x))
        return brentq(f, 1e-300, 1 - 1e-16, xtol=1e-300, rtol=1e-15)
    raise ValueError(alpha)


@pytest.mark.parametrize("alpha", [0.5, 1.5, 2.0])
@pytest.mark.parametrize("R1,R2,tau", [(1.0, 0.8, 0.5), (1.0, 0.0, 0.5), (0.3, 0.2, 2.0),
                                       (2.0, 0.0, 0.5)])
def test_optimum_two_answers_closed_form(alpha, R1, R2, tau):
    p = alpha_optimum([R1, R2], tau, alpha)
    want = _two_answers(R1, R2, tau, alpha)
    assert abs(p[0] - want) < 1e-14 and abs(p.sum() - 1) < 1e-15
    assert kkt_residual(p, [R1, R2], tau, alpha) < 1e-12


def test_sparse_and_interior_regimes():
    # R1 - R2 = 1 = 2 tau: d = 1, the second answer just dies for alpha = 1.5
    assert np.array_equal(alpha_optimum([1.0, -0.5], 0.5, 1.5), [1.0, 0.0])
    p = alpha_optimum([1.0, -0.5], 0.5, 0.5)
    assert 0 < p[1] < p[0] < 1


@pytest.mark.parametrize("scenario", ["zipf", "head"])
@pytest.mark.parametrize("alpha", [0.5, 1.5])
def test_optimum_matches_convex_solver(scenario, alpha):
    cp = pytest.importorskip("cvxpy")
    sc = get_scenario(scenario)
    R, tau = sc.rewards, sc.tau
    x = cp.Variable(sc.S, nonneg=True)
    if alpha == 0.5:  # phi = 4p - 4 sqrt(p)
        obj = R @ x + 4 * tau * cp.sum(cp.sqrt(x))
    else:  # phi = (p^1.5 - p) / 0.75
        obj = R @ x - tau / 0.75 * cp.sum(cp.power(x, 1.5))
    cp.Problem(cp.Maximize(obj), [cp.sum(x) == 1]).solve(solver="CLARABEL")
    p = sc.optimum(alpha)
    phi = (p ** alpha - p) / (alpha * (alpha - 1))
    xv = np.maximum(x.value, 0) / np.maximum(x.value, 0).sum()
    phix = (xv ** alpha - xv) / (alpha * (alpha - 1))
    # ours is at least as good as the solver's point, and close to it (solver accuracy ~1e-5)
    assert R @ p - tau * phi.sum() >= R @ xv - tau * phix.sum() - 1e-12
    assert np.abs(p - x.value).max() < 5e-5
    assert kkt_residual(p, R, tau, alpha) < 1e-12
    assert kkt_residual(x.value, R, tau, alpha) > kkt_residual(p, R, tau, alpha)
    if alpha == 1.5:
        assert (p == 0).sum() > 0  # sparse (zipf: 4 live answers, head: 3)


def test_phi_prime_and_affine_map():
    p = np.array([0.01, 0.2, 0.7, 1.0])
    for alpha in (0.5, 1.5, 3.0):
        direct = (alpha * p ** (alpha - 1) - 1) / (alpha * (alpha - 1))
        assert np.allclose(phi_prime(p, alpha), direct, rtol=1e-14, atol=1e-15)
    assert reward_affine(1.0) == (1.0, 0.0)
    assert np.allclose(reward_affine(1.5), (2.0, -4 / 3), rtol=1e-15)
    assert np.allclose(reward_affine(0.5), (-2.0, 4.0), rtol=1e-15)
    assert game_alpha("p^0.5") == 1.5 and game_alpha("log") == 1.0
    assert game_target(0.5) == PowerTarget(-0.5) and game_target(1) == LOG
    with pytest.raises(ValueError, match="alpha"):
        alpha_optimum([1.0, 0.0], 0.5, -1.0)
    with pytest.raises(ValueError, match="tau"):
        alpha_optimum([1.0, 0.0], 0.0, 0.5)
    with pytest.raises(ValueError, match="p\\^0"):
        game_alpha("p^0")


# ----------------------------------------------------------------------------- exact dynamics
@pytest.mark.parametrize("target", ["p^0.5", "p^-0.5"])
@pytest.mark.parametrize("scenario", ["zipf", "head"])
def test_exact_oracle_reproduces_optimum(scenario, target):
    r = run_exact(scenario, "oracle", 8, target=target)
    assert r.tv < 1e-12 and r.tv_dynamics < 1e-9 and r.agreement < 1e-9
    assert r.estimator == f"oracle-{target}" and r.alpha == PowerTarget(target[2:]).a + 1


def _water_filling(R, tau, a, b):
    """Fixed point for psi(p) = a + b p (b > 0), solved by sorting."""
    R = np.asarray(R, float)
    order = np.argsort(-R)
    for m in range(len(R), 0, -1):
        lam = (R[order[:m]].sum() / tau - m * a - b) * tau / m
        if np.all(((R - lam) / tau - a)[order[:m]] > 0):
            p = np.maximum(0.0, ((R - lam) / tau - a) / b)
            return p / p.sum()
    raise AssertionError


@pytest.mark.parametrize("a", [0.5, -0.5])
@pytest.mark.parametrize("scenario", ["zipf", "head"])
def test_K2_power_plugin_matches_water_filling(scenario, a):
    # c_2 = (2^-a, 1): g(p) = 2^-a (1 - p) + p; psi = A g + B is linear with slope A (1 - 2^-a) > 0
    sc = get_scenario(scenario)
    A, B = reward_affine(a + 1)
    c1 = 2.0 ** -a
    expect = _water_filling(sc.R, sc.tau, A * c1 + B, A * (1 - c1))
    r = run_exact(scenario, "plugin", 2, target=f"p^{a}")
    assert tv_distance(r.p, expect) < 1e-10
    assert abs(r.tv - tv_distance(expect, sc.optimum(a + 1))) < 1e-10


def _lp_minimax(K, a, M=3000):
    """A (near-)minimax table for p^a by a linear program on a sin^2 grid (test-only oracle)."""
    cp = pytest.importorskip("cvxpy")
    p = np.sin(np.linspace(0, np.pi / 2, M)) ** 2
    Bm = binom.pmf(np.arange(K)[None, :], K - 1, p[:, None])
    c, t = cp.Variable(K), cp.Variable()
    err = cp.multiply(p, Bm @ c) - p ** (a + 1)
    cp.Problem(cp.Minimize(t), [err <= t, -err <= t]).solve(solver="CLARABEL")
    return [float(v) for v in c.value], float(t.value)


@pytest.mark.parametrize("a", [0.5, -0.5])
def test_small_minimax_table_fixed_point(a):
    K = 6 if a > 0 else 4
    vals, _E = _lp_minimax(K, a)
    est = ArrayEstimator("lp-minimax", {K: vals}, target=f"p^{a}")
    assert est.alpha == a + 1
    sc = get_scenario("head")
    r = run_exact(sc, est, K)
    # Lagrange system with psi evaluated by a direct float64 Bernstein sum (K small: no cancellation)
    A, B = reward_affine(a + 1)
    psi = A * (binom.pmf(np.arange(K)[None, :], K - 1, r.p[:, None]) @ np.array(vals)) + B
    F = sc.rewards - sc.tau * psi
    live = r.p > 1e-12
    assert np.abs(F[live] - r.lam).max() < 1e-9
    plug = run_exact(sc, "plugin", K, target=f"p^{a}")
    # measured: a = 0.5, K = 6: 2.0e-3 vs 7.8e-2; a = -0.5, K = 4: 3.5e-2 vs 3.4e-1
    assert r.tv < plug.tv / 5


def test_power_table_file_through_runtime(tmp_path):
    from aqpgen.records import KResult

    res = []
    for K in (4, 8):
        hp = tuple(str(Fraction(n, K) ** 1) for n in range(1, K + 1))  # p^1 plug-in: exact
        res.append(KResult(K, np.array([float(Fraction(s)) for s in hp]), hp, {}, "ok", {}))
    data = content.make_table(name="lin", family="power", target="p^1", method="test",
                                params={}, provenance={}, results=res)
    path = tmp_path / "lin.h5"
    tablefile.write_table(path, data)
    est = get_estimator(str(path))
    assert est.target == PowerTarget(1) and est.alpha == 2.0
    with pytest.raises(ValueError, match="estimates 'p\\^1'"):
        get_estimator(str(path), "log")
    r = run_exact("head", est, 8)
    # (n/K) has mean (1 + (K-1) p)/K; alpha = 2: psi = g - 1/2 is linear
    expect = _water_filling(SCENARIOS["head"].R, 0.5, 1 / 8 - 0.5, 7 / 8)
    assert tv_distance(r.p, expect) < 1e-10
    s = run_sampled("head", est, 8, [0, 1], steps=5)
    assert s.alpha == 2.0 and s.tv.shape == (2, 6)


def test_estimator_target_errors():
    with pytest.raises(ValueError, match="not a peer of 'p\\^0.5'"):
        get_estimator("digamma", "p^0.5")
    with pytest.raises(ValueError, match="not a peer of 'log'"):
        get_estimator("series")
    with pytest.raises(ValueError, match="oracle of 'p\\^0.5'"):
        get_estimator("oracle-p^0.5", "log")
    assert get_estimator("plugin", "p^0.5").values(4)[0] == 0.5
    assert available_estimators("p^0.25")[:5] == ["plugin", "laplace", "jackknife", "delta",
                                                     "series"]
    # the series peer of an integer power is the exact U-statistic: the fixed point is the optimum
    assert run_exact("head", "series", 6, target="p^2").tv < 1e-12
    assert run_exact("head", "plugin", 6, target="p^2").tv > 1e-2


# ----------------------------------------------------------------------------- sampled
def test_sampled_alpha_game_oracle_and_plugin():
    orc = run_sampled("head", "oracle", 8, range(3), steps=300, target="p^-0.5")
    assert orc.final_mean < 1e-10  # uniform start; exact rewards: every live answer levels fast
    plug = run_sampled("head", "plugin", 8, range(4), steps=600, target="p^0.5")
    fixed = run_exact("head", "plugin", 8, target="p^0.5").tv
    assert abs(plug.final_mean - fixed) < 0.03  # measured: 0.076 vs 0.074
