"""Hugging Face TRL: a reward function for ``GRPOTrainer(reward_funcs=[...])``.

Public names
------------
trl_reward_func(extract_answer, table, num_generations=None, *, scale=1.0, name=None,
                on_none="unique", row_id="aqpgen_row", gather=False, allow_imprecise=False)
                         -- a reward function with TRL's signature
                            ``(prompts, completions, **kwargs) -> list[float]``.
add_row_ids(dataset, column="aqpgen_row") -- a copy of a ``datasets.Dataset`` with a row-id column.

How the groups are found (checked against TRL 1.16)
----------------------------------------------------
* **K comes from the trainer.**  TRL passes ``log_metric`` (a bound method of the trainer) to
  every reward function; through it the function reads ``trainer.num_generations`` in training
  and ``trainer.num_generations_eval`` in evaluation (mode = ``trainer.model.training``, as TRL
  decides it).  The old ``num_generations=`` keyword is still accepted; it must equal the
  trainer's ``num_generations`` (else a ValueError naming both settings).  Without a trainer
  (a direct call, or a TRL that passes no ``log_metric``), ``num_generations=`` is K.
* **Groups are consecutive runs of K**, exactly the layout TRL's sampler produces and its
  advantage code assumes (``rewards.view(-1, num_generations)``); they are never formed by
  comparing prompt texts, so two dataset rows with the same prompt stay two groups.  With a
  row-id column (``add_row_ids``; name ``row_id``), every run must carry one row id, which
  catches a misaligned batch; without it, a run whose prompts differ is refused.
* **Processes.**  TRL calls the function on each process's slice of the generation batch.  A
  slice that is not a whole number of groups is an error naming ``per_device_train_batch_size``
  (x ``steps_per_generation``) or ``per_device_eval_batch_size``, unless ``gather=True``: then
  answers are gathered from all processes (``accelerate.utils.gather_object``, in process
  order, as TRL gathers rewards), grouped globally and each process returns its own slice.
* **Precision.**  TRL stores rewards as float32: a K whose row breaks its certificate in float32
  is refused (naming K, the bound and the certificate) unless ``allow_imprecise=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aqpgen.integrations.grouping import (
    as_table,
    check_failed,
    check_served,
    consecutive_groups,
    rewards_of_groups,
)

__all__ = ["add_row_ids", "trl_reward_func"]

#: TRL converts every reward to a float32 tensor (``GRPOTrainer._calculate_rewards``).
TRL_REWARD_DTYPE = "float32"


def add_row_ids(dataset, column: str = "aqpgen_row"):
    """A copy of ``dataset`` (a ``datasets.Dataset``) with ``column`` = the row index.

    TRL passes every dataset column to reward functions, so :func:`trl_reward_func` can check
    that each group of K completions comes from one dataset row."""
    if column in getattr(dataset, "column_names", ()):
        raise ValueError(f"dataset already has a column {column!r}; pass another name")
    return dataset.map(lambda _, i: {column: i}, with_indices=True)


def _completion_text(completion) -> Any:
    """The text of a TRL completion: a str (standard format) or, for the conversational format, a
    list of messages whose first entry's ``"content"`` is the text (as TRL's own rewards read it)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[0], dict):
        return completion[0].get("content")
    if isinstance(completion, dict) and "content" in completion:
        return completion["content"]
    raise TypeError(
        "a completion must be a str or a list of chat messages ({'role': ..., 'content': ...}), "
        f"received {type(completion).__name__}: {completion!r:.80}")


def _find_trainer(kwargs: dict):
    """The GRPOTrainer calling us: TRL passes its bound methods ``log_metric`` / ``log_extra``."""
    for key in ("log_metric", "log_extra"):
        owner = getattr(kwargs.get(key), "__self__", None)
        if owner is not None and hasattr(owner, "num_generations") and hasattr(owner, "args"):
            return owner
    return None


def _positive_int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 1:
        raise ValueError(f"{what} must be a positive integer, received {x!r}")
    return x


