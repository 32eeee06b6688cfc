"""The "Choices" section: dependencies (found by parsing the sources) and design decisions.

Public names
------------
DEPENDENCIES                              -- (distribution, import name, reason) of each dependency.
choices_section(tables_dir, reach, f64)   -- docs/report.md's block: the dependency table and the
                                           measured numbers behind the choices.
choices_readme(tables_dir, reach, f64)    -- the README's block (the prose is docs/readme/choices.md):
                                           the numbers and a link to the dependency table.
dependencies_markdown()                   -- the dependency table alone.
choices_numbers(tables_dir, reach, f64)   -- the numbers alone.
"""

from __future__ import annotations

import ast
import math
import os
import re
from importlib import metadata

try:
    import tomllib
except ImportError:  # python < 3.11
    import tomli as tomllib

from aqpgen.build import build
from aqpgen.build.spec import load_spec
from aqpgen.report.markdown import md_table, ok_Ks, read_named, table_path
from aqpgen.report.sections import PRESET_TABLES

__all__ = ["DEPENDENCIES", "choices_numbers", "choices_readme", "choices_section", "dependencies_markdown"]

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Dependencies: (distribution, import name, reason).
DEPENDENCIES = (
    ("numpy", "numpy", ("dense tables, vectorised metrics and the runtime gather (the runtime's "
     "only hard dependency)")),
    ("h5py", "h5py", ("the HDF5 table files (read lazily by the runtime; flat layout, pinned "
     "object formats for reproducible bytes)")),
    ("click", "click", "the thin `aqpgen` command line"),
    ("mpmath", "mpmath", ("high-precision metrics and peers (digamma, refined sups) at explicit "
     "`dps`")),
    ("sympy", "sympy", ("exact symbolic oracles in the tests (falling factorials, Lambert W, "
     "Gram matrices) and parsing polynomial targets in the audit")),
    ("python-flint", "flint", ("arb ball arithmetic: the Remez solve, exact Bernstein↔Chebyshev "
     "conversions and the rigorous β certificates")),
    ("cvxpy", "cvxpy", "the AQP conic programs and the minimax LP oracle"),
    ("clarabel", "clarabel", ("interior-point solver behind cvxpy (QDLDL factorisation: 6–17× "
     "faster than its default here)")),
    ("scipy", "scipy", ("sparse matrices for the AQP programs, FFT / dense linear algebra in the "
     "Remez solve, Gauss–Legendre nodes for V1, the simulator's root finding")),
    ("matplotlib", "matplotlib", "the report's PNG figures (Agg backend, no metadata)"),
    ("threadpoolctl", "threadpoolctl", ("every BLAS on one thread while a row is solved (a row must "
     "not depend on the core count)")),
)


def _imports(root: str, sub: str) -> dict:
    """{top-level module: sorted file names} of every import in ``root/sub`` (parsed with ast)."""
    found: dict = {}
    base = os.path.join(root, sub)
    for dirpath, _dirs, files in os.walk(base):
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for mname in mods:
                    found.setdefault(mname.split(".")[0], set()).add(os.path.relpath(path, base))
    return {k: sorted(v) for k, v in found.items()}


def _declared_deps(root: str) -> dict:
    """{distribution (lower case): where pyproject.toml declares it} -- ``"required"`` for the
    light install's dependencies, ``"[extra]"`` for the first optional extra listing it."""
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        proj = tomllib.load(fh)["project"]
    out: dict = {}
    groups = [("required", proj.get("dependencies", []))] + [
        (f"[{k}]", v) for k, v in proj.get("optional-dependencies", {}).items()]
    for where, deps in groups:
        for d in deps:
            out.setdefault(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].strip().lower(), where)
    return out


def choices_section(tables_dir: str = "tables", reach: dict | None = None, f64: dict | None = None) -> str:
    """Markdown for docs/report.md: dependencies (reason, where imported, version) and the numbers
    behind the design decisions."""
    return dependencies_markdown() + "\n\n" + choices_numbers(tables_dir, reach, f64)


