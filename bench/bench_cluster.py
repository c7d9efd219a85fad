"""A 10,000-trial sweep on a Dask LocalCluster of 2 workers against one process (target >= 1.6x).

- reference, in this process: ``wb.grid_search`` of 10,000 SMA combinations on GOOG daily
  (vectorbt already imported by a warm-up sweep);
- the same sweep with ``cluster=client`` on a ``LocalCluster(n_workers=2,
  threads_per_worker=1)`` whose workers were warmed by a small sweep (vectorbt imported),
  and the cold figure (cluster start + imports) beside it;
- the same sweep on the local process pool (``workers=2``, spawned, imports included);
- the tables must be identical (checked, not just timed).

Run: ``.venv/bin/python bench/bench_cluster.py``
"""

from __future__ import annotations

import time

import pandas as pd

import workbench as wb

GRID = {"fast": list(range(2, 102)), "slow": list(range(110, 210))}  # 10,000 valid combinations
KW = {"commission": 0.001, "progress": False}


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    from distributed import Client, LocalCluster

    prices = wb.load_prices("GOOG")
    wb.grid_search("sma_crossover", prices, {"fast": [5], "slow": [50]}, **KW)  # import vectorbt here
    one, t_one = timed(lambda: wb.grid_search("sma_crossover", prices, GRID, **KW))

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    wb.grid_search("sma_crossover", prices, {"fast": [5, 6, 7, 8], "slow": [50]}, cluster=client, memory_limit_mb=0.001,
                   **KW)  # fmt: skip
    t_start = time.perf_counter() - t0
    dask, t_dask = timed(lambda: wb.grid_search("sma_crossover", prices, GRID, cluster=client, **KW))
    client.close()
    cluster.close()
    pool, t_pool = timed(lambda: wb.grid_search("sma_crossover", prices, GRID, workers=2, **KW))

    pd.testing.assert_frame_equal(one, dask)
    pd.testing.assert_frame_equal(one, pool)
    n = len(one)
    print(f"10,000-trial SMA sweep on GOOG daily ({len(prices):,} bars, {one.attrs['vectorbt_calls']} vectorbt calls "
          f"of {one.attrs['chunk_size']}), tables identical")  # fmt: skip
    print(f"  one process (reference)                      {t_one:6.2f} s   {n / t_one:8,.0f} trials/s")
    print(f"  Dask LocalCluster, 2 workers (warm)          {t_dask:6.2f} s   {n / t_dask:8,.0f} trials/s   "
          f"speed-up {t_one / t_dask:.2f}x   target >= 1.6x")  # fmt: skip
    print(f"    cluster start + worker imports (once)      {t_start:6.2f} s   cold total {t_start + t_dask:.2f} s")
    print(f"  local process pool, workers=2 (cold)         {t_pool:6.2f} s   speed-up {t_one / t_pool:.2f}x")


if __name__ == "__main__":
    main()
