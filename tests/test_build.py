"""Tests of the spec file and build orchestration (fake generator; one end-to-end power table)."""

from __future__ import annotations

import json
import os
from fractions import Fraction

import numpy as np
import pytest

from aqpgen.build.build import BuildError, build, inputs_hash, is_up_to_date
from aqpgen.build.spec import load_spec, standard_kmin
from aqpgen.records import standard_Ks
from aqpgen.store.content import SCHEMA_VERSION
from aqpgen.store.manifest import check_manifest
from aqpgen.store.tablefile import read_table

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _spec(tmp_path, body: str, name: str = "spec.toml"):
    p = tmp_path / name
    p.write_text(body)
    return p


FAKE = """
[[table]]
name = "fake-a"
family = "fake"
method = "lin"
params = {{ a = "{a}"{extra} }}
Ks = {Ks}
"""


def _fake(tmp_path, a="1/3", Ks="[2, 3, 5, 8]", extra="", name="spec.toml"):
    return _spec(tmp_path, FAKE.format(a=a, Ks=Ks, extra=extra), name)


def test_shipped_spec_order_and_grids():
    specs = load_spec(os.path.join(REPO, "tables", "tables.toml"))
    assert [s.name for s in specs] == [
        "power-m1", "power-m2", "power-m3", "power-m4", "kl-minimax",
        "kl-aqp-eta3", "kl-aqp-eta15", "kl-aqp-rho1", "kl-aqp-rho2", "kl-aqp-rho4", "kl-aqp-rho8",
        "kl-aqp-rho4-mono",
        "pow0.5-minimax", "pow-0.5-minimax", "pow0.5-aqp-rho1", "pow-0.5-aqp-rho1",
        "pow-0.5-aqp-rho8", "pow-0.5-aqp-rho8-mono", "pow-0.5-aqp-rho16",
    ]
    by = {s.name: s for s in specs}
    # docs/MATH.md §9 standard grid, written out independently of records.standard_Ks
    tail = [320, 384, 448, 512, 640, 768, 896, 1024]
    for m in range(1, 5):
        assert list(by[f"power-m{m}"].Ks) == list(range(m + 1, 257)) + tail
    assert list(by["kl-minimax"].Ks) == list(range(2, 257)) + tail
    assert by["kl-aqp-eta15"].params == {"eta": 15, "objective": "Vinf"}
    assert by["kl-aqp-rho2"].params == {"rho": 2}
    assert by["kl-aqp-rho4-mono"].params == {"rho": 4, "shape": "monotone"}
    assert by["pow-0.5-aqp-rho8-mono"].params == {"rho": 8, "target": "p^-0.5", "shape": "monotone"}
    assert list(by["pow-0.5-aqp-rho1"].Ks) == list(range(2, 257)) + tail
    assert by["pow0.5-aqp-rho1"].params == {"rho": 1, "target": "p^0.5"}


def test_standard_kmin():
    assert standard_kmin("kl", {}) == 2
    assert standard_kmin("power", {"m": 3}) == 4
    assert standard_kmin("power", {"coeffs": ["0", "2"]}) == 2
    assert standard_kmin("power", {"coeffs": ["1", "0", "1/2", "0"]}) == 3
    with pytest.raises(ValueError, match="'m' must be an integer >= 0, received -1"):
        standard_kmin("power", {"m": -1})


