"""Declared inputs of a table: read from the build directory, hashed, and the order they impose.

Public names
------------
declared(spec, mod)        -- ``{key: TableInput}``: the generator's ``declared_inputs(params)``
                              (``{}`` for a generator that declares none).
InputError                 -- an input table is missing, unreadable, or has no usable value at K.
InputTables                -- the input tables of one build directory, each read (content hash
                              checked) once; ``hashes(spec, mod)``, ``row_inputs(spec, mod)``,
                              ``replace(table)`` after a table is rebuilt.
order_by_inputs(specs, mods) -- spec-file order, each table after the tables it reads
                              (ValueError on a cycle).

The rule
--------
A generator reads no files.  One that needs a number from another table declares it:
``declared_inputs(params) -> {key: TableInput(table, metric)}`` (the AQP eta presets: ``E_star``
from the minimax table of their target).  The build reads ``<out_dir>/<table>.h5`` (the same
directory it writes; content hash checked), passes ``inputs={key: metrics(K)[metric]}`` to
``build_K`` for each row K, and puts ``{table: content_hash}`` into the dependent table's
``inputs_hash`` (``aqpgen.build.build.inputs_hash``): a rebuilt input with other content makes its
dependents stale.  There is no fallback: a missing or unreadable input table, or one without an
``ok`` row at K, stops the build of the dependent table with an InputError naming both tables
and K (build the input first: ``aqpgen build --only <table>``).
"""

from __future__ import annotations

import math
import os

from aqpgen.errors import AqpgenError, TableFormatError
from aqpgen.records import STATUS_OK, TableInput
from aqpgen.store.content import TableData
from aqpgen.store.tablefile import read_table

__all__ = ["InputError", "InputTables", "declared", "order_by_inputs"]


class InputError(AqpgenError, RuntimeError):
    """A declared input cannot be read: the message names the dependent table, the input table
    and, where it applies, K."""


def declared(spec, mod) -> dict[str, TableInput]:
    """The declared inputs of ``spec``'s rows (``mod.declared_inputs(params)``; ``{}`` if none)."""
    fn = getattr(mod, "declared_inputs", None)
    if fn is None:
        return {}
    out = dict(fn(dict(spec.params)))
    for key, inp in out.items():
        if not isinstance(inp, TableInput):
            raise TypeError(f"{mod.__name__}.declared_inputs: {key!r} must be a TableInput, "
                            f"received {inp!r}")
    return out


class InputTables:
    """The input tables of the build directory ``out_dir``, read once each."""

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = os.fspath(out_dir)
        self._tables: dict[str, TableData] = {}

    def table(self, name: str, needed_by: str) -> TableData:
        """Table ``name`` of the directory (content hash checked); InputError when it cannot be read."""
        if name not in self._tables:
            path = os.path.join(self.out_dir, f"{name}.h5")
            if not os.path.isfile(path):
                raise InputError(f"table {needed_by!r} reads table {name!r}, and {path} does not "
                                 f"exist: build it first (aqpgen build --only {name})")
            try:
                self._tables[name] = read_table(path, check_hash=True)
            except (TableFormatError, OSError) as e:
                raise InputError(f"table {needed_by!r} reads table {name!r}, and {path} cannot be "
                                 f"read: {e}") from e
        return self._tables[name]

    def replace(self, table: TableData) -> None:
        """Use ``table`` (just written) for its name from now on."""
        self._tables[table.name] = table

    def hashes(self, spec, mod) -> dict[str, str]:
        """``{input table: content hash}`` of ``spec`` (``{}`` when it declares no input)."""
        return {inp.table: self.table(inp.table, spec.name).content_hash
                for inp in declared(spec, mod).values()}

    def row_inputs(self, spec, mod) -> dict[int, dict[str, float]]:
        """``{K: {key: value}}`` for every K of ``spec`` (``{}`` when it declares no input)."""
        decl = declared(spec, mod)
        if not decl:
            return {}
        out: dict[int, dict[str, float]] = {K: {} for K in spec.Ks}
        for key, inp in decl.items():
            t = self.table(inp.table, spec.name)
            for K in spec.Ks:
                v = t.metrics(K).get(inp.metric, math.nan) if K in t.Ks and t.status(K) == STATUS_OK else None
                if v is None or not math.isfinite(v):
                    raise InputError(f"table {spec.name!r} at K={K} reads the metric {inp.metric!r} "
                                     f"of table {inp.table!r}, which has no usable value there "
                                     f"({'no ok row' if v is None else v})")
                out[K][key] = float(v)
        return out


def order_by_inputs(specs: list, mods: dict) -> list:
    """``specs`` in spec-file order, except that a table comes after every table of ``specs`` it
    reads (a depth-first topological order; ValueError naming the tables on a cycle)."""
    by_name = {s.name: s for s in specs}
    out, state = [], {}

    def visit(s, path):
        if state.get(s.name) == "done":
            return
        if state.get(s.name) == "open":
            raise ValueError(f"the declared inputs form a cycle: {' -> '.join([*path, s.name])}")
        state[s.name] = "open"
        for inp in declared(s, mods[s.name]).values():
            if inp.table in by_name:
                visit(by_name[inp.table], [*path, s.name])
        state[s.name] = "done"
        out.append(s)

    for s in specs:
        visit(s, [])
    return out
