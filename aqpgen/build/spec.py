"""The spec file (``tables/tables.toml``): which tables exist, validated whole before any solve.

Public names
------------
GENERATORS                 -- registry ``(family, method) -> module name``.
DEFAULT_SPEC               -- ``tables/tables.toml`` (relative to the repository root).
MAX_K                      -- 4096: the largest batch size any table, spec or CLI option accepts.
TableSpec                  -- one validated ``[[table]]`` entry of the spec file.
load_spec(path)            -- parse and validate a spec file -> list of TableSpec.
check_params(family, method, params) -- validate a generator's params (ValueError naming the key).
check_Ks(Ks, kmin, name)   -- validate an explicit K list (ValueError naming the bad entry).
parse_K_list(text)         -- ``"4,8,16"`` -> ``[4, 8, 16]`` for the CLI (same rules as check_Ks).
standard_kmin(family, params) -- smallest valid K (2 for kl, m+1 for p^m, degree+1 for a poly).
generator_module(family, method) -- import the generator module (ImportError naming the extra).

Validation first
----------------
``load_spec`` checks every entry before the build solves anything: keys, name, (family, method),
params, and the K list.  Params are checked in two layers: the value rules below (one meaning
per key across generators) and then the generator's own ``check_params(params)`` when the module
defines one, else its ``target_name(params)`` (which rejects unknown keys and combinations):

* ``rho``  -- a finite real > 0 (V∞ budget as a multiple of the plug-in's V∞).
* ``eta``  -- a finite real >= 0 (bias budget (1+η)·E*_K).
* ``objective`` -- ``"Vinf"`` or ``"V1"``.
* ``m``    -- an integer 1 <= m < MAX_K (target p^m; p^0 = 1 is a constant, nothing to build).
* ``coeffs`` -- a non-empty list of rationals written as strings (``"1/3"``), each representable
  in float64, the sum of their magnitudes finite, of degree >= 1 (a constant needs no table).
* ``target`` -- a target string accepted by ``aqpgen.targets.parse_target`` (``"log"``, ``"p^0.5"``).
* ``shape``  -- ``"none"`` (default) or ``"monotone"`` (AQP only: c follows the target's
  monotonicity and sign, docs/MATH.md §5b).

K above :data:`MAX_K` is refused at once (a K of 10^11 would otherwise allocate or loop for
hours): the largest shipped table stops at 1024, and minimax / AQP solves at K = 4096 already
take many minutes each.  docs/SCALING.md says how to go beyond one machine.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from aqpgen.records import as_int, standard_Ks
from aqpgen.store.content import canonical_json
from aqpgen.targets import parse_target, pow_kmin

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_SPEC",
    "GENERATORS",
    "MAX_K",
    "TableSpec",
    "check_Ks",
    "check_params",
    "generator_module",
    "load_spec",
    "missing_extra",
    "parse_K_list",
    "standard_kmin",
]

#: Generator registry: ``(family, method) -> importable module name`` (docs/ARCHITECTURE.md).
GENERATORS: dict[tuple[str, str], str] = {
    ("power", "ustat"): "aqpgen.generators.power",
    ("kl", "minimax"): "aqpgen.generators.minimax",
    ("kl", "aqp"): "aqpgen.generators.aqp",
    ("pow", "minimax"): "aqpgen.generators.minimax",
    ("pow", "aqp"): "aqpgen.generators.aqp",
}

#: The shipped spec file, relative to the repository root.
DEFAULT_SPEC = os.path.join("tables", "tables.toml")

#: Largest batch size accepted by a spec file and by every ``--K`` option of the CLI.
MAX_K = 4096

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SPEC_KEYS = {"name", "family", "method", "params", "Ks"}

#: Modules of the optional extras -> the extra that installs them (for error messages).
EXTRA_OF = {
    "click": "build", "cvxpy": "build", "clarabel": "build", "flint": "build", "sympy": "build",
    "mpmath": "build", "scipy": "build", "matplotlib": "build", "tomli": "build",
    "dask": "dask", "distributed": "dask",
    "torch": "experiment", "trl": "experiment", "transformers": "experiment",
    "datasets": "experiment", "accelerate": "experiment",
}


def missing_extra(exc: ImportError) -> str | None:
    """``"pip install 'aqpgen[build]'"``-style advice when ``exc`` is a missing optional module."""
    root = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRA_OF.get(root)
    if extra is None:
        return None
    return f"this needs the optional module {root!r}: pip install 'aqpgen[{extra}]'"


@dataclass(frozen=True)
class TableSpec:
    """One validated ``[[table]]`` entry.

    Attributes
    ----------
    name : str
        Table name; the file is ``<out_dir>/<name>.h5``.
    family, method : str
        Key into :data:`GENERATORS`.
    params : dict
        Generator parameters (JSON-serialisable; rationals as strings).
    Ks : tuple of int
        Sorted K values (the standard grid resolved, or the explicit list).
    Ks_spec : str or tuple
        As written in the spec: ``"standard"`` or the explicit list.
    """

    name: str
    family: str
    method: str
    params: dict = field(default_factory=dict)
    Ks: tuple = ()
    Ks_spec: object = "standard"

    @property
    def filename(self) -> str:
        return f"{self.name}.h5"


def generator_module(family: str, method: str):
    """Import the generator module registered for ``(family, method)``.

    Raises ImportError naming the extra to install when an optional dependency is missing."""
    modname = GENERATORS[(family, method)]
    try:
        return importlib.import_module(modname)
    except ImportError as e:
        hint = missing_extra(e)
        raise ImportError(f"generator module {modname!r} cannot be imported: {e}"
                          + (f"; {hint}" if hint else "")) from e


# --------------------------------------------------------------------------------------------
# params and K lists
# --------------------------------------------------------------------------------------------


def _real(key: str, x) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
        raise ValueError(f"params {key!r} must be a finite real number, received {x!r}")
    return float(x)


def _rule_rho(x) -> None:
    if _real("rho", x) <= 0:
        raise ValueError(f"params 'rho' must be > 0 (a V_inf budget rho * V_inf(plug-in)), received {x!r}")


def _rule_eta(x) -> None:
    if _real("eta", x) < 0:
        raise ValueError(f"params 'eta' must be >= 0 (a bias budget (1+eta) E*_K), received {x!r}")


def _rule_objective(x) -> None:
    if x not in ("Vinf", "V1"):
        raise ValueError(f"params 'objective' must be 'Vinf' or 'V1', received {x!r}")


def _spec_int(x, name: str, minimum: int | None = None) -> int:
    """``aqpgen.records.as_int`` for a spec value: every spec error is a ValueError."""
    try:
        return as_int(x, name, minimum=minimum)
    except TypeError as e:
        raise ValueError(str(e)) from None


def _rule_m(x) -> None:
    x = _spec_int(x, "params 'm'", minimum=0)
    if x == 0:
        raise ValueError("params 'm' = 0 is the constant target p^0 = 1: its table is 1 at every n "
                         "(no estimator to build); give m >= 1")
    if x >= MAX_K:
        raise ValueError(f"params 'm' = {x} needs K >= m+1 = {x + 1}, above the maximum K = {MAX_K} "
                         "(aqpgen.build.spec.MAX_K)")


def _rule_coeffs(x) -> None:
    if not isinstance(x, list) or not x or not all(isinstance(c, str) for c in x):
        raise ValueError(f"params 'coeffs' must be a non-empty list of rationals as strings, received {x!r}")
    try:
        qs = [Fraction(c) for c in x]
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"params 'coeffs' must be rationals as strings such as \"1/3\", received {x!r}") from None
    for c, q in zip(x, qs):
        if q != 0 and _as_float(q) in (0.0, math.inf):
            raise ValueError(f"params 'coeffs': {c!r} is not representable in float64 (it rounds to "
                             f"{_as_float(q):g}; |c| must lie in 5e-324..{sys.float_info.max:.3g}), "
                             f"received {x!r}")
    if _as_float(sum(abs(q) for q in qs)) == math.inf:
        raise ValueError(f"params 'coeffs': the sum of |coefficients| (a bound on the table's values) "
                         f"overflows float64, received {x!r}")
    if _poly_degree(x) == 0:
        raise ValueError(f"params 'coeffs' {x!r} is a constant target: its table is that constant "
                         "at every n (no estimator to build); give a polynomial of degree >= 1")


def _as_float(q: Fraction) -> float:
    """``float(q)``, with inf where it overflows float64."""
    try:
        return abs(float(q))
    except OverflowError:
        return math.inf


def _rule_target(x) -> None:
    try:
        parse_target(x)
    except (TypeError, ValueError) as e:
        raise ValueError(f"params 'target': {e}") from None


def _rule_shape(x) -> None:
    if x not in ("none", "monotone"):
        raise ValueError(f"params 'shape' must be 'none' or 'monotone', received {x!r}")


_KEY_RULES = {"rho": _rule_rho, "eta": _rule_eta, "objective": _rule_objective, "m": _rule_m,
              "coeffs": _rule_coeffs, "target": _rule_target, "shape": _rule_shape}


def check_params(family: str, method: str, params: Mapping, mod=None) -> None:
    """Validate ``params`` for the generator ``(family, method)`` (see the module docstring).

    ``mod`` is the imported generator module (imported here when None).  Raises ValueError /
    TypeError naming the offending key and value."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a table of key = value, received {params!r}")
    for key in sorted(params):
        rule = _KEY_RULES.get(key)
        if rule is not None:
            rule(params[key])
    if mod is None:
        mod = generator_module(family, method)
    check = getattr(mod, "check_params", None) or getattr(mod, "target_name", None)
    if check is not None:
        try:
            check(dict(params))
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"params {dict(params)!r} rejected by {mod.__name__}: {e}") from None


