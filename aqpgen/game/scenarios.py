r"""The games of the simulator: answers, rewards, temperature, and their known optima.

Answers z = 1..S, each reached through ``traces`` latent traces (default 3).  The policy is a
softmax over traces, :math:`\pi = \mathrm{softmax}(\theta)`, and the answer probability is
:math:`p_z = \sum_{t \to z} \pi_t`.  The α-game maximises
:math:`\sum_z R_z p_z - \tau \sum_z \varphi_\alpha(p_z)` (``aqpgen.game.alpha``); α = 1 is the
entropy-regularised game :math:`\sum_z R_z p_z + \tau H(p)` with optimum
:math:`p^* = \mathrm{softmax}(R/\tau)` (docs/MATH.md §8).

Public names
------------
Scenario, SCENARIOS, get_scenario(name)  -- the documented games: ``zipf``, ``head`` (the
                                            simulator's), ``grpo-head``, ``grpo-tail`` (one
                                            prompt each of the trainer experiment,
                                            ``aqpgen.experiments``).
tv_distance(p, q)                          -- total variation, the reported distance.
tv_slope(Ks, tv, kmin)                     -- the decay rate of the TV distance in K: the points
                                            it uses, fitted by ``numerics.fit.loglog_slope``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aqpgen.game.alpha import alpha_optimum
from aqpgen.numerics import fit

__all__ = ["GRPO_ANSWERS", "GRPO_WRONG", "SCENARIOS", "Scenario", "get_scenario", "tv_distance", "tv_slope"]


@dataclass(frozen=True)
class Scenario:
    """One game.

    Attributes
    ----------
    name : str
    R : tuple of float
        Answer rewards R_1..R_S.
    tau : float
        Regularisation weight τ.
    traces : int
        Latent traces per answer (the policy is a softmax over S·traces logits).
    lr, steps, groups, init : float, int, int, str
        Defaults of the sampled dynamics (learning rate, steps, groups G per step, initial
        policy: ``"uniform"`` (θ = 0) or ``"optimum"`` (p = the game's optimum, uniform over an
        answer's traces)).
    description : str
    """

    name: str
    R: tuple[float, ...]
    tau: float
    traces: int = 3
    lr: float = 1.0
    steps: int = 2000
    groups: int = 4
    init: str = "uniform"
    description: str = ""

    @property
    def S(self) -> int:
        """Number of answers."""
        return len(self.R)

    @property
    def rewards(self) -> np.ndarray:
        """R as a float64 array."""
        return np.asarray(self.R, dtype=np.float64)

    @property
    def p_star(self) -> np.ndarray:
        r"""The KL-game optimum :math:`p^* = \mathrm{softmax}(R/\tau)` (maximiser of E[R] + τH)."""
        return self.optimum(1.0)

    def optimum(self, alpha: float = 1.0) -> np.ndarray:
        """The optimum of the α-game on this scenario (``aqpgen.game.alpha.alpha_optimum``)."""
        return alpha_optimum(self.rewards, self.tau, alpha)


def _zipf() -> Scenario:
    tau = 0.5
    z = np.arange(1, 101, dtype=np.float64)
    return Scenario(
        "zipf", tuple(float(v) for v in -1.1 * tau * np.log(z)), tau, lr=5.0, steps=5000,
        init="optimum",
        description="S=100 answers, tau=0.5, R_z = -1.1*tau*ln z, so p* ~ z^-1.1 (long tail)")


#: Answers of the trainer experiment's prompts (``aqpgen.experiments.answer_game``): 16 answer
#: tokens and a 17th class, "other", for any completion that is not one of them.
GRPO_ANSWERS = 16
#: Reward of a wrong answer (and of "other") in ``grpo-head``.
GRPO_WRONG = -1.0


def _grpo_head() -> Scenario:
    good = (1.0, 0.8, 0.5, 0.2, 0.0)
    R = good + (GRPO_WRONG,) * (GRPO_ANSWERS + 1 - len(good))
    return Scenario(
        "grpo-head", R, 0.5, lr=2.0, steps=2000,
        description=f"S={len(R)} answers (16 tokens + other), tau=0.5, R = (1.0, 0.8, 0.5, 0.2, "
                    f"0.0) for five answers and {GRPO_WRONG} for the other 12 (wrong answers: "
                    f"p* ~ 0.007 each)")


def _grpo_tail() -> Scenario:
    tau = 0.5
    z = np.arange(1, GRPO_ANSWERS + 2, dtype=np.float64)
    return Scenario(
        "grpo-tail", tuple(float(v) for v in -1.1 * tau * np.log(z)), tau, lr=2.0, steps=2000,
        description=f"S={z.size} answers (16 tokens + other), tau=0.5, R_z = -1.1*tau*ln z, "
                    f"so p* ~ z^-1.1")


SCENARIOS: Mapping[str, Scenario] = {
    "zipf": _zipf(),
    "head": Scenario("head", (1.0, 0.8, 0.5, 0.2, 0.0), 0.5, lr=2.0, steps=2000,
                     description="S=5 answers, tau=0.5, R=(1.0, 0.8, 0.5, 0.2, 0.0)"),
    "grpo-head": _grpo_head(),
    "grpo-tail": _grpo_tail(),
}


def get_scenario(scenario: str | Scenario) -> Scenario:
    """Return the scenario object for a name in ``SCENARIOS`` (or pass a Scenario through)."""
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except (KeyError, TypeError):
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, received {scenario!r}") from None


def tv_distance(p, q) -> float:
    r"""Total variation :math:`\tfrac12 \sum_z |p_z - q_z|`."""
    return 0.5 * float(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def tv_slope(Ks: Sequence[int], tv: Sequence[float], kmin: int = 16) -> tuple[float, list[int]]:
    """Least-squares slope of log(tv) against log(K) over K >= ``kmin`` (the fit is
    ``aqpgen.numerics.fit.loglog_slope``; this wrapper only chooses the points).

    Uses every K when fewer than two are >= kmin.  Returns ``(slope, Ks_used)``; the slope is NaN
    when fewer than two of those points have a positive finite tv (e.g. the oracle, tv = 0).
    """
    K = np.asarray(Ks, dtype=np.float64)
    y = np.asarray(tv, dtype=np.float64)
    sel = K >= kmin
    if sel.sum() < 2:
        sel = np.ones_like(sel)
    used = [int(k) for k in K[sel]]
    ok = sel & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return float("nan"), used
    slope, _ = fit.loglog_slope([int(k) for k in K[ok]], [float(v) for v in y[ok]], kmin=0)
    return slope, used
