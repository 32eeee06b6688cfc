"""Tests of the HDF5 table format: round trip, deterministic bytes, atomic writes, tamper
detection, schema versions, truncation, manifest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from aqpgen.errors import TableFormatError
from aqpgen.records import KResult
from aqpgen.store.content import (
    SCHEMA,
    SCHEMA_VERSION,
    TableData,
    content_hash,
    make_table,
)
from aqpgen.store.manifest import check_manifest, update_manifest
from aqpgen.store.tablefile import read_table, write_table


def _eq_nan(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def test_round_trip(tmp_path, small_table):
    p = tmp_path / "small.h5"
    written = write_table(p, small_table)
    t = read_table(p)
    assert t.content_hash == written.content_hash == content_hash(small_table)
    assert (t.name, t.family, t.target, t.method) == ("small", "fake", "p", "lin")
    assert t.params == {"a": "1"} and t.provenance == {"aqpgen": "test"}
    assert t.Ks == (2, 3, 5) and t.inputs_hash == "0" * 64
    for K in t.Ks:
        a, b = small_table.rows[K], t.rows[K]
        assert _eq_nan(a.values, b.values) and b.values.dtype == np.float64
        assert a.values_hp == b.values_hp
        assert a.status == b.status and a.solver == b.solver
    # metric columns are the union; absent ones come back as NaN
    assert set(t.metrics(2)) == {"beta", "exact", "V1"}
    assert t.metrics(2)["beta"] == 0.5 and np.isnan(t.metrics(2)["V1"])
    assert t.metrics(3)["V1"] == 0.125 and np.isnan(t.metrics(3)["beta"])
    assert t.status(5) == "infeasible at K=5" and np.all(np.isnan(t.values(5)))
    np.testing.assert_array_equal(t.values(3), [1 / 3, 2 / 3, 1.0])
    with pytest.raises(KeyError, match="K=4"):
        t.values(4)


def test_layout_is_flat_and_untimed(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    with h5py.File(p, "r") as f:
        assert f.attrs["schema"].decode() == SCHEMA
        assert int(f.attrs["schema_version"]) == SCHEMA_VERSION
        assert all(isinstance(f[k], h5py.Dataset) for k in f)
        assert set(f) == {"K", "offsets", "values", "values_hp", "metrics", "status", "solver"}
        np.testing.assert_array_equal(f["offsets"][()], [0, 2, 5, 10])
        for obj in [f] + [f[k] for k in f]:
            info = h5py.h5o.get_info(obj.id)
            assert (info.ctime, info.mtime, info.atime, info.btime) == (0, 0, 0, 0)


def test_content_hash_is_independent_oracle(small_table):
    # recompute the values section digest by hand from the documented recipe
    v = np.concatenate([small_table.values(K) for K in small_table.Ks]).astype("<f8")
    v[np.isnan(v)] = np.float64(np.nan)
    h = hashlib.sha256(f"values <f8 [{v.size}]\n".encode() + v.tobytes()).hexdigest()
    from aqpgen.store.content import section_hashes, to_raw

    assert section_hashes(to_raw(small_table))["values"] == h
    # and any change of a value changes the hash
    rows = dict(small_table.rows)
    r = rows[3]
    rows[3] = r._replace(values=r.values + np.array([0, 0, 2.0**-52]))
    t2 = TableData(**{**small_table.__dict__, "rows": rows})
    assert content_hash(t2) != content_hash(small_table)


_WRITER = r"""
import sys, numpy as np
from aqpgen.records import KResult
from aqpgen.store.content import make_table
from aqpgen.store.tablefile import write_table
rng = np.random.default_rng(7)
rs = [KResult(K, rng.standard_normal(K), tuple(repr(x) for x in rng.random(K)),
              {"beta": 1.0 / K, "V1": float("nan")}, "ok" if K % 7 else "out of reach",
              {"solver": "x", "prec": 4 * K}) for K in range(2, 120)]
write_table(sys.argv[1], make_table(name="det", family="kl", target="log p", method="x",
            params={"eta": 3}, provenance={"v": "1"}, results=rs, inputs_hash="ab"))
