r"""Estimators the game compares: classical peers, table files, tables given in memory, the oracle.

An estimator is a family of tables c_K[1..K] (one per batch size K) for one **target** g
(``aqpgen.targets``: ``LOG`` or ``PowerTarget(a)``); the target decides which game the estimator
plays (``aqpgen.game.alpha.game_alpha``: log p -> α = 1, p^a -> α = a + 1).

Names (``get_estimator(name, target=None)``)
--------------------------------------------
``oracle-log`` / ``oracle-p^A`` / ``oracle``  the exact target (mean function g itself; sampled
    rewards use the policy's true p_z).  Not a table: no unbiased table exists for log p or a
    non-integer power.  ``oracle`` means the oracle of ``target`` (default log p).
``plugin``, ``digamma``, ``laplace``, ``jackknife``   the classical peers of log p
    (``aqpgen.generators.peers``);
``plugin``, ``laplace``, ``jackknife``, ``delta``, ``series``   those of p^a
    (``aqpgen.generators.peers_power``; the plug-in (n/K)^a is ``peers.plugin_table``).
anything else  a table file name or path (``aqpgen.runtime.load_table``); its target comes from
    the file and must equal ``target`` when one is given.

Public names
------------
Estimator, ArrayEstimator, PeerEstimator, TableEstimator, OracleEstimator
get_estimator(name, target=None), as_estimator(obj, target=None), available_estimators(target)
table_names(target)  -- shipped table names of a target, report order (peers: ``peers.peer_names``)
ORACLE, PEER_NAMES, TABLE_NAMES
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from aqpgen.game.alpha import game_alpha
from aqpgen.generators import peers
from aqpgen.compare import PRESETS, power_presets, preset_table_name
from aqpgen.generators.peers import peer_names
from aqpgen.generators.peers_power import POWER_PEERS, power_peer_table
from aqpgen.records import as_K
from aqpgen.runtime import load_table
from aqpgen.store.tablefile import read_table
from aqpgen.targets import LOG, Target, parse_target, table_prefix

__all__ = ["ORACLE", "PEER_NAMES", "TABLE_NAMES", "ArrayEstimator", "Estimator", "OracleEstimator",
           "PeerEstimator", "TableEstimator", "as_estimator", "available_estimators",
           "get_estimator", "table_names"]

#: Name of the log p oracle: the exact log p (mean function g = log; in sampled runs the reward
#: uses the policy's true p_z).  Not a table -- no unbiased table for log p exists.
ORACLE = "oracle-log"
#: Classical peers of log p (``aqpgen.generators.peers``) in report order.
PEER_NAMES = peers.PEERS
#: Shipped KL tables in report order (used when present).
TABLE_NAMES = ("kl-minimax",) + tuple(preset_table_name(n) for n in PRESETS)


def table_names(target=LOG) -> tuple[str, ...]:
    """Shipped table names for ``target`` in report order: the KL tables for log p,
    ``pow<A>-minimax`` and ``pow<A>-aqp-<preset>`` (``compare.power_presets``) for p^A."""
    t = parse_target(target)
    if t == LOG:
        return TABLE_NAMES
    return (f"{table_prefix(t)}-minimax",) + tuple(preset_table_name(n, t) for n in power_presets(t))


def _to_float(v) -> float:
    if isinstance(v, bytes):
        v = v.decode()
    return float(Fraction(v)) if isinstance(v, (str, Fraction)) else float(v)


class Estimator:
    """A named family of tables c_K (one per K) for one target.

    Subclasses provide ``values(K)`` (the float64 table the runtime serves), ``values_exact(K)``
    (the exact or high-precision values: decimal strings, Fractions or floats), ``Ks`` (available
    K, or None for any K >= 2) and ``lookup(counts, K)``.  ``target`` is a ``Target``; ``alpha``
    the game it plays.
    """

    name: str = ""
    is_oracle = False
    target: Target = LOG

    def __init__(self) -> None:
        #: cache of mean functions, filled by aqpgen.game.meanfn (keyed by its own tuples)
        self.mean_cache: dict = {}

    @property
    def alpha(self) -> float:
        """α of the game this estimator's target belongs to (log p: 1, p^a: a + 1)."""
        return game_alpha(self.target)

    @property
    def Ks(self) -> tuple[int, ...] | None:
        return None

    def check_K(self, K: int) -> int:
        """Validate K (``aqpgen.records.as_K``: an integer >= 2; TypeError / ValueError) and
        that this estimator has it (ValueError naming the available K); return it as int."""
        K = as_K(K, "K", minimum=2)
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
        return f"{type(self).__name__}({self.name!r}, target={self.target.spec!r})"


class ArrayEstimator(Estimator):
    """An estimator from explicit tables ``{K: values}`` (values: str / Fraction / float).

    Used for tables built on the fly (tests, experiments).  ``values(K)`` is the correctly
    rounded float64 table; ``values_exact(K)`` the given values.
    """

    def __init__(self, name: str, tables: Mapping[int, Sequence], target=LOG):
        super().__init__()
        self.name = str(name)
        self.target = parse_target(target)
        game_alpha(self.target)  # a target that is no game's marginal cost is refused here
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


