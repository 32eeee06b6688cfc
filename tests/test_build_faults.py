"""Faults of the bad day: a full disk, a read-only output, a tampered table, a missing
``$AQPGEN_TABLES`` directory.

The full disk and the read-only output are real: a small tmpfs mounted for the test (``mount``
needs root, as in CI; elsewhere these tests are skipped and say why), driven through the real
``aqpgen build`` command line.  Oracles: the exit status, the absence of a traceback, and the
directory listing and file bytes before and after (the output directory must be unchanged).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from aqpgen.build.build import build
from aqpgen.errors import TableFormatError
from aqpgen.store import atomic, locate
from aqpgen.store.manifest import MANIFEST_NAME, check_manifest, load_manifest
from aqpgen.store.tablefile import read_table, write_table

REPO = Path(__file__).resolve().parents[1]

SPEC = """
[[table]]
name = "pm1"
family = "power"
method = "ustat"
params = {{ m = 1 }}
Ks = {Ks}
"""


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", "from aqpgen.cli import main; main()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _snapshot(d: Path) -> dict:
    """Every entry of ``d`` (hidden ones included) with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode in (1, 2), (r.returncode, r.stderr)  # 139 / -11 was the segfault
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


@contextmanager
def _tmpfs(d: Path, size: str):
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); run as root (CI does)")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_full_disk_is_one_line_error_and_leaves_the_directory_unchanged(tmp_path):
    spec = tmp_path / "spec.toml"
    with _tmpfs(tmp_path / "m", "16k") as m:
        spec.write_text(SPEC.format(Ks="[2, 3]"))
        r = _cli("build", str(spec), "--out", str(m), "-q", cwd=tmp_path)
        assert r.returncode == 0, r.stderr  # a small table fits
        before = _snapshot(m)
        assert sorted(before) == [MANIFEST_NAME, "pm1.h5"]
        spec.write_text(SPEC.format(Ks="[256, 512]"))  # ~18.5 kB: does not fit in 16 kB
        r = _cli("build", str(spec), "--out", str(m), "-q", cwd=tmp_path)
        line = _one_line_error(r)
        assert "pm1.h5" in line and "No space left on device" in line, line
        assert _snapshot(m) == before  # no temporary file, no .build.lock, old table and manifest
    assert not list(tmp_path.glob("core*"))


def test_full_disk_injected_at_the_write_keeps_the_old_file(tmp_path, monkeypatch):
    """The same without a mount: ENOSPC raised by the write of the table's bytes."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(Ks="[2, 3]"))
    out = tmp_path / "out"
    build(spec, out)
    before = _snapshot(out)
    real_write = atomic.write_bytes_atomic

    def full(path, data):
        with atomic.atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data[:100])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("aqpgen.store.tablefile.write_bytes_atomic", full)
    from aqpgen.build.build import BuildError

    with pytest.raises(BuildError, match=r"cannot write .*pm1\.h5: No space left on device"):
        build(spec, out, force=True)
    assert _snapshot(out) == before
    monkeypatch.setattr("aqpgen.store.tablefile.write_bytes_atomic", real_write)


def test_read_only_out_is_refused_before_any_row(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(Ks="[2048, 4096]"))  # rows that take a minute: the check comes first
    with _tmpfs(tmp_path / "ro", "64k") as ro:
        (ro / ".build.lock").write_text("")  # a lock file left by a kill -9
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        before = _snapshot(ro)
        for out in (ro, ro / "sub" / "dir"):
            t0 = time.monotonic()
            r = _cli("build", str(spec), "--out", str(out), "-q", cwd=tmp_path)
            line = _one_line_error(r)
            assert time.monotonic() - t0 < 30, "rows were computed before the check"
            assert f"cannot write --out {out}: Read-only file system; nothing was computed" in line, line
        assert _snapshot(ro) == before


def test_check_writable(tmp_path):
    """The helper commands call before writing a --json / --out target."""
    atomic.check_writable(tmp_path / "new" / "deeper" / "x.json", "--json")  # created later by the writer
    assert not (tmp_path / "new").exists()  # the check leaves nothing behind
    assert os.listdir(tmp_path) == []
    atomic.check_writable(tmp_path, "--out", directory=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(atomic.NotWritableError, match=r"^cannot write --json .*/f/x.json: .*f is not a directory$"):
        atomic.check_writable(tmp_path / "f" / "x.json", "--json")
    with pytest.raises(atomic.NotWritableError, match=r"^cannot write --json .*: it is a directory$"):
        atomic.check_writable(tmp_path, "--json")
    with _tmpfs(tmp_path / "ro", "16k") as ro:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        with pytest.raises(atomic.NotWritableError, match="Read-only file system") as e:
            atomic.check_writable(ro / "audit.json", "--json")
        assert isinstance(e.value, OSError) and e.value.errno == 30 and "\n" not in str(e.value)


def _tamper(path: Path) -> None:
    """What an attacker does: change one value and recompute the file's own content hash."""
    t = read_table(path)
    K = t.Ks[-1]
    t.rows[K].values[0] += 0.5
    write_table(path, t)
    read_table(path)  # its own hash checks