"""


def test_byte_identical_across_processes(tmp_path):
    """Same data written by two fresh processes (with a pause, so time stamps would differ)."""
    outs = []
    for i in range(2):
        p = tmp_path / f"det{i}.h5"
        subprocess.run([sys.executable, "-c", _WRITER, str(p)], check=True)
        outs.append(p.read_bytes())
        if i == 0:
            import time

            time.sleep(1.1)
    assert outs[0] == outs[1]


def test_byte_identical_same_process(tmp_path, small_table):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_table(a, small_table)
    # pollute HDF5's free lists with other writes in between
    with h5py.File(tmp_path / "junk.h5", "w") as f:
        for j in range(20):
            f.attrs[f"a{j}"] = np.random.default_rng(j).random(50)
            f.create_dataset(f"d{j}", data=np.random.default_rng(j).random(300))
    write_table(b, small_table)
    assert a.read_bytes() == b.read_bytes()


def test_in_memory_image_reproduces_every_committed_table(tmp_path):
    """The file image is built in memory (HDF5's core driver) and written in one atomic write;
    its bytes equal those of the committed tables, written by HDF5 to disk before that change
    (an oracle independent of the in-memory writer), for every table in tables/."""
    from pathlib import Path

    committed = sorted((Path(__file__).resolve().parents[1] / "tables").glob("*.h5"))
    assert committed
    for f in committed:
        write_table(tmp_path / f.name, read_table(f))
        assert (tmp_path / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name for f in committed]  # no debris


def test_write_is_atomic_on_error(tmp_path, small_table, monkeypatch):
    p = tmp_path / "small.h5"
    import aqpgen.store.tablefile as tf

    def boom(items):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(tf, "_fixed_ascii", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_table(p, small_table)
    assert os.listdir(tmp_path) == []
    # an existing file is left untouched by a failed rewrite
    monkeypatch.undo()
    write_table(p, small_table)
    before = p.read_bytes()
    monkeypatch.setattr(tf, "_fixed_ascii", boom)
    with pytest.raises(RuntimeError):
        write_table(p, small_table)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["small.h5"]


def test_write_accepts_parts(tmp_path):
    t = write_table(tmp_path / "x.h5", name="x", family="f", target="p", method="m",
                    Ks=(2,), rows={2: ([0.0, 1.0], None, {"beta": 0.0}, "ok", {})})
    assert read_table(tmp_path / "x.h5").content_hash == t.content_hash


def test_tamper_value_detected(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        f["values"][1] = 0.75
    with pytest.raises(TableFormatError, match=r"content hash mismatch \(differing: values\)"):
        read_table(p)
    t = read_table(p, check_hash=False)
    assert t.values(2)[1] == 0.75


def test_tamper_attr_and_metric_detected(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        f.attrs["target"] = np.bytes_(b"p^2")
    with pytest.raises(TableFormatError, match="differing: attrs"):
        read_table(p)
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        m = f["metrics"][()]
        m["beta"][0] = 0.25
        f["metrics"][...] = m
    with pytest.raises(TableFormatError, match="differing: metrics"):
        read_table(p)


def test_future_schema_version(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        f.attrs["schema_version"] = np.int64(SCHEMA_VERSION + 1)
    with pytest.raises(TableFormatError, match="newer aqpgen.*upgrade"):
        read_table(p)


def test_wrong_schema_and_missing_dataset(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        f.attrs["schema"] = np.bytes_(b"something.else")
    with pytest.raises(TableFormatError, match="'something.else'.*not an aqpgen table"):
        read_table(p)
    write_table(p, small_table)
    with h5py.File(p, "r+") as f:
        del f["status"]
    with pytest.raises(TableFormatError, match=r"missing dataset\(s\) \['status'\]"):
        read_table(p)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(TableFormatError, match="no 'schema' attribute"):
        read_table(tmp_path / "plain.h5")


def test_truncated_and_not_hdf5(tmp_path, small_table):
    p = tmp_path / "small.h5"
    write_table(p, small_table)
    data = p.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 100):
        q = tmp_path / f"cut{cut}.h5"
        q.write_bytes(data[:cut])
        with pytest.raises(TableFormatError, match="cut|truncat|not a readable|unreadable"):
            read_table(q)
    txt = tmp_path / "notes.h5"
    txt.write_text("hello")
    with pytest.raises(TableFormatError, match="not a readable HDF5"):
        read_table(txt)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_table(tmp_path / "nope.h5")


def test_tabledata_validation():
    with pytest.raises(ValueError, match="strictly increasing"):
        TableData("n", "f", "t", "m", Ks=(3, 2), rows={2: ([0, 1], None, {}, "ok", {}), 3: ([0, 0, 1], None, {}, "ok", {})})
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        TableData("n", "f", "t", "m", Ks=(2,), rows={2: ([0, 1, 2], None, {}, "ok", {})})
    with pytest.raises(ValueError, match="missing \\[3\\]"):
        TableData("n", "f", "t", "m", Ks=(2, 3), rows={2: ([0, 1], None, {}, "ok", {})})
    with pytest.raises(ValueError, match="duplicate K"):
        make_table(name="n", family="f", target="t", method="m", params={}, provenance={},
                   results=[KResult(2, [0, 1]), KResult(2, [0, 1])])


def test_manifest(tmp_path, small_table):
    write_table(tmp_path / "a.h5", small_table)
    write_table(tmp_path / "b.h5", small_table)
    m = update_manifest(tmp_path)
    on_disk = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert on_disk == m and list(on_disk["files"]) == ["a.h5", "b.h5"]
    sha = hashlib.sha256((tmp_path / "a.h5").read_bytes()).hexdigest()
    assert on_disk["files"]["a.h5"]["sha256"] == sha
    assert on_disk["files"]["a.h5"]["size"] == (tmp_path / "a.h5").stat().st_size
    assert all(c.ok for c in check_manifest(tmp_path))
    assert all(c.ok for c in check_manifest(tmp_path / "a.h5"))
    # a file changed after the manifest was written
    with h5py.File(tmp_path / "a.h5", "r+") as f:
        f["values"][0] = 0.5
    bad = check_manifest(tmp_path / "a.h5")
    assert not bad[0].ok and "sha256" in bad[0].detail
    # an unlisted file and a missing file
    write_table(tmp_path / "c.h5", small_table)
    (tmp_path / "b.h5").unlink()
    details = {c.detail.split(":")[0]: c for c in check_manifest(tmp_path)}
    assert not details["c.h5"].ok and "not listed" in details["c.h5"].detail
    assert not details["b.h5"].ok and "missing" in details["b.h5"].detail
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]


def test_manifest_absent(tmp_path, small_table):
    write_table(tmp_path / "a.h5", small_table)
    (c,) = check_manifest(tmp_path / "a.h5")
    assert not c.ok and "no MANIFEST.json" in c.detail


def test_tablefile_imports_no_heavy_deps():
    code = ("import sys, aqpgen.store.tablefile; bad = [m for m in ('cvxpy','mpmath','flint','sympy','click',"
            "'scipy','h5py') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
