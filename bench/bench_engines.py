"""Both engines and vectorbt direct on one workload, side by side in one process.

Workload (the issue's): SMA 20/50 crossover over N synthetic 1-minute GBM bars (seeded),
fixed 10 units, 0.2 % commission, fill at the next bar's open. Printed:

1. the event-driven engine, signal-driven (``run_targets``) and per-bar callback
   (``run_bars``), with the added peak memory of a signal-driven run (tracemalloc, in a
   separate run so tracing does not slow the timed one);
2. the vectorized engine (``engines.vectorized.run_signals``: equity, positions, and
   vectorbt's order/trade records, tables built on access) against vectorbt called
   directly with the same arrays (``Portfolio.from_signals`` + value, assets, order and
   trade records); then both with readable order/trade tables, and the full
   ``wb.backtest(engine="vectorized")`` (validation, data hash, all stats);
3. a numpy reference equity (no order model) that all of them must match;
4. a 184-combination SMA grid on GOOG daily (fast 3..25 × slow 30..100 step 10):
   ``wb.grid_search`` vs the same grid straight through vectorbt, warm;
5. fresh Python processes that import the workbench and run one backtest on the sample
   data, per engine (wall time, best of 3).

    .venv/bin/python bench/bench_engines.py [N]
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_event_engine import reference, synthetic  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.adapters import indicators as ta  # noqa: E402
from workbench.engines import vectorized  # noqa: E402
from workbench.engines.bars import run_bars  # noqa: E402
from workbench.engines.event import run_targets  # noqa: E402
from workbench.trading import FixedQuantity, Instrument, NoSlippage, PercentOfNotional  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class SmaCallback(wb.BarStrategy):
    """The same SMA 20/50 rule, decided in ``on_bar`` one bar at a time."""

    fast: int = 20
    slow: int = 50

    def init(self, prices):
        c = prices["Close"]
        return (ta.sma(c, self.fast).to_numpy() > ta.sma(c, self.slow).to_numpy()).tolist()

    def on_bar(self, ctx):
        want = ctx.data[ctx.i]
        if want is not ctx.state.get("long", False):
            ctx.state["long"] = want
            ctx.target(1 if want else 0)


def best(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def vbt_direct(prices, target, rate: float, qty: float):
    import vectorbt as vbt

    m = vectorized.signal_masks(target, shift=1)
    entries, exits = m["entries"], m["exits"]
    # arrays, not tz-aware Series: vectorbt 1.2 wraps a tz-aware index ~100x slower
    pf = vbt.Portfolio.from_signals(prices["Close"].to_numpy(), entries=entries, exits=exits, price=prices["Open"].to_numpy(),
                                    size=qty, allow_partial=False, fees=rate, init_cash=1e6,
                                    size_granularity=1.0, engine=vectorized.vbt_engine())  # fmt: skip
    return np.asarray(pf.value()), np.asarray(pf.assets()), pf.orders.values, pf.exit_trades.values


def fresh_process(engine: str | None) -> float:
    code = ("import vectorbt" if engine is None
            else f"import workbench as wb; wb.backtest('sma_crossover', 'GOOG', engine='{engine}')")  # fmt: skip
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(n: int) -> None:
    prices = synthetic(n)
    inst = Instrument(ticker="SYN", exchange="BENCH")
    target = wb.SMACrossover(fast=20, slow=50).target(prices)
    tgt = target.to_numpy()
    spec = wb.BacktestSpec(strategy=wb.SMACrossover(fast=20, slow=50), instruments=(inst,), cash=1e6,
                           commission=PercentOfNotional(rate=0.002), slippage=NoSlippage(),
                           sizer=FixedQuantity(quantity=10.0))  # fmt: skip
    ref_t, ref = best(lambda: reference(prices, tgt, 10.0, 0.002))
    ev_t, ev = best(lambda: run_targets(prices, target, inst, spec))
    tracemalloc.start()
    run_targets(prices, target, inst, spec)
    ev_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    cb_t, cb = best(lambda: run_bars(prices, SmaCallback(), spec.replace(strategy=SmaCallback())))
    vbt_direct(prices.iloc[:1000], tgt[:1000], 0.002, 10.0)  # warm (imports, first call)
    # interleaved, best of 9 each: on 2 cores, fresh 8 MB allocations make single runs noisy
    vz_t, vd_t = float("inf"), float("inf")
    for _ in range(9):
        t, vz = best(lambda: vectorized.run_signals(prices, target, inst, spec), 1)
        vz_t = min(vz_t, t)
        t, vd = best(lambda: vbt_direct(prices, tgt, 0.002, 10.0), 1)
        vd_t = min(vd_t, t)
    fills = len(ev.fills)

    def with_tables():
        run = vectorized.run_signals(prices, target, inst, spec)
        run.fills, run.orders, run.trades  # noqa: B018 - build the tables
        return run

    vt_t, vt = best(with_tables, 5)
    full_t, full = best(lambda: wb.backtest("sma_crossover", prices, {"fast": 20, "slow": 50}, engine="vectorized",
                                            cash=1e6, commission=0.002, size=10), 3)  # fmt: skip

    def err(eq):
        return float(np.max(np.abs(np.asarray(eq) - ref) / ref))

    print(f"SMA 20/50, {n:,} 1-minute bars, 10 units, 0.2% commission, {fills:,} fills; best of 3 (engines) / 9 interleaved (vectorized vs vectorbt)")
    print(f"{'engine':44s} {'seconds':>8s} {'bars/s':>13s}  {'max rel. equity diff vs numpy':>12s}")
    rows = [
        ("event-driven, signal-driven (run_targets)", ev_t, ev.equity),
        ("event-driven, per-bar callback (run_bars)", cb_t, cb.equity),
        ("vectorized engine (run_signals)", vz_t, vz.equity),
        ("vectorbt direct (from_signals + records)", vd_t, vd[0]),
        ("vectorized engine + order/fill/trade tables", vt_t, vt.equity),
        ("numpy reference (no order model)", ref_t, ref),
    ]
    for name, t, eq in rows:
        print(f"{name:44s} {t:8.3f} {n / t:13,.0f}  {err(eq):12.1e}")

    import vectorbt as vbt

    def readable():
        m = vectorized.signal_masks(tgt, shift=1)
        pf = vbt.Portfolio.from_signals(prices["Close"].to_numpy(), entries=m["entries"], exits=m["exits"],
                                        price=prices["Open"].to_numpy(), size=10.0, allow_partial=False,
                                        fees=0.002, init_cash=1e6, size_granularity=1.0,
                                        engine=vectorized.vbt_engine())  # fmt: skip
        return pf.value(), pf.assets(), pf.orders.records_readable, pf.exit_trades.records_readable

    vr_t, _ = best(readable, 3)
    print(f"{'vectorbt direct + readable order/trade tables':44s} {vr_t:8.3f} {n / vr_t:13,.0f}  (vectorbt's tables)")
    print(f"{'wb.backtest(engine=vectorized), full result':44s} {full_t:8.3f} {n / full_t:13,.0f}  "
          f"{err(full.equity):12.1e}  (validation, data hash, stats)")
    print(f"event-driven signal run: added peak traced memory {ev_peak:,.0f} MiB")
    print(f"vectorized engine / vectorbt direct: {vz_t / vd_t:.2f}x the time ({(vz_t / vd_t - 1) * 100:+.0f}%); "
          f"with tables vs vectorbt's readable tables: {vt_t / vr_t:.2f}x")

    goog = wb.load_prices("GOOG")
    grid = {"fast": list(range(3, 26)), "slow": list(range(30, 101, 10))}
    wb.grid_search("sma_crossover", goog, grid, commission=0.001)  # warm
    g_t, top = best(lambda: wb.grid_search("sma_crossover", goog, grid, commission=0.001), 7)
    combos = top.attrs["combinations"]

    def grid_direct():
        import vectorbt as vbt

        c = goog["Close"]
        fast = np.column_stack([ta.sma(c, f).to_numpy() for f in grid["fast"] for s in grid["slow"]])
        slow = np.column_stack([ta.sma(c, s).to_numpy() for f in grid["fast"] for s in grid["slow"]])
        long = np.nan_to_num(fast) > np.nan_to_num(slow)
        long &= ~np.isnan(slow)
        prev = np.vstack([np.zeros((1, long.shape[1]), bool), long[:-1]])
        entries, exits = long & ~prev, ~long & prev
        shift = lambda a: np.vstack([np.zeros((1, a.shape[1]), bool), a[:-1]])  # noqa: E731
        pf = vbt.Portfolio.from_signals(np.broadcast_to(c.to_numpy()[:, None], long.shape), shift(entries),
                                        shift(exits), price=np.broadcast_to(goog["Open"].to_numpy()[:, None], long.shape),
                                        size=np.inf, size_granularity=1.0, fees=0.001, init_cash=10_000.0,
                                        engine=vectorized.vbt_engine())  # fmt: skip
        return pf.value()

    grid_direct()
    gd_t, _ = best(grid_direct, 7)
    print(f"\n{combos}-combination SMA grid on GOOG daily ({len(goog):,} bars), warm, best of 7")
    print(f"{'wb.grid_search (vectorized, with metrics)':44s} {g_t:8.3f} {combos / g_t:10,.0f} combos/s")
    print(f"{'vectorbt direct (from_signals + value)':44s} {gd_t:8.3f} {combos / gd_t:10,.0f} combos/s")

    print("\nfresh process: import workbench + one backtest on the sample data (wall, best of 3)")
    for engine in ("event", "vectorized"):
        print(f"{'engine=' + repr(engine):44s} {fresh_process(engine):8.2f} s")
    label = "reference: import vectorbt alone"
    print(f"{label:44s} {fresh_process(None):8.2f} s")
    print(f"(vectorbt engine: {vectorized.vbt_engine()}; median of the grid's Sharpe {statistics.median(top['sharpe']):.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