def test_a_tampered_table_is_rebuilt_not_blessed(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(Ks="[2, 3, 5]"))
    out = tmp_path / "out"
    build(spec, out)
    good = (out / "pm1.h5").read_bytes()
    manifest = (out / MANIFEST_NAME).read_bytes()
    _tamper(out / "pm1.h5")
    bad_sha = __import__("hashlib").sha256((out / "pm1.h5").read_bytes()).hexdigest()
    assert not all(c.ok for c in check_manifest(out))  # verify flags it

    notes = []
    (o,) = build(spec, out, progress=lambda ev: notes.append(ev.table) if ev.kind == "note" else None)
    assert o.action == "built"
    good_sha = load_manifest(out / MANIFEST_NAME)["files"]["pm1.h5"]["sha256"]
    assert any("pm1.h5" in n and bad_sha in n and good_sha in n for n in notes), notes
    assert (out / "pm1.h5").read_bytes() == good  # the tampered values are gone
    assert (out / MANIFEST_NAME).read_bytes() == manifest  # never rewritten to list the tampered file
    assert all(c.ok for c in check_manifest(out))
    assert build(spec, out)[0].action == "up-to-date"


def test_provenance_migration_does_not_bless_a_tampered_table(tmp_path):
    from aqpgen.build.migrate import normalise_provenance

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(Ks="[2, 3]"))
    out = tmp_path / "out"
    build(spec, out)
    _tamper(out / "pm1.h5")
    manifest = (out / MANIFEST_NAME).read_bytes()
    with pytest.raises(RuntimeError, match=r"refusing to migrate .*pm1\.h5: sha256 [0-9a-f]{64} differs"):
        normalise_provenance(str(spec), str(out))
    assert (out / MANIFEST_NAME).read_bytes() == manifest
    assert not all(c.ok for c in check_manifest(out))


def test_an_installed_table_is_checked_against_the_installed_manifest(tmp_path, monkeypatch):
    from aqpgen.runtime import load_table
    from aqpgen.store.wheeldata import write_runtime_tables

    pkg = tmp_path / "pkg"
    write_runtime_tables(REPO / "tables", pkg)
    monkeypatch.setattr(locate, "packaged_tables_dir", lambda: pkg)
    monkeypatch.setattr(locate, "source_tables_dir", lambda: None)  # an installed package
    monkeypatch.delenv(locate.TABLES_ENV, raising=False)
    assert load_table("power-m2").path == pkg / "power-m2.h5"
    _tamper(pkg / "power-m2.h5")
    with pytest.raises(TableFormatError, match=r"power-m2\.h5: sha256 [0-9a-f]{64} differs from MANIFEST.json's"):
        load_table("power-m2")
    with pytest.raises(TableFormatError, match="reinstall aqpgen"):
        load_table(pkg / "power-m2.h5")  # the installed file by its path: the same check
    load_table(REPO / "tables" / "power-m2.h5")  # a file elsewhere: its own content hash only
    (pkg / MANIFEST_NAME).unlink()
    with pytest.raises(TableFormatError, match=r"power-m1\.h5: no MANIFEST.json records it"):
        load_table("power-m1")


def test_a_missing_tables_directory_is_reported_once(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dir"
    monkeypatch.setenv(locate.TABLES_ENV, f"{missing}{os.pathsep}{tmp_path}")
    monkeypatch.setattr(locate, "_REPORTED", set())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        locate.search_path()
        locate.available_tables()
        with pytest.raises(FileNotFoundError):
            locate.find_table("nothing-here")
    msgs = [str(x.message) for x in w if issubclass(x.category, locate.TablesPathWarning)]
    assert msgs == [f"$AQPGEN_TABLES entry {str(missing)!r} does not exist; no tables are looked up there"]
