"""The committed tables are reproducible from constraints.txt on a fresh machine.

The ci-marked test is the check that would have caught a table built by other library versions:
a new virtual environment installed from the lock file rebuilds power-m1 (whole file, compared
byte for byte), kl-minimax and a KL AQP preset at a few K (rows compared: values, strings,
every metric, solver records).  ~2 min: the install dominates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aqpgen.build import reproduce
from aqpgen.build.spec import load_spec

REPO = Path(__file__).resolve().parents[1]


def test_write_spec_keeps_the_committed_entries_and_restricts_K(tmp_path):
    path = reproduce.write_spec({"kl-minimax": [8, 16], "kl-aqp-rho1": [8, 16], "power-m1": None},
                                tmp_path)
    specs = {s.name: s for s in load_spec(path)}
    committed = {s.name: s for s in load_spec(REPO / "tables" / "tables.toml")}
    assert list(specs) == [n for n in committed if n in specs]  # the committed (build) order
    assert specs["kl-minimax"].Ks == (8, 16) and specs["kl-aqp-rho1"].Ks == (8, 16)
    assert specs["power-m1"].Ks == committed["power-m1"].Ks
    for n, s in specs.items():
        assert (s.family, s.method, s.params) == (committed[n].family, committed[n].method,
                                                  committed[n].params)
    with pytest.raises(ValueError, match="unknown table"):
        reproduce.write_spec({"no-such-table": None}, tmp_path)


def test_compare_flags_a_file_that_differs(tmp_path):
    import shutil

    shutil.copy(REPO / "tables" / "power-m1.h5", tmp_path / "power-m1.h5")
    (r,) = reproduce.compare({"power-m1": None}, tmp_path)
    assert r["same"] and r["lines"][0].startswith("bytes identical")
    shutil.copy(REPO / "tables" / "power-m2.h5", tmp_path / "power-m1.h5")
    (r,) = reproduce.compare({"power-m1": None}, tmp_path)
    assert not r["same"] and r["lines"][0] == "bytes differ"


@pytest.mark.ci
@pytest.mark.slow
def test_a_fresh_venv_from_the_lock_rebuilds_the_committed_bytes(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "aqpgen.build.reproduce", "--only", "power-m1",
         "--only", "kl-minimax:8,16,64", "--only", "kl-aqp-rho1:8,16,64",
         "--venv", str(tmp_path / "venv"), "--keep", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=1500, check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "build environment matches constraints.txt" in out, out
    for name in ("power-m1", "kl-minimax", "kl-aqp-rho1"):
        assert f"{name} (" in out and "REPRODUCED" in out.split(f"{name} (")[1].split("\n")[0], out
    assert "3 of 3 reproduced" in out
