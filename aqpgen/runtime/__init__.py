"""Zero-overhead reward lookup for training code (docs/MATH.md §10).

Imports only numpy; h5py is imported when a file is read, torch / jax only when the caller passes
their arrays (this module never imports them itself: it looks them up in ``sys.modules``).

Public names
------------
load_table(path_or_name)    -- read a table file once into a dense float64 array -> Table.
Table                       -- ``Ks``, ``values(K)``, ``lookup(counts, K)``, ``rewards(answers)``,
                               ``metrics(K)``, ``precision(K, dtype)``, ``status``, ``name``,
                               ``target``, ``method``, ``params``.
RowPrecision                -- the precision guard's verdict for one (row, served dtype).
ImpreciseRowError           -- ValueError raised when a served rounding breaks a certificate.
answers_to_counts(answers)  -- self-inclusive counts of one group of K answers (O(K)).
PRECISION_SLACK             -- 0.01: a served row may exceed its certificate by 1% (+ unit roundoff).

Conventions
-----------
Counts are self-inclusive: for completion i of a group of K, n_i = number of the K completions
whose answer equals z_i, so 1 <= n_i <= K.  The reward of completion i is c_K[n_i]:

>>> t = load_table("power-m2")                     # doctest: +SKIP
>>> t.lookup(np.array([1, 2, 4]), K=4)              # doctest: +SKIP
array([0.        , 0.        , 1.        ])

Validation and cost
-------------------
``lookup`` validates (integer dtype, 1 <= n <= K, K present, its row ``"ok"`` and its served
precision within its certificate) and then does one gather from a contiguous row of the dense
table; the row is padded at index 0 so that the count is the index (no ``counts - 1``
temporary).  The per-K checks are done once and cached, so a repeated numpy call costs one dict
look-up and the checked gather of :mod:`aqpgen.runtime.gather`: fancy indexing and a Python
``min`` for one group; for larger arrays numpy's ``take`` and one ``min``.  Nothing ever returns NaN silently on the checked paths.  ``make bench``
(``bench/bench_lookup.py``) measures the cost against ``np.log(counts / K)`` on the same array.

* numpy: always checked.
* torch: ``check=True`` (default) computes ``aminmax`` on the counts' device and reads two
  scalars back (a device synchronisation, but no host copy of the data).  ``check=False`` skips
  it: then a count of 0 reads the NaN padding, and a negative count or one above K raises
  IndexError on CPU (a device-side assert on CUDA).  Use ``check=False`` only for counts produced
  by :func:`answers_to_counts`-like code you trust.
* jax: outside ``jit`` the counts are checked eagerly like torch.  Under ``jit`` (traced counts)
  values cannot be checked; the lookup then returns NaN for every count outside 1..K (an
  explicit ``where``, so a bad count shows up as NaN in the loss and never as another row's
  value).  Check counts outside the traced function if you need an exception.

Precision guard
---------------
See :mod:`aqpgen.runtime.precision`: ``lookup`` refuses (:class:`ImpreciseRowError`) a row whose
rounding to the served dtype breaks its certificate by more than 1% (+ the dtype's unit
roundoff), unless ``allow_imprecise=True``.  ``values(K)`` returns the stored float64 values
unguarded (the file's content, used by the audit); serve rewards through ``lookup``.

Possible issues: counts given as floats are refused even when integral (convert with
``.astype(np.int64)`` / ``.long()``): a float count usually means counts were averaged or
normalised upstream, which is a bug worth surfacing.
"""

from aqpgen.runtime.precision import PRECISION_SLACK, ImpreciseRowError, RowPrecision
from aqpgen.runtime.table import Table, answers_to_counts, load_table

__all__ = ["PRECISION_SLACK", "ImpreciseRowError", "RowPrecision", "Table", "answers_to_counts",
           "load_table"]
