"""Two builds of a table compared row by row: 'values differ' vs 'metrics differ in the last bits'
(aqpgen.build.diff, ``aqpgen verify --against``, and the manifest check's message)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from click.testing import CliRunner

from aqpgen.build.diff import diff_tables, rel_diff
from aqpgen.build.verify import verify_against
from aqpgen.cli import main
from aqpgen.store.content import Row
from aqpgen.store.manifest import check_manifest, update_manifest
from aqpgen.store.tablefile import write_table


def _with_row(table, K, **changes):
    rows = dict(table.rows)
    r = rows[K]
    rows[K] = Row(changes.get("values", r.values), r.values_hp, changes.get("metrics", r.metrics),
                  r.status, r.solver)
    return replace(table, rows=rows, content_hash=None)


def test_rel_diff_is_symmetric_and_handles_non_finite():
    x = np.array([1.0, 0.0, np.inf, np.nan, 2.0, 1.0])
    y = np.array([1.0, 0.0, np.inf, np.nan, 2.0 * (1 + 2**-52), np.inf])
    r = rel_diff(x, y)
    assert list(r[:4]) == [0.0, 0.0, 0.0, 0.0]
    assert r[4] == rel_diff(y[4], x[4]) and 0 < r[4] < 3e-16
    assert r[5] == math.inf


def test_identical_builds(small_table, tmp_path):
    write_table(tmp_path / "a.h5", small_table)
    write_table(tmp_path / "b.h5", small_table)
    d = diff_tables(tmp_path / "a.h5", tmp_path / "b.h5")
    assert d.identical and d.compared == 3
    assert d.summary() == ["values identical at all 3 K"]


def test_metrics_in_the_last_bits_are_not_values(small_table, tmp_path):
    b = _with_row(small_table, 3, metrics={"beta": float("nan"), "V1": 0.125 * (1 + 2**-52)})
    d = diff_tables(small_table, b)
    assert d.values_identical and not d.identical
    lines = d.summary()
    assert lines[0] == "values identical at all 3 K"
    assert lines[1].startswith("metric V1 differs in the last bits at 1 of 3 K (3; max relative")
    checks = {c.name: c for c in _against(small_table, b, tmp_path)}
    assert checks["against.values"].ok and not checks["against.metrics"].ok
    assert "in the last bits" in checks["against.metrics"].detail


def test_changed_values_are_reported_as_values(small_table, tmp_path):
    b = _with_row(small_table, 2, values=np.array([0.25, 1.0 + 1e-9]))
    d = diff_tables(small_table, b)
    assert not d.values_identical
    assert d.summary()[0].startswith("VALUES differ at 1 of 3 K (2; max relative difference 1e-09)")
    checks = {c.name: c for c in _against(small_table, b, tmp_path)}
    assert not checks["against.values"].ok and "VALUES differ" in checks["against.values"].detail


def _against(a, b, tmp_path):
    write_table(tmp_path / "ref.h5", a)
    write_table(tmp_path / "new.h5", b)
    return verify_against(tmp_path / "new.h5", tmp_path / "ref.h5")


def test_the_manifest_check_says_what_changed(small_table, tmp_path):
    d = tmp_path / "t"
    d.mkdir()
    write_table(d / "small.h5", small_table)
    update_manifest(d)
    assert all(c.ok for c in check_manifest(d / "small.h5"))
    # a metric rewritten behind the manifest's back: the values still match their digests
    write_table(d / "small.h5", _with_row(small_table, 3, metrics={"beta": 1.0, "V1": 0.125}))
    (c,) = check_manifest(d / "small.h5")
    assert not c.ok and "values identical to the manifest's at all 3 K" in c.detail
    assert "sections: metrics" in c.detail
    write_table(d / "small.h5", _with_row(small_table, 2, values=np.array([0.5, 1.0])))
    (c,) = check_manifest(d / "small.h5")
    assert not c.ok and "VALUES differ from the manifest at 1 K (2)" in c.detail


def test_cli_verify_against(small_table, tmp_path):
    b = _with_row(small_table, 3, metrics={"beta": float("nan"), "V1": 0.125 * (1 + 2**-52)})
    (tmp_path / "ref").mkdir()
    write_table(tmp_path / "ref" / "small.h5", small_table)
    write_table(tmp_path / "small.h5", b)
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "small.h5"), "--against",
                                  str(tmp_path / "ref")])
    assert r.exit_code == 1
    assert "ok   against.values: values identical at all 3 K" in r.output
    assert "FAIL against.metrics: metric V1 differs in the last bits" in r.output
    r = CliRunner().invoke(main, ["verify", str(tmp_path / "small.h5"), "--against",
                                  str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "--against" in r.output
