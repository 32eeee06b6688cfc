"""Tests of aqpgen.minimax against independent oracles (small K only).

Oracles: the closed form E*_1 = W(1/e) (mpmath / sympy Lambert W); an mpmath evaluation of the
table's error in Bernstein form with its own extremum search (golden section); exact Bernstein
coefficients from sympy; synthetic rate data with a known limit.  The LP oracle is in
tests/test_minimax_lp.py.
"""

from __future__ import annotations

import itertools
import json
import math

import mpmath as mp
import numpy as np
import pytest
from _kl_oracles import mp_golden_max

from aqpgen.errors import ConvergenceError
from aqpgen.generators import minimax, remez
from aqpgen.numerics import bernstein, fit

W1E = mp.lambertw(1 / mp.e)  # E*_1 (module docstring); recomputed at higher precision below


def w1e(dps=50):
    with mp.workdps(dps):
        return +mp.lambertw(mp.exp(-1))


# ---------------------------------------------------------------------------------- oracles
def mp_error(strings, dps=60):
    """p -> e(p) = p (sum_m c_{m+1} b_{K-1,m}(p) - log p) in mpmath from the decimal strings."""
    K = len(strings)
    with mp.workdps(dps):
        c = [mp.mpf(s) * math.comb(K - 1, m) for m, s in enumerate(strings)]

    def e(p):
        with mp.workdps(dps):
            p = mp.mpf(p)
            q = 1 - p
            g = mp.fsum(c[m] * p**m * q ** (K - 1 - m) for m in range(K))
            return p * (g - mp.log(p))

    return e


def mp_extrema(e, K, n=None, dps=60):
    """Signed extreme values of e on (0, 1]: dense grid in t (p = sin^2(t/2)), one max of |e| per
    sign run, refined by golden-section search in t.  Independent of aqpgen's locator."""
    n = n or 300 * (K + 1)
    with mp.workdps(dps):
        ts = [mp.pi * i / n for i in range(1, n + 1)]
        vals = [e(mp.sin(t / 2) ** 2) for t in ts]
        runs = []  # (index of the max |e| in the run)
        for i, v in enumerate(vals):
            if v == 0:
                continue
            if runs and (v > 0) == (vals[runs[-1]] > 0):
                if abs(v) > abs(vals[runs[-1]]):
                    runs[-1] = i
            else:
                runs.append(i)
        out = []
        for i in runs:
            s = 1 if vals[i] > 0 else -1
            f = lambda t, s=s: s * e(mp.sin(t / 2) ** 2)
            top = mp_golden_max(f, ts[max(i - 1, 0)], ts[min(i + 1, n - 1)], 90)
            out.append(s * max(top, f(ts[i])))
        return out


# ---------------------------------------------------------------------------------- K = 1
def test_K1_closed_form_lambert_w():
    r = remez.remez(1)
    W = w1e()
    assert r.converged and r.K == 1
    # E*_1 = W(1/e) to >= 12 digits (in fact ~19: quadratic in the extremum location)
    assert abs(mp.mpf(r.E_hp) - W) / W < 1e-15
    assert len(r.E_hp.replace("-", "").replace(".", "").lstrip("0")) >= 30


def test_K1_table_is_minus_lambert_w_sympy():
    import sympy

    hp, f, r = minimax.minimax_table(1)
    W = sympy.LambertW(sympy.exp(-1))
    exact = -sympy.N(W, 40)
    assert abs(sympy.Float(hp[0], 40) - exact) < sympy.Float("1e-15")
    assert f[0] == pytest.approx(float(exact), rel=1e-15)
    # the closed form itself: Q = a, e = p(a - log p); max at p = e^(a-1), value e^(a-1) = -a = e(1)
    a = float(exact)
    assert math.exp(a - 1) == pytest.approx(-a, rel=1e-14)


# ---------------------------------------------------------------------------------- equioscillation
@pytest.mark.parametrize("K", [2, 3, 5, 8])
def test_equioscillation_mpmath_oracle(K):
    hp, f, r = minimax.minimax_table(K)
    ext = mp_extrema(mp_error(hp), K)
    assert len(ext) == K + 1, ext
    signs = [v > 0 for v in ext]
    assert all(signs[i] != signs[i + 1] for i in range(K))
    E = mp.mpf(r.E_hp)
    for v in ext:
        assert abs(abs(v) / E - 1) < 1e-10
    # the reported reference points carry the same signs
    assert list(r.signs) == [1 if s else -1 for s in signs]


