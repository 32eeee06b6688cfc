"""The shape constraint's report section, README sentence and ``aqpgen show`` line
(aqpgen.report.shape), on tiny tables: a two-row copy of the shipped kl-aqp-rho4 / kl-aqp-rho8
and a shape-constrained table built here.

Oracles (the p^-0.5 pair: two rows of the shipped pow-0.5-aqp-rho8 and its -mono): decreasing
steps counted by a Python loop; ratios recomputed from the files' own
stored β; the constrained optimum not below the free one (solver tolerance).
"""

import os
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.generators import aqp
from aqpgen.report import shape, write
from aqpgen.store import content, tablefile

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
KS = (8, 16)


def _loop_steps(v):
    return sum(1 for i in range(len(v) - 1) if float(v[i + 1]) < float(v[i]))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("shape_tables")
    for name in (shape.FREE, shape.FREE8, *shape.POW_PAIR):
        src = os.path.join(ROOT, "tables", name + ".h5")
        if not os.path.exists(src):
            pytest.skip(f"shipped table {name} not present")
        t = tablefile.read_table(src)
        tablefile.write_table(d / (name + ".h5"), replace(
            t, Ks=KS, rows={K: t.rows[K] for K in KS}, content_hash=None))
    params = {"rho": 4, "shape": "monotone"}
    t = content.make_table(name=shape.MONO, family="kl", target="log p", method="aqp",
                             params=params, provenance={"test": True},
                             results=[aqp.build_K(K, params) for K in KS])
    tablefile.write_table(d / (shape.MONO + ".h5"), t)
    return d


def test_decreasing_steps():
    v = np.array([-3.0, -1.0, -2.0, -2.0, -0.5, -0.6])
    assert shape.decreasing_steps(v) == _loop_steps(v) == 2
    assert shape.decreasing_steps([-1.0, -0.0, 0.0]) == 0


def test_shipped_data_ratios(tiny):
    sh = shape.shipped_data(str(tiny))
    free = tablefile.read_table(tiny / (shape.FREE + ".h5"))
    mono = tablefile.read_table(tiny / (shape.MONO + ".h5"))
    assert [d["K"] for d in sh] == list(KS)
    for d in sh:
        K = d["K"]
        assert d["ratio"] == mono.rows[K].metrics["beta"] / free.rows[K].metrics["beta"]
        assert d["ratio"] >= 1 - 1e-3
        assert d["steps_free"] == _loop_steps(free.rows[K].values)
        assert d["steps_mono"] == 0 == _loop_steps(mono.rows[K].values)


def test_solved_small_and_markdown(tiny, tmp_path):
    solved = shape.solved_data((8,), (1, 8))
    r1, r8 = (solved[(8, r)] for r in (1, 8))
    assert all(x.status == "ok" for d in (r1, r8) for x in d.values())
    assert r8["mono"].beta / r8["free"].beta > 1.2   # at rho = 8 the shape costs bias at K = 8
    assert abs(r1["mono"].beta / r1["free"].beta - 1) < 1e-2  # at rho = 1 it is free
    sh = shape.shipped_data(str(tiny))
    md = shape.shape_markdown(solved, sh)
    assert f"{r8['mono'].beta / r8['free'].beta:.3f}" in md
    assert f"{sh[1]['ratio']:.3f}" in md and shape.MONO in md
    path = tmp_path / "f.png"
    assert shape.shape_figure(solved, sh, path) == str(path) and path.stat().st_size > 0


def test_sentence_and_show(tiny):
    free = tablefile.read_table(tiny / (shape.FREE + ".h5"))
    s = shape.shape_sentence(str(tiny))
    assert f"falls at {_loop_steps(free.rows[16].values)} of 15 steps at K = 16" in s
    assert "Only the mean" in s and shape.MONO in s
    r = CliRunner().invoke(main, ["show", str(tiny / (shape.FREE + ".h5")), "--K", "16"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("  shape"))
    assert f"this row falls at {_loop_steps(free.rows[16].values)} of 15 steps" in line
    assert "only the mean is constrained" in line and shape.MONO in line
    r = CliRunner().invoke(main, ["show", str(tiny / (shape.MONO + ".h5"))])
    assert "shape 'monotone'" in r.output and "0 of 2 ok rows" in r.output
    r = CliRunner().invoke(main, ["show", str(tiny / (shape.POW_PAIR[0] + ".h5")), "--K", "16"])
    pw = tablefile.read_table(tiny / (shape.POW_PAIR[0] + ".h5")).rows[16].values
    rises = sum(1 for i in range(15) if float(pw[i + 1]) > float(pw[i]))
    assert f"this row rises at {rises} of 15 steps" in r.output and shape.POW_PAIR[1] in r.output
    r = CliRunner().invoke(main, ["show", os.path.join(ROOT, "tables", "power-m2.h5")])
    assert "  shape" not in r.output


def test_report_section_assembles(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(shape, "SOLVED_KS_QUICK", (8,))
    monkeypatch.setattr(shape, "SOLVED_RHOS", (2,))
    monkeypatch.setattr(shape, "solved_data", lambda Ks, rhos=(2,), f=shape.solved_data: f(Ks, rhos))
    failures, sec, figs = [], {}, []
    attempt = write.attempt_into(failures)
    write._shape_sections(sec, attempt, figs, tables_dir=str(tiny), quick=True,
                          figdir=str(tmp_path / "figures"), odir=str(tmp_path))
    assert failures == []
    assert "figures/shape_cost.png" in sec["shape_report"] and "ρ = 2" in sec["shape_report"]
    assert sec["shape_report"].startswith("Only the mean")
    pw = shape.shipped_data(str(tiny), *shape.POW_PAIR, None)
    assert f"has β ratio {min(d['ratio'] for d in pw):.3f}" in sec["shape_report"]
    assert figs == [str(tmp_path / "figures" / "shape_cost.png")]
    failures.clear()
    write._shape_sections(sec := {}, attempt, [], tables_dir=str(tmp_path / "none"), quick=True,
                          figdir=str(tmp_path / "figures"), odir=str(tmp_path))
    assert {p for p, _ in failures} == {"shape: shipped tables", "shape sentence"}
