"""The loaded table: ``load_table``, ``Table`` (lookup on numpy / torch / jax) and
``answers_to_counts``.  See the package docstring (``aqpgen.runtime``) for conventions, costs and
the precision guard."""

from __future__ import annotations

import bisect
import numbers
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from aqpgen.errors import TableFormatError
from aqpgen.records import as_int
from aqpgen.runtime.gather import gather
from aqpgen.runtime.precision import (
    PRECISION_SLACK,
    ImpreciseRowError,
    RowPrecision,
    dtype_name,
    needs_hp,
    row_precision,
)
from aqpgen.store import locate
from aqpgen.store.locate import find_table
from aqpgen.store.manifest import manifest_mismatch
from aqpgen.store.tablefile import read_table  # numpy + lazy h5py

__all__ = ["FAILED", "Table", "answers_to_counts", "check_failed", "is_failed", "load_table"]


def load_table(path_or_name, *, check_hash: bool = True) -> Table:
    """Load a table file once into a dense float64 array.

    Parameters
    ----------
    path_or_name : str or path-like
        A ``.h5`` file, or the name of a shipped table (``"power-m2"``), looked up in
        ``$AQPGEN_TABLES`` (``os.pathsep``-separated directories), the repository's ``tables/``
        directory, then the tables installed with the package (``aqpgen.store.locate``).
    check_hash : bool
        Recompute and compare the file's content hash (default True; a few milliseconds); for a
        table installed with the package, also check that it is the file the installed
        ``MANIFEST.json`` records (its sha256), so an edited file whose own content hash was
        recomputed is refused too.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a known table name (the message lists the available names).
    aqpgen.errors.TableFormatError
        Wrong schema or schema version, malformed file, content hash mismatch; an installed
        table that differs from the installed manifest's record (the message names the file and
        both hashes).
    """
    path = find_table(path_or_name)
    if check_hash:
        _check_installed(path)
    return Table(read_table(path, check_hash=check_hash), path=path)


def _check_installed(path: Path) -> None:
    """A table of the installed package data must be the file its ``MANIFEST.json`` records."""
    pkg = locate.packaged_tables_dir()
    if pkg is None or not os.path.samefile(path.parent, pkg):
        return
    why = manifest_mismatch(path)
    if why is not None:
        raise TableFormatError(f"{path}: not the table installed with aqpgen ({why}); the file was "
                               "changed after installation: reinstall aqpgen")


# ----------------------------------------------------------------------------- counts
#: the policies for failed answers (``None`` or NaN: no answer was extracted)
FAILED = ("unique", "pool", "exclude", "raise")


def is_failed(answer) -> bool:
    """True for a failed answer: ``None`` or a float NaN (Python float or numpy floating)."""
    if answer is None:
        return True
    return isinstance(answer, (float, np.floating)) and bool(np.isnan(answer))


def check_failed(failed) -> str:
    """``failed`` itself, after checking it is one of :data:`FAILED` (else ValueError)."""
    if failed not in FAILED:
        raise ValueError(f"failed must be one of {FAILED}, received {failed!r}")
    return failed


class _Unique:
    """A stand-in for one failed answer: equal only to itself."""

    __slots__ = ()


def _failed_positions(answers, items: list) -> list[int]:
    if isinstance(answers, np.ndarray) and answers.dtype.kind == "f":
        return np.flatnonzero(np.isnan(answers)).tolist()
    if isinstance(answers, np.ndarray) and answers.dtype.kind not in "OV":
        return []  # str / bytes / datetime arrays hold no None and no NaN
    return [i for i, a in enumerate(items) if is_failed(a)]