def check_Ks(Ks, kmin: int = 1, name: str = "Ks") -> tuple[int, ...]:
    """Validate a non-empty list of distinct integers in ``kmin..MAX_K``; returns them sorted."""
    if isinstance(Ks, (str, bytes)) or not hasattr(Ks, "__iter__"):
        raise ValueError(f"{name} must be a list of integers, received {Ks!r}")
    Ks = [_spec_int(k, f"{name} entry") for k in Ks]
    if not Ks:
        raise ValueError(f"{name} must not be empty")
    for k in Ks:
        if k > MAX_K:
            raise ValueError(f"{name}: K={k} is above the maximum K = {MAX_K} (aqpgen.build.spec.MAX_K; "
                             "docs/SCALING.md)")
        if k < kmin:
            raise ValueError(f"{name}: K={k} is below the smallest valid K={kmin} for this target")
    if len(set(Ks)) != len(Ks):
        raise ValueError(f"{name} has duplicates: {Ks!r}")
    return tuple(sorted(Ks))


def parse_K_list(text: str, kmin: int = 2) -> list[int]:
    """``"4,8,16"`` -> ``[4, 8, 16]`` (order kept): every comma-separated item an integer in
    ``kmin..MAX_K``; empty items (``"8,,"``), non-integers and huge values are ValueErrors."""
    items = str(text).split(",")
    out = []
    for i, item in enumerate(items):
        s = item.strip()
        if not s:
            raise ValueError(f"empty item #{i + 1} in K list {text!r}: a K list is comma-separated "
                             "integers such as 4,8,16")
        if not re.fullmatch(r"[+-]?\d+", s):
            raise ValueError(f"{s!r} in K list {text!r} is not an integer: a K list is comma-separated "
                             "integers such as 4,8,16")
        k = int(s)
        if k > MAX_K:
            raise ValueError(f"K={k} in {text!r} is above the maximum K = {MAX_K}")
        if k < kmin:
            raise ValueError(f"K={k} in {text!r}: every K must be >= {kmin}")
        out.append(k)
    return out


