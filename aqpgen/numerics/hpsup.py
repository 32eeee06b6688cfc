"""Suprema located in float64 and evaluated in ball arithmetic: metrics that are one double.

The stored metrics of a table (beta, V_inf) are suprema over p in [0, 1] of smooth functions of
the table.  A float64 search (sampling, golden section, BLAS matrix products) finds them to
~1e-13 relative, but its last bits depend on the numpy / BLAS build, the CPU's kernels and the
number of threads.  Here float64 only *locates* the maxima; each candidate is then refined by
Newton's method in python-flint ``arb`` and the supremum evaluated there, so the stored double is
a function of the table alone (docs/MATH.md §6b).

Public names
------------
CosSeries(cheb, prec)          -- f(theta) = sum_j alpha_j cos(j theta) from exact Chebyshev
                                  coefficients of f(p) in x = 2p - 1 (alpha_j = (-1)^j a_j);
                                  ``series(theta)``: (f, f', f''/2) as an arb_series.
candidates(v, window)          -- indices of the sampled local maxima within ``window`` (relative)
                                  of the largest sample.
hp_max(fun, theta, idx, prec)  -- the largest local maximum near the candidates: safeguarded
                                  Newton in arb on d fun / d theta, value at the limit (an arb).
round_down(x), round_nearest(x), round_up_bits(x, bits)
                               -- arb / float to float64 with a stated rounding.
sup_prec(K)                    -- the working precision of these evaluations.

Why the result does not depend on float64
-----------------------------------------
* Every sampled local maximum within ``window`` of the largest sample is refined.  The sampling
  (20 points per oscillation) underestimates a local maximum by at most ~1.2% (a cosine sampled
  at spacing pi/20 loses (pi/20)^2/2 of its amplitude), so with ``window`` = 5% the global
  maximum is always among the candidates, whatever float64 rounding did to the samples; a
  candidate that enters or leaves the set by a rounding difference is at least 3.8% below it.
* Newton's method converges quadratically from the float64 location to the local maximiser
  theta*; it stops when the step is below 2^-(prec/2), where the value is within ~2^-prec of
  f(theta*) (f'(theta*) = 0), far below one float64 ulp.  The bracket [theta_{i-1}, theta_{i+1}]
  of a sampled maximum holds a sign change of f' and safeguards every step (bisection when a
  Newton step leaves it).
* The value is an arb ball; it is rounded once (down for a lower bound, to nearest otherwise).
  Two runs can then differ only if f(theta*) lies within ~2^-prec of a rounding boundary.

Cost: O(K) per evaluation (three complex Horner passes at ``prec`` bits, on midpoints with an a
priori error bound: `CosSeries`), a few Newton steps per
candidate; the minimax tables (K + 1 equal maxima) cost ~K^2 bit operations per row: measured by
``make bench`` (bench/bench_metrics.py).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from aqpgen.numerics.precision import flint_prec, work_prec

__all__ = [
    "WINDOW",
    "CosSeries",
    "candidates",
    "hp_max",
    "round_down",
    "round_nearest",
    "round_up_bits",
    "sup_prec",
]

#: relative window below the largest sample in which every sampled local maximum is refined.
WINDOW = 0.05
_MAX_NEWTON = 60
_DOUBLE_MAX = 1.7976931348623157e308


def sup_prec(K: int) -> int:
    """Working precision (bits) of the ball evaluations: the project policy plus 64 guard bits."""
    return work_prec(K) + 64


class CosSeries:
    """f(theta) = sum_j alpha_j cos(j theta), alpha_j = (-1)^j a_j, for f(p) = sum_j a_j T_j(2p-1).

    Parameters
    ----------
    cheb : sequence of flint.fmpq (or anything ``flint.arb`` accepts)
        Exact Chebyshev coefficients a_0..a_n in x = 2p - 1.
    prec : int
        Working precision in bits.

    Notes
    -----
    With z = e^{i theta}: f = Re A0(z), f' = -Im A1(z), f'' = -Re A2(z), A_s(z) = sum_j j^s alpha_j
    z^j, each one complex Horner pass in C at ``prec`` bits.  Ball arithmetic cannot carry the
    error of a long complex Horner pass (the rectangular complex balls inflate by up to sqrt 2 per
    step, 2^512 at degree 1024), so the pass runs on midpoints and the result gets the a priori
    bound 16 (n + 2) 2^-prec sum_j j^s |alpha_j| (Horner's rounding on |z| = 1, the rounding of z
    and of the coefficients; Higham, Accuracy and Stability, §5.1) as its radius.
    """

    def __init__(self, cheb, prec: int):
        self.prec = int(prec)
        with flint_prec(self.prec) as flint:
            alpha = [(flint.arb(a) if j % 2 == 0 else -flint.arb(a)).mid()
                     for j, a in enumerate(cheb)]
            n = len(alpha)
            self._polys, self._rads = [], []
            for s in (0, 1, 2):
                co = [al * (j**s) for j, al in enumerate(alpha)]
                norm = sum(abs(x) for x in co).mid()
                self._polys.append(flint.acb_poly([flint.acb(x) for x in co]))
                # [0 +- bound] (arb: the bound may exceed the float64 range)
                self._rads.append(flint.arb(0, 1) * (16 * (n + 2) * norm
                                                     * flint.arb(2) ** (-self.prec)))

    def series(self, theta):
        """(f, f', f''/2) at the arb ``theta`` as an arb_series in t = theta' - theta."""
        with flint_prec(self.prec) as flint:
            z = flint.acb(0, theta).exp()
            z = flint.acb(z.real.mid(), z.imag.mid())
            A0, A1, A2 = (P(z) for P in self._polys)
            r0, r1, r2 = self._rads
            return flint.arb_series([A0.real.mid() + r0, -A1.imag.mid() + r1,
                                     (-A2.real.mid() + r2) / 2], prec=self.prec)


def t_series(theta, prec: int):
    """theta + t as an arb_series of length 3 (the variable of every series here)."""
    import flint

    return flint.arb_series([theta, 1], prec=prec)


def candidates(v: np.ndarray, window: float = WINDOW) -> np.ndarray:
    """Indices of sampled local maxima of ``v`` (endpoints included) within ``window`` of max v."""
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    best = float(np.max(v))
    left = np.concatenate(([-np.inf], v[:-1]))
    right = np.concatenate((v[1:], [-np.inf]))
    is_max = (v >= left) & (v >= right)
    keep = is_max & (v >= best - window * abs(best))
    idx = np.flatnonzero(keep)
    return idx if idx.size else np.array([int(np.argmax(v))]) if n else idx


def _deriv(fun, t, prec):
    """(value, f', f'') of ``fun`` at the arb t."""
    s = fun(t)
    return s.coeffs()[0], s.coeffs()[1], 2 * s.coeffs()[2]


def _newton(fun, lo: float, t0: float, hi: float, prec: int):
    """Refine a maximiser of fun in [lo, hi] from t0; returns the arb value at the limit."""
    import flint

    with flint_prec(prec):
        a, b = flint.arb(lo), flint.arb(hi)
        _, da, _ = _deriv(fun, a, prec)
        _, db, _ = _deriv(fun, b, prec)
        if not (da > 0 and db < 0):
            # no certified sign change of f' across the bracket: the maximum of fun on it is at
            # an end (a boundary sample) or f' vanishes at an end; take the larger end value
            # together with the value at the sample itself
            vals = [_deriv(fun, flint.arb(x), prec)[0] for x in (lo, t0, hi)]
            return max(vals, key=lambda x: x.mid())
        t = flint.arb(t0)
        tiny = flint.arb(2) ** (-(prec // 2))
        for _ in range(_MAX_NEWTON):
            _, d1, d2 = _deriv(fun, t, prec)
            if d1 > 0:
                a = t
            elif d1 < 0:
                b = t
            else:  # the ball of f' contains 0: t is the maximiser to the working precision
                break
            step = -(d1 / d2) if d2 < 0 else None
            tn = (t + step).mid() if step is not None else None
            if tn is None or not (tn > a and tn < b):
                tn = ((a + b) / 2).mid()
                step = tn - t
            t = tn
            if abs(step) < tiny:
                break
        return _deriv(fun, t, prec)[0]


def hp_max(fun, theta: np.ndarray, idx, prec: int):
    """max over candidates i of the local maximum of ``fun`` in [theta_{i-1}, theta_{i+1}].

    Parameters
    ----------
    fun : callable
        fun(t) for an arb ``t`` returns an arb_series (value, derivative, second derivative / 2)
        of the function to maximise, at python-flint's current precision.
    theta : float array
        The sample angles (uniform on [0, pi], both ends included).
    idx : iterable of int
        Candidate sample indices (`candidates`).
    prec : int

    Returns
    -------
    flint.arb
        The largest refined value (a ball containing the value at the refined maximiser).
    """
    n = len(theta) - 1
    best = None
    for i in idx:
        i = int(i)
        lo, hi = float(theta[max(i - 1, 0)]), float(theta[min(i + 1, n)])
        if lo <= 0.0:  # the functions here may be singular at theta = 0 (p = 0) only
            lo = float(theta[1]) / 8.0
        t0 = min(max(float(theta[i]), lo), hi)
        v = _newton(fun, lo, t0, hi, prec)
        if best is None or v.mid() > best.mid():
            best = v
    return best


def _exact(x):
    """(mantissa, exponent) of an exact dyadic arb (a midpoint or an end point)."""
    man, exp = x.man_exp()
    return int(man), int(exp)


def _dyadic_to_float(man: int, exp: int) -> float:
    """man * 2^exp correctly rounded to float64 (Python's int / int division is; +-inf beyond)."""
    try:
        return float(man << exp) if exp >= 0 else man / (1 << -exp)
    except OverflowError:
        return math.inf if man > 0 else -math.inf


def round_nearest(x) -> float:
    """The midpoint of the arb ``x`` correctly rounded to float64 (+-inf beyond its range)."""
    return _dyadic_to_float(*_exact(x.mid()))


def round_down(x) -> float:
    """The largest float64 <= the lower end of the arb ``x`` (a rigorous lower bound)."""
    man, exp = _exact(x.lower())
    f = _dyadic_to_float(man, exp)
    exact = Fraction(man) * (Fraction(2) ** exp)
    if math.isinf(f):
        return f if f < 0 else _DOUBLE_MAX
    while Fraction(f) > exact:
        f = math.nextafter(f, -math.inf)
    return f


def round_up_bits(x: float, bits: int = 24) -> float:
    """x rounded up (towards +inf) to ``bits`` significant bits: an upper bound whose last float64
    bits no longer carry the rounding noise of the computation that produced ``x``."""
    x = float(x)
    if not math.isfinite(x) or x == 0.0:
        return x
    m, e = math.frexp(x)  # x = m 2^e, 0.5 <= |m| < 1
    scaled = math.ldexp(m, bits)
    r = math.ceil(scaled)
    return math.ldexp(r, e - bits)
