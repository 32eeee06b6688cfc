"""Groups of K answers -> rewards c_K[n]: the one grouping code every trainer adapter uses.

Public names
------------
group_rewards(answers, table, K=None)   -- per-sample rewards of one group (or a batch of id groups).
group_counts(answers, on_none)          -- self-inclusive counts of one group, ``None`` policy applied.
consecutive_groups(n, K, keys=None, ...) -- split n samples laid out in consecutive runs of K.
keyed_groups(keys, K=None, ...)         -- split samples by a group key (verl's ``uid``).
rewards_of_groups(answers, groups, table, K, ...) -- rewards of many groups, in sample order.
as_table(table)                          -- a Table from a Table, path or table name.
check_served(table, K, dtype, ...)       -- K present and the precision guard for the served dtype.
served_table(table, n, dtype, ...)       -- an adapter's set-up: on_none, the group size n, the
                                            table and check_served, each failure naming the setting.

Counts are self-inclusive: the reward of sample i is c_K[n_i], n_i = number of the K samples of
its group whose answer equals its answer (1 <= n_i <= K).

Unextractable answers
---------------------
An answer of ``None`` (the extractor found no answer) counts as its own unique answer: n_i = 1,
reward c_K[1], whatever other samples did.  Rationale: failures are not a shared answer, and
pooling them would reward a policy for failing the same way K times (for log p, c_K[n] grows with
n).  Pass ``on_none="raise"`` to refuse them instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Hashable, Sequence

import numpy as np

from aqpgen.runtime import Table, answers_to_counts, load_table

__all__ = ["ON_NONE", "as_table", "check_served", "consecutive_groups", "group_counts",
           "group_rewards", "keyed_groups", "rewards_of_groups", "served_table"]

ON_NONE = ("unique", "raise")


def as_table(table) -> Table:
    """A :class:`aqpgen.runtime.Table` from a Table, a ``.h5`` path or a table name."""
    if isinstance(table, Table):
        return table
    if isinstance(table, (str, os.PathLike)):
        return load_table(table)
    raise TypeError(f"table must be an aqpgen.runtime.Table, a path or a table name, received {table!r}")


def check_on_none(on_none: str) -> str:
    if on_none not in ON_NONE:
        raise ValueError(f"on_none must be one of {ON_NONE}, received {on_none!r}")
    return on_none


def check_served(table: Table, K: int, dtype, *, setting: str, allow_imprecise: bool = False,
                 consumer: str = "") -> None:
    """Fail early and clearly: K must be an ``"ok"`` row of ``table`` and (unless
    ``allow_imprecise``) its rounding to ``dtype`` must keep the row's certificate.

    ``setting`` names the user setting that chose K (e.g. ``"GRPOConfig.num_generations=8"``);
    ``consumer`` says who rounds to ``dtype`` (e.g. ``"TRL stores rewards as float32"``).
    """
    try:
        table.values(K)
    except ValueError as exc:
        raise ValueError(f"{setting}: {exc}.  Choose a group size the table serves "
                         f"(table.served_Ks())") from None
    if not allow_imprecise:
        try:
            table.check_precision(K, dtype, what=setting)
        except ValueError as exc:
            raise type(exc)(f"{exc}  ({consumer})" if consumer else str(exc)) from None


def served_table(table, n, dtype, *, setting: str, consumer: str, on_none: str,
                 allow_imprecise: bool = False) -> Table:
    """An adapter's set-up, done once when it is built: ``on_none`` valid, the group size ``n``
    a positive int, ``table`` loaded (:func:`as_table`) and :func:`check_served` at ``n``.

    ``setting`` is the framework's name of the group size (e.g. ``"actor_rollout_ref.rollout.n"``):
    every error names it with the value received.
    """
    check_on_none(on_none)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer ({setting}), received {n!r}")
    t = as_table(table)
    check_served(t, n, dtype, setting=f"{setting}={n}", allow_imprecise=allow_imprecise,
                 consumer=consumer)
    return t


def group_counts(answers: Sequence, on_none: str = "unique") -> np.ndarray:
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


def _check_K(n: int, K, shape) -> None:
    if n == 0:
        raise ValueError(f"a group needs at least one answer, received shape {tuple(shape)}")
    if K is not None and int(K) != n:
        raise ValueError(f"K={K} but the group has {n} answers (shape {tuple(shape)})")


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
        Passed to :meth:`Table.lookup` (``dtype=``, ``check=``, ``allow_imprecise=``).

    Raises
    ------
    ValueError
        Group length differs from ``K``; K not in the table; ``None`` with ``on_none="raise"``;
        the row's served precision breaks its certificate (``ImpreciseRowError``).
    """
    check_on_none(on_none)
    t = as_table(table)
    if _is_id_batch(answers):
        n = answers.shape[-1] if answers.ndim else 0
        _check_K(n, K, answers.shape)
        # counts[..., i] = #{j : ids[..., j] == ids[..., i]}: one (..., K, K) comparison on the
        # array's own device (works alike for numpy, torch and jax)
        counts = (answers[..., :, None] == answers[..., None, :]).sum(-1)
        return t.lookup(counts, n, **lookup_kw)
    if isinstance(answers, (str, bytes)):
        raise TypeError("answers must be a sequence of K answers, received a single string")
    counts = group_counts(answers, on_none)
    _check_K(len(counts), K, (len(counts),))
    return t.lookup(counts, len(counts), **lookup_kw)


