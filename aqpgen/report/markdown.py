"""Small Markdown and table-reading helpers shared by the report modules.

Public names
------------
fmt(x, digits)            -- general format, "n/a" for None / NaN.
sci(x, digits)            -- scientific format, "n/a" for None / non-finite.
md_table(header, rows)    -- a Markdown table (a bare "|" in a cell is escaped).
short(s, n)               -- one line, at most n characters.
K_span(Ks)                -- "2–1024" or "none".
K_list(Ks)                -- runs of consecutive standard-grid K compressed: "117, 139–1024 (128 values)".
table_path(dir, name)     -- ``dir/name.h5``.
read_named(dir, name)     -- the TableData of ``dir/name.h5`` (FileNotFoundError naming it).
ok_Ks(table)              -- the K of the rows whose status is "ok".
limit_markdown(ra, label) -- "**lim <label> = C** (N digits justified: ...)" of a ``RateAudit``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

from aqpgen.records import standard_Ks
from aqpgen.store import tablefile

__all__ = ["K_list", "K_span", "fmt", "limit_markdown", "md_table", "ok_Ks", "read_named", "sci", "short",
           "table_path"]


def fmt(x, digits: int = 4) -> str:
    """``x`` with ``digits`` significant digits ("n/a" for None or NaN; str() for non-numbers)."""
    if x is None:
        return "n/a"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return "n/a"
    return f"{x:.{digits}g}"


def sci(x, digits: int = 3) -> str:
    """``x`` in scientific notation ("n/a" for None or non-finite)."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{float(x):.{digits - 1}e}"


def md_table(header: Sequence[str], rows: Sequence[Sequence], align: str | None = None) -> str:
    """A Markdown table; ``align`` is the separator row without its leading "|"."""
    def cell(c):  # a bare "|" (as in max|c|) would split the cell; escape it once
        return re.sub(r"(?<!\\)\|", r"\\|", str(c))

    align = align or ("---|" + "---:|" * (len(header) - 1))
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + align]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def short(s: str, n: int = 150) -> str:
    """``s`` on one line, cut to ``n`` characters with an ellipsis."""
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def K_span(Ks: Sequence[int]) -> str:
    """"first–last" of a K list, or "none"."""
    return f"{Ks[0]}–{Ks[-1]}" if Ks else "none"


def _consecutive(a: int, b: int, grid: Sequence[int]) -> bool:
    return a in grid and b in grid and grid.index(b) == grid.index(a) + 1


def K_list(Ks: Sequence[int], n: int = 8) -> str:
    """"—", "80, 97, 113" or runs of neighbours on the standard grid compressed:
    "117, 137, 139–1024 (128 values)"."""
    if not Ks:
        return "—"
    grid = standard_Ks(2)
    runs, start = [], Ks[0]
    for a, b in zip(Ks, [*list(Ks[1:]), None]):
        if b is None or not _consecutive(a, b, grid):
            runs.append(str(start) if start == a else f"{start}–{a}")
            if b is not None:
                start = b
    text = ", ".join(runs[:n]) + (f", … (+{len(runs) - n} more)" if len(runs) > n else "")
    return text + (f" ({len(Ks)} values)" if len(Ks) > 3 else "")


def table_path(tables_dir, name: str) -> str:
    """The file of table ``name`` in ``tables_dir``."""
    return os.path.join(os.fspath(tables_dir), f"{name}.h5")


def read_named(tables_dir, name: str):
    """Read table ``name`` from ``tables_dir`` (FileNotFoundError naming the table if absent)."""
    path = table_path(tables_dir, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"table {name!r} not found in {tables_dir}")
    return tablefile.read_table(path)


def ok_Ks(t) -> list:
    """The K whose row status is "ok" (TableData or runtime Table)."""
    st = t.status
    return [K for K in t.Ks if (st(K) if callable(st) else st[K]) == "ok"]


def limit_markdown(ra, label: str) -> str:
    """The extrapolated limit of a ``minimax.RateAudit`` ``ra`` with its justified digits and the
    two parts of its error (``label``: e.g. "K²·E*_K")."""
    return (f"**lim {label} = {ra.limit}** ({ra.limit_digits} digits justified: Richardson "
            f"extrapolation in 1/K² through the largest K, its own error estimate "
            f"{ra.extrap_err:.1e} plus {ra.input_err:.1e} from the inputs' accuracy — the Remez "
            f"spread and float64 rounding of E*_K, times the extrapolation's weights)")
