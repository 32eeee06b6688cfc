"""Shape constraints of the AQP programs: tables that rise (or fall) with the count like their
target (docs/MATH.md §5b).

An unconstrained AQP table only has its *mean* polynomial g_c(p) constrained, so its entries
may oscillate in n (an answer seen twice rewarded above one seen three times).  ``shape =
"monotone"`` adds linear constraints that follow the target's monotonicity and sign:

* log p (increasing, <= 0):        c_1 <= c_2 <= ... <= c_K <= 0;
* p^a, a >= 0 (increasing, >= 0):  0 <= c_1 <= c_2 <= ... <= c_K;
* p^a, -1 < a < 0 (decreasing, > 0): c_1 >= c_2 >= ... >= c_K >= 0 (the closed form of c > 0:
  the solutions' c_K sit near g(1) = 1, far from the bound).

Public names
------------
SHAPES                          -- the accepted values of the ``shape`` param: "none", "monotone".
check_shape(shape) -> str       -- validate the param (ValueError naming it and the value).
Shape                           -- direction (+1 nondecreasing, -1 nonincreasing), sign (+1: c >= 0,
                                   -1: c <= 0) of a target.
target_shape(target) -> Shape   -- the monotone shape of a target.
constraints(K, target)          -- (G, h), sparse G (K x K): the shape is G @ c <= h.
repair(values, target)          -- the sign bound, then a running maximum in the shape's direction
                                   (removes the solver's tolerance-size violations exactly).
violations(values, target)      -- list of strings, one per violated constraint (exact float
                                   comparison; empty when the shape holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aqpgen.targets import LOG, Target, parse_target

__all__ = ["SHAPES", "Shape", "check_shape", "constraints", "repair", "target_shape", "violations"]

#: Values of the AQP ``shape`` param ("none": only the mean is constrained).
SHAPES = ("none", "monotone")


def check_shape(shape) -> str:
    """``shape`` if it is one of ``SHAPES``, else ValueError naming the param and the value."""
    if not isinstance(shape, str) or shape not in SHAPES:
        raise ValueError(f"params 'shape' must be one of {', '.join(repr(s) for s in SHAPES)}, "
                         f"received {shape!r}")
    return shape


@dataclass(frozen=True)
class Shape:
    """``direction`` +1: c nondecreasing in n, -1: nonincreasing; ``sign`` +1: c >= 0, -1: c <= 0
    (imposed on the one entry that bounds all others, ``anchor``: 0 or K-1)."""

    direction: int
    sign: int

    def anchor(self, K: int) -> int:
        """Index of the entry whose sign bound implies every other's (the extreme in the
        direction of the sign)."""
        return K - 1 if self.direction * self.sign < 0 else 0


def target_shape(target: Target = LOG) -> Shape:
    """log p: nondecreasing, <= 0; p^a: nondecreasing for a >= 0, nonincreasing for a < 0; >= 0."""
    target = parse_target(target)
    if target == LOG:
        return Shape(+1, -1)
    return Shape(+1 if target.a >= 0 else -1, +1)


def constraints(K: int, target: Target = LOG):
    """(G, h) with the shape written as G @ c <= h: K - 1 difference rows and one sign row."""
    import scipy.sparse as sp

    s = target_shape(target)
    n = np.arange(K - 1)
    # direction +1: c[n] - c[n+1] <= 0; direction -1: c[n+1] - c[n] <= 0
    D = sp.csr_matrix((np.concatenate([np.full(K - 1, s.direction), np.full(K - 1, -s.direction)]),
                       (np.concatenate([n, n]), np.concatenate([n, n + 1]))), shape=(K - 1, K))
    # sign +1: -c[a] <= 0; sign -1: c[a] <= 0
    S = sp.csr_matrix(([-float(s.sign)], ([0], [s.anchor(K)])), shape=(1, K))
    return sp.vstack([D, S], format="csr"), np.zeros(K)


def repair(values, target: Target = LOG) -> np.ndarray:
    """The table with the shape restored exactly: running maximum in the shape's direction, then
    the sign bound.  A table that already has the shape is returned unchanged (same floats)."""
    c = np.array(values, dtype=np.float64)
    s = target_shape(target)
    c = np.where(c * s.sign < 0, 0.0, c)  # (np.minimum would also turn -0.0 into 0.0)
    # a running maximum keeps the sign bound (the maximum of entries of one sign has that sign)
    return np.maximum.accumulate(c) if s.direction > 0 else np.maximum.accumulate(c[::-1])[::-1]


def violations(values, target: Target = LOG) -> list[str]:
    """Every violated shape constraint of ``values`` (exact comparison of the floats)."""
    c = np.asarray(values, dtype=np.float64)
    s = target_shape(target)
    out = []
    d = np.diff(c) * s.direction
    for i in np.flatnonzero(~(d >= 0)):
        out.append(f"c[{i + 2}] = {c[i + 1]!r} {'<' if s.direction > 0 else '>'} c[{i + 1}] = {c[i]!r}")
    a = s.anchor(len(c))
    if not (c[a] * s.sign >= 0):
        out.append(f"c[{a + 1}] = {c[a]!r} {'> 0' if s.sign < 0 else '< 0'}")
    return out
