"""Seeded synthetic OHLCV bars (geometric random walk) at any frequency and length.

Used for scale tests and benchmarks. Bars are continuous (each Open is the previous
Close), High/Low extend beyond max/min(Open, Close) by a half-normal excursion, and
Volume is exponential with mean 1,000. The same ``(seed, start, timeframe, n)`` always
gives the same bars. 10 million bars take about a second and ~0.6 GB.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from workbench.errors import DataError
from workbench.market import parse_timeframe, timeframe_nanos, timeframe_offset
from workbench.trading.values import utc_timestamp

__all__ = ["synthetic_bars", "SyntheticSource", "two_venue_quotes"]

_YEAR_NANOS = 365.25 * 86_400e9


def _index(start: pd.Timestamp, n: int, timeframe: str) -> pd.DatetimeIndex:
    offset = timeframe_offset(timeframe)
    first = start if parse_timeframe(timeframe)[1] in ("m", "h", "d") else offset.rollforward(start)
    return pd.date_range(first, periods=n, freq=offset, name="timestamp", unit="ns")


def synthetic_bars(
    n: int,
    timeframe: str = "1m",
    *,
    start: object = "2020-01-01",
    seed: int = 0,
    s0: float = 100.0,
    mu: float = 0.05,
    sigma: float = 0.2,
) -> pd.DataFrame:
    """``n`` bars of a geometric random walk (GBM) with annual drift ``mu`` and vol ``sigma``.

    >>> bars = synthetic_bars(3, "1h", seed=1)
    >>> list(bars.columns), str(bars.index.tz)
    (['Open', 'High', 'Low', 'Close', 'Volume'], 'UTC')
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"[synthetic] n must be a positive integer, got {n!r}")
    if not (s0 > 0 and sigma >= 0):
        raise DataError(f"[synthetic] need s0 > 0 and sigma >= 0, got s0={s0}, sigma={sigma}")
    start_ts = utc_timestamp(start, "start", DataError)
    dt = timeframe_nanos(timeframe) / _YEAR_NANOS
    vol = sigma * np.sqrt(dt)
    rng = np.random.default_rng(seed)
    out = np.empty(
        (5, n)
    )  # rows become columns without a copy (pandas stores blocks as (cols, rows))
    o, h, lo, c, v = out
    rng.standard_normal(out=c)
    c *= vol
    c += (mu - 0.5 * sigma**2) * dt
    np.cumsum(c, out=c)
    c += np.log(s0)
    np.exp(c, out=c)
    o[0] = s0
    o[1:] = c[:-1]
    # rows are reused as scratch so that no temporary n-array is ever allocated
    np.minimum(o, c, out=h)
    rng.standard_normal(out=lo)
    np.abs(lo, out=lo)
    lo *= -0.5 * vol
    np.exp(lo, out=lo)
    lo *= h
    np.maximum(o, c, out=v)
    rng.standard_normal(out=h)
    np.abs(h, out=h)
    h *= 0.5 * vol
    np.exp(h, out=h)
    h *= v
    rng.standard_exponential(out=v)
    v *= 1000.0
    frame = pd.DataFrame(
        out.T,
        index=_index(start_ts, int(n), timeframe),
        columns=["Open", "High", "Low", "Close", "Volume"],
        copy=False,
    )
    frame.attrs = {"symbol": f"SYN{seed}", "source": "synthetic", "timeframe": timeframe, "adjusted": False,
                   "asset_class": "CRYPTO", "currency": "USD", "lot_size": 1.0, "tick_size": 0.01}  # fmt: skip
    return frame


class SyntheticSource:
    """A :class:`~workbench.market.PriceSource` of seeded GBM bars; symbol ``"SYN<seed>"``.

    Never cached (regenerating is cheaper than reading). ``start`` defaults to
    2020-01-01 and ``end`` to ``start + bars`` bars.
    """

    name = "synthetic"
    online = False
    adjusted = False
    cacheable = False

    def __init__(self, bars: int = 100_000, **params: float) -> None:
        self.bars = bars
        self.params = params

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        return timeframe or "1d"

    def metadata(self, symbol: str) -> dict[str, object]:
        return {"symbol": symbol, "name": f"synthetic GBM ({symbol})", "asset_class": "CRYPTO",
                "currency": "USD", "lot_size": 1.0, "tick_size": 0.01, "adjusted": False}  # fmt: skip

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]:
        digits = symbol.upper().removeprefix("SYN")
        seed = int(digits) if digits.isdigit() else abs(hash(symbol)) % 2**31
        start = start or pd.Timestamp("2020-01-01", tz="UTC")
        n = self.bars
        if end is not None:
            n = int((end - start).value // timeframe_nanos(timeframe)) + 1
        yield synthetic_bars(n, timeframe, start=start, seed=seed, **self.params)


def two_venue_quotes(
    bars: pd.DataFrame,
    *,
    venues: tuple[str, str] = ("A", "B"),
    basis_bps: float = 15.0,
    half_life: float = 5.0,
    seed: int = 0,
) -> pd.DataFrame:
    """The same asset quoted on two venues: a ``(symbol, field)`` panel for arbitrage tests.

    Venue A is ``bars`` unchanged (real data in the tests); venue B is the same bars times
    (1 + basis_t), where basis_t is a stationary AR(1) in basis points with standard
    deviation ``basis_bps`` and the given ``half_life`` in bars, seeded. Every OHLC field
    of a bar is scaled by the same factor, so B's bars stay valid. Volume is copied.
    """
    if not (np.isfinite(basis_bps) and basis_bps >= 0 and half_life > 0):
        raise DataError(f"basis_bps must be >= 0 and half_life > 0, got {basis_bps!r}, {half_life!r}")
    sym = str(bars.attrs.get("symbol", "ASSET"))
    n = len(bars)
    phi = 0.5 ** (1.0 / half_life)
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(n) * basis_bps * np.sqrt(1.0 - phi * phi)
    basis = np.empty(n)
    level = rng.standard_normal() * basis_bps
    for i in range(n):
        level = phi * level + shocks[i]
        basis[i] = level
    factor = 1.0 + basis / 1e4
    b = bars.copy()
    for col in ("Open", "High", "Low", "Close"):
        b[col] = bars[col].to_numpy() * factor
    names = [f"{sym}@{venues[0]}", f"{sym}@{venues[1]}"]
    panel = pd.concat({names[0]: bars[["Open", "High", "Low", "Close", "Volume"]], names[1]: b[["Open", "High", "Low", "Close", "Volume"]]}, axis=1)
    panel.columns.names = ["symbol", "field"]
    panel.attrs = {"symbols": names, "align": "intersection", "synthetic": {"basis_bps": basis_bps, "half_life": half_life, "seed": seed}}
    return panel