@pytest.mark.parametrize("K", [1, 4, 16, 64])
def test_result_fields_and_spread(K):
    r = remez.remez(K)
    assert r.converged and r.spread <= 1e-12
    assert len(r.cheb) == K and len(r.reference) == K + 1 and len(r.signs) == K + 1
    assert r.reference[-1] == 1.0  # p = 1 is an extremum
    assert all(0 < a < b for a, b in zip(r.reference, r.reference[1:]))
    lo, hi = (float(x) for x in r.E_bracket)
    assert lo <= r.E <= hi and (hi - lo) / hi <= r.spread * (1 + 1e-9) + 1e-30
    assert r.iterations >= r.hp_iterations >= 1 and r.prec == 128


def test_monotone_decrease_and_K2E_roughly_constant():
    Ks = list(range(1, 25)) + [32, 48, 64]
    E = [remez.remez(K).E for K in Ks]
    assert all(a > b for a, b in zip(E, E[1:]))
    k2e = [K * K * e for K, e in zip(Ks, E)]
    # K^2 E*_K increases to ~0.32509 (1/K^2 corrections): within 1% of each other from K = 8 on
    big = [v for K, v in zip(Ks, k2e) if K >= 8]
    assert max(big) / min(big) < 1.01
    assert all(a < b for a, b in zip(big, big[1:]))


def test_init_from_smaller_result():
    r16 = remez.remez(16)
    r32 = remez.remez(32, init=r16)
    assert r32.converged
    assert r32.E == pytest.approx(remez.remez(32).E, rel=1e-13)
    r = remez.remez(5, init=np.array(remez.remez(5).reference))
    assert r.converged


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad", [0, -1, -5])
def test_bad_K_value(bad):
    with pytest.raises(ValueError, match="K"):
        remez.remez(bad)
    with pytest.raises(ValueError, match="K"):
        minimax.minimax_table(bad)
    with pytest.raises(ValueError, match="K"):
        minimax.build_K(bad, {})


@pytest.mark.parametrize("bad", [2.5, "3", True, None, 1 + 0j])
def test_bad_K_type(bad):
    with pytest.raises(TypeError, match="K"):
        remez.remez(bad)


def test_bad_options():
    with pytest.raises(ValueError, match="prec"):
        remez.remez(4, prec=10)
    with pytest.raises(ValueError, match="tol"):
        remez.remez(4, tol=-1.0)
    with pytest.raises(ValueError, match="maxiter"):
        remez.remez(4, maxiter=0)
    with pytest.raises(ValueError, match="init"):
        remez.remez(4, init=[0.1, 0.2])
    with pytest.raises(ValueError, match="params"):
        minimax.build_K(3, {"m": 2})


def test_convergence_error_keeps_best():
    with pytest.raises(ConvergenceError) as ei:
        remez.remez(64, maxiter=1)
    info = ei.value.info
    assert info["K"] == 64 and info["spread"] > info["tol"]
    best = info["best"]
    assert isinstance(best, remez.MinimaxResult) and not best.converged
    assert "spread" in str(ei.value) and "required" in str(ei.value)


def test_precision_not_leaked():
    import flint

    old = flint.ctx.prec
    minimax.minimax_table(6)
    assert flint.ctx.prec == old
    assert mp.mp.prec == 53


