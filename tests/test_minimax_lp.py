"""The LP oracle (aqpgen.minimax_lp) against the Remez exchange and the closed form E*_1 = W(1/e).

The LP on a grid is a lower bound on E*_K (the grid is a subset of [0, 1]); on the default grid
(2000 K points, uniform in t = 2 arcsin sqrt p) it is within ~1e-6 relative of E*_K.  The LP uses
no Remez output (its grid is fixed in advance).
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from aqpgen.generators import minimax
from aqpgen.generators.minimax_lp import LPResult, default_grid, lp_minimax

pytest.importorskip("cvxpy")


@pytest.mark.parametrize("K", [2, 3, 5, 8])
def test_lp_agrees_with_remez(K):
    lp = lp_minimax(K)
    E = minimax.remez(K).E
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
    assert b <= minimax.remez(3).E * (1 + 1e-9)


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
