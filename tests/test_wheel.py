"""The light install: build the wheel, install it with only numpy + h5py into a fresh virtual
environment outside the repository, and from another directory load every shipped table by name.

Oracle: the committed ``tables/*.h5`` read with raw h5py (datasets ``K``, ``offsets``, ``values``,
``status``), independently of aqpgen's reader.  Also: with no C compiler the wheel still builds and
serves lookups through numpy (the compiled gather is optional).  Runs in CI (.ci/run runs the
whole suite); ~1 min.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("cvxpy", "clarabel", "flint", "sympy", "mpmath", "scipy", "matplotlib", "click")
MAX_WHEEL_BYTES = 25 * 1024 * 1024

#: A 300 000-count lookup at K = 1024 of the installed power-m2 (the compiled gather on its
#: threads when it was built, numpy's otherwise) against the committed file read with h5py,
#: twice (the second call takes the cached fast path); counts 0 and K + 1 must be refused.
LARGE_LOOKUP = r"""
import h5py, numpy as np

def check_large_lookup(t, path):
    with h5py.File(path, "r") as f:
        Ks = f["K"][()].tolist(); off = f["offsets"][()]; vals = f["values"][()]
    K = 1024
    i = Ks.index(K)
    c = np.random.default_rng(0).integers(1, K + 1, size=300_000)
    want = vals[off[i]:off[i + 1]][c - 1]
    for _ in range(2):
        assert t.lookup(c, K).tobytes() == want.tobytes()
    for bad in (0, K + 1):
        c[-1] = bad
        try:
            t.lookup(c, K)
        except ValueError as e:
            assert f"= {bad}" in str(e), str(e)
        else:
            raise AssertionError(f"a count of {bad} was served")
"""

CHECK = LARGE_LOOKUP + r"""
import importlib.util, json, os, sys
import aqpgen, aqpgen.runtime, aqpgen.integrations
from aqpgen.runtime import load_table
from aqpgen.store import locate

repo_tables, HEAVY = sys.argv[1], sys.argv[2].split(",")
out = {"aqpgen_file": aqpgen.__file__, "search_path": [str(p) for p in locate.search_path()],
       "heavy_installed": [m for m in HEAVY if importlib.util.find_spec(m) is not None],
       "tables": {}}
for fn in sorted(os.listdir(repo_tables)):
    if not fn.endswith(".h5"):
        continue
    name = fn[:-3]
    t = load_table(name)                     # by name, from the installed package data
    with h5py.File(os.path.join(repo_tables, fn), "r") as f:   # raw oracle: the committed file
        Ks = f["K"][()].tolist(); off = f["offsets"][()]; vals = f["values"][()]
        status = [s.decode() for s in f["status"][()]]
    full = load_table(os.path.join(repo_tables, fn))   # the committed full table, by path
    n_ok = n_bad = n_guarded = 0
    for i, K in enumerate(Ks):
        want = vals[off[i]:off[i + 1]]
        if status[i] == "ok":
            n = np.arange(1, K + 1, dtype=np.int64)
            got = t.lookup(n, K, allow_imprecise=True)
            assert got.tobytes() == np.ascontiguousarray(want).tobytes(), (name, K)
            # the runtime's precision guard decides alike for the copy and the full table
            verdicts = []
            for tab in (t, full):
                try:
                    tab.lookup(n, K)
                    verdicts.append("served")
                except Exception as e:
                    verdicts.append(type(e).__name__)
            assert verdicts[0] == verdicts[1], (name, K, verdicts)
            n_guarded += verdicts[0] != "served"
            n_ok += 1
        else:
            try:
                t.lookup(np.array([1]), K)
            except Exception:
                n_bad += 1
            else:
                raise AssertionError(f"{name} K={K}: a non-ok row was served")
    assert list(t.Ks) == [K for K, s in zip(Ks, status) if s == "ok"] or list(t.Ks) == Ks
    if name == "power-m2":
        check_large_lookup(t, os.path.join(repo_tables, fn))
    out["tables"][name] = {"path": str(locate.find_table(name)), "ok_rows": n_ok, "refused": n_bad,
                           "guarded": n_guarded,
                           "copy_of": t.provenance.get("runtime_copy_of")}