def _poly_degree(coeffs) -> int:
    deg = 0
    for i, c in enumerate(coeffs):
        if Fraction(str(c)) != 0:
            deg = i
    return deg


def standard_kmin(family: str, params: Mapping) -> int:
    """Smallest valid K for the standard grid.

    2 for ``family="kl"`` (log p); m+1 for ``family="power"`` with ``{"m": m}``; degree+1 for a
    general polynomial ``{"coeffs": [...]}`` (at least 2); ``aqpgen.targets.pow_kmin`` for
    ``family="pow"`` (target p^a, non-integer a).  Other families: the generator module's
    ``kmin(params)``.
    """
    if family == "kl":
        return 2
    if family == "power":
        if "m" in params:
            _rule_m(params["m"])
            return max(params["m"] + 1, 2)
        if "coeffs" in params:
            _rule_coeffs(params["coeffs"])
            return max(_poly_degree(params["coeffs"]) + 1, 2)
        raise ValueError(f"power params need 'm' or 'coeffs', received {dict(params)!r}")
    if family == "pow":
        return pow_kmin(params)
    for fam, meth in GENERATORS:  # a registered generator of another family may state its rule
        if fam == family:
            mod = generator_module(fam, meth)
            if hasattr(mod, "kmin"):
                return int(mod.kmin(params))
    raise ValueError(f"no standard K grid rule for family {family!r}; give an explicit Ks list")