def answers_to_counts(answers: Iterable, *, failed: str = "unique") -> np.ndarray:
    """Self-inclusive counts of one group of K answers.

    ``counts[i]`` = number of ``j`` with ``answers[j] == answers[i]`` (so 1 <= counts[i] <= K),
    computed in O(K) with a dict.  Answers are compared by Python equality and hash (strings,
    ints, tuples...; ``1``, ``1.0`` and ``True`` are equal; ``"1"`` and ``1`` are not).  Normalise
    answers (strip, lowercase, canonical numbers) before calling.  A numpy integer array is
    counted with ``np.unique``.

    A **failed** answer is ``None`` or a float NaN (Python float, numpy floating, a NaN in a float
    array): all of them are the same "no answer", on every input.  ``failed`` says how they count:
    ``"unique"`` (default) each is its own answer (count 1); ``"pool"`` all failed answers of the
    group are one answer (count = their number); ``"exclude"`` they are left out (count 0; the
    others are counted among the K' = K - #failed answers left); ``"raise"`` ValueError.

    Returns
    -------
    numpy.ndarray of int64, shape (K,)

    Raises
    ------
    TypeError
        A single string, unhashable answers, or a numpy masked array (its mask would be ignored:
        pass ``a.compressed()``, or use ``aqpgen.integrations.group_rewards(..., mask=)``).
    ValueError
        ``failed`` not one of :data:`FAILED`; a failed answer with ``failed="raise"``; a
        numpy array that is not 1-d.
    """
    check_failed(failed)
    if isinstance(answers, np.ma.MaskedArray):
        raise TypeError("answers is a numpy masked array: its mask would be ignored.  Pass the "
                        "unmasked answers (answers.compressed()), or use aqpgen.integrations."
                        "group_rewards, which leaves masked slots out of the group")
    if isinstance(answers, np.ndarray) and answers.ndim != 1:
        raise ValueError(f"answers must be one group (1-d), received shape {answers.shape}")
    if isinstance(answers, np.ndarray) and answers.dtype.kind in "iub":
        _, inv, cnt = np.unique(answers, return_inverse=True, return_counts=True)
        return cnt[inv.reshape(-1)].astype(np.int64)
    if isinstance(answers, (str, bytes)):
        raise TypeError("answers must be a sequence of K answers, received a single string")
    items = answers.tolist() if isinstance(answers, np.ndarray) else list(answers)
    bad = _failed_positions(answers, items)
    if bad:
        if failed == "raise":
            raise ValueError(f"answers[{bad[0]}] = {items[bad[0]]!r} is a failed answer (no answer "
                             f"extracted) and failed='raise'")
        pooled = _Unique()
        for i in bad:
            items[i] = _Unique() if failed == "unique" else pooled
    freq: dict = {}
    try:
        for a in items:
            freq[a] = freq.get(a, 0) + 1
    except TypeError as exc:
        raise TypeError(f"answers must be hashable (str, int, tuple, ...): {exc}") from None
    counts = np.fromiter((freq[a] for a in items), dtype=np.int64, count=len(items))
    if bad and failed == "exclude":
        counts[bad] = 0
    return counts


# ----------------------------------------------------------------------------- the table
def _nearby(Ks: tuple, K: int, k: int = 3) -> list[int]:
    j = bisect.bisect_left(Ks, K)
    return list(Ks[max(0, j - k): j + k])


def _first_bad(bad_mask: np.ndarray) -> tuple:
    idx = np.argwhere(bad_mask)[0]
    return tuple(int(i) for i in idx)


