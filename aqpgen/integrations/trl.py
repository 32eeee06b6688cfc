"""Hugging Face TRL: reward functions for ``GRPOTrainer`` and for TRL's async GRPO trainer.

Public names
------------
trl_reward_func(extract_answer, table, num_generations=None, *, scale=1.0, name=None,
                failed="unique", uneven="refuse", drop_truncated=False, row_id="aqpgen_row",
                gather=False, allow_imprecise=False)
                         -- a reward function with TRL's signature
                            ``(prompts, completions, **kwargs) -> list[float]``.
trl_async_reward_func(extract_answer, table, *, num_generations=None, scale=1.0, name=None,
                      failed="unique", uneven="refuse", allow_imprecise=False)
                         -- a picklable reward function for ``trl.experimental.async_grpo``
                            (one call per group; K = the group's size).
add_row_ids(dataset, column="aqpgen_row") -- a copy of a ``datasets.Dataset`` with a row-id column.

How the groups are found by ``trl_reward_func`` (checked against TRL 1.16)
---------------------------------------------------------------------------
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
* **Uneven groups.**  TRL's sampler gives every row K completions; a group has fewer when
  completions are left out: ``drop_truncated=True`` leaves out the completions TRL truncated (the
  ones ``GRPOConfig.mask_truncated_completions`` masks: last token not EOS / pad), and a direct
  call may pass filtered batches (groups are then the runs of one row id, which needs the
  row-id column).  A group of K' < K is refused (``uneven="refuse"``, the default, naming
  ``uneven="serve"``) or scored with the K' row (``uneven="serve"``); left-out completions get NaN.
* **Failed answers** (the extractor returns ``None`` or NaN) follow ``failed=``
  (``aqpgen.integrations.grouping``).  ``failed="exclude"`` returns NaN for them.
* **NaN rewards in TRL 1.16.**  ``GRPOTrainer`` sums the reward functions with ``nansum``: a
  completion for which *every* reward function returned NaN / None is unscorable, left out of
  its group's mean (``nanmean``) and given advantage 0; a NaN next to another function's number
  counts as 0 in the sum.  The async trainer does the same per group (``_score_group``).
* **Processes.**  TRL calls the function on each process's slice of the generation batch.  A
  slice that is not a whole number of groups is an error naming ``per_device_train_batch_size``
  (x ``steps_per_generation``) or ``per_device_eval_batch_size``, unless ``gather=True``: then
  answers are gathered from all processes (``accelerate.utils.gather_object``, in process
  order, as TRL gathers rewards), grouped globally and each process returns its own slice.
* **Precision.**  TRL stores rewards as float32: a K whose row breaks its certificate in float32
  is refused (naming K, the bound and the certificate) unless ``allow_imprecise=True``.

The async trainer (``trl.experimental.async_grpo``, TRL 1.16)
--------------------------------------------------------------
Its rollout worker calls every reward function once per group, when the group's
``num_generations`` completions are done (``_AsyncRolloutLoop._score_group``), with
``completions`` (chat messages), ``prompts``, ``completion_ids`` and the dataset columns; the
functions run in a spawned child process, so they must be picklable (no closures).
:func:`trl_async_reward_func` returns such an object: K is the group's own size (checked against
``num_generations=`` when given), the table is loaded in the child on first use, and the rewards
are float64 (the worker keeps them as a float64 numpy array), NaN where ``failed="exclude"``
leaves a completion out (the worker then gives it advantage 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aqpgen.integrations.grouping import (
    as_table,
    check_served,
    check_uneven,
    consecutive_groups,
    finite_scale,
    group_values,
    rewards_of_groups,
)
from aqpgen.records import as_K
from aqpgen.runtime.table import check_failed

__all__ = ["AsyncGroupReward", "add_row_ids", "trl_async_reward_func", "trl_reward_func"]

#: TRL converts every reward to a float32 tensor (``GRPOTrainer._calculate_rewards``).
TRL_REWARD_DTYPE = "float32"
#: TRL's async rollout worker keeps rewards in a float64 numpy array (``_score_group``).
TRL_ASYNC_REWARD_DTYPE = "float64"


def add_row_ids(dataset, column: str = "aqpgen_row"):
    """A copy of ``dataset`` (a ``datasets.Dataset``) with ``column`` = the row index.

    TRL passes every dataset column to reward functions, so :func:`trl_reward_func` can check
    that each group of K completions comes from one dataset row."""
    if column in getattr(dataset, "column_names", ()):
        raise ValueError(f"dataset already has a column {column!r}; pass another name")
    return dataset.map(lambda _, i: {column: i}, with_indices=True)


def _completion_text(completion) -> Any:
    """The text of a TRL completion: a str (standard format) or, for the conversational format, a
    list of messages: the content of its last assistant message (the first message when no
    message names its role)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion and isinstance(completion[0], dict):
        said = [m for m in completion if m.get("role") == "assistant"]
        return (said[-1] if said else completion[0]).get("content")
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


