"""The canonical OHLCV schema and its validation.

Schema
------
- Index: a tz-aware UTC :class:`pandas.DatetimeIndex` (``datetime64[ns, UTC]``) named
  ``timestamp``, strictly increasing, no duplicates.
- Columns: float64 ``Open, High, Low, Close, Volume`` (in that order).
- **Bar-stamp convention: a bar is labelled by the start of its period.** A daily bar of
  session date D is stamped ``D 00:00 UTC`` and covers that session; an hourly bar stamped
  ``09:00`` covers [09:00, 10:00). A bar's values are known only once it has closed, so a
  signal computed from bar *t* can first trade at bar *t+1* (at its open).
- Volume may be NaN where the source has no volume (close-only series such as WTI spot);
  such series carry ``Open = High = Low = Close``.

Validation (:func:`validate_ohlcv`) raises :class:`~workbench.errors.DataValidationError`
naming the rule and the first offending timestamp (or row, counting from 0, when the row
has no usable timestamp). With ``repair=True`` two problems are repaired instead, each with
a :class:`DataRepairWarning`: an unsorted index is sorted (stable), and duplicate
timestamps whose rows are identical are dropped. Duplicates whose rows *differ* are always
rejected (``duplicate_conflict``). Naive timestamps are rejected unless a time zone is
given explicitly (``tz="America/New_York"``); aware timestamps in another zone are
converted to UTC (lossless). A missing timestamp (NaT) is an error, never sorted first.

Plausibility (values no market has, usually a unit or parsing error upstream):

- prices above :data:`MAX_PRICE` (1e12, ``max_price=`` to change) are rejected
  (``plausible_prices``);
- bars stamped after now + one bar + :data:`FUTURE_TOLERANCE` (one day: clock skew and
  time zones) are rejected (``no_future_bars``). Synthetic frames
  (``attrs["source"] == "synthetic"``) may lie in the future: they are not market data.

Columns must be numbers (``numeric_values``: ``"1,5"`` or ``"1,234.5"`` strings name the
column and first row); integer (or numeric-string) columns are cast to float64 with a
:class:`DataRepairWarning` saying so.

Timeframes are strings ``<n><unit>`` with ccxt's units: ``m`` minute, ``h`` hour, ``d``
day, ``w`` week (Monday start), ``M`` month (calendar month start): ``"1m"``, ``"5m"``,
``"1h"``, ``"1d"``, ``"1w"``, ``"1M"``. :func:`resample_ohlcv` aggregates to a coarser
timeframe (Open first, High max, Low min, Close last, Volume sum) with bins closed on the
left and labelled by their start, and refuses any source bar that would end after the end
of its bin, so a resampled bar can never contain a price from after its own close.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataValidationError, NoDataError, ParameterError

__all__ = [
    "OHLCV_COLUMNS",
    "MAX_PRICE",
    "FUTURE_TOLERANCE",
    "DataRepairWarning",
    "PriceSource",
    "parse_timeframe",
    "timeframe_offset",
    "timeframe_nanos",
    "validate_ohlcv",
    "float_columns",
    "resample_ohlcv",
]

OHLCV_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]
_PRICES = ["Open", "High", "Low", "Close"]

MAX_PRICE = 1e12
"""Largest plausible price (rule ``plausible_prices``). No instrument trades near it (the
dearest shares are ~1e6, BRK.A ~7e5); above it a price is a unit or parsing error (1e308,
epoch stamps read as prices...). Pass ``max_price=`` to :func:`validate_ohlcv` to change it."""

FUTURE_TOLERANCE = pd.Timedelta(days=1)
"""Slack beyond now + one bar for the ``no_future_bars`` rule: clock skew, and local session
dates that start before the same UTC date (UTC+14 at most)."""


class DataRepairWarning(UserWarning):
    """A documented repair was applied to market data (sorted index, identical duplicates,
    integer columns cast to float64, a date order inferred from a file)."""


_TF = re.compile(r"^([1-9][0-9]*)(m|h|d|w|M)$")
_UNIT_NANOS = {"m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
               "w": 7 * 86_400_000_000_000, "M": 31 * 86_400_000_000_000}  # fmt: skip


def parse_timeframe(timeframe: str) -> tuple[int, str]:
    """Split ``"15m"`` into ``(15, "m")``; raise :class:`DataError` for anything else.

    >>> parse_timeframe("4h")
    (4, 'h')
    """
    m = _TF.match(timeframe) if isinstance(timeframe, str) else None
    if m is None:
        raise DataError(
            f"[timeframe] invalid timeframe {timeframe!r}: expected <n><unit> with unit "
            "m (minute), h (hour), d (day), w (week) or M (month), e.g. '5m', '1h', '1d'"
        )
    return int(m.group(1)), m.group(2)


def timeframe_offset(timeframe: str) -> pd.DateOffset:
    """The pandas offset of one bar of ``timeframe`` (weeks start Monday, months on the 1st)."""
    n, unit = parse_timeframe(timeframe)
    if unit == "w":
        return pd.offsets.Week(n, weekday=0)
    if unit == "M":
        return pd.offsets.MonthBegin(n)
    return pd.tseries.frequencies.to_offset(f"{n}{ {'m': 'min', 'h': 'h', 'd': 'D'}[unit] }")


def timeframe_nanos(timeframe: str) -> int:
    """The (maximum) length of one bar in nanoseconds; months count as 31 days."""
    n, unit = parse_timeframe(timeframe)
    return n * _UNIT_NANOS[unit]


@runtime_checkable
class PriceSource(Protocol):
    """The port every price adapter implements (sample, local files, yfinance, ccxt, synthetic).

    ``name`` keys the cache (e.g. ``"yfinance"``, ``"ccxt-binance"``); ``online`` says
    whether fetching needs the network; ``adjusted`` whether prices are split/dividend
    adjusted. ``fetch`` yields validated OHLCV chunks in time order covering
    ``[start, end]`` (inclusive, UTC; ``None`` means the source's first/last bar); the cache
    commits each chunk as it arrives, so a long download resumes where it stopped.
    """

    name: str
    online: bool
    adjusted: bool

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]: ...

    def metadata(self, symbol: str) -> dict[str, object]: ...


def _first_bad(index: pd.Index, mask: np.ndarray) -> object:
    return index[int(np.argmax(mask))]


def _utc_index(idx: pd.DatetimeIndex, name: str, tz: str | None) -> pd.DatetimeIndex:
    if idx.tz is None:
        if tz is None:
            raise DataValidationError(
                "tz_aware_utc",
                f"{name}: timestamps are naive (first {idx[0]}); pass tz=... to say which "
                "time zone they are in",
                idx[0],
            )
        try:
            idx = idx.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # pytz/zoneinfo errors subclass ValueError
            raise DataValidationError("tz_aware_utc", f"{name}: cannot localize to {tz!r}: {exc}") from exc
    if str(idx.tz) != "UTC":
        idx = idx.tz_convert("UTC")
    return idx.rename("timestamp")


def _as_ns(idx: pd.DatetimeIndex, name: str) -> pd.DatetimeIndex:
    """Nanosecond stamps; a date outside 1677..2262 (what int64 ns holds) is named, not a crash."""
    try:
        return idx.as_unit("ns")
    except pd.errors.OutOfBoundsDatetime:
        bad = idx[(idx < pd.Timestamp.min.tz_localize("UTC")) | (idx > pd.Timestamp.max.tz_localize("UTC"))]
        raise DataValidationError(
            "timestamp_range",
            f"{name}: timestamp {bad[0]} is outside {pd.Timestamp.min:%Y-%m-%d} .. "
            f"{pd.Timestamp.max:%Y-%m-%d} (a far-future bar, or a date or epoch-unit error?)",
            bad[0],
        ) from None


def _repair_order(frame: pd.DataFrame, name: str, repair: bool) -> pd.DataFrame:
    idx = frame.index
    values = idx.asi8
    if len(values) < 2:
        return frame
    step = np.diff(values)
    if (step < 0).any():
        ts = idx[int(np.argmax(step < 0)) + 1]
        if not repair:
            raise DataValidationError("sorted_index", f"{name}: index not sorted at {ts}", ts)
        warnings.warn(
            f"{name}: index not sorted (first out-of-order bar {ts}); sorted it (stable)",
            DataRepairWarning,
            stacklevel=3,
        )
        frame = frame.iloc[np.argsort(values, kind="stable")]
        idx = frame.index
        step = np.diff(idx.asi8)
    if (step == 0).any():
        dup_mask = idx.duplicated(keep=False)
        first = idx[int(np.argmax(dup_mask))]
        dups = frame.loc[dup_mask, OHLCV_COLUMNS]
        # identical rows: every duplicate equals the first row with its timestamp (NaN == NaN)
        firsts = dups.groupby(level=0, sort=False).transform("first")
        same = (dups.eq(firsts) | (dups.isna() & firsts.isna())).all(axis=1)
        if not same.all():
            ts = dups.index[int(np.argmax(~same.to_numpy()))]
            raise DataValidationError(
                "duplicate_conflict",
                f"{name}: duplicate timestamp {ts} with conflicting rows "
                f"{frame.loc[[ts], OHLCV_COLUMNS].to_dict('records')}",
                ts,
            )
        if not repair:
            raise DataValidationError("unique_index", f"{name}: duplicate timestamp {first}", first)
        n = int(idx.duplicated().sum())
        warnings.warn(
            f"{name}: dropped {n} duplicate bar(s) with identical rows (first at {first})",
            DataRepairWarning,
            stacklevel=3,
        )
        frame = frame[~idx.duplicated()]
    return frame


def _row_label(index: pd.Index, i: int) -> str:
    """``row i (timestamp)``: a row without a usable timestamp is still findable."""
    ts = index[i]
    return f"row {i}" if pd.isna(ts) else f"row {i} ({ts})"


def _numeric(frame: pd.DataFrame, col: str, name: str) -> pd.Series:
    """One non-float column as float64, or the ``numeric_values`` error at its first bad cell."""
    values = frame[col]
    if values.dtype.kind == "b":
        raise DataValidationError("numeric_values", f"{name}: column {col} holds booleans, not numbers")
    if values.dtype.kind in "iu":
        return values.astype("float64")
    parsed = pd.to_numeric(values, errors="coerce")
    bad = (parsed.isna() & values.notna()).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raw = values.iloc[i]
        hint = (" (comma decimal or thousands separator? numbers need '.' as the decimal point "
                "and no grouping)") if isinstance(raw, str) and "," in raw else ""  # fmt: skip
        ts = frame.index[i]
        raise DataValidationError(
            "numeric_values",
            f"{name}: column {col} at {_row_label(frame.index, i)} is not a number: {raw!r}{hint}",
            None if pd.isna(ts) else ts,
        )
    return parsed.astype("float64")


def float_columns(frame: pd.DataFrame, columns: list[str], name: str = "prices") -> pd.DataFrame:
    """``frame[columns]`` as float64, or the ``numeric_values`` error naming the first bad cell.

    Float columns pass as they are (the fast path of every validated source). Integer or
    numeric-string columns are cast with one :class:`DataRepairWarning` naming them, so a
    change of type is never silent; anything else (``"1,5"``, ``"n/a"``) is an error.
    """
    sub = frame[columns]
    odd = [c for c, dt in sub.dtypes.items() if dt.kind != "f"]
    if not odd:
        return sub.astype("float64")
    cast = {c: _numeric(sub, c, name) for c in odd}
    kinds = ", ".join(f"{c} ({sub[c].dtype})" for c in odd)
    warnings.warn(f"{name}: cast column(s) {kinds} to float64", DataRepairWarning, stacklevel=3)
    return pd.DataFrame({c: cast.get(c, sub[c]) for c in columns}, index=sub.index).astype("float64")


def _check_timestamps(idx: pd.DatetimeIndex, name: str) -> None:
    """A NaT has no place in time: sorting would silently put it first (``valid_timestamps``)."""
    if idx.hasnans:
        i = int(np.argmax(idx.isna()))
        after = f", after {idx[i - 1]}" if i > 0 and idx[i - 1] is not pd.NaT else ""
        raise DataValidationError(
            "valid_timestamps", f"{name}: timestamp at row {i} is missing (NaT){after}; every bar needs a time"
        )


def _bar_nanos(idx: pd.DatetimeIndex, attrs: dict[str, object]) -> int:
    """One bar's length: the stated timeframe, else the median spacing of ``idx`` (0 for one bar).

    Callers pass only the bars up to now, so future outliers cannot widen their own allowance.
    """
    tf = attrs.get("timeframe")
    if isinstance(tf, str) and _TF.match(tf):
        return timeframe_nanos(tf)
    return int(np.median(np.diff(idx.asi8))) if len(idx) > 1 else 0


def _check_future(idx: pd.DatetimeIndex, attrs: dict[str, object], name: str, now: object) -> None:
    """Bars after now + one bar + :data:`FUTURE_TOLERANCE` cannot have traded yet
    (``no_future_bars``): usually a unit (ms read as s) or date-order error upstream."""
    if attrs.get("source") == "synthetic":
        return
    clock = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    limit = clock.value + FUTURE_TOLERANCE.value
    if int(idx.asi8[-1]) <= limit:  # sorted: the last bar is the latest (the fast path)
        return
    past = idx[: int(np.searchsorted(idx.asi8, limit, side="right"))]
    i = int(np.searchsorted(idx.asi8, limit + _bar_nanos(past, attrs), side="right"))
    if i < len(idx):
        raise DataValidationError(
            "no_future_bars",
            f"{name}: bar {idx[i]} is in the future (now {clock.floor('s')}; allowed: one bar + "
            f"{FUTURE_TOLERANCE}); a timestamp unit or date-order error?",
            idx[i],
        )


def _prices_at(out: pd.DataFrame, ts: object) -> dict[str, float]:
    return {k: float(v) for k, v in out.loc[ts, _PRICES].items()}  # plain floats, no np.float64(...)


def _price_error(out: pd.DataFrame, prices: np.ndarray, name: str, max_price: float) -> DataValidationError:
    """The first broken price rule, in the documented order (finite, positive, plausible)."""
    idx = out.index
    bad = ~np.isfinite(prices).all(axis=1)
    if bad.any():
        ts = _first_bad(idx, bad)
        return DataValidationError("finite_prices", f"{name}: NaN or infinite price at {ts}", ts)
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        ts = _first_bad(idx, bad)
        return DataValidationError(
            "positive_prices", f"{name}: zero or negative price at {ts}: {_prices_at(out, ts)}", ts
        )
    ts = _first_bad(idx, (prices > max_price).any(axis=1))
    return DataValidationError(
        "plausible_prices",
        f"{name}: price above the plausibility bound {max_price:g} at {ts}: {_prices_at(out, ts)} "
        "(a unit or parsing error? pass max_price= to allow it)",
        ts,
    )


def _check_bars(out: pd.DataFrame, name: str, max_price: float) -> None:
    """Price and volume rules on float64 bars, one vectorised pass when everything is fine."""
    idx = out.index
    arr = out.to_numpy()
    o, h, lo, c, v = (arr[:, i] for i in range(5))
    prices = arr[:, :4]
    if not ((prices > 0) & (prices <= max_price)).all():  # NaN and inf fail both comparisons
        raise _price_error(out, prices, name, max_price)
    bad = h < lo
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError(
            "high_ge_low", f"{name}: High {h[bad][0]} < Low {lo[bad][0]} at {ts}", ts
        )
    for col, x, rule in ((0, o, "open_in_range"), (3, c, "close_in_range")):
        bad = (x < lo) | (x > h)
        if bad.any():
            ts = _first_bad(idx, bad)
            raise DataValidationError(
                rule,
                f"{name}: {OHLCV_COLUMNS[col]} {x[bad][0]} outside [Low {lo[bad][0]}, "
                f"High {h[bad][0]}] at {ts}",
                ts,
            )
    bad = v < 0  # NaN volume (unknown) is allowed
    if bad.any():
        ts = _first_bad(idx, bad)
        raise DataValidationError(
            "non_negative_volume", f"{name}: negative volume {v[bad][0]} at {ts}", ts
        )


def validate_ohlcv(
    frame: pd.DataFrame,
    name: str = "prices",
    *,
    tz: str | None = None,
    repair: bool = False,
    max_price: float = MAX_PRICE,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against the OHLCV schema; return it (as float64) if it passes.

    Rules, checked in this order: ``non_empty``, ``columns``, ``tz_aware_utc`` (a
    DatetimeIndex), ``numeric_values``, ``valid_timestamps`` (no NaT), ``tz_aware_utc``
    (aware, or ``tz`` given), ``sorted_index``, ``duplicate_conflict``, ``unique_index``,
    ``no_future_bars``, ``finite_prices``, ``positive_prices``, ``plausible_prices``,
    ``high_ge_low``, ``open_in_range``, ``close_in_range``, ``non_negative_volume``.

    Parameters
    ----------
    frame : DataFrame
        Bars with at least the OHLCV columns and a DatetimeIndex.
    name : str
        Used in error messages (the symbol).
    tz : str, optional
        The time zone of *naive* timestamps; without it naive timestamps are rejected.
    repair : bool
        Sort an unsorted index and drop identical duplicates, each with a
        :class:`DataRepairWarning`, instead of raising. The input is never modified.
    max_price : float
        The ``plausible_prices`` bound (default :data:`MAX_PRICE`, 1e12).
    now : Timestamp, optional
        The clock of the ``no_future_bars`` rule (default: the wall clock, UTC).

    >>> idx = pd.DatetimeIndex(["2020-01-02"], tz="UTC", name="timestamp")
    >>> df = pd.DataFrame({"Open": [1.0], "High": [2.0], "Low": [0.5], "Close": [1.5],
    ...                    "Volume": [10.0]}, index=idx)
    >>> validate_ohlcv(df).shape
    (1, 5)
    """
    if frame is None or len(frame) == 0:
        raise NoDataError(f"{name}: no bars (an empty frame is never valid data)")
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            "columns", f"{name}: missing column(s) {missing}; expected {OHLCV_COLUMNS}"
        )
    if not (max_price > 0):
        raise ParameterError(f"max_price must be > 0, got max_price={max_price!r}")
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise DataValidationError(
            "tz_aware_utc", f"{name}: index must be a DatetimeIndex, got {type(idx).__name__}"
        )
    out = float_columns(frame, OHLCV_COLUMNS, name)
    _check_timestamps(idx, name)
    if idx.tz is None or str(idx.tz) != "UTC" or idx.name != "timestamp" or idx.unit != "ns":
        out = out.set_axis(_as_ns(_utc_index(idx, name, tz), name), axis=0)
    out = _repair_order(out, name, repair)
    _check_future(out.index, frame.attrs, name, now)
    _check_bars(out, name, max_price)
    out.attrs = dict(frame.attrs)
    return out


