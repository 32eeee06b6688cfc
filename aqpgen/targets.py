"""Targets: the function g(p) of the answer probability that a table estimates.

A table c_K[1..K] estimates g(p) through its mean g_c(p) = sum_m c[m+1] b_{K-1,m}(p)
(docs/MATH.md §1).  Every error is weighted by p, so the solvers and certificates work with the
weighted target h(p) = p g(p), which is finite on [0, 1] for every target here.

Public names
------------
Target                 -- the interface (abstract): name, evaluations, derivatives, peers.
LogTarget, LOG         -- g(p) = log p (the KL / entropy game, alpha = 1).
PowerTarget            -- g(p) = p^a, a real, a > -1 (the alpha-family game, alpha = a + 1).
parse_target(text)     -- "log", "log p", "p^0.5", "p^-0.5", "p^2" -> a Target (ValueError else).
format_exponent(a)     -- the canonical text of an exponent (a Fraction): "2", "0.5", "1/3".
table_prefix(target)   -- "kl" (log p), "pow0.5", "pow-0.5": the prefix of its shipped table names.
alpha_reward(values, alpha) -- the affine map of a p^(alpha-1) (or log p) table to the reward
                          phi_alpha'(p) of the alpha-divergence game (docs/MATH.md §2b).

Conventions
-----------
* ``name`` is the string stored in a table file's ``target`` attribute ("log p", "p^0.5", "p^2");
  ``spec`` is the command-line form ("log", "p^0.5").
* float64 evaluations take numpy arrays; ``*_mp`` take mpmath numbers at the caller's working
  precision; ``*_arb`` take python-flint ``arb`` balls at the caller's ``flint.ctx.prec``.  No
  function here sets a global precision.
* Derivatives in theta: p = sin^2(theta/2), theta in [0, pi] (dp/dtheta = sin(theta)/2).  The
  Remez engine, the certificates and the metrics all use this variable (docs/MATH.md §3).

This module imports numpy only (mpmath / python-flint are used when their arguments are passed
in), so the runtime may import it.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from fractions import Fraction

import numpy as np

__all__ = ["LOG", "LogTarget", "PowerTarget", "Target", "alpha_reward", "format_exponent", "parse_target",
           "pow_kmin", "table_prefix"]

#: unit roundoff of float64.
_U = 2.0**-53


class Target(ABC):
    """A target function g(p) on (0, 1] with weighted form h(p) = p g(p), h(0) = 0.

    Subclasses provide the evaluations the solvers (Remez, AQP), the metrics, the certificates,
    the simulator and the peers need, so that none of them hard-codes a target.
    """

    #: stored name (file attribute ``target``), e.g. "log p", "p^0.5".
    name: str
    #: command-line spelling, e.g. "log", "p^0.5".
    spec: str
    #: Theta exponent r of the minimax rate E*_K = Theta(K^-r) (docs/MATH.md §4).
    rate_exponent: float
    #: smallest batch size of the standard K grid.
    kmin: int = 2
    #: True when g is a polynomial (then exact U-statistic tables exist for K > degree).
    polynomial: bool = False

    # ---------------------------------------------------------------- float64
    @abstractmethod
    def g(self, p) -> np.ndarray:
        """g(p) in float64 for p in (0, 1] (g(0) may be -inf or inf)."""

    def h(self, p) -> np.ndarray:
        """h(p) = p g(p) in float64, with h(0) = 0."""
        p = np.asarray(p, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p * self.g(np.where(p > 0, p, 1.0))
        return np.where(p > 0, out, 0.0)

    @abstractmethod
    def g_theta(self, t):
        """(g, dg/dtheta, d2g/dtheta2) at p = sin^2(t/2), t in (0, pi], float64 arrays."""

    # ---------------------------------------------------------------- high precision
    @abstractmethod
    def g_mp(self, p):
        """g(p) for an mpmath number p > 0 (the caller's mpmath precision)."""

    def h_mp(self, p):
        """h(p) = p g(p) in mpmath, 0 at p = 0."""
        return p * self.g_mp(p) if p != 0 else p * 0

    @abstractmethod
    def g_arb(self, p):
        """g(p) for a python-flint arb ball p with p > 0 (the caller's flint precision)."""

    def h_arb(self, p):
        """h(p) = p g(p) for an arb ball (p > 0)."""
        return p * self.g_arb(p)

    def g_arb_sin(self, s):
        """g(p) at p = s^2 for an arb ball s = sin(theta/2) > 0.

        The Remez rows and the minimax verification are built in theta; a target may evaluate
        g more accurately from s than from p = s^2 (log p = 2 log s).  Default: g_arb(s * s).
        """
        return self.g_arb(s * s)

    # ---------------------------------------------------------------- certificates
    # The rigorous bias certificate (aqpgen.numerics.certify, docs/MATH.md §6) works with
    # H(theta) = h(sin^2(theta/2)) on theta-cells.  A target supplies the four pieces below; a
    # target that does not implement them cannot be certified (NotImplementedError).

    #: the first cell [0, p0] of the certificate requires p0 <= first_cell_pmax.
    first_cell_pmax: float = 1.0

    def h_theta_bounds(self, c):
        """(H, H', H'', eta) at theta = c (float64 array in (0, pi]): H(theta) = h(sin^2(theta/2))
        and its first two theta-derivatives as computed in float64, and eta >= the absolute
        rounding error of each of the three (elementwise)."""
        raise NotImplementedError(self._no_cert("h_theta_bounds"))

    def h3_bound(self, lo):
        """Upper bound on sup |H'''(theta)| over theta in [lo, pi], for each lo > 0 (float64
        array), its own rounding absorbed (a rigorous bound)."""
        raise NotImplementedError(self._no_cert("h3_bound"))

    def first_cell_bound(self, p0: float) -> float:
        """B with sup_{0 < p <= p0} |h(p)| <= p0 * B, for 0 < p0 <= ``first_cell_pmax``."""
        raise NotImplementedError(self._no_cert("first_cell_bound"))

    def h_abs_sup_arb(self):
        """An arb ball whose upper end bounds sup_{p in [0,1]} |h(p)| (the certificate's
        fallback when the Chebyshev coefficients overflow float64), at flint's precision."""
        raise NotImplementedError(self._no_cert("h_abs_sup_arb"))

    def _no_cert(self, method: str) -> str:
        return (f"{type(self).__name__}.{method} (needed by the bias certificate) is not "
                f"implemented for the target {self.name!r}")

    # ---------------------------------------------------------------- peers
    @abstractmethod
    def plugin(self, K: int) -> np.ndarray:
        """The plug-in table g(n/K), n = 1..K, float64 (the estimator people use today)."""

    # ---------------------------------------------------------------- misc
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Target) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class LogTarget(Target):
    """g(p) = log p: the KL / entropy game (alpha = 1).  E*_K = Theta(K^-2)."""

    name = "log p"
    spec = "log"
    rate_exponent = 2.0
    a = None

    def g(self, p):
        with np.errstate(divide="ignore"):
            return np.log(np.asarray(p, dtype=np.float64))

    def h(self, p):
        """p log p (0 at p = 0) by ``scipy.special.xlogy`` (scalar libm log): the evaluation the
        shipped AQP tables were solved with (numpy's vectorised log differs from it in the last
        bit at ~0.3% of points, which would move an exchange)."""
        from scipy.special import xlogy

        p = np.asarray(p, dtype=np.float64)
        return xlogy(p, p)

    def g_theta(self, t):
        s, c = np.sin(0.5 * np.asarray(t)), np.cos(0.5 * np.asarray(t))
        return 2.0 * np.log(s), c / s, -0.5 / (s * s)

    def g_mp(self, p):
        import mpmath

        return mpmath.log(p)

    def g_arb(self, p):
        return p.log()

    def g_arb_sin(self, s):
        return 2 * s.log()

    # ---------------------------------------------------------------- certificates
    # H = p log p, p = sin^2(theta/2), dp/dtheta = sin(theta)/2, sin^2(theta) = 4p(1-p):
    #   H'   = (log p + 1) sin(theta)/2,
    #   H''  = cos^2(theta/2) + (log p + 1) cos(theta)/2,
    #   H''' = -sin(theta)/2 + cot(theta/2) cos(theta)/2 - (log p + 1) sin(theta)/2,
    # and |sin theta| = 2 sqrt(p(1-p)), sqrt(p)|log p| <= 2/e give
    #   |H'''| <= 1 + 2/e + cot(theta/2)/2 = H3_CONST + cot(theta/2)/2 (decreasing in theta).
    #: the constant of |H'''(theta)| <= H3_CONST + cot(theta/2)/2.
    H3_CONST = 1.0 + 2.0 / math.e
    #: p |log p| is increasing on [0, 1/e].
    first_cell_pmax = math.exp(-1.0)

    def h_theta_bounds(self, c):
        s2 = np.sin(0.5 * c)
        p = s2 * s2
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = np.log(p)
        H0 = p * lp
        sc = np.sin(c)
        cc = np.cos(c)
        H1 = (lp + 1.0) * sc * 0.5
        co = np.cos(0.5 * c)
        H2 = co * co + (lp + 1.0) * cc * 0.5
        # p, the log and the products each within a few ulp: 32 u (|log p| + 3) covers all three
        eta = 32.0 * _U * (np.abs(lp) + 3.0)
        return H0, H1, H2, eta

    def h3_bound(self, lo):
        cot = np.cos(0.5 * lo) / np.sin(0.5 * lo)
        return self.H3_CONST + 0.5 * cot * (1.0 + 1e-12)

    def first_cell_bound(self, p0):
        return abs(math.log(p0))  # sup_{p <= p0} p |log p| = p0 |log p0| for p0 <= 1/e

    def h_abs_sup_arb(self):
        import flint

        return flint.arb(-1).exp()  # sup |p log p| = 1/e, at p = 1/e

    def plugin(self, K):
        K = int(K)
        return np.log(np.arange(1, K + 1, dtype=np.float64) / K)


