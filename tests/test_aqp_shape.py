"""Shape-constrained AQP programs (docs/MATH.md §5b): constraints, repair, solves, verify_row.

Oracles: plain Python comparisons of the floats (not ``aqp_shape.violations``) for the shape;
the unconstrained program's β for the cost (a constrained minimum cannot be below it, up to the
solver's tolerance); the library certifier for β.
"""

import os

import numpy as np
import pytest

from aqpgen.build.spec import check_params
from aqpgen.generators import aqp, aqp_shape
from aqpgen.targets import LOG, parse_target


def _nondecreasing(v):
    return all(float(v[i + 1]) >= float(v[i]) for i in range(len(v) - 1))


def _nonincreasing(v):
    return all(float(v[i + 1]) <= float(v[i]) for i in range(len(v) - 1))


@pytest.mark.parametrize("tg, direction, sign", [("log", 1, -1), ("p^0.5", 1, 1), ("p^-0.5", -1, 1)])
def test_constraints_match_hand_written_rows(tg, direction, sign):
    K = 5
    G, h = aqp_shape.constraints(K, tg)
    G = G.toarray()
    assert h.tolist() == [0.0] * K
    for i in range(K - 1):  # direction * (c[i] - c[i+1]) <= 0
        row = [0.0] * K
        row[i], row[i + 1] = direction, -direction
        assert G[i].tolist() == row
    anchor = K - 1 if direction * sign < 0 else 0
    row = [0.0] * K
    row[anchor] = -sign
    assert G[K - 1].tolist() == row


def test_violations_and_repair():
    v = np.array([-3.0, -1.0, -2.0, -0.5, 0.25])
    bad = aqp_shape.violations(v, LOG)
    assert len(bad) == 2 and "c[3]" in bad[0] and "c[5]" in bad[1]
    r = aqp_shape.repair(v, LOG)
    assert r.tolist() == [-3.0, -1.0, -1.0, -0.5, 0.0]
    assert aqp_shape.violations(r, LOG) == []
    good = np.array([-2.0, -1.5, -1.5, -0.0])
    assert aqp_shape.repair(good, LOG).tobytes() == good.tobytes()
    # p^-0.5: nonincreasing, >= 0
    w = np.array([3.0, 1.0, 2.0, -0.1])
    assert aqp_shape.repair(w, "p^-0.5").tolist() == [3.0, 2.0, 2.0, 0.0]
    assert len(aqp_shape.violations(w, "p^-0.5")) == 2
    # p^0.5: nondecreasing, >= 0
    assert aqp_shape.repair(np.array([-0.1, 0.5, 0.4]), "p^0.5").tolist() == [0.0, 0.5, 0.5]


def test_tiny_violation_is_caught_exactly():
    v = np.array([-1.0, -0.5, np.nextafter(-0.5, -1.0), 0.0])
    assert len(aqp_shape.violations(v, LOG)) == 1
    assert aqp_shape.violations(np.array([-1.0, 5e-324]), LOG)


@pytest.mark.parametrize("bad", ["mono", "", None, 1, "Monotone"])
def test_shape_param_refused(bad):
    with pytest.raises(ValueError, match="shape"):
        check_params("kl", "aqp", {"rho": 4, "shape": bad})
    with pytest.raises(ValueError, match="shape"):
        aqp.solve_rho(8, 4, shape=bad)


def test_shape_only_for_aqp():
    check_params("kl", "aqp", {"rho": 4, "shape": "monotone"})
    check_params("kl", "aqp", {"eta": 3, "shape": "none"})
    with pytest.raises(ValueError, match="shape"):
        check_params("kl", "minimax", {"shape": "monotone"})


@pytest.mark.parametrize("K, rho", [(8, 8), (16, 4), (32, 2)])
def test_rho_monotone_log(K, rho):
    free = aqp.solve_rho(K, rho)
    r = aqp.solve_rho(K, rho, shape="monotone")
    assert r.status == "ok" and r.shape == "monotone"
    assert _nondecreasing(r.values) and float(r.values[-1]) <= 0.0
    assert r.V_inf <= rho * r.V_inf_plugin
    assert r.beta <= r.beta_cert
    # the constrained minimum is not below the free one (solver/exchange tolerance 1e-3)
    assert r.beta >= free.beta * (1 - 1e-3)


def test_unconstrained_tables_do_oscillate():
    # the reason for the option: at K = 16, rho = 4 the free optimum decreases somewhere
    assert not _nondecreasing(aqp.solve_rho(16, 4).values)


@pytest.mark.parametrize("tg, check", [("p^0.5", _nondecreasing), ("p^-0.5", _nonincreasing)])
def test_rho_monotone_power(tg, check):
    r = aqp.solve_rho(16, 8, target=parse_target(tg), shape="monotone")
    assert r.status == "ok"
    assert check(r.values) and float(np.min(r.values)) >= 0.0


def test_eta_monotone_infeasible_budget_is_reported():
    # (1+eta) E*_K with eta = 0.5 is far below the smallest beta of a monotone table at K = 16
    r = aqp.solve_eta(16, 0.5, shape="monotone")
    assert r.status != "ok" and np.all(np.isnan(r.values))
    assert "infeasible" in r.status or "out of numerical reach" in r.status


