"""``docs/report.md``, its figures and the README: generated from the tables by code.

Modules
-------
markdown       -- Markdown formatting and table-reading helpers.
sections       -- sections computed from the tables and the library (tables, usage, rate,
                  float64 bias, preset reach, compare, frontier points).
simulation     -- the toy alignment game's tables and figures.
alpha          -- the power targets p^0.5, p^-0.5: rate audit, compare, frontier, α-game summary
                  (README block ``alpha-results``, one report section per target).
choices        -- dependencies (parsed from the sources) and the numbers behind the design choices.
shape          -- what the shape constraint costs (docs/MATH.md §5b): report section, figure, the
                  the ``aqpgen show`` line.
readme         -- README assembly from docs/readme/*.md fragments (``README_ORDER``) with the
                  generated blocks filled; the CLI table from a click group passed in.
write          -- ``build_sections`` / ``write_report``; ``ReportError`` when a part fails.
figures        -- simulation figures and the deterministic PNG writer (``save_png``, ``pyplot``).
audit_figures  -- bias curves, β against K, K²·E*_K, the frontier.

This package does not import :mod:`aqpgen.cli` (the CLI imports it) nor the ``bench/`` scripts.
"""

from aqpgen.report.readme import (
    README_ORDER,
    assemble_readme,
    extract_generated,
    write_readme,
)
from aqpgen.report.write import (
    README_BLOCKS,
    ReportError,
    ReportResult,
    build_sections,
    write_report,
)

__all__ = [
    "README_BLOCKS",
    "README_ORDER",
    "ReportError",
    "ReportResult",
    "assemble_readme",
    "build_sections",
    "extract_generated",
    "write_readme",
    "write_report",
]
