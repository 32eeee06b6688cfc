"""Tests of the auditing figures, the report sections and the README assembly (small inputs)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.report import alpha as A
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
    assert "target p^0.5" in parts and "target p^-0.5" in parts
    assert "kl-minimax" in str(ei.value) and "pow0.5-minimax" in str(ei.value)
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
    """Independent of the generator: click's own command registry, every family loaded (by
    cli_section's own listing: loading a family registers all of its commands)."""
    from aqpgen import cli

    md = readme.cli_section(main)
    assert set(main.commands) == set(cli.COMMANDS)  # the lazy map names exactly what is registered
    summary = readme.cli_summary(main)  # the README's block names every command too
    for name in main.commands:
        assert f"`aqpgen {name}" in md and f"`{name}" in summary


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
    from aqpgen.store.content import make_table
    from aqpgen.store.manifest import update_manifest
    from aqpgen.store.tablefile import write_table

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
    assert "\n# [" in usage and ">>>" not in usage and "make bench" in usage and " ms" not in usage


def test_report_compare_agrees_with_cli():
    """The report's compare tables are the text `aqpgen compare --markdown` prints."""
    md = sections.compare_markdown((4, 8))
    r = CliRunner().invoke(main, ["compare", "--K", "4,8", "--markdown"])
    assert r.exit_code == 0, r.output
    assert md.strip() in r.output


