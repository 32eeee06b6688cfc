r"""The α-family regulariser of the alignment game and its known optimum (docs/MATH.md §2b, §8).

The game maximises :math:`J(p) = \sum_z R_z p_z - \tau \sum_z \varphi_\alpha(p_z)` over the
simplex, with :math:`\varphi_\alpha(p) = (p^\alpha - p)/(\alpha(\alpha-1))` (α > 0) and
:math:`\varphi_1(p) = p \log p` (the KL / entropy game, :math:`-\sum \varphi_1 = H`).  Its
marginal cost

.. math::  \varphi'_\alpha(p) = \frac{\alpha p^{\alpha-1} - 1}{\alpha(\alpha-1)} = A\,p^a + B,
           \qquad a = \alpha - 1,\ A = \frac{1}{\alpha-1},\ B = -\frac{1}{\alpha(\alpha-1)},

is an affine function of the power target :math:`p^a` (``aqpgen.targets.alpha_reward`` is the one
home of this map).  A trainer therefore plays the α-game with any table for :math:`p^a`: a
completion with answer z and self-inclusive count n gets the reward
:math:`R_z - \tau\,\mathrm{alpha\_reward}(c_K[n], \alpha)`.  For α = 1 the game uses
:math:`R_z - \tau\,c_K[n]` (``alpha_reward`` would add the constant 1, which cancels against any
baseline; it is left out so the KL numbers do not move).

The optimum
-----------
Stationarity on the simplex: :math:`R_z - \tau\varphi'_\alpha(p_z) = \lambda` for
:math:`p_z > 0`, i.e.

.. math::  p_z(\lambda)^{\alpha-1} = \bigl(1 + \alpha(\alpha-1)(R_z - \lambda)/\tau\bigr)/\alpha

where the right side is positive, else :math:`p_z = 0` (α > 1: the optimum can be sparse;
α < 1: :math:`\varphi'_\alpha(0) = -\infty`, the optimum is interior).  :math:`\sum_z p_z(\lambda)`
is non-increasing in λ; :func:`alpha_optimum` brackets λ between
:math:`\max R - \tau\varphi'(1)` (the top answer alone has p = 1: sum >= 1) and
:math:`\max R - \tau\varphi'(1/S)` (every :math:`p_z \le 1/S`: sum <= 1) and bisects in mpmath at
``dps`` digits until the bracket is below :math:`10^{-(dps-5)}` relative; the returned p is
rounded once to float64 (error < 1 ulp of each :math:`p_z` for the default 40 digits).
For α = 1 it is the closed form :math:`p^* = \mathrm{softmax}(R/\tau)`.

Public names
------------
game_alpha(target)          -- α of the game a target's tables play (log p: 1, p^a: a + 1).
game_target(alpha)          -- the inverse: LOG for α = 1, PowerTarget(α - 1) otherwise.
reward_affine(alpha)        -- (A, B) with φ'_α = A g + B (α = 1: (1, 0), the KL convention).
phi_prime(p, alpha)         -- φ'_α(p) in float64 (the exact marginal cost, the oracle reward).
alpha_optimum(R, tau, alpha) -- the known optimum p* (float64, cached).
kkt_residual(p, R, tau, alpha) -- max violation of the optimality conditions (a check).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from aqpgen.targets import LOG, PowerTarget, Target, alpha_reward, parse_target

__all__ = ["alpha_optimum", "game_alpha", "game_target", "kkt_residual", "phi_prime",
           "reward_affine"]


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool):
        raise TypeError(f"alpha must be a positive real number, received {alpha!r}")
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a positive real number, received {alpha!r}") from None
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"alpha must be a positive finite number, received {alpha!r}")
    return a


def game_alpha(target) -> float:
    """α of the game whose marginal cost is affine in ``target``: 1 for log p, a + 1 for p^a.

    Raises ValueError for p^0 (a constant: no game)."""
    t = parse_target(target)
    if t == LOG:
        return 1.0
    if isinstance(t, PowerTarget) and t.a != 0:
        return t.a + 1.0
    raise ValueError(f"target {t.spec!r} is not the marginal cost of an alpha-game "
                     "(log p or p^a with a != 0)")


def game_target(alpha) -> Target:
    """The target a table must estimate to play the α-game: log p (α = 1) or p^(α-1)."""
    a = _check_alpha(alpha)
    return LOG if a == 1.0 else PowerTarget(a - 1.0)


@functools.cache
def reward_affine(alpha) -> tuple[float, float]:
    """(A, B) such that the game's marginal cost is A g + B for g the target of ``game_target``.

    Taken from ``aqpgen.targets.alpha_reward`` (B = alpha_reward(0), A = alpha_reward(1) - B);
    α = 1 gives (1, 0): the KL game drops the constant +1 (it cancels against any baseline)."""
    a = _check_alpha(alpha)
    if a == 1.0:
        return 1.0, 0.0
    B = float(alpha_reward(np.zeros(1), a)[0])
    A = float(alpha_reward(np.ones(1), a)[0]) - B
    return A, B


def phi_prime(p, alpha) -> np.ndarray:
    r"""The exact marginal cost :math:`\varphi'_\alpha(p)` (α = 1: :math:`\log p`), float64.

    Computed as ``alpha_reward(target.g(p))`` with the game's (A, B) convention; -inf at p = 0
    when α <= 1."""
    a = _check_alpha(alpha)
    A, B = reward_affine(a)
    g = game_target(a).g(np.asarray(p, dtype=np.float64))
    return A * g + B


def _mp_phi_prime(p, alpha, mp):
    if alpha == 1:
        return mp.log(p)
    return (alpha * mp.power(p, alpha - 1) - 1) / (alpha * (alpha - 1))


@functools.lru_cache(maxsize=64)
def _alpha_optimum_cached(R: tuple, tau: float, alpha: float, dps: int) -> tuple:
    import mpmath

    with mpmath.workdps(dps):
        mp = mpmath
        al = mp.mpf(alpha)
        t = mp.mpf(tau)
        Rm = [mp.mpf(r) for r in R]
        S = len(Rm)
        rmax = max(Rm)

        def p_of(lam):
            out = []
            for r in Rm:
                u = (1 + al * (al - 1) * (r - lam) / t) / al
                out.append(mp.power(u, 1 / (al - 1)) if u > 0 else mp.mpf(0))
            return out

        lo = rmax - t * _mp_phi_prime(mp.mpf(1), al, mp)
        hi = rmax - t * _mp_phi_prime(mp.mpf(1) / S, al, mp)
        tol = mp.mpf(10) ** (-(dps - 5)) * (1 + abs(lo) + abs(hi))
        for _ in range(20 * dps):
            if hi - lo <= tol:
                break
            mid = (lo + hi) / 2
            if mp.fsum(p_of(mid)) > 1:
                lo = mid
            else:
                hi = mid
        p = p_of((lo + hi) / 2)
        s = mp.fsum(p)
        return tuple(float(x / s) for x in p)


def alpha_optimum(R, tau, alpha, *, dps: int = 40) -> np.ndarray:
    r"""The maximiser of :math:`\sum R_z p_z - \tau\sum\varphi_\alpha(p_z)` on the simplex.

    α = 1: softmax(R/τ).  Otherwise bisection on λ in mpmath at ``dps`` digits (module
    docstring); the result is rounded once to float64 and cached per (R, τ, α, dps).

    Raises
    ------
    ValueError
        τ not positive and finite, α not positive, R empty or not finite.
    """
    a = _check_alpha(alpha)
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 1 or R.size == 0 or not np.all(np.isfinite(R)):
        raise ValueError(f"R must be a non-empty 1-d array of finite rewards, received {R!r}")
    tau = float(tau)
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"tau must be a positive finite number, received {tau!r}")
    if a == 1.0:
        x = R / tau
        w = np.exp(x - x.max())
        return w / w.sum()
    return np.array(_alpha_optimum_cached(tuple(float(r) for r in R), tau, a, int(dps)))


def kkt_residual(p, R, tau, alpha) -> float:
    r"""Largest violation of the optimality conditions of the α-game at ``p``.

    With :math:`F_z = R_z - \tau\varphi'_\alpha(p_z)` and λ the mean of F over the live answers
    (:math:`p_z > 0`): :math:`\max(\max_{live} |F_z - \lambda|, \max_{dead} (F_z - \lambda)^+,
    |\sum p - 1|)`.  Zero at the optimum."""
    a = _check_alpha(alpha)
    p = np.asarray(p, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    live = p > 0
    with np.errstate(divide="ignore"):
        F = R - float(tau) * phi_prime(p, a)
    lam = float(F[live].mean())
    res = float(np.abs(F[live] - lam).max())
    if (~live).any():
        res = max(res, float(np.maximum(F[~live] - lam, 0.0).max()))
    return max(res, abs(float(p.sum()) - 1.0))