@pytest.mark.parametrize(
    "body, match",
    [
        ("", "no \\[\\[table\\]\\] entries"),
        ("[[table]]\nname='x'\nfamily='power'\nmethod='nope'\n", "unknown \\(family, method\\)"),
        ("[[table]]\nname='x y'\nfamily='power'\nmethod='ustat'\nparams={m=1}\n", "name must match"),
        ("[[table]]\nname='x'\nfamily='power'\nmethod='ustat'\nparams={m=1}\ncolour='red'\n", "unknown key"),
        ("[[table]]\nname='x'\nfamily='power'\nmethod='ustat'\nparams={m=2}\nKs=[2,3]\n", "K=2 is below"),
        ("[[table]]\nname='x'\nfamily='power'\nmethod='ustat'\nparams={m=1}\nKs=[3,3]\n", "duplicates"),
        ("[[table]]\nname='x'\nfamily='power'\nmethod='ustat'\nparams={m=1}\nKs='all'\n", "'Ks' must be"),
        ("[[table]]\nname='x'\nfamily='kl'\nmethod='minimax'\n[[table]]\nname='x'\nfamily='kl'\nmethod='minimax'\n",
         "duplicate table name"),
        ("[[table]\n", "invalid TOML"),
    ],
)
def test_load_spec_errors(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_spec(_spec(tmp_path, body))


def test_load_spec_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        load_spec(tmp_path / "nope.toml")


def test_inputs_hash_rule():
    (s,) = load_spec_text("[[table]]\nname='p'\nfamily='power'\nmethod='ustat'\nparams={m=1}\nKs=[2,3]\n")
    import hashlib

    doc = {"name": "p", "family": "power", "method": "ustat", "params": {"m": 1}, "Ks": [2, 3],
           "generator_version": "7", "schema_version": SCHEMA_VERSION}
    want = hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert inputs_hash(s, "7") == want
    assert inputs_hash(s, "8") != want


def load_spec_text(text):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.toml")
        with open(p, "w") as fh:
            fh.write(text)
        return load_spec(p)


def test_build_fake_round_trip_and_skip(tmp_path, fake_generator):
    spec = _fake(tmp_path, extra=', hp = true')
    events = []
    out = build(spec, tmp_path / "out", progress=events.append)
    assert [o.action for o in out] == ["built"]
    kinds = [e.kind for e in events]
    assert kinds == ["start", "K", "K", "K", "K", "written"]
    assert [e.K for e in events if e.kind == "K"] == [8, 5, 3, 2]  # largest first
    t = read_table(tmp_path / "out" / "fake-a.h5")
    assert t.Ks == (2, 3, 5, 8) and t.target == "1/3*p"
    for K in t.Ks:  # oracle: exact a*n/K, correctly rounded
        want = [float(Fraction(1, 3) * n / K) for n in range(1, K + 1)]
        assert t.values(K).tolist() == want
        assert t.rows[K].values_hp[0] == str(Fraction(1, 3) / K)
    assert t.provenance["generator_version"] == "fake-1"
    assert t.provenance["command"] == "aqpgen build spec.toml --only fake-a"
    assert "time" not in json.dumps(t.provenance).lower()
    assert all(c.ok for c in check_manifest(tmp_path / "out"))
    # second build: nothing to do, file untouched
    before = (tmp_path / "out" / "fake-a.h5").stat().st_mtime_ns
    events.clear()
    out = build(spec, tmp_path / "out", progress=events.append)
    assert [o.action for o in out] == ["up-to-date"] and [e.kind for e in events] == ["skip"]
    assert (tmp_path / "out" / "fake-a.h5").stat().st_mtime_ns == before
    # changed inputs (params) -> rebuilt; force -> rebuilt
    spec2 = _fake(tmp_path, a="2", name="spec.toml")
    assert [o.action for o in build(spec2, tmp_path / "out")] == ["built"]
    assert [o.action for o in build(spec2, tmp_path / "out", force=True)] == ["built"]


def test_generator_version_bump_rebuilds(tmp_path, fake_generator, monkeypatch):
    spec = _fake(tmp_path)
    build(spec, tmp_path / "o")
    (s,) = load_spec(spec)
    assert is_up_to_date(s, tmp_path / "o" / "fake-a.h5")
    monkeypatch.setattr(fake_generator, "GENERATOR_VERSION", "fake-2")
    assert not is_up_to_date(s, tmp_path / "o" / "fake-a.h5")
    assert [o.action for o in build(spec, tmp_path / "o")] == ["built"]


def test_tampered_file_is_rebuilt(tmp_path, fake_generator):
    import h5py

    spec = _fake(tmp_path)
    build(spec, tmp_path / "o")
    p = tmp_path / "o" / "fake-a.h5"
    good = p.read_bytes()
    with h5py.File(p, "r+") as f:
        f["values"][0] = 42.0
    assert [o.action for o in build(spec, tmp_path / "o")] == ["built"]
    assert p.read_bytes() == good


def test_byte_identical_rebuild_serial_and_parallel(tmp_path, fake_generator):
    spec = _fake(tmp_path, Ks="[2, 3, 4, 9, 17, 33]", extra=', hp = true')
    build(spec, tmp_path / "a", jobs=1)
    build(spec, tmp_path / "b", jobs=2)
    a = (tmp_path / "a" / "fake-a.h5").read_bytes()
    assert a == (tmp_path / "b" / "fake-a.h5").read_bytes()
    assert (tmp_path / "a" / "MANIFEST.json").read_bytes() == (tmp_path / "b" / "MANIFEST.json").read_bytes()


@pytest.mark.parametrize("jobs", [1, 2])
def test_failing_generator_writes_nothing(tmp_path, fake_generator, jobs):
    spec = _fake(tmp_path, Ks="[2, 3, 5, 8]", extra=", fail_at = 3")
    with pytest.raises(BuildError, match=r"table 'fake-a': build_K failed at K=3: RuntimeError"):
        build(spec, tmp_path / "o", jobs=jobs)
    # a failed first build leaves nothing: no table, no temporary file, no empty MANIFEST.json,
    # no .build.lock, not even the output directory it created
    assert not os.path.exists(tmp_path / "o")
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="K=3"):
        build(spec, out, jobs=jobs)
    assert os.listdir(out) == ["notes.txt"]  # an existing directory is left as it was


