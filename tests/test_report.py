"""Tests of the auditing figures and the report generator (small inputs, quick mode)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from aqpgen.report import audit_figures as F
from aqpgen.report import core as report


def test_png_bytes_deterministic(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    F.bias_curves(8, tmp_path, a)
    F.bias_curves(8, tmp_path, b)
    assert a.read_bytes() == b.read_bytes()
    series = {"x": ([16, 32, 64], [1 / 16**2, 1 / 32**2, 1 / 64**2])}
    F.beta_vs_K(tmp_path, a, series=series)
    F.beta_vs_K(tmp_path, b, series=series)
    assert a.read_bytes() == b.read_bytes()


def test_weighted_bias_curve_closed_form():
    """digamma: p·bias(p) = p·sum_{j>=K} (1-p)^j/j (exact tail), evaluated independently."""
    from aqpgen.generators import peers

    K = 12
    p = np.array([0.01, 0.1, 0.5, 0.9])
    want = [pi * sum((1 - pi) ** j / j for j in range(K, 4000)) for pi in p]
    got = F.weighted_bias_curve(peers.peer_table("digamma", K), p)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-16)


def test_fit_slope():
    Ks = [8, 16, 32, 64]
    assert F.fit_slope(Ks, [3.0 / k**2 for k in Ks]) == pytest.approx(-2.0, abs=1e-12)
    assert np.isnan(F.fit_slope([2, 4], [1, 2]))


def test_replace_generated_and_readme(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("a\n<!-- generated:results -->\nold\n<!-- /generated:results -->\nb\n"
                 "<!-- generated:other -->\nkeep\n<!-- /generated:other -->\n")
    assert report.update_readme(str(p), {"results": "new 1.5", "other": "x"}) == ["results"]
    t = p.read_text()
    assert "new 1.5" in t and "old" not in t and "keep" in t
    assert report.update_readme(str(p), {"results": "new 1.5"}) == []
    with pytest.raises(ValueError, match="generated:missing"):
        report.replace_generated(t, "missing", "x")


def test_quick_report_without_tables(tmp_path, monkeypatch):
    """With no tables and no simulation, the report still writes and lists what it skipped."""
    monkeypatch.setattr(report, "simulation_data", lambda *a, **k: None)
    monkeypatch.setattr(report, "compare_markdown", lambda Ks: f"CMP {list(Ks)}")
    monkeypatch.setattr(F, "beta_series", lambda d, Ks: {"x": ([16, 32], [0.1, 0.025])})
    monkeypatch.setattr(F, "frontier", lambda K, p: F.beta_vs_K(None, p, series={"y": ([16, 32], [1.0, 0.5])}))
    out = tmp_path / "docs" / "report.md"
    res = report.write_report(str(out), tables_dir=str(tmp_path / "none"), quick=True, K=8)
    text = out.read_text()
    assert (tmp_path / "docs" / "figures" / "bias_K8.png").exists()
    assert "CMP [4, 8]" in text
    assert any("kl-minimax" in n for n in res.notes)
    assert "CMP [8, 16, 64]" in res.sections["results"]
    assert set(report.README_SECTIONS) <= set(res.sections)
    # the README blocks exist even when their inputs are missing, and say why
    assert "not available" in res.sections["tables"]


def test_md_table_escapes_pipes():
    t = report._md_table(["K", "max|c|"], [[1, "a|b"], [2, "c\\|d"]])
    assert "max\\|c\\|" in t and "a\\|b" in t and "c\\|d" in t and "c\\\\|d" not in t
    assert all(line.count("|") - line.count("\\|") == 3 for line in t.splitlines())


def test_cli_section_lists_every_command():
    """Independent of the generator: click's own command registry."""
    from aqpgen.cli import main

    md = report.cli_section()
    for name in main.commands:
        assert f"`aqpgen {name}" in md


def test_imports_found_by_ast(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import numpy as np\nfrom scipy.special import xlogy\n"
                                          "def f():\n    import sympy\nfrom . import b\n")
    got = report._imports(str(tmp_path), "pkg")
    assert got == {"numpy": ["a.py"], "scipy": ["a.py"], "sympy": ["a.py"]}


def test_lookup_overhead_measures_both():
    class T:
        def lookup(self, c, K):
            return np.log(c / K)

    (K, a, b, r), = report.lookup_overhead(T(), (8,), size=1000, repeats=2)
    assert K == 8 and a > 0 and b > 0 and r == pytest.approx(a / b)


