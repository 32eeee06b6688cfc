"""The light install: build the wheel, install it with only numpy + h5py into a fresh virtual
environment outside the repository, and from another directory load every shipped table by name.

Oracle: the committed ``tables/*.h5`` read with raw h5py (datasets ``K``, ``offsets``, ``values``,
``status``), independently of aqpgen's reader.  The wheel is pure Python (tag ``py3-none-any``, no
compiled file).  Runs in CI (.ci/run runs the whole suite); ~1 min.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("cvxpy", "clarabel", "flint", "sympy", "mpmath", "scipy", "matplotlib", "click")
MAX_WHEEL_BYTES = 25 * 1024 * 1024

#: A 300 000-count lookup at K = 1024 of the installed power-m2 (numpy's take + min path)
#: against the committed file read with h5py,
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
print("RESULT " + json.dumps(out))
"""


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-40:])
        raise AssertionError(f"{cmd} failed ({r.returncode}):\n{tail}")
    return r


def _build_wheel(src, tmp_path) -> tuple[Path, list[str], str]:
    """The wheel of ``src`` built into tmp_path/wheels (the dev environment has the build
    requirements (pyproject [dev]): no isolated build env), its file names and its WHEEL
    metadata."""
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
          "-w", str(wheels)])
    (wheel,) = wheels.glob("aqpgen-*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
        return wheel, z.namelist(), z.read(meta).decode()


def _install(wheel, tmp_path) -> tuple[Path, Path, dict]:
    """(venv, its python, a clean environment) after installing ``wheel`` into a fresh venv
    under tmp_path (outside the repository) with this environment's pip: the wheel and its
    declared dependencies only."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("AQPGEN_TABLES", "PYTHONPATH")}
    # without PYTHONPATH: pip asks the target interpreter what is installed, and a PYTHONPATH
    # naming the checkout made it answer "aqpgen is already there" and skip the wheel
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(wheel)], env=env)
    return venv, py, env


@pytest.mark.ci
@pytest.mark.slow
def test_wheel_installs_light_and_serves_every_table(tmp_path):
    wheel, names, meta = _build_wheel(REPO, tmp_path)
    assert wheel.name.endswith("-py3-none-any.whl"), f"not a pure-Python wheel: {wheel.name}"
    assert "Root-Is-Purelib: true" in meta and "Tag: py3-none-any" in meta, meta
    assert not any(n.endswith((".so", ".pyd", ".c")) for n in names), "compiled files in the wheel"
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
    assert str(venv) in out["aqpgen_file"] and str(REPO) not in out["aqpgen_file"]
    assert all(str(REPO) not in p for p in out["search_path"])
    assert sorted(out["tables"]) == sorted(c[:-3] for c in committed)
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
