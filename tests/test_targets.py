"""Targets (aqpgen.targets): parsing, evaluations and the certificate hooks against mpmath.

Oracles: mpmath numerical differentiation (``mp.diff``) of H(theta) = h(sin^2(theta/2)) at 40
digits -- independent of the closed-form derivatives coded in the targets -- and dense grids for
the suprema.  The hooks must bound the float64 rounding error (eta), sup |H'''| on [lo, pi], and
sup_{p <= p0} |h(p)| from above, for a in {-0.9, -0.75, -0.5, -0.25, 0.25, 0.5, 1.5, 2} and for
log p.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

from aqpgen.targets import LOG, LogTarget, PowerTarget, alpha_reward, parse_target

EXPONENTS = ["-0.9", "-0.75", "-0.5", "-0.25", "0.25", "0.5", "1.5", "2"]
TARGETS = [PowerTarget(a) for a in EXPONENTS] + [LOG]


def _H_mp(target):
    """theta -> h(sin^2(theta/2)) in mpmath (from the target's exact definition)."""
    if target is LOG:
        return lambda th: mp.sin(th / 2) ** 2 * mp.log(mp.sin(th / 2) ** 2)
    b = mp.mpf(target.a_exact.numerator) / target.a_exact.denominator + 1
    return lambda th: mp.sin(th / 2) ** (2 * b)


# theta grid: geometric near 0 (the singular end), uniform elsewhere, pi included
THETA = np.concatenate([np.geomspace(1e-7, 1e-2, 40), np.linspace(1e-2, math.pi, 160)])


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.spec)
def test_h_theta_bounds_against_mpmath(target):
    H = _H_mp(target)
    H0, H1, H2, eta = target.h_theta_bounds(THETA)
    assert np.all(np.isfinite(eta)) and np.all(eta > 0)
    worst = 0.0
    with mp.workdps(40):
        for i, t in enumerate(THETA):
            tm = mp.mpf(float(t))
            for k, val in enumerate((H0[i], H1[i], H2[i])):
                exact = mp.diff(H, tm, k)
                err = abs(mp.mpf(float(val)) - exact)
                assert err <= eta[i], (target.spec, float(t), k, float(err), float(eta[i]))
                worst = max(worst, float(err / eta[i]))
    # the bound is not absurdly loose either (it is a rounding bound: within ~10^4 of the error)
    assert worst > 1e-5


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.spec)
@pytest.mark.parametrize("lo", [1e-4, 1e-2, 0.3, 1.0, 2.5, 3.1])
def test_h3_bound_dominates_third_derivative(target, lo):
    H = _H_mp(target)
    B = float(target.h3_bound(lo))
    grid = np.linspace(lo, math.pi, 120)
    with mp.workdps(30):
        m = max(abs(mp.diff(H, mp.mpf(float(t)), 3)) for t in grid)
    assert m <= B
    # for a < 0 the bound is tight at the singular end (the sup is attained at lo there)
    if target is not LOG and target.a < 0 and lo <= 1e-2:
        assert m >= 0.99 * B


def test_h3_bound_vectorised():
    T = PowerTarget("0.5")
    lo = np.array([0.1, 1.0, 3.0])
    assert np.allclose(T.h3_bound(lo), [float(T.h3_bound(x)) for x in lo], rtol=1e-15, atol=0)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.spec)
@pytest.mark.parametrize("p0", [1e-300, 1e-12, 1e-5, 0.01, 0.2, 0.36787944117144233, 0.5, 1.0])
def test_first_cell_bound(target, p0):
    """sup_{0 < p <= p0} |h(p)| <= p0 * first_cell_bound(p0) for p0 <= first_cell_pmax, tight."""
    if p0 > target.first_cell_pmax:
        return
    B = target.first_cell_bound(p0)
    with mp.workdps(30):
        ps = [mp.mpf(p0) * k / 400 for k in range(1, 401)]
        sup = max(abs(target.h_mp(p)) for p in ps)
        # (log p: B = |log p0| is within 1 ulp of its value; the certificate inflates every
        # bound by 1 + 1e-9, which the factor below stands for)
        slack = 1 + mp.mpf(1e-13) if target is LOG else 1
        assert sup <= mp.mpf(p0) * mp.mpf(B) * slack
        # tight (relative 1e-10), up to the one subnormal ulp added against underflow
        assert mp.mpf(p0) * mp.mpf(B) <= sup * (1 + mp.mpf(1e-10)) + mp.mpf(p0) * mp.mpf(2.0**-1074)


