"""Event-driven engine throughput, side by side with a vectorised reference in one process.

Workload: SMA 20/50 crossover over N synthetic 1-minute GBM bars (seeded), fixed 10
units, 0.2 % commission. The reference computes the same equity curve with numpy only
(no order model), so the ratio shows what the full order/fill/portfolio model costs.
Kept for its synthetic workload and numpy reference; bench_engines.py is the full comparison.

    .venv/bin/python bench/bench_event_engine.py [N]
"""

from __future__ import annotations

import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

import workbench as wb
from workbench.engines.event import run_targets
from workbench.trading import FixedQuantity, Instrument, NoSlippage, PercentOfNotional


def synthetic(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(rng.normal(0, 0.0003, n)) * close
    idx = pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC", name="timestamp")
    return pd.DataFrame({"Open": open_, "High": np.maximum(open_, close) + spread,
                         "Low": np.minimum(open_, close) - spread, "Close": close, "Volume": 1e6}, index=idx)


def reference(prices: pd.DataFrame, target: np.ndarray, qty: float, rate: float) -> np.ndarray:
    o, c = prices["Open"].to_numpy(), prices["Close"].to_numpy()
    held = np.concatenate(([0.0], target[:-1])) * qty  # position after the next open
    trade = np.diff(np.concatenate(([0.0], held)))
    cash = 1e6 - np.cumsum(trade * o + np.abs(trade) * o * rate)
    return cash + held * c


def main(n: int) -> None:
    prices = synthetic(n)
    strat = wb.SMACrossover(fast=20, slow=50)
    target = strat.target(prices)
    inst = Instrument(ticker="SYN", exchange="BENCH")
    t0 = time.perf_counter()
    ref = reference(prices, target.to_numpy(), 10.0, 0.002)
    t_ref = time.perf_counter() - t0
    tracemalloc.start()
    t0 = time.perf_counter()
    spec = wb.BacktestSpec(strategy=strat, instruments=(inst,), cash=1e6, commission=PercentOfNotional(rate=0.002),
                           slippage=NoSlippage(), sizer=FixedQuantity(quantity=10.0))  # fmt: skip
    run = run_targets(prices, target, inst, spec)
    t_evt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    err = float(np.max(np.abs(run.equity.to_numpy() - ref) / ref))
    print(f"SMA 20/50, {n:,} 1-minute bars, 10 units, 0.2% commission, {len(run.fills):,} fills")
    print(f"{'engine':28s} {'seconds':>9s} {'bars/s':>14s}")
    print(f"{'event-driven (workbench)':28s} {t_evt:9.3f} {n / t_evt:14,.0f}   peak traced memory {peak:,.0f} MiB")
    print(f"{'numpy reference (no orders)':28s} {t_ref:9.3f} {n / t_ref:14,.0f}")
    print(f"max relative equity difference event vs reference: {err:.2e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
