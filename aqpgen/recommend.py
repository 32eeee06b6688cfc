r"""Which table should I use at my K?  A choice made from the tables' certified metrics.

The rule
--------
Among the tables for the target on the table search path (found by ``aqpgen.store.locate``:
the minimax table and every AQP preset; ``power-m<a>`` for an integer a, exactly unbiased, so
its β̄ is 0; tables a user built in ``$AQPGEN_TABLES`` count too, and are named as such) whose
row K is ``"ok"`` and is served in the trainer's dtype (the
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
only and validated out of sample, on runs the fit did not see (the same game at K = 12, 15, 24 and
the multi-token game at K = 8, 16); docs/experiments.md says where the choice fails there.  The weight differs between games because a bias and a noise of the same
size move different games' optima by different amounts; a target the experiment did not play
gets the KL game's weight, and the recommendation says it is not validated.  Longer runs or
larger batches average more noise away: a smaller λ then favours lower bias.

Public names
------------
NOISE_WEIGHTS, noise_weight(target) -> (λ, validated), Candidate, Recommendation,
recommend(K, target="log", dtype="float32", noise=None, tables=None), plugin_variance(K, target),
table_source(path) -> "shipped" / "user-built (DIR)", build_command(table, K) -> the shell line
that builds row K of a table like ``table`` into ``my-tables/``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from aqpgen.records import as_K
from aqpgen.runtime import load_table
from aqpgen.store.locate import (
    TABLES_ENV,
    available_tables,
    find_table,
    packaged_tables_dir,
    source_tables_dir,
)
from aqpgen.targets import parse_target, table_prefix

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib
    except ModuleNotFoundError:  # the light install: a checkout's tables/ then count as shipped
        tomllib = None

__all__ = ["NOISE_WEIGHTS", "Candidate", "Recommendation", "build_command", "noise_weight",
           "plugin_variance", "recommend", "table_source"]

#: Default noise weight λ of the rule per target (``Target.spec``; module docstring): inside the
#: ranges the trainer experiment measured at K = 8 and 16 (docs/experiments.md); for log p the
#: fit on the one-token game at K = 8, 16, 32 (``aqpgen.experiments.summary.fit_noise``).
NOISE_WEIGHTS = {"log": 0.014, "p^-0.5": 0.025}


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
    source : str
        Where the file was found (:func:`table_source`): ``"shipped"`` or ``"user-built (DIR)"``.
    largest_K : int or None
        The largest K <= MAX_K the table serves in the dtype (None: none).
    """

    name: str
    beta_cert: float
    V_inf: float
    ratio: float
    score: float
    usable: str
    source: str = "shipped"
    largest_K: int | None = None


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
        The table to use (None: no table on the search path serves K in ``dtype``).
    reason : str
        One sentence with the numbers behind the choice.
    plugin_V_inf : float
        The reference V∞(plug-in at K).
    candidates : tuple of Candidate
        Every table considered, lowest score first.
    largest_K : int or None
        When ``name`` is None: the largest K any candidate serves in ``dtype``.
    build : str or None
        When ``name`` is None: the command that builds row K (:func:`build_command`).
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
    largest_K: int | None = None
    build: str | None = None


def plugin_variance(K: int, target="log", tables: Iterable[str] | None = None) -> float:
    """V∞ of the plug-in at K: the reference stored by a ρ preset of the target on the search path
    (``rho_budget / rho``, computed by ``aqpgen.numerics.metrics`` when the preset was built);
    NaN when no ρ preset holds K.  Only reported beside the choice; the rule does not use it."""
    K = as_K(K, "K", minimum=2)
    t = parse_target(target)
    for name in _table_names(t, tables):
        path = find_table(name)
        st = os.stat(path)
        ref = _rho_reference(str(path), (st.st_size, st.st_mtime_ns), K)
        if not math.isnan(ref):
            return ref
    return math.nan


def _table_names(target, tables: Iterable[str] | None) -> list[str]:
    """The given tables, or the target's tables on the search path: ``<prefix>-*`` (``kl-*``,
    ``pow<A>-*``), and for an integer a >= 1 ``power-m<a>`` and ``power-m<a>-*``."""
    if tables is not None:
        return list(tables)
    names = available_tables()
    prefix = table_prefix(target) + "-"
    out = [n for n in names if n.startswith(prefix)]
    if getattr(target, "polynomial", False) and target.a_exact >= 1:
        exact = f"power-m{target.a_exact.numerator}"
        out += [n for n in names if n == exact or n.startswith(exact + "-")]
    return out


