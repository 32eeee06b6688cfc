"""Tests of aqpgen.game.study: the generated tables carry the simulator's own numbers."""

from __future__ import annotations

import math

from aqpgen.game.dynamics import run_exact
from aqpgen.game.estimators import ArrayEstimator
from aqpgen.game.sampled import advantage_rms, run_sampled
from aqpgen.game.scenarios import get_scenario
from aqpgen.game import study


def test_alpha_study_tables_match_run_exact(tmp_path):
    d = study.alpha_study(alphas=(1.5,), Ks=(4, 8), sampled_Ks=(4,), seeds=(0, 1),
                          scenarios=("head",), estimators=("oracle", "plugin", "no-such"),
                          steps=5)
    res = d["alphas"][1.5]
    assert res["target"] == "p^0.5" and res["live"]["head"] == 3
    tv = res["exact"]["head"]["plugin"]["tv"]
    assert tv == [run_exact("head", "plugin", K, target="p^0.5").tv for K in (4, 8)]
    assert res["exact"]["head"]["plugin"]["tv_rloo"][0] == run_exact(
        "head", "plugin", 4, target="p^0.5", baseline="rloo").tv
    assert math.isnan(res["exact"]["head"]["oracle-p^0.5"]["slope"])  # round-off, not a rate
    assert any("no-such" in n for n in d["notes"])
    md = study.alpha_markdown(d)
    assert f"{tv[1]:.2e}" in md and "α = 1.5" in md


def test_conventions_study_recommendation_and_roundtrip(tmp_path):
    convs = (("others", "none"), ("group", "none"), ("rloo", "group"), ("group", "batch"))
    c = study.conventions_study(Ks=(4,), seeds=(0, 1), scenarios=("head",),
                                estimators=("plugin", "kl-aqp-rho1"), conventions=convs, steps=5)
    cell = c["sampled"]["head"][4]["rloo/group"]["plugin"]
    r = run_sampled("head", "plugin", 4, (0, 1), steps=5, baseline="rloo", scale="group")
    assert cell == [r.final_mean, r.final_std]
    ratio = c["rms"]["head"][4]["group/batch"]["kl-aqp-rho1"]
    assert ratio == advantage_rms("head", "kl-aqp-rho1", 4, "group", "batch") / \
        advantage_rms("head", "kl-aqp-rho1", 4)
    r = run_sampled("head", "kl-aqp-rho1", 4, (0, 1), steps=5, baseline="group", scale="batch",
                       lr=get_scenario("head").lr / ratio)
    assert c["sampled"]["head"][4]["group/batch@lr-matched"]["kl-aqp-rho1"] == [r.final_mean,
                                                                             r.final_std]
    assert "rloo/group@lr-matched" not in c["sampled"]["head"][4]  # would repeat group/group
    rec = study.recommend(c)
    assert rec["score"]["others/none"] == 1.0
    assert rec["score"][rec["best"]] == min(v for k, v in rec["score"].items() if k != "others/none")
    out = study.write_game_markdown(tmp_path / "g.md", alpha=False, conventions=False,
                                    reuse={"conventions": c}, save=tmp_path / "g.json")
    text = out.read_text()
    assert f"`{rec['best']}`" in text and "do not edit" in text
    back = study.load_data(tmp_path / "g.json")
    assert study.conventions_markdown(back["conventions"]) == study.conventions_markdown(c)


def test_recommend_breaks_ties_by_simplicity():
    def cells(ref, a, b):
        return {"others/none": {"plugin": [1.0, 0.1], "kl-aqp-rho1": [ref, 0.1]},
                "group/group": {"plugin": [1.0, 0.1], "kl-aqp-rho1": [a, 0.2]},
                "group/none": {"plugin": [1.0, 0.1], "kl-aqp-rho1": [b, 0.1]}}

    tie = study.recommend({"sampled": {"head": {8: cells(0.5, 0.50, 0.505)}}})
    assert tie["lowest"] == "group/group" and tie["best"] == "group/none"
    assert tie["score"]["group/none"] == 1.01 and tie["noise"]["group/group"] == 2.0
    clear = study.recommend({"sampled": {"head": {8: cells(0.5, 0.40, 0.505)}}})
    assert clear["best"] == clear["lowest"] == "group/group"
    assert clear["gain"]["group/group"] == 0.4


def test_missing_power_tables_are_built_by_their_generators():
    from aqpgen.generators import minimax

    # p^0.25 (alpha = 1.25) ships no table: the study builds its rows with the generator
    d = study.alpha_study(alphas=(1.25,), Ks=(4,), sampled_Ks=(4,), seeds=(0,), scenarios=("head",),
                          estimators=("pow0.25-minimax",), steps=3)
    row = d["alphas"][1.25]["exact"]["head"]["pow0.25-minimax"]
    hp = minimax.build_K(4, {"target": "p^0.25"}).values_hp
    est = ArrayEstimator("mm", {4: list(hp)}, "p^0.25")
    assert row["tv"] == [run_exact("head", est, 4).tv]
    assert row["tv"][0] < run_exact("head", "plugin", 4, target="p^0.25").tv / 3
    assert any("built here" in n for n in d["notes"])
