"""Benchmark: `aqpgen audit` and `aqpgen verify` of every shipped table (tables/*.h5), --jobs 2.

Targets: the audit within 5 minutes (issue 5), and verify -- the fast gate -- no slower than the
audit of the same files (issue 25), both timed in this one process, verify first.  Prints the wall
times, their ratio, the number of (file, K) rows and the verdicts; skips with a message when
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
    from aqpgen.build.verify import verify_files

    jobs = int(os.environ.get("AQPGEN_BENCH_JOBS", "2"))
    t0 = time.perf_counter()
    checks = verify_files(paths, jobs=jobs)
    t_verify = time.perf_counter() - t0
    vfails = sum(not c.ok for cs in checks.values() for c in cs)
    t0 = time.perf_counter()
    audits = audit.audit_files(paths, jobs=jobs)
    t_audit = time.perf_counter() - t0
    rows = sum(len({f.K for f in a.findings if f.K is not None}) for a in audits)
    fails = sum(len(a.failures) for a in audits)
    print(f"verify of {len(paths)} table files, --jobs {jobs}: {t_verify:.1f} s; {vfails} failed check(s)")
    print(f"audit of {len(paths)} table files, {rows} (file, K) rows, --jobs {jobs}: {t_audit:.1f} s "
          f"(target <= 300 s); {fails} failure(s)")
    ratio = t_verify / t_audit
    print(f"verify / audit = {ratio:.2f} (target <= 1)")
    for a in audits:
        print(f"  {os.path.basename(a.path):<26} audit {'ok' if a.ok else 'FAILED'}, verify "
              f"{'ok' if all(c.ok for c in checks[a.path]) else 'FAILED'}")
    return 0 if t_audit <= 300 and ratio <= 1 and not fails and not vfails else 1


if __name__ == "__main__":
    sys.exit(main())