@functools.lru_cache(maxsize=8)
def _spec_names(spec_path: str, stamp: tuple) -> frozenset | None:
    """Names of the ``[[table]]`` entries of a spec file (empty when unreadable; None when no
    TOML parser is installed)."""
    if tomllib is None:  # pragma: no cover - Python 3.10 without tomli
        return None
    try:
        with open(spec_path, "rb") as fh:
            doc = tomllib.load(fh)
        return frozenset(e.get("name") for e in doc.get("table", []) if isinstance(e, dict))
    except (OSError, ValueError):
        return frozenset()


def table_source(path) -> str:
    """Where a table file was found: ``"shipped"`` (installed with the package, or a table of the
    checkout's ``tables/tables.toml`` in its ``tables/``), ``"user-built (DIR)"`` (a directory of
    ``$AQPGEN_TABLES``, or a file in ``tables/`` that its spec does not list), or
    ``"given (PATH)"`` for any other file."""
    p = os.path.realpath(path)
    here = os.path.dirname(p)
    for d in (x for x in os.environ.get(TABLES_ENV, "").split(os.pathsep) if x):
        if os.path.realpath(d) == here:
            return f"user-built ({d})"
    pkg, src = packaged_tables_dir(), source_tables_dir()
    if pkg is not None and os.path.realpath(pkg) == here:
        return "shipped"
    if src is not None and os.path.realpath(src) == here:
        spec = os.path.join(src, "tables.toml")
        st = os.stat(spec)
        names = _spec_names(spec, (st.st_size, st.st_mtime_ns))
        stem = os.path.splitext(os.path.basename(p))[0]
        return "shipped" if names is None or stem in names else f"user-built ({src})"
    return f"given ({path})"


@functools.lru_cache(maxsize=512)
def _rho_reference(path: str, stamp: tuple, K: int) -> float:
    """rho_budget / rho of row K of a ρ preset's file (NaN for other tables or rows)."""
    tab = load_table(path)
    rho = tab.params.get("rho")
    if rho and K in tab.Ks and tab.status[K] == "ok" and "rho_budget" in tab.metrics(K):
        return float(tab.metrics(K)["rho_budget"]) / float(rho)
    return math.nan


@functools.lru_cache(maxsize=512)
def _row(path: str, stamp: tuple, K: int, dtype: str) -> tuple:
    """(usable, beta_cert, V_inf, largest K served in dtype) of row K of the file at ``path``;
    ``stamp`` (size, mtime) keys the cache to the file's current version.  An exactly unbiased
    row (metric ``exact`` = 1, the ``power-m<a>`` tables) has β̄ = 0."""
    tab = load_table(path)
    largest = max(tab.served_Ks(dtype), default=None)
    if K not in tab.Ks:
        return f"K={K} not in the table", math.nan, math.nan, largest
    if tab.status[K] != "ok":
        return f"row K={K} unavailable: {tab.status[K]}", math.nan, math.nan, largest
    if not tab.precision(K, dtype).ok:
        below = max((k for k in tab.served_Ks(dtype) if k <= K), default="none")
        return (f"refused in {dtype} by the precision guard (largest K served: {below})",
                math.nan, math.nan, largest)
    m = tab.metrics(K)
    beta = 0.0 if m.get("exact") == 1.0 else float(m.get("beta_cert", math.nan))
    if math.isnan(beta):
        return "no certified bias (beta_cert) in the row", math.nan, math.nan, largest
    return "ok", beta, float(m["V_inf"]), largest


def _candidate(name: str, K: int, dtype: str, ref: float, noise: float) -> Candidate:
    path = find_table(name)
    st = os.stat(path)
    usable, beta, v, largest = _row(str(path), (st.st_size, st.st_mtime_ns), K, dtype)
    src = table_source(path)
    if usable != "ok":
        return Candidate(name, math.nan, math.nan, math.nan, math.inf, usable, src, largest)
    return Candidate(name, beta, v, v / ref, beta + noise * math.sqrt(v), usable, src, largest)


def _toml_inline(params: dict) -> str:
    return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(params.items())) + "}"


