"""A real TRL GRPOTrainer (CPU, tiny locally built Qwen2, a few steps) against the table file.

Every reward TRL used (the tensor ``GRPOTrainer._calculate_rewards`` returns, from which it
computes advantages) is compared with float32(c_K[n]), n recounted independently from the
completion texts grouped by dataset row, c_K read from the .h5 file with h5py
(tests/_trl_harness.py).  Skipped only when trl is not installed (``make test WITH_TRL=1``
installs it; CI does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("torch")

import _trl_harness as h  # tests/ is on sys.path (pytest rootdir), like _kl_oracles

from aqpgen.store.locate import find_table

TABLE = "kl-aqp-rho1"
SLOW_NOTE = "one GRPOTrainer run: ~2-5 s after TRL's import (~10 s, once)"


@pytest.fixture(scope="module")
def table_path():
    return str(find_table(TABLE))


def _run(tmp_path, table_path, **cfg):
    cfg = {"output_dir": str(tmp_path / "out"), "table": table_path,
           "extra": {"temperature": 0.3}, **cfg}
    return h.run(cfg)


def _assert_varied(stats, K):
    """The run must exercise more than one count, or it could not catch a wrong n."""
    ns = {n for (k, n) in stats["counts"] if k == K}
    assert len(ns) >= 2, f"degenerate run: only counts {ns} at K={K}; pick another seed"


def test_grpo_rewards_equal_table(tmp_path, table_path):
    recs = _run(tmp_path, table_path, G=4, batch=8, steps=3, seed=1)
    stats = h.check(recs, table_path, {"train": 4})
    assert stats["calls"] == 3 and stats["checked"] == 24
    _assert_varied(stats, 4)


def test_grpo_conversational_accumulation_iterations(tmp_path, table_path):
    recs = _run(tmp_path, table_path, G=4, batch=4, steps=2, seed=2, conversational=True,
                extra={"temperature": 0.3, "gradient_accumulation_steps": 2, "num_iterations": 2})
    stats = h.check(recs, table_path, {"train": 4})
    # generation once per steps_per_generation (= 2) x num_iterations (= 2) optimizer steps
    assert stats["checked"] == len(recs) * 8 and stats["calls"] >= 1


def test_grpo_eval_group_size_differs(tmp_path, table_path):
    recs = _run(tmp_path, table_path, G=4, G_eval=2, eval_batch=4, batch=8, steps=2, seed=3)
    modes = {r["mode"] for r in recs}
    assert modes == {"train", "eval"}
    stats = h.check(recs, table_path, {"train": 4, "eval": 2})
    assert any(k == 2 for (k, _) in stats["counts"]) and any(k == 4 for (k, _) in stats["counts"])


def test_grpo_duplicate_prompts_in_different_rows(tmp_path, table_path):
    """Every row has the same prompt text: each batch holds two rows = two groups of K."""
    recs = _run(tmp_path, table_path, G=4, batch=8, steps=2, seed=4, duplicate_prompts=True,
                n_rows=4)
    stats = h.check(recs, table_path, {"train": 4})
    assert all(len(set(rec["rows"])) == 2 for rec in recs)  # two rows, one prompt, per batch
    _assert_varied(stats, 4)


def test_grpo_factory_K_disagrees_with_trainer(tmp_path, table_path):
    with pytest.raises(ValueError, match=r"num_generations=4\) disagrees with the trainer's "
                                         r"GRPOConfig.num_generations=8"):
        _run(tmp_path, table_path, G=8, batch=8, steps=1, factory={"num_generations": 4})


def test_grpo_legacy_keyword_accepted(tmp_path, table_path):
    recs = _run(tmp_path, table_path, G=4, batch=4, steps=1, factory={"num_generations": 4})
    h.check(recs, table_path, {"train": 4})


def test_checker_fails_on_a_wrong_reward(tmp_path, table_path):
    """Negative control: the same check rejects a record where one reward differs."""
    recs = _run(tmp_path, table_path, G=4, batch=4, steps=1, seed=5)
    h.check(recs, table_path, {"train": 4})
    bad = json.loads(json.dumps(recs))
    bad[0]["rewards"][2] = float(bad[0]["rewards"][2]) + 2.0 ** -20
    with pytest.raises(AssertionError, match="TRL used"):
        h.check(bad, table_path, {"train": 4})
    swapped = json.loads(json.dumps(recs))
    swapped[0]["rows"] = [swapped[0]["rows"][0]] * 2 + [10**6] * 2  # wrong grouping
    with pytest.raises(AssertionError, match="completions, K=4"):
        h.check(swapped, table_path, {"train": 4})


def _launch_two(tmp_path, table_path, **cfg):
    cfg = {"output_dir": str(tmp_path / "out"), "table": table_path,
           "extra": {"temperature": 0.3}, **cfg}
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                                         os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # torchrun: two CPU processes (gloo); accelerate's PartialState reads RANK / WORLD_SIZE
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", str(29500 + os.getpid() % 1000), str(Path(h.__file__)),
         str(cfg_path), str(tmp_path / "rec")],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    return proc


def test_grpo_two_processes_split_groups_with_gather(tmp_path, table_path):
    """G=4 with per-device batch 2 on 2 processes: each group spans both processes.  (Without
    gather=True the same layout is refused naming per_device_train_batch_size: checked in
    tests/test_integrations.py, test_trl_split_group_names_the_setting.)"""
    proc = _launch_two(tmp_path, table_path, G=4, batch=2, steps=2, seed=6,
                       factory={"gather": True})
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_rank = [json.loads((tmp_path / f"rec.{r}.json").read_text()) for r in (0, 1)]
    assert {rec["world"] for recs in per_rank for rec in recs} == {2}
    merged = h.merge_ranks(per_rank)
    stats = h.check(merged, table_path, {"train": 4})
    assert stats["checked"] == 2 * 4


# ------------------------------------------------------------------------ uneven groups
DROP = {"G": 8, "batch": 8, "steps": 2, "seed": 0, "max_completion_length": 24,
        "extra": {"temperature": 1.0}}


def test_grpo_truncated_left_out_group_of_7_refused_by_default(tmp_path, table_path):
    """drop_truncated=True: seed 0 truncates one completion in each of two rows, leaving groups
    of 7 under GRPOConfig.num_generations=8, refused without uneven="serve"."""
    with pytest.raises(ValueError, match=r"a group of 7 answers where GRPOConfig.num_generations=8 "
                                         r"\(K=8\)\.  Uneven groups are refused by default.*"
                                         r"uneven=\"serve\""):
        _run(tmp_path, table_path, **DROP, factory={"drop_truncated": True})


def test_grpo_truncated_left_out_group_of_7_served(tmp_path, table_path):
    recs = _run(tmp_path, table_path, **DROP,
                factory={"drop_truncated": True, "uneven": "serve"})
    sizes = h.check_dropped(recs, table_path, 8, DROP["max_completion_length"])
    assert sizes == {7: 2}, sizes  # both rows scored with the K' = 7 row


# ------------------------------------------------------------------------ the async trainer
def _async_loop(reward, num_generations=8):
    """TRL's own rollout loop object (``_AsyncRolloutLoop``, what the async trainer's spawned
    child runs), built by its constructor from kwargs that went through pickle as
    ``AsyncRolloutWorker.start`` sends them (vLLM, which the worker class requires, is not
    installable here, so the loop's HTTP generation is not run: groups are scored directly)."""
    import multiprocessing as mp
    import pickle

    from accelerate.state import PartialState
    from trl.experimental.async_grpo.async_rollout_worker import _AsyncRolloutLoop

    PartialState()  # the child does this before building the loop
    tok = h.build_tokenizer()
    tok.response_schema = {"type": "object"}  # a template TRL does not know: no tool parsing
    kw = pickle.loads(pickle.dumps({"model_name": "tiny", "dataset": h.make_dataset(2, conversational=True),
                                    "reward_funcs": [reward], "processing_class": tok,
                                    "eos_token_ids": [1], "num_generations": num_generations}))
    ctx = mp.get_context("spawn")
    return _AsyncRolloutLoop(**kw, rollout_buffer=ctx.Queue(), model_version_value=ctx.Value("i", 0),
                             heartbeat_value=ctx.Value("d", 0.0), failed_event=ctx.Event(),
                             exception_info_queue=ctx.Queue(maxsize=1), metrics_queue=ctx.Queue())


def _score(loop, texts):
    """One group through the loop's ``_score_group``, built as its ``_generate_loop`` builds it."""
    import asyncio

    from trl.experimental.async_grpo.async_rollout_worker import RolloutGroup, TrainingSequence

    row = next(iter(loop.dataset))
    n = len(texts)
    seq = [[TrainingSequence(input_ids=[5, 6], completion_mask=[0, 1], old_log_probs=[0.0, 0.0],
                             rollout_id=f"r{i}")] for i in range(n)]
    group = RolloutGroup(
        prompts=[row["prompt"]] * n,
        reward_kwargs={k: [row[k]] * n for k in row if k not in {"prompt", "completion", "completion_ids"}},
        completions=[[{"role": "assistant", "content": t}] for t in texts],
        completions_ids=[[5]] * n, completions_sequences=seq, tool_call_counts=[0] * n,
        tool_failure_counts=[0] * n, model_version=0, group_id=0, env_rewards=[],
        rollout_rewards=[None] * n)
    return asyncio.run(loop._score_group(group))


ASYNC_TEXTS = ["alpha", "beta is", "", "alpha the", "gamma", "", "alpha", ""]


def test_async_grpo_scores_one_group(table_path):
    pytest.importorskip("aiohttp")
    from aqpgen.integrations import trl_async_reward_func

    reward = trl_async_reward_func(h.first_word, TABLE)
    samples = _score(_async_loop(reward), ASYNC_TEXTS)
    answers = [h.first_word(t) for t in ASYNC_TEXTS]
    want = h.expected_rewards(answers, [0] * 8, 8, table_path, float32=False)
    assert [s.metrics["reward"] for s in samples] == want
    assert [s.metrics["rewards/aqpgen_kl_aqp_rho1"] for s in samples] == want


def test_async_grpo_exclude_gives_nan_and_zero_advantage(table_path):
    pytest.importorskip("aiohttp")
    from collections import Counter

    from aqpgen.integrations import trl_async_reward_func

    reward = trl_async_reward_func(h.first_word, TABLE, failed="exclude")
    samples = _score(_async_loop(reward), ASYNC_TEXTS)
    answers = [h.first_word(t) for t in ASYNC_TEXTS]
    ok = [a for a in answers if a is not None]
    c = h.read_table_row(table_path, len(ok))  # K' = 5
    freq = Counter(ok)
    for s, a in zip(samples, answers):
        if a is None:  # TRL's worker leaves NaN out of the group's mean / std: advantage 0
            assert s.metrics["reward"] != s.metrics["reward"] and s.advantage == 0.0
        else:
            assert s.metrics["reward"] == c[freq[a] - 1] and s.advantage != 0.0


def test_async_grpo_group_of_7_under_8(table_path):
    pytest.importorskip("aiohttp")
    from aqpgen.integrations import trl_async_reward_func

    texts = ASYNC_TEXTS[:7]
    loop = _async_loop(trl_async_reward_func(h.first_word, TABLE, num_generations=8), 7)
    with pytest.raises(ValueError, match=r"a group of 7 answers where AsyncGRPOConfig.num_generations"
                                         r"=8 \(K=8\).*uneven=\"serve\""):
        _score(loop, texts)
    served = trl_async_reward_func(h.first_word, TABLE, num_generations=8, uneven="serve")
    samples = _score(_async_loop(served, 7), texts)
    answers = [h.first_word(t) for t in texts]
    assert [s.metrics["reward"] for s in samples] == h.expected_rewards(
        answers, [0] * 7, 7, table_path, float32=False)
