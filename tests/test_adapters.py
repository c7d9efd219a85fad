"""yfinance and ccxt adapters driven through vendor wire-format payloads (no network).

The yfinance tests run yfinance's real code (cookie, crumb, time-zone lookup, chart
request and parsing) against a fake Yahoo transport; the ccxt tests run a real
``ccxt.binance`` (request building, rate limiter, kline parsing) against a fake HTTP layer.
"""

from __future__ import annotations

from pathlib import Path

import ccxt
import pandas as pd
import pytest
import requests

import workbench as wb
from workbench.adapters.crypto import CcxtSource
from workbench.adapters.store import ParquetCache
from workbench.adapters.yahoo import YFinanceSource
from workbench.errors import DataError, NoDataError, UnknownSymbolError

from .fakes import FakeBinanceHttp, FakeYahoo, payload, yahoo_session
from .test_cache import END, KLINES, START, binance_source


@pytest.fixture
def yahoo() -> FakeYahoo:
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()  # yfinance memoises past-range responses in-process
    return FakeYahoo({"GOOG": payload("yahoo_chart_GOOG_1d.json"), "DIVCO": payload("yahoo_chart_DIVCO_1d.json")})


def yf_source(fake: FakeYahoo, adjusted: bool = False) -> YFinanceSource:
    return YFinanceSource(adjusted=adjusted, session=yahoo_session(fake), sleep=lambda s: None)


def test_yfinance_daily_bars_match_the_sample_and_use_the_bar_start_convention(yahoo: FakeYahoo, tmp_path: Path) -> None:
    got = wb.load_prices("GOOG", "2013-01-02", "2013-01-31", source=yf_source(yahoo), cache=ParquetCache(tmp_path))
    sample = wb.load_prices("GOOG", "2013-01-02", "2013-01-31")
    pd.testing.assert_frame_equal(got, sample, check_freq=False)
    assert all(t.hour == 0 for t in got.index)  # Yahoo's 09:30 New York stamp -> 00:00 UTC of the session
    assert got.attrs["source"] == "yfinance" and got.attrs["adjusted"] is False
    chart = yahoo.chart_calls[-1]
    assert chart["interval"] == ["1d"] and "period1" in chart  # a real chart request was built


def test_yfinance_raw_and_adjusted_prices_are_separate_and_never_mixed(yahoo: FakeYahoo) -> None:
    raw = wb.load_prices("DIVCO", "2018-03-01", "2018-03-29", source=yf_source(yahoo), cache=False)
    adj = wb.load_prices("DIVCO", "2018-03-01", "2018-03-29", source=yf_source(yahoo, True), cache=False)
    assert "Adj Close" not in raw.columns and "Adj Close" not in adj.columns
    ratio = adj["Close"] / raw["Close"]
    before, after = ratio[:"2018-03-15"], ratio["2018-03-16":]
    assert (after == 1.0).all()  # after the ex-date adjusted == raw
    assert before.round(4).nunique() == 1 and before.iloc[0] == pytest.approx(1 - 1.5 / 274.4, abs=1e-4)
    assert (adj["High"] / raw["High"]).to_numpy() == pytest.approx(ratio.to_numpy(), rel=1e-12)  # every price
    assert (raw.attrs["adjusted"], adj.attrs["adjusted"]) == (False, True)


def test_yfinance_unknown_symbol(yahoo: FakeYahoo) -> None:
    with pytest.raises(UnknownSymbolError, match=r"\[unknown_symbol\].*'NOPE'"):
        wb.load_prices("NOPE", "2013-01-02", "2013-01-31", source=yf_source(yahoo), cache=False)


def test_yfinance_empty_range_is_no_data(yahoo: FakeYahoo) -> None:
    with pytest.raises(NoDataError):
        wb.load_prices("GOOG", "2010-01-04", "2010-01-29", source=yf_source(yahoo), cache=False)


def test_yfinance_retries_transient_network_errors(yahoo: FakeYahoo) -> None:
    yahoo.failures = [requests.ConnectionError("reset"), requests.Timeout("slow")]
    delays: list[float] = []
    src = YFinanceSource(session=yahoo_session(yahoo), sleep=delays.append)
    got = wb.load_prices("GOOG", "2013-01-02", "2013-01-31", source=src, cache=False)
    assert len(got) == 21 and delays == [1.0, 2.0]