#: The log p target (a singleton; LogTarget() == LOG).
LOG = LogTarget()


class PowerTarget(Target):
    """g(p) = p^a for a real exponent a > -1 (alpha-family game, alpha = a + 1).

    ``a`` is kept exactly as a ``Fraction`` (parsed from its decimal text) and as a float.
    Integer a >= 0 is a polynomial: exact U-statistic tables exist for K >= a + 1
    (``polynomial`` True).  Otherwise E*_K(a) = Theta(K^(-2(a+1))).
    """

    def __init__(self, a):
        frac = _exact_exponent(a)
        if not frac > -1:
            raise ValueError(f"the exponent a of the target p^a must be > -1, received {a!r}")
        self.a_exact = frac
        self.a = float(frac)
        self.polynomial = frac.denominator == 1 and frac >= 0
        self.spec = f"p^{format_exponent(frac)}"
        self.name = self.spec
        self.rate_exponent = 2.0 * (self.a + 1.0)
        self.kmin = int(frac) + 1 if self.polynomial else 2

    def g(self, p):
        with np.errstate(divide="ignore"):
            return np.power(np.asarray(p, dtype=np.float64), self.a)

    def h(self, p):
        return np.power(np.asarray(p, dtype=np.float64), self.a + 1.0)

    def g_theta(self, t):
        t = np.asarray(t, dtype=np.float64)
        s, c = np.sin(0.5 * t), np.cos(0.5 * t)
        a = self.a
        g0 = np.power(s, 2.0 * a)
        g1 = a * np.power(s, 2.0 * a - 1.0) * c
        g2 = 0.5 * a * np.power(s, 2.0 * a - 2.0) * ((2.0 * a - 1.0) * c * c - s * s)
        return g0, g1, g2

    def _a_mp(self):
        import mpmath

        return mpmath.mpf(self.a_exact.numerator) / self.a_exact.denominator

    def g_mp(self, p):
        import mpmath

        return mpmath.power(p, self._a_mp())

    def h_mp(self, p):
        import mpmath

        return mpmath.power(p, self._a_mp() + 1) if p != 0 else p * 0

    def _a_arb(self):
        import flint

        return flint.arb(self.a_exact.numerator) / self.a_exact.denominator

    def g_arb(self, p):
        return p ** self._a_arb()

    def h_arb(self, p):
        return p ** (self._a_arb() + 1)

    def plugin(self, K):
        K = int(K)
        return np.power(np.arange(1, K + 1, dtype=np.float64) / K, self.a)

    # ---------------------------------------------------------------- certificate hooks
    # With b = a + 1 > 0, s = sin(theta/2), c = cos(theta/2) (ds/dtheta = c/2, d(c^2)/dtheta = -sc):
    #   H    = s^(2b)
    #   H'   = b s^(2b-1) c
    #   H''  = (b/2) s^(2b-2) [(2b-1) c^2 - s^2]
    #   H''' = (b/2) s^(2b-3) c [(2b-1)(b-1) c^2 - (3b-1) s^2]
    #        = (b/2)(2b-1)(b-1) s^(2b-3) c^3 - (b/2)(3b-1) s^(2b-1) c.
    # On [lo, pi]: s increases from s_lo = sin(lo/2) to 1 and c decreases from c_lo = cos(lo/2) to
    # 0, so s^k <= max(1, s_lo^k) (k < 0 gives s_lo^k), c^m <= c_lo^m, and
    #   |H'''| <= (b/2)|(2b-1)(b-1)| max(1, s_lo^(2b-3)) c_lo^3 + (b/2)|3b-1| max(1, s_lo^(2b-1)) c_lo.
    def _b_rel(self):
        """Relative error bound of b = a + 1 computed in float64 from the float a."""
        b = self.a + 1.0
        return _U * (abs(self.a) + 1.0) / b + _U

    def h_theta_bounds(self, c):
        """H = s^(2b), H', H'' (formulas above) at theta = c, and the rounding bound eta.

        Error analysis (u = 2^-53; sin, cos and pow within 1 ulp = 2u relative):
        s, c carry relative errors <= 2u, which s^k turns into <= 2u|k|; the float exponent k
        differs from the exact 2b - j by <= 4u(|a| + 2), which changes s^k by a relative
        <= 4u(|a| + 2)|log s|; pow adds 2u, the products and the float b (relative
        u(|a|+1)/b + u) a few u more.  The bracket (2b-1)c^2 - s^2 of H'' may cancel (it is 0
        at a = -1/2 and c^2 = s^2 ...), so its error is taken relative to the magnitude
        |2b-1| c^2 + s^2 + c^2 (the last c^2 absorbs the absolute error of the float 2b - 1).
        Altogether eta = max_j M_j * u (32 + 16(|a| + 2)(1 + |log s|) + 4 rel_b/u), with
        M_0 = |H|, M_1 = |H'|, M_2 = (b/2) s^(2b-2) (|2b-1| c^2 + s^2 + c^2): a generous bound
        (each listed source is counted at least twice).
        """
        c = np.asarray(c, dtype=np.float64)
        a = self.a
        b = a + 1.0
        s = np.sin(0.5 * c)
        co = np.cos(0.5 * c)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p0 = np.power(s, 2.0 * b)
            p1 = np.power(s, 2.0 * b - 1.0)
            p2 = np.power(s, 2.0 * b - 2.0)
            H0 = p0
            H1 = b * p1 * co
            H2 = 0.5 * b * p2 * ((2.0 * b - 1.0) * co * co - s * s)
            M2 = 0.5 * b * p2 * (abs(2.0 * b - 1.0) * co * co + s * s + co * co)
            rel = _U * (32.0 + 16.0 * (abs(a) + 2.0) * (1.0 + np.abs(np.log(s)))) + 4.0 * self._b_rel()
            eta = np.maximum(np.maximum(np.abs(H0), np.abs(H1)), M2) * rel
        return H0, H1, H2, eta

    def h3_bound(self, lo):
        """The bound of sup_{[lo, pi]} |H'''| derived above, with s_lo rounded down, c_lo up,
        and a final inflation for the rounding of its own evaluation (relative
        u (16 + 16(|a| + 2)(1 + |log s_lo|)) + 4 rel_b)."""
        lo = np.asarray(lo, dtype=np.float64)
        b = self.a + 1.0
        s = np.sin(0.5 * lo) * (1.0 - 4.0 * _U)
        co = np.minimum(np.cos(0.5 * lo) * (1.0 + 4.0 * _U), 1.0)
        with np.errstate(divide="ignore", over="ignore"):
            m3 = np.maximum(1.0, np.power(s, 2.0 * b - 3.0))
            m1 = np.maximum(1.0, np.power(s, 2.0 * b - 1.0))
            val = (0.5 * b * abs((2.0 * b - 1.0) * (b - 1.0)) * m3 * co**3
                   + 0.5 * b * abs(3.0 * b - 1.0) * m1 * co)
            rel = _U * (16.0 + 16.0 * (abs(self.a) + 2.0) * (1.0 + np.abs(np.log(s)))) + 4.0 * self._b_rel()
        return val * (1.0 + rel)

    def first_cell_bound(self, p0):
        """B = p0^a, so that sup_{0 < p <= p0} |h(p)| = p0^(a+1) = p0 B (h increasing, a + 1 > 0),
        inflated by the relative rounding u (8 + 8(|a| + 2)(1 + |log p0|)) + 4 rel_b of pow and
        of the float exponent.  Any p0 in (0, 1] is allowed (``first_cell_pmax`` = 1)."""
        p0 = float(p0)
        if not 0.0 < p0 <= 1.0:
            raise ValueError(f"p0 must lie in (0, 1], received {p0!r}")
        rel = _U * (8.0 + 8.0 * (abs(self.a) + 2.0) * (1.0 + abs(math.log(p0)))) + 4.0 * self._b_rel()
        return math.pow(p0, self.a) * (1.0 + rel) + 2.0**-1074  # + 1 subnormal ulp: underflow

    def h_abs_sup_arb(self):
        import flint

        return flint.arb(1)  # sup_{[0,1]} p^(a+1) = 1, at p = 1

    def g_arb_sin(self, s):
        return s ** (2 * self._a_arb())


