"""Tests of the auditing figures, the report sections and the README assembly (small inputs)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.report import audit_figures as F
from aqpgen.report import choices, markdown, readme, sections, write

ROOT = Path(__file__).resolve().parents[1]


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


def test_replace_and_extract_generated():
    t = ("a\n<!-- generated:results -->\nold\n<!-- /generated:results -->\nb\n"
         "<!-- generated:other -->\nkeep\n<!-- /generated:other -->\n")
    new = readme.replace_generated(t, "results", "new 1.5")
    assert "new 1.5" in new and "old" not in new and "keep" in new
    assert readme.extract_generated(new) == {"results": "new 1.5", "other": "keep"}
    with pytest.raises(ValueError, match="generated:missing"):
        readme.replace_generated(t, "missing", "x")


def test_readme_assembly_order_and_blocks(tmp_path):
    """Listed fragments in README_ORDER, unlisted ones after them alphabetically; every block filled."""
    d = tmp_path / "readme"
    d.mkdir()
    (d / "zeta.md").write_text("# zeta\n")
    (d / "choices.md").write_text("## choices\n<!-- generated:choices -->\n<!-- /generated:choices -->\n")
    (d / "intro.md").write_text("# intro\n")
    (d / "alpha.md").write_text("## alpha\n")
    (d / "aaa-extra.md").write_text("## extra\n")
    names = [Path(p).stem for p in readme.fragment_paths(d)]
    assert names == ["intro", "alpha", "choices", "aaa-extra", "zeta"]
    text = readme.assemble_readme(d, {"choices": "DEPS TABLE"})
    assert text.startswith(readme.HEADER)
    order = [text.index(x) for x in ("# intro", "## alpha", "## choices", "DEPS TABLE", "## extra", "# zeta")]
    assert order == sorted(order)
    with pytest.raises(ValueError, match="choices.md: generated block 'choices'"):
        readme.assemble_readme(d, {})
    out = tmp_path / "README.md"
    assert readme.write_readme(out, d, {"choices": "X"}) is True
    assert readme.write_readme(out, d, {"choices": "X"}) is False


def test_committed_readme_is_the_assembly_of_its_fragments():
    """README.md == the fragments of docs/readme/ with README.md's own generated blocks: no prose
    is typed into README.md directly (after adding a fragment: `aqpgen report --readme README.md
    --readme-only`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.assemble_readme(ROOT / "docs" / "readme", readme.extract_generated(text)) == text


def test_readme_has_no_timings():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"\d(\.\d+)? ?(ms|s)\b.*measured|took \d|measured on the build machine", text)


@pytest.fixture
def cheap_report(monkeypatch):
    """Replace the expensive parts (simulation, compare, frontier, peers' β) by stand-ins."""
    monkeypatch.setattr(write.simulation, "simulation_data", lambda *a, **k: {"exact": {}, "sampled": {},
                                                                               "curves": {}, "seeds": 0})
    monkeypatch.setattr(write.sections, "compare_markdown", lambda Ks: f"CMP {list(Ks)}")
    monkeypatch.setattr(F, "beta_series", lambda d, Ks: {"x": ([16, 32], [0.1, 0.025])})
    monkeypatch.setattr(F, "frontier", lambda K, p, pts=None: F.beta_vs_K(None, p, series={"y": ([16, 32], [1.0, 0.5])}))
    monkeypatch.setattr(write.sections, "frontier_points", lambda K: [])


def test_report_fails_loudly_without_tables(tmp_path, cheap_report):
    """A section that cannot be produced fails the report (naming it) and writes nothing."""
    out = tmp_path / "docs" / "report.md"
    with pytest.raises(write.ReportError) as ei:
        write.write_report(str(out), tables_dir=str(tmp_path / "none"), quick=True, K=8)
    parts = [p for p, _ in ei.value.failures]
    assert "tables" in parts and "minimax rate" in parts
    assert "kl-minimax" in str(ei.value)
    assert not out.exists()


