"""What the one-double metrics cost (docs/MATH.md §6b), against the certificate in the same process.

For tables of the shipped kinds (an AQP preset, the minimax table with its high-precision
strings, an exact power table) at K = 64, 256, 1024: the wall time of the ball-arithmetic
refinement of beta and V_inf (``metrics.bias_sup`` / ``variance_sup``) next to the float64
certificate of beta (``certify_exact``), which every build already ran; the ratio is what the
reproducibility costs.  Target: the refinement costs no more than the certificate plus 20 s at
K = 1024 (a table build is minutes).

Usage: python bench/bench_metrics.py
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py

from aqpgen.numerics.certify import certify_exact
from aqpgen.numerics.metrics import bias_sup, variance_sup

ROOT = Path(__file__).resolve().parents[1]
CASES = [("kl-aqp-rho2", "log p"), ("kl-minimax", "log p"), ("power-m2", "p^2")]


def _row(name, K):
    with h5py.File(ROOT / "tables" / f"{name}.h5", "r") as f:
        Ks = list(f["K"][:])
        i = Ks.index(K)
        off = f["offsets"][:]
        v = f["values"][off[i]:off[i + 1]]
        hp = [s.decode() for s in f["values_hp"][off[i]:off[i + 1]]] if "values_hp" in f else None
    return v, hp


def _time(fn, reps=1):
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main() -> int:
    print(f"{'table':<14} {'K':>5} {'certificate s':>14} {'hp beta s':>10} {'hp V_inf s':>11} "
          f"{'ratio':>6}")
    worst = 0.0
    for name, target in CASES:
        for K in (64, 256, 1024):
            v, hp = _row(name, K)
            src = hp if (hp is not None and name.endswith("minimax")) else v
            t_cert = _time(lambda: certify_exact(K, src, target=target))
            if hp is not None and name.endswith("minimax"):
                t_b = _time(lambda: bias_sup(None, K, target=target, values_hp=hp))
                t_v = _time(lambda: variance_sup(None, K, values_hp=hp))
            else:
                t_b = _time(lambda: bias_sup(v, K, target=target))
                t_v = _time(lambda: variance_sup(v, K))
            ratio = (t_b + t_v) / t_cert
            if K == 1024:
                worst = max(worst, t_b + t_v - t_cert)
            print(f"{name:<14} {K:>5} {t_cert:>14.3f} {t_b:>10.3f} {t_v:>11.3f} {ratio:>6.2f}")
    ok = worst <= 20.0
    print(f"largest excess over the certificate at K = 1024: {worst:.1f} s "
          f"({'within' if ok else 'ABOVE'} the 20 s target)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