class Table:
    """A loaded reward table: one dense float64 array, one row per K.

    Attributes
    ----------
    name, family, target, method : str
        From the file (``target`` e.g. ``"p^2"`` or ``"log p"``).
    params, provenance : dict
        Generator parameters and build provenance.
    Ks : tuple of int
        Sorted K values in the file (including rows whose status is not ``"ok"``).
    status : dict[int, str]
        ``"ok"`` or the reason row K is unavailable (such rows cannot be looked up).
    content_hash : str
        The table's content hash.
    path : pathlib.Path or None
        The file it was read from.

    Notes
    -----
    ``self.dense[i, n]`` = c_K[n] for K = ``Ks[i]`` and n in 1..K; column 0 and columns beyond K
    are NaN padding.  Device copies for torch / jax are cached per (device, dtype).
    """

    def __init__(self, data, path: str | os.PathLike | None = None):
        self.name = data.name
        self.family = data.family
        self.target = data.target
        self.method = data.method
        self.params = dict(data.params)
        self.provenance = dict(data.provenance)
        self.content_hash = data.content_hash
        self.path = None if path is None else Path(path)
        self.Ks = tuple(int(k) for k in data.Ks)
        self._index = {K: i for i, K in enumerate(self.Ks)}
        self.status = {K: str(data.rows[K].status) for K in self.Ks}
        self._metrics = {K: dict(data.rows[K].metrics) for K in self.Ks}
        # high-precision strings only where the guard needs them (no stored rounding bound)
        self._hp = {K: data.rows[K].values_hp if needs_hp(self._metrics[K]) else None
                    for K in self.Ks}
        kmax = max(self.Ks, default=0)
        dense = np.full((len(self.Ks), kmax + 1), np.nan, dtype=np.float64)
        for i, K in enumerate(self.Ks):
            v = np.asarray(data.rows[K].values, dtype=np.float64)
            if self.status[K] == "ok" and not np.all(np.isfinite(v)):
                bad = int(np.argmin(np.isfinite(v)))
                raise ValueError(
                    f"table {self.name!r}: row K={K} has status 'ok' but c_K[{bad + 1}] = {float(v[bad])!r}")
            dense[i, 1: K + 1] = v
        dense.flags.writeable = False
        self.dense = dense
        self._cache: dict = {}
        self._precision: dict = {}
        # K -> dense row (length K + 1) for rows validated for float64 numpy serving (fast path)
        self._served64: dict = {}

    @classmethod
    def from_data(cls, data) -> Table:
        """A Table from an in-memory ``aqpgen.store.content.TableData``."""
        return cls(data)

    def __repr__(self) -> str:
        ks = f"{self.Ks[0]}..{self.Ks[-1]} ({len(self.Ks)} values)" if self.Ks else "none"
        return f"Table(name={self.name!r}, target={self.target!r}, method={self.method!r}, Ks={ks})"

    # ------------------------------------------------------------------ per-K access
    def _row_index(self, K) -> tuple[int, int]:
        K = as_int(K, "K")
        i = self._index.get(K)
        if i is None:
            raise ValueError(
                f"K={K} is not in table {self.name!r} (nearby Ks: {_nearby(self.Ks, K)}; "
                f"the table has {len(self.Ks)} Ks from {self.Ks[0] if self.Ks else '-'} to "
                f"{self.Ks[-1] if self.Ks else '-'}); build it with `aqpgen build`")
        if self.status[K] != "ok":
            raise ValueError(
                f"row K={K} of table {self.name!r} is unavailable: {self.status[K]}")
        return K, i

    def values(self, K) -> np.ndarray:
        """Read-only float64 view of c_K[1..K] (0-based: ``values(K)[n-1] = c_K[n]``).

        These are the stored values, not guarded by the precision check (see
        :meth:`precision`); serve rewards through :meth:`lookup`.
        """
        K, i = self._row_index(K)
        return self.dense[i, 1: K + 1]

    def metrics(self, K) -> dict:
        """The stored metrics of row K (see docs/ARCHITECTURE.md, "Metric names")."""
        if int(K) not in self._metrics:
            self._row_index(K)
        return dict(self._metrics[int(K)])

    # ------------------------------------------------------------------ precision guard
    def precision(self, K, dtype=None) -> RowPrecision:
        """Bound on the weighted bias β of row K as served in ``dtype`` (module docstring).

        Parameters
        ----------
        K : int
            A row of the table (status ``"ok"``).
        dtype : numpy / torch / jax float dtype or its name; default float64.

        Returns
        -------
        RowPrecision
            ``bound`` is a rigorous upper bound: the stored certificate of the values the row
            was certified with (``beta_f64`` for the float64 rounding when stored, ``err_f64``
            for exact rows, ``beta_cert`` otherwise), plus max_n |c_exact[n] - c_served[n]|
            (computed exactly; inf if a value overflows the dtype).  Cached per (K, dtype).
        """
        K, i = self._row_index(K)
        name = dtype_name(dtype)
        key = (K, name)
        got = self._precision.get(key)
        if got is None:
            got = self._precision[key] = row_precision(K, name, self._metrics[K], self.dense[i, 1: K + 1],
                                                       self._hp[K])
        return got

    def served_Ks(self, dtype=None) -> tuple[int, ...]:
        """The Ks whose rows are ``"ok"`` and pass the precision guard when served in ``dtype``."""
        return tuple(K for K in self.Ks if self.status[K] == "ok" and self.precision(K, dtype).ok)

    def check_precision(self, K, dtype=None, *, what: str = "lookup") -> RowPrecision:
        """:meth:`precision`, raising :class:`ImpreciseRowError` when the row is refused."""
        pr = self.precision(K, dtype)
        if not pr.ok:
            served = self.served_Ks(pr.dtype)
            largest = max((k for k in served if k <= pr.K), default=None)
            raise ImpreciseRowError(
                f"{what}: row K={pr.K} of table {self.name!r} served as {pr.dtype} has weighted bias "
                f"beta <= {pr.bound:.3g} ({pr.how}), which breaks its certificate beta_cert = "
                f"{pr.certificate:.3g} by more than {PRECISION_SLACK:.0%} (allowed {pr.allowed:.3g}): "
                f"the {pr.dtype} rounding of its values destroys the certified accuracy.  "
                + (f"The largest K <= {pr.K} this table serves in {pr.dtype} is {largest}; "
                   if largest is not None else "")
                + ("use another K, a table that holds this K in this precision, a wider dtype, "
                   "or pass allow_imprecise=True to serve it anyway."))
        return pr

    # ------------------------------------------------------------------ lookup
    def lookup(self, counts, K, *, dtype=None, check: bool = True, allow_imprecise: bool = False):
        """Rewards c_K[counts] for counts of any shape; same shape and array type as ``counts``.

        Parameters
        ----------
        counts : array-like of int
            Self-inclusive counts, 1 <= n <= K.  numpy arrays (and Python ints / lists) give
            numpy float64; a torch tensor gives a torch tensor on its device; a jax array a jax
            array on its device.  An integer dtype is required.
        K : int
            Batch size (group size) the counts refer to.
        dtype : optional
            Output dtype: numpy dtype (default float64), torch dtype (default torch.float64) or
            jax dtype (default float64 when ``jax_enable_x64`` is on, else float32).
        check : bool
            torch / jax only: validate the range (one min/max reduction and a device sync).
            numpy inputs are always checked.  See the module docstring for unchecked semantics.
        allow_imprecise : bool
            Serve a row even when its rounding to the output dtype breaks its certificate
            (:meth:`precision`); default False (raise :class:`ImpreciseRowError`).

        Returns
        -------
        Array of rewards: ``out[idx] = c_K[counts[idx]]``.  A Python int gives a float; a numpy
        integer scalar a numpy float64.

        Raises
        ------
        TypeError
            ``counts`` not of an integer dtype (float counts are refused even when integral).
        ValueError
            A count outside 1..K (the message names the first offending value and its index),
            K absent from the table (nearby Ks listed) or its row not ``"ok"``.
        ImpreciseRowError (a ValueError)
            The row served in the output dtype breaks its certificate (and not ``allow_imprecise``).
        """
        # fast path: numpy integer array, float64 output, a K already validated for float64;
        # runtime.gather checks every count (None: one is out of range, or a dtype it does not
        # take such as uint64 -> the slow path says which or converts)
        if type(counts) is np.ndarray and dtype is None and type(K) is int:
            row = self._served64.get(K)
            if row is not None and counts.ndim:
                out = gather(row, counts)
                if out is not None:
                    return out
        if isinstance(counts, np.ma.MaskedArray):
            raise TypeError("counts is a numpy masked array: its mask would be ignored.  Look up "
                            "the unmasked counts (counts.compressed()) instead")
        K, i = self._row_index(K)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(counts, torch.Tensor):
            self._guard(K, torch.float64 if dtype is None else dtype, allow_imprecise)
            return self._lookup_torch(torch, counts, K, i, dtype, check)
        jax = sys.modules.get("jax")
        if jax is not None and isinstance(counts, jax.Array):
            import jax.numpy as jnp

            self._guard(K, jnp.result_type(float) if dtype is None else dtype, allow_imprecise)
            return self._lookup_jax(jax, counts, K, i, dtype, check)
        self._guard(K, dtype, allow_imprecise)
        out = self._lookup_numpy(counts, K, i, dtype)
        if dtype is None and self.precision(K).ok and K not in self._served64:
            self._served64[K] = self.dense[i, : K + 1]
        return out

    def _guard(self, K: int, dtype, allow_imprecise: bool) -> None:
        if not allow_imprecise:
            self.check_precision(K, dtype)

    def _numpy_dense(self, dtype) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == np.float64:
            return self.dense
        key = ("numpy", np.dtype(dtype).str)
        d = self._cache.get(key)
        if d is None:
            if np.dtype(dtype).kind != "f":
                raise TypeError(f"dtype must be a floating dtype, received {dtype!r}")
            with np.errstate(over="ignore"):  # overflow only with allow_imprecise (guarded)
                d = self._cache[key] = self.dense.astype(dtype)
        return d

    def _lookup_numpy(self, counts, K: int, i: int, dtype):
        scalar_kind = None
        if isinstance(counts, np.ndarray):
            a = counts
        elif isinstance(counts, np.generic):
            a, scalar_kind = np.asarray(counts), "numpy"
        elif isinstance(counts, numbers.Integral) and not isinstance(counts, bool):
            a, scalar_kind = np.asarray(int(counts), dtype=np.int64), "python"
        else:
            a = np.asarray(counts)
            if a.size == 0 and a.dtype.kind == "f":  # an empty list has no integer dtype
                a = a.astype(np.int64)
        if a.dtype.kind not in "iu":
            hint = (" (whole-number floats are refused on purpose: convert with "
                    "counts.astype(np.int64))" if a.dtype.kind == "f" else "")
            raise TypeError(f"counts must have an integer dtype, received {a.dtype}{hint}")
        if a.size:
            lo = a.min()
            hi = a.max()
            if lo < 1 or hi > K:
                self._raise_range(a, K, lo if lo < 1 else hi)
            if a.dtype.kind == "u" and a.dtype.itemsize >= np.dtype(np.intp).itemsize:
                a = a.astype(np.intp)
        row = self._numpy_dense(dtype)[i, : K + 1]
        out = np.take(row, a)
        if scalar_kind == "python":
            return float(out)
        if scalar_kind is None and a.ndim == 0:
            return np.asarray(out)
        return out

    def _raise_range(self, a, K: int, value) -> None:
        a = np.asarray(a)
        idx = _first_bad((a < 1) | (a > K)) if a.ndim else ()
        where = f"counts[{', '.join(map(str, idx))}]" if a.ndim else "counts"
        raise ValueError(
            f"counts must be self-inclusive counts in 1..K=1..{K}, but {where} = "
            f"{int(a[idx])} (first offending entry; {'min' if int(a[idx]) < 1 else 'max'} "
            f"is {int(value)})")

    # torch -------------------------------------------------------------
    def _lookup_torch(self, torch, counts, K: int, i: int, dtype, check: bool):
        if counts.dtype.is_floating_point or counts.dtype.is_complex or counts.dtype == torch.bool:
            hint = (" (whole-number floats are refused on purpose: convert with counts.long())"
                    if counts.dtype.is_floating_point else "")
            raise TypeError(f"counts must have an integer dtype, received {counts.dtype}{hint}")
        dtype = torch.float64 if dtype is None else dtype
        key = ("torch", counts.device, dtype)
        dense = self._cache.get(key)
        if dense is None:
            # from a writable copy: torch warns on read-only numpy buffers
            dense = torch.from_numpy(np.array(self.dense)).to(device=counts.device, dtype=dtype)
            self._cache[key] = dense
        if check and counts.numel():
            lo, hi = torch.aminmax(counts)
            lo, hi = int(lo), int(hi)
            if lo < 1 or hi > K:
                bad = torch.nonzero((counts < 1) | (counts > K))[0].tolist() if counts.dim() else []
                v = int(counts[tuple(bad)]) if counts.dim() else int(counts)
                where = f"counts[{', '.join(map(str, bad))}]" if counts.dim() else "counts"
                raise ValueError(
                    f"counts must be self-inclusive counts in 1..K=1..{K}, but {where} = {v} "
                    f"(first offending entry; {'min' if v < 1 else 'max'} is {lo if v < 1 else hi})")
        row = dense[i, : K + 1]
        idx = counts if counts.dtype in (torch.int64, torch.int32) else counts.to(torch.int64)
        return torch.index_select(row, 0, idx.reshape(-1)).reshape(counts.shape)

    # jax ---------------------------------------------------------------
    def _lookup_jax(self, jax, counts, K: int, i: int, dtype, check: bool):
        import jax.numpy as jnp

        if not jnp.issubdtype(counts.dtype, jnp.integer):
            raise TypeError(f"counts must have an integer dtype, received {counts.dtype} "
                            f"(convert with counts.astype(jnp.int32))")
        if dtype is None:
            dtype = jnp.result_type(float)  # float64 iff jax_enable_x64, else float32
        tracer = getattr(getattr(jax, "core", None), "Tracer", None)
        traced = tracer is not None and isinstance(counts, tracer)
        if traced:
            row = jnp.asarray(self.dense[i, : K + 1], dtype=dtype)
            valid = (counts >= 1) & (counts <= K)
            # Under jit the values cannot be checked: invalid counts give NaN (documented).
            return jnp.where(valid, row[jnp.clip(counts, 0, K)], jnp.nan)
        device = next(iter(counts.devices()))
        key = ("jax", device, jnp.dtype(dtype).name)
        dense = self._cache.get(key)
        if dense is None:
            dense = self._cache[key] = jax.device_put(jnp.asarray(self.dense, dtype=dtype), device)
        if check and counts.size:
            lo, hi = int(counts.min()), int(counts.max())
            if lo < 1 or hi > K:
                self._raise_range(np.asarray(counts), K, lo if lo < 1 else hi)
        return dense[i, counts]

    # ------------------------------------------------------------------ groups
    def rewards(self, answers, *, failed: str = "unique", **kw):
        """Rewards of one group of answers: ``lookup(answers_to_counts(answers, failed=failed), K)``.

        K is the group's own size: ``len(answers)``, or with ``failed="exclude"`` the number K'
        of answers that did not fail (failed answers, ``None`` or NaN, then get a NaN reward;
        K' = 0 gives all NaN).  ``failed`` is as for :func:`answers_to_counts` (default
        ``"unique"``: each failed answer its own answer).  Other keyword arguments go to
        :meth:`lookup`.  Returns numpy float64, shape (len(answers),).
        """
        counts = answers_to_counts(answers, failed=failed)
        kept = counts > 0
        if kept.all():
            return self.lookup(counts, len(counts), **kw)
        if not kept.any():
            return np.full(len(counts), np.nan, dtype=np.dtype(kw.get("dtype") or np.float64))
        r = self.lookup(counts[kept], int(kept.sum()), **kw)
        out = np.full(len(counts), np.nan, dtype=r.dtype)
        out[kept] = r
        return out
