"""OpenRLHF: a per-prompt hook that scores the n samples of one prompt together.

Public names
------------
openrlhf_group_hook(extract_answer, table, n, ...) -- ``hook(responses, tokenizer)``: set the
                                                     table rewards of one prompt's responses.
wrap_generate_responses(generate_responses, hook)  -- wrap the engine's per-prompt coroutine.

Where the group is visible in OpenRLHF (checked against OpenRLHF 0.11.2)
------------------------------------------------------------------------
The custom ``reward_func(queries, prompts, labels)`` is called with one sample at a time
(``SingleTurnAgentExecutor._fetch_rewards_via_func`` uses batch size 1), so it cannot count
answers.  The n samples of one prompt meet in the rollout actor's coroutine
``RolloutRayActor.generate_responses(prompt, label, sampling_params, max_length, hf_tokenizer,
num_samples)`` (``openrlhf.trainer.ray.vllm_engine``), which returns the list of n response
dicts (``observation_tokens``, ``action_ranges``, ``reward``, ``scores``, ``extra_logs``, ...)
that ``SamplesGenerator`` turns into experiences (``info["reward"]`` from ``reward``).  The hook
decodes each response's action span, extracts the answer, counts within the list and writes
``reward = scores = scale * c_n[count]`` (added to an existing reward when ``add=True``) and
``extra_logs["aqpgen_count"]``.  :func:`wrap_generate_responses` wraps that coroutine so the
hook runs on every prompt's list.  The wrapped method must be the one the rollout actors run:
``RolloutRayActor`` is a Ray actor class (``@ray.remote``) whose class Ray ships to the actor
processes when the engines are created, so patch it in the driver before
``create_vllm_engines`` runs.  Not verified end to end here (it needs vLLM and Ray GPU actors):
the tests run OpenRLHF's own response construction (``SingleTurnAgentExecutor.execute``) with
stand-ins for the engine and the actor.  OpenRLHF keeps rewards in float32 tensors: the precision guard
checks float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aqpgen.integrations.grouping import (
    group_counts,
    served_table,
)

__all__ = ["openrlhf_group_hook", "wrap_generate_responses"]

OPENRLHF_REWARD_DTYPE = "float32"


def _action_text(response: dict, tokenizer) -> str:
    tokens = response["observation_tokens"]
    ids = [t for start, end in response["action_ranges"] for t in tokens[start:end]]
    return tokenizer.decode(ids, skip_special_tokens=True)


def openrlhf_group_hook(extract_answer: Callable[[str], Any], table, n: int, *, scale: float = 1.0,
                        add: bool = False, on_none: str = "unique",
                        allow_imprecise: bool = False) -> Callable[[list, Any], list]:
    """A hook ``hook(responses, tokenizer) -> responses`` for the n responses of one prompt.

    Parameters
    ----------
    extract_answer : callable
        ``response text -> answer`` (hashable) or ``None``.
    table : Table, path or table name
    n : int
        ``--rollout.n_samples_per_prompt`` (the group size K).
    scale : float
        Multiplier of the table reward.
    add : bool
        Add to the ``reward`` already set by a reward function / remote RM (else replace it).
    """
    t = served_table(table, n, OPENRLHF_REWARD_DTYPE, setting="rollout.n_samples_per_prompt",
                     failed=on_none, allow_imprecise=allow_imprecise,
                     consumer="OpenRLHF keeps rewards in float32")
    scale = float(scale)

    def hook(responses: list, tokenizer) -> list:
        if len(responses) != n:
            raise ValueError(
                f"openrlhf_group_hook: one prompt produced {len(responses)} responses but "
                f"rollout.n_samples_per_prompt={n}: the hook must see one prompt's whole group")
        # one group of n: its counts (None answers count 1) and their rewards; the precision of
        # the served dtype was checked once by served_table
        counts = group_counts([extract_answer(_action_text(r, tokenizer)) for r in responses],
                              on_none)
        rewards = (scale * t.lookup(counts, n, allow_imprecise=allow_imprecise)).tolist()
        for r, value, count in zip(responses, rewards, counts.tolist()):
            base = r.get("reward") if add else None
            total = value + (float(base) if base is not None else 0.0)
            r["reward"] = r["scores"] = total
            r["extra_logs"] = {**(r.get("extra_logs") or {}), "aqpgen_count": count}
        return responses

    return hook


def wrap_generate_responses(generate_responses: Callable, hook: Callable) -> Callable:
    """Wrap ``RolloutRayActor.generate_responses`` (an ``async`` method returning one prompt's
    list of responses) so that ``hook(responses, hf_tokenizer)`` runs on every prompt's group."""

    @functools.wraps(generate_responses)
    async def wrapped(self, prompt, label, sampling_params, max_length, hf_tokenizer,
                      num_samples: int = 1, images=None):
        responses = await generate_responses(self, prompt, label, sampling_params, max_length,
                                             hf_tokenizer, num_samples=num_samples, images=images)
        return hook(responses, hf_tokenizer)

    return wrapped