def _check_common(extract_answer, failed, uneven, scale) -> float:
    if not callable(extract_answer):
        raise TypeError(f"extract_answer must be callable, received {extract_answer!r}")
    check_failed(failed)
    check_uneven(uneven)
    return finite_scale(scale)


def _reward_name(name, t) -> str:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, received {name!r}")
    return name or f"aqpgen_{t.name}".replace("-", "_")


# ----------------------------------------------------------------------------- sync trainer
def _group_size(trainer, num_generations, fname: str) -> tuple[int, str, str]:
    """(K, the setting that chose it, the batch setting that must hold whole groups)."""
    if trainer is not None:
        if num_generations is not None and num_generations != trainer.num_generations:
            raise ValueError(
                f"{fname}: trl_reward_func(num_generations={num_generations}) disagrees with the "
                f"trainer's GRPOConfig.num_generations={trainer.num_generations}; TRL groups "
                f"completions in runs of {trainer.num_generations}.  Drop the num_generations "
                f"keyword (K is read from the trainer) or make the two equal.")
        if bool(getattr(trainer.model, "training", True)):
            K = int(trainer.num_generations)
            return K, f"GRPOConfig.num_generations={K}", (
                f"per_device_train_batch_size ({trainer.args.per_device_train_batch_size}) "
                f"x steps_per_generation ({trainer.args.steps_per_generation})")
        K = int(trainer.num_generations_eval)
        return K, f"GRPOConfig.num_generations_eval={K}", (
            f"per_device_eval_batch_size ({trainer.args.per_device_eval_batch_size})")
    if num_generations is not None:
        return num_generations, f"num_generations={num_generations}", (
            "each process's slice of the generation batch")
    raise ValueError(
        f"{fname}: cannot tell the group size K: no GRPOTrainer found in the call (TRL >= 1.0 "
        f"passes log_metric to reward functions) and no num_generations= given to "
        f"trl_reward_func.  Pass num_generations=K.")


def _group_keys(prompts, completions, kwargs: dict, row_id) -> tuple[list | None, str]:
    """The key every completion of one group shares: the row-id column, else the prompt.  Every
    per-sample argument read must hold one value per completion."""
    n = len(completions)
    for what, values in (("prompts", prompts), (f"dataset column {row_id!r}", kwargs.get(row_id)),
                         ("completion_ids", kwargs.get("completion_ids"))):
        if values is not None and len(values) != n:
            raise ValueError(f"{what} has {len(values)} entries for {n} completions: every "
                             f"per-sample argument needs one value per completion")
    rows = kwargs.get(row_id) if row_id else None
    if rows is not None:
        return list(rows), f"dataset column {row_id!r}"
    if prompts is not None:
        return [repr(p) for p in prompts], "prompt"
    return None, ""


def _truncated(kwargs: dict, trainer, n: int, fname: str) -> list[bool]:
    """Per completion: did TRL truncate it (last token id not EOS / pad, TRL's own test for
    ``mask_truncated_completions``)?"""
    ids = kwargs.get("completion_ids")
    if trainer is None or ids is None or len(ids) != n:
        raise ValueError(f"{fname}: drop_truncated=True needs the GRPOTrainer's completion_ids "
                         f"and EOS ids (TRL passes them to reward functions in training)")
    tok = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    stop = {*getattr(trainer, "eos_token_ids", ()), getattr(tok, "pad_token_id", None)}
    return [bool(len(x)) and int(x[-1]) not in stop for x in ids]


