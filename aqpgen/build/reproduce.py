"""Rebuild committed tables in a fresh virtual environment and compare (``make reproduce``).

    python -m aqpgen.build.reproduce [--only NAME[:K,K,...]]... [--unpinned] [--with PIN]...
                                     [--venv DIR] [--keep DIR] [--jobs N]

Two checks, one mechanism:

* **locked** (default, ``make reproduce``): a new virtual environment installed from the
  repository's ``constraints.txt`` (``aqpgen.build.buildenv``) rebuilds the named tables with
  ``aqpgen build --force`` into a temporary directory; each file must equal the committed one
  byte for byte (sha256).  Exit status 1 otherwise, with the row-by-row difference
  (``aqpgen.build.diff``).
* **unpinned** (``--unpinned``, ``make check-unpinned``): the same with the newest released
  versions (no constraints; ``--with numpy==2.2.6`` pins single packages, to try a given bump).
  It reports which tables would change and by how much -- values and each metric, as relative
  differences -- and exits 0: a dependency bump is then a visible decision (``make lock``).

``NAME:K,K`` rebuilds only those K of a table (a spec file written for the purpose) and compares
those rows instead of bytes (the file's K list differs from the committed one by construction):
what the test suite runs (tests/test_reproduce.py), since the full tables take minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aqpgen.build.buildenv import LOCK_NAME
from aqpgen.build.diff import diff_tables
from aqpgen.build.spec import load_spec

__all__ = ["compare", "fresh_venv", "main", "rebuild", "write_spec"]

ROOT = Path(__file__).resolve().parent.parent.parent
_PIP_NOISE = "WARNING: Location '"


def _run(cmd, log, **kw):
    t = time.time()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kw)
    if r.returncode != 0:
        err = "\n".join(x for x in (r.stdout + r.stderr).splitlines() if _PIP_NOISE not in x)
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{err[-3000:]}")
    log(f"  ({time.time() - t:.0f} s) {' '.join(map(str, cmd))[:160]}")
    return r.stdout


def fresh_venv(dest, *, locked: bool = True, pins=(), python: str = sys.executable, log=print) -> Path:
    """A new virtual environment at ``dest`` with ``aqpgen[build]`` from this checkout installed
    (editable) -- from ``constraints.txt`` when ``locked``, else the newest releases plus
    ``pins`` (``name==version`` strings).  Returns its python."""
    dest = Path(dest)
    _run([python, "-m", "venv", dest], log)
    py = dest / "bin" / "python"
    cmd = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if locked:
        cmd += ["-c", ROOT / LOCK_NAME]
    elif pins:
        cons = dest / "pins.txt"
        cons.write_text("\n".join(pins) + "\n")
        cmd += ["-c", cons]
    _run(cmd + ["-e", f"{ROOT}[build]"], log)
    return py


def write_spec(names_Ks: dict, dest: Path) -> Path:
    """A spec file holding the committed spec's entries for ``names_Ks`` ({name: None or [K]}),
    their Ks restricted where a list is given, in the committed order."""
    src = ROOT / "tables" / "tables.toml"
    specs = {s.name: s for s in load_spec(src)}
    unknown = sorted(set(names_Ks) - set(specs))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; {src} has {sorted(specs)}")
    lines = []
    for s in load_spec(src):
        if s.name not in names_Ks:
            continue
        Ks = names_Ks[s.name]
        ks = '"standard"' if Ks is None and s.Ks_spec == "standard" else str(
            list(Ks) if Ks is not None else list(s.Ks_spec))
        params = ", ".join(f"{k} = {_toml(v)}" for k, v in sorted(s.params.items()))
        lines += ["[[table]]", f'name = "{s.name}"', f'family = "{s.family}"',
                  f'method = "{s.method}"', f"params = {{ {params} }}", f"Ks = {ks}", ""]
    path = dest / "tables.toml"
    path.write_text("\n".join(lines))
    return path


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def rebuild(py: Path, spec: Path, names, out: Path, *, jobs: int = 2, log=print) -> None:
    """``aqpgen build SPEC --force --only NAME... --out OUT`` with the environment's python."""
    cmd = [py.parent / "aqpgen", "build", spec, "--force", "--quiet", "--jobs", str(jobs),
           "--out", out]
    for n in names:
        cmd += ["--only", n]
    _run(cmd, log, cwd=str(out))


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def compare(names_Ks: dict, out: Path, ref_dir: Path | None = None) -> list[dict]:
    """Per table: ``{"name", "mode" ("bytes" | "rows"), "same", "lines"}`` against the committed
    files (``ref_dir`` default: the checkout's tables/)."""
    ref_dir = ref_dir or ROOT / "tables"
    res = []
    for name, Ks in names_Ks.items():
        a, b = ref_dir / f"{name}.h5", out / f"{name}.h5"
        d = diff_tables(a, b)
        if Ks is None:
            same = _sha(a) == _sha(b)
            lines = ([f"bytes identical (sha256 {_sha(a)[:16]}...)"] if same
                     else ["bytes differ"] + d.summary())
            res.append({"name": name, "mode": "bytes", "same": same, "lines": lines, "diff": d})
        else:
            same = d.identical and not d.only_b
            res.append({"name": name, "mode": f"rows K={','.join(map(str, Ks))}", "same": same,
                        "lines": d.summary(), "diff": d})
    return res


