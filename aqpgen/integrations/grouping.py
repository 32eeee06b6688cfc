"""Groups of K answers -> rewards c_K[n]: the one grouping code every trainer adapter uses.

Public names
------------
UNEVEN                                    -- the policies for uneven groups (failed answers:
                                             ``aqpgen.runtime.table.FAILED`` / ``is_failed``).
group_rewards(answers, table, K=None, *, failed, uneven, pad_id, mask)
                                          -- per-sample rewards of one group or a batch of groups.
group_values(items, table, K, ...)        -- one group's rewards (float64, NaN where left out).
group_counts(answers, failed)             -- self-inclusive counts of one group, policy applied.
consecutive_groups(n, K, keys=None, ...)  -- split n samples laid out in consecutive runs of K.
keyed_groups(keys, K=None, ...)           -- split samples by a group key (verl's ``uid``).
rewards_of_groups(answers, groups, table, K, ...) -- rewards of many groups, in sample order.
as_table(table)                           -- a Table from a Table, path or table name.
finite_scale(scale)                       -- a scale / weight as a finite float, or a clear error.
check_served(table, K, dtype, ...)        -- K present and the precision guard for the served dtype.
served_table(table, n, dtype, ...)        -- an adapter's set-up: the policies, the group size n,
                                             the table and check_served, failures naming the setting.

Counts are self-inclusive: the reward of sample i is c_K[n_i], n_i = number of the K samples of
its group whose answer equals its answer (1 <= n_i <= K).

Failed answers (``failed=``)
----------------------------
``None`` and NaN (a Python float, a numpy floating scalar, a NaN in a float array or tensor) are
the same "no answer" on every input path: lists, numpy object / float arrays, 2-d batches,
torch / jax tensors, ``Table.rewards`` and ``answers_to_counts``.

* ``"unique"`` (default): each failed answer is its own answer (n = 1, reward c_K[1]).  Failures
  are not a shared answer: pooling them would reward a policy for failing the same way K times
  (for log p, c_K[n] grows with n).
* ``"pool"``: the failed answers of a group are one answer (n = their number).
* ``"exclude"``: failed samples get a NaN reward and are not counted; the others get the row
  K' = number of answers that did not fail (an explicit choice: it needs no ``uneven="serve"``).
  K' = 0 gives an all-NaN group.  TRL's trainers leave NaN rewards out of the group mean and
  give them advantage 0.
* ``"raise"``: ValueError naming the first failed sample.

Uneven groups (``uneven=``)
---------------------------
A group of K' answers where K were expected (filtering, truncation, padding) is refused by
default (``"refuse"``: ValueError naming ``uneven="serve"`` and both sizes); ``"serve"`` scores it
with the K' row.  A group of more than K answers is always an error.  The shipped tables hold every
K from 2 to 256, so every K' in 2..K is served up to K = 256; above 256 the standard grid has only
320, 384, 448, 512, 640, 768, 896 and 1024, so a K' between them is refused with an error naming
the nearest Ks the table serves (and a single answer, K' = 1, has no row: no table holds K = 1).

Padding and masks
-----------------
A 2-d batch (one group per row, last axis) may be padded: ``pad_id=`` (slots equal to it) or
``mask=`` (same shape, True / 1 where the slot holds a real sample, like an attention mask).  A
numpy masked array is honoured the same way (masked = not a sample).  Padded and masked slots are
never read as answers: their reward is NaN, and the group is the K' remaining samples (a padded
group is uneven unless K' = K).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Hashable, Sequence

import numpy as np

from aqpgen.records import as_K
from aqpgen.runtime import Table, load_table
from aqpgen.runtime.table import answers_to_counts, check_failed

__all__ = ["UNEVEN", "as_table", "check_served", "check_uneven", "consecutive_groups",
           "finite_scale", "group_counts", "group_rewards", "group_values", "keyed_groups",
           "rewards_of_groups", "served_table"]

UNEVEN = ("refuse", "serve")


def as_table(table) -> Table:
    """A :class:`aqpgen.runtime.Table` from a Table, a ``.h5`` path or a table name."""
    if isinstance(table, Table):
        return table
    if isinstance(table, (str, os.PathLike)):
        return load_table(table)
    raise TypeError(f"table must be an aqpgen.runtime.Table, a path or a table name, received {table!r}")


def check_uneven(uneven) -> str:
    """``uneven`` itself, after checking it is one of :data:`UNEVEN` (else ValueError)."""
    if uneven not in UNEVEN:
        raise ValueError(f"uneven must be one of {UNEVEN}, received {uneven!r}")
    return uneven


def finite_scale(scale, name: str = "scale") -> float:
    """``scale`` as a finite float (int, float, numpy scalar); TypeError / ValueError naming
    ``name`` and the value otherwise."""
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{name} must be a real number, received {scale!r}")
    value = float(scale)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, received {scale!r}")
    return value


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


def served_table(table, n, dtype, *, setting: str, consumer: str, failed: str = "unique",
                 uneven: str = "refuse", allow_imprecise: bool = False) -> Table:
    """An adapter's set-up, done once when it is built: ``failed`` and ``uneven`` valid, the group
    size ``n`` a positive integer (numpy integers accepted), ``table`` loaded (:func:`as_table`)
    and :func:`check_served` at ``n``.

    ``setting`` is the framework's name of the group size (e.g. ``"actor_rollout_ref.rollout.n"``):
    every error names it with the value received.
    """
    check_failed(failed)
    check_uneven(uneven)
    n = _group_size(n, setting)
    t = as_table(table)
    check_served(t, n, dtype, setting=f"{setting}={n}", allow_imprecise=allow_imprecise,
                 consumer=consumer)
    return t


def _group_size(n, setting: str) -> int:
    try:
        return as_K(n, "n")
    except (TypeError, ValueError):
        raise ValueError(f"n must be a positive integer ({setting}), received {n!r}") from None


def group_counts(answers: Sequence, failed: str = "unique") -> np.ndarray:
    """Self-inclusive counts of one group, the ``failed`` policy applied (0 = excluded)."""
    return answers_to_counts(answers, failed=failed)


# ----------------------------------------------------------------------------- one group
def _nearest_served(table: Table, K: int) -> str:
    ok = [k for k in table.Ks if table.status[k] == "ok"]
    below = [k for k in ok if k < K]
    above = [k for k in ok if k > K]
    near = ([below[-1]] if below else []) + ([above[0]] if above else [])
    return " and ".join(map(str, near)) if near else "none"


def _row_error(table: Table, Kp: int, why: str) -> ValueError:
    served = table.Ks and table.status.get(Kp) == "ok"
    reason = (f"row K={Kp} is unavailable ({table.status[Kp]})" if Kp in table.status and not served
              else f"it has no row K={Kp}")
    return ValueError(f"{why}, but table {table.name!r} cannot score a group of {Kp}: "
                      f"{reason}; the nearest Ks it serves are {_nearest_served(table, Kp)}")


def group_values(items: Sequence, table: Table, K: int | None = None, *, failed: str = "unique",
                 uneven: str = "refuse", present=None, dtype=None, allow_imprecise: bool = False,
                 setting: str = "K") -> np.ndarray:
    """Rewards (float64) of one group: ``c_K'[n_i]``, NaN for padded / masked / excluded slots.

    ``items`` are the group's answers; ``present`` (bool, same length) marks the real samples
    (default: all).  K is the expected group size (default: ``len(items)``); a group of
    G = ``present.sum()`` != K samples follows ``uneven``, then failed answers follow ``failed``
    (module docstring).  ``dtype`` is the precision the caller will store the rewards in: the
    row served is checked for it (:meth:`Table.check_precision`) unless ``allow_imprecise``.
    ``setting`` names the setting that chose K in error messages.
    """
    width = len(items)
    present = np.ones(width, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    G = int(present.sum())
    K = width if K is None else K
    if G > K:
        raise ValueError(f"a group of {G} answers where {setting}: more than K={K} samples share "
                         f"one group (the batch is not laid out in groups of {K})")
    if G != K and uneven != "serve":
        raise ValueError(f"a group of {G} answers where {setting} (K={K}).  Uneven groups are "
                         f"refused by default (uneven=\"refuse\"); pass uneven=\"serve\" to score "
                         f"it with the K'={G} row")
    out = np.full(width, np.nan)
    idx = np.flatnonzero(present)
    kept = [items[i] for i in idx]
    try:
        counts = answers_to_counts(kept, failed=failed)
    except ValueError as exc:  # failed="raise": name the sample's index in the group
        raise ValueError(f"{exc} ({setting})".replace("answers[", "group sample [")) from None
    scored = counts > 0
    Kp = int(scored.sum())
    if Kp == 0:
        return out
    why = (setting if Kp == G == K else f"a group of {G} answers where {setting}" if Kp == G
           else f"{G - Kp} of the group's {G} answers failed (failed=\"exclude\"), {setting}")
    if table.status.get(Kp) != "ok":
        raise _row_error(table, Kp, why)
    if dtype is not None and not allow_imprecise:
        table.check_precision(Kp, dtype, what=why)
    out[idx[scored]] = table.lookup(counts[scored], Kp, allow_imprecise=allow_imprecise)
    return out


# ----------------------------------------------------------------------------- group_rewards
def _device_kind(answers) -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(answers, torch.Tensor):
        return "torch"
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(answers, jax.Array):
        return "jax"
    return None


def _integer_ids(kind: str | None, answers) -> bool:
    """Integer ids counted where they live: a tensor, or a numpy array of >= 2 dims."""
    if kind is None:
        return (type(answers) is np.ndarray and answers.ndim >= 2
                and answers.dtype.kind in "iub")
    if kind == "torch":
        return not (answers.dtype.is_floating_point or answers.dtype.is_complex)
    import jax.numpy as jnp

    return bool(jnp.issubdtype(answers.dtype, jnp.integer) or answers.dtype == jnp.bool_)


def _present_mask(a: np.ndarray, pad_id, mask) -> np.ndarray | None:
    """Which slots hold a real sample (None: all of them)."""
    present = None
    if isinstance(a, np.ma.MaskedArray):
        present = ~np.ma.getmaskarray(a)
    if pad_id is not None:
        data = np.asarray(a.data if isinstance(a, np.ma.MaskedArray) else a)
        keep = np.array([not _same(x, pad_id) for x in data.ravel().tolist()],
                        dtype=bool).reshape(data.shape)
        present = keep if present is None else present & keep
    if mask is not None:
        m = _host(mask)
        if m.shape != a.shape:
            raise ValueError(f"mask has shape {m.shape} but answers have shape {a.shape}")
        if m.dtype.kind not in "biu" or (m.dtype.kind != "b" and not np.isin(m, (0, 1)).all()):
            raise TypeError(f"mask must be boolean (or 0 / 1): True where the slot holds a real "
                            f"sample, False for padding; received dtype {m.dtype}")
        present = m.astype(bool) if present is None else present & m.astype(bool)
    return present


def _same(x, pad_id) -> bool:
    try:
        return bool(x == pad_id)
    except (TypeError, ValueError):
        return False


def _host(x) -> np.ndarray:
    kind = _device_kind(x)
    if kind == "torch":
        return x.detach().cpu().numpy()
    if kind == "jax":
        return np.asarray(x)
    return x if isinstance(x, np.ndarray) else np.asarray(x)


def _back(out: np.ndarray, like, kind: str | None, dtype):
    """``out`` (float64 numpy) as the caller's array type, device and dtype."""
    if kind == "torch":
        import torch

        return torch.from_numpy(out).to(device=like.device, dtype=dtype or torch.float64)
    if kind == "jax":
        import jax
        import jax.numpy as jnp

        arr = jnp.asarray(out, dtype=dtype or jnp.result_type(float))
        return jax.device_put(arr, next(iter(like.devices())))
    return out if dtype is None else out.astype(dtype)


