"""Golden test: one complete backtest on the real GOOG sample, checked two ways.

1. Literal values read by hand off data/sample/GOOG.csv (the first round trip).
2. An independent plain-Python re-implementation (csv module, running sums, no pandas,
   no workbench code) of the same rules: SMA(10) vs SMA(30) on closes, long when fast >
   slow at a close, flat otherwise; market orders fill at the next open; all equity in
   whole shares; 0.1 % commission on each fill. Every trade and the final equity must match.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

import workbench as wb

CSV = Path(__file__).resolve().parents[1] / "data" / "sample" / "GOOG.csv"


def reference_backtest(fast=10, slow=30, cash=10_000.0, rate=0.001):
    rows = list(csv.DictReader(CSV.open()))
    dates = [r["timestamp"][:10] for r in rows]
    opens = [float(r["Open"]) for r in rows]
    closes = [float(r["Close"]) for r in rows]
    target = []
    for i in range(len(rows)):
        if i + 1 < slow:
            target.append(0)
            continue
        f = sum(closes[i + 1 - fast : i + 1]) / fast
        s = sum(closes[i + 1 - slow : i + 1]) / slow
        target.append(1 if f > s else 0)
    qty, trades, entry = 0, [], None
    for sig in range(len(rows) - 1):  # a change of target at close `sig` trades at open `sig + 1`
        if target[sig] == (target[sig - 1] if sig > 0 else 0):
            continue
        i = sig + 1
        px = opens[i]
        if target[sig] == 1 and qty == 0:
            q = math.floor(cash / px)
            while q > 0 and q * px + q * px * rate > cash:
                q -= 1
            fee = q * px * rate
            cash -= q * px + fee
            qty, entry = q, (dates[i], px, fee)
        elif target[sig] == 0 and qty > 0:
            fee = qty * px * rate
            cash += qty * px - fee
            trades.append((entry[0], dates[i], qty, entry[1], px, (px - entry[1]) * qty - entry[2] - fee))
            qty = 0
    return trades, cash + qty * closes[-1]


@pytest.fixture(scope="module")
def result():
    return wb.backtest("sma_crossover", wb.load_prices("GOOG"), {"fast": 10, "slow": 30}, cash=10_000, commission=0.001)


def test_golden_first_round_trip_matches_hand_checked_values(result):
    first = result.trades.iloc[0]
    # Fast SMA crosses above slow at the close of 2004-09-30; the order fills at the next
    # open, 2004-10-01 Open = 130.80. 76 shares: 76 * 130.80 * 1.001 = 9,950.74 <= 10,000,
    # while 77 shares would cost 10,081.85.
    assert str(first["entry_time"].date()) == "2004-10-01" and first["entry_price"] == 130.80
    assert first["quantity"] == 76
    assert result.orders.iloc[0]["placed"].strftime("%Y-%m-%d") == "2004-09-30"
    assert result.orders.iloc[0]["fees"] == pytest.approx(76 * 130.80 * 0.001)


def test_golden_every_trade_matches_independent_reference(result):
    ref_trades, ref_equity = reference_backtest()
    got = [
        (t.entry_time.strftime("%Y-%m-%d"), t.exit_time.strftime("%Y-%m-%d"), t.quantity, t.entry_price, t.exit_price, t.pnl)
        for t in result.trades.itertuples()
    ]
    assert len(got) == len(ref_trades) == 33
    for g, r in zip(got, ref_trades, strict=True):
        assert g[:5] == r[:5]
        assert g[5] == pytest.approx(r[5], rel=1e-12, abs=1e-9)
    assert result.equity.iloc[-1] == pytest.approx(ref_equity, rel=1e-12)


def test_golden_headline_numbers(result):
    s = result.stats
    assert s["final_equity"] == pytest.approx(74_512.02333, abs=1e-4)
    assert s["n_trades"] == 33
    assert s["win_rate"] == pytest.approx(17 / 33)
    assert s["periods_per_year"] == 252.0
    assert s["max_drawdown"] == pytest.approx(-0.304176, abs=1e-6)


def test_equity_matches_portfolio_marks_and_positions(result):
    # equity at each close == cash + position * close, rebuilt from fills independently
    prices = wb.load_prices("GOOG")
    cash, qty, j = 10_000.0, 0.0, 0
    fills = result.fills.sort_values("ts").reset_index(drop=True)
    for ts, close in prices["Close"].items():
        while j < len(fills) and fills.loc[j, "ts"] == ts:
            sign = 1 if fills.loc[j, "side"] == "BUY" else -1
            cash -= sign * fills.loc[j, "quantity"] * fills.loc[j, "price"] + fills.loc[j, "fee"]
            qty += sign * fills.loc[j, "quantity"]
            j += 1
        assert result.equity.loc[ts] == pytest.approx(cash + qty * close, rel=1e-12)
        assert result.positions.loc[ts] == qty
