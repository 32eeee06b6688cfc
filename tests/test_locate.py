"""The one table locator: $AQPGEN_TABLES, then the source checkout's tables/, then the installed
package data (runtime copies); never site-packages/tables (PyTables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aqpgen.store import locate
from aqpgen.store.tablefile import read_table
from aqpgen.store.wheeldata import runtime_copy, runtime_copy_of, write_runtime_tables

REPO = Path(__file__).resolve().parents[1]


def test_search_order_env_then_checkout_then_package(tmp_path, monkeypatch):
    env1, env2, pkg = tmp_path / "e1", tmp_path / "e2", tmp_path / "pkg"
    for d in (env1, env2, pkg):
        d.mkdir()
    shutil.copy(REPO / "tables" / "power-m1.h5", env2 / "power-m1.h5")
    write_runtime_tables(REPO / "tables", pkg)
    monkeypatch.setattr(locate, "packaged_tables_dir", lambda: pkg)
    monkeypatch.setenv(locate.TABLES_ENV, f"{env1}:{env2}")
    assert locate.search_path() == [env1, env2, REPO / "tables", pkg]
    assert locate.find_table("power-m1") == env2 / "power-m1.h5"
    assert locate.find_table("power-m2.h5") == REPO / "tables" / "power-m2.h5"
    monkeypatch.setattr(locate, "source_tables_dir", lambda: None)  # an installed package
    assert locate.find_table("power-m2") == pkg / "power-m2.h5"
    monkeypatch.delenv(locate.TABLES_ENV)
    assert locate.search_path() == [pkg]
    with pytest.raises(FileNotFoundError, match="no-such.*AQPGEN_TABLES.*wheel"):
        locate.find_table("no-such")


def test_checkout_detection_needs_pyproject_and_spec(tmp_path, monkeypatch):
    assert locate.source_tables_dir() == REPO / "tables"
    # an installed layout: site-packages/aqpgen/store/locate.py next to PyTables' site-packages/tables
    site = tmp_path / "site-packages"
    (site / "aqpgen" / "store").mkdir(parents=True)
    (site / "tables").mkdir()
    (site / "tables" / "power-m1.h5").write_bytes(b"not ours")
    monkeypatch.setattr(locate, "__file__", str(site / "aqpgen" / "store" / "locate.py"))
    assert locate.source_tables_dir() is None


def test_runtime_copy_keeps_every_lookup_and_records_the_full_hash(tmp_path):
    full = read_table(REPO / "tables" / "kl-minimax.h5")
    out = write_runtime_tables(REPO / "tables", tmp_path)
    assert sorted(n for n, _, _ in out) == sorted(p.stem for p in (REPO / "tables").glob("*.h5"))
    copy = read_table(tmp_path / "kl-minimax.h5")  # every check of read_table, its own hash
    assert copy.content_hash != full.content_hash and not copy.has_hp and full.has_hp
    assert runtime_copy_of(copy) == {"content_hash": full.content_hash, "dropped": ["values_hp"]}
    assert runtime_copy_of(full) is None
    assert copy.Ks == full.Ks and copy.inputs_hash == full.inputs_hash
    for K in full.Ks:
        a, b = full.rows[K], copy.rows[K]
        assert a.values.tobytes() == b.values.tobytes() and a.status == b.status and a.solver == b.solver
        assert {k: repr(v) for k, v in a.metrics.items()} == {k: repr(v) for k, v in b.metrics.items()}
    assert (tmp_path / "kl-minimax.h5").stat().st_size < 0.05 * (REPO / "tables" / "kl-minimax.h5").stat().st_size
    # deterministic: the same inputs give the same bytes
    again = tmp_path / "again"
    write_runtime_tables(REPO / "tables", again)
    for p in tmp_path.glob("*.h5"):
        assert (again / p.name).read_bytes() == p.read_bytes()
    with pytest.raises(ValueError, match="already is a runtime copy"):
        runtime_copy(copy)


def test_a_runtime_copy_never_counts_as_built(tmp_path):
    from aqpgen.build.build import build, is_up_to_date
    from aqpgen.build.spec import load_spec

    shutil.copy(REPO / "tables" / "tables.toml", tmp_path / "tables.toml")
    write_runtime_tables(REPO / "tables", tmp_path / "out")
    spec = next(s for s in load_spec(tmp_path / "tables.toml") if s.name == "power-m1")

    assert not is_up_to_date(spec, tmp_path / "out" / "power-m1.h5")
    assert is_up_to_date(spec, REPO / "tables" / "power-m1.h5")
    out = build(tmp_path / "tables.toml", tmp_path / "out", only=["power-m1"])
    assert out[0].action == "built"
    assert read_table(tmp_path / "out" / "power-m1.h5").has_hp