def _ns(idx: pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds whatever the index's unit (pandas 3 defaults to microseconds)."""
    return idx.as_unit("ns").asi8


def _infer_timeframe_nanos(idx: pd.DatetimeIndex) -> int:
    if len(idx) < 2:
        raise DataError("[timeframe] cannot infer the timeframe of fewer than 2 bars; pass it")
    return int(np.median(np.diff(_ns(idx))))


def resample_ohlcv(frame: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None) -> pd.DataFrame:
    """Aggregate validated bars to a coarser ``timeframe`` without look-ahead.

    Bins are ``[t, t + timeframe)``, labelled ``t`` (the bar-start convention). A source
    bar stamped ``s`` lasts until ``s + source_timeframe``; if that is after the end of its
    bin the call fails (``resample_alignment``) rather than produce a bar whose Close would
    come from after its own end. Bins with no source bars (weekends, holidays) are
    dropped, not filled. Volume is summed (NaN if no source bar has a volume).

    >>> idx = pd.date_range("2024-01-01", periods=4, freq="30min", tz="UTC", name="timestamp")
    >>> bars = pd.DataFrame({"Open": [1.0, 2, 3, 4], "High": [2.0, 3, 4, 5],
    ...                      "Low": [0.5, 1, 2, 3], "Close": [2.0, 3, 4, 5],
    ...                      "Volume": [1.0, 1, 1, 1]}, index=idx)
    >>> resample_ohlcv(bars, "1h", source_timeframe="30m")["Close"].tolist()
    [3.0, 5.0]
    """
    offset = timeframe_offset(timeframe)
    src_tf = source_timeframe or frame.attrs.get("timeframe")
    src_nanos = timeframe_nanos(src_tf) if src_tf else _infer_timeframe_nanos(frame.index)
    if src_tf == timeframe:
        return frame.copy()
    if timeframe_nanos(timeframe) < src_nanos:
        raise DataError(
            f"[resample_direction] cannot resample {src_tf or 'the source'} bars to the finer "
            f"timeframe {timeframe!r}"
        )
    r = frame.resample(offset, closed="left", label="left")
    out = pd.DataFrame(
        {
            "Open": r["Open"].first(),
            "High": r["High"].max(),
            "Low": r["Low"].min(),
            "Close": r["Close"].last(),
            "Volume": r["Volume"].sum(min_count=1),
        }
    )
    counts = r["Close"].count()
    out = out[counts.to_numpy() > 0]
    # every source bar must end no later than the end of the bin it was put in
    bin_start = _ns(out.index)
    bin_end = _ns(out.index + offset)
    pos = np.searchsorted(bin_start, _ns(frame.index), side="right") - 1
    late = _ns(frame.index) + src_nanos > bin_end[pos]
    if src_tf and src_tf[-1] == "M":  # calendar months vary; compare exact month ends
        late = _ns(frame.index + timeframe_offset(src_tf)) > bin_end[pos]
    if late.any():
        ts = frame.index[int(np.argmax(late))]
        raise DataValidationError(
            "resample_alignment",
            f"source bar {ts} ends after its {timeframe} bin {out.index[pos[int(np.argmax(late))]]} "
            "closes; resampling would leak a later price into an earlier bar",
            ts,
        )
    out.index.name = "timestamp"
    out.attrs = {**frame.attrs, "timeframe": timeframe}
    return out
