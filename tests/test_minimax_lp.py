"""The LP oracle (aqpgen.minimax_lp) against the Remez exchange and the closed form E*_1 = W(1/e).

The LP on a grid is a lower bound on E*_K (the grid is a subset of [0, 1]); on the default grid
(2000 K points, uniform in t = 2 arcsin sqrt p) it is within ~1e-6 relative of E*_K.  The LP uses
no Remez output (its grid is fixed in advance).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from _power_oracles import BERNSTEIN_BETA, E1_closed_form

from aqpgen.generators import remez
from aqpgen.generators.minimax_lp import (
    LPResult,
    continuum_max,
    default_grid,
    lp_bracket,
    lp_minimax,
    weighted_error,
)
from aqpgen.targets import PowerTarget

pytest.importorskip("cvxpy")


@pytest.mark.parametrize("K", [2, 3, 5, 8])
def test_lp_agrees_with_remez(K):
    lp = lp_minimax(K)
    E = remez.remez(K).E
    assert lp.status == "optimal"
    assert lp.violation <= 1e-12 * lp.E  # the returned point satisfies its own constraints
    assert lp.E <= E * (1 + 1e-9)        # a lower bound (grid subset of [0, 1])
    assert lp.E >= E * (1 - 1e-6)        # >= 6 digits on the default grid
    assert len(lp.cheb) == K


def test_lp_K1_lambert_w():
    W = float(mp.lambertw(mp.exp(-1)))
    lp = lp_minimax(1)
    assert lp.E <= W * (1 + 1e-9) and lp.E >= W * (1 - 1e-6)
    # with extra grid points near the known maximiser p* = exp(-W - 1) of the K = 1 error (closed
    # form, not Remez), the grid loss is ~1e-14 and the LP reproduces W(1/e) to the interior-point
    # solver's accuracy, >= 10 digits (the Remez value matches it to ~19: test_minimax.py)
    ps = float(mp.exp(-mp.lambertw(mp.exp(-1)) - 1))
    grid = np.concatenate([default_grid(2000), ps * (1 + np.linspace(-1e-3, 1e-3, 201))])
    lp = lp_minimax(1, grid=grid)
    assert abs(lp.E - W) / W < 1e-10
    # and the LP's constant equals -W(1/e)
    assert lp.cheb[0] == pytest.approx(-W, rel=1e-9)


def test_lp_refining_grid_increases_value():
    a = lp_minimax(3, n_grid=200).E
    b = lp_minimax(3, n_grid=2000).E
    assert a <= b * (1 + 1e-12)
    assert b <= remez.remez(3).E * (1 + 1e-9)


def test_lp_bad_input():
    with pytest.raises(ValueError, match="K"):
        lp_minimax(0)
    with pytest.raises(TypeError, match="K"):
        lp_minimax(2.5)
    with pytest.raises(ValueError, match="grid"):
        lp_minimax(3, grid=[0.5, 1.0])
    with pytest.raises(ValueError, match="n_grid"):
        default_grid(1)
    assert isinstance(lp_minimax(2, n_grid=100), LPResult)


# ------------------------------------------------------------------------------ targets p^a

def test_E1_closed_forms_exact():
    # a = -1/2: -1/(4c) = 1 - c, c = (1 + sqrt 2)/2, E = (sqrt 2 - 1)/2
    assert E1_closed_form("-0.5") == pytest.approx(float((mp.sqrt(2) - 1) / 2), rel=1e-15)
    # a = 1/2: 4c^3 + 27c - 27 = 0 (Cardano): c = (3/2)(cbrt(1 + sqrt 2) - cbrt(sqrt 2 - 1))
    c = 1.5 * (float(mp.cbrt(1 + mp.sqrt(2))) - float(mp.cbrt(mp.sqrt(2) - 1)))
    assert E1_closed_form("0.5") == pytest.approx(1 - c, rel=1e-14)


@pytest.mark.parametrize("a", ["0.5", "-0.5", "0.25", "-0.75", "1.5"])
def test_lp_power_K1_closed_form(a):
    E1 = E1_closed_form(a)
    br = lp_bracket(1, target=PowerTarget(a))
    assert br.lower <= E1 * (1 + 1e-10) and E1 <= br.upper * (1 + 1e-12)
    assert br.rel_width < 1e-9
    assert br.target == f"p^{a}"


@pytest.mark.parametrize("a", ["0.5", "-0.5", "0.25"])
@pytest.mark.parametrize("K", [2, 6])
def test_lp_bracket_tight_and_consistent(a, K):
    T = PowerTarget(a)
    br = lp_bracket(K, target=T)
    assert 0 < br.lower <= br.upper and br.rel_width <= 1e-9
    # the plain LP on its default grid is a lower bound within the grid loss (~1e-6)
    lp = lp_minimax(K, target=T)
    assert lp.E <= br.upper * (1 + 1e-12) and lp.E >= br.upper * (1 - 2e-6)
    # the bracket's upper end is the sup of its own polynomial's error (recomputed in mpmath)
    with mp.workdps(30):
        a_mp = [mp.mpf(float(x)) for x in br.cheb]

        def e(t):
            p = mp.sin(t / 2) ** 2
            Q = mp.mpf(0)
            for j, aj in enumerate(a_mp):
                Q += aj * mp.chebyt(j, 2 * p - 1)
            return abs(p * Q - p ** (mp.mpf(a) + 1))

        ts = np.linspace(1e-6, np.pi, 16 * (K + 1))
        assert max(float(e(mp.mpf(float(t)))) for t in ts) <= br.upper * (1 + 1e-9)


def test_power_half_bernstein_relation():
    """p = t^2: E*_K(-1/2) = min over even P(t), deg <= 2K, P(0) = 0 of sup |P(t) - |t||.

    Dropping P(0) = 0 gives E_{2K}(|x|) (Bernstein): E_{2K}(|x|) <= E*_K(-1/2) <= 2 E_{2K}(|x|)
    (shift the unconstrained optimum by its value at 0), and 2n E_{2n}(|x|) increases to the
    Bernstein constant beta (Varga & Carpenter 1985), so K E*_K(-1/2) <= beta.  The unconstrained
    problem is solved by an LP written here (basis 1, T_j(2p - 1)); it reproduces beta from below,
    while K E*_K(-1/2) stays well above beta/2: the constraint P(0) = 0 changes the constant.
    """
    import cvxpy as cp

    p = np.unique(np.concatenate([np.sin(np.linspace(0, np.pi / 2, 8001)) ** 2]))
    for K in (4, 8, 16):
        Es = lp_bracket(K, target=PowerTarget("-0.5")).upper
        assert K * Es <= BERNSTEIN_BETA
        t = 2 * np.arcsin(np.sqrt(p))
        A = (-1.0) ** np.arange(K + 1) * np.cos(np.outer(t, np.arange(K + 1)))
        x, s = cp.Variable(K + 1), cp.Variable()
        cp.Problem(cp.Minimize(s), [cp.abs(A @ x - np.sqrt(p)) <= s]).solve(solver="CLARABEL")
        E2K = float(s.value)
        assert E2K <= Es <= 2 * E2K
        assert 0 < BERNSTEIN_BETA - 2 * K * E2K < 0.05 / K  # Bernstein's limit, approached from below
        assert K * Es > 0.75 * BERNSTEIN_BETA  # far above beta/2


def test_continuum_max_and_error_helpers():
    # e of Q = 0 is -h; its sup over [0, 1] is h(1) = 1 for every target
    v, pts = continuum_max(np.zeros(3), PowerTarget("0.5"))
    assert v == pytest.approx(1.0, rel=1e-15) and pts[-1] == 1.0
    assert weighted_error([1.0], np.array([0.25]), "p^-0.5")[0] == pytest.approx(0.25 - 0.5)
