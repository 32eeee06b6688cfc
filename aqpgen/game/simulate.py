r"""The toy alignment game of docs/MATH.md §8: does a biased log-reward move the fixed point?

Game
----
Answers z = 1..S, each reached through ``traces`` latent traces (default 3).  The policy is a
softmax over traces, :math:`\pi = \mathrm{softmax}(\theta)`, and the answer probability is
:math:`p_z = \sum_{t \to z} \pi_t`.  The entropy-regularised answer-level objective

.. math::  J(p) = \sum_z p_z R_z + \tau H(p), \qquad H(p) = -\sum_z p_z \log p_z

has the unique maximiser :math:`p^* \propto \exp(R/\tau)`.  A trainer estimates the entropy reward
from K samples: a completion with answer z and self-inclusive count n gets the reward
:math:`R_z - \tau\, c_K[n]`, where the table c_K estimates :math:`\log p_z`.

Expected dynamics and their fixed point (``run_exact``)
--------------------------------------------------------
Given answer z of sample i, the other K-1 samples are independent of it, so
:math:`n_i - 1 \sim \mathrm{Bin}(K-1, p_z)` and the expected reward of answer z is
:math:`F_z(p) = R_z - \tau g_c(p_z)` with :math:`g_c` the table's mean polynomial (docs/MATH.md §1).  The
expected REINFORCE gradient (any baseline independent of the sample) is

.. math::  \mathbb{E}\,\partial_{\theta_t} = \pi_t\,(F_{z(t)} - \bar F), \qquad
           \bar F = \textstyle\sum_z p_z F_z .

Every trace has :math:`\pi_t > 0`, so a stationary point has :math:`F_z = \bar F =: \lambda` for
every answer with :math:`p_z > 0` (answers with :math:`F_z(0) < \lambda` decay to zero).  The
fixed point :math:`p_K` therefore solves the Lagrange system

.. math::  R_z - \tau g_c(p_z) = \lambda \ (p_z > 0), \qquad
           R_z - \tau g_c(0) \le \lambda \ (p_z = 0), \qquad \sum_z p_z = 1,

which is the KKT system of maximising the potential
:math:`\Phi(p) = \sum_z R_z p_z - \tau \sum_z G_c(p_z)` (:math:`G_c' = g_c`) on the simplex: the
expected dynamics are a potential game, and :math:`\Phi` is concave when :math:`g_c` is
increasing, so the fixed point is then unique.  With :math:`g_c = \log` it is :math:`p^*`.
``run_exact`` computes :math:`p_K` twice and checks that the two agree:

* ``fixed_point_dynamics``: iterates the expected dynamics from the uniform policy.  Default
  ``"npg"``: the natural-gradient (Fisher-preconditioned) step
  :math:`\theta_t \mathrel{+}= \eta (F_{z(t)} - \bar F)` (mirror ascent), same stationary points,
  linear convergence also for answers that die; ``"pg"``: the plain expected softmax PG step
  :math:`\theta_t \mathrel{+}= \eta\,\pi_t (F_{z(t)} - \bar F)` (slow for rare answers).
* ``fixed_point_solve``: when :math:`g_c` is increasing, :math:`p_z(\lambda) = g_c^{-1}((R_z -
  \lambda)/\tau)` (0 below :math:`g_c(0)`) is decreasing in λ and a 1-D root find on
  :math:`\sum_z p_z(\lambda) = 1` gives λ.

The reported distance is :math:`\mathrm{TV}(p_K, p^*) = \tfrac12 \sum_z |p_{K,z} - p^*_z|`.

Accurate mean polynomials (``mean_function``)
---------------------------------------------
The minimax table's values are huge and alternate in sign, so the float64 Bernstein sum cancels
catastrophically once K passes a few dozen.  ``mean_function`` converts the exact table values
(the high-precision strings ``values_hp`` when the table has them, else the float64 values, which
are exact binary numbers) to the Chebyshev coefficients of :math:`g_c` in exact rational
arithmetic (``aqpgen.bernstein.to_chebyshev_exact`` for :math:`P = p g_c`, then an exact division
by p) and rounds them once to float64.  Those coefficients are moderate (:math:`|q_j| \le
2\max|g_c|`), so Clenshaw evaluates :math:`g_c` with error :math:`O(K u \sum_j |q_j|)`,
including at p = 0.  Cached per (estimator, K, use_hp).

Sampled dynamics (``run_sampled``)
----------------------------------
One prompt; per step G groups of K completions are drawn from π, counts are self-inclusive within
a group, rewards come from the table through the runtime (``Table.lookup``), and the policy takes
a REINFORCE step :math:`\theta \mathrel{+}= \frac{\text{lr}}{GK} \sum_i (r_i - b_{g(i)})
\nabla_\theta \log \pi_{t_i}`.  Baseline :math:`b_g` = mean reward of the *other* groups: it is
independent of group g's samples, so the expected step is exactly the expected PG above (a
within-group baseline would be correlated with the sample through the counts and bias the step).
No clipping, no reward normalisation.  Seeds are numpy ``default_rng(seed)`` streams; each seed's
trajectory does not depend on which other seeds run with it.

Public API
----------
Scenario, SCENARIOS, get_scenario(name)        -- the two documented games (``zipf``, ``head``)
Estimator, ArrayEstimator, get_estimator(name) -- estimators (peers, shipped tables, the oracle)
ORACLE                                          -- name of the unbiased oracle (true log p)
MeanFunction, mean_function(estimator, K)       -- accurate g_c on [0, 1]
fixed_point_dynamics, fixed_point_solve         -- the two fixed-point computations
run_exact(scenario, estimator, K) -> ExactResult
run_sampled(scenario, estimator, K, seeds) -> SampledResult
exact_sweep, sampled_sweep                      -- the ``--json`` objects of ``aqpgen simulate``
tv_distance, loglog_slope
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.polynomial import chebyshev as _cheb

from aqpgen.errors import ConvergenceError
from aqpgen.store.locate import find_table

__all__ = [
    "ORACLE",
    "PEER_NAMES",
    "SCENARIOS",
    "TABLE_NAMES",
    "ArrayEstimator",
    "DynamicsResult",
    "Estimator",
    "ExactResult",
    "MeanFunction",
    "SampledResult",
    "Scenario",
    "SolveResult",
    "available_estimators",
    "exact_sweep",
    "fixed_point_dynamics",
    "fixed_point_solve",
    "get_estimator",
    "get_scenario",
    "loglog_slope",
    "mean_function",
    "run_exact",
    "run_sampled",
    "sampled_sweep",
    "tv_distance",
]

#: Name of the oracle estimator: the exact log p (mean function g = log; in sampled runs the
#: reward uses the policy's true p_z).  Not a table -- no unbiased table for log p exists.
ORACLE = "oracle-log"
#: Classical peers (``aqpgen.peers``) in report order.
PEER_NAMES = ("plugin", "digamma", "laplace", "jackknife")
#: Shipped KL tables in report order (used when present).
TABLE_NAMES = ("kl-minimax", "kl-aqp-eta3", "kl-aqp-eta15", "kl-aqp-rho1", "kl-aqp-rho2")

_EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One game.

    Attributes
    ----------
    name : str
    R : tuple of float
        Answer rewards R_1..R_S.
    tau : float
        Entropy weight τ.
    traces : int
        Latent traces per answer (the policy is a softmax over S·traces logits).
    lr, steps, groups, init : float, int, int, str
        Defaults of the sampled dynamics (learning rate, steps, groups G per step, initial
        policy: ``"uniform"`` (θ = 0) or ``"optimum"`` (p = p*, uniform over an answer's traces)).
    description : str
    """

    name: str
    R: tuple[float, ...]
    tau: float
    traces: int = 3
    lr: float = 1.0
    steps: int = 2000
    groups: int = 4
    init: str = "uniform"
    description: str = ""

    @property
    def S(self) -> int:
        """Number of answers."""
        return len(self.R)

    @property
    def rewards(self) -> np.ndarray:
        """R as a float64 array."""
        return np.asarray(self.R, dtype=np.float64)

    @property
    def p_star(self) -> np.ndarray:
        r"""The optimum :math:`p^* = \mathrm{softmax}(R/\tau)` (maximiser of E[R] + τH)."""
        a = self.rewards / self.tau
        w = np.exp(a - a.max())
        return w / w.sum()