# --------------------------------------------------------------------------------------------
# the file
# --------------------------------------------------------------------------------------------


def _load_toml(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: invalid TOML: {e}") from None


def _validate_entry(i: int, entry, path: str) -> TableSpec:
    where = f"{path}: [[table]] #{i + 1}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table, received {entry!r}")  # noqa: TRY004 - spec error
    unknown = set(entry) - _SPEC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(_SPEC_KEYS)}")
    for key in ("name", "family", "method"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{where}: '{key}' must be a non-empty string, received {entry.get(key)!r}")
    name = entry["name"]
    where = f"{path}: table {name!r}"
    if not _NAME_RE.match(name):
        raise ValueError(f"{where}: name must match {_NAME_RE.pattern} (it is the file stem)")
    family, method = entry["family"], entry["method"]
    if (family, method) not in GENERATORS:
        raise ValueError(f"{where}: unknown (family, method) {(family, method)!r}; known: {sorted(GENERATORS)}")
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"{where}: 'params' must be an inline table, received {params!r}")  # noqa: TRY004
    try:
        canonical_json(params)
        check_params(family, method, params)
        kmin = standard_kmin(family, params)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    Ks_spec = entry.get("Ks", "standard")
    if Ks_spec == "standard":
        Ks = standard_Ks(kmin)
        if not Ks:
            raise ValueError(f"{where}: 'Ks' = \"standard\" has no K >= {kmin} (the smallest valid K "
                             f"for params {canonical_json(params)}); the standard grid stops at "
                             f"{standard_Ks(2)[-1]}: give an explicit list, e.g. Ks = [{kmin}]")
    elif isinstance(Ks_spec, list) and Ks_spec:
        try:
            Ks = check_Ks(Ks_spec, kmin, "'Ks'")
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        Ks_spec = tuple(Ks_spec)
    else:
        raise ValueError(f"{where}: 'Ks' must be \"standard\" or a non-empty list of integers, received {Ks_spec!r}")
    return TableSpec(name, family, method, dict(params), Ks, Ks_spec)


def load_spec(path: str | os.PathLike) -> list[TableSpec]:
    """Parse and validate a whole spec file (``[[table]]`` entries, see docs/ARCHITECTURE.md).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Invalid TOML, no ``[[table]]`` entries, an unknown key, family/method, a bad name,
        params or Ks (above :data:`MAX_K`, below the target's smallest K, duplicates), or a
        duplicate name; the message names the file and the entry.
    ImportError
        A generator module cannot be imported (the message names the extra to install).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"spec file not found: {path}")
    doc = _load_toml(path)
    extra = set(doc) - {"table"}
    if extra:
        raise ValueError(f"{path}: unknown top-level key(s) {sorted(extra)}; expected only [[table]] entries")
    entries = doc.get("table")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: no [[table]] entries")
    specs = [_validate_entry(i, e, path) for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise ValueError(f"{path}: duplicate table name(s) {dups}")
    return specs
