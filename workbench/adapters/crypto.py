"""OHLCV from any exchange ccxt supports, in the canonical schema.

- **Pagination:** long ranges are fetched page by page (``limit`` bars per request,
  1,000 by default), each page starting one bar after the last one received. Every page
  is handed to the cache as soon as it arrives, so a killed download resumes from the
  last committed page.
- **Rate limits:** ccxt's own rate limiter is on (``enableRateLimit=True``); on top of it,
  only transient errors are retried with exponential backoff: ccxt's ``NetworkError``
  family (``RequestTimeout``, ``ExchangeNotAvailable``, ``RateLimitExceeded``,
  ``DDoSProtection``). ``BadSymbol`` becomes :class:`UnknownSymbolError`; any other
  exchange error propagates at once as :class:`DataError`.
- **Open candle:** the still-forming current bar is never returned to the cache
  (:func:`workbench.data` drops every bar whose end is after the exchange's clock).
- **Bar stamps:** ccxt stamps a candle at its open time in epoch ms, which is the
  workbench convention already; converted to a UTC index.
- **Tick and lot size:** ``market["precision"]`` is read by ``exchange.precisionMode``
  (a tick, a count of decimals, or significant digits: then no fixed tick, the finest
  is used); see :func:`_increment`.
- **Keys:** OHLCV is public data and needs none. If ``CCXT_<EXCHANGE>_API_KEY`` and
  ``CCXT_<EXCHANGE>_SECRET`` are set in the environment they are passed to ccxt, and never
  logged, stored or shown.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from workbench.adapters._retry import retry
from workbench.errors import DataError, ParameterError, UnknownSymbolError
from workbench.market import parse_timeframe, timeframe_nanos

__all__ = ["CcxtSource"]


class CcxtSource:
    """:class:`~workbench.market.PriceSource` over a ccxt exchange (needs the network).

    Parameters
    ----------
    exchange : str or ccxt.Exchange
        An id from ``ccxt.exchanges`` (``"binance"``, ``"kraken"``...) or a configured
        instance (the tests pass one whose HTTP layer replays recorded payloads).
    limit : int
        Bars per request.
    clock : callable, optional
        Returns "now" as a UTC Timestamp; default the exchange's clock.
    """

    online = True
    cacheable = True
    adjusted = False

    def __init__(self, exchange: Any, *, limit: int = 1000, attempts: int = 5,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], pd.Timestamp] | None = None) -> None:  # fmt: skip
        import ccxt

        if isinstance(exchange, str):
            ex_id = exchange.strip().lower()
            if ex_id not in ccxt.exchanges:
                raise ParameterError(f"unknown ccxt exchange {exchange!r}; see ccxt.exchanges")
            config: dict[str, Any] = {"enableRateLimit": True}
            key = os.environ.get(f"CCXT_{ex_id.upper()}_API_KEY")
            secret = os.environ.get(f"CCXT_{ex_id.upper()}_SECRET")
            if key and secret:
                config.update(apiKey=key, secret=secret)
            exchange = getattr(ccxt, ex_id)(config)
        if not getattr(exchange, "has", {}).get("fetchOHLCV"):
            raise ParameterError(
                f"ccxt exchange {exchange.id!r} does not offer OHLCV (has['fetchOHLCV'] is false)"
            )
        exchange.enableRateLimit = True
        self.exchange = exchange
        self.name = f"ccxt-{exchange.id}"
        self.limit = limit
        self.attempts = attempts
        self._sleep = sleep
        self._clock = clock
        self._transient = (ccxt.NetworkError,)

    def __repr__(self) -> str:  # never show the exchange object (it holds any credentials)
        return f"CcxtSource({self.exchange.id!r})"

    def now(self) -> pd.Timestamp:
        if self._clock is not None:
            return self._clock()
        return pd.Timestamp(self.exchange.milliseconds(), unit="ms", tz="UTC")

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        extra = {"sleep": self._sleep} if self._sleep else {}
        return retry(
            fn,
            transient=self._transient,
            what=f"{self.exchange.id} {what}",
            attempts=self.attempts,
            **extra,
        )

    def _market(self, symbol: str) -> dict[str, Any]:
        import ccxt

        try:
            markets = self._call("load_markets", self.exchange.load_markets)
        except ccxt.ExchangeError as exc:
            raise DataError(f"[vendor_error] {self.exchange.id} load_markets: {exc}") from exc
        if symbol not in markets:
            near = [m for m in markets if m.split("/")[0] == symbol.split("/")[0]][:5]
            raise UnknownSymbolError(
                f"[unknown_symbol] {self.exchange.id} has no market {symbol!r}"
                + (f"; similar: {', '.join(near)}" if near else "")
            )
        return markets[symbol]

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        tf = timeframe or "1d"
        supported = getattr(self.exchange, "timeframes", None) or {}
        if tf in supported:
            return tf
        _, unit = parse_timeframe(tf)  # e.g. 2d on an exchange without it: fetch 1d and resample
        base = {"m": "1m", "h": "1h", "d": "1d", "w": "1w", "M": "1M"}[unit]
        if base not in supported:
            raise ParameterError(
                f"{self.exchange.id} has no {tf!r} or {base!r} candles; it has {list(supported)}"
            )
        return base

    def metadata(self, symbol: str) -> dict[str, Any]:
        """The market's tick and lot size read by the exchange's ``precisionMode`` (see
        :func:`_increment`)."""
        import ccxt

        m = self._market(symbol)
        precision = m.get("precision") or {}
        mode = getattr(self.exchange, "precisionMode", ccxt.Exchange.precisionMode)
        tick = _increment(precision.get("price"), mode, default=0.01, unfixed=_FINEST_TICK)
        lot = _increment(precision.get("amount"), mode, default=1e-8, unfixed=1e-8)
        return {"symbol": symbol, "name": f"{symbol} on {self.exchange.id}", "exchange": self.exchange.id.upper(),
                "asset_class": "CRYPTO", "currency": m.get("quote") or "USD",
                "lot_size": lot, "tick_size": tick, "adjusted": False}  # fmt: skip

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]:
        import ccxt

        self._market(symbol)
        step = timeframe_nanos(timeframe) // 1_000_000
        since = (
            0 if start is None else int(start.value // 1_000_000)
        )  # Timestamp.value is always ns
        until = int((end if end is not None else self.now()).value // 1_000_000)
        while since <= until:
            page_since = since
            try:
                rows = self._call(
                    f"fetch_ohlcv {symbol} {timeframe} since={page_since}",
                    lambda s=page_since: self.exchange.fetch_ohlcv(symbol, timeframe, since=s, limit=self.limit),
                )
            except ccxt.BadSymbol as exc:
                raise UnknownSymbolError(f"[unknown_symbol] {self.exchange.id}: {exc}") from exc
            except ccxt.NetworkError:
                raise
            except ccxt.BaseError as exc:
                raise DataError(
                    f"[vendor_error] {self.exchange.id} fetch_ohlcv {symbol}: {exc}"
                ) from exc
            rows = [r for r in rows if page_since <= r[0] <= until]
            if not rows:
                return
            yield _frame(rows)
            last = int(rows[-1][0])
            since = last + (step if timeframe[-1] != "M" else 1)


#: The tick of a SIGNIFICANT_DIGITS market: its tick depends on the price level (5 digits
#: is 1 at 12,345 and 1e-9 at 0.000012345), so no fixed tick is right; the finest tick the
#: Instrument's arithmetic is tested at never refuses a price the venue would accept.
_FINEST_TICK = 1e-12


def _increment(value: Any, mode: int, *, default: float, unfixed: float) -> float:
    """A ccxt ``precision`` entry as an increment (a tick or lot size).

    What the number means depends on ``exchange.precisionMode``: TICK_SIZE gives the
    increment itself (0.01), DECIMAL_PLACES a count of decimals (2 is 0.01, 0 whole
    units), SIGNIFICANT_DIGITS a count of significant digits, which fixes no increment
    (``unfixed`` is used). A missing or unusable entry gives ``default``.
    """
    import ccxt

    if mode == ccxt.SIGNIFICANT_DIGITS:
        return unfixed
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    if mode == ccxt.DECIMAL_PLACES:  # via the decimal string: 1e-2 is exactly the float 0.01
        v = float(f"1e{-int(v)}") if v.is_integer() else math.nan
    return v if math.isfinite(v) and v > 0 else default


def _frame(rows: list[list[Any]]) -> pd.DataFrame:
    arr = np.asarray([r[:6] for r in rows], dtype="float64")
    index = pd.DatetimeIndex(
        pd.to_datetime(arr[:, 0].astype("int64"), unit="ms", utc=True), name="timestamp"
    )
    return pd.DataFrame(
        arr[:, 1:6], index=index, columns=["Open", "High", "Low", "Close", "Volume"]
    )
