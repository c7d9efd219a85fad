"""Per-instrument margin: each instrument's own (initial, maintenance) pair, so the
requirement is Σ_i rate_i × |v_i| (v_i = quantity × mark × multiplier), before each fill
(initial) and at each close (maintenance, the margin call)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from tests.conftest import ts
from workbench.engines.rebalance import MarginWatch
from workbench.trading import Fill, Instrument, MarginAccount, Portfolio, Side

GOOG = wb.load_prices("GOOG")
PAIR = wb.load_prices(["SPX", "IXIC"], progress=False)
SPY = Instrument(ticker="SPY", exchange="X")
BTC = Instrument(ticker="BTCUSD", exchange="X")


def _fill(p: Portfolio, inst: Instrument, side: str, qty: float, price: float, fid: str) -> None:
    p.apply(Fill(fill_id=fid, order_id="O", instrument=inst, side=Side.parse(side), quantity=qty,
                 price=price, fee=0.0, ts=ts(1)))  # fmt: skip


def _book(account: MarginAccount, cash: float = 3_000.0) -> Portfolio:
    """Long 10 SPY bought at 100, short 2 BTCUSD sold at 1,000."""
    p = Portfolio(cash, account=account)
    _fill(p, SPY, "BUY", 10, 100.0, "F1")
    _fill(p, BTC, "SELL", 2, 1_000.0, "F2")
    return p


def always_short(prices: pd.DataFrame) -> pd.Series:
    return pd.Series(-1.0, index=prices.index)


def _first_call(r: wb.BacktestResult, rate: float) -> pd.Timestamp:
    """The first close where equity < rate × |v| (or <= 0 holding anything), from the curves."""
    value = (r.positions * GOOG.loc[r.positions.index, "Close"]).abs()
    bad = (r.equity < rate * value) | ((r.equity <= 0) & (value > 0))
    return r.equity.index[int(np.argmax(bad.to_numpy()))]


# -- the requirement, by hand ----------------------------------------------------------------


def test_the_requirement_of_a_two_instrument_book_is_each_rate_times_its_value() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5)})
    p = _book(acct)
    p.mark(SPY.symbol, 110.0)
    p.mark(BTC.symbol, 1_200.0)
    assert acct.maintenance_requirement(p) == pytest.approx(0.25 * 1_100 + 0.5 * 2_400, rel=1e-15)
    assert p.margin_requirement(acct.initial_rate) == pytest.approx(0.5 * 1_100 + 1.0 * 2_400, rel=1e-15)
    assert p.margin_requirement(acct.initial_rate, excluding=BTC.symbol) == pytest.approx(550.0, rel=1e-15)
    uniform = MarginAccount(0.5, 0.25)
    assert uniform.maintenance_requirement(p) == pytest.approx(0.25 * (1_100 + 2_400), rel=1e-15)


def test_a_book_the_uniform_rate_lets_through_is_called_under_its_per_instrument_rate() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5)})
    p = _book(acct)  # cash 3,000 - 1,000 + 2,000 = 4,000
    p.mark(SPY.symbol, 110.0)
    p.mark(BTC.symbol, 1_800.0)  # equity 4,000 + 1,100 - 3,600 = 1,500
    assert p.equity == pytest.approx(1_500.0)
    assert MarginAccount(0.5, 0.25).margin_call(p) == "", "0.25 x 4,700 = 1,175 <= 1,500"
    assert acct.margin_call(p) == (
        "margin call: equity 1,500.00 USD is below the maintenance requirement Σ maintenance_i x "
        "|value_i| = 2,075.00 USD (gross exposure 4,700.00 USD)"
    ), "0.25 x 1,100 + 0.5 x 3,600 = 2,075 > 1,500"


def test_a_symbol_entry_wins_over_its_ticker_and_the_rest_take_the_default() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5), "BTCUSD.X": (0.8, 0.4)})
    assert acct.rates(BTC) == (0.8, 0.4)
    assert acct.rates(Instrument(ticker="BTCUSD", exchange="Y")) == (1.0, 0.5)
    assert acct.rates(SPY) == (0.5, 0.25)
    assert acct.per_instrument == (("BTCUSD", 1.0, 0.5), ("BTCUSD.X", 0.8, 0.4)), "sorted by key"


# -- the initial rule before each fill -------------------------------------------------------


def test_a_fill_the_per_instrument_initial_rule_breaks_is_refused_and_passes_uniformly() -> None:
    levered = Portfolio(10_000.0, account=MarginAccount(0.5, 0.25))
    own = Portfolio(10_000.0, account=MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5)}))
    assert levered.check_fill(BTC, 150, 100.0, 0.0) == "", "0.5 x 15,000 <= 10,000"
    assert own.check_fill(BTC, 150, 100.0, 0.0) == (
        "insufficient buying power: after this fill the initial requirement BTCUSD.X 1 x 15,000.00 + "
        "other positions 0.00 = 15,000.00 USD, equity would be 10,000.00 USD (order notional "
        "15,000.00 + fee 0.00; cash 10,000.00)"
    )
    assert own.check_fill(SPY, 150, 100.0, 0.0) == "", "SPY keeps the default 0.5"
    assert own.check_fill(BTC, 100, 100.0, 1.0) != "", "initial rate 1: a buy is paid from cash"


def test_the_other_positions_count_at_their_own_rates() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"BTCUSD": (1.0, 0.5)})
    p = _book(acct, cash=10_000.0)  # cash 11,000; SPY +1,000, BTC -2,000: equity 10,000
    # selling 14 SPY short: |q1| = 4 -> SPY 0.5 x 400 + BTC 1.0 x 2,000 = 2,200 <= 10,000
    assert p.check_fill(SPY, -14, 100.0, 0.0) == ""
    # buying 160 SPY: 0.5 x 17,000 + 2,000 = 10,500 > 10,000 (uniform: 0.5 x 19,000 = 9,500 passes)
    assert "= 10,500.00 USD, equity would be 10,000.00 USD" in p.check_fill(SPY, 160, 100.0, 0.0)
    assert _book(MarginAccount(0.5, 0.25), cash=10_000.0).check_fill(SPY, 160, 100.0, 0.0) == ""


def test_a_backtest_order_the_per_instrument_rate_cannot_fund_is_rejected() -> None:
    class Buy75(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 0:
                ctx.buy(75)  # 75 x 101.01 = 7,575.75 at the next open, on 5,000 cash

    own = wb.backtest(Buy75(), GOOG, cash=5_000, account=MarginAccount(0.5, 0.25, per_instrument={"GOOG": (1.0, 0.5)}))
    uniform = wb.backtest(Buy75(), GOOG, cash=5_000, account=MarginAccount(0.5, 0.25))
    assert own.orders["status"].iloc[0] == "REJECTED"
    assert "initial requirement GOOG.SAMPLE 1 x 7,575.75" in own.orders["reason"].iloc[0]
    assert uniform.orders["status"].iloc[0] == "FILLED" and (own.positions == 0).all()


@settings(max_examples=60, deadline=None)
@given(im=st.floats(0.05, 1.0), ratio=st.floats(0.05, 1.0), qty=st.floats(-300, 300), mark=st.floats(50, 2_000))
def test_entries_equal_to_the_default_decide_every_fill_as_the_uniform_account(
    im: float, ratio: float, qty: float, mark: float
) -> None:
    uniform = MarginAccount(im, im * ratio)
    same = MarginAccount(im, im * ratio, per_instrument={"BTCUSD": (im, im * ratio)})
    a, b = _book(uniform, 10_000.0), _book(same, 10_000.0)
    for p in (a, b):
        p.mark(BTC.symbol, mark)
    assert (a.check_fill(BTC, qty, mark, 1.0) == "") == (b.check_fill(BTC, qty, mark, 1.0) == "")
    assert (uniform.margin_call(a) == "") == (same.margin_call(b) == "")


# -- validation and identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "msg"),
    [
        ({"BTCUSD": (1.5, 0.5)}, r"per_instrument\['BTCUSD'\] initial_margin must be in \(0, 1\], got initial_margin=1.5"),
        ({"BTCUSD": (0.5, 0.6)}, r"per_instrument\['BTCUSD'\] maintenance_margin must be in \(0, initial_margin=0.5\], "
                                 r"got maintenance_margin=0.6"),
        ({"BTCUSD": (0.5, 0.0)}, r"per_instrument\['BTCUSD'\] maintenance_margin .* got maintenance_margin=0.0"),
        ({"ETH": (float("nan"), 0.1)}, r"per_instrument\['ETH'\] initial_margin .* got initial_margin=nan"),
        ({"BTCUSD": 0.5}, r"per_instrument\['BTCUSD'\] must be a pair \(initial_margin, maintenance_margin\), got 0.5"),
        ({"": (0.5, 0.25)}, r"per_instrument keys must be non-empty symbols or tickers, got ''"),
        ((("A", 0.5, 0.2), ("A", 0.6, 0.3)), r"per_instrument names each key once, got A twice"),
        (0.5, r"per_instrument must be a mapping symbol -> \(initial_margin, maintenance_margin\), got per_instrument=0.5"),
    ],
)
def test_each_entry_is_validated_naming_its_symbol_and_value(rates: object, msg: str) -> None:
    with pytest.raises(wb.ParameterError, match=f"MarginAccount: {msg}"):
        MarginAccount(0.5, 0.25, per_instrument=rates)  # type: ignore[arg-type]


def test_the_rates_are_a_frozen_hashable_value_and_part_of_the_spec_id() -> None:
    a = MarginAccount(0.5, 0.25, per_instrument={"GOOG": (0.6, 0.4), "BTCUSD": (1.0, 0.5)})
    b = MarginAccount(0.5, 0.25, per_instrument=(("BTCUSD", 1.0, 0.5), ("GOOG", 0.6, 0.4)))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.per_instrument = ()  # type: ignore[misc]

    def spec_id(account: MarginAccount) -> str:
        return wb.make_spec("sma_crossover", account=account).id

    assert spec_id(a) == spec_id(b), "the key order does not matter"
    ids = {spec_id(MarginAccount(0.5, 0.25, per_instrument=r)) for r in
           ({}, {"GOOG": (0.6, 0.4)}, {"GOOG": (0.6, 0.3)}, {"GOOG": (0.7, 0.4)}, {"GOOGL": (0.6, 0.4)})}  # fmt: skip
    assert len(ids) == 5, "any change of a rate or a key is a new spec"


# -- the margin call at the close ------------------------------------------------------------


def test_the_watch_finds_the_first_close_below_the_rate_weighted_requirement() -> None:
    """Short 3 IXIC, long 1 SPX from 2002-10 (IXIC about doubles by 2004): by hand on the real closes."""
    close = PAIR.xs("Close", axis=1, level=1)[["SPX", "IXIC"]].loc["2002-10-01":]
    spx, ixic = Instrument(ticker="SPX", exchange="SAMPLE"), Instrument(ticker="IXIC", exchange="SAMPLE")
    acct = MarginAccount(0.5, 0.1, per_instrument={"IXIC": (0.8, 0.6)})
    q, cash = np.array([1.0, -3.0]), 6_000.0
    watch = MarginWatch(acct, close.index, close.to_numpy(), np.ones(2), None, [spx, ixic])
    values = close.to_numpy() * q
    equity = cash + values.sum(axis=1)
    need = 0.1 * np.abs(values[:, 0]) + 0.6 * np.abs(values[:, 1])
    expected = int(np.flatnonzero((equity < need) | (equity <= 0))[0])
    assert watch.scan(0, len(close), cash, q) == expected
    assert watch.scan(0, expected, cash, q) is None
    uniform = MarginWatch(MarginAccount(0.5, 0.1), close.index, close.to_numpy(), np.ones(2), None, [spx, ixic])
    assert (uniform.scan(0, len(close), cash, q) or len(close)) > expected, "0.1 everywhere calls later"
    monitor = watch.call(expected, cash, q)
    event = monitor.result().events.iloc[0]
    assert event["ts"] == close.index[expected] and event["value"] == pytest.approx(equity[expected], rel=1e-12)
    assert event["threshold"] == pytest.approx(need[expected], rel=1e-12), "the requirement is Σ mm_i |v_i|"
    gross = np.abs(values[expected]).sum()
    assert event["detail"] == f"equity {equity[expected]:,.2f} < {need[expected] / gross:g} x gross exposure = {need[expected]:,.2f}"


def test_a_watch_that_is_not_told_the_columns_takes_the_highest_rate() -> None:
    close = PAIR.xs("Close", axis=1, level=1).to_numpy()
    watch = MarginWatch(MarginAccount(0.5, 0.1, per_instrument={"IXIC": (0.8, 0.6)}), PAIR.index, close, np.ones(2), None)
    assert watch.rates.tolist() == [0.6, 0.6] and watch.maintenance == 0.6
    with pytest.raises(wb.ParameterError, match="MarginWatch: instruments must name the 2 price columns, got 1"):
        MarginWatch(MarginAccount(0.5, 0.1), PAIR.index, close, np.ones(2), None, [SPY])


def test_a_backtest_is_called_at_the_first_close_below_its_instruments_maintenance() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"GOOG": (0.6, 0.4)})
    r = wb.backtest(always_short, GOOG, account=acct, size=40, cash=5_000)
    events = r.risk.events
    assert list(events["event"]) == ["MarginCallTriggered", "PositionLiquidated", "TradingStateChanged"]
    call = _first_call(r, 0.4)
    assert events["ts"].iloc[0] == call, "the first close where equity < 0.4 x |v_GOOG|"
    assert call < _first_call(wb.backtest(always_short, GOOG, account=MarginAccount(0.5, 0.25), size=40, cash=5_000), 0.25)
    value = abs(r.positions.loc[call] * GOOG.loc[call, "Close"])
    assert events["threshold"].iloc[0] == pytest.approx(0.4 * value, rel=1e-12)
    assert events["detail"].iloc[0] == f"equity {r.equity.loc[call]:,.2f} < 0.4 x gross exposure = {0.4 * value:,.2f}"
    nxt = GOOG.index[GOOG.index.get_loc(call) + 1]
    liq = r.orders[r.orders["tag"] == "liquidation"].iloc[0]
    assert liq["avg_fill_price"] == GOOG.loc[nxt, "Open"] and r.risk.state == "HALTED"


def test_a_backtest_with_a_lower_rate_for_its_instrument_is_called_at_that_rate() -> None:
    acct = MarginAccount(0.5, 0.25, per_instrument={"GOOG": (0.3, 0.1)})
    r = wb.backtest(always_short, GOOG, account=acct, size=40, cash=5_000)
    assert r.risk.events["ts"].iloc[0] == _first_call(r, 0.1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(im=st.floats(0.3, 1.0), ratio=st.floats(0.2, 1.0), own=st.floats(0.3, 1.0), own_ratio=st.floats(0.05, 1.0),
       key=st.sampled_from(["GOOG", "GOOG.SAMPLE", "OTHER"]), qty=st.integers(5, 80), start=st.integers(0, 1500))  # fmt: skip
def test_a_margin_call_always_precedes_negative_equity_with_per_instrument_rates(
    im: float, ratio: float, own: float, own_ratio: float, key: str, qty: int, start: int
) -> None:
    acct = MarginAccount(im, im * ratio, per_instrument={key: (own, own * own_ratio)})
    r = wb.backtest(always_short, GOOG.iloc[start:], account=acct, size=qty, cash=5_000)
    negative = r.equity[r.equity < 0]
    calls = [] if r.risk is None else list(r.risk.events.loc[r.risk.events["event"] == "MarginCallTriggered", "ts"])
    if len(negative):
        assert calls and calls[0] <= negative.index[0]
    if calls:
        after = r.orders[r.orders["placed"] > calls[0]]
        assert set(after["tag"]) <= {"liquidation"}, "nothing but the liquidation after a call"
