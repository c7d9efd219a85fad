"""The ccxt OHLCV polling feed: closed bars only, each once, across restarts; and the paper
broker trading on it through the loop (recorded Binance klines, a fake clock)."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.ccxt_feed import CcxtPollingFeed
from workbench.adapters.crypto import CcxtSource
from workbench.errors import ParameterError
from workbench.trade import approve, trade
from workbench.trading.enums import AssetClass
from workbench.trading.values import Instrument

from .fakes import FakeBinanceHttp, payload

KLINES = payload("binance_klines_BTCUSDT_1h.json")
HOUR = pd.Timedelta("1h")


class Clock:
    """The exchange's clock: it moves only when the feed sleeps."""

    def __init__(self, now: pd.Timestamp) -> None:
        self.now, self.slept = now, []

    def __call__(self) -> pd.Timestamp:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += pd.Timedelta(seconds=seconds)


def feed(clock: Clock, **kw) -> CcxtPollingFeed:
    ex = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.fetch = FakeBinanceHttp(KLINES)
    ex.rateLimit = 1
    source = CcxtSource(ex, limit=100, sleep=lambda s: None, clock=clock)
    return CcxtPollingFeed(source, ["BTC/USDT"], "1h", sleep=clock.sleep, poll=600, grace=5, **kw)


def kline_time(i: int) -> pd.Timestamp:
    return pd.Timestamp(KLINES[i][0], unit="ms", tz="UTC")


def test_only_closed_bars_are_yielded_each_once_as_the_clock_moves():
    clock = Clock(kline_time(20) + pd.Timedelta("30min"))  # candle 20 is still forming
    f = feed(clock, start=kline_time(10), until=kline_time(60))
    got = list(f.steps())
    stamps = [ts for ts, _ in got]
    assert stamps == [kline_time(i) for i in range(10, 61)]
    assert all(ts + HOUR <= clock.now for ts in stamps)
    first = got[0][1][0]
    assert (first.open, first.close, first.volume) == tuple(float(KLINES[10][j]) for j in (1, 4, 5))
    assert clock.slept and max(clock.slept) <= 600  # waited for each close (plus the grace), never polled hot


def test_a_restart_continues_after_the_last_logged_bar():
    clock = Clock(kline_time(40))
    f = feed(clock, start=kline_time(10), max_idle_polls=1)
    first = [ts for ts, _ in f.steps()]
    assert first == [kline_time(i) for i in range(10, 40)]  # candle 39 closed at 40's open: now; 40 is forming
    clock.now = kline_time(50) + pd.Timedelta("1s")
    resumed = [ts for ts, _ in f.steps(after=first[-1])]
    assert resumed == [kline_time(i) for i in range(40, 50)]


def test_the_feed_refuses_bad_settings():
    clock = Clock(kline_time(40))
    with pytest.raises(ParameterError, match="symbols must be a non-empty list"):
        feed(clock).__class__(feed(clock).source, "BTC/USDT")
    with pytest.raises(ParameterError, match="poll must be > 0"):
        CcxtPollingFeed(feed(clock).source, ["BTC/USDT"], poll=0)


def test_the_paper_broker_trades_live_bars_with_the_backtest_rules():
    clock = Clock(kline_time(300) + pd.Timedelta("10min"))
    btc = Instrument(ticker="BTC/USDT", exchange="BINANCE", asset_class=AssetClass.CRYPTO, lot_size=1e-6,
                     currency="USDT")  # fmt: skip
    f = feed(clock, start=kline_time(0), until=kline_time(299))
    bars = pd.DataFrame([[float(x) for x in k[1:6]] for k in KLINES[:300]],
                        index=pd.DatetimeIndex([kline_time(i) for i in range(300)], name="timestamp"),
                        columns=["Open", "High", "Low", "Close", "Volume"])  # fmt: skip
    bars.attrs["symbol"] = "BTC/USDT"
    store = wb.MemoryStore()
    kw = {"commission": 0.001, "instrument": btc}
    result = wb.backtest("sma_crossover", bars, {"fast": 5, "slow": 20}, store=store, **kw)
    strategy = wb.SMACrossover(fast=5, slow=20)
    strategy.start_testing()
    sess = trade(strategy, f, approval=approve(result, by="risk desk"), store=store, log=wb.MemoryEventLog(), **kw)
    cols = ["side", "quantity", "price", "fee", "ts"]
    assert len(result.fills) > 5
    live = sess.fills[cols].reset_index(drop=True)
    live["ts"] = live["ts"].astype("datetime64[ns, UTC]")  # ccxt stamps in ms, parsed at us resolution
    pd.testing.assert_frame_equal(result.fills[cols].reset_index(drop=True), live)