def _parse_only(items) -> dict:
    out = {}
    for it in items or ("power-m1", "kl-minimax"):
        name, _, ks = it.partition(":")
        try:
            out[name] = [int(k) for k in ks.split(",")] if ks else None
        except ValueError:
            raise SystemExit(f"--only {it!r}: expected NAME or NAME:K,K,... with integer K") from None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aqpgen.build.reproduce", description=__doc__.split(
        "\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", metavar="NAME[:K,K,...]",
                    help="a table to rebuild (repeatable; default power-m1 and kl-minimax); "
                    "with :K,K only those rows, compared row by row")
    ap.add_argument("--unpinned", action="store_true",
                    help="newest released versions instead of constraints.txt: report, exit 0")
    ap.add_argument("--with", dest="pins", action="append", default=[], metavar="PIN",
                    help="with --unpinned: pin one package (e.g. numpy==2.2.6; repeatable)")
    ap.add_argument("--venv", metavar="DIR", help="reuse (or create) the environment here")
    ap.add_argument("--keep", metavar="DIR", help="write the rebuilt tables here (kept)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes of the rebuild")
    ap.add_argument("--python", default=sys.executable, help="the python to create the venv with")
    a = ap.parse_args(argv)
    names_Ks = _parse_only(a.only)
    if a.pins and not a.unpinned:
        ap.error("--with needs --unpinned (the locked check installs constraints.txt only)")

    def log(s):
        print(s, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="aqpgen-reproduce-"))
    t0 = time.time()
    try:
        vdir = Path(a.venv).resolve() if a.venv else tmp / "venv"
        py = vdir / "bin" / "python"
        kind = "newest releases" + (f" with {', '.join(a.pins)}" if a.pins else "") if a.unpinned \
            else LOCK_NAME
        if not py.exists():
            log(f"creating a virtual environment from {kind} in {vdir} (~1-2 min)")
            py = fresh_venv(vdir, locked=not a.unpinned, pins=a.pins, python=a.python, log=log)
        probe = ("from aqpgen.build.buildenv import describe, installed_versions, "
                 "NUMERIC_PACKAGES as N; print(describe()); "
                 "print(', '.join(f'{k} {v}' for k, v in installed_versions(N).items()))")
        env = _run([py, "-c", probe], lambda s: None)
        log("environment: " + env.strip().replace("\n", "\n             "))
        out = Path(a.keep).resolve() if a.keep else tmp / "out"
        out.mkdir(parents=True, exist_ok=True)
        spec = write_spec(names_Ks, out)
        log(f"rebuilding {', '.join(names_Ks)} with --force into {out}")
        rebuild(py, spec, list(names_Ks), out, jobs=a.jobs, log=log)
        results = compare(names_Ks, out)
    finally:
        if not a.keep:
            shutil.rmtree(tmp / "out", ignore_errors=True)
        if not a.venv:
            shutil.rmtree(tmp, ignore_errors=True)
    bad = 0
    for r in results:
        verdict = "REPRODUCED" if r["same"] else ("CHANGES" if a.unpinned else "DIFFERS")
        bad += not r["same"]
        print(f"{r['name']} ({r['mode']}): {verdict}")
        for line in r["lines"]:
            print(f"    {line}")
    print(f"{len(results) - bad} of {len(results)} reproduced in {time.time() - t0:.0f} s "
          f"({'newest releases' if a.unpinned else LOCK_NAME})")
    return 0 if (a.unpinned or bad == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
