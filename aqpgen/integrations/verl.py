"""verl: table rewards for a whole batch, and a group-checking advantage estimator keyed by uid.

Public names
------------
verl_batch_reward(extract_answer, table, n, ...)  -- a ``compute_score`` for verl's batch reward
                                                    manager (``reward_model.reward_manager=batch``).
register_verl_advantage(name, n, baseline="mean") -- register an advantage estimator with
                                                    ``verl.trainer.ppo.core_algos.register_adv_est``.
group_advantages(scores, index, n, baseline)      -- the estimator's arithmetic (numpy / torch).

Where the group is visible in verl (checked against verl 0.9.1)
---------------------------------------------------------------
verl's per-sample ``compute_score(data_source, solution_str, ground_truth, extra_info)`` sees
one completion.  Two places see a whole group:

* the **batch reward manager** calls ``compute_score(data_sources=, solution_strs=,
  ground_truths=, extra_infos=)`` once for the whole batch; the samples of one prompt carry the
  same dataset row id in ``extra_info`` (verl's data preprocessing writes
  ``extra_info={"index": row, ...}``; the trainer repeats each row ``rollout.n`` times).
  :func:`verl_batch_reward` groups by that row id (``group_key``), checks every group has
  exactly ``n`` = ``actor_rollout_ref.rollout.n`` samples, and returns ``scale * c_n[count]``
  (plus an optional per-sample task score);
* the **advantage step**: ``compute_advantage`` passes ``token_level_rewards``,
  ``response_mask`` and ``index = non_tensor_batch["uid"]`` to a registered estimator.  It sees
  scores, not answers, so the table lookup cannot live there; :func:`register_verl_advantage`
  registers an estimator that groups by uid (members need not be adjacent: verl may reorder the
  batch to balance sequence lengths), refuses a uid group whose size is not ``n``, and applies
  a baseline: ``"mean"`` (group mean, no std scaling: the E[c_K[n]] guarantee survives an
  additive per-group baseline) or ``"rloo"`` (leave-one-out mean).

verl stores rewards as float32 (``reward_tensor``): the precision guard checks float32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aqpgen.integrations.grouping import (
    keyed_groups,
    rewards_of_groups,
    served_table,
)

__all__ = ["BASELINES", "group_advantages", "register_verl_advantage", "verl_batch_reward"]

BASELINES = ("mean", "rloo")
#: verl's reward managers write rewards into a float32 tensor.
VERL_REWARD_DTYPE = "float32"


def verl_batch_reward(extract_answer: Callable[[str], Any], table, n: int, *,
                      group_key: str = "index", scale: float = 1.0,
                      task_score: Callable[..., float] | None = None, on_none: str = "unique",
                      allow_imprecise: bool = False) -> Callable[..., list[float]]:
    """A batch ``compute_score`` for verl's ``BatchRewardManager``.

    Parameters
    ----------
    extract_answer : callable
        ``solution_str -> answer`` (hashable) or ``None``.
    table : Table, path or table name
    n : int
        ``actor_rollout_ref.rollout.n``: the group size K.
    group_key : str
        Key of ``extra_info`` holding the dataset row id (verl's examples write ``"index"``).
    scale : float
        Multiplier of the table reward (e.g. the game's temperature τ).
    task_score : callable, optional
        ``task_score(data_source, solution_str, ground_truth, extra_info) -> float`` (verl's
        per-sample signature) added to each sample's table reward.
    on_none, allow_imprecise
        As for :func:`aqpgen.integrations.trl_reward_func`.

    Returns
    -------
    ``compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)`` ->
    list of floats, one per sample.
    """
    t = served_table(table, n, VERL_REWARD_DTYPE, setting="actor_rollout_ref.rollout.n",
                     on_none=on_none, allow_imprecise=allow_imprecise,
                     consumer="verl stores rewards as float32")
    scale = float(scale)

    def compute_score(data_sources: Sequence, solution_strs: Sequence[str], ground_truths: Sequence,
                      extra_infos: Sequence[dict], **kwargs) -> list[float]:
        if len(extra_infos) != len(solution_strs):
            raise ValueError(f"{len(extra_infos)} extra_infos for {len(solution_strs)} solutions")
        try:
            keys = [info[group_key] for info in extra_infos]
        except (KeyError, TypeError):
            raise ValueError(
                f"verl_batch_reward: extra_info has no {group_key!r} (the dataset row id that "
                f"groups the rollout.n samples of one prompt); add it in the dataset's extra_info "
                f"or pass group_key=") from None
        groups = keyed_groups(keys, n, key_name=f"extra_info[{group_key!r}]",
                              fix=f"Each dataset row must have actor_rollout_ref.rollout.n={n} "
                                  f"samples in one batch (and row ids must be unique).")
        answers = [extract_answer(s) for s in solution_strs]
        out = rewards_of_groups(answers, groups, t, n, on_none=on_none, scale=scale,
                                dtype=VERL_REWARD_DTYPE, allow_imprecise=allow_imprecise)
        if task_score is not None:
            out = [r + float(task_score(ds, s, gt, info))
                   for r, ds, s, gt, info in zip(out, data_sources, solution_strs, ground_truths,
                                                 extra_infos)]
        return out

    return compute_score


def group_advantages(scores, index: Sequence, n: int | None, baseline: str = "mean"):
    """Per-sample advantage ``score - baseline`` within uid groups (numpy or torch 1-d scores).

    ``baseline="mean"``: the group mean; ``"rloo"``: the mean of the other n - 1 members.  No
    division by a standard deviation.  Every uid group must have ``n`` members (all equal if n
    is None)."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, received {baseline!r}")
    groups = keyed_groups(list(index), n, key_name="uid",
                          fix="verl's uid groups must hold actor_rollout_ref.rollout.n samples each "
                              "(a filtered or truncated group breaks the table's group size).")
    adv = scores * 0
    for g in groups:
        k = len(g)
        if baseline == "rloo" and k < 2:
            raise ValueError("baseline='rloo' needs groups of at least 2 samples")
        s = scores[g]
        total = s.sum()
        adv[g] = s - (total / k if baseline == "mean" else (total - s) / (k - 1))
    return adv


def register_verl_advantage(name: str = "aqpgen", n: int | None = None,
                            baseline: str = "mean") -> Callable:
    """Register an outcome-advantage estimator under ``name`` with verl (``algorithm.adv_estimator
    = name``).  Returns the registered function.

    The estimator sums each sample's ``token_level_rewards``, subtracts the uid group's baseline
    (:func:`group_advantages`) and broadcasts over ``response_mask``; it returns
    ``(advantages, returns)`` like verl's built-in estimators."""
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, received {baseline!r}")
    from verl.trainer.ppo import core_algos

    def aqpgen_advantage(token_level_rewards, response_mask, index=None, config=None, **kwargs):
        if index is None:
            raise ValueError(f"adv_estimator={name!r} needs the uid index (non_tensor_batch['uid'])")
        import torch

        with torch.no_grad():
            scores = token_level_rewards.sum(dim=-1)
            adv = group_advantages(scores, index, n, baseline)
            adv = adv.unsqueeze(-1) * response_mask
        return adv, adv

    aqpgen_advantage.__name__ = f"aqpgen_advantage_{name}"
    existing = core_algos.ADV_ESTIMATOR_REGISTRY.get(name)
    if existing is not None and getattr(existing, "__name__", "") == aqpgen_advantage.__name__:
        core_algos.ADV_ESTIMATOR_REGISTRY.pop(name)  # re-registration by us replaces ours
    return core_algos.register_adv_est(name)(aqpgen_advantage)