# ---------------------------------------------------------------------------------- conversion
def test_cheb_to_bernstein_matches_sympy_exact():
    import sympy

    p = sympy.symbols("p")
    a = [3 / 7, -2 / 5, 1 / 3, 5 / 11, -1 / 9, 0.25]  # floats: exact dyadic rationals
    n = len(a) - 1
    Q = sum(sympy.Rational(x) * sympy.chebyshevt(j, 2 * p - 1) for j, x in enumerate(a))
    mono = sympy.Poly(sympy.expand(Q), p).all_coeffs()[::-1]
    mono += [0] * (n + 1 - len(mono))
    # monomial -> Bernstein (exact): c_k = sum_{i<=k} C(k,i)/C(n,i) m_i
    exact = [sum(sympy.binomial(k, i) / sympy.binomial(n, i) * mono[i] for i in range(k + 1))
             for k in range(n + 1)]
    got = bernstein.cheb_to_bernstein(a, 200)
    for g, x in zip(got, exact):
        assert abs(mp.mpf(g.mid().str(60, radius=False)) - mp.mpf(sympy.N(x, 60))) < 1e-45
    # strings are parsed, not rounded through float
    got_s = bernstein.cheb_to_bernstein(["0.1", "0.2"], 200)
    assert abs(mp.mpf(got_s[0].mid().str(55, radius=False)) - mp.mpf("-0.1")) < 1e-50


def test_table_growth_law_and_alternation():
    K = 64
    hp, f, r = minimax.minimax_table(K)
    logmax = max(math.log2(abs(float(s))) for s in hp)
    assert abs(logmax - (K - 2 * math.log2(K) - 1.12)) < 0.1  # module docstring law
    assert all((float(a) > 0) != (float(b) > 0) for a, b in zip(hp, hp[1:]))
    # digits: log10(max|c| / E) + 20
    digits = len(hp[0].split("e")[0].replace("-", "").replace(".", ""))
    assert digits >= math.log10(2.0**logmax / r.E) + 19


# ---------------------------------------------------------------------------------- verify_row
def test_verify_row_accepts_own_table_and_rejects_tampering():
    K = 10
    hp, f, r = minimax.minimax_table(K)
    metrics = {"E_star": r.E}
    checks = minimax.verify_row(K, f, hp, metrics, {})
    assert all(c.ok for c in checks), checks
    assert {c.name for c in checks} >= {"minimax.equioscillation", "minimax.E_star", "minimax.float64"}
    # tamper with one coefficient (relative 1e-6): the levelling breaks
    bad = list(hp)
    bad[3] = repr(float(hp[3]) * (1 + 1e-6))
    checks = minimax.verify_row(K, np.array([float(s) for s in bad]), tuple(bad), metrics, {})
    assert not all(c.ok for c in checks)
    # wrong stored E_star
    checks = minimax.verify_row(K, f, hp, {"E_star": r.E * (1 + 1e-6)}, {})
    assert not next(c for c in checks if c.name == "minimax.E_star").ok
    # float64 values not the rounded strings
    f2 = f.copy()
    f2[0] = np.nextafter(f2[0], 0)
    checks = minimax.verify_row(K, f2, hp, metrics, {})
    assert not next(c for c in checks if c.name == "minimax.float64").ok
    # no strings
    assert not minimax.verify_row(K, f, None, metrics, {})[0].ok


def test_build_K_interface():
    res = minimax.build_K(5, {})
    assert res.K == 5 and res.status == "ok" and len(res.values_hp) == 5
    m = res.metrics
    for key in ("E_star", "spread", "iterations", "max_abs_c", "beta", "beta_cert", "V_inf", "V1"):
        assert key in m, key
    assert m["E_star"] == pytest.approx(remez.remez(5).E, rel=1e-15)
    assert m["beta"] <= m["E_star"] * (1 + 1e-9) and m["beta_cert"] >= m["E_star"] * (1 - 1e-9)
    assert res.solver["solver"] == "remez" and res.solver["prec"] == 128
    json.dumps(res.solver)
    assert minimax.build_K(5, {}).solver == res.solver  # deterministic, no timings
    assert minimax.target_name({}) == "log p" and minimax.GENERATOR_VERSION == "3"
    assert all(c.ok for c in minimax.verify_row(5, res.values, res.values_hp, m, {}))


# ---------------------------------------------------------------------------------- E_star, rate
def test_E_star_is_solved_and_reads_no_file(tmp_path, monkeypatch):
    """Generators read no files: E_star ignores any table on the search path (a fake one here)."""
    from aqpgen.records import KResult
    from aqpgen.store.content import make_table
    from aqpgen.store.tablefile import write_table

    fake = 0.123456789  # not E*_3: would prove a file was read
    t = make_table(name="kl-minimax", family="kl", target="log p", method="minimax", params={},
                   provenance={"test": True},
                   results=[KResult(3, [-1.0, -0.5, 0.0], None, {"E_star": fake}, "ok", {})])
    write_table(tmp_path / "kl-minimax.h5", t)
    monkeypatch.setenv("AQPGEN_TABLES", str(tmp_path))
    assert minimax.E_star(3) == remez.remez(3).E != fake
    assert minimax.E_star(2) == pytest.approx(0.0772019924667603, rel=1e-12)


