"""Trainer-side helpers: group answers -> rewards, and a TRL GRPO reward function.

No dependency on any trainer: this module imports only numpy and :mod:`aqpgen.runtime`.

Public functions
----------------
group_rewards(answers, table, K=None)  -- one group's answers (or a batch of groups of answer
                                          ids as an array / tensor) -> per-sample rewards.
trl_reward_func(extract_answer, table, num_generations, *, scale=1.0, name=None)
                                       -- a reward function with TRL's GRPO signature
                                          ``(prompts, completions, **kwargs) -> list[float]``.

Counts are self-inclusive (docs/MATH.md §1): the reward of completion i is c_K[n_i], n_i = number of the
K completions of its group whose answer equals its answer (1 <= n_i <= K).

Unextractable answers
---------------------
An answer of ``None`` (the extractor found no answer) counts as its own unique answer: n_i = 1,
reward c_K[1], whatever other completions did.  Rationale: failures are not a shared answer, and
pooling them would reward a policy for failing the same way K times (for log p, c_K[n] grows with
n).  Pass ``on_none="raise"`` to refuse them instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from aqpgen.runtime import Table, answers_to_counts, load_table

__all__ = ["group_rewards", "trl_reward_func"]

_ON_NONE = ("unique", "raise")


def _as_table(table) -> Table:
    if isinstance(table, Table):
        return table
    if isinstance(table, (str, os.PathLike)):
        return load_table(table)
    raise TypeError(f"table must be an aqpgen.runtime.Table, a path or a table name, received {table!r}")


def _group_counts(answers: Sequence, on_none: str) -> np.ndarray:
    """Self-inclusive counts of one group; ``None`` answers count 1 (or raise)."""
    items = list(answers)
    if any(a is None for a in items):
        if on_none == "raise":
            i = next(j for j, a in enumerate(items) if a is None)
            raise ValueError(f"answers[{i}] is None (no answer extracted) and on_none='raise'")
        # a fresh sentinel object per None: equal only to itself
        items = [object() if a is None else a for a in items]
    return answers_to_counts(items)


def _is_id_batch(answers) -> bool:
    """True for a torch tensor, a jax array, or a numpy array of >= 2 dims (groups of answer ids)."""
    torch = sys.modules.get("torch")
    jax = sys.modules.get("jax")
    return ((torch is not None and isinstance(answers, torch.Tensor))
            or (jax is not None and isinstance(answers, jax.Array))
            or (isinstance(answers, np.ndarray) and answers.ndim >= 2))


def group_rewards(answers, table, K: int | None = None, *, on_none: str = "unique", **lookup_kw):
    """Per-sample rewards of one group of K answers.

    Parameters
    ----------
    answers : sequence, numpy array, torch tensor or jax array
        * a sequence of K answers (str, int, any hashable; ``None`` = no answer, see the module
          docstring) -> numpy float64 array of shape (K,);
        * an integer array / tensor of answer ids of shape (..., K), the last axis being one
          group -> rewards of the same shape and array type, on the same device.  Counts are
          computed on the device by an O(K^2) comparison per group (no host round-trip), then
          looked up by :meth:`aqpgen.runtime.Table.lookup`.
    table : Table, path or table name
        The reward table (a name such as ``"power-m2"`` is loaded with
        :func:`aqpgen.runtime.load_table`; load once and pass the Table in a training loop).
    K : int, optional
        Expected group size; must equal the group's length when given.
    on_none : {"unique", "raise"}
        Policy for ``None`` answers (sequences only).
    **lookup_kw
        Passed to :meth:`Table.lookup` (``dtype=``, ``check=``).

    Raises
    ------
    ValueError
        Group length differs from ``K``; K not in the table; ``None`` with ``on_none="raise"``.
    """
    if on_none not in _ON_NONE:
        raise ValueError(f"on_none must be one of {_ON_NONE}, received {on_none!r}")
    t = _as_table(table)
    if _is_id_batch(answers):
        n = answers.shape[-1] if answers.ndim else 0
        _check_K(n, K, answers.shape)
        # counts[..., i] = #{j : ids[..., j] == ids[..., i]}: one (..., K, K) comparison on the
        # array's own device (works alike for numpy, torch and jax)
        counts = (answers[..., :, None] == answers[..., None, :]).sum(-1)
        return t.lookup(counts, n, **lookup_kw)
    if isinstance(answers, (str, bytes)):
        raise TypeError("answers must be a sequence of K answers, received a single string")
    counts = _group_counts(answers, on_none)
    _check_K(len(counts), K, (len(counts),))
    return t.lookup(counts, len(counts), **lookup_kw)


def _check_K(n: int, K, shape) -> None:
    if n == 0:
        raise ValueError(f"a group needs at least one answer, received shape {tuple(shape)}")
    if K is not None and int(K) != n:
        raise ValueError(f"K={K} but the group has {n} answers (shape {tuple(shape)})")


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


def trl_reward_func(extract_answer: Callable[[Any], Any], table, num_generations: int, *,
                    scale: float = 1.0, name: str | None = None,
                    on_none: str = "unique") -> Callable[..., list[float]]:
    """A reward function for Hugging Face TRL's ``GRPOTrainer(reward_funcs=[...])``.

    The returned function has TRL's signature ``f(prompts, completions, **kwargs) -> list[float]``.
    It extracts one answer per completion with ``extract_answer(text)``, splits the completions
    into consecutive groups of ``num_generations`` (TRL repeats each prompt ``num_generations``
    times consecutively), and gives completion i of a group the reward
    ``scale * c_K[n_i]`` with K = ``num_generations``.

    Parameters
    ----------
    extract_answer : callable
        ``text -> answer`` (hashable, normalised), or ``None`` when no answer can be extracted.
    table : Table, path or table name
        Loaded once here.  It must contain K = ``num_generations``.
    num_generations : int
        The trainer's ``num_generations`` (group size K).
    scale : float
        Multiplier applied to every reward (e.g. a game's temperature τ).
    name : str, optional
        The function's ``__name__`` (TRL logs rewards under it); default ``"aqpgen_<table name>"``.
    on_none : {"unique", "raise"}
        Policy for completions whose answer is ``None`` (module docstring).

    Raises
    ------
    ValueError
        (at call time) a batch whose length is not a multiple of ``num_generations``, or a group
        whose prompts differ — both mean a group was split, see the message for the fix.
    """
    if isinstance(num_generations, bool) or not isinstance(num_generations, int) or num_generations < 1:
        raise ValueError(f"num_generations must be a positive integer, received {num_generations!r}")
    if on_none not in _ON_NONE:
        raise ValueError(f"on_none must be one of {_ON_NONE}, received {on_none!r}")
    if not callable(extract_answer):
        raise TypeError(f"extract_answer must be callable, received {extract_answer!r}")
    t = _as_table(table)
    G = num_generations
    t.values(G)  # fail now, not mid-training, if K = num_generations is absent or unavailable
    scale = float(scale)

    def reward_func(prompts, completions, **kwargs) -> list[float]:
        n = len(completions)
        if n % G:
            raise ValueError(
                f"{reward_func.__name__}: received {n} completions, not a multiple of "
                f"num_generations={G}: a group of {G} was split.  TRL computes rewards on each "
                f"process's slice of the generation batch; make that slice hold whole groups by "
                f"choosing per_device_train_batch_size (times steps_per_generation / gradient "
                f"accumulation steps in TRL versions that generate once for several steps) as a "
                f"multiple of num_generations.")
        if prompts is not None and len(prompts) == n:
            for g in range(0, n, G):
                first = prompts[g]
                for j in range(g + 1, g + G):
                    if prompts[j] != first:
                        raise ValueError(
                            f"{reward_func.__name__}: completions {g}..{g + G - 1} should be one "
                            f"group (same prompt) but prompt {j} differs from prompt {g}: the batch "
                            f"is not grouped in consecutive runs of num_generations={G}")
        answers = [extract_answer(_completion_text(c)) for c in completions]
        out: list[float] = []
        for g in range(0, n, G):
            r = group_rewards(answers[g: g + G], t, K=G, on_none=on_none)
            out.extend((scale * r).tolist())
        return out

    reward_func.__name__ = reward_func.__qualname__ = name or f"aqpgen_{t.name}".replace("-", "_")
    return reward_func
