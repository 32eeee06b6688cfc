"""Independent audit of table files: recompute every claim from the stored values alone.

**This package is a deliberately independent implementation.**  It trusts neither a file's
metadata nor the solver that produced it, and it does not call :mod:`aqpgen.numerics` or
:mod:`aqpgen.generators` to recompute what it checks: β, V∞, V1, the extrema, the levelled error,
the rate fit, the exact U-statistic tables, the target evaluations (log p and p^a) and the
plug-in tables are all computed here with its own code (ball arithmetic, exact rationals), so
that a bug in the library cannot hide itself.  Two documented exceptions:

* the fresh certificate (``beta_cert.fresh``) comes from the library certifier
  :func:`aqpgen.numerics.certify.certify_beta`: a certificate is a proof, and what the audit can
  do is check every bound (stored or fresh) against its own recomputed sup — a bound below the
  sup or more than 1 % above it fails (docs/MATH.md §6); :func:`aqpgen.targets.parse_target`
  only builds the certifier's ``target=`` argument from the file's target text, and
  :func:`aqpgen.targets.format_exponent` writes an exponent's display name;
* :func:`aqpgen.numerics.precision.flint_prec` (a context manager that sets and restores
  python-flint's precision) and :mod:`aqpgen.store.tablefile` (reading the container, the
  content hash and the manifest format) are shared, as they define the file being audited.

``tests/test_architecture.py`` enforces this: no module here imports ``aqpgen.generators`` or
any of ``aqpgen.numerics`` other than ``precision`` and ``certify``.

Modules
-------
findings  -- tolerances (``TOLERANCES``, ``TOLERANCE_HELP``), ``Finding``, ``FileAudit`` and the
             comparison rules.
rowpoly   -- the row polynomials P(p) = p·g_c(p), W(p) = p·E[c²] in ball arithmetic, the target
             evaluations h(p) = p·g(p) for log p and p^a, grids and the extremum search.
exact     -- polynomial (U-statistic) tables in exact arithmetic.
rows      -- per-row audits (exact, minimax, AQP) — the unit of the process pool.
files     -- container, manifest, target and rate checks; ``audit_files`` / ``audit_file``.
text      -- ``summary_rows``, ``format_text``, ``to_json``, ``to_markdown``.

Checks, by name
---------------
File level: ``readable``, ``schema``, ``layout``, ``content_hash``, ``manifest`` (sha256, size,
content hash and per-row digests: ``manifest.row`` names each K whose row differs from the
manifest's record), ``target`` (the header's target parses and agrees with the family and the
params), ``metrics.unaudited`` (stored metrics the audit cannot recompute, listed so nothing is
silently passed), ``E_star.source`` (AQP eta presets), ``rate`` (minimax: fitted slope of
log E*_K over K in [16, 1024] equals −2 for log p (± 0.01) and −2(a+1) for p^a (± 0.02)).

Polynomial rows (method ``ustat``): ``exact.table``, ``exact.unbiased``, ``float64``, ``exact``,
``err_f64``, ``max_abs_c``, ``V_inf``, ``V1``.

Approximation rows (method ``minimax`` or ``aqp``, target log p or p^a): ``beta`` (the stored
grid maximum is a lower bound within 1 % of the recomputed sup), ``beta_cert`` and
``beta_cert.fresh`` (in [sup, 1.01·sup]), ``beta_f64``, ``V_inf``, ``V1``, ``max_abs_c``,
``float64``; minimax: ``equioscillation``, ``spread``, ``E_star``; AQP eta presets: ``E_star``,
``eta_budget``, ``budget``, ``eta_achieved``; rho presets: ``rho_budget``, ``budget``,
``rho_achieved``, ``beats_plugin`` (plug-in log(n/K) or (n/K)^a recomputed here); AQP tables
whose params say ``shape = "monotone"``: ``shape`` (the stored floats rise with n for log p and
p^a, a >= 0, fall for a < 0, with c_K <= 0 for log p and c >= 0 for p^a; exact comparison).
Rows whose status is not "ok" are reported (``status``) and not otherwise audited.
"""

from aqpgen.audit.files import audit_file, audit_files
from aqpgen.audit.findings import (
    FRESH_CERT_SLACK,
    TOLERANCE_HELP,
    TOLERANCES,
    FileAudit,
    Finding,
)
from aqpgen.audit.rowpoly import AuditTarget, parse_audit_target
from aqpgen.audit.text import format_text, summary_rows, to_json, to_markdown

__all__ = [
    "FRESH_CERT_SLACK",
    "TOLERANCES",
    "TOLERANCE_HELP",
    "AuditTarget",
    "FileAudit",
    "Finding",
    "audit_file",
    "audit_files",
    "format_text",
    "parse_audit_target",
    "summary_rows",
    "to_json",
    "to_markdown",
]