def test_rate_audit_synthetic_known_limit():
    C = 0.3
    Ks = [16, 32, 64, 128, 256, 512, 1024]
    E = [C / K**2 - 0.07 / K**4 + 0.5 / K**6 for K in Ks]
    a = minimax.rate_audit(Ks, E)
    assert a.ok and abs(a.slope + 2) < 1e-3
    assert abs(a.limit_value - C) < 1e-13 and a.limit_digits >= 12
    assert float(a.limit) == pytest.approx(C, rel=10.0 ** (1 - a.limit_digits))
    assert a.K2E[0] == pytest.approx(16**2 * E[0])
    assert "slope" in a.to_text()
    # a 1/K rate fails the audit
    bad = minimax.rate_audit(Ks, [1.0 / K for K in Ks])
    assert not bad.ok and abs(bad.slope + 1) < 1e-9
    with pytest.raises(ValueError):
        minimax.rate_audit([16, 32], [1.0])
    with pytest.raises(ValueError):
        minimax.rate_audit([16, 32], [1.0, -1.0])


def test_rate_audit_counts_the_inputs_accuracy():
    """E*_K = C/K^3 (1 + 1/K^2) for p^0.5 (r = 3): Richardson in 1/K^2 is exact here, so only the
    inputs' accuracy limits the digits: a relative spread of 1e-9 on each E*_K moves the limit by
    up to sum|w_i| C 1e-9, with sum|w_i| = 54.3125 for K = 640, 768, 896, 1024 (the Lagrange
    weights at h = 0 of h = 1/K^2, checked against numpy's polyfit)."""
    Ks = [16, 32, 64, 128, 256, 512, 640, 768, 896, 1024]
    C = 0.1
    E = [C / K**3 * (1 + 1 / K**2) for K in Ks]
    hs = [1 / K**2 for K in Ks[-4:]]
    w = fit.neville0_weights(hs)
    rng = np.random.default_rng(1)
    for _ in range(3):
        y = rng.normal(size=4)
        assert sum(wi * yi for wi, yi in zip(w, y)) == pytest.approx(
            np.polyval(np.polyfit(np.array(hs) * 1e6, y, 3), 0.0), rel=1e-8)
    assert sum(abs(x) for x in w) == pytest.approx(54.3125, rel=1e-4)
    exact = minimax.rate_audit(Ks, E, target="p^0.5", slope_tol=0.02)
    noisy = minimax.rate_audit(Ks[::-1], E[::-1], target="p^0.5", slope_tol=0.02,
                               spread=[1e-9] * len(Ks))  # any order: spread sorted with Ks
    assert exact.rate == 3.0 and exact.ok and exact.limit_digits >= 13
    assert noisy.input_err == pytest.approx(54.3125 * C * (1e-9 + 8 * 2.0**-53), rel=1e-3)
    assert noisy.limit_digits == 7 and float(noisy.limit) == pytest.approx(C, rel=1e-7)
    assert noisy.limit_err == pytest.approx(noisy.extrap_err + noisy.input_err)
    text = noisy.to_text()
    assert "K^3 E*_K" in text and "required -3 +- 0.02" in text and "K^2" not in text.split("\n")[0]
    with pytest.raises(ValueError, match="spread"):
        minimax.rate_audit(Ks, E, spread=[1e-9])


def test_rate_audit_on_solved_values():
    Ks = [16, 24, 32, 48, 64]
    a = minimax.rate_audit(Ks, [remez.remez(K).E for K in Ks])
    assert a.ok
    assert 0.3250 < a.limit_value < 0.3252


