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
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from aqpgen.integrations.grouping import finite_scale, group_counts, group_values, served_table

__all__ = ["openrlhf_group_hook", "wrap_generate_responses"]

OPENRLHF_REWARD_DTYPE = "float32"


def _action_text(response: dict, tokenizer) -> str:
    tokens = response["observation_tokens"]
    ids = [t for start, end in response["action_ranges"] for t in tokens[start:end]]
    return tokenizer.decode(ids, skip_special_tokens=True)


def _base_reward(response: dict, i: int) -> float:
    """The reward a reward function / remote RM already set (``add=True``): a real number or a
    one-element tensor, finite; 0 when absent."""
    base = response.get("reward")
    if base is None:
        return 0.0
    if hasattr(base, "numel") and base.numel() == 1:
        base = base.item()
    if isinstance(base, (bool, np.bool_)) or not isinstance(base, numbers.Real):
        raise TypeError(f"openrlhf_group_hook(add=True): responses[{i}]['reward'] must be a real "
                        f"number or a one-element tensor, received {base!r:.80}")
    if not math.isfinite(float(base)):
        raise ValueError(f"openrlhf_group_hook(add=True): responses[{i}]['reward'] = {base!r}")
    return float(base)


def openrlhf_group_hook(extract_answer: Callable[[str], Any], table, n: int, *, scale: float = 1.0,
                        add: bool = False, failed: str = "unique", uneven: str = "refuse",
                        allow_imprecise: bool = False) -> Callable[[list, Any], list]:
    """A hook ``hook(responses, tokenizer) -> responses`` for the n responses of one prompt.

    Parameters
    ----------
    extract_answer : callable
        ``response text -> answer`` (hashable) or ``None`` / NaN when none can be extracted.
    table : Table, path or table name
    n : int
        ``--rollout.n_samples_per_prompt`` (the group size K; numpy integers accepted).
    scale : float
        Finite multiplier of the table reward.
    add : bool
        Add to the ``reward`` already set by a reward function / remote RM (else replace it).
    failed : {"unique", "pool", "raise"}
        Policy for failed answers (``aqpgen.integrations.grouping``).  ``"exclude"`` is refused:
        it gives NaN rewards, and OpenRLHF's advantage step averages each prompt's rewards
        (``rewards.reshape(-1, n_samples_per_prompt).mean(-1)``) without skipping NaN.
    uneven : {"refuse", "serve"}
        A prompt with K' < n responses: refused (default) or scored with the K' row.  OpenRLHF's
        advantage step reshapes rewards by ``n_samples_per_prompt``, so serve short groups only
        where your OpenRLHF set-up itself handles them.
    """
    if failed == "exclude":
        raise ValueError("openrlhf_group_hook: failed=\"exclude\" would give NaN rewards, which "
                         "OpenRLHF's advantage step (a mean over each prompt's n rewards) does not "
                         "skip; use failed=\"unique\", \"pool\" or \"raise\"")
    t = served_table(table, n, OPENRLHF_REWARD_DTYPE, setting="rollout.n_samples_per_prompt",
                     failed=failed, uneven=uneven, allow_imprecise=allow_imprecise,
                     consumer="OpenRLHF keeps rewards in float32")
    n, scale = int(n), finite_scale(scale)

    def hook(responses: list, tokenizer) -> list:
        answers = [extract_answer(_action_text(r, tokenizer)) for r in responses]
        try:
            values = group_values(answers, t, n, failed=failed, uneven=uneven,
                                  dtype=OPENRLHF_REWARD_DTYPE, allow_imprecise=allow_imprecise,
                                  setting=f"rollout.n_samples_per_prompt={n}")
        except ValueError as exc:
            raise ValueError(f"openrlhf_group_hook (one prompt's responses): {exc}") from None
        counts = group_counts(answers, failed).tolist()
        for i, (r, value, count) in enumerate(zip(responses, values.tolist(), counts)):
            total = scale * value + (_base_reward(r, i) if add else 0.0)
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
