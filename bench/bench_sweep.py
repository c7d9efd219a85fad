"""A bounded 100,000-combination sweep, beside one-call references (issue 9).

Workload: ``sma_crossover`` on the GOOG daily sample (2,148 bars), fast 2..101 × slow
102..601 × allow_short {False, True} = 100,000 combinations (all valid), 0.1 %
commission, through ``wb.grid_search`` under its default memory cap
(``memory_limit_mb=256``). References on 5,000 combinations (fast 2..51 × slow 52..151):
the same chunked sweep, the one-call path (``memory_limit_mb=None``: every column in one
vectorbt call, as before issue 9) and plain vectorbt ``Portfolio.from_signals`` on the
same columns (value + exit trades).

Each configuration runs in a fresh Python process, so its peak RSS
(``resource.getrusage().ru_maxrss``, which sees numpy's and vectorbt's Rust allocations,
unlike tracemalloc) is its own; "added" is that peak minus the process's peak after the
imports and a warm-up grid (vectorbt and pandas alone hold ~450 MiB).

    .venv/bin/python bench/bench_sweep.py [N]      # N combinations, default 100000

The second row runs the same sweep with ``workers=2`` (two spawned processes; its peak
adds each worker's peak RSS).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def big_grid(n: int) -> dict[str, list]:
    return {"fast": list(range(2, 102)), "slow": list(range(102, 102 + n // 200)), "allow_short": [False, True]}


SMALL = {"fast": list(range(2, 52)), "slow": list(range(52, 152))}


def vbt_direct(goog, grid: dict[str, list]) -> tuple[int, int, int]:
    """The same crossover columns straight through vectorbt (one call, no metrics)."""
    import vectorbt as vbt

    from workbench.adapters import indicators as ta
    from workbench.engines.vectorized import vbt_engine

    c = goog["Close"]
    sma = {w: np.nan_to_num(ta.sma(c, w).to_numpy()) for w in {*grid["fast"], *grid["slow"]}}
    pairs = [(f, s) for f in grid["fast"] for s in grid["slow"]]
    long = np.column_stack([(sma[f] > sma[s]) & (sma[s] > 0) for f, s in pairs])
    prev = np.vstack([np.zeros((1, long.shape[1]), bool), long[:-1]])
    entries, exits = long & ~prev, ~long & prev
    nxt = lambda a: np.vstack([np.zeros((1, a.shape[1]), bool), a[:-1]])  # noqa: E731 - fill at t+1
    shape = long.shape
    del long, prev
    pf = vbt.Portfolio.from_signals(np.broadcast_to(c.to_numpy()[:, None], shape), nxt(entries), nxt(exits),
                                    price=np.broadcast_to(goog["Open"].to_numpy()[:, None], shape), size=np.inf,
                                    size_granularity=1.0, fees=0.001, init_cash=10_000.0, engine=vbt_engine())  # fmt: skip
    np.asarray(pf.value())
    rec = pf.exit_trades.values
    np.bincount(rec["col"][rec["status"] == 1], minlength=shape[1])
    return shape[1], 1, shape[1]


def run_config(name: str, n: int) -> dict:
    """One configuration in this (fresh) process: warm up, then time and measure it."""
    import workbench as wb

    goog = wb.load_prices("GOOG")
    wb.grid_search("sma_crossover", goog, {"fast": [5, 10], "slow": [20, 50]}, commission=0.001, progress=False)
    base = rss_mib()
    t0 = time.perf_counter()
    if name == "vbt":
        combos, calls, chunk = vbt_direct(goog, SMALL)
    else:
        grid, cap, workers = {"sweep": (big_grid(n), 256, 1), "sweep2": (big_grid(n), 256, 2),
                              "chunked": (SMALL, 256, 1), "onecall": (SMALL, None, 1)}[name]  # fmt: skip
        out = wb.grid_search("sma_crossover", goog, grid, commission=0.001, memory_limit_mb=cap, progress=False,
                             max_combinations=max(n, 100_000), workers=workers)  # fmt: skip
        combos, calls, chunk = out.attrs["combinations"], out.attrs["vectorbt_calls"], out.attrs["chunk_size"]
    wall = time.perf_counter() - t0
    # with worker processes, the peak is this process's plus each worker's (the largest child, counted per worker)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 * (2 if name == "sweep2" else 0)
    return {"combos": combos, "calls": calls, "chunk": chunk, "wall": wall, "base": base, "peak": rss_mib() + children,
            "bars": len(goog)}


def fresh(name: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--config", name, str(n)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(n: int) -> None:
    from workbench.research.optimize import DEFAULT_MEMORY_LIMIT_MB, combo_bytes

    rows = [
        (f"wb.grid_search, {n:,} combos, cap {DEFAULT_MEMORY_LIMIT_MB} MiB", "sweep"),
        ("  the same, workers=2 (two processes)", "sweep2"),
        (f"wb.grid_search, 5,000 combos, cap {DEFAULT_MEMORY_LIMIT_MB} MiB", "chunked"),
        ("wb.grid_search, 5,000 combos, one call (no cap)", "onecall"),
        ("vectorbt from_signals, same 5,000 columns", "vbt"),
    ]
    print("SMA crossover sweeps on GOOG daily, 0.1% commission; each row in a fresh process (peak RSS = ru_maxrss)")
    head = f"{'configuration':46s} {'combos':>8s} {'chunk':>6s} {'calls':>6s} {'wall s':>7s} {'combos/s':>9s} {'base MiB':>9s} {'peak MiB':>9s} {'added MiB':>10s} {'KB/combo':>9s}"
    print(head)
    for label, name in rows:
        r = fresh(name, n)
        added = r["peak"] - r["base"]
        print(f"{label:46s} {r['combos']:8,d} {r['chunk']:6,d} {r['calls']:6,d} {r['wall']:7.1f} {r['combos'] / r['wall']:9,.0f} "
              f"{r['base']:9,.0f} {r['peak']:9,.0f} {added:10,.0f} {added * 2**20 / r['combos'] / 1e3:9.1f}")  # fmt: skip
        bars = r["bars"]
    est = combo_bytes(bars)
    print(f"\nestimate: {est:,} B per combination over {bars:,} bars (optimize.combo_bytes); under a "
          f"{DEFAULT_MEMORY_LIMIT_MB} MiB cap a chunk is {DEFAULT_MEMORY_LIMIT_MB * 2**20 // est:,} combinations "
          f"(estimated {DEFAULT_MEMORY_LIMIT_MB * 2**20 // est * est / 2**20:,.0f} MiB per call); "
          "'added' = peak minus the peak after imports and a warm-up grid")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--config":
        print(json.dumps(run_config(sys.argv[2], int(sys.argv[3]))))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
