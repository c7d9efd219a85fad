"""Closed bars as they close, by polling a ccxt exchange's OHLCV (a live Feed for the trading loop).

:class:`CcxtPollingFeed` implements :class:`~workbench.trading.feeds.Feed` over
:class:`~workbench.adapters.crypto.CcxtSource` (its pagination, retries and error mapping):

- **Only closed bars.** A candle stamped ``t`` (its open, ccxt's convention) is closed once
  the exchange's clock has passed ``t + timeframe``; the still-forming candle is never
  yielded, so a strategy never decides on a bar that can still change.
- **One step per timestamp, all symbols.** A step is yielded when every symbol has its
  closed bar for that timestamp; a symbol that has not printed yet holds the others back
  (a missing bar is waited for, never filled in).
- **Restarts.** ``steps(after)`` asks only for bars after ``after`` (the session's last
  logged bar), so a restarted session neither misses nor repeats a bar.
- **Waiting.** Between polls it sleeps until the next candle should have closed plus
  ``grace`` seconds (exchanges publish a candle a little after its close), at most
  ``poll`` seconds at a time. ``until`` (a time) or ``max_idle_polls`` end the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd

from workbench.adapters.crypto import CcxtSource
from workbench.errors import ParameterError
from workbench.market import timeframe_nanos
from workbench.trading.costs import Bar
from workbench.trading.feeds import Step

__all__ = ["CcxtPollingFeed"]


class CcxtPollingFeed:
    """Closed OHLCV bars of ``symbols`` from ``source``, polled (see the module notes).

    Parameters
    ----------
    source : CcxtSource or str
        A source (or a ccxt exchange id: public data needs no keys).
    symbols : sequence of str
        ccxt symbols (``"BTC/USDT"``), in the spec's instrument order.
    timeframe : str
        ccxt timeframe (``"1m"``, ``"1h"``, ``"1d"``).
    start : time, optional
        The first bar wanted when the session is new (default: the last closed one).
    """

    def __init__(self, source: CcxtSource | str, symbols: Sequence[str], timeframe: str = "1h", *,
                 start: Any = None, until: Any = None, poll: float = 60.0, grace: float = 2.0,
                 max_idle_polls: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        if isinstance(symbols, str) or not symbols:
            raise ParameterError(f"CcxtPollingFeed: symbols must be a non-empty list, got symbols={symbols!r}")
        if not (isinstance(poll, int | float) and poll > 0) or not (isinstance(grace, int | float) and grace >= 0):
            raise ParameterError(f"CcxtPollingFeed: poll must be > 0 and grace >= 0 seconds, got poll={poll!r}, grace={grace!r}")
        self.source = CcxtSource(source) if isinstance(source, str) else source
        self.names = list(symbols)
        self.timeframe = timeframe
        self.step = pd.Timedelta(timeframe_nanos(timeframe), unit="ns")
        self.start = None if start is None else _utc(start)
        self.until = None if until is None else _utc(until)
        self.poll, self.grace, self.max_idle_polls, self._sleep = float(poll), float(grace), max_idle_polls, sleep
        self.attrs = {"symbol": self.names[0], "timeframe": timeframe, "source": self.source.name}

    def __repr__(self) -> str:
        return f"CcxtPollingFeed({self.source!r}, {self.names}, {self.timeframe!r})"

    def steps(self, after: pd.Timestamp | None = None) -> Iterator[Step]:
        cursor = _utc(after) if after is not None else self._first_cursor()
        idle = 0
        while self.until is None or cursor + self.step <= self.until:
            now = self.source.now()
            ready = self._closed_steps(cursor, now)
            for ts, bars in ready:
                yield ts, bars
                cursor = ts
            if ready:
                idle = 0
                continue
            idle += 1
            if self.max_idle_polls is not None and idle >= self.max_idle_polls:
                return
            self._sleep(self._wait(cursor, now))

    def _first_cursor(self) -> pd.Timestamp:
        """The bar before the first one wanted: ``start`` minus a step, or the candle before
        the last closed one."""
        if self.start is not None:
            return self.start - self.step
        now = self.source.now()
        return now.floor(self.step) - 2 * self.step

    def _closed_steps(self, cursor: pd.Timestamp, now: pd.Timestamp) -> list[Step]:
        """Steps after ``cursor`` whose every symbol's candle has closed by ``now``."""
        frames = []
        for symbol in self.names:
            parts = list(self.source.fetch(symbol, self.timeframe, cursor + self.step, now))
            frame = pd.concat(parts) if parts else pd.DataFrame(columns=["Open", "High", "Low", "Close", "Volume"])
            frame = frame[(frame.index > cursor) & (frame.index + self.step <= now)]
            if self.until is not None:
                frame = frame[frame.index <= self.until]
            frames.append(frame[~frame.index.duplicated(keep="last")])
        common = frames[0].index
        for f in frames[1:]:
            common = common.intersection(f.index)
        first_gap = min((f.index.difference(common).min() for f in frames if len(f.index.difference(common))),
                        default=None)  # fmt: skip
        if first_gap is not None:  # a symbol is behind: hold every step from its missing bar on
            common = common[common < first_gap]
        return [(ts, [Bar(ts, *map(float, f.loc[ts, ["Open", "High", "Low", "Close", "Volume"]])) for f in frames])
                for ts in common.sort_values()]  # fmt: skip

    def _wait(self, cursor: pd.Timestamp, now: pd.Timestamp) -> float:
        """Seconds until the next candle should be out: its close plus the grace, at most ``poll``."""
        due = cursor + 2 * self.step + pd.Timedelta(seconds=self.grace)
        return float(min(self.poll, max(0.5, (due - now).total_seconds())))


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
