"""Tests of aqpgen.certify against independent oracles (mpmath Bernstein sampling, closed forms)."""

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from _kl_oracles import interp_table, mp_beta, mp_golden_max, reset_precision  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from aqpgen.generators.peers import peer_table
from aqpgen.numerics.certify import H3_CONST, Certificate, certify_beta


def _fr(v):
    return [Fraction(float(x)) for x in v]


@pytest.mark.parametrize("name", ["plugin", "digamma", "laplace", "jackknife", "grassberger"])
@pytest.mark.parametrize("K", [2, 7, 20])
def test_peer_certificate_brackets_mpmath_max(name, K):
    v = peer_table(name, K)
    cert = certify_beta(K, v)
    oracle = mp_beta(_fr(v), n=30 * (K + 1), dps=30)
    assert isinstance(cert, Certificate) and cert.converged
    assert cert.beta_upper >= oracle
    assert cert.beta_upper <= 1.01 * oracle
    assert cert.beta_upper <= 1.0031 * cert.beta_lower
    assert cert.beta_lower <= oracle * (1 + 1e-9)


def test_K1_closed_form_lambert():
    # c = [-W(1/e)]: p(c - log p) equioscillates at p = 1 and p = e^{-w-1} with value w = W(1/e)
    with mp.workdps(50):
        w = mp.lambertw(mp.exp(-1)).real
        s = mp.nstr(-w, 45)
    cert = certify_beta(1, values_hp=[s])
    wf = float(w)
    assert cert.beta_upper >= wf * (1 - 1e-15)
    assert cert.beta_upper <= 1.003 * wf and cert.beta_lower <= wf * (1 + 1e-12)


def test_digamma_bias_closed_form_max():
    # bias of digamma: p sum_{j>=K} (1-p)^j / j (>= 0); maximise the closed form in mpmath
    K = 30
    cert = certify_beta(K, peer_table("digamma", K))
    with mp.workdps(30):
        # sum_{j>=K} (1-p)^j/j = -log p - sum_{j<K} (1-p)^j/j
        f = lambda p: p * (-mp.log(p) - mp.fsum((1 - p) ** j / j for j in range(1, K)))
        ps = [mp.mpf(i) / 2000 for i in range(1, 2000)]
        vals = [f(p) for p in ps]
        i = max(range(len(vals)), key=lambda k: vals[k])
        best = float(mp_golden_max(f, ps[i - 1], ps[i + 1], 80))
    # the float table differs from the exact one by ~1e-16 relative
    assert cert.beta_lower <= best * (1 + 1e-12) <= cert.beta_upper * (1 + 1e-12)
    assert cert.beta_upper <= 1.003 * best


def test_hp_huge_table_brackets_mpmath():
    K = 40
    c = interp_table(K)
    assert max(abs(x) for x in c) > 1e6  # kind (b)
    strs = [f"{x.numerator}/{x.denominator}" for x in c]
    cert = certify_beta(K, values_hp=strs)
    oracle = mp_beta(c, n=30 * (K + 1), dps=60)
    assert oracle <= cert.beta_upper <= 1.01 * oracle
    # the float64-rounded table is certified separately and is worse
    vf = np.array([float(x) for x in c])
    cf = certify_beta(K, vf)
    oracle_f = mp_beta(_fr(vf), n=30 * (K + 1), dps=60)
    assert oracle_f <= cf.beta_upper <= 1.01 * oracle_f


@settings(max_examples=12, deadline=None)
@given(K=st.integers(2, 9), seed=st.integers(0, 10**6))
def test_random_tables_never_below_sup(K, seed):
    rng = np.random.default_rng(seed)
    v = np.log(np.arange(1, K + 1) / K) + rng.normal(scale=0.3, size=K)
    cert = certify_beta(K, v)
    oracle = mp_beta(_fr(v), n=20 * (K + 1), dps=30)
    assert cert.beta_upper >= oracle
    assert cert.beta_upper <= 1.01 * oracle


def test_H3_bound_numerically():
    # |H'''(theta)| <= H3_CONST + cot(theta/2)/2 for H = p log p, p = sin^2(theta/2)
    with mp.workdps(30):
        H = lambda t: mp.sin(t / 2) ** 2 * mp.log(mp.sin(t / 2) ** 2)
        for t in np.concatenate([np.geomspace(1e-4, 0.1, 25), np.linspace(0.1, math.pi, 60)]):
            d3 = abs(mp.diff(H, mp.mpf(t), 3))
            assert d3 <= H3_CONST + mp.cot(mp.mpf(t) / 2) / 2


def test_errors():
    with pytest.raises(ValueError, match="K = 3 entries"):
        certify_beta(3, [0.0, 1.0])
    with pytest.raises(ValueError, match="neither"):
        certify_beta(3)
    with pytest.raises(ValueError, match="rel_slack"):
        certify_beta(2, [0.0, 0.0], rel_slack=0)


def test_target_without_certificate_pieces_says_which_method():
    from aqpgen.targets import PowerTarget, Target

    half = PowerTarget(0.5)

    class Bare(Target):  # a new target that implements only the evaluations, no certificate pieces
        name, spec, rate_exponent = "bare", "bare", 3.0
        g, g_theta, g_mp, g_arb, plugin = (staticmethod(half.g), staticmethod(half.g_theta),
                                           staticmethod(half.g_mp), staticmethod(half.g_arb),
                                           staticmethod(half.plugin))

    with pytest.raises(NotImplementedError, match="h_theta_bounds"):
        certify_beta(4, half.plugin(4), target=Bare())


def test_refinement_that_cannot_converge_stops_at_max_points():
    """rel_slack below the rounding floor (~1e-16 relative) cannot be met: every round would double
    the cells above the goal.  The cell cap stops it; the bound stays rigorous (encloses the
    mpmath maximum of the Bernstein form) and says it did not converge."""
    K = 8
    c = peer_table("plugin", K)
    oracle = mp_beta(_fr(c), dps=30)
    cert = certify_beta(K, c, rel_slack=1e-15, max_points=4000)
    assert not cert.converged and "not converged" in cert.status
    assert cert.n_points <= 4000
    assert cert.beta_lower <= oracle * (1 + 1e-12) and oracle <= cert.beta_upper <= oracle * (1 + 1e-6)
    with pytest.raises(ValueError, match="max_points"):
        certify_beta(K, c, max_points=0)