def test_build_and_verify_row_shape():
    params = {"rho": 4, "shape": "monotone"}
    res = aqp.build_K(12, params)
    assert res.status == "ok"
    checks = aqp.verify_row(12, res.values, None, res.metrics, params)
    assert all(c.ok for c in checks), checks
    assert [c.name for c in checks if c.name == "aqp.shape"] == ["aqp.shape"]
    tampered = res.values.copy()
    tampered[4], tampered[5] = tampered[5], tampered[4] - 1e-3
    shape = [c for c in aqp.verify_row(12, tampered, None, res.metrics, params)
             if c.name == "aqp.shape"]
    assert len(shape) == 1 and not shape[0].ok and "c[6]" in shape[0].detail
    # an unconstrained table has no shape check
    assert "aqp.shape" not in [c.name for c in aqp.verify_row(12, tampered, None, res.metrics,
                                                              {"rho": 4})]


def _shape_table(path, Ks=(8, 12)):
    from aqpgen.store import content, tablefile

    params = {"rho": 4, "shape": "monotone"}
    res = [aqp.build_K(K, params) for K in Ks]
    assert all(r.status == "ok" for r in res)
    t = content.make_table(name="kl-test-mono", family="kl", target="log p", method="aqp",
                             params=params, provenance={"test": True}, results=res)
    tablefile.write_table(path, t)
    return tablefile.read_table(path)


def test_audit_and_verify_catch_one_ulp_shape_violation(tmp_path):
    """A monotone row made non-monotone at its flattest step, by one ulp past the previous entry
    (hash recomputed, so the file is self-consistent), fails the shape check of both
    ``aqpgen verify`` and ``aqpgen audit`` at that K, and nothing fails elsewhere.  (The solver's
    flattest steps are ~1e-8, not 0, so the audit's V∞ / V1 also see the change.)"""
    from dataclasses import replace

    from aqpgen import audit
    from aqpgen.build.verify import verify_file
    from aqpgen.store import tablefile

    good = tmp_path / "good" / "kl-test-mono.h5"
    good.parent.mkdir()
    t = _shape_table(good)
    assert all(c.ok for c in verify_file(good, manifest=False))
    a = audit.audit_file(good)
    assert a.ok, a.failures
    assert [f.ok for f in a.findings if f.check == "shape"] == [True, True]
    row = t.rows[12]
    v = row.values.copy()
    d = np.diff(v)
    i = int(np.argmin(d))  # the flattest step (0 where the constraint binds)
    v[i + 1] = np.nextafter(v[i], -np.inf)
    bad = tmp_path / "kl-test-mono.h5"
    tablefile.write_table(bad, replace(t, rows={**t.rows, 12: row._replace(values=v)},
                                       content_hash=None))
    failed = [c for c in verify_file(bad, manifest=False) if not c.ok]
    assert [(c.name, c.K) for c in failed] == [("aqp.shape", 12)], failed
    a = audit.audit_file(bad)
    assert {f.K for f in a.failures} == {12}
    shape = [f for f in a.failures if f.check == "shape"]
    assert len(shape) == 1 and f"c[{i + 2}] < c[{i + 1}]" in shape[0].detail


def test_audit_shape_power_directions(tmp_path):
    """p^-0.5 tables must fall with n: a rising (but otherwise valid-looking) row fails."""
    from aqpgen.audit.rowpoly import parse_audit_target
    from aqpgen.audit.rows import RowTask, _shape_checks

    T = parse_audit_target("p^-0.5")
    mk = lambda v: RowTask("f.h5", "kl", "aqp", {"rho": 8, "shape": "monotone", "target": "p^-0.5"},
                           None, len(v), np.array(v), None, {}, "ok", None, T, "p^-0.5")
    assert _shape_checks(mk([3.0, 2.0, 2.0, 1.0]))[0].ok
    assert not _shape_checks(mk([1.0, 2.0, 2.0, 3.0]))[0].ok
    assert not _shape_checks(mk([3.0, 2.0, 2.0, -0.5]))[0].ok
    unknown = _shape_checks(RowTask("f.h5", "kl", "aqp", {"rho": 8, "shape": "convex"}, None, 2,
                                    np.array([-1.0, 0.0]), None, {}, "ok", None))
    assert not unknown[0].ok and "convex" in unknown[0].detail


SHIPPED = os.path.join(os.path.dirname(__file__), os.pardir, "tables")


@pytest.mark.parametrize("name", ["kl-aqp-rho4-mono", "pow-0.5-aqp-rho8-mono"])
def test_shipped_mono_rows_have_the_shape(name):
    """Acceptance: every ok row of a shipped shape-constrained preset follows its target's shape
    (Python comparisons of the stored floats), and rebuilding small rows gives the same bits."""
    from aqpgen.store.tablefile import read_table

    path = os.path.join(SHIPPED, name + ".h5")
    if not os.path.exists(path):
        pytest.skip(f"{name} not built")
    t = read_table(path)
    assert t.params["shape"] == "monotone"
    rising = t.target == "log p"
    ok = [K for K in t.Ks if t.rows[K].status == "ok"]
    assert len(ok) >= 0.9 * len(t.Ks)
    for K in ok:
        v = t.rows[K].values
        assert (_nondecreasing(v) if rising else _nonincreasing(v)), (name, K)
        assert (float(v[-1]) <= 0.0) if rising else (float(v[-1]) >= 0.0), (name, K)
    for K in (2, 3, 5, 8):
        r = aqp.build_K(K, dict(t.params))
        assert np.array_equal(r.values, t.rows[K].values), (name, K)
        assert r.metrics == t.rows[K].metrics, (name, K)
