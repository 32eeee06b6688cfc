"""File-level audit and orchestration: container, manifest, target, rate; the row pool.

Public names
------------
audit_files(paths, ...)      -- audit several files with one process pool over (file, K) rows.
audit_file(path, ...)        -- audit one file.
manifest_findings(...)       -- sha256, size, content hash and per-row digests against MANIFEST.json.
rate_findings(fname, ...)    -- the fitted log-log slope of E*_K over K in [16, 1024].
default_minimax_path(path)   -- the minimax table beside an AQP file ("<prefix>-minimax.h5").
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from aqpgen.audit import exact
from aqpgen.audit.findings import TOLERANCES, FileAudit, Finding, file_finding
from aqpgen.audit.rowpoly import LOG_TARGET, AuditTarget, parse_audit_target
from aqpgen.audit.rows import RowTask, audit_row
from aqpgen.errors import TableFormatError
from aqpgen.records import as_int
from aqpgen.store import content, tablefile
from aqpgen.store.manifest import MANIFEST_NAME, load_manifest, row_digests

__all__ = ["RATE_RANGE", "audit_file", "audit_files", "default_minimax_path", "manifest_findings", "rate_findings"]

#: K range of the rate audit, here and in the report (the fit uses every ok row in it).
RATE_RANGE = (16, 1024)

_EXACT_METRICS = {"exact", "err_f64", "max_abs_c", "V_inf", "V1"}
_APPROX_METRICS = {"E_star", "beta", "beta_cert", "beta_f64", "V_inf", "V1", "max_abs_c", "eta_budget",
                   "log10_V_inf", "log10_V1", "log10_max_abs_c", "eta_achieved", "rho_budget",
                   "rho_achieved", "spread"}

_CHECK_ORDER = ["readable", "schema", "layout", "content_hash", "manifest", "manifest.sha256",
                "manifest.size", "manifest.content_hash", "manifest.rows", "target", "family", "method",
                "metrics.unaudited", "E_star.source", "rate"]


class _Prepared:
    """A file opened for audit: file-level findings, the row tasks and the header facts."""

    def __init__(self, path, findings, tasks, header):
        self.path = path
        self.findings = findings
        self.tasks = tasks
        self.header = header


def manifest_findings(path: str, fname: str, manifest: str | None, chash: str | None,
                      table=None) -> list[Finding]:
    """Findings of the file against its MANIFEST.json entry (default: the one beside the file)."""
    mpath = manifest
    if mpath is None:
        cand = os.path.join(os.path.dirname(os.path.abspath(path)), MANIFEST_NAME)
        if not os.path.exists(cand):
            return [file_finding(fname, "manifest", True,
                                 "no MANIFEST.json beside the file and none given (--manifest): not checked",
                                 tol="sha256")]
        mpath = cand
    try:
        files = load_manifest(mpath)["files"]
    except Exception as exc:  # noqa: BLE001 - a malformed manifest is a failure of this check
        return [file_finding(fname, "manifest", False, f"{mpath}: {exc}")]
    base = os.path.basename(path)
    if base not in files:
        return [file_finding(fname, "manifest", False, f"{base} is not listed in {mpath}")]
    want = files[base]
    sha = content.file_sha256(path)
    out = [file_finding(fname, "manifest.sha256", want.get("sha256") == sha,
                        "file sha256 matches the manifest" if want.get("sha256") == sha else
                        f"file sha256 {sha[:16]}... differs from manifest {str(want.get('sha256'))[:16]}... "
                        f"({mpath}): the file bytes changed", stored=want.get("sha256"), recomputed=sha,
                        tol="equal")]
    size = os.path.getsize(path)
    out.append(file_finding(fname, "manifest.size", want.get("size") == size,
                            f"size {size} matches" if want.get("size") == size else
                            f"file size {size} differs from manifest {want.get('size')}",
                            stored=want.get("size"), recomputed=size, tol="equal"))
    if chash is not None:
        same = want.get("content_hash") == chash
        out.append(file_finding(fname, "manifest.content_hash", same,
                                "manifest content hash matches the recomputed one" if same else
                                f"manifest content_hash {str(want.get('content_hash'))[:16]}... differs "
                                f"from the recomputed {chash[:16]}...", stored=want.get("content_hash"),
                                recomputed=chash, tol="equal"))
    rows = want.get("rows")
    if table is not None and isinstance(rows, dict):
        got = row_digests(table)
        bad = sorted(int(k) for k in set(got) | set(rows) if got.get(k) != rows.get(k))
        out.append(file_finding(fname, "manifest.rows", not bad,
                                f"all {len(got)} row digests match the manifest" if not bad else
                                f"{len(bad)} row(s) differ from the manifest's record", tol="equal"))
        for K in bad:
            out.append(Finding(fname, K, "manifest.row", rows.get(str(K)), got.get(str(K)), None,
                               "equal", False, f"K={K}: the row (values, strings or status) differs "
                               f"from the manifest's record ({mpath})"))
    return out


def default_minimax_path(path: str, target: AuditTarget = LOG_TARGET) -> str:
    """The minimax table beside an AQP file: "<prefix>-minimax.h5" where the AQP file is
    "<prefix>-aqp-...h5" ("kl-aqp-eta3.h5" -> "kl-minimax.h5", "pow0.5-aqp-rho1.h5" ->
    "pow0.5-minimax.h5"); "kl-minimax.h5" for a log-p file of another name."""
    d = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if "-aqp" in base:
        return os.path.join(d, base.split("-aqp")[0] + "-minimax.h5")
    return os.path.join(d, "kl-minimax.h5" if target.is_log else base[:-3] + "-minimax.h5")


def _params_exponent(params) -> tuple[str, Fraction | None] | None:
    """(key, exponent a or None for log) stated by the params, if any ("a", "alpha", "target")."""
    if "target" in params:
        return "target", parse_audit_target(str(params["target"])).a
    if "a" in params:
        return "a", Fraction(str(params["a"]))
    if "alpha" in params:
        return "alpha", Fraction(str(params["alpha"])) - 1
    return None


def _target_mismatch(t, T: AuditTarget) -> str:
    """Why the header target T disagrees with the params or the family ("" when consistent)."""
    try:
        stated = _params_exponent(t.params)
    except (ValueError, ZeroDivisionError) as exc:
        return f"params {t.params!r} do not parse: {exc}"
    if stated is not None and stated[1] != T.a:
        return f"header target {t.target!r} but params {stated[0]}={t.params[stated[0]]!r}"
    if t.family == "kl" and not T.is_log and stated is None:
        # the generators' family "kl" serves any target named by params["target"]
        return f"family 'kl' with target {t.target!r} but no params 'target' naming it"
    if t.family != "kl" and T.is_log:
        return f"family {t.family!r} with target {t.target!r}: log p tables have family 'kl'"
    return ""


def _approx_target(fname, t, F) -> AuditTarget | None:
    """The target of a minimax / AQP file, checked against its params and family.

    The header ``target`` is authoritative; params that state an exponent ("target", "a" or
    "alpha") must agree with it.  Family "kl" holds log p, or any target its params name (the
    generators' convention: ``params = {"target": "p^0.5"}``); another family must not hold log p.
    """
    try:
        T = parse_audit_target(t.target)
    except ValueError as exc:
        F.append(file_finding(fname, "target", False, f"cannot parse header target {t.target!r}: {exc}"))
        return None
    why = _target_mismatch(t, T)
    F.append(file_finding(fname, "target", not why, why or f"target {t.target!r} ({T.name}, "
                          f"rate exponent {T.rate:g})"))
    return None if why else T


def _prepare(path: str, manifest: str | None, minimax: str | None) -> _Prepared:
    """File-level checks and the row tasks of one file."""
    fname = os.path.basename(path)
    F: list[Finding] = []
    attrs = _readable(path, fname, F)
    if attrs is None or not _schema_ok(path, fname, attrs, F):
        return _Prepared(path, F, [], {})
    t = _checked_table(path, fname, manifest, F)
    if t is None:
        return _Prepared(path, F, [], {})
    header = {"name": t.name, "family": t.family, "method": t.method, "target": t.target,
              "params": t.params, "Ks": t.Ks}
    kind = _file_target(fname, t, F)
    if kind is None:
        return _Prepared(path, F, [], header)
    tc, T, known = kind
    if T is not None:
        header["audit_target"] = T
    T = T or LOG_TARGET
    unknown = sorted(set(t.metric_names) - known)
    if unknown:
        F.append(file_finding(fname, "metrics.unaudited", True,
                              f"stored metrics not recomputed (solver bookkeeping): {', '.join(unknown)}"))
    E_ref = _E_star_reference(path, fname, t, T, minimax, F)
    return _Prepared(path, F, _row_tasks(fname, t, tc, T, E_ref), header)


def _readable(path: str, fname: str, F: list) -> dict | None:
    """The root attributes of the file (finding "readable"), or None when it does not open."""
    import h5py

    if not os.path.exists(path):
        F.append(file_finding(fname, "readable", False, f"{path}: no such file"))
        return None
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as exc:
        F.append(file_finding(
            fname, "readable", False,
            f"{path}: not a readable HDF5 table ({os.path.getsize(path)} bytes; truncated, corrupted "
            f"or not HDF5): {exc}"))
        return None
    F.append(file_finding(fname, "readable", True, "HDF5 file opens"))
    return attrs


def _schema_ok(path: str, fname: str, attrs: dict, F: list) -> bool:
    """Finding "schema": the reader's own check (``tablefile.check_schema``), so the audit
    accepts exactly the versions ``read_table`` serves."""
    supported = f"{content.SCHEMA} v1..v{content.SCHEMA_VERSION}"
    try:
        schema, version = tablefile.check_schema(attrs)
    except TableFormatError as exc:
        schema = attrs.get("schema", "")
        schema = schema.decode("utf-8", "replace") if isinstance(schema, bytes) else str(schema)
        stored = f"{schema} v{attrs.get('schema_version', '(none)')}"
        F.append(file_finding(fname, "schema", False, f"{path}: {exc}", stored=stored,
                              recomputed=supported, tol="equal"))
        return False
    F.append(file_finding(fname, "schema", True, f"{schema} v{version}", tol="equal"))
    return True


def _checked_table(path: str, fname: str, manifest: str | None, F: list):
    """The table read without the reader's hash check (findings "layout"), its content hash
    recomputed here ("content_hash") and the manifest's record ("manifest.*"); None when the
    layout is unreadable."""
    try:
        t = tablefile.read_table(path, check_hash=False)
    except (TableFormatError, OSError, ValueError, KeyError, TypeError) as exc:
        F.append(file_finding(fname, "layout", False, f"{path}: {exc}"))
        return None
    F.append(file_finding(fname, "layout", True, f"{len(t.Ks)} rows, K {t.Ks[0] if t.Ks else '-'}.."
                          f"{t.Ks[-1] if t.Ks else '-'}"))
    stored_hash = t.content_hash
    chash = content.content_hash(t)
    F.append(file_finding(fname, "content_hash", chash == stored_hash,
                          "stored content hash equals the recomputed one" if chash == stored_hash else
                          f"{path}: stored content_hash {str(stored_hash)[:16]}... but the data hash to "
                          f"{chash[:16]}...: the file was modified after it was written",
                          stored=stored_hash, recomputed=chash, tol="equal"))
    F.extend(manifest_findings(path, fname, manifest, chash, t))
    return t


def _file_target(fname: str, t, F: list):
    """(exact target coefficients or None, AuditTarget or None, the metric names the audit
    recomputes) by the file's method, with finding "target" (or "method"); None when the rows
    cannot be audited."""
    if t.method == "ustat":
        try:
            tc = exact.trim(exact.parse_poly_target(t.target))
            pc = exact.trim(exact.params_coeffs(t.params))
            ok = tc == pc
            F.append(file_finding(fname, "target", ok, f"target {t.target!r} agrees with params" if ok else
                                  f"header target {t.target!r} parses to {[str(c) for c in tc]} but params "
                                  f"{t.params!r} give {[str(c) for c in pc]}"))
        except Exception as exc:  # noqa: BLE001 - isolate one part's failure
            F.append(file_finding(fname, "target", False, f"cannot parse header target {t.target!r}: {exc}"))
            return None
        return tc, None, _EXACT_METRICS
    if t.method in ("minimax", "aqp"):
        T = _approx_target(fname, t, F)
        return None if T is None else (None, T, _APPROX_METRICS)
    F.append(file_finding(fname, "method", False, f"unknown method {t.method!r} (family {t.family!r}): "
                          "the audit knows ustat, minimax and aqp"))
    return None


def _E_star_reference(path: str, fname: str, t, T: AuditTarget, minimax: str | None, F: list) -> dict:
    """{K: E*_K} from the minimax table of an AQP η file (finding "E_star.source"); {} otherwise."""
    if not (t.method == "aqp" and "eta" in t.params):
        return {}
    mm = minimax or default_minimax_path(path, T)
    try:
        mt = tablefile.read_table(mm)
        same = parse_audit_target(mt.target) == T
    except (OSError, TableFormatError, ValueError) as exc:
        F.append(file_finding(fname, "E_star.source", False,
                              f"cannot read the minimax table for E*_K ({mm}): {exc}; pass --minimax"))
        return {}
    F.append(file_finding(fname, "E_star.source", same, f"E*_K from {mm} (content hash checked)"
                          if same else f"{mm} has target {mt.target!r}, not {t.target!r}"))
    return {K: mt.metrics(K).get("E_star") for K in mt.Ks if mt.status(K) == "ok"} if same else {}


def _row_tasks(fname: str, t, tc, T: AuditTarget, E_ref: dict) -> list:
    """One RowTask per row of the table (the process-pool unit)."""
    tasks = []
    for K in t.Ks:
        r = t.row(K)
        tasks.append(RowTask(
            file=fname, family=t.family, method=t.method, params=dict(t.params),
            target_coeffs=None if tc is None else tuple((q.numerator, q.denominator) for q in tc),
            K=K, values=r.values, values_hp=r.values_hp, metrics=dict(r.metrics), status=r.status,
            E_star_ref=E_ref.get(K), target=T, target_text=t.target))
    return tasks


def rate_findings(fname: str, Ks, E, target: AuditTarget = LOG_TARGET) -> tuple[list[Finding], dict]:
    """Least-squares slope of log E*_K against log K over K in [16, 1024]; it must equal −r
    (r = 2 for log p, tolerance 0.01; r = 2(a+1) for p^a, tolerance 0.02; docs/MATH.md §4)."""
    Ks = np.asarray(Ks, dtype=float)
    E = np.asarray(E, dtype=float)
    sel = (Ks >= RATE_RANGE[0]) & (Ks <= RATE_RANGE[1]) & np.isfinite(E) & (E > 0)
    if sel.sum() < 2:
        return [file_finding(fname, "rate", True,
                             f"fewer than two K in [{RATE_RANGE[0]}, {RATE_RANGE[1]}]: rate not audited")], {}
    slope, _icpt = np.polyfit(np.log(Ks[sel]), np.log(E[sel]), 1)
    r = target.rate
    tol = TOLERANCES["slope" if target.is_log else "slope_pow"]
    ok = abs(slope + r) <= tol
    kmax = int(Ks[sel].max())
    kre = float(kmax ** r * E[Ks == kmax][0])
    info = {"slope": float(slope), "expected": -r, "K_range": [int(Ks[sel].min()), kmax],
            "KrE_at_Kmax": kre}
    if target.is_log:
        info["K2E_at_Kmax"] = kre
    span = f"K in [{int(Ks[sel].min())}, {kmax}]"
    return [Finding(fname, None, "rate", None, float(slope), abs(slope + r), f"|slope + {r:g}| <= {tol:g}", ok,
                    f"slope of log E*_K vs log K over {span} = {slope:.5f}; K^{r:g}·E*_K at K={kmax}: "
                    f"{kre:.10g}" if ok else
                    f"Θ(K^-{r:g}) rate fails: slope {slope:.5f} over {span} is not -{r:g} +- {tol:g}")], info


def audit_files(paths: Sequence[str], *, manifest: str | None = None, minimax: str | None = None,
                jobs: int = 2, progress=None) -> list[FileAudit]:
    """Audit several table files with one process pool over their (file, K) rows.

    Parameters
    ----------
    paths : sequence of path-like
        Table files (``.h5``).
    manifest : path-like, optional
        MANIFEST.json to check the files against (default: the one beside each file, if any).
    minimax : path-like, optional
        The minimax table supplying E*_K for AQP eta presets (default:
        :func:`default_minimax_path` of each AQP file).
    jobs : int
        Worker processes (1 = in this process).
    progress : callable, optional
        Called with the number of rows finished after each row (for a progress bar).

    Returns
    -------
    list of FileAudit
        One per path, in the given order.
    """
    jobs = as_int(jobs, "jobs", minimum=1)
    prepared = [_prepare(os.fspath(p), manifest, minimax) for p in paths]
    tasks = [t for pr in prepared for t in pr.tasks]
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].K)  # big rows first
    results: dict = {}
    if jobs == 1 or len(tasks) <= 1:
        for i in order:
            results[i] = audit_row(tasks[i])
            if progress:
                progress(1)
    else:
        with cf.ProcessPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(audit_row, tasks[i]): i for i in order}
            for fut in cf.as_completed(futs):
                results[futs[fut]] = fut.result()
                if progress:
                    progress(1)
    audits = []
    k = 0
    for pr in prepared:
        rows = [results[i] for i in range(k, k + len(pr.tasks))]
        k += len(pr.tasks)
        findings = list(pr.findings)
        rate = {}
        if pr.header.get("method") == "minimax" and rows:
            Ks = [K for (_, K, _, ex) in rows if "level" in ex]
            E = [ex["level"] for (_, K, _, ex) in rows if "level" in ex]
            rf, rate = rate_findings(os.path.basename(pr.path), Ks, E,
                                     pr.header.get("audit_target", LOG_TARGET))
            findings.extend(rf)
        findings.sort(key=lambda f: _CHECK_ORDER.index(f.check) if f.check in _CHECK_ORDER else 99)
        for _, _, fs, _ in sorted(rows, key=lambda r: r[1]):
            findings.extend(fs)
        audits.append(FileAudit(path=pr.path, name=pr.header.get("name", os.path.basename(pr.path)),
                                family=pr.header.get("family", "?"), method=pr.header.get("method", "?"),
                                findings=tuple(findings), rate=rate))
    return audits


def audit_file(path, *, manifest=None, minimax=None, jobs: int = 1) -> FileAudit:
    """Audit one table file (see :func:`audit_files`)."""
    return audit_files([path], manifest=manifest, minimax=minimax, jobs=jobs)[0]
