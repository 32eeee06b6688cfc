"""The audit on p^a tables (target "p^0.5"): clean tables pass, tampered ones are named.

The tables are built HERE, independently of the library's solvers: a small Remez exchange in
mpmath (40 digits) for the best approximation of p^(3/2) from {p·Q : deg Q <= K−1}
(docs/MATH.md §2b, §3), converted to the Bernstein table exactly in mpmath; V∞ and V1 from direct
binomial sums (golden-section sup, mpmath quadrature).  Nothing here goes through the audit's
polynomial machinery or aqpgen.numerics.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace

import mpmath
import numpy as np
import pytest

from aqpgen import audit
from aqpgen.records import KResult
from aqpgen.store import content, tablefile

A = mpmath.mpf(1) / 2          # the exponent a of p^a
KS = (4, 5, 6, 8)
DPS = 40


def _err(q, x):
    """e(p) = P(p) − p^(a+1) with P(p) = sum_k q[k] p^(k+1)."""
    return mpmath.fsum(qk * x ** (k + 1) for k, qk in enumerate(q)) - x ** (A + 1)


def _golden(f, lo, hi, iters=120):
    """argmax of f on [lo, hi] (f unimodal there)."""
    r = (mpmath.sqrt(5) - 1) / 2
    a, b = lo + (1 - r) * (hi - lo), lo + r * (hi - lo)
    fa, fb = f(a), f(b)
    for _ in range(iters):
        if fa < fb:
            lo, a, fa = a, b, fb
            b = lo + r * (hi - lo)
            fb = f(b)
        else:
            hi, b, fb = b, a, fa
            a = lo + (1 - r) * (hi - lo)
            fa = f(a)
    return (lo + hi) / 2


def _grid(N=1500):
    return [mpmath.sin(mpmath.pi * j / (2 * N)) ** 2 for j in range(N + 1)]


def _extrema(f, grid):
    """Local maxima of |f| on the grid, refined; the end point p = 1 included."""
    v = [abs(f(x)) for x in grid]
    out = []
    for i in range(1, len(grid)):
        right = i == len(grid) - 1 or v[i] >= v[i + 1]
        if v[i] >= v[i - 1] and right and v[i] > 0:
            if i == len(grid) - 1:
                out.append(grid[i])
            else:
                out.append(_golden(lambda x: abs(f(x)), grid[i - 1], grid[i + 1]))
    return out


def _remez(K):
    """(q, E): best uniform approximation of p^(a+1) by p·Q, deg Q <= K−1 (q: monomial)."""
    with mpmath.workdps(DPS):
        ref = [((1 - mpmath.cos(mpmath.pi * (i + 1) / (K + 1))) / 2) ** 2 for i in range(K + 1)]
        g = _grid()
        for _ in range(30):
            M = mpmath.matrix(K + 1, K + 1)
            rhs = mpmath.matrix(K + 1, 1)
            for i, x in enumerate(ref):
                for k in range(K):
                    M[i, k] = x ** (k + 1)
                M[i, K] = (-1) ** i
                rhs[i] = x ** (A + 1)
            sol = mpmath.lu_solve(M, rhs)
            q = [sol[k] for k in range(K)]
            ext = _extrema(lambda x, q=q: _err(q, x), g)
            # keep one extremum per sign run (the largest), then the K+1 largest in a row
            runs = []
            for x in ext:
                s = mpmath.sign(_err(q, x))
                if runs and runs[-1][0] == s:
                    if abs(_err(q, x)) > abs(_err(q, runs[-1][1])):
                        runs[-1] = (s, x)
                else:
                    runs.append((s, x))
            while len(runs) > K + 1:  # drop the smaller end
                runs.pop(0 if abs(_err(q, runs[0][1])) < abs(_err(q, runs[-1][1])) else -1)
            ref = [x for _, x in runs]
            mags = [abs(_err(q, x)) for x in ref]
            if len(ref) == K + 1 and (max(mags) - min(mags)) / max(mags) < mpmath.mpf(10) ** -30:
                return q, max(mags)
        raise AssertionError(f"test Remez did not converge at K={K}")


def _bernstein(q, K):
    """c_K[1..K] of g_c = Q (Q(p) = sum_j q[j] p^j): c_m = sum_{j<=m} q_j C(m,j)/C(K−1,j)."""
    n = K - 1
    return [mpmath.fsum(q[j] * mpmath.binomial(m, j) / mpmath.binomial(n, j) for j in range(m + 1))
            for m in range(K)]


def _var_metrics(c, K):
    """(V∞, V1) of the table c (mpmath values) from direct binomial sums."""
    def pvar(p):
        b = [mpmath.binomial(K - 1, m) * p ** m * (1 - p) ** (K - 1 - m) for m in range(K)]
        mean = mpmath.fsum(bi * ci for bi, ci in zip(b, c))
        return p * mpmath.fsum(bi * (ci - mean) ** 2 for bi, ci in zip(b, c))

    g = _grid(600)
    v = [pvar(x) for x in g]
    i = max(range(len(g)), key=lambda j: v[j])
    top = v[i] if i == len(g) - 1 else pvar(_golden(pvar, g[max(i - 1, 0)], g[i + 1]))
    return float(max(top, v[i])), float(mpmath.quad(pvar, [0, 1]))


def _beta(c, K):
    """sup_p |p·g_c(p) − p^(a+1)| by sampling + golden refinement (mpmath)."""
    def e(p):
        b = [mpmath.binomial(K - 1, m) * p ** m * (1 - p) ** (K - 1 - m) for m in range(K)]
        return p * mpmath.fsum(bi * ci for bi, ci in zip(b, c)) - p ** (A + 1)

    return float(max(abs(e(x)) for x in _extrema(e, _grid(800))))


@pytest.fixture(scope="module")
def remez_rows():
    with mpmath.workdps(DPS):
        out = {}
        for K in KS:
            q, E = _remez(K)
            c = _bernstein(q, K)
            hp = tuple(mpmath.nstr(x, 36, min_fixed=-1, max_fixed=1) for x in c)
            cq = [mpmath.mpf(s) for s in hp]
            vinf, v1 = _var_metrics(cq, K)
            out[K] = {"hp": hp, "E": float(E), "V_inf": vinf, "V1": v1,
                      "max_abs_c": float(max(abs(x) for x in cq))}
        return out


def _write(path, results, *, method, params, target="p^0.5", family="pow"):
    t = content.make_table(name=os.path.basename(path)[:-3], family=family, target=target,
                             method=method, params=params, provenance={"test": True}, results=results)
    return tablefile.write_table(path, t)


def _minimax_results(rows, tweak=None):
    res = []
    for K in KS:
        r = rows[K]
        hp = list(r["hp"])
        m = {"E_star": r["E"], "beta": r["E"], "beta_cert": r["E"] * 1.003, "spread": 0.0,
             "V_inf": r["V_inf"], "V1": r["V1"], "max_abs_c": r["max_abs_c"]}
        if tweak:
            hp, m = tweak(K, hp, m)
        f64 = np.array([float(mpmath.mpf(s)) for s in hp])
        res.append(KResult(K, f64, tuple(hp), m, "ok", {"solver": "test-remez"}))
    return res


def _rho_results(rows, rho):
    """AQP-rho-like rows: the blend 0.6·minimax + 0.4·plug-in (n/K)^a (float64 values)."""
    res = []
    for K in KS:
        with mpmath.workdps(30):
            pl = [float(mpmath.mpf(n) / K) ** 0.5 for n in range(1, K + 1)]
            v = np.array([0.6 * float(mpmath.mpf(s)) + 0.4 * p for s, p in zip(rows[K]["hp"], pl)])
            cq = [mpmath.mpf(float(x)) for x in v]
            plq = [mpmath.mpf(x) for x in pl]
            vinf, v1 = _var_metrics(cq, K)
            pl_vinf, _ = _var_metrics(plq, K)
            beta = _beta(cq, K)
        m = {"beta": beta, "beta_cert": beta * 1.003, "V_inf": vinf, "V1": v1,
             "max_abs_c": float(np.max(np.abs(v))), "rho_budget": float(rho) * pl_vinf,
             "rho_achieved": vinf / pl_vinf}
        res.append(KResult(K, v, None, m, "ok", {"solver": "test-blend"}))
    return res


def test_test_remez_oracle_levels(remez_rows):
    """The fixture's own Remez: E*_K decreasing like K^-3 (docs/MATH.md §2b), sampled β = E."""
    E = [remez_rows[K]["E"] for K in KS]
    assert all(x > y for x, y in itertools.pairwise(E))
    slope = np.polyfit(np.log(KS), np.log(E), 1)[0]
    assert -3.6 < slope < -2.4, slope
    with mpmath.workdps(DPS):
        c = [mpmath.mpf(s) for s in remez_rows[6]["hp"]]
        assert _beta(c, 6) == pytest.approx(remez_rows[6]["E"], rel=1e-12)