def test_first_cell_pmax_and_sup():
    import flint

    assert LOG.first_cell_pmax == pytest.approx(math.exp(-1)) and PowerTarget("0.5").first_cell_pmax == 1.0
    with pytest.raises(ValueError, match="p0"):
        PowerTarget("0.5").first_cell_bound(0.0)
    for t in TARGETS:  # sup_[0,1] |h| (1/e for p log p, 1 for p^(a+1)) against a dense grid
        with mp.workdps(20):
            sup = max(abs(t.h_mp(mp.mpf(k) / 4000)) for k in range(1, 4001))
        assert float(sup) <= float(t.h_abs_sup_arb().upper()) <= float(sup) * (1 + 1e-6)
        s = flint.arb("0.3")
        assert abs(float((t.g_arb_sin(s) - t.g_arb(s * s)).mid())) < 1e-14


def test_log_hooks_match_certificate_arithmetic():
    """LOG.h_theta_bounds is the arithmetic the log certificate used (bit for bit)."""
    c = np.linspace(0.01, math.pi, 50)
    H0, H1, _, _ = LOG.h_theta_bounds(c)
    s = np.sin(0.5 * c)
    p = s * s
    lp = np.log(p)
    assert np.array_equal(H0, p * lp)
    assert np.array_equal(H1, (lp + 1.0) * np.sin(c) * 0.5)
    assert LOG.h3_bound(1.0) == pytest.approx(1 + 2 / math.e + 0.5 / math.tan(0.5), rel=1e-12)


# ------------------------------------------------------------------------------ basic behaviour
def test_parse_target_forms():
    assert parse_target("log") is LOG and parse_target("log p") is LOG and LogTarget() == LOG
    t = parse_target("p^0.5")
    assert isinstance(t, PowerTarget) and t.a_exact == Fraction(1, 2) and t.name == "p^0.5"
    assert parse_target("p**-1/2") == PowerTarget("-0.5")
    assert parse_target("p^(1/3)").name == "p^1/3"
    assert parse_target("p^2").polynomial and parse_target("p^2").kmin == 3
    assert parse_target(t) is t
    assert t.rate_exponent == 3.0 and PowerTarget(-0.5).rate_exponent == 1.0


@pytest.mark.parametrize("bad", ["p^-1", "p^-2", "p^abc", "p^", "q^2", "p^nan", "p^inf"])
def test_parse_target_rejects(bad):
    with pytest.raises(ValueError, match="(exponent|target)"):
        parse_target(bad)


def test_power_evaluations_agree_with_mpmath():
    for a in EXPONENTS:
        T = PowerTarget(a)
        p = np.array([1e-9, 0.001, 0.3, 1.0])
        with mp.workdps(30):
            for pi, gi, hi in zip(p, T.g(p), T.h(p)):
                assert gi == pytest.approx(float(mp.mpf(pi) ** mp.mpf(a)), rel=1e-14)
                assert hi == pytest.approx(float(mp.mpf(pi) ** (mp.mpf(a) + 1)), rel=1e-14)
        t = np.array([0.1, 1.0, 3.0])
        _, g1, g2 = T.g_theta(t)
        with mp.workdps(30):
            am = mp.mpf(a)

            def gm(th, am=am):
                return mp.sin(th / 2) ** (2 * am)

            for i, ti in enumerate(t):
                assert g1[i] == pytest.approx(float(mp.diff(gm, mp.mpf(ti), 1)), rel=1e-12)
                assert g2[i] == pytest.approx(float(mp.diff(gm, mp.mpf(ti), 2)), rel=1e-12, abs=1e-14)


def test_alpha_reward_affine_map():
    """phi_alpha'(p) = (alpha p^(alpha-1) - 1)/(alpha(alpha-1)) from the exact values p^a."""
    p = np.array([0.1, 0.5, 1.0])
    for alpha in (0.5, 1.5, 3.0):
        exact = (alpha * p ** (alpha - 1) - 1) / (alpha * (alpha - 1))
        assert np.allclose(alpha_reward(p ** (alpha - 1), alpha), exact, rtol=1e-14)
    assert np.allclose(alpha_reward(np.log(p), 1.0), np.log(p) + 1.0)
    with pytest.raises(ValueError, match="alpha"):
        alpha_reward(p, 0.0)


def test_pow_kmin_routes_integer_exponents_to_power():
    from aqpgen.targets import pow_kmin

    assert pow_kmin({"target": "p^0.5"}) == 2 and pow_kmin({"target": "p^-0.5", "rho": 1}) == 2
    with pytest.raises(ValueError, match="family 'power'"):
        pow_kmin({"target": "p^2"})
    with pytest.raises(ValueError, match="family 'kl'"):
        pow_kmin({"target": "log"})
    with pytest.raises(ValueError, match="needs params 'target'"):
        pow_kmin({})
    with pytest.raises(ValueError, match="> -1"):
        pow_kmin({"target": "p^-1"})