def test_cli_report_exit_code(tmp_path, cheap_report):
    r = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "r.md"), "--tables",
                                  str(tmp_path / "none"), "--quick", "--K", "8"])
    assert r.exit_code == 1
    assert "could not be produced" in r.output and "tables" in r.output
    assert not (tmp_path / "r.md").exists()


def test_cli_readme_only(tmp_path):
    d = tmp_path / "docs" / "readme"
    d.mkdir(parents=True)
    (d / "intro.md").write_text("# t\n<!-- generated:cli -->\n<!-- /generated:cli -->\n")
    rm = tmp_path / "README.md"
    rm.write_text("<!-- generated:cli -->\nOLD CLI\n<!-- /generated:cli -->\n")
    r = CliRunner().invoke(main, ["report", "--readme", str(rm), "--readme-only"])
    assert r.exit_code == 0, r.output
    assert rm.read_text().startswith(readme.HEADER) and "OLD CLI" in rm.read_text()
    (d / "usage.md").write_text("<!-- generated:usage -->\n<!-- /generated:usage -->\n")
    r = CliRunner().invoke(main, ["report", "--readme", str(rm), "--readme-only"])
    assert r.exit_code == 1 and "usage" in r.output


def test_md_table_escapes_pipes():
    t = markdown.md_table(["K", "max|c|"], [[1, "a|b"], [2, "c\\|d"]])
    assert "max\\|c\\|" in t and "a\\|b" in t and "c\\|d" in t and "c\\\\|d" not in t
    assert all(line.count("|") - line.count("\\|") == 3 for line in t.splitlines())


def test_cli_section_lists_every_command():
    """Independent of the generator: click's own command registry."""
    md = readme.cli_section(main)
    for name in main.commands:
        assert f"`aqpgen {name}" in md


def test_imports_found_by_ast(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import numpy as np\nfrom scipy.special import xlogy\n"
                                          "def f():\n    import sympy\nfrom . import b\n")
    got = choices._imports(str(tmp_path), "pkg")
    assert got == {"numpy": ["a.py"], "scipy": ["a.py"], "sympy": ["a.py"]}


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
    md = sections.tables_section(str(d))
    assert "`power-m1`" in md and "2–8" in md and "3 / 0" in md and "`kl-minimax`" in md
    rd = sections.rate_data(str(d))
    assert rd["audit"].slope == pytest.approx(-2.0, abs=0.01)
    # Richardson in 1/K^2 recovers C = 0.3 exactly from C/K^2 + 0.1/K^4
    assert float(rd["audit"].limit) == pytest.approx(0.3, rel=1e-9)
    assert rd["f64_first_bad"] == 64 and rd["f64_last_good"] == 32
    assert rd["growth_log10_per_K"] == pytest.approx(0.3)
    text = sections.f64_markdown(rd)
    assert "from K = 64" in text and "up to K = 32" in text
    usage = sections.usage_section(str(d))
    assert "array([" in usage and "make bench" in usage and " ms" not in usage


def test_report_compare_agrees_with_cli():
    """The report's compare tables are the text `aqpgen compare --markdown` prints."""
    md = sections.compare_markdown((4, 8))
    r = CliRunner().invoke(main, ["compare", "--K", "4,8", "--markdown"])
    assert r.exit_code == 0, r.output
    assert md.strip() in r.output


def test_readme_compare_block_matches_cli():
    """The compare rows in the committed README are what `aqpgen compare --K 8,16,64 --markdown`
    prints now (the README is regenerated, never typed)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.extract_generated(text).get("results-compare", "")
    rows = [ln for ln in block.splitlines() if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    assert rows, "README has no generated compare rows (run `make report`)"
    r = CliRunner().invoke(main, ["compare", "--K", "8,16,64", "--markdown"])
    assert r.exit_code == 0, r.output
    cli_rows = [ln for ln in r.output.splitlines() if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    assert rows == cli_rows


def test_K_list_compresses_runs_on_the_standard_grid():
    assert markdown.K_list([]) == "—"
    assert markdown.K_list([80, 97]) == "80, 97"
    assert markdown.K_list([117, 137, 139, 140, 141]) == "117, 137, 139–141 (5 values)"
    assert markdown.K_list([255, 256, 320, 384]) == "255–384 (4 values)"