def _exact_exponent(a) -> Fraction:
    """The exponent as an exact Fraction: from a string's decimal text, an int, or a float's
    shortest repr (so 0.1 means 1/10, not the binary double)."""
    if isinstance(a, bool):
        raise TypeError(f"the exponent a must be a real number, received {a!r}")
    if isinstance(a, Fraction):
        return a
    if isinstance(a, (int, np.integer)):
        return Fraction(int(a))
    if isinstance(a, (float, np.floating)):
        if not math.isfinite(float(a)):
            raise ValueError(f"the exponent a must be finite, received {a!r}")
        return Fraction(repr(float(a)))
    if isinstance(a, str):
        try:
            f = Fraction(a.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"the exponent a must be a real number, received {a!r}") from None
        return f
    raise TypeError(f"the exponent a must be a real number, received {a!r}")


def format_exponent(f: Fraction) -> str:
    """Canonical text of an exponent: "2", "0.5", "-0.5", "1/3" (decimal when terminating)."""
    if f.denominator == 1:
        return str(f.numerator)
    d = f.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # terminating decimal: print it exactly
        s = f"{float(f)!r}"
        if Fraction(s) == f:
            return s
    return f"{f.numerator}/{f.denominator}"


_POWER_RE = re.compile(r"^\s*p\s*(?:\^|\*\*)\s*\(?\s*([^()\s]+)\s*\)?\s*$")


