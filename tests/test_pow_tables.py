"""The shipped p^a tables (tables/pow*.h5) against the acceptance rules and second methods.

* minimax rows: E*_K equals the LP bracket (no Remez) at small K to 1e-6; the certificate lies in
  [beta, 1.01 beta]; the rate audit of the table's own target passes (slope -2(a+1)).
* rho1 rows: V_inf <= V_inf of the plug-in (n/K)^a and beta below the plug-in's beta, with the
  plug-in's numbers recomputed here (aqpgen.numerics.metrics on target.plugin(K)).
Rows that are not ``ok`` must carry a reason (none at the time of writing).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aqpgen.generators.minimax import rate_audit
from aqpgen.generators.minimax_lp import lp_bracket
from aqpgen.numerics.metrics import table_metrics
from aqpgen.store.tablefile import read_table
from aqpgen.build.verify import verify_rate
from aqpgen.targets import parse_target

TABLES = Path(__file__).resolve().parents[1] / "tables"
STANDARD = list(range(2, 257)) + [320, 384, 448, 512, 640, 768, 896, 1024]


@pytest.fixture(scope="module", params=["pow0.5", "pow-0.5"])
def minimax_table(request):
    return read_table(TABLES / f"{request.param}-minimax.h5")


@pytest.fixture(scope="module", params=["pow0.5", "pow-0.5"])
def rho1_table(request):
    return read_table(TABLES / f"{request.param}-aqp-rho1.h5")


def _certified_ok_rows(t):
    """Check the grid, target and statuses of ``t``; yield (K, metrics) of its ok rows after
    checking their certificate (beta <= beta_cert <= 1.01 beta)."""
    assert list(t.Ks) == STANDARD and t.family == "pow" and t.target.startswith("p^")
    for K in t.Ks:
        assert t.status(K) == "ok" or len(t.status(K)) > 10  # a reason, not a bare flag
    for K in t.Ks:
        if t.status(K) == "ok":
            m = t.metrics(K)
            assert m["beta"] <= m["beta_cert"] <= 1.01 * m["beta"]
            yield K, m


def test_minimax_rows(minimax_table):
    mm = minimax_table
    T = parse_target(mm.target)
    for _K, m in _certified_ok_rows(mm):
        assert abs(m["beta"] - m["E_star"]) <= 0.01 * m["E_star"]
    for K in (2, 5, 12):  # second method: the LP bracket
        br = lp_bracket(K, target=T)
        assert abs(mm.metrics(K)["E_star"] - br.mid) <= 1e-6 * br.mid
    Ks = [K for K in mm.Ks if mm.status(K) == "ok"]
    ra = rate_audit(Ks, [mm.metrics(K)["E_star"] for K in Ks], target=T)
    assert abs(ra.slope + 2 * (T.a + 1)) <= 0.02 and ra.limit_digits >= 8
    assert all(c.ok for c in verify_rate(mm))


def test_rho1_rows_beat_the_plugin(rho1_table):
    rho = rho1_table
    T = parse_target(rho.target)
    for K, m in _certified_ok_rows(rho):
        if K <= 40 or K % 37 == 0 or K >= 256:  # recompute the plug-in's numbers at a subset
            pm = table_metrics(K, T.plugin(K), target=T)
            assert m["V_inf"] <= pm["V_inf"] * (1 + 1e-9)
            assert m["beta_cert"] < pm["beta"]