def _layout(n: int, K: int, keys, key_name: str, uneven: str, fix: str) -> list:
    """The groups of a batch: consecutive runs of K, or with ``uneven="serve"`` and a row-id
    column the runs of one row id (groups of K' <= K completions)."""
    by_row = keys is not None and key_name.startswith("dataset column")
    if uneven == "serve" and by_row:
        groups, start = [], 0
        for i in range(1, n + 1):
            if i == n or keys[i] != keys[start]:
                groups.append(range(start, i))
                start = i
        return groups
    if n % K:
        fix = (f"{fix}  If whole groups hold fewer than {K} completions (filtered), pass "
               f"uneven=\"serve\" and give the dataset a row-id column (add_row_ids) so that the "
               f"groups can be found.")
    return consecutive_groups(n, K, keys, key_name=key_name, fix=fix)


def trl_reward_func(extract_answer: Callable[[Any], Any], table, num_generations: int | None = None,
                    *, scale: float = 1.0, name: str | None = None, failed: str = "unique",
                    uneven: str = "refuse", drop_truncated: bool = False,
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
        Finite multiplier applied to every reward (e.g. a game's temperature τ).
    name : str, optional
        The function's ``__name__`` (TRL logs rewards under it); default ``"aqpgen_<table>"``.
    failed : {"unique", "pool", "exclude", "raise"}
        Policy for completions whose answer is ``None`` / NaN (``aqpgen.integrations.grouping``).
    uneven : {"refuse", "serve"}
        A group of K' < K completions: refused (default) or scored with the K' row.
    drop_truncated : bool
        Leave completions TRL truncated out of their group (NaN reward; the group is uneven).
    row_id : str or None
        Dataset column holding the row id (see :func:`add_row_ids`); used when present.
    gather : bool
        Group across processes (``accelerate.utils.gather_object``); needed when a process's
        slice of the generation batch is not a whole number of groups.
    allow_imprecise : bool
        Serve rows whose float32 rounding breaks their certificate.

    Raises
    ------
    ValueError / TypeError
        At creation: a bad option, a non-finite scale, ``num_generations`` absent from the table
        or refused in float32.  At call time: K disagreeing with the trainer, a group split
        across processes (without ``gather``), a run of K completions from different rows /
        prompts, an uneven group under ``uneven="refuse"``, an eval K absent from the table;
        every message names the setting to change.
    """
    scale = _check_common(extract_answer, failed, uneven, scale)
    if num_generations is not None:
        num_generations = as_K(num_generations, "num_generations")
    t = as_table(table)
    checked: set[int] = set()

    def ensure(K: int, setting: str) -> None:
        if K not in checked:
            check_served(t, K, TRL_REWARD_DTYPE, setting=setting, allow_imprecise=allow_imprecise,
                         consumer="TRL stores rewards as float32")
            checked.add(K)

    if num_generations is not None:
        ensure(num_generations, f"trl_reward_func(num_generations={num_generations})")

    opts = {"extract": extract_answer, "num_generations": num_generations, "failed": failed, "uneven": uneven,
            "drop_truncated": drop_truncated, "row_id": row_id, "gather": gather,
            "scale": scale, "allow_imprecise": allow_imprecise}

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        return _score_call(t, ensure, opts, reward_func.__name__, prompts, completions, kwargs)

    reward_func.__name__ = reward_func.__qualname__ = _reward_name(name, t)
    return reward_func


def _score_call(t, ensure, o: dict, fname: str, prompts, completions, kwargs: dict) -> list[float]:
    """One call of :func:`trl_reward_func`'s function: K, groups, rewards (options ``o``)."""
    trainer = _find_trainer(kwargs)
    K, setting, batch = _group_size(trainer, o["num_generations"], fname)
    ensure(K, setting)
    try:
        keys, key_name = _group_keys(prompts, completions, kwargs, o["row_id"])
    except ValueError as exc:
        raise ValueError(f"{fname}: {exc}") from None
    answers = [o["extract"](_completion_text(c)) for c in completions]
    present = (None if not o["drop_truncated"]
               else [not x for x in _truncated(kwargs, trainer, len(completions), fname)])
    lo, hi = 0, len(answers)
    if o["gather"]:
        answers, keys, present, lo, hi = _gather(trainer, answers, keys, present)
    fix = (f"With {setting}, {batch} must be a multiple of {K} so that each process holds "
           f"whole groups; or pass gather=True to trl_reward_func to group across processes."
           if not o["gather"] else f"Check {setting} against the trainer's batch layout.")
    try:
        groups = _layout(len(answers), K, keys, key_name, o["uneven"], fix)
        out = rewards_of_groups(answers, groups, t, K, failed=o["failed"], uneven=o["uneven"],
                                scale=o["scale"], dtype=TRL_REWARD_DTYPE, setting=setting,
                                allow_imprecise=o["allow_imprecise"], present=present)
    except ValueError as exc:
        raise ValueError(f"{fname}: {exc}") from None
    return out[lo:hi]


def _gather(trainer, answers, keys, present):
    """All processes' answers (keys, present flags) in process order, and this process's slice."""
    from accelerate.utils import gather_object

    rank = int(getattr(getattr(trainer, "accelerator", None), "process_index", 0)
               if trainer is not None else _process_index())
    sizes = gather_object([len(answers)])
    lo = sum(sizes[:rank])
    return (gather_object(answers), gather_object(keys) if keys is not None else None,
            gather_object(present) if present is not None else None, lo, lo + len(answers))


def _process_index() -> int:
    from accelerate import PartialState

    return int(PartialState().process_index)


# ----------------------------------------------------------------------------- async trainer
class AsyncGroupReward:
    """A picklable reward function for TRL's async GRPO trainer: one call scores one group.

    Built by :func:`trl_async_reward_func`; pickles the extractor, the table's path and the
    options, and loads the table in the process that calls it."""

    def __init__(self, extract_answer, table, *, num_generations=None, scale=1.0, name=None,
                 failed="unique", uneven="refuse", allow_imprecise=False):
        self.scale = _check_common(extract_answer, failed, uneven, scale)
        self.extract_answer, self.failed, self.uneven = extract_answer, failed, uneven
        self.allow_imprecise = bool(allow_imprecise)
        self.num_generations = (None if num_generations is None
                                else as_K(num_generations, "num_generations"))
        t = as_table(table)
        self._table, self._source = t, str(t.path) if t.path is not None else None
        if num_generations is not None:
            check_served(t, self.num_generations, TRL_ASYNC_REWARD_DTYPE,
                         setting=f"AsyncGRPOConfig.num_generations={self.num_generations}",
                         allow_imprecise=self.allow_imprecise)
        self.__name__ = _reward_name(name, t)

    def __getstate__(self) -> dict:
        if self._source is None:
            raise TypeError("an in-memory Table cannot be sent to TRL's rollout process: pass "
                            "the table's name or path")
        return {**self.__dict__, "_table": None}

    def __call__(self, prompts=None, completions=None, **kwargs) -> list[float]:
        if completions is None:
            raise TypeError(f"{self.__name__}: TRL passes completions=; received none")
        if self._table is None:
            self._table = as_table(self._source)
        K = self.num_generations or len(completions)
        setting = (f"AsyncGRPOConfig.num_generations={K}" if self.num_generations
                   else f"K={K} (the group's size)")
        answers = [self.extract_answer(_completion_text(c)) for c in completions]
        try:
            r = group_values(answers, self._table, K, failed=self.failed, uneven=self.uneven,
                             dtype=TRL_ASYNC_REWARD_DTYPE, setting=setting,
                             allow_imprecise=self.allow_imprecise)
        except ValueError as exc:
            raise ValueError(f"{self.__name__}: {exc}") from None
        return (self.scale * r).tolist()


def trl_async_reward_func(extract_answer: Callable[[Any], Any], table, *,
                          num_generations: int | None = None, scale: float = 1.0,
                          name: str | None = None, failed: str = "unique",
                          uneven: str = "refuse", allow_imprecise: bool = False) -> AsyncGroupReward:
    """A reward function for ``trl.experimental.async_grpo.AsyncGRPOTrainer(reward_funcs=[...])``.

    Each call is one group (module docstring): completion i gets ``scale * c_K[n_i]`` with K the
    group's size (``num_generations=``, when given, is checked against it: a smaller group
    follows ``uneven``).  ``extract_answer`` must be picklable (a module-level function), and
    ``table`` a name or path (the rollout process loads it).  ``failed="exclude"`` returns NaN
    for failed completions, which the async trainer leaves out of the group's mean and std.
    """
    return AsyncGroupReward(extract_answer, table, num_generations=num_generations, scale=scale,
                            name=name, failed=failed, uneven=uneven,
                            allow_imprecise=allow_imprecise)