def parse_target(text) -> Target:
    """A Target from its text: "log" / "log p" / "logp" -> LOG; "p^A" or "p**A" -> PowerTarget(A).

    ``A`` is any real number > -1 written as a decimal or a fraction ("0.5", "-1/2", "2").
    A Target passes through unchanged.

    Raises
    ------
    ValueError
        Unknown text, an exponent that is not a number, or a <= -1 (the message says why).
    """
    if isinstance(text, Target):
        return text
    if not isinstance(text, str):
        raise TypeError(f"a target must be a string such as 'log' or 'p^0.5', received {text!r}")
    t = text.strip()
    if t.replace(" ", "").lower() in ("log", "logp", "log(p)"):
        return LOG
    m = _POWER_RE.match(t)
    if not m:
        raise ValueError(f"unknown target {text!r}: expected 'log' or 'p^A' with a real A > -1 "
                         f"(e.g. 'p^0.5', 'p^-0.5', 'p^2')")
    return PowerTarget(m.group(1))


def table_prefix(target) -> str:
    """The prefix of a target's shipped table names: "kl" for log p ("kl-minimax",
    "kl-aqp-rho1"), "pow<A>" for p^A ("pow0.5-minimax", "pow-0.5-aqp-rho1")."""
    t = parse_target(target)
    return "kl" if t == LOG else f"pow{t.spec[2:]}"