class PeerEstimator(Estimator):
    """A classical peer (any K >= 2): of log p from ``aqpgen.generators.peers`` (``PEERS``), of
    p^a from ``aqpgen.generators.peers_power`` (``POWER_PEERS``; the plug-in through
    ``peers.plugin_table``, the reference of the AQP rho programs)."""

    def __init__(self, name: str, target=LOG):
        super().__init__()
        self.target = parse_target(target)
        game_alpha(self.target)
        names = peer_names(self.target)
        if name not in names:
            raise ValueError(f"peer of {self.target.spec!r} must be one of {names}, "
                             f"received {name!r}")
        self.name = name
        self._cache: dict[int, np.ndarray] = {}

    def values(self, K):
        K = self.check_K(K)
        if K not in self._cache:
            if self.target == LOG:
                v = peers.peer_table(self.name, K)
            elif self.name == "plugin":
                v = peers.plugin_table(K, self.target)
            else:
                v = power_peer_table(self.name, K, self.target)
            self._cache[K] = np.asarray(v, dtype=np.float64)
        return self._cache[K]


class TableEstimator(Estimator):
    """A table file served by ``aqpgen.runtime`` (high-precision values from ``read_table``).

    ``Ks`` lists every row of the file; ``check_K`` refuses rows whose status is not ``"ok"``
    with the file's reason."""

    def __init__(self, ref):
        super().__init__()
        self.table = load_table(ref)
        self.name = str(ref)
        self.target = parse_target(self.table.target)
        game_alpha(self.target)
        self._hp: dict[int, Sequence] = {}
        self._data = None  # the file's TableData (read once, for values_hp)

    @property
    def Ks(self):
        return tuple(int(k) for k in self.table.Ks)

    def check_K(self, K):
        K = super().check_K(K)
        status = self.table.status[K]
        if status != "ok":
            raise ValueError(f"estimator {self.name!r}: row K={K} is unavailable ({status})")
        return K

    def values(self, K):
        return np.asarray(self.table.values(self.check_K(K)), dtype=np.float64)

    def lookup(self, counts, K):
        return self.table.lookup(counts, self.check_K(K))

    def values_exact(self, K):
        K = self.check_K(K)
        if K not in self._hp:
            hp = None
            if self.table.path is not None:
                if self._data is None:
                    self._data = read_table(self.table.path)
                hp = self._data.rows[K].values_hp
            self._hp[K] = tuple(hp) if hp is not None else self.values(K)
        return self._hp[K]


class OracleEstimator(Estimator):
    """g = the target exactly; sampled rewards use the true p_z (no table can do this)."""

    is_oracle = True

    def __init__(self, target=LOG):
        super().__init__()
        self.target = parse_target(target)
        game_alpha(self.target)
        self.name = ORACLE if self.target == LOG else f"oracle-{self.target.spec}"

    def values(self, K):
        raise ValueError(f"{self.name!r} is an oracle, not a table: it has no values for K={K}")


@functools.cache
def _get(name: str, target: Target | None) -> Estimator:
    if name == "oracle":
        return OracleEstimator(LOG if target is None else target)
    if name.startswith("oracle-"):
        t = parse_target(name[len("oracle-"):])
        if target is not None and t != target:
            raise ValueError(f"estimator {name!r} is the oracle of {t.spec!r}, not of "
                             f"the requested target {target.spec!r}")
        return OracleEstimator(t)
    t = LOG if target is None else target
    if name in peer_names(t):
        return PeerEstimator(name, t)
    if name in PEER_NAMES + POWER_PEERS:
        raise ValueError(f"peer {name!r} is not a peer of {t.spec!r} (its peers: "
                         f"{peer_names(t)})")
    try:
        est = TableEstimator(name)
    except Exception as exc:  # the runtime's own error says why (missing file, bad hash, ...)
        raise ValueError(f"unknown estimator {name!r}: not an oracle, not a peer "
                         f"{PEER_NAMES}, and no loadable table ({exc})") from exc
    if target is not None and est.target != target:
        raise ValueError(f"table {name!r} estimates {est.target.spec!r}, not the requested "
                         f"target {target.spec!r}")
    return est


def get_estimator(name: str, target=None) -> Estimator:
    """Resolve an estimator name (module docstring) for ``target`` (None: log p for peers and
    the oracle, the file's target for tables).  Cached, so mean functions are shared.

    Raises
    ------
    ValueError
        Empty name, unknown name, a table whose target differs from ``target``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"estimator must be a non-empty name, received {name!r}")
    return _get(name, None if target is None else parse_target(target))


def as_estimator(estimator, target=None) -> Estimator:
    """An Estimator passes through (its target must equal ``target`` if given); a name is
    resolved by :func:`get_estimator`."""
    if isinstance(estimator, Estimator):
        if target is not None and estimator.target != parse_target(target):
            raise ValueError(f"estimator {estimator.name!r} estimates {estimator.target.spec!r}, "
                             f"not the requested target {parse_target(target).spec!r}")
        return estimator
    return get_estimator(estimator, target)


def available_estimators(target=LOG) -> list[str]:
    """Peers and the shipped tables of ``target`` that load, in report order."""
    t = parse_target(target)
    names = peer_names(t) + table_names(t)
    out = []
    for name in names:
        try:
            get_estimator(name, t)
        except ValueError:
            continue
        out.append(name)
    return out
