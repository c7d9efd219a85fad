"""Seeded synthetic OHLCV bars (geometric random walk) at any frequency and length.

Used for scale tests and benchmarks. Bars are continuous (each Open is the previous
Close), High/Low extend beyond max/min(Open, Close) by a half-normal excursion, and
Volume is exponential with mean 1,000. The same ``(seed, start, timeframe, n)`` always
gives the same bars. 10 million bars take about a second and ~0.6 GB.

No bar is stamped after :data:`LAST_STAMP` (2200-01-01 UTC): pandas' nanosecond stamps
end in April 2262, and the margin keeps "one bar later" and resampling arithmetic inside
them. An explicit request that would pass it (``n`` bars, or an ``end``) is a
:class:`~workbench.errors.ParameterError` naming the limit; the source's default length
(100,000 bars) is shortened to what fits, so a daily series from 2020 has 65,745 bars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import numpy as np
import pandas as pd

from workbench.errors import DataError, ParameterError
from workbench.market import parse_timeframe, timeframe_nanos, timeframe_offset
from workbench.trading.values import utc_timestamp

__all__ = ["synthetic_bars", "SyntheticSource", "two_venue_quotes", "LAST_STAMP"]

_YEAR_NANOS = 365.25 * 86_400e9
LAST_STAMP = pd.Timestamp("2200-01-01", tz="UTC")  # no synthetic bar after this (module notes)
DEFAULT_START = pd.Timestamp("2020-01-01", tz="UTC")
DEFAULT_BARS = 100_000
_LIMIT = f"LAST_STAMP {LAST_STAMP:%Y-%m-%d} (pandas stamps end {pd.Timestamp.max:%Y-%m-%d})"


def _first(start: pd.Timestamp, timeframe: str) -> pd.Timestamp:
    """The first bar's stamp: ``start``, rolled to a Monday / the 1st for weeks and months
    (not past :data:`LAST_STAMP`: rolling a stamp near 2262 would overflow; it is refused)."""
    if parse_timeframe(timeframe)[1] in ("m", "h", "d") or start > LAST_STAMP:
        return start
    return timeframe_offset(timeframe).rollforward(start)


def _room(first: pd.Timestamp, timeframe: str) -> int:
    """How many bars from ``first`` end by :data:`LAST_STAMP` (0 if ``first`` is after it).

    Months count as 31 days (:func:`timeframe_nanos`), so the answer never overstates.
    Integer arithmetic on the stamps: the bars themselves are never built to find out.
    """
    if first > LAST_STAMP:  # compared first: a stamp past 2262 has no nanosecond value
        return 0
    return (LAST_STAMP.value - first.value) // timeframe_nanos(timeframe) + 1


def _check_room(first: pd.Timestamp, n: int, timeframe: str) -> None:
    """A ParameterError naming the limit, before a bar past pandas' range is ever built."""
    fits = _room(first, timeframe)
    if n <= fits:
        return
    if fits == 0:
        raise ParameterError(f"[synthetic] the first bar {first} is after {_LIMIT}; start earlier")
    raise ParameterError(f"[synthetic] {n:,} {timeframe} bars from {first} would run past {_LIMIT}; "
                         f"at most {fits:,} fit from that start (ask for fewer, or an end by then)")  # fmt: skip


def _index(first: pd.Timestamp, n: int, timeframe: str) -> pd.DatetimeIndex:
    return pd.date_range(first, periods=n, freq=timeframe_offset(timeframe), name="timestamp", unit="ns")


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
    first = _first(utc_timestamp(start, "start", DataError), timeframe)
    _check_room(first, int(n), timeframe)
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
        index=_index(first, int(n), timeframe),
        columns=["Open", "High", "Low", "Close", "Volume"],
        copy=False,
    )
    frame.attrs = {"symbol": f"SYN{seed}", "source": "synthetic", "timeframe": timeframe, "adjusted": False,
                   "asset_class": "CRYPTO", "currency": "USD", "lot_size": 1.0, "tick_size": 0.01}  # fmt: skip
    return frame


class SyntheticSource:
    """A :class:`~workbench.market.PriceSource` of seeded GBM bars; symbol ``"SYN<seed>"``.

    Never cached (regenerating is cheaper than reading). ``start`` defaults to
    2020-01-01 and ``end`` to ``start + bars`` bars; ``bars`` left unset is 100,000 or as
    many as end by :data:`LAST_STAMP` (a default must always work), while an explicit
    ``bars`` or ``end`` that cannot fit is a :class:`~workbench.errors.ParameterError`.
    Other symbols than ``SYN<n>`` get a seed from the SHA-256 of their name (``hash()``
    changes with every process, so it would not be seeded).
    """

    name = "synthetic"
    online = False
    adjusted = False
    cacheable = False

    def __init__(self, bars: int | None = None, **params: float) -> None:
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
        start = start or DEFAULT_START
        yield synthetic_bars(self._length(start, end, timeframe), timeframe, start=start,
                             seed=_seed(symbol), **self.params)  # fmt: skip

    def _length(self, start: pd.Timestamp, end: pd.Timestamp | None, timeframe: str) -> int:
        """Bars to cover ``[start, end]``, else ``bars``, else the default cut to what fits."""
        if end is not None and end > LAST_STAMP:  # before any arithmetic: 3000-01-01 has no ns value
            raise ParameterError(f"[synthetic] end {end} is after {_LIMIT}; end earlier")
        if end is not None:
            return int((end - start).value // timeframe_nanos(timeframe)) + 1
        if self.bars is not None:
            return self.bars
        return max(1, min(DEFAULT_BARS, _room(_first(start, timeframe), timeframe)))  # 1: a start past the limit is named


def _seed(symbol: str) -> int:
    """``SYN<n>`` is seed n; any other symbol a stable seed from the SHA-256 of its name."""
    digits = symbol.upper().removeprefix("SYN")
    if digits.isdigit():
        return int(digits)
    return int.from_bytes(hashlib.sha256(symbol.encode("utf-8", "surrogatepass")).digest()[:4], "big") % 2**31


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
