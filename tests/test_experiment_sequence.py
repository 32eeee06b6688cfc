"""The multi-token answer game against independent recomputations and the real TRL GRPOTrainer.

* Its exact answer distribution (every digit sequence enumerated from one batched forward pass)
  equals a one-sequence-at-a-time autoregressive recomputation, and is what TRL samples: the
  answers TRL generated over a short oracle run pass a chi-square test against the recorded
  distributions; the distributions rotated by one class fail it.
* The sequence-likelihood proxy's log-probabilities are the model's, and the proxy's fixed point
  is checked against a brute-force maximisation over sequences.
* The answer parse and the sequences per answer are recounted with a Counter.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from aqpgen.experiments.answer_game import OTHER
from aqpgen.experiments.sequence_game import SequenceGame, sequence_game

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
chi2 = pytest.importorskip("scipy.stats").chi2

from aqpgen.experiments.grpo_run import RunConfig, run_grpo  # noqa: E402
from aqpgen.experiments.plan import describe_game  # noqa: E402
from aqpgen.experiments.summary import proxy_fixed_point  # noqa: E402


@pytest.fixture(scope="module")
def game() -> SequenceGame:
    return sequence_game()


def test_parse_and_multiplicity(game):
    V, L = game.digits, game.length
    counts = Counter(sum(s) for s in itertools.product(range(V), repeat=L))
    assert game.multiplicity() == {f"s{k}": counts[k] for k in range(L * (V - 1) + 1)}
    assert len(set(game.multiplicity().values())) > 1  # answers differ in their numbers
    digits = " ".join(["d1"] * (L - 1) + ["d3"])
    assert game.extract_answer(digits) == f"s{L - 1 + 3}"
    assert game.extract_answer(" ".join(["d0"] * (L - 1))) == OTHER      # early end
    assert game.extract_answer(" ".join(["d0"] * (L + 1))) == OTHER
    assert game.extract_answer(" ".join(["r0"] + ["d0"] * (L - 1))) == OTHER
    assert game.extract_answer("") == OTHER and game.extract_answer(None) == OTHER


def test_exact_distribution_is_the_autoregressive_product(game):
    model = game.build_model(5)
    lp = game.sequence_logprobs(model)
    d0 = game.vocab["d0"]
    for i, p in enumerate(game.prompts):
        for j, seq in enumerate(itertools.product(range(game.digits), repeat=game.length)):
            ids = [game.vocab[p.prompt]] + [d0 + s for s in seq]
            with torch.no_grad():
                lo = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits.double(), -1)[0]
            ref = sum(float(lo[t, ids[t + 1]]) for t in range(game.length))
            assert lp[i, j] == pytest.approx(ref, abs=1e-5)
    dists = game.answer_distribution(model)
    for i, d in enumerate(dists):
        assert d.sum() == pytest.approx(1.0) and d.min() >= 0
        by_sum = Counter()
        for j, seq in enumerate(itertools.product(range(game.digits), repeat=game.length)):
            by_sum[f"s{sum(seq)}"] += math.exp(lp[i, j])
        order = game.prompts[i].order
        assert d[:-1] == pytest.approx([by_sum[z] for z in order], rel=1e-12)
    # the proxy's per-token log-probabilities of a completion, EOS included
    seq = [d0 + 1] * game.length
    eos = [d0 + 2, game.vocab["<eos>"]]
    got = game.completion_logprobs(model, [game.vocab["r0"]] * 2, [seq, eos])
    assert got[0].sum() == pytest.approx(lp[0, int("1" * game.length, game.digits)], abs=1e-5)
    assert got[1].shape == (2,)


def test_trl_samples_the_enumerated_distribution():
    rec = run_grpo(RunConfig("oracle", 8, seed=1, steps=25, eval_every=5, game="sequence",
                             record_samples=True))
    samples = rec["samples"]
    assert len(samples) == 25 and all(sum(c) == 8 for s in samples for c in s["counts"])

    def stat(shift):
        st, dof = 0.0, 0
        for j in range(len(samples[0]["counts"])):
            obs = np.sum([s["counts"][j] for s in samples], axis=0).astype(float)
            exp = np.sum([np.roll(np.asarray(s["dist"][j]), shift) * 8 for s in samples], axis=0)
            keep = exp > 0.5  # pool the classes TRL could hardly sample
            o = np.append(obs[keep], obs[~keep].sum())
            e = np.append(exp[keep], exp[~keep].sum())
            st += float(((o - e) ** 2 / np.maximum(e, 1e-9)).sum())
            dof += o.size - 1
        return st, dof

    s, dof = stat(0)
    assert chi2.sf(s, dof) > 1e-3, (s, dof)
    wrong, dof = stat(1)
    assert chi2.sf(wrong, dof) < 1e-9, (wrong, dof)
    assert rec["steps"][-1] == 25 and len(rec["final_dist"]) == len(sequence_game().prompts)


def test_proxy_runs_through_trl():
    rec = run_grpo(RunConfig("seqlik-mean", 8, seed=1, steps=3, eval_every=3, game="sequence"))
    assert rec["metrics"] == {} and rec["steps"] == [0, 3]
    with pytest.raises(ValueError, match="estimates log p"):
        RunConfig("seqlik-sum", 8, target="p^-0.5")
    with pytest.raises(ValueError, match="game must be one of"):
        RunConfig("oracle", 8, game="chess")


def _completions(game):
    """Every completion TRL can generate: L tokens, or fewer ending with <eos>; its class."""
    vocab = sorted(game.vocab, key=game.vocab.get)
    out = []
    for L in range(1, game.length + 1):
        for seq in itertools.product(vocab, repeat=L):
            if "<eos>" in seq[:-1] or (L < game.length and seq[-1] != "<eos>"):
                continue
            text = " ".join(t for t in seq if t not in ("<pad>", "<eos>", "<unk>"))
            out.append((game.extract_answer(text), L))
    return out


@pytest.mark.parametrize("mean", [False, True])
def test_proxy_fixed_point_by_brute_force(game, mean):
    """Every completion enumerated (Counter of class and length); the stationary policy of the
    proxy's reward R − τ w log π(y), w = 1 or 1/|y|, solved by bisection on its constant;
    the sum's has the closed form π(y) ∝ e^{R/τ}."""
    desc = describe_game(game)
    comps = Counter(_completions(game))
    assert sum(k for (a, _), k in comps.items() if a != OTHER) == game.digits ** game.length
    for j, p in enumerate(game.prompts):
        R = dict(zip(p.classes, p.scenario.R))
        w = {key: (key[1] if mean else 1) / game.tau for key in comps}

        def mass(c):
            return {key: k * math.exp(w[key] * (R[key[0]] - c)) for key, k in comps.items()}

        lo, hi = -100.0, 100.0
        for _ in range(300):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if sum(mass(mid).values()) > 1 else (lo, mid)
        m = mass(lo)
        ref = [sum(v for (a, _), v in m.items() if a == z) for z in p.classes]
        ref = np.array(ref) / sum(ref)
        if not mean:
            closed = [sum(k * math.exp(R[a] / game.tau) for (a, _), k in comps.items() if a == z)
                      for z in p.classes]
            assert ref == pytest.approx(np.array(closed) / sum(closed), rel=1e-9)
        dist, tv = proxy_fixed_point(desc, j, mean)
        assert dist == pytest.approx(ref, rel=1e-9, abs=1e-15)
        opt = game.optimum(j)
        assert tv == pytest.approx(0.5 * float(np.abs(ref - opt).sum()), rel=1e-9)
        assert tv > 0.01  # the proxy's bias: its fixed point is not the answer-level optimum
