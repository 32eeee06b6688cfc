"""aqpgen.integrations.openrlhf against OpenRLHF's own response records (OpenRLHF 0.11.2).

Real OpenRLHF code used: ``openrlhf.utils.agent.SingleTurnAgentExecutor.execute`` builds every
response dict (prompt tokenisation, ``observation_tokens``, ``action_ranges``, ``reward`` /
``scores`` / ``extra_logs`` fields), including its own per-sample ``reward_func`` path (a
reward-function file, called with batch size 1).  Stand-ins, because vLLM cannot be installed
here: the LLM engine (an object whose async ``generate`` returns fixed token ids, in vLLM's
``outputs[0].token_ids`` shape) and ``LLMRayActor.generate_responses`` (its module imports vLLM;
the stand-in has the same signature and, like the original, awaits ``executor.execute`` once
per sample and returns the list).  Oracle: answers chosen here, Counter, c_K from the .h5 file
read with h5py.  Skipped when openrlhf is not installed (``make test WITH_OPENRLHF=1``).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("openrlhf")
pytest.importorskip("aiohttp")
pytest.importorskip("transformers")

import _trl_harness as h
from openrlhf.utils.agent import SingleTurnAgentExecutor

from aqpgen.integrations.openrlhf import openrlhf_group_hook, wrap_generate_responses
from aqpgen.store.locate import find_table

TABLE = "kl-aqp-rho1"


class StubEngine:
    """vLLM stand-in: ``generate`` returns the next scripted completion's token ids."""

    def __init__(self, tok, texts):
        self.tok, self.texts = tok, list(texts)

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        ids = self.tok.encode(self.texts.pop(0)) if self.texts else []
        return SimpleNamespace(outputs=[SimpleNamespace(token_ids=ids, finish_reason="stop",
                                                        logprobs=None)])


class StubActor:
    def __init__(self, executor, engine):
        self.executor, self.engine = executor, engine

    async def generate_responses(self, prompt, label, sampling_params, max_length, hf_tokenizer,
                                 num_samples=1, images=None):
        tasks = [self.executor.execute(prompt=prompt, label=label, sampling_params=sampling_params,
                                       max_length=max_length, hf_tokenizer=hf_tokenizer,
                                       llm_engine=self.engine, images=images)
                 for _ in range(num_samples)]
        return await asyncio.gather(*tasks)


def _expected(answers, K, scale=1.0, base=None, table=TABLE):
    """One group: scale * c_K[n] of ``table`` (+ base), recounted by the shared oracle (OpenRLHF
    keeps the Python float)."""
    want = h.expected_rewards(answers, [0] * K, K, find_table(table), scale, float32=False)
    return [w + (0.0 if base is None else base[i]) for i, w in enumerate(want)]


def _run(hook, texts, reward_file=None):
    tok = h.build_tokenizer()
    executor = SingleTurnAgentExecutor(remote_rm_url=reward_file)
    actor = StubActor(executor, StubEngine(tok, texts))
    gen = wrap_generate_responses(StubActor.generate_responses, hook)
    params = SimpleNamespace(max_tokens=4, logprobs=None)
    return asyncio.run(gen(actor, "what is the question alpha", "alpha", params, 32, tok,
                           num_samples=len(texts)))


TEXTS = ["alpha is", "beta", "alpha the", "", "alpha", "beta is the", "gamma", "alpha"]
ANSWERS = [h.first_word(t) for t in TEXTS]


def test_group_hook_sets_table_rewards():
    K = len(TEXTS)
    responses = _run(openrlhf_group_hook(h.first_word, TABLE, K), TEXTS)
    assert len(responses) == K and all("observation_tokens" in r for r in responses)
    got = [r["reward"] for r in responses]
    want = _expected(ANSWERS, K)
    assert got == want and [r["scores"] for r in responses] == want
    assert [r["extra_logs"]["aqpgen_count"] for r in responses] == [4, 2, 4, 1, 4, 2, 1, 4]
    assert np.float32(got[0]) == np.float32(want[0])


def test_group_hook_adds_to_openrlhf_reward_func(tmp_path):
    """OpenRLHF's own per-sample reward_func path sets reward; add=True adds the table reward."""
    rf = tmp_path / "reward.py"
    rf.write_text("import torch\n"
                  "def reward_func(queries, prompts, labels):  # OpenRLHF calls it per sample\n"
                  "    words = queries[0].split()[5:]  # after the 5-word prompt\n"
                  "    r = 1.0 if words[:1] == [labels[0]] else 0.0\n"
                  "    return {'rewards': torch.tensor(r), 'scores': torch.tensor(r), 'extra_logs': {}}\n")
    K = len(TEXTS)
    responses = _run(openrlhf_group_hook(h.first_word, TABLE, K, scale=0.5, add=True), TEXTS,
                     reward_file=str(rf))
    base = [1.0 if a == "alpha" else 0.0 for a in ANSWERS]
    assert [r["reward"] for r in responses] == pytest.approx(_expected(ANSWERS, K, 0.5, base),
                                                             rel=0, abs=1e-12)


def test_group_hook_refuses_partial_group_and_broken_precision():
    with pytest.raises(ValueError, match=r"a group of 8 answers where rollout.n_samples_per_prompt=4"):
        _run(openrlhf_group_hook(h.first_word, TABLE, 4), TEXTS)
    with pytest.raises(ValueError, match=r"rollout.n_samples_per_prompt=32.*float32"):
        openrlhf_group_hook(h.first_word, "kl-minimax", 32)