def _zipf() -> Scenario:
    tau = 0.5
    z = np.arange(1, 101, dtype=np.float64)
    return Scenario(
        "zipf", tuple(float(v) for v in -1.1 * tau * np.log(z)), tau, lr=5.0, steps=5000,
        init="optimum",
        description="S=100 answers, tau=0.5, R_z = -1.1*tau*ln z, so p* ~ z^-1.1 (long tail)")


SCENARIOS: Mapping[str, Scenario] = {
    "zipf": _zipf(),
    "head": Scenario("head", (1.0, 0.8, 0.5, 0.2, 0.0), 0.5, lr=2.0, steps=2000,
                     description="S=5 answers, tau=0.5, R=(1.0, 0.8, 0.5, 0.2, 0.0)"),
}


def get_scenario(scenario: str | Scenario) -> Scenario:
    """Return the scenario object for a name in ``SCENARIOS`` (or pass a Scenario through)."""
    if isinstance(scenario, Scenario):
        return scenario
    try:
        return SCENARIOS[scenario]
    except (KeyError, TypeError):
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, received {scenario!r}") from None


def tv_distance(p, q) -> float:
    r"""Total variation :math:`\tfrac12 \sum_z |p_z - q_z|`."""
    return 0.5 * float(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def loglog_slope(Ks: Sequence[int], tv: Sequence[float], kmin: int = 16) -> tuple[float, list[int]]:
    """Least-squares slope of log(tv) against log(K) over K >= ``kmin``.

    Uses every K when fewer than two are >= kmin.  Returns ``(slope, Ks_used)``; the slope is NaN
    when fewer than two of those points have a positive finite tv (e.g. the oracle, tv = 0).
    """
    K = np.asarray(Ks, dtype=np.float64)
    y = np.asarray(tv, dtype=np.float64)
    sel = K >= kmin
    if sel.sum() < 2:
        sel = np.ones_like(sel)
    used = [int(k) for k in K[sel]]
    ok = sel & np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return float("nan"), used
    return float(np.polyfit(np.log(K[ok]), np.log(y[ok]), 1)[0]), used


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------
class Estimator:
    """A named family of tables c_K (one per K).

    Subclasses provide ``values(K)`` (the float64 table the runtime serves), ``values_exact(K)``
    (the exact or high-precision values: decimal strings, Fractions or floats), ``Ks`` (available
    K, or None for any K >= 2) and ``lookup(counts, K)``.
    """

    name: str = ""
    is_oracle = False

    def __init__(self) -> None:
        self._means: dict = {}

    @property
    def Ks(self) -> tuple[int, ...] | None:
        return None

    def check_K(self, K: int) -> int:
        """Validate K (an integer >= 2 available in this estimator) and return it as int."""
        if isinstance(K, bool) or int(K) != K or K < 2:
            raise ValueError(f"K must be an integer >= 2, received {K!r}")
        K = int(K)
        if self.Ks is not None and K not in self.Ks:
            ks = self.Ks
            span = f"{ks[0]}..{ks[-1]}" if ks else "none"
            raise ValueError(f"estimator {self.name!r} has no table for K={K} "
                             f"(available K: {span}, {len(ks)} values)")
        return K

    def values(self, K: int) -> np.ndarray:
        raise NotImplementedError

    def values_exact(self, K: int) -> Sequence:
        return self.values(K)

    def lookup(self, counts: np.ndarray, K: int) -> np.ndarray:
        """Rewards c_K[n] for integer counts n in 1..K (any shape)."""
        return self.values(K)[np.asarray(counts) - 1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ArrayEstimator(Estimator):
    """An estimator from explicit tables ``{K: values}`` (values: str / Fraction / float).

    Used for tables built on the fly (tests, experiments).  ``values(K)`` is the correctly
    rounded float64 table; ``values_exact(K)`` the given values.
    """

    def __init__(self, name: str, tables: Mapping[int, Sequence]):
        super().__init__()
        self.name = str(name)
        self._exact = {}
        self._f64 = {}
        for K, vals in tables.items():
            K = int(K)
            if len(vals) != K:
                raise ValueError(f"tables[{K}] must have {K} values, received {len(vals)}")
            self._exact[K] = tuple(vals)
            self._f64[K] = np.array([_to_float(v) for v in vals], dtype=np.float64)

    @property
    def Ks(self):
        return tuple(sorted(self._exact))

    def values(self, K):
        return self._f64[self.check_K(K)]

    def values_exact(self, K):
        return self._exact[self.check_K(K)]


class _PeerEstimator(Estimator):
    def __init__(self, name: str):
        super().__init__()
        from aqpgen.generators import peers
        self.name = name
        self._peers = peers
        self._cache: dict[int, np.ndarray] = {}

    def values(self, K):
        K = self.check_K(K)
        if K not in self._cache:
            self._cache[K] = np.asarray(self._peers.peer_table(self.name, K), dtype=np.float64)
        return self._cache[K]


class _TableEstimator(Estimator):
    """A table file served by ``aqpgen.runtime`` (high-precision values from ``tablefile``)."""

    def __init__(self, name: str):
        super().__init__()
        from aqpgen import runtime
        self.name = name
        self.table = runtime.load_table(name)
        self._hp: dict[int, Sequence] = {}

    @property
    def Ks(self):
        return tuple(int(k) for k in self.table.Ks)

    def values(self, K):
        return np.asarray(self.table.values(self.check_K(K)), dtype=np.float64)

    def lookup(self, counts, K):
        return self.table.lookup(counts, self.check_K(K))

    def _path(self) -> Path:
        for attr in ("path", "filename", "source"):
            p = getattr(self.table, attr, None)
            if p and Path(p).is_file():
                return Path(p)
        p = Path(self.name)
        if p.is_file():
            return p
        return find_table(self.name)

    def values_exact(self, K):
        K = self.check_K(K)
        if K not in self._hp:
            hp = None
            try:
                from aqpgen.store import tablefile
                row = tablefile.read_table(self._path()).rows[K]
                hp = row.get("values_hp") if isinstance(row, Mapping) else getattr(row, "values_hp", None)
            except (ImportError, OSError):
                hp = None
            if hp is not None:
                hp = tuple(s.decode() if isinstance(s, bytes) else str(s) for s in hp)
            self._hp[K] = hp if hp is not None else self.values(K)
        return self._hp[K]


class _OracleEstimator(Estimator):
    """g = log p exactly; sampled rewards use the true p_z (no table can do this)."""

    name = ORACLE
    is_oracle = True

    def values(self, K):
        raise ValueError(f"{ORACLE!r} is an oracle, not a table: it has no values for K={K}")


@functools.cache
def get_estimator(name: str) -> Estimator:
    """Resolve an estimator name: ``oracle-log``, a peer (``aqpgen.peers.PEERS``), or a table
    name / path served by ``aqpgen.runtime.load_table``.  Cached, so mean functions are shared."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"estimator must be a non-empty name, received {name!r}")
    if name == ORACLE:
        return _OracleEstimator()
    try:
        from aqpgen.generators import peers
        if name in peers.PEERS:
            return _PeerEstimator(name)
    except ImportError:
        if name in PEER_NAMES:
            raise ValueError(f"estimator {name!r} needs aqpgen.peers, which is not available") from None
    try:
        return _TableEstimator(name)
    except ImportError:
        raise ValueError(f"estimator {name!r}: aqpgen.runtime is not available to load tables") from None
    except Exception as exc:  # the runtime's own error says why (missing file, bad hash, ...)
        raise ValueError(f"unknown estimator {name!r}: not {ORACLE!r}, not a peer "
                         f"{PEER_NAMES}, and no loadable table ({exc})") from exc


def available_estimators() -> list[str]:
    """Peers (when ``aqpgen.peers`` exists) and the shipped tables that load, in report order."""
    out = []
    for name in PEER_NAMES + TABLE_NAMES:
        try:
            get_estimator(name)
        except ValueError:
            continue
        out.append(name)
    return out


def _as_estimator(estimator) -> Estimator:
    return estimator if isinstance(estimator, Estimator) else get_estimator(estimator)


# --------------------------------------------------------------------------------------------
# Accurate mean polynomials
# --------------------------------------------------------------------------------------------
class MeanFunction:
    r"""The mean :math:`g_c(p) = \sum_m c[m+1] b_{K-1,m}(p)` on [0, 1], evaluated accurately.

    Built by :func:`mean_function`.  ``coeffs`` are float64 Chebyshev coefficients of g in
    x = 2p - 1 (None for the oracle g = log p).  Methods: ``__call__(p)``, ``derivative(p)``,
    ``inverse(y)`` (monotone g only), attributes ``g0 = g(0)``, ``g1 = g(1)``, ``monotone``.

    Possible issues: ``monotone`` is decided on a grid of max(4096, 32K) Chebyshev-spaced
    points (clustered at p = 0, where the tables' oscillation lives), not proved.
    """

    def __init__(self, coeffs: np.ndarray | None):
        self.coeffs = None if coeffs is None else np.asarray(coeffs, dtype=np.float64)
        if self.coeffs is None:
            self.g0, self.g1, self.monotone = -math.inf, 0.0, True
            self._grid = None
            return
        self._dcoeffs = 2.0 * _cheb.chebder(self.coeffs) if len(self.coeffs) > 1 else np.zeros(1)
        self.g0 = float(self(0.0))
        self.g1 = float(self(1.0))
        M = max(4096, 32 * len(self.coeffs))
        grid = 0.5 * (1.0 - np.cos(np.pi * np.arange(M + 1) / M))
        d = self.derivative(grid)
        scale = float(np.abs(d).max()) or 1.0
        self.monotone = bool(d.min() >= -1e-12 * scale)
        self._grid = (grid, self(grid)) if self.monotone else None

    def __call__(self, p):
        p = np.asarray(p, dtype=np.float64)
        if self.coeffs is None:
            with np.errstate(divide="ignore"):
                return np.log(p)
        return _cheb.chebval(2.0 * p - 1.0, self.coeffs)

    def derivative(self, p):
        """g'(p) (chain rule: d/dp = 2 d/dx)."""
        p = np.asarray(p, dtype=np.float64)
        if self.coeffs is None:
            with np.errstate(divide="ignore"):
                return 1.0 / p
        return _cheb.chebval(2.0 * p - 1.0, self._dcoeffs)

    def inverse(self, y):
        """p in [0, 1] with g(p) = y (0 if y <= g(0), 1 if y >= g(1)); monotone g only.

        Safeguarded Newton inside the grid bracket; stops when the bracket or the Newton step
        is below 4 eps·p."""
        y = np.asarray(y, dtype=np.float64)
        if self.coeffs is None:
            return np.minimum(np.exp(y), 1.0)
        if not self.monotone:
            raise ValueError("inverse needs an increasing mean function g_c")
        grid, gv = self._grid
        out = np.where(y <= self.g0, 0.0, 1.0)
        mid = (y > self.g0) & (y < self.g1)
        if not mid.any():
            return out
        ym = y[mid]
        i = np.clip(np.searchsorted(gv, ym, side="right"), 1, len(grid) - 1)
        lo, hi = grid[i - 1].copy(), grid[i].copy()
        x = 0.5 * (lo + hi)
        for _ in range(200):
            f = self(x) - ym
            lo = np.where(f < 0, x, lo)
            hi = np.where(f > 0, x, hi)
            d = self.derivative(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                xn = x - f / d
            bad = ~((xn > lo) & (xn < hi)) | ~np.isfinite(xn)
            xn = np.where(bad, 0.5 * (lo + hi), xn)
            done = (np.abs(xn - x) <= 4 * _EPS * xn) | (hi - lo <= 4 * _EPS * hi) | (f == 0)
            x = np.where(f == 0, x, xn)
            if done.all():
                break
        out[mid] = x
        return out


def _to_float(v) -> float:
    if isinstance(v, bytes):
        v = v.decode()
    return float(Fraction(v)) if isinstance(v, (str, Fraction)) else float(v)


def _mean_cheb_coeffs(values_exact: Sequence) -> np.ndarray:
    r"""Correctly rounded float64 Chebyshev coefficients (x = 2p - 1) of g_c, computed exactly.

    ``aqpgen.bernstein.to_chebyshev_exact`` gives the exact coefficients :math:`a_j` of
    :math:`P = p\,g_c = \sum_{j=0}^K a_j T_j(x)`.  With :math:`p = (1+x)/2`,
    :math:`(1 + x) Q(x) = 2P(x)` for :math:`g_c = Q = \sum_{j<K} q_j T_j`; using
    :math:`x T_j = (T_{j+1} + T_{|j-1|})/2` and matching :math:`T_k` from the top (r = 2a):
    :math:`q_{k-1} = 2(r_k - q_k - q_{k+1}/2)` for k = K..2, :math:`q_0 = r_1 - q_1 - q_2/2`,
    and :math:`q_0 + q_1/2 = r_0` holds because P(0) = 0.  Back substitution in exact rationals
    (unstable in floating point, exact here); one rounding at the end.
    """
    from flint import fmpq

    from aqpgen.numerics.bernstein import to_chebyshev_exact

    r = [2 * x for x in to_chebyshev_exact(list(values_exact))]
    K = len(r) - 1
    q = [fmpq(0)] * (K + 2)
    for k in range(K, 1, -1):
        q[k - 1] = 2 * (r[k] - q[k] - q[k + 1] / 2)
    q[0] = r[1] - q[1] - q[2] / 2
    if q[0] + q[1] / 2 != r[0]:  # P(0) != 0: impossible for a table (d_0 = 0)
        raise ArithmeticError("P(p) = p g_c(p) does not vanish at p = 0")
    return np.array([int(x.p) / int(x.q) for x in q[:K]], dtype=np.float64)


def mean_function(estimator, K: int, *, use_hp: bool = True) -> MeanFunction:
    """The accurate mean function g_c of ``estimator`` at batch size K (cached).

    ``use_hp=True`` uses the table's high-precision strings when it has them (the designed
    estimator); ``use_hp=False`` the float64 values the runtime serves (evaluated exactly)."""
    est = _as_estimator(estimator)
    if est.is_oracle:
        return MeanFunction(None)
    K = est.check_K(K)
    key = (K, bool(use_hp))
    if key not in est._means:
        vals = est.values_exact(K) if use_hp else est.values(K)
        est._means[key] = MeanFunction(_mean_cheb_coeffs(list(vals)))
    return est._means[key]


# --------------------------------------------------------------------------------------------
# Fixed point: dynamics and direct solve
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DynamicsResult:
    """Expected dynamics run to stationarity.

    p : answer distribution at the end; steps : iterations; residual : the stationarity residual
    sum_z p_z |F_z - F̄| at the end; lam : F̄ at the end; method : "npg" or "pg"."""

    p: np.ndarray
    steps: int
    residual: float
    lam: float
    method: str


@dataclass(frozen=True)
class SolveResult:
    """Direct solve of the Lagrange system: p (sums to 1) and the common value lam = λ."""

    p: np.ndarray
    lam: float


def _softmax(theta: np.ndarray) -> np.ndarray:
    e = np.exp(theta - theta.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fixed_point_dynamics(scenario, g: MeanFunction, *, method: str = "npg", tol: float = 1e-12,
                         max_steps: int | None = None) -> DynamicsResult:
    r"""Iterate the expected policy-gradient dynamics from θ = 0 until stationary.

    Each step computes :math:`F_z = R_z - \tau g(p_z)`, :math:`A_z = F_z - \sum p F` and
    With :math:`\eta = 1/(\tau \max(1, \max_z p_z g'(p_z)))` (the linearised rate of
    :math:`\log p_z` is :math:`\eta \tau p_z g'(p_z)`, so this step is stable; for g = log it is
    one exact step): ``"npg"``: :math:`\theta_t \mathrel{+}= \eta A_{z(t)}`; ``"pg"``:
    :math:`\theta_t \mathrel{+}= (\eta / \max_s \pi_s)\, \pi_t A_{z(t)}`.
    Stopping rule (KKT residual): :math:`\max(\sum_z p_z |A_z|, \max_z A_z) \le` ``tol`` --
    live answers level and no answer still growing (a vertex has :math:`\sum p|A| = 0` but some
    :math:`A_z > 0`); else ``ConvergenceError``.
    """
    sc = get_scenario(scenario)
    if method not in ("npg", "pg"):
        raise ValueError(f"method must be 'npg' or 'pg', received {method!r}")
    if max_steps is None:
        max_steps = 20000 if method == "npg" else 2_000_000
    R, tau, T = sc.rewards, sc.tau, sc.traces
    z_of = np.repeat(np.arange(sc.S), T)
    theta = np.zeros(sc.S * T)
    res = math.inf
    for step in range(max_steps + 1):
        pi = _softmax(theta)
        p = np.bincount(z_of, weights=pi, minlength=sc.S)
        F = R - tau * g(p)
        lam = float(p @ F)
        A = F - lam
        # KKT residual: live answers level (p|A| small) and no answer still growing (A <= 0)
        res = max(float(p @ np.abs(A)), float(A.max()))
        if res <= tol:
            return DynamicsResult(p / p.sum(), step, res, lam, method)
        with np.errstate(invalid="ignore"):
            stiff = np.nan_to_num(p * g.derivative(p), nan=0.0, posinf=0.0)
        eta = 1.0 / (tau * max(1.0, float(stiff.max())))
        if method == "npg":
            theta += eta * A[z_of]
        else:
            theta += (eta / float(pi.max())) * pi * A[z_of]
    raise ConvergenceError(
        f"expected {method} dynamics not stationary after {max_steps} steps: residual "
        f"{res:.3g}, required <= {tol:.3g}", {"residual": res, "tol": tol, "steps": max_steps})


def fixed_point_solve(scenario, g: MeanFunction) -> SolveResult | None:
    r"""Solve :math:`R_z - \tau g(p_z) = \lambda`, :math:`\sum p_z = 1` by a 1-D root find on λ.

    Needs g increasing on [0, 1] (then :math:`p_z(\lambda) = g^{-1}((R_z - \lambda)/\tau)`,
    clipped to [0, 1], is non-increasing in λ); returns None when g is not monotone.  Brent's
    method on :math:`\sum_z p_z(\lambda) - 1` to xtol = 4 eps |λ|.
    """
    from scipy.optimize import brentq

    sc = get_scenario(scenario)
    if not g.monotone:
        return None
    R, tau = sc.rewards, sc.tau

    def excess(lam):
        return float(g.inverse((R - lam) / tau).sum()) - 1.0

    lo = float(R.min() - tau * g.g1)          # every p_z = 1: excess = S - 1 > 0
    if math.isfinite(g.g0):
        hi = float(R.max() - tau * g.g0) + 1e-12 * (1 + abs(R.max() - tau * g.g0))
    else:
        hi, step = lo + 1.0, 1.0
        while excess(hi) > 0:
            step *= 2
            hi = lo + step
    lam = brentq(excess, lo, hi, xtol=1e-300, rtol=4 * _EPS, maxiter=500)
    p = g.inverse((R - lam) / tau)
    return SolveResult(p / p.sum(), float(lam))


@dataclass(frozen=True)
class ExactResult:
    """Fixed point of the expected dynamics for one (scenario, estimator, K).

    Attributes
    ----------
    scenario, estimator, K
    p : the fixed point p_K (from the direct solve when g_c is monotone, else the dynamics)
    tv : TV(p_K, p*)
    tv_dynamics : TV(dynamics' end point, p*)
    agreement : TV(dynamics, solve), NaN when no solve
    monotone : whether g_c is increasing (grid check)
    lam : the common expected reward λ at the fixed point
    steps, residual : of the dynamics
    """

    scenario: str
    estimator: str
    K: int
    p: np.ndarray
    tv: float
    tv_dynamics: float
    agreement: float
    monotone: bool
    lam: float
    steps: int
    residual: float


def run_exact(scenario, estimator, K: int, *, use_hp: bool = True, method: str = "npg",
              tol: float = 1e-12, agree_tol: float = 1e-9) -> ExactResult:
    """Fixed point p_K of the expected dynamics and its TV distance to p*.

    Runs ``fixed_point_dynamics`` and (monotone g_c) ``fixed_point_solve``; raises
    ``ConvergenceError`` if they disagree by more than ``agree_tol`` in TV.
    """
    sc = get_scenario(scenario)
    est = _as_estimator(estimator)
    K = 2 if est.is_oracle and K is None else K
    g = mean_function(est, K, use_hp=use_hp)
    dyn = fixed_point_dynamics(sc, g, method=method, tol=tol)
    sol = fixed_point_solve(sc, g)
    ps = sc.p_star
    agreement = float("nan")
    p, lam = dyn.p, dyn.lam
    if sol is not None:
        agreement = tv_distance(dyn.p, sol.p)
        if not agreement <= agree_tol:
            raise ConvergenceError(
                f"{est.name} K={K} ({sc.name}): dynamics and direct solve disagree, TV "
                f"{agreement:.3g} > {agree_tol:.3g}", {"agreement": agreement})
        p, lam = sol.p, sol.lam
    return ExactResult(sc.name, est.name, int(K), p, tv_distance(p, ps), tv_distance(dyn.p, ps),
                       agreement, g.monotone, lam, dyn.steps, dyn.residual)


# --------------------------------------------------------------------------------------------
# Sampled dynamics
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampledResult:
    """Sampled REINFORCE runs for one (scenario, estimator, K).

    Attributes
    ----------
    steps : int array (n_rec,), the step index of each record (0 = initial policy)
    tv : float array (n_seeds, n_rec), TV(p, p*) per seed and record
    seeds : tuple of int
    lr, groups, init : learning rate, groups per step and initial policy used
    p_final : float array (n_seeds, S), the answer distributions at the end
    final_mean, final_std : mean and standard deviation over seeds of the last TV
    """

    scenario: str
    estimator: str
    K: int
    steps: np.ndarray
    tv: np.ndarray
    seeds: tuple[int, ...]
    lr: float
    groups: int
    init: str = "uniform"
    p_final: np.ndarray = field(repr=False, default=None)

    @property
    def mean(self) -> np.ndarray:
        return self.tv.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.tv.std(axis=0)

    @property
    def final_mean(self) -> float:
        return float(self.tv[:, -1].mean())

    @property
    def final_std(self) -> float:
        return float(self.tv[:, -1].std())


def self_inclusive_counts(z: np.ndarray) -> np.ndarray:
    """n_i = #{j in the group: z_j = z_i} (itself included) along the last axis."""
    return (z[..., :, None] == z[..., None, :]).sum(axis=-1)


def run_sampled(scenario, estimator, K: int, seeds: Sequence[int] = tuple(range(20)), *,
                steps: int | None = None, lr: float | None = None, groups: int | None = None,
                init: str | None = None, record_every: int | None = None) -> SampledResult:
    r"""Sampled policy-gradient runs, one per seed (vectorised, seed-independent streams).

    Per step and seed: G groups of K traces drawn from π; reward
    :math:`r_i = R_{z_i} - \tau\,c_K[n_i]` (the oracle uses :math:`\log p_{z_i}`); baseline
    :math:`b_g` = mean reward of the other G-1 groups; update
    :math:`\theta \mathrel{+}= \frac{lr}{GK}\sum_i (r_i - b_{g(i)})(e_{t_i} - \pi)`.
    Defaults (steps, lr, groups, init) come from the scenario; TV recorded every
    ``record_every`` steps (default steps/100).

    Possible issues: plain softmax PG from the uniform policy on a long tail first concentrates
    on the head and then regrows the tail at a rate proportional to its (tiny) probability -- a
    plateau far longer than any practical run, for every estimator.  ``init="optimum"`` starts
    at p* instead, so the curve measures how far the estimator's bias and noise push the policy
    away from the optimum (the zipf default).
    """
    sc = get_scenario(scenario)
    est = _as_estimator(estimator)
    if not est.is_oracle:
        K = est.check_K(K)
    elif isinstance(K, bool) or int(K) != K or K < 2:
        raise ValueError(f"K must be an integer >= 2, received {K!r}")
    K = int(K)
    steps = sc.steps if steps is None else int(steps)
    lr = sc.lr if lr is None else float(lr)
    G = sc.groups if groups is None else int(groups)
    if G < 2:
        raise ValueError(f"groups must be >= 2 (the baseline uses the other groups), received {groups!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, received {steps!r}")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds must be a non-empty list of integers")
    every = max(1, steps // 100) if record_every is None else int(record_every)
    rec_steps = sorted(set(range(0, steps + 1, every)) | {steps})

    R, tau, T, S = sc.rewards, sc.tau, sc.traces, sc.S
    ps = sc.p_star
    nS = len(seeds)
    rngs = [np.random.default_rng(s) for s in seeds]
    init = sc.init if init is None else init
    if init == "uniform":
        theta = np.zeros((nS, S * T))
    elif init == "optimum":
        theta = np.tile(np.repeat(np.log(ps), T), (nS, 1))
    else:
        raise ValueError(f"init must be 'uniform' or 'optimum', received {init!r}")
    offs = np.arange(nS)[:, None]
    tv = np.empty((nS, len(rec_steps)))
    rec = 0

    def answer_p(pi):
        return pi.reshape(nS, S, T).sum(axis=-1)

    for step in range(steps + 1):
        pi = _softmax(theta)
        if step == rec_steps[rec]:
            tv[:, rec] = 0.5 * np.abs(answer_p(pi) - ps).sum(axis=-1)
            rec += 1
        if step == steps:
            break
        u = np.stack([r.random(G * K) for r in rngs])                  # (nS, G*K)
        cdf = np.cumsum(pi, axis=-1)
        cdf[:, -1] = 1.0
        t = np.searchsorted((cdf + offs).ravel(), (u + offs).ravel(), side="right")
        t = np.minimum(t.reshape(nS, G * K) - offs * S * T, S * T - 1)
        z = (t // T).reshape(nS, G, K)
        if est.is_oracle:
            c = np.log(answer_p(pi))[offs[:, :, None], z]
        else:
            c = np.asarray(est.lookup(self_inclusive_counts(z), K), dtype=np.float64)
        r = R[z] - tau * c                                                # (nS, G, K)
        gsum = r.sum(axis=-1)                                             # (nS, G)
        b = (gsum.sum(axis=-1, keepdims=True) - gsum) / ((G - 1) * K)
        A = (r - b[:, :, None]).reshape(nS, G * K)
        w = np.bincount((t + offs * S * T).ravel(), weights=A.ravel(),
                        minlength=nS * S * T).reshape(nS, S * T)
        grad = (w - pi * A.sum(axis=-1, keepdims=True)) / (G * K)
        theta += lr * grad
    return SampledResult(sc.name, est.name, K, np.asarray(rec_steps), tv, seeds, lr, G, init,
                         answer_p(_softmax(theta)))


# --------------------------------------------------------------------------------------------
# Sweeps (the --json objects)
# --------------------------------------------------------------------------------------------
def exact_sweep(scenario, estimators: Sequence, Ks: Sequence[int], *, use_hp: bool = True,
                slope_kmin: int = 16) -> dict:
    """``{name: {"K": [...], "tv": [...], "slope": s, "slope_K": [...]}}`` of fixed-point TVs."""
    out = {}
    for e in estimators:
        est = _as_estimator(e)
        tvs = [run_exact(scenario, est, K, use_hp=use_hp).tv for K in Ks]
        slope, used = loglog_slope(Ks, tvs, slope_kmin)
        out[est.name] = {"K": [int(k) for k in Ks], "tv": tvs, "slope": slope, "slope_K": used}
    return out


def sampled_sweep(scenario, estimators: Sequence, Ks: Sequence[int],
                  seeds: Sequence[int] = tuple(range(20)), *, slope_kmin: int = 16,
                  **kwargs) -> tuple[dict, dict]:
    """Final TV (mean and std over seeds) per estimator and K, plus the full results.

    Returns ``(summary, results)``: summary ``{name: {"K", "tv" (mean final TV), "tv_std",
    "slope", "slope_K"}}``, results ``{name: {K: SampledResult}}``."""
    summary, results = {}, {}
    for e in estimators:
        est = _as_estimator(e)
        res = {int(K): run_sampled(scenario, est, K, seeds, **kwargs) for K in Ks}
        tvs = [res[int(K)].final_mean for K in Ks]
        slope, used = loglog_slope(Ks, tvs, slope_kmin)
        summary[est.name] = {"K": [int(k) for k in Ks], "tv": tvs,
                             "tv_std": [res[int(K)].final_std for K in Ks],
                             "slope": slope, "slope_K": used}
        results[est.name] = res
    return summary, results