def test_pow_minimax_table_passes(tmp_path, remez_rows):
    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows), method="minimax", params={"a": "0.5"})
    a = audit.audit_file(p)
    assert not a.failures, audit.format_text([a])
    checks = {(f.check, f.ok) for f in a.findings}
    for c in ("target", "equioscillation", "spread", "E_star", "beta", "beta_cert", "V_inf", "V1"):
        assert (c, True) in checks, c
    lv = [f for f in a.findings if f.check == "E_star"]
    assert len(lv) == len(KS) and max(f.rel_diff for f in lv) < 1e-12


def test_pow_fresh_certificate(tmp_path, remez_rows):
    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows), method="minimax", params={"a": "0.5"})
    fresh = [f for f in audit.audit_file(p).findings if f.check == "beta_cert.fresh"]
    assert len(fresh) == len(KS) and all(f.ok for f in fresh), fresh


def test_pow_tampered_coefficient_named(tmp_path, remez_rows):
    """One high-precision coefficient at K=6 moved by 1e-9 (relative), hash recomputed."""
    def tweak(K, hp, m):
        if K == 6:
            hp[3] = mpmath.nstr(mpmath.mpf(hp[3]) * (1 + mpmath.mpf("1e-9")), 36)
        return hp, m

    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows, tweak), method="minimax", params={"a": "0.5"})
    a = audit.audit_file(p)
    bad = a.failures
    assert bad and {f.K for f in bad} == {6}, audit.format_text([a])
    assert {"spread", "E_star"} & {f.check for f in bad}


