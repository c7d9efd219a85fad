"""Bar feeds for the trading loop: where closed bars come from, one step at a time.

A feed yields **steps**: a timestamp and one closed :class:`~workbench.trading.costs.Bar`
per traded instrument, in the spec's instrument order, oldest first. ``steps(after)``
starts after ``after`` (the last bar the session logged), so a restarted session picks up
where it left off without seeing a bar twice.

- :class:`ReplayFeed` replays a frame (one instrument) or a ``(symbol, field)`` panel:
  history through the loop, the test that the loop reproduces the backtest.
- Live feeds (ccxt OHLCV polling, see :mod:`workbench.adapters.ccxt_feed`) implement the
  same protocol and only ever yield *closed* bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.costs import Bar

__all__ = ["Feed", "Step", "ReplayFeed", "FIELDS"]

FIELDS = ("Open", "High", "Low", "Close", "Volume")
Step = tuple[pd.Timestamp, list[Bar]]


@runtime_checkable
class Feed(Protocol):
    """Closed bars, one step at a time (see the module notes). ``names`` are the symbols as
    the strategy sees them (the panel's first column level; one name for a frame)."""

    names: list[str]

    def steps(self, after: pd.Timestamp | None = None) -> Iterator[Step]: ...


class ReplayFeed:
    """Replays ``prices`` (OHLCV frame or ``(symbol, field)`` panel) bar by bar."""

    def __init__(self, prices: pd.DataFrame, *, name: str | None = None) -> None:
        if not isinstance(prices, pd.DataFrame) or not isinstance(prices.index, pd.DatetimeIndex):
            raise ParameterError("ReplayFeed needs an OHLCV DataFrame (or panel) on a DatetimeIndex")
        if isinstance(prices.columns, pd.MultiIndex):
            self.names = [str(s) for s in dict.fromkeys(prices.columns.get_level_values(0))]
            arrays = [np.column_stack([prices[(s, f)].to_numpy("float64") for f in FIELDS]) for s in self.names]
        else:
            missing = [f for f in FIELDS if f not in prices.columns]
            if missing:
                raise ParameterError(f"ReplayFeed: prices lack the columns {missing}")
            self.names = [name or str(prices.attrs.get("symbol", "ASSET"))]
            arrays = [prices[list(FIELDS)].to_numpy("float64")]
        self.index = prices.index
        self.attrs = dict(prices.attrs)
        self._values = np.stack(arrays, axis=1)  # (bars, instruments, 5)

    def __len__(self) -> int:
        return len(self.index)

    def steps(self, after: pd.Timestamp | None = None) -> Iterator[Step]:
        start = 0 if after is None else int(self.index.searchsorted(pd.Timestamp(after), side="right"))
        values, index = self._values, self.index
        for k in range(start, len(index)):
            ts = index[k]
            yield ts, [Bar(ts, *row) for row in values[k].tolist()]
