"""Reproducible bytes: a --force rebuild reproduces the committed power tables byte for byte, and
the Dask backend gives the same bytes as the process pool."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest

from aqpgen.build.build import build
from aqpgen.store.tablefile import read_table

REPO = Path(__file__).resolve().parents[1]
POWER = ["power-m1", "power-m2", "power-m3", "power-m4"]


@pytest.mark.slow
def test_force_rebuild_of_power_tables_gives_the_committed_bytes(tmp_path):
    spec = tmp_path / "tables.toml"
    shutil.copy(REPO / "tables" / "tables.toml", spec)  # a copy: the committed files are never touched
    out = build(spec, tmp_path / "out", jobs=2, only=POWER, force=True)
    assert [o.action for o in out] == ["built"] * 4
    for name in POWER:
        new, old = tmp_path / "out" / f"{name}.h5", REPO / "tables" / f"{name}.h5"
        assert filecmp.cmp(new, old, shallow=False), f"{name}: rebuilt bytes differ from the committed file"
        prov = read_table(new).provenance
        assert set(prov) == {"build_env", "command", "generator", "generator_version", "spec_Ks"}
        assert prov["command"] == f"aqpgen build tables.toml --only {name}"


SMALL = """
[[table]]
name = "p2"
family = "power"
method = "ustat"
params = { m = 2 }
Ks = [3, 4, 7, 16, 33]

[[table]]
name = "p1"
family = "power"
method = "ustat"
params = { m = 1 }
Ks = [2, 5, 9]
"""


def _same_dirs(a: Path, b: Path, names) -> None:
    for n in names:
        assert filecmp.cmp(a / n, b / n, shallow=False), n


def test_dask_build_is_byte_identical_to_the_process_pool(tmp_path):
    from distributed import Client, LocalCluster

    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL)
    build(spec, tmp_path / "pool", jobs=2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        out = build(spec, tmp_path / "dask", dask=client)
        assert [o.action for o in out] == ["built", "built"]
        assert client.status == "running"  # a caller's client is not closed by the build
    build(spec, tmp_path / "serial", jobs=1)
    _same_dirs(tmp_path / "pool", tmp_path / "dask", ["p2.h5", "p1.h5", "MANIFEST.json"])
    _same_dirs(tmp_path / "pool", tmp_path / "serial", ["p2.h5", "p1.h5", "MANIFEST.json"])


@pytest.mark.slow
def test_cli_dask_local_cluster(tmp_path):
    from click.testing import CliRunner

    from aqpgen.cli import main

    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL)
    build(spec, tmp_path / "pool", jobs=2)
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "dask"), "--dask", "local",
                                    "--jobs", "2", "-q"])
    assert res.exit_code == 0, res.output
    assert "p2: built 5 K" in res.output and "p1: built 3 K" in res.output
    _same_dirs(tmp_path / "pool", tmp_path / "dask", ["p2.h5", "p1.h5", "MANIFEST.json"])


def test_unreachable_dask_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from aqpgen.cli import main
    from aqpgen.build import runner

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "1s")
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL)
    res = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "o"), "--dask", "tcp://127.0.0.1:1"])
    assert res.exit_code == 1 and "cannot reach the Dask scheduler" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o" / "p2.h5").exists()
