r"""Sampled policy-gradient dynamics with the trainers' advantage conventions (docs/MATH.md §8).

One prompt; per step G groups of K completions are drawn from π, counts are self-inclusive within
a group, table rewards come through the runtime (``Table.lookup``), and the policy takes a
REINFORCE step :math:`\theta \mathrel{+}= \frac{\text{lr}}{GK} \sum_i A_i \nabla_\theta \log
\pi_{t_i}`.  The reward of completion i is :math:`r_i = R_{z_i} - \tau\,\psi(c_K[n_i])` with
ψ the identity for the KL game and ``aqpgen.targets.alpha_reward`` for the α-game; the oracle
uses the exact marginal cost at the policy's true :math:`p_{z_i}`.

Advantages (:func:`advantages`)
-------------------------------
baseline  ``others`` (default): :math:`b_g` = mean reward of the *other* G-1 groups -- independent
          of group g's samples, so the expected step is exactly the policy gradient of the game
          with the table's mean.
          ``group``: the group's mean (GRPO / TRL ``GRPOTrainer``).
          ``rloo``: mean of the other K-1 completions of the group (TRL ``RLOOTrainer``).
          ``none``: no baseline.
scale     ``none``: no scaling (TRL ``scale_rewards="none"``, Dr. GRPO).
          ``group``: divide by the group's reward standard deviation + 1e-4 (TRL default
          ``scale_rewards="group"``).
          ``batch``: divide by the standard deviation of all G·K rewards of the step + 1e-4
          (TRL ``scale_rewards="batch"``).  Standard deviations use Bessel's correction (TRL's
          ``nanstd``).  (TRL's ``RLOOTrainer(normalize_advantages=True)`` instead re-centres and
          divides by the std of the *advantages*; not modelled.)
The within-group baselines are correlated with the sample through the counts; their expected
step is that of an effective table (``aqpgen.game.meanfn.loo_effective_table``), which
``run_exact(..., baseline="rloo")`` follows to its fixed point.  Std scaling has no such closed
form (a per-group weight that depends on the group's composition): sampled runs only.

Seeds are numpy ``default_rng(seed)`` streams; each seed's trajectory does not depend on which
other seeds run with it.

Public names
------------
SampledResult, run_sampled(scenario, estimator, K, seeds, baseline=, scale=)
advantages(r, baseline, scale) -- the advantage conventions on rewards of shape (..., G, K)
advantage_rms(...)  -- RMS advantage of a convention at the optimum (its step per unit lr)
self_inclusive_counts(z), sampled_sweep(...), SCALES, STD_EPS
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aqpgen.game.dynamics import softmax
from aqpgen.game.estimators import as_estimator
from aqpgen.game.meanfn import BASELINES
from aqpgen.game.scenarios import get_scenario, tv_slope
from aqpgen.targets import alpha_reward

__all__ = ["SCALES", "STD_EPS", "SampledResult", "advantage_rms", "advantages", "game_reward",
           "run_sampled",
           "sampled_sweep", "self_inclusive_counts"]

#: Std scalings of the advantages (TRL ``scale_rewards``).
SCALES = ("none", "group", "batch")
#: Added to the standard deviation before dividing (TRL's constant).
STD_EPS = 1e-4
#: Smallest initial answer probability when starting at an optimum with zeros (α > 1).
INIT_FLOOR = 1e-12


@dataclass(frozen=True)
class SampledResult:
    """Sampled REINFORCE runs for one (scenario, estimator, K).

    Attributes
    ----------
    steps : int array (n_rec,), the step index of each record (0 = initial policy)
    tv : float array (n_seeds, n_rec), TV(p, p*) per seed and record
    seeds : tuple of int
    lr, groups, init : learning rate, groups per step and initial policy used
    p_final : float array (n_seeds, S), the answer distributions at the end
    baseline, scale, alpha : the advantage convention and the game
    final_mean, final_std : mean and standard deviation over seeds of the last TV
    """

    scenario: str
    estimator: str
    K: int
    steps: np.ndarray
    tv: np.ndarray
    seeds: tuple[int, ...]
    lr: float
    groups: int
    init: str = "uniform"
    p_final: np.ndarray = field(repr=False, default=None)
    baseline: str = "others"
    scale: str = "none"
    alpha: float = 1.0

    @property
    def mean(self) -> np.ndarray:
        return self.tv.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.tv.std(axis=0)

    @property
    def final_mean(self) -> float:
        return float(self.tv[:, -1].mean())

    @property
    def final_std(self) -> float:
        return float(self.tv[:, -1].std())


def self_inclusive_counts(z: np.ndarray) -> np.ndarray:
    """n_i = #{j in the group: z_j = z_i} (itself included) along the last axis."""
    return (z[..., :, None] == z[..., None, :]).sum(axis=-1)


