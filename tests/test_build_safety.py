"""No debris: kill -9 of a --jobs 2 build, concurrent builds, stale temporary files, stale
manifests, the build lock, the atomic write, and the dirty-tree refusal.

Builds run as real ``aqpgen build`` processes driving a slow fake generator (written to tmp_path),
so process death, the pool workers and the lock are the real ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from aqpgen.build.lock import LOCK_NAME, build_lock
from aqpgen.store import atomic
from aqpgen.store.manifest import MANIFEST_NAME, check_manifest
from aqpgen.store.tablefile import read_table

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and fork")

SLOWGEN = '''
"""A slow fake generator (c_K[n] = n/K) and a driver running the aqpgen CLI with it registered."""
import sys, time
import numpy as np

GENERATOR_VERSION = "slow-1"

def target_name(params):
    return "p"

def kmin(params):
    return 2

def build_K(K, params, *, tables_dir=None):
    from aqpgen.records import KResult
    if params.get("mark"):
        with open(params["mark"], "a") as fh:
            fh.write(f"{K}\\n")
    time.sleep(float(params.get("sleep", 0.0)))
    return KResult(K, np.arange(1, K + 1) / K, None, {"beta": 1.0 / K}, "ok", {"solver": "slow"})

def verify_row(K, values, values_hp, metrics, params):
    from aqpgen.records import Check
    ok = bool(np.array_equal(values, np.arange(1, K + 1) / K))
    return [Check("slow.exact", ok, "n/K", K)]

if __name__ == "__main__":
    sys.modules["slowgen"] = sys.modules["__main__"]
    from aqpgen.build import spec
    spec.GENERATORS[("slow", "lin")] = "slowgen"
    from aqpgen.cli import main
    main(sys.argv[1:], prog_name="aqpgen")
'''

SPEC = """
[[table]]
name = "slow-a"
family = "slow"
method = "lin"
params = {{ sleep = {sleep} }}
Ks = {Ks}
"""


def _setup(tmp_path: Path, sleep: float, Ks: str) -> tuple[Path, Path]:
    (tmp_path / "slowgen.py").write_text(SLOWGEN)
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(sleep=sleep, Ks=Ks))
    return spec, tmp_path / "out"


REPO = Path(__file__).resolve().parents[1]


def _aqpgen(tmp_path: Path, *args: str) -> subprocess.Popen:
    # this checkout's aqpgen (not whatever the environment installed) and the fake generator
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    return subprocess.Popen([sys.executable, str(tmp_path / "slowgen.py"), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc/*/stat, an independent view of the process tree)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.add(int(d))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill9_during_jobs2_build_leaves_no_orphan_no_tmp_and_a_healable_manifest(tmp_path):
    spec, out = _setup(tmp_path, sleep=0.5, Ks="[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]")
    p = _aqpgen(tmp_path, "build", str(spec), "--out", str(out), "--jobs", "2", "-q")
    workers: set[int] = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(workers) < 2:
        workers = _children(p.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, f"no pool workers seen (children {workers}); stderr: {p.stderr.read() if p.poll() is not None else ''}"
    time.sleep(0.3)  # let the workers start solving
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), f"orphaned workers: {[w for w in workers if _alive(w)]}"
    assert atomic.stale_temp_files(out) == []  # killed while solving: nothing was being written
    assert not (out / "slow-a.h5").exists()

    # the next build completes, and the directory verifies (manifest included)
    q = _aqpgen(tmp_path, "build", str(spec), "--out", str(out), "--jobs", "2", "-q")
    so, se = q.communicate(timeout=60)
    assert q.returncode == 0, se
    assert "slow-a: built 12 K" in so
    assert all(c.ok for c in check_manifest(out)), check_manifest(out)
    assert read_table(out / "slow-a.h5").Ks == tuple(range(2, 14))


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigint_stops_a_build_within_2s_leaving_nothing(tmp_path, jobs):
    """Ctrl-C (SIGINT to the build process) while rows of 60 s run: the build exits within 2 s
    (the pool's workers killed, not waited for), with one line and no traceback, and leaves
    nothing: no table, temporary file, manifest, lock file or worker."""
    spec, out = _setup(tmp_path, sleep=60, Ks="[2, 3, 4]")
    mark = tmp_path / "started"
    spec.write_text(spec.read_text().replace("sleep = 60", f"sleep = 60, mark = {str(mark)!r}"))
    p = _aqpgen(tmp_path, "build", str(spec), "--out", str(out), "--jobs", str(jobs), "-q")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(mark.read_text().split() if mark.exists() else []) < jobs:
        time.sleep(0.05)
    if not mark.exists():
        p.kill()
        raise AssertionError(f"no row started: {p.communicate(timeout=10)}")
    workers = _children(p.pid)
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    try:
        so, se = p.communicate(timeout=30)
    finally:
        p.kill()
    elapsed = time.monotonic() - t0
    print(f"--jobs {jobs}: SIGINT to exit {elapsed:.2f} s")
    assert elapsed < 2.0, f"SIGINT took {elapsed:.1f} s to stop the build"
    assert p.returncode == 1 and "Traceback" not in se and se.strip() == "Aborted!", se
    assert not out.exists(), sorted(os.listdir(out))  # nothing half-written, no empty directory
    time.sleep(0.5)
    assert not any(_alive(w) for w in workers), "workers outlived the interrupted build"


def test_stale_temp_files_are_removed_by_the_next_build(tmp_path):
    spec, out = _setup(tmp_path, sleep=0, Ks="[2, 3]")
    out.mkdir()
    debris = [out / "slow-a.h5.tmp-abc123", out / "MANIFEST.json.tmp-x9"]
    for f in debris:
        f.write_bytes(b"half written")
    keep = out / "notes.txt.tmp-1"  # not ours (suffix is not .h5/.json): left alone
    keep.write_text("x")
    from aqpgen.build.verify import verify_file

    q = _aqpgen(tmp_path, "build", str(spec), "--out", str(out))
    _so, se = q.communicate(timeout=60)
    assert q.returncode == 0, se
    assert "removed 2 temporary file(s)" in se
    assert not any(f.exists() for f in debris) and keep.exists()
    (out / "slow-a.h5.tmp-zzz").write_bytes(b"")
    checks = [c for c in verify_file(out / "slow-a.h5") if c.name == "debris"]
    assert len(checks) == 1 and not checks[0].ok and "next `aqpgen build`" in checks[0].detail


def test_stale_manifest_is_explained_by_verify_and_healed_by_the_next_build(tmp_path):
    spec, out = _setup(tmp_path, sleep=0, Ks="[2, 3]")
    q = _aqpgen(tmp_path, "build", str(spec), "--out", str(out))
    assert q.wait(timeout=60) == 0
    # a kill between a table's rename and the manifest's rename: the file changed, the manifest not
    spec.write_text(SPEC.format(sleep=0, Ks="[2, 3, 4]"))
    manifest_before = (out / MANIFEST_NAME).read_bytes()
    q = _aqpgen(tmp_path, "build", str(spec), "--out", str(out))
    assert q.wait(timeout=60) == 0
    (out / MANIFEST_NAME).write_bytes(manifest_before)
    bad = [c for c in check_manifest(out) if not c.ok]
    assert len(bad) == 1 and "slow-a.h5" in bad[0].detail and "rerun `aqpgen build SPEC --out DIR`" in bad[0].detail
    q = _aqpgen(tmp_path, "build", str(spec), "--out", str(out))
    so, se = q.communicate(timeout=60)
    # a file the manifest does not record is never taken as up to date (it could be a tampered
    # one): the heal is a rebuild, named in a note
    assert q.returncode == 0 and "slow-a: built 3 K" in so, se
    assert "slow-a.h5: sha256" in se and "not treated as up to date; rebuilding it" in se
    assert all(c.ok for c in check_manifest(out))


@pytest.mark.slow
def test_two_concurrent_builds_into_one_directory_are_serialised(tmp_path):
    spec, out = _setup(tmp_path, sleep=0.3, Ks="[2, 3, 4, 5, 6]")
    a = _aqpgen(tmp_path, "build", str(spec), "--out", str(out), "--jobs", "2")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _children(a.pid):  # workers exist: a holds the lock
        time.sleep(0.05)
    b = _aqpgen(tmp_path, "build", str(spec), "--out", str(out), "--jobs", "2")
    (ao, ae), (bo, be) = a.communicate(timeout=120), b.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, (ae, be)
    outs = sorted([ao, bo], key=lambda s: "built" not in s.splitlines()[0])
    assert outs[0].startswith("slow-a: built 5 K") and outs[1].startswith("slow-a: up to date")
    assert "waiting for the build lock" in (ae + be)
    assert all(c.ok for c in check_manifest(out))
    assert read_table(out / "slow-a.h5").Ks == (2, 3, 4, 5, 6)


def test_build_lock_excludes_and_is_released_on_exit(tmp_path):
    events = []
    with build_lock(tmp_path):
        t = threading.Thread(target=lambda: _locked_in_subprocess(tmp_path, events))
        t.start()
        time.sleep(1.0)
        assert events == []  # the other process is waiting
    t.join(timeout=30)
    assert events == ["locked"]
    assert not (tmp_path / LOCK_NAME).exists()  # each holder removes the lock file on exit


def test_build_lock_stays_exclusive_while_holders_remove_the_lock_file(tmp_path):
    """Holders remove .build.lock on exit; a waiter that then holds the flock of a removed file
    must start over, or two processes would be inside at once.  Oracle: 4 processes x 25 locked
    read-sleep-write increments of a counter file end at exactly 100."""
    counter = tmp_path / "counter"
    counter.write_text("0")
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from aqpgen.build.lock import build_lock
        c = Path({str(counter)!r})
        for _ in range(25):
            with build_lock({str(tmp_path)!r}):
                n = int(c.read_text())
                time.sleep(0.002)
                c.write_text(str(n + 1))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert counter.read_text() == "100"
    assert not (tmp_path / LOCK_NAME).exists()


def _locked_in_subprocess(d: Path, events: list) -> None:
    code = ("import sys; from aqpgen.build.lock import build_lock\n"
            f"with build_lock({str(d)!r}, on_wait=lambda m: print('WAIT', m, flush=True)):\n    print('LOCKED')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    if "WAIT" in r.stdout and "LOCKED" in r.stdout:
        events.append("locked")


def test_atomic_write_helpers(tmp_path):
    p = tmp_path / "sub" / "x.json"
    atomic.write_text_atomic(p, "a\nb\n")
    assert p.read_bytes() == b"a\nb\n"
    atomic.write_bytes_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    with pytest.raises(RuntimeError), atomic.atomic_path(p) as tmp:
        Path(tmp).write_bytes(b"partial")
        raise RuntimeError("writer died")
    assert p.read_bytes() == b"\x00\x01"  # untouched
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]  # temp file removed
    with pytest.raises(TypeError, match="bytes"):
        atomic.write_bytes_atomic(p, "text")


def test_dirty_tree_refuses_to_write_shipped_tables(tmp_path, monkeypatch, fake_generator):
    from aqpgen.build import build as b

    spec = tmp_path / "tables.toml"
    spec.write_text('[[table]]\nname="fake-a"\nfamily="fake"\nmethod="lin"\nparams={a="1"}\nKs=[2, 3]\n')
    monkeypatch.setattr(b, "git_commit", lambda: "0" * 40 + "+dirty")
    monkeypatch.setattr(b, "source_tables_dir", lambda: tmp_path)
    with pytest.raises(b.BuildError, match="--allow-dirty"):
        b.build(spec)
    assert not (tmp_path / "fake-a.h5").exists()
    out = b.build(spec, allow_dirty=True)
    assert out[0].action == "built"
    monkeypatch.setattr(b, "git_commit", lambda: "0" * 40)
    assert b.build(spec, force=True)[0].action == "built"
    monkeypatch.setattr(b, "git_commit", lambda: "0" * 40 + "+dirty")
    assert b.build(spec)[0].action == "up-to-date"  # nothing to write: no refusal
    other = tmp_path / "elsewhere"
    assert b.build(spec, other, force=True)[0].action == "built"  # not the shipped directory


def test_pool_workers_exit_when_their_parent_dies(tmp_path):
    """die_with_parent on its own: a grandchild whose parent is SIGKILLed exits."""
    code = textwrap.dedent("""
        import os, sys, time
        pid = os.fork()
        if pid == 0:
            from aqpgen.build.runner import die_with_parent
            die_with_parent(os.getppid())
            time.sleep(60)
            os._exit(0)
        print(pid, flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    time.sleep(1.0)
    assert _alive(child)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)
