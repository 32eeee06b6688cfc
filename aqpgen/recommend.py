r"""Which table should I use at my K?  A choice made from the tables' certified metrics.

The rule
--------
Among the shipped tables for the target (found by ``aqpgen.store.locate``: the minimax table
and every AQP preset) whose row K is ``"ok"`` and is served in the trainer's dtype (the
precision guard, ``Table.served_Ks``: TRL, verl and OpenRLHF keep rewards in float32), take the
one that minimises

.. math::  J(c) = \bar\beta(c) + \lambda \sqrt{V_\infty(c)},
           \qquad \lambda = \text{noise weight (default: } :func:`noise_weight`\text{ of the target)},

the certified weighted bias plus λ times the reward's worst (p-weighted) standard deviation.

Why this rule: a GRPO run ends near the fixed point of its expected dynamics, which the
table's bias moves (docs/MATH.md §8) by an amount that β̄ bounds, plus a random fluctuation of
the policy that grows like the standard deviation of the reward, so the distance at the end
behaves like β̄ + λ√V∞ with λ set by how much noise the training averages away (steps,
completions per step, learning-rate schedule).  Along the bias-variance frontier of one K
(``aqpgen frontier --K 16 --rho 1,2,4,8``) β̄ falls quickly at first and then flattens while V∞
keeps growing, so J has an interior minimum: at small K, where every table's bias is large, it
buys bias with variance; at larger K, where the AQP bias is already small, it stops earlier.
The minimax table (V∞ over 10^5 times the plug-in's from K = 16 on) is never chosen there.

The default λ is a measurement, per game: the trainer experiment (``aqpgen experiment``,
docs/experiments.md) reports, for each target it played and each K, the range of λ for which
this rule's choice is within the seed spread of the lowest final TV, and :data:`NOISE_WEIGHTS`
holds a value inside the ranges of K = 8 and 16 (a test checks this against
docs/experiments.json).  For log p the value is fitted on the one-token game at K = 8, 16, 32
only and validated out of sample, on runs the fit did not see (the same game at K = 12, 24 and
the multi-token game at K = 8, 16); docs/experiments.md says where the choice fails there.  The weight differs between games because a bias and a noise of the same
size move different games' optima by different amounts; a target the experiment did not play
gets the KL game's weight, and the recommendation says it is not validated.  Longer runs or
larger batches average more noise away: a smaller λ then favours lower bias.

Public names
------------
NOISE_WEIGHTS, noise_weight(target) -> (λ, validated), Candidate, Recommendation,
recommend(K, target="log", dtype="float32", noise=None, tables=None), plugin_variance(K, target)
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass

from aqpgen.records import as_K
from aqpgen.runtime import load_table
from aqpgen.store.locate import available_tables, find_table
from aqpgen.targets import parse_target, table_prefix

__all__ = ["NOISE_WEIGHTS", "Candidate", "Recommendation", "noise_weight", "plugin_variance",
           "recommend"]

#: Default noise weight λ of the rule per target (``Target.spec``; module docstring): inside the
#: ranges the trainer experiment measured at K = 8 and 16 (docs/experiments.md); for log p the
#: fit on the one-token game at K = 8, 16, 32 (``aqpgen.experiments.summary.fit_noise``).
NOISE_WEIGHTS = {"log": 0.01, "p^-0.5": 0.025}


def noise_weight(target="log") -> tuple[float, bool]:
    """(λ, validated): the target's measured default, or the KL game's with ``False``."""
    t = parse_target(target)
    if t.spec in NOISE_WEIGHTS:
        return NOISE_WEIGHTS[t.spec], True
    return NOISE_WEIGHTS["log"], False


@dataclass(frozen=True)
class Candidate:
    """One shipped table at K.

    Attributes
    ----------
    name : str
    beta_cert : float
        Certified weighted bias β̄ of the row (NaN when unusable).
    V_inf : float
        Worst variance of the row.
    ratio : float
        V_inf / V∞(plug-in at K) (for the reader; the rule does not use it).
    score : float
        J = beta_cert + λ sqrt(V_inf) (inf when unusable).
    usable : str
        ``"ok"``, or why the row cannot be served (not in the table, status, precision guard).
    """

    name: str
    beta_cert: float
    V_inf: float
    ratio: float
    score: float
    usable: str


@dataclass(frozen=True)
class Recommendation:
    """The choice at one K.

    Attributes
    ----------
    K, target, dtype, noise
        The question (``noise`` is λ).
    validated : bool
        Whether λ is a default the trainer experiment measured for this target (False for an
        explicit ``noise`` or a target the experiment did not play).
    name : str or None
        The table to use (None: no shipped table serves K in ``dtype``).
    reason : str
        One sentence with the numbers behind the choice.
    plugin_V_inf : float
        The reference V∞(plug-in at K).
    candidates : tuple of Candidate
        Every shipped table considered, lowest score first.
    """

    K: int
    target: str
    dtype: str
    noise: float
    validated: bool
    name: str | None
    reason: str
    plugin_V_inf: float
    candidates: tuple[Candidate, ...]


def plugin_variance(K: int, target="log", tables: Iterable[str] | None = None) -> float:
    """V∞ of the plug-in at K: the reference stored by a shipped ρ preset of the target
    (``rho_budget / rho``, computed by ``aqpgen.numerics.metrics`` when the preset was built);
    NaN when no ρ preset holds K.  Only reported beside the choice; the rule does not use it."""
    K = as_K(K, "K", minimum=2)
    t = parse_target(target)
    for name in _shipped_names(t, tables):
        path = find_table(name)
        st = os.stat(path)
        ref = _rho_reference(str(path), (st.st_size, st.st_mtime_ns), K)
        if not math.isnan(ref):
            return ref
    return math.nan


def _shipped_names(target, tables: Iterable[str] | None) -> list[str]:
    if tables is not None:
        return list(tables)
    prefix = table_prefix(target) + "-"
    return [n for n in available_tables() if n.startswith(prefix)]


@functools.lru_cache(maxsize=512)
def _rho_reference(path: str, stamp: tuple, K: int) -> float:
    """rho_budget / rho of row K of a ρ preset's file (NaN for other tables or rows)."""
    tab = load_table(path)
    rho = tab.params.get("rho")
    if rho and K in tab.Ks and tab.status[K] == "ok" and "rho_budget" in tab.metrics(K):
        return float(tab.metrics(K)["rho_budget"]) / float(rho)
    return math.nan


