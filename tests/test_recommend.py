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
                                      ({"K": 16, "target": "p^0.25"}, "no table for target"),
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


def test_integer_power_target_is_served_by_its_exact_table():
    # power-m2 ships and is exactly unbiased (metric "exact" = 1 read with h5py): beta 0
    m = _row_metrics("power-m2", 8)
    assert m["status"] == "ok" and m["exact"] == 1.0
    rec = recommend(8, target="p^2")
    assert rec.name == "power-m2" and rec.candidates[0].beta_cert == 0.0
    assert rec.candidates[0].V_inf == m["V_inf"] and rec.candidates[0].source == "shipped"
    r = CliRunner().invoke(main, ["recommend", "--K", "8", "--target", "p^2"])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "power-m2"


def test_no_table_at_K_exits_nonzero_with_largest_K_and_build_command():
    with h5py.File(find_table("kl-aqp-rho2"), "r") as f:
        largest = max(f["K"][()].tolist())
    rec = recommend(2000)
    assert rec.name is None and rec.largest_K == largest
    assert "aqpgen build" in rec.build and "Ks = [2000]" in rec.build
    r = CliRunner().invoke(main, ["recommend", "--K", "2000"])
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert f"largest K served is {largest}" in r.stderr and rec.build in r.stderr


def test_build_command_builds_the_row_and_user_tables_are_named(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from aqpgen.build.build import build

    spec = tmp_path / "tiny.toml"
    spec.write_text('[[table]]\nname = "power-m2-tiny"\nfamily = "power"\nmethod = "ustat"\n'
                    'params = { m = 2 }\nKs = [4, 5]\n')
    build(str(spec), str(tmp_path / "t"))
    tiny = str(tmp_path / "t" / "power-m2-tiny.h5")
    rec = recommend(8, target="p^2", tables=[tiny])
    assert rec.name is None and rec.largest_K == 5
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run(["bash", "-c", rec.build], cwd=tmp_path, env=env, capture_output=True, check=False,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with h5py.File(tmp_path / "my-tables" / "power-m2-tiny-K8.h5", "r") as f:
        assert f["K"][()].tolist() == [8]
    # tables found in $AQPGEN_TABLES are user-built, not "shipped"
    monkeypatch.setenv("AQPGEN_TABLES", str(tmp_path / "t"))
    cands = {c.name: c for c in recommend(5, target="p^2").candidates}
    assert cands["power-m2-tiny"].source == f"user-built ({tmp_path / 't'})"
    assert cands["power-m2"].source == "shipped"