# ---------------------------------------------------------------------------------- CLI
def test_cli_solve_minimax():
    from click.testing import CliRunner

    from aqpgen.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["solve", "minimax", "--K", "8", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["K"] == 8 and d["E_star"] == pytest.approx(remez.remez(8).E, rel=1e-14)
    assert {"K2_E_star", "iterations", "spread", "seconds"} <= set(d)
    out = runner.invoke(main, ["solve", "minimax", "--K", "4"])
    assert out.exit_code == 0 and "E*_K" in out.output and "K^2 * E*_K" in out.output
    line = next(s for s in out.output.splitlines() if s.startswith("E*_K "))
    assert len(line.split("=")[1].strip().split("e")[0].replace(".", "").lstrip("0")) >= 12
    out = runner.invoke(main, ["solve", "minimax", "--K", "0"])
    assert out.exit_code == 2 and "--K" in out.output
    out = runner.invoke(main, ["solve", "minimax", "--K", "3", "--table", "--json"])
    assert out.exit_code == 0 and len(json.loads(out.output)["values_hp"]) == 3
    out = runner.invoke(main, ["solve", "minimax", "--help"])
    assert out.exit_code == 0 and "Remez" in out.output


# ---------------------------------------------------------------------------------- other targets
def test_remez_p_power_K1_closed_forms():
    # K = 1: Q = c, e(p) = c p - p^(a+1).  a = -1/2: |e| peaks at p = 1/(4c^2) with 1/(4c) and
    # at p = 1 with c - 1; equioscillation 4c^2 - 4c - 1 = 0, E = (sqrt 2 - 1)/2.
    r = remez.remez(1, target="p^-0.5")
    assert abs(r.E - (math.sqrt(2) - 1) / 2) <= 1e-14
    assert r.target == "p^-0.5"
    # a = 1/2: peaks 4c^3/27 at p = (2c/3)^2 and 1 - c at p = 1; E = 1 - c
    with mp.workdps(40):
        c = mp.findroot(lambda c: 1 - c - 4 * c**3 / 27, 0.9)
        assert abs(remez.remez(1, target="p^0.5").E - float(1 - c)) <= 1e-14


def test_remez_p_power_equioscillates_and_has_the_rate():
    # the table re-evaluated from its strings alone (arb, Bernstein form) equioscillates at E
    for a in ("0.5", "-0.5"):
        hp, _, res = minimax.minimax_table(12, target=f"p^{a}")
        _, e = minimax.table_error_at_extrema(hp, target=f"p^{a}")
        vals = [float(x.mid()) for x in e]
        assert len(vals) == 13 and all((x > 0) != (y > 0) for x, y in itertools.pairwise(vals))
        assert max(abs(abs(x) / res.E - 1) for x in vals) < 1e-10
    # E*_K = Theta(K^-2(a+1)): the ratio at K, 2K tends to 2^-2(a+1)
    for a, r in ((0.5, 2.0**-3), (-0.5, 2.0**-1)):
        E32, E64 = (remez.remez(K, target=f"p^{a}").E for K in (32, 64))
        assert abs(E64 / E32 / r - 1) < 0.05


def test_target_param_and_table_name():
    assert minimax.target_name({}) == "log p"
    assert minimax.target_name({"target": "p^0.5"}) == "p^0.5"
    assert minimax.table_name("log") == "kl-minimax"
    assert minimax.table_name("p^-0.5") == "pow-0.5-minimax"
    with pytest.raises(ValueError, match="-1"):
        minimax.target_name({"target": "p^-2"})


def test_cli_solve_minimax_target():
    from click.testing import CliRunner

    from aqpgen.cli import main

    r = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^-0.5", "--K", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["K"] == 1 and out["target"] == "p^-0.5"
    assert abs(out["E_star"] - (math.sqrt(2) - 1) / 2) <= 1e-14  # closed form, see above
    r = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^0.5", "--K", "12", "--json"])
    out = json.loads(r.output)
    assert out["rate"] == 3.0 and out["Kr_E_star"] == pytest.approx(12**3 * out["E_star"], rel=1e-15)
    assert "K^3 * E*_K" in CliRunner().invoke(main, ["solve", "minimax", "--target", "p^0.5",
                                                      "--K", "12"]).output
    bad = CliRunner().invoke(main, ["solve", "minimax", "--target", "p^-1", "--K", "4"])
    assert bad.exit_code == 2 and "must be > -1" in bad.output
