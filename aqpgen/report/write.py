"""``docs/report.md`` and the README's generated blocks: every number and figure by code.

Honest by construction: every section is attempted, and if any cannot be produced (a table
missing, a solver or the simulator failing) :func:`build_sections` raises :class:`ReportError`
listing every failed part with its exception, and nothing is written.  No timings appear in
either document (measured times belong to ``make bench``); with fixed seeds and deterministic
PNG bytes a regeneration from the same tables changes nothing.

Public names
------------
ReportError                                    -- one or more sections could not be produced.
ReportResult                                   -- figures written, sections, the report text.
README_BLOCKS                                  -- the generated blocks the README fragments use.
build_sections(out, tables_dir, quick, K, readme, cli_group) -- (figures, sections).
attempt_into(failures)                         -- the ``attempt(label, fn)`` every part runs under.
write_report(out, ...)                         -- build every part and write the report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aqpgen.experiments.plan import read_results
from aqpgen.game import study
from aqpgen.records import as_int
from aqpgen.report import (
    alpha,
    choices,
    experiments,
    readme,
    sections,
    shape,
    simulation,
)
from aqpgen.report import audit_figures as F
from aqpgen.store.atomic import write_text_atomic

__all__ = ["README_BLOCKS", "ReportError", "ReportResult", "attempt_into", "build_sections",
           "write_report"]

#: Generated blocks used by the README fragments (docs/readme/*.md).
README_BLOCKS = ("tables", "usage", "recommend", "cli", "headline", "experiment", "choices")
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: the game study's data (``python -m aqpgen.game.study --save``), read for the α-game results.
GAME_JSON = os.path.join(_ROOT, "docs", "game.json")
#: the trainer experiment's results (``aqpgen experiment``), read for the README's summary.
EXPERIMENT_JSON = os.path.join(_ROOT, "docs", "experiments.json")


class ReportError(RuntimeError):
    """One or more report sections could not be produced; ``failures`` lists (part, message)."""

    def __init__(self, failures):
        self.failures = list(failures)
        super().__init__("the report could not be produced; failed parts:\n" + "\n".join(
            f"  {part}: {msg}" for part, msg in self.failures))


@dataclass(frozen=True)
class ReportResult:
    """``figures``: PNG paths written; ``sections``: name -> Markdown (README blocks are
    ``README_BLOCKS``); ``text``: the report itself."""

    figures: tuple = ()
    sections: Mapping[str, str] = field(default_factory=dict)
    text: str = ""


def build_sections(out: str, *, tables_dir: str = "tables", quick: bool = False, K: int = 64,
                   readme_path: str | None = None, cli_group=None, game_json: str | None = None,
                   experiment_json: str | None = None) -> tuple[list, dict]:
    """Generate the figures (in ``figures/`` beside ``out``) and every Markdown section.

    ``readme_path``: links in the README blocks are relative to its directory (default: the
    current directory).  ``cli_group``: the click group whose commands the ``cli`` block lists
    (the ``report`` command passes its root group); without it the block is not produced.
    ``game_json``: the game study's data (default ``GAME_JSON``, docs/game.json).
    ``experiment_json``: the trainer experiment's results (default ``EXPERIMENT_JSON``,
    docs/experiments.json), summarised in the README block ``experiment``.
    Raises ReportError listing every part that failed.
    """
    figdir = os.path.join(os.path.dirname(os.path.abspath(out)), "figures")
    rdir = os.path.dirname(os.path.abspath(readme_path)) if readme_path else os.getcwd()
    odir = os.path.dirname(os.path.abspath(out))
    figures, failures, sec = [], [], {}

    attempt = attempt_into(failures)

    def fig(label, name, fn):
        path = os.path.join(figdir, name)
        if attempt(label, lambda: fn(path)) is None:
            return None
        figures.append(path)
        return name

    def link(label, name, base):
        return _fig_link(figdir, label, name, base)

    bias_fig = fig(f"figure p·bias(p) at K = {K}", f"bias_K{K}.png", lambda p: F.bias_curves(K, tables_dir, p))
    bKs = (2, 4, 8, 16, 32, 64, 128, 256) + (() if quick else (512, 1024))
    beta_fig = fig("figure β against K", "beta_vs_K.png", lambda p: F.beta_vs_K(tables_dir, p, bKs))
    k2e_fig = fig("figure K²·E*_K", "k2_estar.png", lambda p: F.k2_estar(tables_dir, p))
    fr_fig = fig(f"figure frontier at K = {K}", f"frontier_K{K}.png",
                 lambda p: F.frontier(K, p, sections.frontier_points(K)))
    sec["bias"] = link(f"p·bias(p) at K = {K}", bias_fig, odir)
    sec["beta"] = link("β against K", beta_fig, odir)
    sec["k2e"] = link("K²·E*_K against K", k2e_fig, odir)
    sec["frontier"] = link(f"frontier at K = {K}", fr_fig, odir)

    sec["tables"] = attempt("tables", lambda: sections.tables_section(tables_dir))
    sec["usage"] = attempt("usage", lambda: sections.usage_section(tables_dir))
    if cli_group is not None:
        sec["cli_full"] = attempt("cli", lambda: readme.cli_section(cli_group))
        sec["cli"] = attempt("cli (README)", lambda: readme.cli_summary(cli_group))
    rd = attempt("minimax rate", lambda: sections.rate_data(tables_dir))
    if rd:
        sec["rate"] = sections.rate_markdown(rd)
        sec["rate_full"] = (sec["rate"] + "\n\n<details><summary>Every K: <code>RateAudit.to_text()"
                            "</code></summary>\n\n```\n" + rd["audit"].to_text() + "\n```\n\n</details>")
        sec["f64"] = sections.f64_markdown(rd)
        sec["headline"] = sections.headline_markdown(rd)
    reach = attempt("preset reach", lambda: sections.preset_reach(tables_dir))
    if reach is not None:
        sec["reach"] = attempt("preset reach table", lambda: sections.reach_markdown(reach))
    cKs = sections.COMPARE_KS_QUICK if quick else sections.COMPARE_KS
    sec["compare"] = attempt("compare tables", lambda: sections.compare_markdown(cKs))
    sec["compare_Ks"] = ", ".join(str(k) for k in cKs)
    sec["recommend"] = attempt("recommendation table", sections.recommend_markdown)
    ej = experiment_json or EXPERIMENT_JSON
    exp_md = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(ej)), "experiments.md"), rdir)
    sec["experiment"] = attempt(f"experiment summary ({ej})",
                                lambda: experiments.headline_markdown(read_results(ej), link=exp_md))
    sim = attempt("simulation", lambda: simulation.simulation_data(quick))
    if sim:
        sim_figs = attempt("simulation figures", lambda: simulation.sim_figures(sim, figdir)) or []
        figures.extend(sim_figs)
        names = [os.path.basename(p) for p in sim_figs]
        sec["sim_exact"] = simulation.exact_markdown(sim["exact"])
        sec["sim_sampled"] = simulation.sampled_markdown(sim["sampled"], sim["seeds"])
        sec["sim_figs"] = "\n\n".join(link(n[:-4], n, odir) for n in names)
    _alpha_sections(sec, attempt, figures, tables_dir=tables_dir, quick=quick, K=K, figdir=figdir,
                    odir=odir, game_json=game_json or GAME_JSON)
    sec["choices_full"] = attempt("choices", lambda: choices.choices_section(tables_dir, reach, rd))
    sec["choices"] = attempt("choices (README)", lambda: choices.choices_readme(tables_dir, reach, rd))
    _shape_sections(sec, attempt, figures, tables_dir=tables_dir, quick=quick, figdir=figdir, odir=odir)
    if failures:
        raise ReportError(failures)
    return figures, sec


def _fig_link(figdir, label, name, base) -> str:
    """Markdown image link to ``figdir/name`` relative to ``base`` ("" when the figure failed)."""
    return "" if name is None else f"![{label}]({os.path.relpath(os.path.join(figdir, name), base)})"


def _alpha_sections(sec, attempt, figures, *, tables_dir, quick, K, figdir, odir, game_json) -> None:
    """The power targets' report sections, ``sec["alpha_report"]``; every failure is recorded by
    ``attempt``."""
    game = attempt(f"alpha-game results ({game_json})", lambda: alpha.alpha_game_results(game_json))
    rep = []
    for tg in alpha.POWER_TARGETS:
        fig = os.path.join(figdir, alpha.figure_name(tg, K))
        parts = attempt(f"target {tg}", lambda tg=tg, fig=fig: alpha.target_sections(
            tables_dir, tg, K=K, quick=quick, game=game, fig_path=fig))
        if parts is None:
            continue
        figures.append(fig)
        link_r = _fig_link(figdir, f"frontier of {tg} at K = {K}", alpha.figure_name(tg, K), odir)
        game_r = ("**α-game** (from the game study's data; full tables in the α-game section "
                  "below):\n\n" + parts["game"]) if "game" in parts else ""
        rep += [f"## Target {alpha.heading(tg)}", "### Minimax rate", parts["rate"],
                "### Comparison with the peers", parts["compare"], "### Frontier", link_r,
                parts["frontier"], game_r]
    if game is not None:
        rep += ["## The α-game (docs/MATH.md §2b)", ("From `docs/game.json` (written by "
                "`python -m aqpgen.game.study --save docs/game.json`; not re-simulated here; the "
                "advantage-convention study beside it is in [game.md](game.md))."),
                study.alpha_markdown(game)]
        sec["alpha_report"] = "\n\n".join(p for p in rep if p)


def _shape_sections(sec, attempt, figures, *, tables_dir, quick, figdir, odir) -> None:
    """The shape constraint's cost (``aqpgen.report.shape``): ``sec["shape_report"]``, opening
    with the sentence the README points to; every failure is recorded by ``attempt``."""
    Ks = shape.SOLVED_KS_QUICK if quick else shape.SOLVED_KS
    solved = attempt("shape: solved programs", lambda: shape.solved_data(Ks))
    shipped = attempt("shape: shipped tables", lambda: shape.shipped_data(tables_dir))
    sentence = attempt("shape sentence", lambda: shape.shape_sentence(tables_dir))
    if solved is None or shipped is None:
        return
    path = os.path.join(figdir, "shape_cost.png")
    drawn = attempt("figure shape cost", lambda: shape.shape_figure(solved, shipped, path))
    if drawn is not None:
        figures.append(path)
    pow_pair = attempt("shape: p^-0.5 pair",
                       lambda: shape.shipped_data(tables_dir, *shape.POW_PAIR, None))
    link = _fig_link(figdir, "cost of the shape constraint", drawn and "shape_cost.png", odir)
    sec["shape_report"] = "\n\n".join(p for p in (
        sentence, link,
        attempt("shape section", lambda: shape.shape_markdown(solved, shipped, pow_pair))) if p)


def attempt_into(failures: list):
    """``attempt(label, fn)``: run ``fn()`` and return its value; on an exception record
    ``(label, "Type: message")`` in ``failures`` and return None (the report raises them together
    as :class:`ReportError`)."""

    def attempt(label, fn):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - collected, then raised together as ReportError
            failures.append((label, f"{type(exc).__name__}: {exc}"))
            return None

    return attempt


def write_report(out: str = "docs/report.md", *, tables_dir: str = "tables", quick: bool = False,
                 K: int = 64, readme_path: str | None = None, cli_group=None,
                 game_json: str | None = None, experiment_json: str | None = None) -> ReportResult:
    """Write the report to ``out`` (figures in ``figures/`` beside it) and return the sections
    (to assemble the README with :func:`aqpgen.report.readme.write_readme`).

    Raises ValueError for a bad ``K`` and ReportError when a section cannot be produced (the
    report file is then left untouched).
    """
    K = as_int(K, "K", minimum=2)
    figures, sec = build_sections(out, tables_dir=tables_dir, quick=quick, K=K,
                                  readme_path=readme_path, cli_group=cli_group, game_json=game_json,
                                  experiment_json=experiment_json)
    parts = [
        "# aqpgen report",
        f"Generated by `aqpgen report` (`make report`) from the tables in `{tables_dir}/`; do not edit "
        "by hand. Everything here is deterministic; timings are in `make bench`, not here."
        + (" **Quick mode**: fewer K values and seeds." if quick else ""),
        "## Shipped tables", sec["tables"],
        "## Weighted bias curves",
        ("p·bias(p) = p·(g_c(p) − log p) of the peers and the shipped KL tables (minimax evaluated "
        "from its exact values; docs/MATH.md §1)."), sec["bias"],
        "## β against K",
        "Peers recomputed at each K; shipped tables' stored β. Slopes fitted over K ≥ 16.", sec["beta"],
        "## Minimax rate (docs/MATH.md §4)", sec["k2e"], sec["rate_full"], sec["f64"],
        "## Bias–variance frontier (docs/MATH.md §5)", sec["frontier"],
        f"## Comparison with the classical estimators (K = {sec['compare_Ks']})",
        "`aqpgen.compare` (identical to `aqpgen compare --markdown`; docs/MATH.md §7).",
        sec["compare"],
        "## AQP presets: reach and variance", sec["reach"],
        "## Shape-constrained presets (docs/MATH.md §5b)", sec.get("shape_report"),
        "## Toy alignment game (docs/MATH.md §8)", sec["sim_exact"], sec["sim_sampled"], sec["sim_figs"],
        sec["alpha_report"],
        "## Runtime", sec["usage"],
    ]
    if "cli_full" in sec:
        parts += ["## Command line", sec["cli_full"]]
    parts += ["## Choices", sec["choices_full"]]
    text = "\n\n".join(p for p in parts if p) + "\n"
    write_text_atomic(out, text)
    return ReportResult(tuple(figures), sec, text)
