"""Classical count-based estimators ("peers") of log p, the tables the KL presets are compared with.

All tables use the self-inclusive count convention: for completion i, n in 1..K counts the K
completions whose answer equals its own, so n - 1 ~ Binomial(K-1, p).  Every peer estimates the
target **log p**.

Public names
------------
PEERS                    -- ("plugin", "digamma", "laplace", "jackknife", "grassberger").
PEER_TARGET              -- "log p".
peer_names(target)       -- the peers of a target: ``PEERS`` for log p, ``POWER_PEERS`` for p^a.
peer_table(name, K)      -- float64 table c_K[1..K] (``values[n-1]``), correctly rounded.
digamma_table_exact(K)   -- the digamma table as exact Fractions.

Definitions (n = 1..K)
----------------------
plugin     log(n/K).
digamma    psi(n) - psi(K) = -sum_{j=n}^{K-1} 1/j.  It is the U-statistic (exactly unbiased table)
           of the degree-(K-1) truncation of log p = -sum_{j>=1} (1-p)^j / j, so its bias is
           g_c(p) - log p = sum_{j>=K} (1-p)^j / j.
laplace    log((n - 1/2)/K)  (add-1/2).
jackknife  the delete-one jackknife of the plug-in over the K-1 *other* samples (the completion's
           own sample is always present):  with theta = log(n/K) and the K-1 leave-one-out values
           log((n-1)/(K-1)) (deleting one of the n-1 others sharing the answer; these terms are
           absent when n = 1, i.e. 0 log 0 = 0) and log(n/(K-1)) (deleting one of the K-n others),
               theta_bar = [(n-1) log((n-1)/(K-1)) + (K-n) log(n/(K-1))] / (K-1),
               theta_J   = (K-1) theta - (K-2) theta_bar
           (the textbook N theta - (N-1) theta_bar with N = K-1 deletable observations; Quenouille
           1956, Efron & Stein 1981).  K = 2 gives theta_J = theta (the plug-in); K = 1 has nothing
           to delete and returns the plug-in table [0].
grassberger G(n) - log K, with Grassberger's (2003) G(n) = psi(n) + (-1)^n b(n),
           b(n) = (psi((n+1)/2) - psi(n/2)) / 2 = int_0^1 t^(n-1) / (1+t) dt: his correction of the
           digamma estimator of -log p for Poisson counts, whose bias falls like e^(-2Kp) instead of
           e^(-Kp) for small p.  Our counts are binomial, and G(2m) = G(2m+1): at p = 1 (n = K
           always) the table gives G(K) - log K = 1/(6K^2) + O(K^-4) for even K but
           -1/K + O(K^-2) for odd K, so an odd K keeps the plug-in's Theta(1/K) weighted bias.

The transcendental tables are evaluated in mpmath at ``work_prec()`` bits (128) and rounded once
to float64; the
digamma table is summed exactly in rationals and rounded once.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from aqpgen.generators.peers_power import POWER_PEERS
from aqpgen.numerics.precision import mp_prec, work_prec
from aqpgen.records import as_K
from aqpgen.targets import LOG, Target, parse_target

__all__ = ["PEERS", "PEER_TARGET", "digamma_table_exact", "peer_names", "peer_table",
           "plugin_table", "reference_table"]

PEERS = ("plugin", "digamma", "laplace", "jackknife", "grassberger")
PEER_TARGET = "log p"


def peer_names(target: Target = LOG) -> tuple[str, ...]:
    """The classical peers of a target in report order: ``PEERS`` for log p,
    ``peers_power.POWER_PEERS`` for p^a."""
    return PEERS if parse_target(target) == LOG else POWER_PEERS



def digamma_table_exact(K) -> list[Fraction]:
    """c_K[n] = psi(n) - psi(K) = -sum_{j=n}^{K-1} 1/j as exact Fractions, n = 1..K."""
    K = as_K(K)
    out = [Fraction(0)] * K
    acc = Fraction(0)
    for n in range(K - 1, 0, -1):
        acc += Fraction(1, n)
        out[n - 1] = -acc
    return out


@cache
def _peer_table_cached(name: str, K: int) -> tuple[float, ...]:
    if name == "digamma":
        return tuple(float(x) for x in digamma_table_exact(K))
    with mp_prec(work_prec()) as mp:
        if name == "plugin":
            vals = [mp.log(mp.mpf(n) / K) for n in range(1, K + 1)]
        elif name == "laplace":
            vals = [mp.log((mp.mpf(2 * n - 1)) / (2 * K)) for n in range(1, K + 1)]
        elif name == "jackknife":
            if K == 1:
                vals = [mp.mpf(0)]
            else:
                vals = []
                for n in range(1, K + 1):
                    theta = mp.log(mp.mpf(n) / K)
                    same = (n - 1) * mp.log(mp.mpf(n - 1) / (K - 1)) if n > 1 else mp.mpf(0)
                    other = (K - n) * mp.log(mp.mpf(n) / (K - 1))
                    theta_bar = (same + other) / (K - 1)
                    vals.append((K - 1) * theta - (K - 2) * theta_bar)
        elif name == "grassberger":
            vals = [mp.digamma(n) + (-1) ** n * (mp.digamma(mp.mpf(n + 1) / 2) - mp.digamma(mp.mpf(n) / 2)) / 2
                    - mp.log(K) for n in range(1, K + 1)]
        else:  # pragma: no cover - guarded by peer_table
            raise ValueError(name)
        return tuple(float(v) for v in vals)


def peer_table(name: str, K) -> np.ndarray:
    """The float64 table c_K[1..K] of a classical estimator of log p.

    Parameters
    ----------
    name : str
        One of `PEERS` ("plugin", "digamma", "laplace", "jackknife", "grassberger"); definitions in the module
        docstring.
    K : int
        Batch size, K >= 1.

    Returns
    -------
    numpy.ndarray, shape (K,)
        ``values[n-1] = c_K[n]``, each entry the correctly rounded float64 of the exact value.
    """
    if name not in PEERS:
        raise ValueError(f"name must be one of {PEERS}, received {name!r}")
    K = as_K(K)
    return np.array(_peer_table_cached(name, K), dtype=np.float64)


def plugin_table(K, target: Target = LOG) -> np.ndarray:
    """The plug-in table g(n/K) of a target: ``peer_table("plugin", K)`` (correctly rounded) for
    log p, ``target.plugin(K)`` otherwise.  The reference of the AQP rho programs."""
    target = parse_target(target)
    if target == LOG:
        return peer_table("plugin", K)
    return np.asarray(target.plugin(as_K(K)), dtype=np.float64)


def reference_table(K, target: Target = LOG) -> np.ndarray:
    """The best classical table of a target, the starting point of the AQP eta programs: the
    digamma table for log p (exactly unbiased for the degree-(K-1) truncation of log p), the
    plug-in table for other targets."""
    target = parse_target(target)
    if target == LOG:
        return peer_table("digamma", K)
    return plugin_table(K, target)
