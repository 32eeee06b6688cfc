"""Benchmark: ``Table.lookup(counts, K)`` against ``log(counts / K)`` on 10^6 counts.

docs/MATH.md §10 asks the lookup to be no slower than computing the plug-in log(n/K) for the same counts.
Both are timed in this one process, interleaved, best of N repeats, on 10^6 random counts in
1..K for K = 64 and K = 1024: numpy (int64 and int32 counts) and, if torch is importable, torch
CPU tensors (``torch.log(counts / K)``; lookup with its default ``check=True``).

Uses the shipped ``power-m2`` table when present (``tables/`` or ``$AQPGEN_TABLES``), otherwise
builds a small power table (K = 64, 1024) in a temporary directory.  Plain text; exit status 0.

Run: ``python bench/bench_lookup.py [--repeats N] [--size S]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from aqpgen import runtime

KS = (64, 1024)


def _get_table(tmpdir: str):
    try:
        t = runtime.load_table("power-m2")
        if all(K in t.Ks and t.status[K] == "ok" for K in KS):
            return t, "shipped table power-m2"
    except (FileNotFoundError, ValueError):
        pass
    from aqpgen.generators import power
    from aqpgen.store.tablefile import make_table, write_table

    params = {"m": 2}
    td = make_table(name="bench-power-m2", family="power", target=power.target_name(params),
                    method="ustat", params=params, provenance={"command": "bench_lookup"},
                    results=[power.build_K(K, params) for K in KS])
    path = Path(tmpdir) / "bench-power-m2.h5"
    write_table(path, td)
    return runtime.load_table(path), f"temporary table {path.name} (no shipped power-m2)"


def _best_pair(f, g, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` wall times of f and g, interleaved so both see the same machine load."""
    f(), g()  # warm-up (device copies, caches)
    bf = bg = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        t1 = time.perf_counter()
        g()
        t2 = time.perf_counter()
        bf, bg = min(bf, t1 - t0), min(bg, t2 - t1)
    return bf, bg


def _line(label: str, K: int, a: float, b: float, base: str) -> str:
    r = a / b
    return (f"{label:<14} K={K:<5} lookup {a * 1e3:8.3f} ms   {base:<22} {b * 1e3:8.3f} ms   "
            f"ratio {r:5.2f}  {'ok (<= 1.0)' if r <= 1.0 else 'SLOWER than log'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--size", type=int, default=10**6)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(12345)
    with tempfile.TemporaryDirectory() as tmpdir:
        t, source = _get_table(tmpdir)
        print(f"aqpgen lookup benchmark: {args.size} counts, best of {args.repeats} (interleaved)")
        print(f"table: {source}, target {t.target}")
        print(f"numpy {np.__version__}")
        for K in KS:
            for dt in (np.int64, np.int32):
                c = rng.integers(1, K + 1, size=args.size).astype(dt)
                a, b = _best_pair(lambda c=c, K=K: t.lookup(c, K), lambda c=c, K=K: np.log(c / K),
                                  args.repeats)
                print(_line(f"numpy {np.dtype(dt).name}", K, a, b, "np.log(counts / K)"))
        try:
            import torch
        except ImportError:
            print("torch: not installed (skipped)")
        else:
            print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
            for K in KS:
                for dt in (torch.int64, torch.int32):
                    c = torch.randint(1, K + 1, (args.size,), dtype=dt)
                    a, b = _best_pair(lambda c=c, K=K: t.lookup(c, K),
                                      lambda c=c, K=K: torch.log(c / K), args.repeats)
                    print(_line(f"torch {str(dt).split('.')[-1]}", K, a, b, "torch.log(counts / K)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