def test_yfinance_gives_up_after_the_last_attempt(yahoo: FakeYahoo) -> None:
    yahoo.failures = [requests.ConnectionError("down")] * 10
    src = YFinanceSource(session=yahoo_session(yahoo), sleep=lambda s: None, attempts=3)
    with pytest.raises(requests.ConnectionError):
        wb.load_prices("GOOG", "2013-01-02", "2013-01-31", source=src, cache=False)


def test_ccxt_paginates_long_ranges_without_gaps_or_duplicates() -> None:
    src, http = binance_source(limit=500)
    got = wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=False)
    assert len(got) == len(KLINES) and got.index.is_unique
    assert (got.index.to_series().diff().dropna() == pd.Timedelta("1h")).all()
    starts = [int(c["startTime"]) for c in http.kline_calls]
    assert len(starts) == -(-len(KLINES) // 500)
    assert all(b - a == 500 * 3_600_000 for a, b in zip(starts, starts[1:], strict=False))  # next page = last bar + 1h
    assert got["Close"].iloc[0] == float(KLINES[0][4])  # strings parsed by ccxt


def test_ccxt_honours_the_rate_limiter() -> None:
    src, http = binance_source(limit=500)
    ex = src.exchange
    throttled: list[float] = []
    original = ex.throttle
    ex.throttle = lambda cost=None: (throttled.append(cost), original(cost))[1]
    wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=False)
    assert ex.enableRateLimit is True
    assert len(throttled) >= len(http.kline_calls)  # every request went through ccxt's limiter


@pytest.mark.parametrize("error", [ccxt.NetworkError("reset"), ccxt.RequestTimeout("timeout"),
                                   ccxt.RateLimitExceeded("429"), ccxt.ExchangeNotAvailable("503"), ccxt.DDoSProtection("cf")])  # fmt: skip
def test_ccxt_retries_transient_errors_with_backoff(error: Exception) -> None:
    delays: list[float] = []
    src, http = binance_source(http=FakeBinanceHttp(KLINES, failures=[error, error]), limit=1000)
    src._sleep = delays.append
    got = wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=False)
    assert len(got) == len(KLINES) and delays == [1.0, 2.0]


@pytest.mark.parametrize("error", [ccxt.ExchangeError("bad"), ccxt.AuthenticationError("key"), ccxt.BadRequest("400")])
def test_ccxt_does_not_retry_permanent_errors(error: Exception) -> None:
    delays: list[float] = []
    src, http = binance_source(http=FakeBinanceHttp(KLINES, failures=[error]))
    src._sleep = delays.append
    with pytest.raises(DataError, match=r"\[vendor_error\]"):
        wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=False)
    assert delays == [] and len(http.kline_calls) == 1


def test_ccxt_never_stores_the_still_open_candle(tmp_path: Path) -> None:
    src, _ = binance_source()
    src._clock = lambda: END + pd.Timedelta("20min")  # the last kline is still forming
    cache = ParquetCache(tmp_path)
    got = wb.load_prices("BTC/USDT", START, timeframe="1h", source=src, cache=cache, checkpoint_seconds=0)
    assert got.index[-1] == END - pd.Timedelta("1h")
    assert cache.read(wb.data.CacheKey("ccxt-binance", "BTC/USDT", "1h")).index[-1] == END - pd.Timedelta("1h")


def test_ccxt_unknown_market_and_exchange() -> None:
    src, _ = binance_source()
    with pytest.raises(UnknownSymbolError, match=r"binance has no market 'DOGE/XYZ'"):
        wb.load_prices("DOGE/XYZ", source=src, cache=False)
    with pytest.raises(wb.ParameterError, match="unknown ccxt exchange 'nope'"):
        CcxtSource("nope")


def test_ccxt_metadata_reads_the_recorded_binance_tick_and_lot() -> None:
    src, _ = binance_source()
    assert src.exchange.precisionMode == ccxt.TICK_SIZE
    meta = src.metadata("BTC/USDT")  # exchangeInfo: tickSize 0.01, stepSize 0.00001
    assert (meta["tick_size"], meta["lot_size"], meta["currency"]) == (0.01, 1e-5, "USDT")
    inst = wb.instrument_for("BTC/USDT", src)  # a stablecoin quote is a currency of its own
    assert (inst.currency, inst.tick_size, inst.lot_size) == ("USDT", 0.01, 1e-5)


