"""aqpgen.integrations.verl against verl's own data structures and functions (verl 0.9.1).

Real verl code used: ``DataProto`` (``from_dict``, ``repeat(interleave=True)`` as the trainer
repeats each prompt ``rollout.n`` times, ``reorder`` as its sequence balancing does),
``BatchRewardManager`` (decodes the responses and calls our batch ``compute_score``),
``core_algos.register_adv_est`` / ``get_adv_estimator_fn`` (called with the keyword arguments
``ray_trainer.compute_advantage`` passes) and verl's own GRPO estimator as a second method.
Not run: a verl training loop (it needs Ray workers and vLLM / SGLang rollouts).  Oracle for
rewards: answers chosen here, grouped by dataset row, recounted with Counter, c_K from the .h5
file read with h5py.  Skipped when verl is not installed (``make test WITH_VERL=1``).
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

pytest.importorskip("verl")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import _trl_harness as h  # tiny word-level tokenizer and the h5py table reader
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.workers.reward_manager.batch import BatchRewardManager

from aqpgen.integrations.verl import register_verl_advantage, verl_batch_reward
from aqpgen.store.locate import find_table

TABLE = "kl-aqp-rho1"
ANSWERS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def tok():
    return h.build_tokenizer()


def make_batch(tok, n_rows: int, n: int, seed: int, resp_len: int = 4):
    """A DataProto shaped like verl's after rollout: rows repeated n times (interleaved), uid
    per prompt, responses = '<answer> is the' or empty (no answer), right-padded."""
    rng = np.random.default_rng(seed)
    prompt_ids = torch.tensor([tok.encode(f"what is the question {w}") for w in
                               ["alpha"] * n_rows])  # equal prompt texts on purpose
    base = DataProto.from_dict(
        tensors={"prompts": prompt_ids},
        non_tensors={"data_source": np.array(["toy"] * n_rows, dtype=object),
                     "reward_model": np.array([{"ground_truth": "alpha"}] * n_rows, dtype=object),
                     "extra_info": np.array([{"index": 100 + i} for i in range(n_rows)], dtype=object),
                     "uid": np.array([str(uuid.uuid4()) for _ in range(n_rows)], dtype=object)})
    data = base.repeat(repeat_times=n, interleave=True)
    B = len(data)
    chosen = [None if rng.random() < 0.1 else ANSWERS[rng.integers(0, 2 if i % 2 else 3)]
              for i in range(B)]
    resp = torch.zeros((B, resp_len), dtype=torch.long)
    lengths = []
    for i, a in enumerate(chosen):
        ids = tok.encode(f"{a} is the") if a is not None else tok.encode("<eos>")
        resp[i, : len(ids)] = torch.tensor(ids)
        lengths.append(len(ids))
    P = prompt_ids.shape[1]
    mask = torch.zeros((B, P + resp_len), dtype=torch.long)
    mask[:, :P] = 1
    for i, L in enumerate(lengths):
        mask[i, P: P + L] = 1
    data.batch["responses"] = resp
    data.batch["attention_mask"] = mask
    data.batch["response_mask"] = mask[:, P:]
    # copy the (shared, repeated) extra_info dicts: the manager writes into them
    data.non_tensor_batch["extra_info"] = np.array([dict(x) for x in data.non_tensor_batch["extra_info"]],
                                                   dtype=object)
    return data, chosen, lengths


@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_reward_manager_gives_table_rewards(tok, shuffle):
    table_path = str(find_table(TABLE))
    n = 4
    data, chosen, lengths = make_batch(tok, n_rows=3, n=n, seed=11)
    if shuffle:  # verl's _balance_batch reorders samples: group members become non-adjacent
        perm = torch.tensor(np.random.default_rng(0).permutation(len(data)))
        data.reorder(perm)
        chosen = [chosen[i] for i in perm.tolist()]
        lengths = [lengths[i] for i in perm.tolist()]
    mgr = BatchRewardManager(tok, num_examine=0,
                             compute_score=verl_batch_reward(h.first_word, TABLE, n))
    reward_tensor = mgr(data)
    got = [float(reward_tensor[i, lengths[i] - 1]) for i in range(len(data))]
    rows = [x["index"] for x in data.non_tensor_batch["extra_info"]]
    assert got == h.expected_rewards(chosen, rows, n, table_path)
    assert float(reward_tensor.abs().sum()) == pytest.approx(sum(abs(x) for x in got), rel=1e-6)
    assert len({x for x in chosen}) >= 2


def test_batch_reward_group_size_drift(tok):
    data, _, _ = make_batch(tok, n_rows=2, n=8, seed=3)
    mgr = BatchRewardManager(tok, num_examine=0,
                             compute_score=verl_batch_reward(h.first_word, TABLE, 4))
    with pytest.raises(ValueError, match=r"has 8 samples but every group must have K=4.*"
                                         r"actor_rollout_ref.rollout.n=4"):
        mgr(data)
    info = data.non_tensor_batch["extra_info"]
    for x in info:
        x.pop("index")
    with pytest.raises(ValueError, match="extra_info has no 'index'"):
        BatchRewardManager(tok, num_examine=0,
                           compute_score=verl_batch_reward(h.first_word, TABLE, 8))(data)


def test_batch_reward_refuses_float32_broken_table():
    with pytest.raises(ValueError, match=r"actor_rollout_ref.rollout.n=32.*float32.*"
                                         r"verl stores rewards as float32"):
        verl_batch_reward(h.first_word, "kl-minimax", 32)


@pytest.mark.parametrize("baseline", ["mean", "rloo"])
def test_registered_estimator_groups_by_uid(tok, baseline):
    n = 4
    data, _, _ = make_batch(tok, n_rows=3, n=n, seed=5)
    perm = torch.tensor(np.random.default_rng(1).permutation(len(data)))
    data.reorder(perm)
    scores = torch.tensor(np.random.default_rng(2).normal(size=len(data)), dtype=torch.float32)
    token_level = torch.zeros(data.batch["response_mask"].shape, dtype=torch.float32)
    for i in range(len(data)):
        token_level[i, int(data.batch["response_mask"][i].sum()) - 1] = scores[i]
    name = f"aqpgen_test_{baseline}"
    register_verl_advantage(name, n=n, baseline=baseline)
    fn = core_algos.get_adv_estimator_fn(name)
    # the keyword arguments ray_trainer.compute_advantage passes to a registered estimator
    adv, ret = fn(token_level_rewards=token_level, response_mask=data.batch["response_mask"],
                  config=None, index=data.non_tensor_batch["uid"])
    uid = data.non_tensor_batch["uid"]
    want = np.zeros(len(data))
    s = scores.double().numpy()
    for u in set(uid):
        idx = [i for i in range(len(data)) if uid[i] == u]
        for i in idx:
            others = [s[j] for j in idx if j != i]
            want[i] = s[i] - (np.mean([s[j] for j in idx]) if baseline == "mean" else np.mean(others))
    mask = data.batch["response_mask"].double().numpy()
    np.testing.assert_allclose(adv.double().numpy(), want[:, None] * mask, atol=1e-6)
    assert torch.equal(adv, ret)
    if baseline == "mean":  # second method: verl's GRPO estimator without std scaling
        adv_verl, _ = core_algos.compute_grpo_outcome_advantage(
            token_level, data.batch["response_mask"], uid, norm_adv_by_std_in_grpo=False)
        np.testing.assert_allclose(adv.numpy(), adv_verl.numpy(), atol=1e-6)


def test_registered_estimator_refuses_wrong_group_size(tok):
    data, _, _ = make_batch(tok, n_rows=2, n=4, seed=1)
    register_verl_advantage("aqpgen_test_n8", n=8)
    fn = core_algos.get_adv_estimator_fn("aqpgen_test_n8")
    with pytest.raises(ValueError, match=r"uid .* has 4 samples but every group must have K=8"):
        fn(token_level_rewards=torch.zeros(data.batch["response_mask"].shape),
           response_mask=data.batch["response_mask"], config=None,
           index=data.non_tensor_batch["uid"])
