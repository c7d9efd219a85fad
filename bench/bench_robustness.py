"""Stationary block bootstrap speed (issue 12, section 2), beside references in the same process.

Workload: 10,000 bootstrap paths of the last 4,000 daily S&P 500 returns of the sample
(``wb.load_prices("SPX")``), each reduced to final wealth, Sharpe, max drawdown and mean.

- ``block_bootstrap`` with arch's automatic block length (Politis-White estimate included)
  and with a fixed mean block of 10 bars;
- arch's ``StationaryBootstrap`` iterator alone (the index draws and copies, no metrics);
- reference: numpy generating the same number of iid resamples (``Generator.integers`` +
  ``take``, in the same 32 MiB chunks), and the same plus the four metrics in numpy.

Best of ``REPEAT`` runs; no timed assertions.

    .venv/bin/python bench/bench_robustness.py
"""

from __future__ import annotations

import math
import time

import numpy as np

import workbench as wb
from workbench.research.robustness import CHUNK_CELLS, block_bootstrap

REPEAT = 3
N_PATHS, N_BARS = 10_000, 4_000


def best(fn) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def arch_iterator(r: np.ndarray) -> None:
    from arch.bootstrap import StationaryBootstrap

    for _ in StationaryBootstrap(10.0, r, seed=np.random.default_rng(0)).bootstrap(N_PATHS):
        pass


def numpy_iid(r: np.ndarray, metrics: bool) -> None:
    gen, n = np.random.default_rng(0), len(r)
    rows = CHUNK_CELLS // n
    for start in range(0, N_PATHS, rows):
        paths = r[gen.integers(0, n, size=(min(rows, N_PATHS - start), n))]
        if metrics:
            wealth = np.cumprod(1.0 + paths, axis=1)
            mean, sd = paths.mean(axis=1), paths.std(axis=1, ddof=1)
            _ = mean / sd * math.sqrt(252.0)
            _ = (wealth / np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0) - 1.0).min(axis=1)


def main() -> None:
    r = wb.load_prices("SPX")["Close"].pct_change().dropna().to_numpy()[-N_BARS:]
    block_bootstrap(r, n_paths=10)  # import arch once, outside the timings
    rep = block_bootstrap(r, n_paths=N_PATHS)
    rows = [
        ("block_bootstrap, automatic block", best(lambda: block_bootstrap(r, n_paths=N_PATHS))),
        ("block_bootstrap, block=10", best(lambda: block_bootstrap(r, n_paths=N_PATHS, block=10))),
        ("arch StationaryBootstrap iterator only", best(lambda: arch_iterator(r))),
        ("ref: numpy iid resamples (integers + take)", best(lambda: numpy_iid(r, metrics=False))),
        ("ref: numpy iid resamples + the 4 metrics", best(lambda: numpy_iid(r, metrics=True))),
    ]
    print(f"{N_PATHS:,} paths × {len(r):,} SPX daily returns; automatic mean block "
          f"{rep.info['block']:.2f} bars (arch estimate {rep.info['block_estimate']:.2f}); best of {REPEAT}")  # fmt: skip
    ref = rows[3][1]
    for name, secs in rows:
        print(f"  {name:<44} {secs:7.3f} s   {secs / ref:5.1f}× the numpy iid reference")
    print(rep.summary.round(4).to_string())


if __name__ == "__main__":
    main()
