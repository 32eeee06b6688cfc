"""Run every benchmark script ``bench/bench_*.py`` and print its output (``make bench``).

Each script runs in its own fresh interpreter (same Python as this one), in name order, with the
repository root as working directory, so one benchmark's imports or warm caches cannot skew
another's.  The exit status is non-zero if any script fails.

Usage: python bench/run.py [NAME ...]   (NAME filters by substring, e.g. ``lookup``)
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    scripts = sorted(glob.glob(os.path.join(here, "bench_*.py")))
    if argv:
        scripts = [s for s in scripts if any(a in os.path.basename(s) for a in argv)]
    if not scripts:
        print("no bench/bench_*.py scripts found" + (f" matching {argv}" if argv else ""))
        return 1 if argv else 0
    failed = []
    for s in scripts:
        name = os.path.basename(s)
        print(f"=== {name} ===", flush=True)
        rc = subprocess.run([sys.executable, s], cwd=root, check=False).returncode
        if rc != 0:
            failed.append(name)
            print(f"--- {name} FAILED (exit {rc})", flush=True)
        print(flush=True)
    print(f"{len(scripts) - len(failed)} of {len(scripts)} benchmarks ran"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
