"""Yahoo Finance bars through yfinance, in the canonical schema.

Prices are either raw or adjusted, chosen explicitly and never mixed in one frame:

- ``adjusted=False`` (default): Yahoo's Open/High/Low/Close. Yahoo already adjusts these
  for *splits*, not for dividends. ``Adj Close`` is dropped.
- ``adjusted=True``: total-return adjusted OHLC (yfinance ``auto_adjust=True``: every
  price scaled by Adj Close / Close), for return studies across dividends.

Bar stamps follow the workbench convention: daily and longer bars are stamped at
00:00 UTC of their session date (Yahoo stamps them at midnight exchange time); intraday
bars at their start, converted to UTC. Yahoo's ``end`` is exclusive, so one bar more is
asked for and trimmed. Network errors, timeouts and Yahoo's rate limit are retried with
backoff; an unknown ticker raises :class:`UnknownSymbolError`, an empty answer
:class:`NoDataError`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from workbench.adapters._retry import retry
from workbench.config import cache_dir
from workbench.errors import DataError, NoDataError, UnknownSymbolError
from workbench.market import OHLCV_COLUMNS, parse_timeframe, timeframe_offset

__all__ = ["YFinanceSource", "YF_INTERVALS"]

# workbench timeframe -> yfinance interval (explicit table; Yahoo has no 4h or 2d bars)
YF_INTERVALS = {"1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1h",
                "1d": "1d", "1w": "1wk", "1M": "1mo"}  # fmt: skip


class YFinanceSource:
    """:class:`~workbench.market.PriceSource` for Yahoo Finance (needs the network).

    Parameters
    ----------
    adjusted : bool
        Raw (split-adjusted only, Yahoo's Close) or total-return adjusted prices.
    session : requests/curl_cffi session, optional
        Passed to yfinance (the tests pass one that replays recorded Yahoo payloads).
    sleep : callable
        Used for retry backoff (tests pass a no-op).
    """

    name = "yfinance"
    online = True
    cacheable = True

    def __init__(self, adjusted: bool = False, *, session: Any = None, sleep: Callable[[float], None] | None = None,
                 attempts: int = 4) -> None:  # fmt: skip
        if not isinstance(adjusted, bool):
            raise DataError(f"adjusted must be True or False, got {adjusted!r}")
        self.adjusted = adjusted
        self.session = session
        self.attempts = attempts
        self._sleep = sleep
        self._meta: dict[str, dict[str, Any]] = {}

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        tf = timeframe or "1d"
        if tf in YF_INTERVALS:
            return tf
        n, unit = parse_timeframe(tf)  # e.g. 4h: fetch 1h and resample
        return {"m": "1m", "h": "1h", "d": "1d", "w": "1w", "M": "1M"}[unit]

    def metadata(self, symbol: str) -> dict[str, Any]:
        meta = self._meta.get(symbol, {})
        return {"symbol": symbol, "name": meta.get("name", symbol), "exchange": meta.get("exchange", "YAHOO"),
                "asset_class": meta.get("asset_class", "EQUITY"), "currency": meta.get("currency", "USD"),
                "lot_size": 1.0, "tick_size": 0.01, "adjusted": self.adjusted}  # fmt: skip

    def _ticker(self, symbol: str) -> Any:
        import yfinance as yf

        yf.set_tz_cache_location(
            str(cache_dir() / "_yfinance")
        )  # keep yfinance's own caches under data/
        return yf.Ticker(symbol, session=self.session)

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]:
        import requests
        from yfinance import exceptions as yfe

        interval = YF_INTERVALS[timeframe]
        daily = parse_timeframe(timeframe)[1] in ("d", "w", "M")
        kwargs: dict[str, Any] = {"interval": interval, "auto_adjust": self.adjusted, "actions": False,
                                  "raise_errors": True, "repair": False}  # fmt: skip
        if start is None and end is None:
            kwargs["period"] = "max"
        else:
            first = start if start is not None else pd.Timestamp("1970-01-02", tz="UTC")
            kwargs["start"] = first.date() if daily else first
            if end is not None:
                after = end + timeframe_offset(timeframe)  # Yahoo's end is exclusive
                kwargs["end"] = after.date() if daily else after
        transient = (
            requests.ConnectionError,
            requests.Timeout,
            yfe.YFRateLimitError,
            ConnectionError,
            TimeoutError,
        )

        def history() -> pd.DataFrame:
            # yfinance swallows a network error while looking up the ticker's time zone and
            # then reports the ticker as missing; its log tells the two apart
            ticker = self._ticker(symbol)  # a fresh Ticker per attempt: yfinance caches failed lookups on it
            log = _Captured()
            yf_logger = logging.getLogger("yfinance")
            yf_logger.addHandler(log)
            try:
                with warnings.catch_warnings():  # yfinance still uses pandas' deprecated inplace=
                    warnings.simplefilter("ignore", DeprecationWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    return ticker.history(**kwargs)
            except (yfe.YFTzMissingError, requests.HTTPError) as exc:
                failed = [m for m in log.messages if "Failed to get ticker" in m]
                if failed:
                    raise ConnectionError(f"yfinance could not reach Yahoo: {failed[0]}") from exc
                raise
            except (KeyError, IndexError, TypeError) as exc:  # a payload yfinance could not parse
                raise DataError(f"[vendor_schema] yfinance {symbol}: unexpected response ({type(exc).__name__}: {exc})") from exc
            finally:
                yf_logger.removeHandler(log)

        try:
            raw = retry(history, transient=transient, what=f"yfinance {symbol}",
                        attempts=self.attempts, **({"sleep": self._sleep} if self._sleep else {}))  # fmt: skip
        except yfe.YFTzMissingError as exc:
            raise UnknownSymbolError(
                f"[unknown_symbol] yfinance does not know {symbol!r}: {exc}"
            ) from exc
        except (yfe.YFPricesMissingError, yfe.YFInvalidPeriodError) as exc:
            raise NoDataError(f"[empty_download] yfinance {symbol} {interval}: {exc}") from exc
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise UnknownSymbolError(
                    f"[unknown_symbol] Yahoo Finance has no symbol {symbol!r} (HTTP 404 Not Found)"
                ) from exc
            raise DataError(f"[vendor_error] yfinance {symbol}: {exc}") from exc
        if raw is None or raw.empty:
            raise NoDataError(
                f"[empty_download] yfinance returned no {interval} bars for {symbol} ({start} .. {end})"
            )
        self._meta[symbol] = {"name": symbol}
        yield _canonical(raw, daily, symbol)


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _canonical(raw: pd.DataFrame, daily: bool, symbol: str) -> pd.DataFrame:
    missing = [c for c in OHLCV_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"[vendor_schema] yfinance {symbol}: missing {missing} in {list(raw.columns)}"
        )
    out = raw[OHLCV_COLUMNS].astype("float64")  # Adj Close (raw mode) is dropped, never mixed in
    idx = raw.index
    if daily:  # Yahoo stamps the session at local midnight: re-stamp as 00:00 UTC of that date
        idx = pd.DatetimeIndex(idx.tz_localize(None).normalize()).tz_localize("UTC")
    else:
        idx = idx.tz_convert("UTC")
    out.index = idx.rename("timestamp")
    return out
