"""Margin calls and liquidation: no account passes below zero silently. A call comes at
the first close where equity < maintenance × gross exposure (or equity <= 0), every
position is closed at the next open, and the account trades no more."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb

GOOG = wb.load_prices("GOOG")
PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)


def always_short(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(-1.0, index=prices.index)


def _first_call(equity: pd.Series, gross: pd.Series, maintenance: float) -> pd.Timestamp:
    bad = (equity < maintenance * gross) | ((equity <= 0) & (gross > 0))
    return equity.index[int(np.argmax(bad.to_numpy()))]


def test_a_short_through_a_rally_is_called_and_liquidated_at_the_next_open() -> None:
    r = wb.backtest(always_short, GOOG, account=wb.MarginAccount(0.5, 0.3), size=40, cash=5_000)
    events = r.risk.events
    assert list(events["event"]) == ["MarginCallTriggered", "PositionLiquidated", "TradingStateChanged"]
    gross = (r.positions * GOOG["Close"]).abs()
    call = _first_call(r.equity, gross, 0.3)
    assert events["ts"].iloc[0] == call, "the call comes at the first close below maintenance"
    nxt = GOOG.index[GOOG.index.get_loc(call) + 1]
    liq = r.orders[r.orders["tag"] == "liquidation"].iloc[0]
    assert liq["status"] == "FILLED" and liq["updated"] == nxt
    assert liq["avg_fill_price"] == GOOG.loc[nxt, "Open"], "closed at the next open"
    assert (r.positions.loc[nxt:] == 0).all() and r.risk.state == "HALTED" and r.risk.level == "CRITICAL"
    assert (r.equity.loc[:call].iloc[:-1] >= 0.3 * gross.loc[:call].iloc[:-1]).all()


def test_a_cash_account_short_is_called_at_zero_equity() -> None:
    r = wb.backtest(always_short, GOOG, size=40, cash=5_000)
    gross = (r.positions * GOOG["Close"]).abs()
    call = r.risk.events["ts"].iloc[0]
    assert call == _first_call(r.equity, gross, 0.0)
    before = r.equity.loc[:call].iloc[:-1]
    assert (before > 0).all(), "equity stays above zero until the call"
    assert r.risk.events["event"].iloc[0] == "MarginCallTriggered"


def test_per_bar_and_weights_strategies_are_called_too() -> None:
    class Short(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 0:
                ctx.sell(40)

    bar = wb.backtest(Short(), GOOG, cash=5_000, account=wb.MarginAccount(0.5, 0.3))
    assert list(bar.risk.events["event"][:2]) == ["MarginCallTriggered", "PositionLiquidated"]

    class ShortIXIC(wb.PortfolioStrategy):
        def weights(self, panel):  # type: ignore[no-untyped-def]
            w = pd.DataFrame(np.nan, index=panel.index, columns=["SPX", "IXIC"])
            w.iloc[0] = [0.0, -1.0]
            return w

    pair = wb.backtest(ShortIXIC(), PAIR.loc["2002-10-01":], cash=10_000)  # IXIC +150% by late 2006
    call = pair.risk.events.iloc[0]
    assert call["event"] == "MarginCallTriggered" and call["detail"].endswith("<= 0 with positions held")
    assert (pair.equity.loc[: call["ts"]].iloc[:-1] > 0).all() and (pair.positions.iloc[-1] == 0).all()


def test_long_only_cash_runs_are_untouched() -> None:
    r = wb.backtest("sma_crossover", GOOG)
    assert r.risk is None and "liquidation" not in set(r.orders["tag"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(im=st.floats(0.3, 1.0), ratio=st.floats(0.2, 1.0), qty=st.integers(5, 80), start=st.integers(0, 1500))
def test_a_margin_call_always_precedes_negative_equity(im: float, ratio: float, qty: int, start: int) -> None:
    prices = GOOG.iloc[start:]
    r = wb.backtest(always_short, prices, account=wb.MarginAccount(im, im * ratio), size=qty, cash=5_000)
    negative = r.equity[r.equity < 0]
    calls = [] if r.risk is None else list(r.risk.events.loc[r.risk.events["event"] == "MarginCallTriggered", "ts"])
    if len(negative):
        assert calls and calls[0] <= negative.index[0]
    if calls:
        after = r.orders[r.orders["placed"] > calls[0]]
        assert set(after["tag"]) <= {"liquidation"}, "nothing but the liquidation after a call"


def test_the_margin_rule_needs_a_maintenance_level_below_initial() -> None:
    with pytest.raises(wb.ParameterError, match="maintenance_margin"):
        wb.MarginAccount(0.5, 0.6)


def test_a_partial_liquidation_is_logged_as_what_it_is() -> None:
    r = wb.backtest(always_short, GOOG, account=wb.MarginAccount(0.5, 0.3), size=40, cash=5_000,
                    slippage=wb.VolumeShare(volume_limit=1e-7))  # fmt: skip
    liq = r.risk.events[r.risk.events["event"] == "PositionLiquidated"]
    assert liq["value"].iloc[0] == -1.0, "one share could fill under the volume cap on the first bar"
    assert liq["value"].sum() == -40.0 and len(liq) > 1, "the rest is closed on the following bars"
    assert liq["ts"].is_monotonic_increasing and (r.positions.loc[liq["ts"].iloc[-1]:] == 0).all()
    halt = r.risk.events[r.risk.events["event"] == "TradingStateChanged"].iloc[0]
    assert halt["ts"] == liq["ts"].iloc[-1] and "not closed" not in halt["detail"]


def test_a_liquidation_a_pre_trade_hook_rejects_is_named() -> None:
    r = wb.backtest(always_short, GOOG, account=wb.MarginAccount(0.5, 0.3), size=40, cash=5_000,
                    pre_trade_check=lambda o, p, px: "no buys" if o.side.name == "BUY" and o.tag == "liquidation" else "")
    halt = r.risk.events[r.risk.events["event"] == "TradingStateChanged"].iloc[0]
    assert "not closed: -40 GOOG.SAMPLE (REJECTED)" in halt["detail"]
