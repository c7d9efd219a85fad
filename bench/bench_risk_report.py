"""A full RiskReport (tables and figures) on the daily sample universe (target <= 2 s),
beside a reference in the same process: the backtest it reports on.

Run: ``.venv/bin/python bench/bench_risk_report.py``
"""

from __future__ import annotations

import time

import workbench as wb
from workbench.risk_report import RiskReport

SYMBOLS = ["SPX", "IXIC", "GOOG", "WTI"]  # the daily sample that overlaps (EURUSD is hourly, BTCUSD monthly, VIX a level)


def best(fn, k: int = 3):  # type: ignore[no-untyped-def]
    out, value = float("inf"), None
    for _ in range(k):
        t = time.perf_counter()
        value = fn()
        out = min(out, time.perf_counter() - t)
    return out, value


def main() -> None:
    prices = wb.load_prices(SYMBOLS, progress=False)
    RiskReport.of(wb.backtest("xs_momentum", prices), prices).figures()  # warm: scipy, plotly imports
    t_bt, result = best(lambda: wb.backtest("xs_momentum", prices))
    t_rep, report = best(lambda: RiskReport.of(result, prices))
    t_fig, figs = best(lambda: report.figures())
    print(f"xs_momentum on {', '.join(SYMBOLS)}: {len(prices):,} bars, {len(result.fills):,} fills")
    print(f"{'backtest (reference)':34s} {t_bt:7.3f} s")
    print(f"{'RiskReport tables':34s} {t_rep:7.3f} s")
    print(f"{'RiskReport figures':34s} {t_fig:7.3f} s ({len(figs)} figures)")
    print(f"{'full RiskReport':34s} {t_rep + t_fig:7.3f} s   target <= 2 s")


if __name__ == "__main__":
    main()