def trl_reward_func(extract_answer: Callable[[Any], Any], table, num_generations: int | None = None,
                    *, scale: float = 1.0, name: str | None = None, on_none: str = "unique",
                    row_id: str | None = "aqpgen_row", gather: bool = False,
                    allow_imprecise: bool = False) -> Callable[..., list[float]]:
    """A reward function for TRL's ``GRPOTrainer(reward_funcs=[...])`` (module docstring).

    Completion i of a group of K gets ``scale * c_K[n_i]``, n_i = number of the group's
    completions whose extracted answer equals its own.

    Parameters
    ----------
    extract_answer : callable
        ``text -> answer`` (hashable, normalised), or ``None`` when no answer can be extracted.
    table : Table, path or table name
        Loaded once here.
    num_generations : int, optional
        Legacy: the group size.  With a trainer it must equal ``GRPOConfig.num_generations``
        (K is read from the trainer for training and evaluation); without one it is K.
    scale : float
        Multiplier applied to every reward (e.g. a game's temperature τ).
    name : str, optional
        The function's ``__name__`` (TRL logs rewards under it); default ``"aqpgen_<table>"``.
    on_none : {"unique", "raise"}
        Policy for completions whose answer is ``None`` (see ``aqpgen.integrations.grouping``).
    row_id : str or None
        Dataset column holding the row id (see :func:`add_row_ids`); used when present.
    gather : bool
        Group across processes (``accelerate.utils.gather_object``); needed when a process's
        slice of the generation batch is not a whole number of groups.
    allow_imprecise : bool
        Serve rows whose float32 rounding breaks their certificate.

    Raises
    ------
    ValueError
        At creation: ``num_generations`` absent from the table or refused in float32.  At call
        time: K disagreeing with the trainer, a group split across processes (without
        ``gather``), a run of K completions from different rows / prompts, an eval K absent
        from the table; every message names the setting to change.
    """
    if num_generations is not None:
        _positive_int(num_generations, "num_generations")
    check_failed(on_none)
    if not callable(extract_answer):
        raise TypeError(f"extract_answer must be callable, received {extract_answer!r}")
    t = as_table(table)
    scale = float(scale)
    checked: set[int] = set()

    def ensure(K: int, setting: str) -> None:
        if K not in checked:
            check_served(t, K, TRL_REWARD_DTYPE, setting=setting, allow_imprecise=allow_imprecise,
                         consumer="TRL stores rewards as float32")
            checked.add(K)

    if num_generations is not None:
        ensure(num_generations, f"trl_reward_func(num_generations={num_generations})")

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        fname = reward_func.__name__
        trainer = _find_trainer(kwargs)
        if trainer is not None:
            train = bool(getattr(trainer.model, "training", True))
            if num_generations is not None and num_generations != trainer.num_generations:
                raise ValueError(
                    f"{fname}: trl_reward_func(num_generations={num_generations}) disagrees with the "
                    f"trainer's GRPOConfig.num_generations={trainer.num_generations}; TRL groups "
                    f"completions in runs of {trainer.num_generations}.  Drop the num_generations "
                    f"keyword (K is read from the trainer) or make the two equal.")
            if train:
                K, setting = int(trainer.num_generations), "GRPOConfig.num_generations"
                batch = (f"per_device_train_batch_size ({trainer.args.per_device_train_batch_size}) "
                         f"x steps_per_generation ({trainer.args.steps_per_generation})")
            else:
                K, setting = int(trainer.num_generations_eval), "GRPOConfig.num_generations_eval"
                batch = f"per_device_eval_batch_size ({trainer.args.per_device_eval_batch_size})"
            setting = f"{setting}={K}"
        elif num_generations is not None:
            K, setting = num_generations, f"num_generations={num_generations}"
            batch = "each process's slice of the generation batch"
        else:
            raise ValueError(
                f"{fname}: cannot tell the group size K: no GRPOTrainer found in the call "
                f"(TRL >= 1.0 passes log_metric to reward functions) and no num_generations= given "
                f"to trl_reward_func.  Pass num_generations=K.")
        ensure(K, setting)
        answers = [extract_answer(_completion_text(c)) for c in completions]
        rows = kwargs.get(row_id) if row_id else None
        if rows is not None:
            keys, key_name = list(rows), f"dataset column {row_id!r}"
        elif prompts is not None and len(prompts) == len(completions):
            keys, key_name = [repr(p) for p in prompts], "prompt"
        else:
            keys, key_name = None, ""
        lo, hi = 0, len(answers)
        if gather:
            from accelerate.utils import gather_object

            rank = int(getattr(getattr(trainer, "accelerator", None), "process_index", 0)
                       if trainer is not None else _process_index())
            sizes = gather_object([len(answers)])
            lo, hi = sum(sizes[:rank]), sum(sizes[:rank]) + len(answers)
            answers = gather_object(answers)
            keys = gather_object(keys) if keys is not None else None
        fix = (f"With {setting}, {batch} must be a multiple of {K} so that each process holds "
               f"whole groups; or pass gather=True to trl_reward_func to group across processes."
               if not gather else f"Check {setting} against the trainer's batch layout.")
        try:
            groups = consecutive_groups(len(answers), K, keys, key_name=key_name, fix=fix)
        except ValueError as exc:
            raise ValueError(f"{fname}: {exc}") from None
        out = rewards_of_groups(answers, groups, t, K, failed=on_none, scale=scale,
                                dtype=TRL_REWARD_DTYPE, allow_imprecise=allow_imprecise)
        return out[lo:hi]

    reward_func.__name__ = reward_func.__qualname__ = name or f"aqpgen_{t.name}".replace("-", "_")
    return reward_func


def _process_index() -> int:
    from accelerate import PartialState

    return int(PartialState().process_index)
