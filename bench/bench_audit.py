"""Benchmark: `aqpgen audit` of every shipped table (tables/*.h5), --jobs 2 (issue 5: <= 5 min).

Prints the wall time, the number of (file, K) rows and the verdict; skips with a message when
tables/ holds no table files.  Run from the repository root (bench/run.py does).
"""

from __future__ import annotations

import glob
import os
import sys
import time


def main() -> int:
    paths = sorted(glob.glob(os.path.join("tables", "*.h5")))
    if not paths:
        print("bench_audit: tables/ has no *.h5 files; run `make tables` first (skipped)")
        return 0
    from aqpgen import audit

    jobs = int(os.environ.get("AQPGEN_BENCH_JOBS", "2"))
    t0 = time.perf_counter()
    audits = audit.audit_files(paths, jobs=jobs)
    dt = time.perf_counter() - t0
    rows = sum(len({f.K for f in a.findings if f.K is not None}) for a in audits)
    fails = sum(len(a.failures) for a in audits)
    print(f"audit of {len(paths)} table files, {rows} (file, K) rows, --jobs {jobs}: {dt:.1f} s "
          f"(target <= 300 s); {fails} failure(s)")
    for a in audits:
        print(f"  {os.path.basename(a.path):<22} {'ok' if a.ok else 'FAILED'}")
    return 0 if dt <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
