"""Benchmark: whole-grid table builds and the up-to-date check of ``make tables``.

Always: times ``aqpgen.build.build`` on the committed spec against the committed tables (every
table must be found up to date: this is what ``make tables`` does on a fresh clone after the
virtual environment exists; target <= 2 min including the venv), the runtime copies the wheel
ships (size, time), a ``--force`` rebuild of the four power tables and ``verify`` of power-m4.

With ``BENCH_FULL=1`` (or ``--full``): rebuilds, into a temporary directory and with
``--jobs 2``, the minimax table on the whole standard grid (issue 3 target: <= 20 min) and then
the four AQP presets (issue 4 target: <= 30 min), then the four tables of the power targets p^0.5
and p^-0.5 (minimax and AQP rho1, issue 10 target: <= 15 min together), and prints the wall time
of each group and the largest K each table reaches.  This takes tens of minutes, so it is off by
default.  ``--group NAME`` (repeatable; or ``BENCH_FULL=NAME[,NAME]``) runs only some groups:
``minimax``, ``aqp`` or ``pow`` (the four p^a tables, a few minutes on 2 cores).

Run: ``python bench/bench_build.py [--full] [--group minimax|aqp|pow] [--jobs N]``, or through
``make bench`` with ``BENCH_FULL=1`` (everything) or ``BENCH_FULL=pow``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from aqpgen.build import build
from aqpgen.store.tablefile import read_table
from aqpgen.build.verify import verify_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "tables", "tables.toml")
PRESETS = ("kl-aqp-eta3", "kl-aqp-eta15", "kl-aqp-rho1", "kl-aqp-rho2")
POWER_TARGETS = ("pow0.5-minimax", "pow-0.5-minimax", "pow0.5-aqp-rho1", "pow-0.5-aqp-rho1")
#: group name -> (tables, target wall time in seconds); built in this order.
GROUPS = {"minimax": (("kl-minimax",), 20 * 60), "aqp": (PRESETS, 30 * 60),
          "pow": (POWER_TARGETS, 15 * 60)}


def _reach(path: str) -> str:
    t = read_table(path)
    ok = [K for K in t.Ks if t.rows[K].status == "ok"]
    return (f"{len(ok)}/{len(t.Ks)} rows ok, largest ok K = {max(ok) if ok else '-'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get("BENCH_FULL", "")
    ap.add_argument("--full", action="store_true", default=env == "1",
                    help="rebuild every group of GROUPS from scratch (tens of minutes)")
    ap.add_argument("--group", action="append", choices=sorted(GROUPS),
                    default=[g for g in env.split(",") if g in GROUPS] or None,
                    help="rebuild only this group (repeatable; implies --full)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    t0 = time.perf_counter()
    out = build.build(SPEC, jobs=args.jobs)
    dt = time.perf_counter() - t0
    acts = {o.name: o.action for o in out}
    print(f"up-to-date check of {len(out)} committed tables: {dt:.2f} s "
          f"({sum(a == 'up-to-date' for a in acts.values())} up to date, "
          f"{sum(a == 'built' for a in acts.values())} rebuilt)")
    tmp = tempfile.mkdtemp(prefix="aqpgen-bench-")
    try:
        from aqpgen.store.wheeldata import write_runtime_tables

        t0 = time.perf_counter()
        write_runtime_tables(os.path.join(ROOT, "tables"), tmp)
        dt = time.perf_counter() - t0
        size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        full = sum(os.path.getsize(os.path.join(ROOT, "tables", f)) for f in os.listdir(os.path.join(ROOT, "tables"))
                   if f.endswith(".h5"))
        print(f"runtime copies for the wheel: {size / 2**20:.2f} MB (full tables {full / 2**20:.2f} MB), "
              f"written in {dt:.2f} s")
        shutil.copy(SPEC, tmp)
        t0 = time.perf_counter()
        build.build(os.path.join(tmp, "tables.toml"), os.path.join(tmp, "power"), jobs=args.jobs,
                    only=[f"power-m{m}" for m in range(1, 5)], force=True)
        print(f"power-m1..m4 rebuilt (--force, --jobs {args.jobs}): {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        checks = verify_file(os.path.join(ROOT, "tables", "power-m4.h5"))
        print(f"verify of power-m4 ({len(checks)} checks, {sum(not c.ok for c in checks)} failed): "
              f"{time.perf_counter() - t0:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    groups = list(GROUPS) if args.full and not args.group else (args.group or [])
    if not groups:
        print("whole-grid rebuilds skipped (set BENCH_FULL=1 or pass --full; takes tens of minutes; "
              "BENCH_FULL=pow: only the four p^a tables)")
        return 0

    tmp = tempfile.mkdtemp(prefix="aqpgen-bench-")
    try:
        shutil.copy(SPEC, tmp)
        spec = os.path.join(tmp, "tables.toml")
        for names, target in (GROUPS[g] for g in GROUPS if g in groups):
            t0 = time.perf_counter()
            build.build(spec, tmp, jobs=args.jobs, only=list(names), force=True)
            dt = time.perf_counter() - t0
            print(f"{', '.join(names)}: whole standard grid with --jobs {args.jobs}: {dt / 60:.1f} min "
                  f"(target <= {target // 60} min: {'ok' if dt <= target else 'MISSED'})")
            for n in names:
                print(f"  {n}: {_reach(os.path.join(tmp, n + '.h5'))}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
