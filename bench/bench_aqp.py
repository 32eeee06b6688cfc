"""Time single AQP solves (plain text, seconds; measured, nothing extrapolated).

Usage: python bench/bench_aqp.py [K ...] [--preset eta15|eta3|rho1|rho2]
Default: K = 64, 256, 1024 with the eta15 preset.  Each line: K, preset, wall seconds, status,
exchange rounds, grid size, verified numbers.  Large K can take many minutes on a small machine.
"""

from __future__ import annotations

import sys
import time

from aqpgen.generators.aqp import build_K
from aqpgen.generators.compare import PRESETS
from aqpgen.generators.minimax import E_star


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    preset = "eta15"
    if "--preset" in args:
        i = args.index("--preset")
        preset = args[i + 1]
        del args[i:i + 2]
    if preset not in PRESETS:
        raise SystemExit(f"--preset must be one of {', '.join(PRESETS)}, received {preset!r}")
    Ks = [int(a) for a in args] or [64, 256, 1024]
    print(f"# bench_aqp: preset {preset} = {PRESETS[preset]}")
    for K in Ks:
        E_star(K)  # warm the minimax constant (read from the table or solved), not timed
        t0 = time.perf_counter()
        r = build_K(K, dict(PRESETS[preset]))
        dt = time.perf_counter() - t0
        m = r.metrics
        print(f"K={K} preset={preset} seconds={dt:.1f} status={r.status!r} "
              f"rounds={r.solver.get('exchange_rounds')} grid={r.solver.get('grid_size')} "
              f"beta_cert={m['beta_cert']:.4e} V_inf={m['V_inf']:.4e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