def build_command(table, K: int, *, out: str = "my-tables", recommend_args: str = "") -> str:
    """The shell line that writes a one-entry spec for row K of a table like ``table`` (a name
    or path: same family, method and params, named ``<name>-K<K>``) to ``<out>.toml``, builds it
    into ``out/`` and asks ``aqpgen recommend`` again with ``out`` on the search path."""
    K = as_K(K, "K", minimum=2)
    tab = load_table(find_table(table))
    lines = ["[[table]]", f"name = {json.dumps(f'{tab.name}-K{K}')}",
             f"family = {json.dumps(tab.family)}", f"method = {json.dumps(tab.method)}",
             f"params = {_toml_inline(dict(tab.params))}", f"Ks = [{K}]"]
    spec = f"{out}.toml"
    return (f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)} > {spec} && "
            f"aqpgen build {spec} --out {out} && "
            f"{TABLES_ENV}={out} aqpgen recommend --K {K}{recommend_args}")


def _none_serves(K, t, dtype, noise, validated, ref, cands, tables) -> Recommendation:
    """The answer when no candidate serves K: the largest K served and how to build row K."""
    largest = max((c.largest_K for c in cands if c.largest_K is not None), default=None)
    args = ("" if t.spec == "log" else f" --target {t.spec}") + (
        "" if dtype == "float32" else f" --dtype {dtype}")
    if largest is None:
        why = f"no table for {t.spec} on the search path serves any K in {dtype}"
        return Recommendation(K, t.spec, dtype, float(noise), validated, None, why, ref,
                              tuple(cands))
    at = recommend(largest, t, dtype=dtype, noise=noise, tables=tables).name
    cmd = build_command(at, K, recommend_args=args)
    why = (f"no table on the search path serves K={K} in {dtype}; the largest K served is "
           f"{largest} ({at} is the choice there); to build row K={K} of {at}'s kind: {cmd}")
    return Recommendation(K, t.spec, dtype, float(noise), validated, None, why, ref, tuple(cands),
                          largest, cmd)


def recommend(K, target="log", dtype: str = "float32", noise: float | None = None,
              tables: Iterable[str] | None = None) -> Recommendation:
    """The table to use at K (module docstring).

    Parameters
    ----------
    K : int
        Completions per prompt (``num_generations``).
    target : str or Target
        ``"log"`` (KL / entropy rewards) or ``"p^A"`` (an integer A >= 1: ``power-m<A>``).
    dtype : str
        What the trainer stores rewards in (``"float32"`` for TRL, verl, OpenRLHF).
    noise : float, optional
        The noise weight λ >= 0 (0: the smallest certified bias served); default
        :func:`noise_weight` of the target.
    tables : iterable of str, optional
        Table names or paths to choose from (default: the target's tables on the search path).

    When no table serves K, ``name`` is None and ``reason`` / ``largest_K`` / ``build`` say the
    largest K served and the command that builds row K.
    """
    K = as_K(K, "K", minimum=2)
    t = parse_target(target)
    defaulted, validated = noise is None, False
    if defaulted:
        noise, validated = noise_weight(t)
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, received {noise!r}")
    names = _table_names(t, tables)
    if not names:
        raise ValueError(f"no table for target {t.spec!r} on the table search path (looked for "
                         f"'{table_prefix(t)}-*'"
                         + (f" and 'power-m{t.a_exact.numerator}'" if getattr(t, "polynomial", False) else "")
                         + f"; build one: README 'Build your own table', or set ${TABLES_ENV})")
    ref = plugin_variance(K, t, names)
    cands = sorted((_candidate(n, K, dtype, ref, noise) for n in names),
                   key=lambda c: (c.score, c.name))
    best = cands[0]
    if best.usable != "ok":
        return _none_serves(K, t, dtype, noise, validated, ref, cands, tables)
    return Recommendation(K, t.spec, dtype, float(noise), validated, best.name,
                          _why(best, cands, noise, dtype, K, t, defaulted and not validated), ref,
                          tuple(cands))


def _why(best, cands, noise, dtype, K, t, unvalidated) -> str:
    """The sentence behind the choice."""
    ratio = "" if math.isnan(best.ratio) else f" = {best.ratio:.2f} x the plug-in's"
    why = (f"{best.name} ({best.source}): the lowest beta_cert + {noise:g} sqrt(V_inf) = "
           f"{best.score:.3g} among the {sum(c.usable == 'ok' for c in cands)} tables served in "
           f"{dtype} at K={K} (beta_cert = {best.beta_cert:.3g}, V_inf = {best.V_inf:.3g}{ratio})")
    runner = next((c for c in cands[1:] if c.usable == "ok"), None)
    if runner is not None:
        why += f"; next {runner.name} ({runner.score:.3g})"
    if unvalidated:
        why += (f"; λ = {noise:g} is the KL game's weight: the trainer experiment did not play the "
                f"{t.spec} game, so this choice is not validated")
    return why