@functools.lru_cache(maxsize=512)
def _row(path: str, stamp: tuple, K: int, dtype: str) -> tuple[str, str, float, float]:
    """(table name, usable, beta_cert, V_inf) of row K of the file at ``path``; ``stamp``
    (size, mtime) keys the cache to the file's current version."""
    tab = load_table(path)
    if K not in tab.Ks:
        return tab.name, f"K={K} not in the table", math.nan, math.nan
    if tab.status[K] != "ok":
        return tab.name, f"row K={K} unavailable: {tab.status[K]}", math.nan, math.nan
    if not tab.precision(K, dtype).ok:
        largest = max((k for k in tab.served_Ks(dtype) if k <= K), default="none")
        return (tab.name, f"refused in {dtype} by the precision guard (largest K served: "
                f"{largest})", math.nan, math.nan)
    m = tab.metrics(K)
    return tab.name, "ok", float(m["beta_cert"]), float(m["V_inf"])


def _candidate(name: str, K: int, dtype: str, ref: float, noise: float) -> Candidate:
    path = find_table(name)
    st = os.stat(path)
    _, usable, beta, v = _row(str(path), (st.st_size, st.st_mtime_ns), K, dtype)
    if usable != "ok":
        return Candidate(name, math.nan, math.nan, math.nan, math.inf, usable)
    return Candidate(name, beta, v, v / ref, beta + noise * math.sqrt(v), usable)


def recommend(K, target="log", dtype: str = "float32", noise: float | None = None,
              tables: Iterable[str] | None = None) -> Recommendation:
    """The table to use at K (module docstring).

    Parameters
    ----------
    K : int
        Completions per prompt (``num_generations``).
    target : str or Target
        ``"log"`` (KL / entropy rewards) or ``"p^A"``.
    dtype : str
        What the trainer stores rewards in (``"float32"`` for TRL, verl, OpenRLHF).
    noise : float, optional
        The noise weight λ >= 0 (0: the smallest certified bias served); default
        :func:`noise_weight` of the target.
    tables : iterable of str, optional
        Table names or paths to choose from (default: every shipped table of the target).
    """
    K = as_K(K, "K", minimum=2)
    t = parse_target(target)
    defaulted, validated = noise is None, False
    if defaulted:
        noise, validated = noise_weight(t)
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, received {noise!r}")
    names = _shipped_names(t, tables)
    if not names:
        raise ValueError(f"no shipped table for target {t.spec!r} (looked for "
                         f"'{table_prefix(t)}-*' on the table search path)")
    ref = plugin_variance(K, t, names)
    cands = sorted((_candidate(n, K, dtype, ref, noise) for n in names),
                   key=lambda c: (c.score, c.name))
    best = cands[0]
    if best.usable != "ok":
        return Recommendation(K, t.spec, dtype, float(noise), validated, None,
                              f"no shipped table for {t.spec} serves K={K} in {dtype}", ref,
                              tuple(cands))
    why = (f"{best.name}: the lowest beta_cert + {noise:g} sqrt(V_inf) = {best.score:.3g} among the "
           f"{sum(c.usable == 'ok' for c in cands)} tables served in {dtype} at K={K} "
           f"(beta_cert = {best.beta_cert:.3g}, V_inf = {best.V_inf:.3g} = {best.ratio:.2f} x the "
           f"plug-in's)")
    runner = next((c for c in cands[1:] if c.usable == "ok"), None)
    if runner is not None:
        why += f"; next {runner.name} ({runner.score:.3g})"
    if defaulted and not validated:
        why += (f"; λ = {noise:g} is the KL game's weight: the trainer experiment did not play the "
                f"{t.spec} game, so this choice is not validated")
    return Recommendation(K, t.spec, dtype, float(noise), validated, best.name, why, ref, tuple(cands))