def test_pow_log10_max_abs_c_near_zero(tmp_path, remez_rows):
    """max|c| of a p^0.5 minimax row is ~1, so log10 max|c| is ~1e-4: it is compared with an
    absolute tolerance (1e-12 relative on max|c| / ln 10); a relative one failed these rows.
    The stored value here is mpmath's log10 of the largest |c| of the float64 table; one row
    moved by 1e-11 (absolute) must be named."""
    def tweak_with(delta):
        def tweak(K, hp, m):
            with mpmath.workdps(40):
                top = max(abs(mpmath.mpf(float(mpmath.mpf(x)))) for x in hp)
                lg = float(mpmath.log10(top))
            assert abs(lg) < 1e-2  # the regime of the check
            return hp, {**m, "log10_max_abs_c": lg + (delta if K == 6 else 0.0)}
        return tweak

    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows, tweak_with(0.0)), method="minimax", params={"a": "0.5"})
    a = audit.audit_file(p)
    lg = [f for f in a.findings if f.check == "log10_max_abs_c"]
    assert len(lg) == len(KS) and all(f.ok for f in lg), audit.format_text([a])
    _write(p, _minimax_results(remez_rows, tweak_with(1e-11)), method="minimax", params={"a": "0.5"})
    bad = [f for f in audit.audit_file(p).failures if f.check == "log10_max_abs_c"]
    assert [f.K for f in bad] == [6]


def test_pow_wrong_exponent_fails_everywhere(tmp_path, remez_rows):
    """The same values declared as a table for p^0.25 (header consistent): every row fails."""
    p = tmp_path / "pow0.25-minimax.h5"
    _write(p, _minimax_results(remez_rows), method="minimax", params={"a": "0.25"}, target="p^0.25")
    a = audit.audit_file(p)
    assert {f.K for f in a.failures if f.K is not None} == set(KS)
    assert not [f for f in a.failures if f.check == "target"]