class _OneMarket:
    """The least of a ccxt exchange metadata() reads: one hand-made market and a mode."""

    id = "handmade"
    has = {"fetchOHLCV": True}

    def __init__(self, mode: int, precision: dict[str, object]) -> None:
        self.precisionMode = mode
        self.market = {"symbol": "ABC/USD", "base": "ABC", "quote": "USD", "precision": precision}

    def load_markets(self) -> dict[str, dict[str, object]]:
        return {"ABC/USD": self.market}


@pytest.mark.parametrize(
    ("mode", "precision", "tick", "lot"),
    [
        (ccxt.TICK_SIZE, {"price": 0.5, "amount": 0.001}, 0.5, 0.001),
        (ccxt.TICK_SIZE, {"price": 1e-8, "amount": 1.0}, 1e-8, 1.0),
        (ccxt.DECIMAL_PLACES, {"price": 2, "amount": 5}, 0.01, 1e-5),  # read as ticks, this was 2.0 and 5.0
        (ccxt.DECIMAL_PLACES, {"price": 0, "amount": 8.0}, 1.0, 1e-8),  # 0 decimals: whole units
        (ccxt.SIGNIFICANT_DIGITS, {"price": 5, "amount": 8}, 1e-12, 1e-8),  # no fixed tick: the finest
        (ccxt.TICK_SIZE, {"price": None, "amount": None}, 0.01, 1e-8),  # missing: the defaults
        (ccxt.DECIMAL_PLACES, {}, 0.01, 1e-8),
    ],
)
def test_ccxt_precision_is_read_by_the_exchanges_precision_mode(mode: int, precision: dict[str, object],
                                                                tick: float, lot: float) -> None:  # fmt: skip
    meta = CcxtSource(_OneMarket(mode, precision), sleep=lambda s: None).metadata("ABC/USD")
    assert (meta["tick_size"], meta["lot_size"]) == (tick, lot)


def test_ccxt_precision_mode_decides_what_the_recorded_binance_numbers_mean() -> None:
    src, _ = binance_source()
    src.exchange.load_markets()
    src.exchange.markets["BTC/USDT"]["precision"] = {"price": 2, "amount": 5}  # as a DECIMAL_PLACES venue
    src.exchange.precisionMode = ccxt.DECIMAL_PLACES
    meta = src.metadata("BTC/USDT")
    assert (meta["tick_size"], meta["lot_size"]) == (0.01, 1e-5)


def test_ccxt_credentials_come_from_the_environment_and_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCXT_KRAKEN_API_KEY", "KEY-should-not-leak")
    monkeypatch.setenv("CCXT_KRAKEN_SECRET", "c2VjcmV0")
    src = CcxtSource("kraken")
    assert src.exchange.apiKey == "KEY-should-not-leak"
    assert "KEY-should" not in repr(src) and "c2VjcmV0" not in repr(src)


@pytest.mark.live
def test_live_yfinance_goog_daily() -> None:
    got = wb.load_prices("GOOG", "2024-01-02", "2024-01-31", source="yfinance", cache=False)
    assert 15 <= len(got) <= 21


@pytest.mark.live
def test_live_ccxt_binance_btc_hourly() -> None:
    got = wb.load_prices("BTC/USDT", "2024-01-01", "2024-01-03", timeframe="1h", source="ccxt:binance", cache=False)
    assert len(got) == 49


def test_yfinance_intraday_fx_bars_are_stamped_at_their_start_in_utc(tmp_path: Path) -> None:
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()
    fake = FakeYahoo({"EURUSD=X": payload("yahoo_chart_EURUSD=X_1h.json")})
    got = wb.load_prices("EURUSD=X", "2017-05-02", "2017-05-03 23:00", timeframe="1h", source=yf_source(fake),
                         cache=ParquetCache(tmp_path))  # fmt: skip
    sample = wb.load_prices("EURUSD", "2017-05-02", "2017-05-03 23:00")
    cols = ["Open", "High", "Low", "Close"]
    pd.testing.assert_frame_equal(got[cols], sample[cols], check_freq=False)
    assert str(got.index.tz) == "UTC" and (got["Volume"] == 0).all()  # Yahoo has no FX volume
    assert fake.chart_calls[-1]["interval"] in (["1h"], ["60m"])
