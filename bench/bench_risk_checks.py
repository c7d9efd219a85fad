"""Pre-trade risk checks: the cost of a five-limit RiskProfile per order and per bar.

1. ``RiskMonitor.check`` on one order against five limits, per call, beside the cost of
   building the order itself (its reference in the same process): on a book of cash only
   (the figure the target is for) and on a book holding a position in the instrument
   (what the engine's checks see once a position is open);
2. the event engine on the 1M-bar workload of ``bench_event_engine`` with and without the
   profile (target: >= 0.8M bars/s with it). No limit binds, so both runs fill the same.

Run: ``.venv/bin/python bench/bench_risk_checks.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import pandas as pd  # noqa: E402
from bench_event_engine import synthetic  # noqa: E402

import workbench as wb  # noqa: E402
from workbench.engines.event import run_targets  # noqa: E402
from workbench.risk.limits import (  # noqa: E402
    LongOnly,
    MaxGrossLeverage,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxPositionWeight,
)
from workbench.risk.monitor import RiskMonitor  # noqa: E402
from workbench.risk.profile import RiskProfile  # noqa: E402
from workbench.trading import (  # noqa: E402
    Fill,
    FixedQuantity,
    Instrument,
    NoSlippage,
    Order,
    PercentOfNotional,
    Portfolio,
    Side,
)

PROFILE = RiskProfile(limits=(MaxOrderNotional(limit=1e9), MaxOrderQuantity(limit=1e6), MaxPositionWeight(limit=10.0),
                              MaxGrossLeverage(limit=10.0), LongOnly()), max_drawdown=0.99)  # fmt: skip


def best(fn, k: int = 3) -> float:  # type: ignore[no-untyped-def]
    out = float("inf")
    for _ in range(k):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def per_order(n: int = 100_000) -> tuple[float, float, float]:
    """(check on a cash book, check with a position held, building the Order), µs each."""
    inst = Instrument(ticker="SYN", exchange="BENCH")
    book = Portfolio(1e6)
    book.mark(inst.symbol, 100.0)
    ts = pd.Timestamp("2024-01-02", tz="UTC")
    held = Portfolio(1e6)
    held.apply(Fill(fill_id="F-0", order_id="O-0", instrument=inst, side=Side.BUY, quantity=100, price=100.0,
                    fee=0.0, ts=ts))  # fmt: skip
    orders = [Order(order_id=f"O-{i}", instrument=inst, side="BUY", quantity=10, ts=ts) for i in range(n)]
    monitor = RiskMonitor(PROFILE)
    t_check = best(lambda: [monitor.check(o, 100.0, book) for o in orders])
    t_held = best(lambda: [monitor.check(o, 100.0, held) for o in orders])
    t_make = best(lambda: [Order(order_id="O", instrument=inst, side="BUY", quantity=10, ts=ts) for _ in range(n)])
    return t_check / n * 1e6, t_held / n * 1e6, t_make / n * 1e6


def main(n: int = 1_000_000) -> None:
    prices = synthetic(n)
    inst = Instrument(ticker="SYN", exchange="BENCH")
    strat = wb.SMACrossover(fast=20, slow=50)
    target = strat.target(prices)
    spec = wb.BacktestSpec(strategy=strat, instruments=(inst,), cash=1e6, commission=PercentOfNotional(rate=0.002),
                           slippage=NoSlippage(), sizer=FixedQuantity(quantity=10.0))  # fmt: skip
    guarded = spec.replace(risk=PROFILE)
    limits_only = spec.replace(risk=RiskProfile(limits=PROFILE.limits))
    plain_t = best(lambda: run_targets(prices, target, inst, spec))
    limits_t = best(lambda: run_targets(prices, target, inst, limits_only))
    risk_t = best(lambda: run_targets(prices, target, inst, guarded))
    run = run_targets(prices, target, inst, guarded)
    check_us, held_us, order_us = per_order()
    print(f"five-limit RiskProfile, SMA 20/50 on {n:,} 1-minute bars, {len(run.fills):,} fills, "
          f"{run.risk.denied} denied")  # fmt: skip
    print(f"{'':44s} {'seconds':>8s} {'bars/s':>12s}")
    print(f"{'event engine, no risk profile (reference)':44s} {plain_t:8.3f} {n / plain_t:12,.0f}")
    print(f"{'event engine, five-limit risk profile':44s} {limits_t:8.3f} {n / limits_t:12,.0f}   target >= 800,000")
    print(f"{'  the same + the drawdown rule':44s} {risk_t:8.3f} {n / risk_t:12,.0f}")
    print(f"pre-trade check per order: {check_us:.2f} µs (five limits); building the Order itself: {order_us:.2f} µs "
          "(reference); target <= 2 µs")  # fmt: skip
    print(f"  the same with a position held: {held_us:.2f} µs")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