from aqpgen.runtime import gather
out["compiled_gather"] = gather.COMPILED
print("RESULT " + json.dumps(out))
"""


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-40:])
        raise AssertionError(f"{cmd} failed ({r.returncode}):\n{tail}")
    return r


def _build_wheel(src, tmp_path, env=None) -> tuple[Path, list[str]]:
    """The wheel of ``src`` built into tmp_path/wheels (the dev environment has the build
    requirements (pyproject [dev]): no isolated build env) and its file names."""
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(wheels)], env=env)
    (wheel,) = wheels.glob("aqpgen-*.whl")
    with zipfile.ZipFile(wheel) as z:
        return wheel, z.namelist()


def _install(wheel, tmp_path) -> tuple[Path, Path, dict]:
    """(venv, its python, a clean environment) after installing ``wheel`` into a fresh venv
    under tmp_path (outside the repository) with this environment's pip: the wheel and its
    declared dependencies only."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(wheel)])
    env = {k: v for k, v in os.environ.items() if k not in ("AQPGEN_TABLES", "PYTHONPATH")}
    return venv, py, env


@pytest.mark.ci
@pytest.mark.slow
def test_wheel_installs_light_and_serves_every_table(tmp_path):
    wheel, names = _build_wheel(REPO, tmp_path)
    size = wheel.stat().st_size
    assert size <= MAX_WHEEL_BYTES, f"wheel is {size / 2**20:.1f} MB > 25 MB"
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("aqpgen/store/shipped/") and n.endswith(".h5"))
    committed = sorted(p.name for p in (REPO / "tables").glob("*.h5"))
    assert shipped == committed
    assert not any(n.startswith(("tables/", "tests/")) for n in names)

    venv, py, env = _install(wheel, tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = _run([str(py), "-c", CHECK, str(REPO / "tables"), ",".join(HEAVY)], cwd=work, env=env)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])

    assert out["heavy_installed"] == [], f"the light install pulled in {out['heavy_installed']}"
    if os.environ.get("AQPGEN_REQUIRE_CGATHER") == "1":  # set by .ci/run
        assert out["compiled_gather"], "the wheel's runtime has no compiled gather"
        assert any(n.startswith("aqpgen/runtime/cgather") for n in names)
    assert str(venv) in out["aqpgen_file"] and str(REPO) not in out["aqpgen_file"]
    assert all(str(REPO) not in p for p in out["search_path"])
    assert sorted(out["tables"]) == [c[:-3] for c in committed]
    from aqpgen.store.tablefile import read_table

    for name, info in out["tables"].items():
        assert "/aqpgen/store/shipped/" in info["path"] and str(venv) in info["path"]
        assert info["ok_rows"] > 0
        full = read_table(REPO / "tables" / f"{name}.h5")
        assert info["copy_of"] == {"content_hash": full.content_hash, "dropped": ["values_hp"]}
        assert info["refused"] == sum(full.rows[K].status != "ok" for K in full.Ks)

    # the CLI entry point names the extra it needs instead of a traceback
    r = subprocess.run([str(venv / "bin" / "aqpgen"), "--help"], capture_output=True, text=True, cwd=work, env=env,
                       check=False)
    assert r.returncode == 2 and "pip install 'aqpgen[build]'" in r.stderr and "Traceback" not in r.stderr
    print(f"wheel {wheel.name}: {size} bytes ({size / 2**20:.2f} MB)")


NO_COMPILER_CHECK = LARGE_LOOKUP + r"""
import sys
from aqpgen.runtime import gather, load_table
check_large_lookup(load_table("power-m2"), sys.argv[1])
print("COMPILED", gather.COMPILED)
"""


@pytest.mark.ci
@pytest.mark.slow
def test_wheel_without_a_compiler_falls_back_to_numpy(tmp_path):
    """The compiled gather is optional: with no working C compiler (CC=/bin/false) the wheel
    still builds, installs and serves every lookup through numpy."""
    src = tmp_path / "src"  # a copy without build/ and compiled files, so nothing is reused
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.so",
                                                             "__pycache__", "*.egg-info", ".*cache*"))
    wheel, names = _build_wheel(src, tmp_path, env={**os.environ, "CC": "/bin/false"})
    assert not any(n.endswith((".so", ".pyd")) for n in names)
    _, py, env = _install(wheel, tmp_path)
    r = _run([str(py), "-c", NO_COMPILER_CHECK, str(REPO / "tables" / "power-m2.h5")], cwd=tmp_path,
             env=env)
    assert r.stdout.strip().endswith("COMPILED False")
