"""The layout contract of docs/ARCHITECTURE.md, checked against the code (ast only, no imports).

* every module in the module map exists, and every module of the package is in the map;
* each module's API column in the map equals its ``__all__`` (as sets; — when it has none);
* every dotted ``aqpgen.x.y[.name]`` in a docstring or comment of aqpgen/ names a module or a
  name defined in it;
* no function or method in aqpgen/ is longer than 80 lines;
* no module is longer than 600 lines;
* no module imports another module's ``_private`` name;
* the top-level imports between aqpgen modules have no cycle;
* imports sit at module top, except the heavy optional dependencies ARCHITECTURE.md lists;
* nothing tracked in the repository cites the external contract ("SPEC §", "../shared").
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "aqpgen"
ARCH = ROOT / "docs" / "ARCHITECTURE.md"
MAX_LINES = 600
MAX_FUNCTION_LINES = 80



def _modules() -> dict[str, Path]:
    """{"aqpgen/x/y.py": path} of every module of the package."""
    return {p.relative_to(ROOT).as_posix(): p for p in sorted(PKG.rglob("*.py"))}


def _dotted(rel: str) -> str:
    name = rel.rsplit(".", 1)[0].replace("/", ".")
    return name.removesuffix(".__init__")


def _section(title: str) -> str:
    text = ARCH.read_text(encoding="utf-8")
    m = re.search(r"^## " + re.escape(title) + r".*?$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert m, f"docs/ARCHITECTURE.md has no section '## {title}'"
    return m.group(1)


def _map() -> list[str]:
    rows = re.findall(r"^\| `(aqpgen/[^`]+\.py)` \|", _section("Module map"), re.MULTILINE)
    assert rows, "no module rows in the module map"
    return rows


def _allowed_lazy() -> set[str]:
    names = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", _section("Heavy optional dependencies"), re.MULTILINE))
    assert {"cvxpy", "flint", "mpmath", "matplotlib", "h5py"} <= names
    return names


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _parents(tree) -> dict:
    out = {}
    for node in ast.walk(tree):
        for ch in ast.iter_child_nodes(node):
            out[ch] = node
    return out


def _in_function(node, parents) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return True
    return False


def _targets(rel: str, node, dotted: set[str]) -> list[tuple[str, str | None]]:
    """(module imported, name imported from it or None) for an aqpgen import."""
    cur = _dotted(rel)
    out = []
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names if a.name.split(".")[0] == "aqpgen"]
    if node.level:
        pkg = cur if rel.endswith("__init__.py") else cur.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            pkg = pkg.rsplit(".", 1)[0]
        base = pkg + ("." + node.module if node.module else "")
    else:
        base = node.module or ""
    if base.split(".")[0] != "aqpgen":
        return out
    for a in node.names:
        sub = f"{base}.{a.name}"
        out.append((sub, None) if sub in dotted else (base, a.name))
    return out


MODULES = _modules()
MAPPED = _map()


# ----------------------------------------------------------------------------- the module map
@pytest.mark.parametrize("rel", MAPPED)
def test_listed_module_exists(rel):
    assert (ROOT / rel).is_file(), f"docs/ARCHITECTURE.md lists {rel}, which does not exist"


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_module_is_listed(rel):
    assert rel in MAPPED, f"{rel} is missing from the module map of docs/ARCHITECTURE.md"


def test_map_has_no_duplicates():
    assert len(MAPPED) == len(set(MAPPED))


# ----------------------------------------------------------------------------- public names
def _api_column() -> dict[str, str]:
    """{"aqpgen/x/y.py": the API cell of its row} from the module map."""
    rows = re.findall(r"^\| `(aqpgen/[^`]+\.py)` \| .*? \| ([^|]*?) \|[ \t]*$", _section("Module map"),
                      re.MULTILINE)
    assert len(rows) == len(MAPPED), "a module row of the map does not have three cells"
    return dict(rows)


def _declared_all(tree: ast.Module) -> list[str] | None:
    """The module's ``__all__`` (a literal list or tuple of strings), or None without one."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = ast.literal_eval(node.value)
            assert isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            return list(value)
    return None