def test_pow_header_inconsistent(tmp_path, remez_rows):
    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows), method="minimax", params={"a": "0.25"})
    a = audit.audit_file(p)
    assert [f.check for f in a.failures] == ["target"]
    q = tmp_path / "kl-minimax.h5"
    _write(q, _minimax_results(remez_rows), method="minimax", params={}, family="kl")
    assert [f.check for f in audit.audit_file(q).failures] == ["target"]


def test_pow_table_in_the_generators_layout(tmp_path, remez_rows):
    """family "kl" + params {"target": "p^0.5"} (how the minimax generator writes p^a tables)."""
    p = tmp_path / "pow0.5-minimax.h5"
    _write(p, _minimax_results(remez_rows), method="minimax", params={"target": "p^0.5"}, family="kl")
    a = audit.audit_file(p)
    assert not a.failures, audit.format_text([a])
    q = tmp_path / "x" / "pow0.5-minimax.h5"
    q.parent.mkdir()
    _write(q, _minimax_results(remez_rows), method="minimax", params={"target": "p^-0.5"}, family="kl")
    assert [f.check for f in audit.audit_file(q).failures] == ["target"]


def test_pow_rho_table_and_tampered_budget(tmp_path, remez_rows):
    """rho preset against the plug-in (n/K)^0.5: passes with rho = 1.5·achieved, fails when the
    stored params claim a budget the table does not meet."""
    res = _rho_results(remez_rows, "1")
    rho_ok = max(r.metrics["rho_achieved"] for r in res) * 1.5
    p = tmp_path / "pow0.5-aqp-rho.h5"
    _write(p, _rho_results(remez_rows, rho_ok), method="aqp", params={"a": "0.5", "rho": rho_ok})
    a = audit.audit_file(p)
    assert not a.failures, audit.format_text([a])
    assert {f.check for f in a.findings} >= {"budget", "rho_budget", "rho_achieved", "beats_plugin"}
    rho_bad = min(r.metrics["rho_achieved"] for r in res) * 0.9
    t = tablefile.read_table(p)
    q = tmp_path / "bad" / "pow0.5-aqp-rho.h5"
    q.parent.mkdir()
    tablefile.write_table(q, replace(t, params={"a": "0.5", "rho": rho_bad}, content_hash=None))
    a = audit.audit_file(q)
    assert {f.K for f in a.failures if f.check == "budget"} == set(KS)


def test_pow_eta_preset_budget(tmp_path, remez_rows):
    """An eta preset for p^0.5 takes E*_K from the p^0.5 minimax table beside it
    ("pow0.5-minimax.h5"); the minimax values themselves meet eta = 0.5 but not eta = 0
    (the certified bound is above β = E*_K)."""
    _write(tmp_path / "pow0.5-minimax.h5", _minimax_results(remez_rows), method="minimax",
           params={"target": "p^0.5"}, family="kl")

    def eta_rows(eta):
        def tweak(K, hp, m):
            E = remez_rows[K]["E"]
            return hp, {**{k: v for k, v in m.items() if k != "spread"},
                        "eta_budget": (1 + eta) * E, "eta_achieved": 0.0}
        return _minimax_results(remez_rows, tweak)

    ok = tmp_path / "pow0.5-aqp-eta05.h5"
    _write(ok, eta_rows(0.5), method="aqp", params={"target": "p^0.5", "eta": 0.5}, family="kl")
    a = audit.audit_file(ok)
    assert not a.failures, audit.format_text([a])
    assert {"E_star.source", "E_star", "eta_budget", "budget", "eta_achieved"} <= {f.check for f in a.findings}
    bad = tmp_path / "pow0.5-aqp-eta0.h5"
    _write(bad, eta_rows(0.0), method="aqp", params={"target": "p^0.5", "eta": 0}, family="kl")
    a = audit.audit_file(bad)
    assert {(f.K, f.check) for f in a.failures} == {(K, "budget") for K in KS}