def _device_counts(answers, K, t: Table, uneven: str, lookup_kw: dict):
    """Integer ids without padding, on their device: an O(K^2) comparison per group (no host
    round-trip), then one lookup."""
    W = answers.shape[-1] if answers.ndim else 0
    K = W if K is None else K
    if W != K:  # every row has W answers
        group_values([0] * W, t, K, uneven=uneven)  # raises the uneven / size error
    counts = (answers[..., :, None] == answers[..., None, :]).sum(-1)
    return t.lookup(counts, W, **lookup_kw)


def group_rewards(answers, table, K: int | None = None, *, failed: str = "unique",
                  uneven: str = "refuse", pad_id=None, mask=None, **lookup_kw):
    """Per-sample rewards of one group of K answers, or of a batch of groups (last axis).

    Parameters
    ----------
    answers : sequence, numpy array (also object, float or masked), torch tensor or jax array
        * a sequence / 1-d array of answers (str, int, any hashable; ``None`` / NaN = no answer)
          -> numpy array of shape (len,);
        * a 2-d (or more) array of answers, one group per row (last axis) -> rewards of the
          same shape and array type, on the same device.  Integer ids without padding are
          counted on their device by an O(K^2) comparison per group; anything else (failed
          answers, padding, masks) is counted on the host, row by row.
    table : Table, path or table name
        The reward table (load once and pass the Table in a training loop).
    K : int, optional
        The group size the trainer uses.  Default: the group's width (its length / last axis).
    failed : {"unique", "pool", "exclude", "raise"}
        Policy for failed answers (module docstring).
    uneven : {"refuse", "serve"}
        A group of K' != K samples (padding, filtering) is refused, or served the K' row.
    pad_id, mask
        Padding of a batch: slots equal to ``pad_id``, or ``mask`` False (True = real sample).
        Padded slots get NaN.  A numpy masked array's mask is honoured the same way.
    **lookup_kw
        ``dtype=`` (output dtype), ``allow_imprecise=``; for unpadded integer tensors also
        ``check=`` (passed to :meth:`Table.lookup`).

    Raises
    ------
    ValueError
        Uneven group under ``uneven="refuse"`` (naming ``uneven="serve"`` and both sizes); a
        group of more than K; a row K' the table lacks (naming the nearest served Ks); a failed
        answer under ``failed="raise"``; a bad option; the precision guard.
    TypeError
        A single string, a 0-d array, a mask that is not boolean.
    """
    check_failed(failed)
    check_uneven(uneven)
    if pad_id is not None and mask is not None:
        raise ValueError("pass pad_id= or mask=, not both")
    t = as_table(table)
    K = None if K is None else as_K(K, "K")
    if isinstance(answers, (str, bytes)):
        raise TypeError("answers must be a sequence of K answers, received a single string")
    kind = _device_kind(answers)
    if pad_id is None and mask is None and _integer_ids(kind, answers):
        return _device_counts(answers, K, t, uneven, lookup_kw)
    dtype = lookup_kw.pop("dtype", None)
    allow = bool(lookup_kw.pop("allow_imprecise", False))
    lookup_kw.pop("check", None)
    if lookup_kw:
        raise TypeError(f"unexpected keyword arguments {sorted(lookup_kw)}")
    a = _host(answers) if kind or isinstance(answers, np.ndarray) else None
    if a is None:  # a Python sequence: one group, kept as Python objects
        items = list(answers)
        a = np.empty(len(items), dtype=object)
        for i, x in enumerate(items):
            a[i] = x
    if a.ndim == 0:
        raise TypeError(f"answers must be a sequence or an array of groups, received {answers!r}")
    if a.shape[-1] == 0:
        raise ValueError(f"a group needs at least one answer, received shape {a.shape}")
    present = _present_mask(a, pad_id, mask)
    data = np.asarray(a.data if isinstance(a, np.ma.MaskedArray) else a)
    rows = data.reshape(-1, data.shape[-1])
    pres = None if present is None else present.reshape(rows.shape)
    out = np.empty(rows.shape)
    for r in range(rows.shape[0]):
        out[r] = group_values(rows[r].tolist() if rows.dtype.kind != "O" else list(rows[r]), t,
                              K, failed=failed, uneven=uneven,
                              present=None if pres is None else pres[r], dtype=dtype,
                              allow_imprecise=allow, setting=f"K={K or rows.shape[1]}"
                              + (f" (group {r} of the batch)" if rows.shape[0] > 1 else ""))
    return _back(out.reshape(data.shape), answers, kind, dtype)


