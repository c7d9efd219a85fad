"""CSCV speed (issue 12, section 6): PBO with S = 16 on 1,000 trials x 2,500 bars <= 10 s.

Figures printed beside references measured in the same process:

1. ``pbo_cscv`` (block sums: S x N arrays of sum r and sum r^2, 12,870 combinations
   from 0/1 membership products), best of ``REPEAT`` runs, and its peak of traced memory
   (``tracemalloc``) beside the input's size.
2. numpy's cost of one full pass over the same matrix (column mean and std, ddof=1),
   the floor any exact method pays at least once.
3. The naive CSCV (materialise each IS and OOS sub-matrix, numpy mean/std) on the first
   ``NAIVE_COMBOS`` combinations, extrapolated linearly to all 12,870.

Synthetic iid normal returns (seeded); no timed assertions.

    .venv/bin/python bench/bench_overfitting.py
"""

from __future__ import annotations

import itertools
import math
import time
import tracemalloc

import numpy as np

from workbench.research.overfitting import pbo_cscv

REPEAT = 3
T_BARS, N_TRIALS, S = 2_500, 1_000, 16
NAIVE_COMBOS = 100


def best(fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def naive_first(x: np.ndarray, k: int) -> float:
    """Seconds for the first ``k`` combinations of a materialising CSCV."""
    blocks = np.split(x[x.shape[0] % S :], S)
    t0 = time.perf_counter()
    for combo in itertools.islice(itertools.combinations(range(S), S // 2), k):
        is_m = np.vstack([blocks[i] for i in combo])
        oos_m = np.vstack([blocks[i] for i in range(S) if i not in combo])
        is_s = is_m.mean(axis=0) / is_m.std(axis=0, ddof=1)
        oos_s = oos_m.mean(axis=0) / oos_m.std(axis=0, ddof=1)
        n_star = int(np.argmax(is_s))
        _ = (oos_s < oos_s[n_star]).sum()
    return time.perf_counter() - t0


def main() -> None:
    x = np.random.default_rng(42).normal(0.0, 0.01, (T_BARS, N_TRIALS))
    n_comb = math.comb(S, S // 2)
    t_wb, res = best(lambda: pbo_cscv(x, S))
    tracemalloc.start()
    pbo_cscv(x, S)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t_pass, _ = best(lambda: x.mean(axis=0) / x.std(axis=0, ddof=1))
    t_naive = naive_first(x, NAIVE_COMBOS) / NAIVE_COMBOS * n_comb

    print(f"CSCV PBO, S = {S} ({n_comb:,} combinations) on {N_TRIALS:,} trials x {T_BARS:,} bars (target <= 10 s)")
    print(f"  workbench pbo_cscv (block sums)       {t_wb:8.3f} s    PBO {res.pbo:.4f} (noise: ~0.5)")
    print(f"  peak traced memory                    {peak / 2**20:8.1f} MB   (input {x.nbytes / 2**20:.1f} MB)")
    print(f"  reference: numpy one full pass        {t_pass:8.3f} s    (column mean/std of the matrix)")
    print(f"  reference: naive CSCV, extrapolated   {t_naive:8.1f} s    (first {NAIVE_COMBOS} combinations timed)")


if __name__ == "__main__":
    main()
