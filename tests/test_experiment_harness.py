"""The trainer experiment's harness against the real TRL GRPOTrainer (tiny runs; the full
experiment is ``make experiment``, not a test).

* The exact answer distribution the harness reads from the logits is what TRL samples: the
  answers TRL generated, pooled over steps, pass a chi-square test against the distributions the
  harness recorded for the weights that generated them, and a deliberately wrong distribution
  (each prompt's classes rotated by one) fails it.
* The oracle run moves TV(π_θ, π*) towards 0; a plug-in run on the same seed is served through
  ``trl_reward_func`` and records its row's metrics.
* ``extract_answer`` and the game's optimum are checked against independent recomputations.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from aqpgen.experiments.answer_game import ANSWER_TOKENS, OTHER, default_game, extract_answer
from aqpgen.game.scenarios import GRPO_WRONG

pytest.importorskip("trl")
torch = pytest.importorskip("torch")
chi2 = pytest.importorskip("scipy.stats").chi2

from _kl_oracles import mp_beta  # noqa: E402  (tests/ is on sys.path)

from aqpgen.experiments.grpo_run import RunConfig, run_grpo  # noqa: E402


@pytest.fixture(scope="module")
def oracle_run():
    return run_grpo(RunConfig("oracle", 8, seed=3, steps=40, eval_every=5, record_samples=True))


def _pooled_chi2(samples, shift: int = 0):
    """Chi-square of the pooled answer counts of every prompt against sum_t K * dist_t (the
    distribution rotated by ``shift`` classes); returns (statistic, degrees of freedom)."""
    stat, dof = 0.0, 0
    n_prompts = len(samples[0]["counts"])
    for j in range(n_prompts):
        obs = np.sum([s["counts"][j] for s in samples], axis=0).astype(float)
        K = obs.sum() / len(samples)
        exp = np.sum([np.roll(np.asarray(s["dist"][j]), shift) * K for s in samples], axis=0)
        stat += float(((obs - exp) ** 2 / exp).sum())
        dof += obs.size - 1
    return stat, dof


def test_exact_distribution_matches_trl_sampling(oracle_run):
    samples = oracle_run["samples"]
    assert len(samples) == 40
    assert all(sum(c) == 8 for s in samples for c in s["counts"])  # K answers per prompt
    stat, dof = _pooled_chi2(samples)
    assert chi2.sf(stat, dof) > 1e-3, (stat, dof)
    wrong, _ = _pooled_chi2(samples, shift=1)
    assert chi2.sf(wrong, dof) < 1e-12, (wrong, dof)


def test_oracle_moves_tv_towards_optimum(oracle_run):
    tv = [float(np.mean(v)) for v in oracle_run["tv"]]
    assert oracle_run["steps"][0] == 0 and oracle_run["steps"][-1] == 40
    assert len(tv) == 9
    assert tv[-1] < 0.5 * tv[0], tv
    assert oracle_run["metrics"] == {}


def test_plugin_run_is_served_through_the_table_path(oracle_run):
    rec = run_grpo(RunConfig("plugin", 8, seed=3, steps=5, eval_every=5))
    assert rec["steps"] == [0, 5]
    assert rec["tv"][0] == pytest.approx(oracle_run["tv"][0], abs=0)  # same seed, same model
    # the in-memory plug-in table carries a certificate: an upper bound on β, within 1% of an
    # independent mpmath sup of p|E log(n/K) - log p| (tests/_kl_oracles)
    beta = mp_beta([Fraction(math.log(n / 8)) for n in range(1, 9)])
    assert beta <= rec["metrics"]["beta_cert"] <= 1.01 * beta


def test_extract_answer():
    assert extract_answer("a3") == "a3" and extract_answer(" a15 ") == "a15"
    assert extract_answer("") == OTHER and extract_answer("q1") == OTHER
    assert extract_answer("a16") == OTHER and extract_answer(None) == OTHER


def test_game_optimum_and_distribution_reading():
    game = default_game()
    # grpo-head: five good answers, 12 classes at GRPO_WRONG; optimum softmax(R / tau)
    R = np.array([1.0, 0.8, 0.5, 0.2, 0.0] + [GRPO_WRONG] * 12)
    w = np.exp(R / game.tau)
    assert np.allclose(game.optimum(0), w / w.sum(), rtol=1e-13, atol=0)
    z = np.arange(1, 18, dtype=float)
    w = z ** -1.1
    assert np.allclose(game.optimum(2), w / w.sum(), rtol=1e-12, atol=0)
    # class probabilities of a known token distribution: prompt q1 reads the answers reversed
    V = len(game.vocab)
    probs = np.full((4, V), 1.0 / (2 * V))
    probs[:, game.vocab["a0"]] += 0.5
    d = game.class_probabilities(probs)
    assert d[0][0] == pytest.approx(0.5 + 1 / (2 * V)) and d[1][-2] == pytest.approx(0.5 + 1 / (2 * V))
    assert all(math.isclose(x.sum(), 1.0) for x in d)
    assert d[0][-1] == pytest.approx((V - len(ANSWER_TOKENS)) / (2 * V))
    with pytest.raises(ValueError, match="unknown prompt"):
        game.index("q9")