def _bindings(tree: ast.Module) -> dict[str, ast.AST]:
    """{name: node} of the names a module binds at top level (definitions, assignments,
    imports; also under a top-level ``if`` / ``try``)."""
    out: dict[str, ast.AST] = {}

    def visit(nodes):
        for n in nodes:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out[n.name] = n
            elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    out.update((x.id, n) for x in ast.walk(t) if isinstance(x, ast.Name))
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                out.update(((a.asname or a.name).split(".")[0], n) for a in n.names)
            elif isinstance(n, (ast.If, ast.Try)):
                visit(n.body)
                visit(n.orelse)
                for h in getattr(n, "handlers", []):
                    visit(h.body)
                visit(getattr(n, "finalbody", []))

    visit(tree.body)
    return out


@pytest.mark.parametrize("rel", MAPPED)
def test_api_column_is_all(rel):
    """The map's API column lists exactly the module's ``__all__`` (order free); a module
    without ``__all__`` shows —.  Packages follow the same rule: an ``__init__`` with
    ``__all__`` (runtime, integrations, audit, report) states the names it serves on purpose;
    one without (numerics, game, ...) shows —.  Every name of ``__all__`` is bound."""
    cell = _api_column()[rel].strip()
    tree = _tree(ROOT / rel)
    declared = _declared_all(tree)
    if declared is None:
        assert cell == "—", f"{rel} has no __all__, so its API column must be —, not {cell!r}"
        return
    listed = re.findall(r"`([^`]+)`", cell)
    rest = re.sub(r"`[^`]+`", "", cell).strip(" ,")
    assert not rest, f"{rel}: the API column has text besides the names: {rest!r}"
    assert len(listed) == len(set(listed)), f"{rel}: names listed twice in the API column"
    missing, extra = sorted(set(declared) - set(listed)), sorted(set(listed) - set(declared))
    assert not missing and not extra, \
        f"{rel}: API column vs __all__: missing {missing}, not in __all__ {extra}"
    unbound = sorted(set(declared) - set(_bindings(tree)))
    assert not unbound, f"{rel}: __all__ names what the module does not define: {unbound}"


def _dotted_modules() -> dict[str, Path]:
    return {_dotted(rel): path for rel, path in MODULES.items()}


def _schema_strings() -> set[str]:
    """String constants bound at module top (schema identifiers such as ``"aqpgen.table"``):
    a docstring may quote them; they are not module paths."""
    out = set()
    for path in MODULES.values():
        for node in _tree(path).body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                out.add(node.value.value)
    return out