def pow_kmin(params) -> int:
    """Smallest K of the standard grid of a spec-file table of family "pow" (target p^a).

    ``params["target"]`` must name a power target p^a with a non-integer a > -1 (then 2); an
    integer a >= 0 is a polynomial whose exact tables are family "power", method "ustat"
    (``{m = a}``), so it is refused here with a message saying so.

    Raises
    ------
    ValueError
        No or a bad ``target``, log p, or an integer exponent a >= 0.
    """
    params = dict(params or {})
    if "target" not in params:
        raise ValueError(f"family 'pow' needs params 'target' = \"p^A\" (A > -1), received {params!r}")
    t = parse_target(params["target"])
    if not isinstance(t, PowerTarget):
        raise ValueError(f"family 'pow' needs a power target p^A, received {params['target']!r} "
                         f"(log p tables are family 'kl')")
    if t.polynomial:
        raise ValueError(f"{t.name} is a polynomial: its exact unbiased tables are family 'power', "
                         f"method 'ustat', params {{m = {t.a_exact.numerator}}}")
    return t.kmin


def alpha_reward(values, alpha) -> np.ndarray:
    """The reward table of the alpha-divergence game from a table for its power target.

    The generator phi_alpha(p) = (p^alpha - p) / (alpha (alpha - 1)) has the reward
    phi_alpha'(p) = (alpha p^(alpha-1) - 1) / (alpha (alpha - 1)) = A p^a + B with a = alpha - 1,
    A = 1/(alpha - 1), B = -1/(alpha (alpha - 1)); for alpha = 1 (KL) phi_1'(p) = log p + 1.
    Constants are estimated exactly, so the same map applied to a table for p^a (or log p) gives
    a table for phi_alpha' with its bias scaled by |A| (docs/MATH.md §2b).

    Parameters
    ----------
    values : array-like
        A table c_K[1..K] (or any array of rewards) for the target p^(alpha-1) (log p if alpha == 1).
    alpha : float
        alpha > 0.
    """
    alpha = float(alpha)
    if not (alpha > 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a positive finite number, received {alpha!r}")
    v = np.asarray(values, dtype=np.float64)
    if alpha == 1.0:
        return v + 1.0
    return v / (alpha - 1.0) - 1.0 / (alpha * (alpha - 1.0))