def test_report_compare_rows_match_cli():
    """The compare rows of the committed docs/report.md at K = 8, 16, 64 are what
    `aqpgen compare --K 8,16,64 --markdown` prints now (the report is regenerated, never typed)."""
    text = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    text = text.split("## Comparison with the classical estimators", 1)[-1].split("\n## ", 1)[0]
    rows = [ln for ln in text.splitlines() if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    assert rows, "docs/report.md has no generated compare rows (run `make report`)"
    r = CliRunner().invoke(main, ["compare", "--K", "8,16,64", "--markdown"])
    assert r.exit_code == 0, r.output
    cli_rows = [ln for ln in r.output.splitlines() if re.match(r"\| (8|16|64) \| [a-z]", ln)]
    assert rows == cli_rows


def test_K_list_compresses_runs_on_the_standard_grid():
    assert markdown.K_list([]) == "—"
    assert markdown.K_list([80, 97]) == "80, 97"
    assert markdown.K_list([117, 137, 139, 140, 141]) == "117, 137, 139–141 (5 values)"
    assert markdown.K_list([255, 256, 320, 384]) == "255–384 (4 values)"


# ------------------------------------------------------------------ power targets (issue 10)
_TINY_KS = (4, 6, 8)


@pytest.fixture(scope="module")
def tiny_pow_tables(tmp_path_factory):
    """pow0.5 / pow-0.5 minimax and aqp-rho1 tables at K = 4, 6, 8, built here by the generators."""
    from aqpgen.generators import aqp, minimax
    from aqpgen.store.content import make_table
    from aqpgen.store.manifest import update_manifest
    from aqpgen.store.tablefile import write_table

    d = tmp_path_factory.mktemp("powtables")
    for tg in A.POWER_TARGETS:
        mm, rho = A.declared_tables(tg)
        prm = {"target": tg}
        write_table(d / f"{mm}.h5", make_table(
            name=mm, family="pow", target=tg, method="minimax", params=prm,
            provenance={"command": "test"}, results=[minimax.build_K(K, prm) for K in _TINY_KS]))
        prm = {"target": tg, "rho": 1.0}
        write_table(d / f"{rho}.h5", make_table(
            name=rho, family="pow", target=tg, method="aqp", params=prm,
            provenance={"command": "test"}, results=[aqp.build_K(K, prm) for K in _TINY_KS]))
    update_manifest(d)
    return d


@pytest.fixture
def tiny_env(tiny_pow_tables, monkeypatch):
    monkeypatch.setenv("AQPGEN_TABLES", str(tiny_pow_tables))
    monkeypatch.setattr(A, "RATE_RANGE", (4, 8))
    return tiny_pow_tables


def _fake_game():
    res = {}
    for alpha, tg in ((0.5, "p^-0.5"), (1.5, "p^0.5")):
        names = ["plugin", *A.declared_tables(tg)]
        res[alpha] = {"target": tg, "live": {"zipf": 3},
                      "exact": {"zipf": {n: {"K": [8, 64], "tv": [0.01 * (i + 1), 0.5], "slope": -1.0,
                                             "tv_rloo": [0.5, 0.1], "tv_rloo_comp": [0.5, 0.1]}
                                         for i, n in enumerate(names)}},
                      "sampled": {"zipf": {n: {"K": [8], "mean": [0.25], "std": [0.01]} for n in names}}}
    return {"alphas": res, "seeds": 3, "notes": []}


def _col(line: str, i: int) -> float:
    """Column i (1-based after the leading "|") of a Markdown table row, as a float."""
    return float(line.split("|")[i])


def test_alpha_sections_from_tiny_tables(tiny_env, tmp_path):
    from aqpgen.store.tablefile import read_table

    game = _fake_game()
    for tg in A.POWER_TARGETS:
        fig = tmp_path / A.figure_name(tg, 8)
        parts = A.target_sections(str(tiny_env), tg, K=8, quick=True, game=game, fig_path=fig)
        # rate: the slope is the least-squares fit of the table's own E*_K (numpy as the oracle)
        t = read_table(tiny_env / f"{A.declared_tables(tg)[0]}.h5")
        E = [t.metrics(K)["E_star"] for K in _TINY_KS]
        slope = np.polyfit(np.log(_TINY_KS), np.log(E), 1)[0]
        assert f"**{slope:+.5f}**" in parts["rate"]
        # compare: exactly what the command line prints
        r = CliRunner().invoke(main, ["compare", "--K", "8", "--target", tg, "--markdown"])
        assert r.exit_code == 0, r.output
        assert parts["compare"].strip() in r.output
        # the rho1 row is the shipped row: its V∞ does not exceed the plug-in's
        rows = {ln.split("|")[2].strip(): ln for ln in parts["compare"].splitlines()[2:]}
        assert set(rows) >= {"plugin", "minimax", "rho1"}
        assert _col(rows["rho1"], 5) <= _col(rows["plugin"], 5) * (1 + 1e-3)
        # frontier: the rho = 1 point is ok and has V∞ <= V∞(plug-in)
        fr = {ln.split("|")[1].strip(): ln for ln in parts["frontier"].splitlines() if ln.startswith("| ")}
        assert fr["AQP ρ = 1"].rstrip(" |").endswith("ok")
        assert _col(fr["AQP ρ = 1"], 3) <= _col(fr["`plugin`"], 3) * (1 + 1e-3)
        assert fig.exists() and fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "`plugin` 1.00e-02" in parts["game"] and f"`{A.declared_tables(tg)[1]}` 3.00e-02" in parts["game"]


def test_alpha_report_fails_on_a_missing_declared_table(tiny_env, tmp_path, monkeypatch):
    """The README block needs both tables of both targets; a missing one is a failed part."""
    import shutil

    d = tmp_path / "t"
    shutil.copytree(tiny_env, d)
    (d / "pow-0.5-aqp-rho1.h5").unlink()
    with pytest.raises(ValueError, match="table locator reads"):  # $AQPGEN_TABLES points elsewhere
        A.check_tables(str(d), "p^0.5")
    monkeypatch.setenv("AQPGEN_TABLES", str(d))
    assert set(A.check_tables(str(d), "p^0.5")) == set(A.declared_tables("p^0.5"))
    with pytest.raises(FileNotFoundError, match="pow-0.5-aqp-rho1"):
        A.check_tables(str(d), "p^-0.5")
    failures, sec = [], {}
    attempt = write.attempt_into(failures)

    write._alpha_sections(sec, attempt, [], tables_dir=str(d), quick=True, K=8,
                          figdir=str(tmp_path / "f"), odir=str(tmp_path),
                          game_json=str(tmp_path / "none.json"))
    assert [p for p, _ in failures] == [f"alpha-game results ({tmp_path / 'none.json'})", "target p^-0.5"]
    assert "pow-0.5-aqp-rho1" in failures[1][1] and "none.json" in failures[0][1]
    assert "alpha_report" not in sec


def test_alpha_report_section_assembles(tiny_env, tmp_path):
    import json

    from aqpgen.game import study

    gj = tmp_path / "game.json"
    gj.write_text(json.dumps(study._json_safe({"alpha": _fake_game(), "conventions": None})))
    failures, sec = [], {}
    attempt = write.attempt_into(failures)

    figs = []
    write._alpha_sections(sec, attempt, figs, tables_dir=str(tiny_env), quick=True, K=8,
                          figdir=str(tmp_path / "figures"), odir=str(tmp_path), game_json=str(gj))
    assert failures == []
    assert len(figs) == 2 and all(Path(f).exists() for f in figs)
    block = sec["alpha_report"]
    for tg in A.POWER_TARGETS:
        assert f"## Target {A.heading(tg)}" in block and f"figures/{A.figure_name(tg, 8)}" in block
    assert block.index(f"## Target {A.heading(A.POWER_TARGETS[-1])}") < block.index("## The α-game")


def test_readme_blocks_cover_the_fragments():
    """Every generated block of docs/readme/*.md is one the report produces."""
    names = {n for p in readme.fragment_paths(ROOT / "docs" / "readme")
             for n in readme.generated_names(Path(p).read_text(encoding="utf-8"))}
    assert {"recommend", "headline", "experiment"} <= names <= set(write.README_BLOCKS)


def test_readme_is_short():
    """The README is what a user reads first: under 300 lines (the studies live in docs/)."""
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n < 300, f"README.md has {n} lines"