def game_reward(c, alpha: float) -> np.ndarray:
    """The marginal-cost reward of table values ``c``: c itself for α = 1 (KL), else
    ``alpha_reward(c, alpha)``."""
    c = np.asarray(c, dtype=np.float64)
    return c if float(alpha) == 1.0 else alpha_reward(c, alpha)


def _check_conv(baseline: str, scale: str) -> None:
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, received {baseline!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, received {scale!r}")


def advantages(r: np.ndarray, baseline: str = "others", scale: str = "none") -> np.ndarray:
    """Advantages of rewards ``r`` of shape (..., G, K) (G groups of K) under a convention.

    See the module docstring; ``others`` needs G >= 2, ``rloo`` K >= 2.
    """
    _check_conv(baseline, scale)
    r = np.asarray(r, dtype=np.float64)
    G, K = r.shape[-2], r.shape[-1]
    if baseline == "others":
        if G < 2:
            raise ValueError(f"baseline 'others' needs groups >= 2, received {G}")
        gsum = r.sum(axis=-1)
        b = ((gsum.sum(axis=-1, keepdims=True) - gsum) / ((G - 1) * K))[..., None]
    elif baseline == "group":
        b = r.mean(axis=-1, keepdims=True)
    elif baseline == "rloo":
        if K < 2:
            raise ValueError(f"baseline 'rloo' needs K >= 2, received {K}")
        b = (r.sum(axis=-1, keepdims=True) - r) / (K - 1)
    else:
        b = 0.0
    A = r - b
    if scale == "group":
        A = A / (r.std(axis=-1, ddof=1, keepdims=True) + STD_EPS)
    elif scale == "batch":
        flat = r.reshape(r.shape[:-2] + (G * K,))
        A = A / (flat.std(axis=-1, ddof=1)[..., None, None] + STD_EPS)
    return A


def _rewards(sc, est, K: int, z: np.ndarray, oracle_c) -> np.ndarray:
    """Rewards r_i = R_{z_i} - tau psi(c_i) of sampled answers z (..., G, K): c from the
    estimator's table at the self-inclusive counts, or for the oracle ``oracle_c()`` (its exact
    target at the policy's true p of each z)."""
    if est.is_oracle:
        with np.errstate(divide="ignore"):
            c = oracle_c()
    else:
        c = np.asarray(est.lookup(self_inclusive_counts(z), K), dtype=np.float64)
    return sc.rewards[z] - sc.tau * game_reward(c, est.alpha)


def advantage_rms(scenario, estimator, K: int, baseline: str = "others", scale: str = "none",
                  *, groups: int | None = None, n_steps: int = 500, seed: int = 0,
                  target=None) -> float:
    """Root-mean-square advantage of a convention at the game's optimum (the policy fixed at
    p*, ``n_steps`` draws of G groups of K): the size of the step a convention takes per unit
    learning rate, to compare conventions at matched step sizes."""
    sc = get_scenario(scenario)
    est = as_estimator(estimator, target)
    K = est.check_K(K)
    G = sc.groups if groups is None else int(groups)
    ps = sc.optimum(est.alpha)
    z = np.random.default_rng(seed).choice(sc.S, size=(int(n_steps), G, K), p=ps)
    r = _rewards(sc, est, K, z, lambda: est.target.g(ps)[z])
    return float(np.sqrt(np.mean(advantages(r, baseline, scale) ** 2)))


def run_sampled(scenario, estimator, K: int, seeds: Sequence[int] = tuple(range(20)), *,
                steps: int | None = None, lr: float | None = None, groups: int | None = None,
                init: str | None = None, record_every: int | None = None,
                baseline: str = "others", scale: str = "none", target=None) -> SampledResult:
    r"""Sampled policy-gradient runs, one per seed (vectorised, seed-independent streams).

    Per step and seed: G groups of K traces drawn from π; rewards
    :math:`r_i = R_{z_i} - \tau\,\psi(c_K[n_i])` (module docstring); advantages
    :math:`A_i` = :func:`advantages` (r, baseline, scale); update
    :math:`\theta \mathrel{+}= \frac{lr}{GK}\sum_i A_i (e_{t_i} - \pi)`.
    Defaults (steps, lr, groups, init) come from the scenario; TV to the optimum of the
    estimator's game recorded every ``record_every`` steps (default steps/100).

    Possible issues: plain softmax PG from the uniform policy on a long tail first concentrates
    on the head and then regrows the tail at a rate proportional to its (tiny) probability -- a
    plateau far longer than any practical run, for every estimator.  ``init="optimum"`` starts
    at p* instead (answers with p*_z = 0, possible for α > 1, start at ``INIT_FLOOR``), so the
    curve measures how far the estimator's bias and noise push the policy away from the optimum
    (the zipf default).
    """
    sc = get_scenario(scenario)
    est = as_estimator(estimator, target)
    _check_conv(baseline, scale)
    K = est.check_K(K)
    steps = sc.steps if steps is None else int(steps)
    lr = sc.lr if lr is None else float(lr)
    G = sc.groups if groups is None else int(groups)
    if G < (2 if baseline == "others" else 1):
        raise ValueError(f"groups must be >= 2 with baseline 'others' (it uses the other "
                         f"groups), >= 1 otherwise; received {groups!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, received {steps!r}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must be a non-empty list of integers")
    every = max(1, steps // 100) if record_every is None else int(record_every)
    rec_steps = sorted(set(range(0, steps + 1, every)) | {steps})

    alpha = est.alpha
    T, S = sc.traces, sc.S
    ps = sc.optimum(alpha)
    nS = len(seeds)
    rngs = [np.random.default_rng(s) for s in seeds]
    init = sc.init if init is None else init
    if init == "uniform":
        theta = np.zeros((nS, S * T))
    elif init == "optimum":
        theta = np.tile(np.repeat(np.log(np.maximum(ps, INIT_FLOOR)), T), (nS, 1))
    else:
        raise ValueError(f"init must be 'uniform' or 'optimum', received {init!r}")
    offs = np.arange(nS)[:, None]
    tv = np.empty((nS, len(rec_steps)))
    rec = 0

    def answer_p(pi):
        return pi.reshape(nS, S, T).sum(axis=-1)

    for step in range(steps + 1):
        pi = softmax(theta)
        if step == rec_steps[rec]:
            tv[:, rec] = 0.5 * np.abs(answer_p(pi) - ps).sum(axis=-1)
            rec += 1
        if step == steps:
            break
        u = np.stack([r.random(G * K) for r in rngs])                  # (nS, G*K)
        cdf = np.cumsum(pi, axis=-1)
        cdf[:, -1] = 1.0
        t = np.searchsorted((cdf + offs).ravel(), (u + offs).ravel(), side="right")
        t = np.minimum(t.reshape(nS, G * K) - offs * S * T, S * T - 1)
        z = (t // T).reshape(nS, G, K)
        r = _rewards(sc, est, K, z, lambda pi=pi, z=z: est.target.g(answer_p(pi))[offs[:, :, None], z])
        A = advantages(r, baseline, scale).reshape(nS, G * K)
        w = np.bincount((t + offs * S * T).ravel(), weights=A.ravel(),
                        minlength=nS * S * T).reshape(nS, S * T)
        grad = (w - pi * A.sum(axis=-1, keepdims=True)) / (G * K)
        theta += lr * grad
    return SampledResult(sc.name, est.name, K, np.asarray(rec_steps), tv, seeds, lr, G, init,
                         answer_p(softmax(theta)), baseline, scale, alpha)


def sampled_sweep(scenario, estimators: Sequence, Ks: Sequence[int],
                  seeds: Sequence[int] = tuple(range(20)), *, slope_kmin: int = 16,
                  target=None, **kwargs) -> tuple[dict, dict]:
    """Final TV (mean and std over seeds) per estimator and K, plus the full results.

    Returns ``(summary, results)``: summary ``{name: {"K", "tv" (mean final TV), "tv_std",
    "slope", "slope_K"}}``, results ``{name: {K: SampledResult}}``.  ``kwargs`` go to
    :func:`run_sampled` (steps, lr, groups, init, baseline, scale)."""
    summary, results = {}, {}
    for e in estimators:
        est = as_estimator(e, target)
        res = {int(K): run_sampled(scenario, est, K, seeds, **kwargs) for K in Ks}
        tvs = [res[int(K)].final_mean for K in Ks]
        slope, used = tv_slope(Ks, tvs, slope_kmin)
        summary[est.name] = {"K": [int(k) for k in Ks], "tv": tvs,
                             "tv_std": [res[int(K)].final_std for K in Ks],
                             "slope": slope, "slope_K": used}
        results[est.name] = res
    return summary, results