def choices_readme(tables_dir: str = "tables", reach: dict | None = None, f64: dict | None = None) -> str:
    """The README's shorter block: the numbers behind the choices and a link to the dependency
    table of docs/report.md (the README stays under 300 lines)."""
    return (choices_numbers(tables_dir, reach, f64) + "\n\nEvery dependency, with its reason, where "
            "it is declared and where it is imported: [docs/report.md](docs/report.md#choices).")


def dependencies_markdown() -> str:
    """Markdown table: each dependency, its version, where pyproject.toml declares it, why, and
    which modules import it."""
    root = _ROOT
    lib, tst = _imports(root, "aqpgen"), _imports(root, "tests")
    declared = _declared_deps(root)
    rows = []
    for dist, mod, why in DEPENDENCIES:
        try:
            ver = metadata.version(dist)
        except metadata.PackageNotFoundError:
            ver = "not installed"
        where = [f"`{f[:-3].replace(os.sep, '.')}`" for f in lib.get(mod, [])]
        nt = len(tst.get(mod, []))
        used = (", ".join(where) or "—") + (f"; {nt} test file{'s' if nt != 1 else ''}" if nt else "")
        decl = declared.get(dist.lower(), "not declared in pyproject.toml")
        rows.append([f"{dist} {ver}", decl, why, used])
    return ("**Dependencies** (imports found by parsing `aqpgen/` and `tests/`; versions installed "
            "in the build environment; declared in pyproject.toml as required or in an extra):\n\n"
            + md_table(["package", "declared", "why", "imported in"], rows, "---|---|---|---|"))


def choices_numbers(tables_dir: str = "tables", reach: dict | None = None, f64: dict | None = None) -> str:
    """Markdown bullets: the numbers behind the design choices, computed from the shipped tables."""
    facts = [f for f in (_f64_stat(f64), _cert_stat(tables_dir), _reach_stat(reach),
                         _uptodate_stat(tables_dir)) if f]
    return "**Numbers behind the choices** (computed from the shipped tables):\n\n" + "\n".join(
        f"* {f}" for f in facts)


def _f64_stat(f64: dict | None) -> str:
    if not f64 or not f64.get("f64_last_good"):
        return ""
    return (f"float64 minimax table: its certified β stays within 2·E*_K up to K = "
            f"{f64['f64_last_good']}" + (f" and exceeds it from K = {f64['f64_first_bad']} on."
                                         if f64.get("f64_first_bad") else "."))


def _cert_stat(tables_dir: str) -> str:
    worst, n = 0.0, 0
    for name in ("kl-minimax",) + PRESET_TABLES:
        if not os.path.exists(table_path(tables_dir, name)):
            continue
        t = read_named(tables_dir, name)
        for K in ok_Ks(t):
            m = t.metrics(K)
            b, bc = m.get("beta", math.nan), m.get("beta_cert", math.nan)
            if math.isfinite(b) and math.isfinite(bc) and b > 0:
                worst, n = max(worst, bc / b), n + 1
    return (f"certificates: over the {n} shipped KL rows the largest stored β̄/β is {worst:.5f}."
            if n else "")


def _reach_stat(reach: dict | None) -> str:
    if not reach:
        return ""
    parts = [f"`{n}` every K up to {r['contiguous']}" + (f" (largest ok {r['largest_ok']})"
             if r["largest_ok"] != r["contiguous"] else "") for n, r in reach.items()]
    return "reach of the shipped AQP presets: " + "; ".join(parts) + "."


def _uptodate_stat(tables_dir: str) -> str:
    spec_path = os.path.join(tables_dir, "tables.toml")
    if not os.path.exists(spec_path):
        return ""
    specs = load_spec(spec_path)
    cur = [s.name for s in specs if build.is_up_to_date(s, table_path(tables_dir, s.name))]
    stale = [s.name for s in specs if s.name not in cur]
    return (f"`make tables` up-to-date check: {len(cur)} of {len(specs)} spec entries current"
            + (f" (stale: {', '.join(stale)})" if stale else "") + ".")
