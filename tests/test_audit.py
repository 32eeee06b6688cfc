"""Tests of the independent audit (aqpgen.audit, ``aqpgen audit``).

Oracles: the exact U-statistic tables (power), and for the KL path the digamma table, whose
weighted bias has the closed form e(p) = p·sum_{j>=K} (1-p)^j / j = p·(-log p - sum_{j<K}
(1-p)^j/j), and whose V_inf / V1 are computed here with mpmath from direct binomial sums —
none of them through the audit's own polynomial machinery.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

import h5py
import mpmath
import numpy as np
import pytest
from click.testing import CliRunner

from aqpgen import audit
from aqpgen.audit import exact as audit_exact
from aqpgen.audit import files as audit_files_mod
from aqpgen.cli import main
from aqpgen.generators import peers, power
from aqpgen.store import content, tablefile
from aqpgen.store.manifest import update_manifest

KL_KS = (4, 8, 12)


# ------------------------------------------------------------------------------- builders
def _power_table(path, params=None, Ks=(3, 4, 7, 16)):
    params = params or {"m": 2}
    res = [power.build_K(K, params) for K in Ks]
    t = content.make_table(name=os.path.basename(path)[:-3], family="power",
                             target=power.target_name(params), method="ustat", params=params,
                             provenance={"test": True}, results=res)
    return tablefile.write_table(path, t)


def _digamma_oracle(K):
    """(beta, V_inf, V1) of the digamma table with mpmath (closed-form bias, direct sums)."""
    c = [mpmath.mpf(x) for x in peers.peer_table("digamma", K)]  # the stored float64 values
    with mpmath.workdps(30):
        def bias(p):
            p = mpmath.mpf(p)
            return p * (-mpmath.log(p) - mpmath.fsum((1 - p) ** j / j for j in range(1, K)))

        def pvar(p):
            p = mpmath.mpf(p)
            b = [mpmath.binomial(K - 1, m) * p ** m * (1 - p) ** (K - 1 - m) for m in range(K)]
            g = mpmath.fsum(bi * ci for bi, ci in zip(b, c))
            return p * mpmath.fsum(bi * (ci - g) ** 2 for bi, ci in zip(b, c))

        def sup(f):
            grid = [mpmath.mpf(i) / 400 for i in range(1, 401)]
            i = max(range(len(grid)), key=lambda j: abs(f(grid[j])))
            lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
            for _ in range(60):  # golden section on |f| (unimodal within the bracket)
                a = lo + (hi - lo) * mpmath.mpf("0.381966")
                b = lo + (hi - lo) * mpmath.mpf("0.618034")
                if abs(f(a)) < abs(f(b)):
                    lo = a
                else:
                    hi = b
            return float(abs(f((lo + hi) / 2)))

        V1 = mpmath.quad(pvar, [0, 1])
        return sup(bias), sup(pvar), float(V1)


@pytest.fixture(scope="module")
def digamma_metrics():
    return {K: _digamma_oracle(K) for K in KL_KS}


def _kl_table(path, metrics, *, params=None, tweak=None, name="kl-test"):
    """A KL 'aqp' table holding the digamma values and the oracle metrics."""
    from aqpgen.records import KResult

    res = []
    for K in KL_KS:
        beta, vinf, v1 = metrics[K]
        v = peers.peer_table("digamma", K).copy()
        m = {"beta": beta, "beta_cert": beta * 1.004, "V_inf": vinf, "V1": v1,
             "max_abs_c": float(np.max(np.abs(v)))}
        if tweak:
            v, m = tweak(K, v, m)
        res.append(KResult(K, v, None, m, "ok", {"solver": "oracle"}))
    t = content.make_table(name=name, family="kl", target="log p", method="aqp",
                             params=params or {}, provenance={"test": True}, results=res)
    return tablefile.write_table(path, t)


def _failed(a, check=None):
    return [f for f in a.failures if check is None or f.check == check]


# ------------------------------------------------------------------------------- power
def test_power_table_passes(tmp_path):
    p = tmp_path / "power-m2.h5"
    _power_table(p)
    a = audit.audit_file(p)
    assert a.ok, audit.format_text([a])
    checks = {f.check for f in a.findings}
    assert {"content_hash", "exact.table", "exact.unbiased", "float64", "V_inf", "V1"} <= checks


def test_power_general_polynomial(tmp_path):
    p = tmp_path / "power-poly.h5"
    _power_table(p, {"coeffs": ["1/3", "0", "-1"]}, Ks=(3, 5))
    assert audit.audit_file(p).ok


def test_mean_poly_oracle_detects_one_ulp():
    from fractions import Fraction

    exact = audit_exact.exact_ustat_table([Fraction(0), Fraction(0), Fraction(1)], 9)
    assert audit_exact.mean_poly_equals(exact, [Fraction(0), Fraction(0), Fraction(1)])[0]
    bad = list(exact)
    bad[4] += Fraction(1, 2**60)
    ok, why = audit_exact.mean_poly_equals(bad, [Fraction(0), Fraction(0), Fraction(1)])
    assert not ok and "forward differences" in why


def _rewrite(path, fn):
    """Re-write a table with ``fn(K, row) -> row`` applied, hash recomputed (self-consistent)."""
    t = tablefile.read_table(path)
    rows = {K: fn(K, r) for K, r in t.rows.items()}
    tablefile.write_table(path, replace(t, rows=rows, content_hash=None))


def test_changed_coefficient_hash_left_alone(tmp_path):
    p = tmp_path / "power-m2.h5"
    _power_table(p)
    t = tablefile.read_table(p)
    with h5py.File(p, "r+") as f:  # flip one stored float64 of K=7 in place
        off = int(f["offsets"][list(t.Ks).index(7)])
        v = f["values"][()]
        v[off + 3] = np.nextafter(v[off + 3], 2.0)
        f["values"][...] = v
    a = audit.audit_file(p)
    assert not a.ok
    assert _failed(a, "content_hash")
    bad = _failed(a, "float64")
    assert [f.K for f in bad] == [7] and "K=7" in bad[0].detail and "n=4" in bad[0].detail


def test_changed_coefficient_hash_recomputed(tmp_path):
    p = tmp_path / "power-m3.h5"
    _power_table(p, {"m": 3}, Ks=(4, 5, 9))

    def tamper(K, r):
        if K != 5:
            return r
        v = r.values.copy()
        v[2] += 1e-9
        hp = list(r.values_hp)
        hp[2] = "1/7"
        return r._replace(values=v, values_hp=tuple(hp))

    _rewrite(p, tamper)
    a = audit.audit_file(p)
    assert not _failed(a, "content_hash")  # the file is self-consistent ...
    names = {(f.K, f.check) for f in a.failures}  # ... but the mathematics is not
    assert {(5, "exact.table"), (5, "exact.unbiased"), (5, "float64")} <= names
    assert all(f.K == 5 for f in a.failures)


def test_changed_metric_attribute(tmp_path):
    p = tmp_path / "power-m2.h5"
    _power_table(p)
    _rewrite(p, lambda K, r: r._replace(metrics={**r.metrics, "V1": r.metrics["V1"] * 1.001})
             if K == 4 else r)
    a = audit.audit_file(p)
    bad = _failed(a)
    assert [(f.K, f.check) for f in bad] == [(4, "V1")]
    assert "stored V1" in bad[0].detail and "K=4" in bad[0].detail


def test_truncated_random_and_future_schema(tmp_path):
    p = tmp_path / "power-m2.h5"
    _power_table(p)
    data = p.read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 2])
    rnd = tmp_path / "random.h5"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    fut = tmp_path / "future.h5"
    fut.write_bytes(data)
    with h5py.File(fut, "r+") as f:
        del f.attrs["schema_version"]
        f.attrs.create("schema_version", np.int64(2))
    audits = audit.audit_files([trunc, rnd, fut], jobs=1)
    assert [(f.check) for f in audits[0].failures] == ["readable"]
    assert "truncated" in audits[0].failures[0].detail
    assert [(f.check) for f in audits[1].failures] == ["readable"]
    assert [(f.check) for f in audits[2].failures] == ["schema"]
    assert "newer" in audits[2].failures[0].detail


def test_manifest_sha256(tmp_path):
    p = tmp_path / "power-m2.h5"
    _power_table(p)
    update_manifest(tmp_path)
    assert audit.audit_file(p).ok
    _rewrite(p, lambda K, r: r._replace(solver={**r.solver, "note": "edited"}) if K == 3 else r)
    a = audit.audit_file(p)
    assert {f.check for f in a.failures} >= {"manifest.sha256", "manifest.content_hash"}


# ------------------------------------------------------------------------------- KL
def test_kl_metrics_against_oracle(tmp_path, digamma_metrics):
    p = tmp_path / "kl-test.h5"
    _kl_table(p, digamma_metrics)
    a = audit.audit_file(p, jobs=1)
    assert a.ok, audit.format_text([a])
    for f in a.findings:
        if f.check in ("beta", "V_inf", "V1"):
            assert f.rel_diff < 1e-8, f


def test_kl_changed_coefficient_self_consistent(tmp_path, digamma_metrics):
    p = tmp_path / "kl-test.h5"

    def tweak(K, v, m):
        if K == 8:
            v = v.copy()
            v[2] += 1e-4
        return v, m

    _kl_table(p, digamma_metrics, tweak=tweak)
    a = audit.audit_file(p, jobs=1)
    assert not _failed(a, "content_hash")
    assert {f.K for f in a.failures} == {8}
    assert {"beta", "V_inf", "V1"} & {f.check for f in a.failures}


def test_kl_invalid_certificate(tmp_path, digamma_metrics):
    p = tmp_path / "kl-test.h5"

    def tweak(K, v, m):
        if K == 12:
            m = {**m, "beta_cert": m["beta"] * 0.999}  # below the true sup: not a bound
        if K == 4:
            m = {**m, "beta_cert": m["beta"] * 1.02}  # valid but not within 1 %
        return v, m

    _kl_table(p, digamma_metrics, tweak=tweak)
    a = audit.audit_file(p, jobs=1)
    bad = {(f.K, f.check): f for f in a.failures}
    assert set(bad) == {(12, "beta_cert"), (4, "beta_cert")}
    assert "invalid" in bad[(12, "beta_cert")].detail


def test_eta_budget(tmp_path, digamma_metrics):
    """AQP eta preset: E*_K from a (metrics-only) minimax file; the budget rule is applied."""
    from aqpgen.records import KResult

    mm = tmp_path / "kl-minimax.h5"
    E = {K: digamma_metrics[K][0] / 2 for K in KL_KS}  # pretend E*_K = beta/2
    res = [KResult(K, np.zeros(K), None, {"E_star": E[K]}, "ok", {}) for K in KL_KS]
    tablefile.write_table(mm, content.make_table(name="kl-minimax", family="kl", target="log p",
                                                   method="minimax", params={}, provenance={},
                                                   results=res))

    def eta_metrics(eta):
        def tweak(K, v, m):
            return v, {**m, "E_star": E[K], "eta_budget": (1 + eta) * E[K],
                       "eta_achieved": m["beta"] / E[K] - 1}
        return tweak

    ok = tmp_path / "kl-aqp-eta3.h5"
    _kl_table(ok, digamma_metrics, params={"eta": 3, "objective": "Vinf"}, tweak=eta_metrics(3))
    a = audit.audit_file(ok, minimax=str(mm))
    assert a.ok, audit.format_text([a])
    bad = tmp_path / "kl-aqp-eta05.h5"
    _kl_table(bad, digamma_metrics, params={"eta": 0.5, "objective": "Vinf"}, tweak=eta_metrics(0.5))
    a = audit.audit_file(bad, minimax=str(mm))
    assert {(f.K, f.check) for f in a.failures} == {(K, "budget") for K in KL_KS}


# ------------------------------------------------------------------------------- CLI
def test_cli_exit_code_reports(tmp_path):
    good = tmp_path / "power-m2.h5"
    _power_table(good, Ks=(3, 4))
    bad = tmp_path / "power-m1.h5"
    _power_table(bad, {"m": 1}, Ks=(2, 3))
    _rewrite(bad, lambda K, r: r._replace(metrics={**r.metrics, "V_inf": 1.0}) if K == 3 else r)
    runner = CliRunner()
    r = runner.invoke(main, ["audit", str(good), "-q", "--jobs", "1"])
    assert r.exit_code == 0, r.output
    assert "AUDIT PASSED" in r.output
    js, md = tmp_path / "a.json", tmp_path / "a.md"
    r = runner.invoke(main, ["audit", str(good), str(bad), "-q", "--json", str(js), "--markdown", str(md)])
    assert r.exit_code == 1
    assert "K=3" in r.output and "V_inf" in r.output and "AUDIT FAILED" in r.output
    doc = json.loads(js.read_text())
    assert doc["ok"] is False and doc["files"][0]["ok"] and not doc["files"][1]["ok"]
    assert "V_inf" in md.read_text() and "FAILED" in md.read_text()
    r = runner.invoke(main, ["audit", "--help"])
    assert "1e-6" in r.output and "1.01" in r.output


# ------------------------------------------------------------------------------- minimax
def _minimax_file(path, Ks=(2, 3, 5, 8, 16, 20), tweak=None):
    from aqpgen.generators import minimax
    from aqpgen.numerics import metrics
    from aqpgen.records import KResult

    res = []
    for K in Ks:
        hp, f64, r = minimax.minimax_table(K)
        m = metrics.kl_metrics(K, f64, hp)
        m.update(E_star=float(r.E), spread=float(r.spread))
        if tweak:
            hp, f64, m = tweak(K, hp, f64, m)
        res.append(KResult(K, np.asarray(f64), tuple(hp), m, "ok", {"solver": "remez"}))
    t = content.make_table(name="kl-minimax", family="kl", target="log p", method="minimax",
                             params={}, provenance={"test": True}, results=res)
    return tablefile.write_table(path, t)


def test_minimax_equioscillation_and_tamper(tmp_path):
    good = tmp_path / "good" / "kl-minimax.h5"
    _minimax_file(good)
    a = audit.audit_file(good)
    assert a.ok, audit.format_text([a])
    eq = [f for f in a.findings if f.check == "equioscillation"]
    assert len(eq) == 6 and all(f.ok for f in eq)

    def tamper(K, hp, f64, m):  # one high-precision coefficient changed in its 12th digit
        if K == 16:
            hp = list(hp)
            x = Fraction(hp[7])
            hp[7] = str(float(x * (1 + Fraction(1, 10**11))))
            f64 = np.asarray(f64).copy()
            f64[7] = float(Fraction(hp[7]))
        return hp, f64, m

    from fractions import Fraction

    bad = tmp_path / "bad" / "kl-minimax.h5"
    _minimax_file(bad, tweak=tamper)
    a = audit.audit_file(bad)
    assert {f.K for f in a.failures} == {16}
    assert {"spread", "E_star"} & {f.check for f in a.failures}


@pytest.mark.parametrize("name", ["kl-aqp-rho1", "kl-aqp-eta15"])
def test_shipped_aqp_row_tampered_by_1e6_is_named(tmp_path, name):
    """A shipped AQP row whose coefficient moved by 1e-6 (relative), written back with a
    recomputed, self-consistent hash, fails the audit at that K (through V1/V∞ recomputation)."""
    src = os.path.join(os.path.dirname(__file__), os.pardir, "tables", name + ".h5")
    if not os.path.exists(src):
        pytest.skip(f"shipped table {name} not present")
    t = tablefile.read_table(src)
    keep = (8, 16, 24)
    rows = {K: t.rows[K] for K in keep}
    small = replace(t, Ks=keep, rows=rows, content_hash=None)
    good = tmp_path / "good" / (name + ".h5")
    good.parent.mkdir()
    tablefile.write_table(good, small)
    mm = os.path.join(os.path.dirname(src), "kl-minimax.h5")
    assert audit.audit_file(good, minimax=mm).ok
    v = rows[16].values.copy()
    v[5] *= 1 + 1e-6
    rows[16] = rows[16]._replace(values=v)
    bad = tmp_path / (name + ".h5")
    tablefile.write_table(bad, replace(small, rows=rows, content_hash=None))
    a = audit.audit_file(bad, minimax=mm)
    assert not a.ok
    assert {f.K for f in a.failures} == {16}
    assert {"V_inf", "V1"} & {f.check for f in a.failures}


def test_one_ulp_change_named_through_manifest_row_digests(tmp_path):
    """Below every metric tolerance (one ulp in one coefficient, hash recomputed) the manifest's
    per-row digests still name the changed K."""
    t = peers.peer_table("digamma", 6)
    rows = {K: content.Row(np.asarray(peers.peer_table("digamma", K)), None, {}, "ok", {})
            for K in (4, 5, 6)}
    table = content.TableData(name="t", family="kl", target="log p", method="peer", params={},
                                provenance={}, Ks=(4, 5, 6), rows=rows, inputs_hash="x")
    tablefile.write_table(tmp_path / "t.h5", table)
    update_manifest(tmp_path)
    assert t[2] != 0
    v = rows[5].values.copy()
    v[2] = np.nextafter(v[2], np.inf)
    rows[5] = rows[5]._replace(values=v)
    tablefile.write_table(tmp_path / "t.h5", replace(table, rows=rows))  # self-consistent hash
    found = audit_files_mod.manifest_findings(str(tmp_path / "t.h5"), "t.h5", None, None,
                                     tablefile.read_table(tmp_path / "t.h5"))
    bad = [f for f in found if not f.ok]
    assert {(f.check, f.K) for f in bad} >= {("manifest.row", 5), ("manifest.sha256", None)}