# ----------------------------------------------------------------------------- many groups
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
                 fix: str = "", uneven: str = "refuse") -> list[list[int]]:
    """Split samples by key (members need not be adjacent).  Every group must have K members
    (when K is None, all groups the same size); with ``uneven="serve"`` groups of fewer than K
    are kept (their size is then the K' the caller serves), more than K is still an error."""
    check_uneven(uneven)
    members: dict = {}
    for i, k in enumerate(keys):
        members.setdefault(k, []).append(i)
    groups = list(members.values())
    if not groups:
        return groups
    sizes = sorted({len(g) for g in groups})
    want = K if K is not None else sizes[-1 if uneven == "serve" else 0]
    bad = [(k, len(g)) for k, g in members.items()
           if len(g) > want or (len(g) < want and uneven != "serve")]
    if bad:
        k, size = bad[0]
        hint = "" if uneven == "serve" or size > want else (
            "  Pass uneven=\"serve\" to score a smaller group with its own row.")
        raise ValueError(
            f"{key_name} {k!r} has {size} samples but every group must have "
            f"{'K=' + str(want) if K is not None else 'the same size'} (group sizes seen: {sizes}; "
            f"{len(bad)} of {len(groups)} groups differ).  {fix}".rstrip() + hint)
    return groups


def rewards_of_groups(answers: Sequence, groups: Sequence[Sequence[int]], table: Table, K: int, *,
                      failed: str = "unique", uneven: str = "refuse", scale: float = 1.0,
                      dtype=None, allow_imprecise: bool = False, setting: str | None = None,
                      present: Sequence[bool] | None = None) -> list[float]:
    """Rewards ``scale * c_K'[n_i]`` for every sample, in sample order (Python floats; NaN for
    a sample ``failed="exclude"`` leaves out).

    ``groups`` lists the sample indices of each group, e.g. from :func:`consecutive_groups` or
    :func:`keyed_groups`; a group of K' != K samples follows ``uneven`` (:func:`group_values`).
    ``dtype`` is the precision the rewards will be stored in (checked by the precision guard for
    every row served; the values are returned in float64 and rounded by the consumer).
    ``setting`` names the setting that chose K in errors (default ``"K=<K>"``); ``present``
    (one bool per sample) leaves samples out of their group (NaN reward)."""
    setting = setting or f"K={K}"
    out = [float("nan")] * len(answers)
    for g in groups:
        idx = list(g)
        r = group_values([answers[i] for i in idx], table, K, failed=failed, uneven=uneven,
                         present=None if present is None else [present[i] for i in idx],
                         dtype=dtype, allow_imprecise=allow_imprecise, setting=setting)
        for i, v in zip(idx, r.tolist()):
            out[i] = scale * v
    return out
