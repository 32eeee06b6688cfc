"""``aqpgen.recommend`` and ``aqpgen recommend``: the rule re-derived here by brute force.

Each table's β̄ and V∞ are read from the files with h5py and the choice recomputed by brute
force (the smallest β̄ + λ√V∞ among the served rows); the plug-in's V∞, shown beside it, is
recomputed independently (an mpmath sup of p·Var_p(log(n/K)), tests/_kl_oracles.mp_pvar_max).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import h5py
import numpy as np
import pytest
from _kl_oracles import mp_pvar_max
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.recommend import NOISE_WEIGHTS, noise_weight, plugin_variance, recommend

NOISE_WEIGHT = NOISE_WEIGHTS["log"]
from aqpgen.store.locate import available_tables, find_table

KL = [n for n in available_tables() if n.startswith("kl-")]


def _row_metrics(name: str, K: int) -> dict:
    """The stored metrics of row K, read with h5py (independent of aqpgen.runtime)."""
    with h5py.File(find_table(name), "r") as f:
        Ks = f["K"][()].tolist()
        if K not in Ks:
            return {}
        i = Ks.index(K)
        status = f["status"][i]
        status = status.decode() if isinstance(status, bytes) else str(status)
        row = f["metrics"][i]
        return {"status": status, **{n: float(row[n]) for n in row.dtype.names}}


def _plugin_vinf(K: int) -> float:
    return mp_pvar_max([Fraction(math.log(n / K)) for n in range(1, K + 1)])


@pytest.mark.parametrize("K", [8, 16, 64])
def test_plugin_reference_matches_independent_sup(K):
    assert plugin_variance(K) == pytest.approx(_plugin_vinf(K), rel=1e-6)


@pytest.mark.parametrize("K,noise", [(8, NOISE_WEIGHT), (16, NOISE_WEIGHT), (64, NOISE_WEIGHT),
                                     (256, NOISE_WEIGHT), (16, 0.0), (16, 0.05), (8, 1.0)])
def test_choice_minimises_bias_plus_noise_times_sd(K, noise):
    rec = recommend(K, noise=noise, dtype="float32")
    usable = {c.name: c for c in rec.candidates if c.usable == "ok"}
    brute = []
    for name in KL:
        m = _row_metrics(name, K)
        if not m or m["status"] != "ok" or name not in usable:
            continue
        assert usable[name].beta_cert == m["beta_cert"] and usable[name].V_inf == m["V_inf"]
        brute.append((m["beta_cert"] + noise * math.sqrt(m["V_inf"]), name))
    assert rec.name == min(brute)[1]
    assert rec.name in rec.reason and f"K={K}" in rec.reason
    ref = _plugin_vinf(K) if K <= 64 else plugin_variance(K)
    assert usable[rec.name].ratio == pytest.approx(usable[rec.name].V_inf / ref, rel=1e-6)


def test_float32_guard_and_zero_noise():
    # with no noise weight in float64 the minimax table (smallest bias of all) wins at K = 16;
    # in float32 the precision guard refuses its row from K = 17 on
    assert recommend(16, dtype="float64", noise=0).name == "kl-minimax"
    r32 = recommend(32, dtype="float32", noise=0)
    mm = next(c for c in r32.candidates if c.name == "kl-minimax")
    assert "precision guard" in mm.usable and r32.name != "kl-minimax"


def test_large_noise_weight_picks_the_smallest_variance():
    rec = recommend(8, noise=100.0)
    served = [c for c in rec.candidates if c.usable == "ok"]
    assert rec.name == min(served, key=lambda c: c.V_inf).name


@pytest.mark.parametrize("kw,match", [({"K": 1}, "K"), ({"K": 2.5}, "K"),
                                      ({"K": 16, "noise": -1}, "noise"),
                                      ({"K": 16, "noise": float("nan")}, "noise"),
                                      ({"K": 16, "target": "p^0.25"}, "no shipped table"),
                                      ({"K": 16, "target": "q"}, "q")])
def test_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        recommend(**kw)


def test_power_target_and_its_noise_weight():
    rec = recommend(16, target="p^-0.5")
    assert rec.name is not None and rec.name.startswith("pow-0.5-")
    assert rec.noise == NOISE_WEIGHTS["p^-0.5"] and rec.validated
    # a target the experiment did not play gets the KL weight, and says so
    rec = recommend(16, target="p^0.5")
    assert noise_weight("p^0.5") == (NOISE_WEIGHT, False)
    assert rec.noise == NOISE_WEIGHT and not rec.validated and "not validated" in rec.reason
    assert not recommend(16, noise=NOISE_WEIGHT).validated  # an explicit λ is the caller's


def test_cli_text_and_json(tmp_path):
    r = CliRunner().invoke(main, ["recommend", "--K", "16", "--results", str(tmp_path / "none.json")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = CliRunner().invoke(main, ["recommend", "--K", "16", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["table"] == recommend(16).name and data["K"] == 16
    assert np.isfinite(data["plugin_V_inf"])
    r = CliRunner().invoke(main, ["recommend", "--K", "16"])
    assert r.exit_code == 0 and r.output.splitlines()[0] == recommend(16).name
    assert "why:" in r.output
    r = CliRunner().invoke(main, ["recommend", "--K", "0"])
    assert r.exit_code == 2