def _toy_tables(tmp_path):
    """A tiny tables/ dir: a power table and a fake 'kl-minimax' with known E*_K = C/K^2 rows."""
    from aqpgen.generators import power
    from aqpgen.records import KResult
    from aqpgen.store.tablefile import make_table, update_manifest, write_table

    d = tmp_path / "tables"
    d.mkdir()
    params = {"m": 1}
    write_table(d / "power-m1.h5", make_table(name="power-m1", family="power", target="p", method="ustat",
                                             params=params, provenance={"command": "test"},
                                             results=[power.build_K(K, params) for K in (2, 4, 8)]))
    C = 0.3
    res = []
    for K in (8, 16, 32, 64, 128):
        m = {"E_star": C / K**2 + 0.1 / K**4, "beta": C / K**2, "beta_cert": 1.001 * C / K**2,
             "beta_f64": (C / K**2) * (1.0 if K < 64 else 1e6), "log10_max_abs_c": 0.3 * K}
        res.append(KResult(K=K, values=np.zeros(K), values_hp=None, metrics=m, status="ok", solver={}))
    write_table(d / "kl-minimax.h5", make_table(name="kl-minimax", family="kl", target="log p",
                                               method="minimax", params={}, provenance={"command": "test"},
                                               results=res))
    update_manifest(d)
    return d


def test_sections_from_toy_tables(tmp_path):
    d = _toy_tables(tmp_path)
    md = report.tables_section(str(d))
    assert "`power-m1`" in md and "2–8" in md and "3 / 0" in md and "`kl-minimax`" in md
    rd = report.rate_data(str(d))
    assert rd["audit"].slope == pytest.approx(-2.0, abs=0.01)
    # Richardson in 1/K^2 recovers C = 0.3 exactly from C/K^2 + 0.1/K^4
    assert float(rd["audit"].limit) == pytest.approx(0.3, rel=1e-9)
    assert rd["f64_first_bad"] == 64 and rd["f64_last_good"] == 32
    assert rd["growth_log10_per_K"] == pytest.approx(0.3)
    text = report.f64_markdown(rd)
    assert "from K = 64" in text and "up to K = 32" in text
    usage = report.usage_section(str(d), quick=True)
    assert "array([" in usage and "ratio" in usage


def test_update_readme_all_sections(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("".join(f"<!-- generated:{n} -->\nold\n<!-- /generated:{n} -->\n" for n in report.README_SECTIONS))
    secs = {n: f"new {n}" for n in report.README_SECTIONS}
    assert report.update_readme(str(p), secs) == list(report.README_SECTIONS)
    t = p.read_text()
    assert "old" not in t and all(f"new {n}" in t for n in report.README_SECTIONS)


@pytest.mark.skipif(importlib.util.find_spec("aqpgen.generators.compare") is None, reason="aqpgen.compare not built yet")
def test_report_compare_agrees_with_cli():
    """The report's compare tables are the text `aqpgen compare --markdown` prints."""
    from click.testing import CliRunner

    from aqpgen.cli import main

    md = report.compare_markdown((4, 8))
    r = CliRunner().invoke(main, ["compare", "--K", "4,8", "--markdown"])
    if r.exit_code != 0:
        pytest.skip(f"aqpgen compare --markdown unavailable: {r.output[:200]}")
    assert md.strip() in r.output


def test_readme_compare_block_matches_cli():
    """The compare rows in the committed README are what `aqpgen compare --K 8,16,64 --markdown`
    prints now (the README is regenerated, never typed)."""
    import re
    from pathlib import Path

    from click.testing import CliRunner

    from aqpgen.cli import main

    readme = Path(__file__).resolve().parents[1] / "README.md"
    m = re.search(r"<!-- generated:results -->(.*?)<!-- /generated:results -->", readme.read_text(), re.DOTALL)
    rows = [ln for ln in (m.group(1) if m else "").splitlines()
            if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    if not rows:
        pytest.skip("README has no generated compare table yet (run `make report`)")
    r = CliRunner().invoke(main, ["compare", "--K", "8,16,64", "--markdown"])
    assert r.exit_code == 0, r.output
    cli_rows = [ln for ln in r.output.splitlines() if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    assert rows == cli_rows


def test_K_list_compresses_runs_on_the_standard_grid():
    assert report._K_list([]) == "—"
    assert report._K_list([80, 97]) == "80, 97"
    assert report._K_list([117, 137, 139, 140, 141]) == "117, 137, 139–141 (5 values)"
    assert report._K_list([255, 256, 320, 384]) == "255–384 (4 values)"