def _resolves(name: str, mods: dict[str, Path], trees: dict) -> bool:
    """``aqpgen.a.b[.name[.attr]]`` is a module, a name bound in the longest module prefix (an
    imported name is followed to its module), or an attribute defined in a class body there."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        mod = ".".join(parts[:i])
        if mod not in mods:
            continue
        rest = parts[i:]
        if not rest:
            return True
        if mod not in trees:
            trees[mod] = _tree(mods[mod])
        node = _bindings(trees[mod]).get(rest[0])
        if node is None:
            return False
        if len(rest) == 1:
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aqpgen"):
            src = next(a.name for a in node.names if (a.asname or a.name) == rest[0])
            return _resolves(".".join([node.module, src, *rest[1:]]), mods, trees)
        if isinstance(node, ast.ClassDef) and len(rest) == 2:
            inner = _bindings(ast.Module(body=node.body, type_ignores=[]))
            return rest[1] in inner
        return False
    return False


def _docs_and_comments(path: Path, tree: ast.Module):
    """(line, text) of every comment and docstring of a module."""
    src = path.read_text(encoding="utf-8")
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield (node.body[0].lineno, doc)


_DOTTED = re.compile(r"(?<![\w./-])aqpgen(?:\.[A-Za-z_]\w*)+")


def _stale_names(modules: dict[str, Path]) -> list[str]:
    mods = {_dotted(rel): path for rel, path in modules.items()}
    schemas = _schema_strings()
    trees: dict = {}
    bad = []
    for rel, path in modules.items():
        for line, text in _docs_and_comments(path, _tree(path)):
            for m in _DOTTED.finditer(text):
                if m.group(0) not in schemas and not _resolves(m.group(0), mods, trees):
                    bad.append(f"{rel}:{line}: {m.group(0)}")
    return bad


def test_no_stale_dotted_names():
    """Every ``aqpgen.x.y[.name]`` in a docstring or comment of aqpgen/ resolves."""
    bad = _stale_names(MODULES)
    assert not bad, "dotted names that name nothing (moved or renamed?): " + "; ".join(bad)


def test_stale_name_detector(tmp_path):
    """The detector itself: a moved module, a missing name and a class attribute."""
    pkg = tmp_path / "aqpgen"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from aqpgen.sub.mod import Thing\n")
    (pkg / "sub" / "mod.py").write_text(
        '"""See aqpgen.sub.mod.Thing.run, aqpgen.sub.Thing.run and aqpgen.sub.mod.f."""\n'
        "# aqpgen.mod.Thing (moved), aqpgen.sub.mod.Thing.gone, aqpgen.sub.mod.g\n"
        "class Thing:\n    def run(self):\n        pass\n\n\ndef f():\n    pass\n")
    modules = {p.relative_to(tmp_path).as_posix(): p for p in sorted(pkg.rglob("*.py"))}
    bad = [b.split(": ", 1)[1] for b in _stale_names(modules)]
    assert bad == ["aqpgen.mod.Thing", "aqpgen.sub.mod.Thing.gone", "aqpgen.sub.mod.g"]


# ----------------------------------------------------------------------------- function length
def _long_functions(path: Path) -> list[str]:
    """``name (N lines)`` of every function or method (nested ones too) over the limit; the
    count runs from the ``def`` line to the last line of the body."""
    out = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                out.append(f"{node.name} (line {node.lineno}: {n} lines)")
    return out


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_function_length(rel):
    bad = _long_functions(MODULES[rel])
    assert not bad, f"{rel}: functions over {MAX_FUNCTION_LINES} lines: {bad}"


def test_function_length_counts_lines(tmp_path):
    p = tmp_path / "m.py"
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    p.write_text(f"def ok():\n{body}\n\ndef long():\n{body}    y = 1\n")
    assert _long_functions(p) == [f"long (line {MAX_FUNCTION_LINES + 3}: {MAX_FUNCTION_LINES + 1} lines)"]


# ----------------------------------------------------------------------------- structure
@pytest.mark.parametrize("rel", sorted(MODULES))
def test_module_length(rel):
    n = len(MODULES[rel].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{rel} has {n} lines (> {MAX_LINES})"


def _import_targets(rel: str) -> list[tuple[str, str | None]]:
    """(module, name or None) of every aqpgen import in ``rel``, anywhere in the file."""
    dotted = {_dotted(r) for r in MODULES}
    return [t for node in ast.walk(_tree(MODULES[rel])) if isinstance(node, (ast.Import, ast.ImportFrom))
            for t in _targets(rel, node, dotted)]


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_no_private_import(rel):
    bad = [f"{mod}.{name}" for mod, name in _import_targets(rel)
           if name and name.startswith("_") and not name.startswith("__") and mod != _dotted(rel)]
    assert not bad, f"{rel} imports private names {bad}"


@pytest.mark.parametrize("rel", sorted(r for r in MODULES if not r.endswith("__init__.py")))
def test_one_home_per_name(rel):
    """A module's ``__all__`` lists what it defines, not names it imports from another aqpgen
    module: a name has one home to import it from.  (A package ``__init__`` is a facade and may
    serve its modules' names: test_api_column_is_all.)"""
    tree = _tree(MODULES[rel])
    declared = set(_declared_all(tree) or ())
    imported = {a.asname or a.name: node.module for node in tree.body if isinstance(node, ast.ImportFrom)
                and node.module and node.module.startswith("aqpgen") for a in node.names}
    second = sorted(f"{n} (from {imported[n]})" for n in declared & set(imported))
    assert not second, f"{rel} re-exports {second}: import them from their own module instead"


def test_one_home_detector(tmp_path, monkeypatch):
    """The check above fails on a module that re-exports an imported name."""
    f = tmp_path / "m.py"
    f.write_text('from aqpgen.records import Check\n__all__ = ["Check", "f"]\ndef f():\n    pass\n')
    monkeypatch.setitem(MODULES, "aqpgen/m.py", f)
    with pytest.raises(AssertionError, match=r"re-exports \['Check \(from aqpgen.records\)'\]"):
        test_one_home_per_name("aqpgen/m.py")


@pytest.mark.parametrize("rel", sorted(MODULES))
def test_imports_at_module_top(rel):
    allowed = _allowed_lazy()
    tree = _tree(MODULES[rel])
    parents = _parents(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and _in_function(node, parents):
            if isinstance(node, ast.ImportFrom) and node.level:
                tops = {"aqpgen"}
            else:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                tops = {n.split(".")[0] for n in names}
            if not tops <= allowed:
                bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not bad, f"{rel} imports inside functions (not a heavy optional dependency): {bad}"


def test_no_import_cycle():
    """Top-level imports between aqpgen modules form a DAG (edges to the imported submodule, or
    to the package when a name is taken from its __init__)."""
    dotted = {_dotted(r): r for r in MODULES}
    graph: dict[str, set[str]] = {d: set() for d in dotted}
    for rel, path in MODULES.items():
        tree = _tree(path)
        parents = _parents(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not _in_function(node, parents):
                for mod, _name in _targets(rel, node, set(dotted)):
                    while mod and mod not in dotted:
                        mod = mod.rsplit(".", 1)[0] if "." in mod else ""
                    if mod and mod != _dotted(rel):
                        graph[_dotted(rel)].add(mod)
    cycles, state, stack = [], {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_cycle_detector_finds_a_cycle(tmp_path, monkeypatch):
    """The detector itself: a two-module cycle is reported."""
    pkg = tmp_path / "aqpgen"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from aqpgen import b\n")
    (pkg / "b.py").write_text("from aqpgen.a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES",
                        {p.relative_to(tmp_path).as_posix(): p for p in sorted(pkg.rglob("*.py"))})
    with pytest.raises(AssertionError, match="aqpgen.a -> aqpgen.b -> aqpgen.a"):
        test_no_import_cycle()


# ----------------------------------------------------------------------------- self-contained
def test_no_compiled_source():
    """The package is pure Python (a ``py3-none-any`` wheel): no C / C++ / Cython source in it."""
    bad = sorted(p.relative_to(ROOT).as_posix() for ext in ("*.c", "*.cc", "*.cpp", "*.pyx", "*.h")
                 for p in PKG.rglob(ext))
    assert not bad, f"compiled sources in aqpgen/: {bad}"


def test_no_reference_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    pat = re.compile(r"SPEC §|\.\./shared|shared/SPEC")
    bad = []
    for f in files:
        p = ROOT / f
        if p.suffix in (".h5", ".png") or not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        bad += [f"{f}:{i}" for i, line in enumerate(text.splitlines(), 1)
                if pat.search(line) and f != "tests/test_architecture.py"]
    assert not bad, f"references to the external contract: {bad}"


def test_math_sections_cited_exist():
    """Every "docs/MATH.md §N" cited in a tracked file is a section of docs/MATH.md."""
    heads = set(re.findall(r"^## §(\w+) ", (ROOT / "docs" / "MATH.md").read_text(encoding="utf-8"), re.MULTILINE))
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    bad = []
    for f in files:
        p = ROOT / f
        if p.suffix not in (".py", ".md", ".toml") or not p.is_file():
            continue
        for m in re.finditer(r"docs/MATH\.md §(\d+[a-z]?)((?:, §\d+[a-z]?)*)", p.read_text(encoding="utf-8")):
            for sec in [m.group(1), *re.findall(r"§(\d+[a-z]?)", m.group(2))]:
                if sec not in heads:
                    bad.append(f"{f}: §{sec}")
    assert not bad, f"cited sections missing from docs/MATH.md: {bad}"


# ----------------------------------------------------------------------------- stated boundaries
def _aqpgen_imports(rel: str) -> set[str]:
    """Every aqpgen module ``rel`` imports (anywhere in the file), as dotted names."""
    return {mod for mod, _ in _import_targets(rel)}


@pytest.mark.parametrize("rel", [r for r in sorted(MODULES) if r.startswith("aqpgen/audit/")])
def test_audit_is_independent(rel):
    """The audit recomputes with its own code: from aqpgen.numerics it may use only the precision
    context and the certifier (the documented exceptions), and nothing from aqpgen.generators."""
    allowed_numerics = {"aqpgen.numerics.precision", "aqpgen.numerics.certify"}
    bad = sorted(m for m in _aqpgen_imports(rel)
                 if m.startswith("aqpgen.generators") or m == "aqpgen.numerics"
                 or (m.startswith("aqpgen.numerics.") and m not in allowed_numerics))
    assert not bad, f"{rel} uses library code it is meant to check: {bad}"


@pytest.mark.parametrize("rel", [r for r in sorted(MODULES) if r.startswith("aqpgen/report/")])
def test_report_does_not_import_cli(rel):
    bad = sorted(m for m in _aqpgen_imports(rel) if m.startswith("aqpgen.cli"))
    text = MODULES[rel].read_text(encoding="utf-8")
    assert not bad, f"{rel} imports the CLI ({bad}): the report command passes its click group"
    assert "spec_from_file_location" not in text and "import bench" not in text, \
        f"{rel} loads a bench/ script (timings belong to `make bench`)"
