"""The high-precision stage of the Remez exchange (``aqpgen.generators.remez``): python-flint arb.

Public names
------------
hp_rows(k, d, M, K, prec, target)  -- the arb system rows at the reference t_i = pi k_i/M + d_i.
hp_solve(Mfull, Ls, A_float, prec, K) -- the levelled system solved to ~prec bits (float64 LU +
                                   iterative refinement with arb residuals).
hp_values(Mfull, ps, Ls, coeffs, prec, K) -- the errors e_i in arb.
cheb_strings(b_arb, prec), coeffs_from_strings(cheb, prec) -- cosine coefficients <-> the
                                   Chebyshev coefficients as decimal strings.
digits(prec)                     -- significant decimal digits printed for a quantity computed at
                                   ``prec`` bits.

Every arb operation runs inside ``flint_prec(prec)`` (``aqpgen.numerics.precision``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aqpgen.numerics.precision import flint_prec
from aqpgen.targets import Target

__all__ = ["cheb_strings", "coeffs_from_strings", "digits", "hp_rows", "hp_solve", "hp_values"]


def digits(prec: int) -> int:
    """Significant decimal digits printed for a quantity computed at ``prec`` bits."""
    return int(prec * math.log10(2)) + 2


def hp_rows(k, d, M: int, K: int, prec: int, target: Target):
    """arb rows [cos(j t_i), j < K] + [(-1)^i / p_i], and p_i, g(p_i) at t_i = pi k_i/M + d_i."""
    with flint_prec(prec) as flint:
        arb = flint.arb
        pi = arb.pi()
        rows, ps, Ls = [], [], []
        for i, (ki, di) in enumerate(zip(k, d)):
            t = pi * int(ki) / M + arb(float(di))
            c = t.cos()
            s = (t / 2).sin()
            p = s * s
            ps.append(p)
            Ls.append(target.g_arb_sin(s))
            r = [arb(1), c.mid()] if K > 1 else [arb(1)]
            c2 = 2 * c
            T0, T1 = r[0], r[-1]
            for _ in range(2, K):
                T0, T1 = T1, (c2 * T1 - T0).mid()
                r.append(T1)
            r.append((1 if i % 2 == 0 else -1) / p)
            rows.append(r)
        return flint.arb_mat(rows), ps, Ls


def hp_solve(Mfull, Ls, A_float, prec: int, K: int):
    """Solve Mfull x = g(p) to ~prec bits: float64 LU + iterative refinement, arb residuals."""
    import scipy.linalg

    lu = scipy.linalg.lu_factor(A_float)
    with flint_prec(prec) as flint:
        arb_mat = flint.arb_mat
        rhs = arb_mat([[L] for L in Ls])
        x = arb_mat(K + 1, 1)
        xf = np.zeros(K + 1)
        for _ in range(12):
            r = rhs - Mfull * x
            rf = np.array([float(v.mid()) for v in r.entries()])
            dx = scipy.linalg.lu_solve(lu, rf)
            x = x + arb_mat([[float(v)] for v in dx])
            xf = xf + dx
            if np.max(np.abs(dx)) <= 2.0 ** (-prec + 4) * np.max(np.abs(xf)):
                break
        return [v.mid() for v in x.entries()]


def hp_values(Mfull, ps, Ls, coeffs, prec: int, K: int):
    """Errors e_i = p_i (Q(t_i) - g(p_i)) in arb, Q given by arb cosine coefficients."""
    with flint_prec(prec) as flint:
        arb, arb_mat = flint.arb, flint.arb_mat
        x = arb_mat([[c] for c in coeffs] + [[arb(0)]])
        Q = (Mfull * x).entries()
        return [ps[i] * (Q[i] - Ls[i]) for i in range(K + 1)]


def cheb_strings(b_arb, prec: int) -> tuple[str, ...]:
    """Chebyshev coefficients a_j = (-1)^j b_j as decimal strings (``digits(prec)`` digits)."""
    n = digits(prec)
    out = []
    with flint_prec(prec):  # negation rounds to the context precision
        for j, v in enumerate(b_arb):
            v = v.mid() if j % 2 == 0 else -v.mid()
            out.append(v.str(n, radius=False))
    return tuple(out)


def coeffs_from_strings(cheb: Sequence[str], prec: int):
    """Cosine coefficients b_j = (-1)^j a_j as arb at ``prec`` bits from decimal strings."""
    with flint_prec(prec) as flint:
        return [flint.arb(s) if j % 2 == 0 else -flint.arb(s) for j, s in enumerate(cheb)]