def consecutive_groups(n: int, K: int, keys: Sequence[Hashable] | None = None, *,
                       key_name: str = "group key", fix: str = "") -> list[range]:
    """Split samples ``0..n-1`` laid out as consecutive runs of K (TRL's and OpenRLHF's layout).

    When ``keys`` (one per sample, e.g. a dataset row id) is given, every run must carry one key:
    a run that mixes keys means the batch is not laid out in groups of K (wrong K, or a group
    split across processes).  ``fix`` is appended to the error messages (what setting to change).
    """
    if n % K:
        raise ValueError(f"received {n} samples, not a multiple of the group size K={K}: a group "
                         f"of {K} was split.  {fix}".rstrip())
    groups = [range(g, g + K) for g in range(0, n, K)]
    if keys is not None:
        if len(keys) != n:
            raise ValueError(f"{key_name}: {len(keys)} values for {n} samples")
        for r in groups:
            first = keys[r.start]
            for j in r:
                if keys[j] != first:
                    raise ValueError(
                        f"samples {r.start}..{r.stop - 1} should be one group of K={K} but their "
                        f"{key_name} differs ({key_name}[{r.start}] = {first!r}, {key_name}[{j}] = "
                        f"{keys[j]!r}): the batch is not laid out in consecutive groups of {K}.  "
                        f"{fix}".rstrip())
    return groups


def keyed_groups(keys: Sequence[Hashable], K: int | None = None, *, key_name: str = "group key",
                 fix: str = "") -> list[list[int]]:
    """Split samples by key (members need not be adjacent); every group must have K members
    (when K is None, all groups must have the same size)."""
    members: dict = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    groups = list(members.values())
    if not groups:
        return groups
    sizes = sorted({len(g) for g in groups})
    want = K if K is not None else sizes[0]
    bad = [(k, len(g)) for k, g in members.items() if len(g) != want]
    if bad:
        k, size = bad[0]
        raise ValueError(
            f"{key_name} {k!r} has {size} samples but every group must have "
            f"{'K=' + str(K) if K is not None else 'the same size'} (group sizes seen: {sizes}; "
            f"{len(bad)} of {len(groups)} groups differ).  {fix}".rstrip())
    return groups


def rewards_of_groups(answers: Sequence, groups: Sequence[Sequence[int]], table: Table, K: int, *,
                      on_none: str = "unique", scale: float = 1.0, dtype=None,
                      allow_imprecise: bool = False) -> list[float]:
    """Rewards ``scale * c_K[n_i]`` for every sample, in sample order (Python floats).

    ``groups`` lists the sample indices of each group (each of length K), e.g. from
    :func:`consecutive_groups` or :func:`keyed_groups`; ``dtype`` is the precision the rewards
    will be stored in (checked by the precision guard; the values are returned in float64 and
    rounded by the consumer)."""
    if dtype is not None and not allow_imprecise:
        table.check_precision(K, dtype)  # cached after the first call
    out = [0.0] * len(answers)
    for g in groups:
        idx = list(g)
        counts = group_counts([answers[i] for i in idx], on_none)
        if len(counts) != K:
            raise ValueError(f"a group has {len(counts)} samples, expected K={K}")
        r = table.lookup(counts, K, allow_imprecise=allow_imprecise)  # float64; caller rounds
        for i, v in zip(idx, r.tolist()):
            out[i] = scale * v
    return out
