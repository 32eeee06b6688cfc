"""Independent oracles for the p^a target shared by the tests (closed forms, published constants,
direct mpmath evaluation).  They never call the Remez engine of aqpgen."""

import mpmath as mp
import numpy as np
from _kl_oracles import mp_golden_max

#: Bernstein's constant lim_n n E_n(|x|) (Varga & Carpenter 1985, 50+ digits published).
BERNSTEIN_BETA = 0.28016949902386913303643649123067


def E1_closed_form(a, dps=40):
    """E*_1(a): min_c sup_p |c p - p^b|, b = a + 1.  e = c p - p^b is convex (b < 1) or concave
    (b > 1), so it equioscillates at its interior extremum p* = (c/b)^(1/(b-1)) and at p = 1:
    c p* (1 - 1/b) = 1 - c (using p*^b = c p*/b), and E*_1 = |1 - c|."""
    with mp.workdps(dps):
        b = mp.mpf(a) + 1
        c = mp.findroot(lambda c: c * (c / b) ** (1 / (b - 1)) * (1 - 1 / b) - (1 - c),
                        mp.mpf("0.9") if b > 1 else mp.mpf("1.2"))
        return float(abs(1 - c))


def mp_beta_power(values_hp, a, n=None, dps=40):
    """sup_p p |g_c(p) - p^a| for a table given by decimal strings, in mpmath (Bernstein form,
    dense theta grid of 60 (K+1) points, golden-section refinement around the grid maximum)."""
    K = len(values_hp)
    with mp.workdps(dps):
        c = [mp.mpf(s) for s in values_hp]
        am = mp.mpf(a)

        def e(t):
            p = mp.sin(t / 2) ** 2
            q = 1 - p
            g = mp.fsum(c[m] * mp.binomial(K - 1, m) * p**m * q ** (K - 1 - m) for m in range(K))
            return abs(p * g - p ** (am + 1))

        n = n or 60 * (K + 1)
        th = [mp.pi * i / n for i in range(1, n + 1)]
        vals = [e(t) for t in th]
        i = int(np.argmax([float(v) for v in vals]))
        return float(max(max(vals), mp_golden_max(e, th[max(i - 1, 0)], th[min(i + 1, n - 1)], 60)))