def test_non_ok_rows_are_recorded(tmp_path, fake_generator):
    spec = _fake(tmp_path, extra=", bad = [5]")
    (o,) = build(spec, tmp_path / "o")
    assert o.not_ok == ((5, "out of reach (fake)"),)
    t = read_table(o.path)
    assert t.status(5) == "out of reach (fake)" and np.all(np.isnan(t.values(5)))
    (o2,) = build(spec, tmp_path / "o")
    assert o2.action == "up-to-date" and o2.not_ok == o.not_ok


def test_only_and_order(tmp_path, fake_generator):
    body = FAKE.format(a="1", Ks="[2, 3]", extra="") + FAKE.format(a="2", Ks="[2]", extra="").replace("fake-a", "fake-b")
    spec = _spec(tmp_path, body)
    out = build(spec, tmp_path / "o", only=["fake-b"])
    assert [o.name for o in out] == ["fake-b"]
    assert sorted(os.listdir(tmp_path / "o")) == ["MANIFEST.json", "fake-b.h5"]  # no .build.lock left
    with pytest.raises(ValueError, match="unknown table name.*'fake-c'"):
        build(spec, tmp_path / "o", only=["fake-c"])
    with pytest.raises(ValueError, match="jobs must be an integer >= 1, received 0"):
        build(spec, tmp_path / "o", jobs=0)
    out = build(spec, tmp_path / "o")
    assert [(o.name, o.action) for o in out] == [("fake-a", "built"), ("fake-b", "up-to-date")]


def test_power_end_to_end(tmp_path):
    """Real generator: power-m2 on a small K list; oracle c_K[n] = (n-1)(n-2)/((K-1)(K-2))."""
    pytest.importorskip("aqpgen.generators.power")
    spec = _spec(tmp_path, "[[table]]\nname='power-m2'\nfamily='power'\nmethod='ustat'\n"
                           "params={m=2}\nKs=[3, 4, 7, 16]\n")
    build(spec, tmp_path / "a", jobs=2)
    build(spec, tmp_path / "b", jobs=1)
    pa, pb = tmp_path / "a" / "power-m2.h5", tmp_path / "b" / "power-m2.h5"
    assert pa.read_bytes() == pb.read_bytes()
    t = read_table(pa)
    assert t.target == "p^2"
    for K in t.Ks:
        want = [float(Fraction((n - 1) * (n - 2), (K - 1) * (K - 2))) for n in range(1, K + 1)]
        assert t.values(K).tolist() == want
    from aqpgen.build.verify import verify_file

    checks = verify_file(pa)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert {c.K for c in checks if c.name == "power.unbiased"} == {3, 4, 7, 16}


def test_standard_grid_matches_records():
    assert standard_Ks(2)[:3] == (2, 3, 4) and standard_Ks(2)[-1] == 1024
