"""The README as a user reads it: every Python block runs as written, the "Build your own table"
spec builds, and the generated blocks are current.

* Blocks: the README is assembled from docs/readme/*.md with the generated blocks of the
  committed README.md (what ``aqpgen report --readme-only`` does; that README.md is that assembly
  is tests/test_report.py's check); each ```python block runs in a
  fresh interpreter from an empty temporary directory.  A block that imports an optional
  framework (torch, jax) is skipped, with the reason, when it is not installed (CI installs them);
  the trainer blocks (TRL, verl, OpenRLHF: they take a model, tokenizer and dataset as given) are
  run by tests/test_readme_trainers.py with those supplied, so here they must only be that file's
  blocks verbatim.
* Staleness: every generated block that derives from the table files or the CLI (tables, usage,
  cli, recommend, headline, choices, experiment) is regenerated here and compared with the
  committed README.md, and the table-derived sections of docs/report.md (shipped tables, runtime
  usage, minimax rate, float64 reach, preset reach, choices) must appear in it verbatim.  The
  other report sections (figures, peer comparisons, the simulator: minutes) are not regenerated.
  Regenerate with ``make report`` (``aqpgen report --out docs/report.md --readme README.md``);
  after editing only fragments, ``aqpgen report --readme README.md --readme-only``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from aqpgen.experiments.plan import read_results
from aqpgen.report import choices, experiments, readme, sections
from aqpgen.report.write import EXPERIMENT_JSON

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REPORT = ROOT / "docs" / "report.md"
TABLES = "tables"  # relative, as `make report` runs it from the repository root
REGENERATE = ("make report (aqpgen report --out docs/report.md --readme README.md); after editing "
              "only fragments: aqpgen report --readme README.md --readme-only")
#: modules whose blocks need an optional framework (skipped, with the reason, when missing)
OPTIONAL = ("torch", "jax", "trl", "verl", "openrlhf", "transformers")
TRAINERS = ("from trl", "trl_async_reward_func", "aqpgen.integrations.verl", "aqpgen.integrations.openrlhf")


def _assembled() -> str:
    old = readme.extract_generated(README.read_text(encoding="utf-8"))
    return readme.assemble_readme(ROOT / readme.FRAGMENTS_DIR, old)


def _blocks(lang: str, text: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


PY_BLOCKS = _blocks("python", _assembled())


def test_readme_has_python_blocks():
    assert len(PY_BLOCKS) >= 2


@pytest.mark.parametrize("code", PY_BLOCKS, ids=[f"block{i}" for i in range(len(PY_BLOCKS))])
def test_python_block_runs_as_written(code, tmp_path):
    assert ">>>" not in code, "a block mixing >>> prompts with statements cannot be pasted"
    if any(t in code for t in TRAINERS):
        trainers = (ROOT / "docs" / "readme" / "trainers.md").read_text(encoding="utf-8")
        assert code in _blocks("python", trainers), "trainer blocks are run by test_readme_trainers"
        return
    for mod in OPTIONAL:
        if re.search(rf"^\s*(import|from) {mod}\b", code, flags=re.MULTILINE) and \
                importlib.util.find_spec(mod) is None:
            pytest.skip(f"the block imports {mod}, which is not installed (CI installs it)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, check=False,
                         text=True, timeout=300)
    assert res.returncode == 0, f"README block failed:\n{code}\n{res.stderr[-3000:]}"


def test_build_your_own_table_spec_builds(tmp_path):
    """The spec of "Build your own table" builds as written, and its tables are served by name."""
    from aqpgen.build.build import build
    from aqpgen.runtime import load_table

    text = (ROOT / "docs" / "readme" / "build.md").read_text(encoding="utf-8")
    (spec,) = _blocks("toml", text)
    path = tmp_path / "my-tables.toml"
    path.write_text(spec)
    outcomes = build(str(path), str(tmp_path / "my-tables"))
    assert [o.action for o in outcomes] == ["built"] * len(outcomes) and len(outcomes) == 2
    cubic = load_table(str(tmp_path / "my-tables" / "cubic.h5"))
    # p^3 - p is exactly unbiased: c_K[n] = (n-1)_3 / (K-1)_3 - (n-1)/(K-1) (falling factorials)
    for K in cubic.Ks:
        want = [float(Fraction((n - 1) * (n - 2) * (n - 3), (K - 1) * (K - 2) * (K - 3))
                      - Fraction(n - 1, K - 1)) for n in range(1, K + 1)]
        assert cubic.lookup(list(range(1, K + 1)), K).tolist() == pytest.approx(want, abs=1e-15)
    assert "rho_budget" in load_table(str(tmp_path / "my-tables" / "kl-aqp-rho3.h5")).metrics(8)


def test_build_help_points_to_the_spec_keys():
    """``aqpgen build --help`` names the one place the keys are documented, and that place
    documents every key the validator accepts and every registered generator."""
    from click.testing import CliRunner

    from aqpgen.build import spec
    from aqpgen.cli import main

    out = " ".join(CliRunner().invoke(main, ["build", "--help"]).output.split())
    assert "docs/BUILDING.md" in out and "Build your own table" in out
    doc = (ROOT / "docs" / "BUILDING.md").read_text(encoding="utf-8")
    for key in sorted(spec._SPEC_KEYS) + sorted(spec._KEY_RULES):
        assert f"`{key}" in doc, key
    for family, method in spec.GENERATORS:
        assert f"`{family}`, `{method}`" in doc or f"`{family}`, `minimax` / `aqp`" in doc


@pytest.fixture(scope="module")
def regenerated() -> dict:
    """Every cheap generated section, computed now from the table files and the CLI."""
    from aqpgen.cli import main

    here, env = os.getcwd(), os.environ.pop("AQPGEN_TABLES", None)  # only the shipped tables
    os.chdir(ROOT)
    try:
        return _sections(main)
    finally:
        os.chdir(here)
        if env is not None:
            os.environ["AQPGEN_TABLES"] = env


def _sections(main) -> dict:
    rd = sections.rate_data(TABLES)
    reach = sections.preset_reach(TABLES)
    return {
        "tables": sections.tables_section(TABLES),
        "usage": sections.usage_section(TABLES),
        "cli": readme.cli_summary(main),
        "recommend": sections.recommend_markdown(),
        "headline": sections.headline_markdown(rd),
        "experiment": experiments.headline_markdown(read_results(EXPERIMENT_JSON),
                                                    link="docs/experiments.md"),
        "choices": choices.choices_readme(TABLES, reach, rd),
        "choices_full": choices.choices_section(TABLES, reach, rd),
        "rate_full_head": sections.rate_markdown(rd),
        "f64": sections.f64_markdown(rd),
        "reach": sections.reach_markdown(reach),
    }


README_BLOCKS = ("tables", "usage", "cli", "recommend", "headline", "experiment", "choices")


@pytest.mark.parametrize("name", README_BLOCKS)
def test_readme_generated_block_is_current(regenerated, name):
    committed = readme.extract_generated(README.read_text(encoding="utf-8"))
    assert name in committed, f"README.md has no generated block {name!r}"
    _same(committed[name], regenerated[name], f"README.md block {name!r}")


@pytest.mark.parametrize("name", ["tables", "usage", "rate_full_head", "f64", "reach", "choices_full"])
def test_report_table_sections_are_current(regenerated, name):
    report = REPORT.read_text(encoding="utf-8")
    body = regenerated[name].strip("\n")
    if body not in report:
        head = body.splitlines()[0][:40]
        at = report.find(head)
        old = report[at:at + len(body)] if at >= 0 else ""
        _same(old, body, f"docs/report.md section {name!r}")


def _same(old: str, new: str, what: str) -> None:
    if old.strip("\n") == new.strip("\n"):
        return
    a, b = old.strip("\n").splitlines(), new.strip("\n").splitlines()
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    pytest.fail(f"{what} is stale (first difference at line {i + 1}):\n"
                f"  committed:   {a[i] if i < len(a) else '<end>'}\n"
                f"  regenerated: {b[i] if i < len(b) else '<end>'}\n"
                f"regenerate with: {REGENERATE}")
