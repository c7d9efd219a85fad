"""Stress tests of the CURRENT book: historical windows replayed, hypothetical shocks, reverse stress.

Every figure is the P&L of today's positions (a :class:`~workbench.risk.exposure.Book`) under
a set of asset returns, P&L = Σ position value × asset return. The book is linear: no
options, no convexity, no financing, no re-hedging during the window.

Conventions
-----------
- **Windows** (:class:`Scenario`) are calendar dates in UTC, both inclusive: from
  ``start`` 00:00 to the end of ``end``'s date. A time of day is refused (one rule for every
  bar size).
- **When a close happens**: under the workbench's bar-stamp convention a bar is labelled by
  the start of its period, so its close happens at stamp + bar length (a daily bar stamped D
  closes at the end of D; a monthly bar stamped 1 Sep at the end of September). The bar
  length is the data's timeframe (``attrs``, as ``wb.load_prices`` sets it, or
  ``timeframe=``), else inferred from the median spacing of the asset's stamps (≥ 27 days:
  one calendar month; ≥ 6 days: 7 days; else the median spacing, at most one day; one day
  for a single bar).
- **Window return** of an asset = its last close on or before the end of the window over
  its last close strictly before the window starts (for daily bars: the close of the last
  session ≤ ``end`` over the close of the last session < ``start``), − 1. An asset with no
  close before the window, or none inside it, is **missing**: reported with the reason, left
  out of the P&L (never counted as a zero return).
- **Hypothetical shocks** (:func:`shock`) give each asset a return: its own shock if given,
  else its asset class's, else 0. Shocks are simple returns, finite and ≥ −1.
- **Reverse stress** (:func:`reverse_stress`) finds the smallest shock size s ≥ 0 at which
  the loss reaches the limit (any larger shock breaches it), in closed form for a linear
  book. ``direction="adverse"`` (default): every long returns −s and every short +s, so
  loss = s × gross; ``"down"``: every asset returns −s, loss = s × net; ``"up"``: every asset
  returns +s, loss = −s × net. ``inf`` when no shock in that direction loses money;
  ``feasible`` is False when the shock would take some price below 0 (s > 1 on an asset
  that falls). The limit is a fraction of equity (``units="fraction"``, default) or an
  amount in the quote currency (``units="value"``); either way a positive loss.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import InvalidValueError, ParameterError
from workbench.market import timeframe_offset
from workbench.risk.exposure import UNKNOWN, Book, close_prices, price_meta
from workbench.trading.enums import AssetClass
from workbench.trading.values import utc_timestamp

__all__ = [
    "Scenario",
    "StressResult",
    "ReverseStress",
    "SCENARIOS",
    "window_returns",
    "replay",
    "stress_test",
    "shock",
    "reverse_stress",
]

_DAY = pd.Timedelta(days=1)


def _date(value: object, name: str) -> pd.Timestamp:
    ts = utc_timestamp(value, name, ParameterError)
    if ts != ts.normalize():
        raise ParameterError(f"{name} must be a date (windows are whole UTC days), got {name}={value!r}")
    return ts


@dataclass(frozen=True)
class Scenario:
    """A named historical window of whole UTC days, ``start`` and ``end`` inclusive."""

    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"scenario name must be a non-empty string, got {self.name!r}")
        start, end = _date(self.start, "start"), _date(self.end, "end")
        if end < start:
            raise ParameterError(f"scenario {self.name!r}: end {end.date()} is before start {start.date()}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("dot-com", "2000-03-10", "2002-10-09", "NASDAQ peak to the bear-market low"),
        Scenario("9/11", "2001-09-10", "2001-09-21", "the last session before the attacks to the week after reopening"),
        Scenario("GFC", "2008-09-01", "2009-03-09", "Lehman month to the S&P 500 low"),
        Scenario("Aug 2011", "2011-07-22", "2011-08-08", "US downgrade and euro-area debt crisis"),
        Scenario("Q4 2018", "2018-09-20", "2018-12-24", "S&P 500 high to the Christmas Eve low"),
    )
}
"""The built-in historical windows, by name."""


@dataclass(frozen=True)
class StressResult:
    """P&L of the book under one scenario or shock.

    ``by_asset`` has ``quantity, value, return, pnl`` per held symbol (plus ``base_time,
    end_time, missing`` for a historical window); ``pnl_frac`` = pnl / equity; ``missing``
    lists symbols left out of the P&L.
    """

    name: str
    pnl: float
    pnl_frac: float
    by_asset: pd.DataFrame
    missing: tuple[str, ...] = ()
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None


@dataclass(frozen=True)
class ReverseStress:
    """The smallest shock size reaching ``loss_limit`` (module conventions)."""

    shock: float
    direction: str
    loss_limit: float
    exposure: float
    feasible: bool


# --- historical windows -----------------------------------------------------------------


def _bar_ends(stamps: pd.DatetimeIndex, timeframe: str | None) -> pd.DatetimeIndex:
    """When each bar closes: stamp + bar length (module conventions)."""
    stamps = stamps.as_unit("ns")  # asi8 below is in the index's own unit (pandas 3 makes "us" too)
    if timeframe:
        return (stamps + timeframe_offset(timeframe)).as_unit("ns")
    if len(stamps) < 2:
        return stamps + _DAY
    step = pd.Timedelta(np.median(np.diff(stamps.asi8)), "ns")
    if step >= pd.Timedelta(days=27):
        return (stamps + timeframe_offset("1M")).as_unit("ns")
    if step >= pd.Timedelta(days=6):
        return stamps + pd.Timedelta(days=7)
    return stamps + min(step, _DAY)


def _timeframes(prices: Any, timeframe: str | Mapping[str, str] | None, symbols: Iterable[str]) -> dict[str, str | None]:
    meta = price_meta(prices)
    out = {}
    for sym in symbols:
        given = timeframe.get(sym) if isinstance(timeframe, Mapping) else timeframe
        out[sym] = given or meta.get(sym, {}).get("timeframe")
    return out


def _one_window(closes: pd.Series, tf: str | None, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    s = closes.dropna()
    ends = _bar_ends(s.index, tf)
    stop = end + _DAY
    before = np.flatnonzero(ends <= start)
    upto = np.flatnonzero(ends <= stop)
    row: dict[str, Any] = {"base_time": pd.NaT, "end_time": pd.NaT, "base_close": math.nan,
                           "end_close": math.nan, "return": math.nan, "missing": None}  # fmt: skip
    if len(before) == 0:
        row["missing"] = "no close before the window starts"
    elif len(upto) == 0 or ends[upto[-1]] <= start:
        row["missing"] = "no close inside the window"
    elif len(upto) == len(ends) and ends[-1] + (ends[-1] - ends[-2] if len(ends) > 1 else _DAY) < stop:
        row["missing"] = f"the data ends at {ends[-1]:%Y-%m-%d}, before the window does"
    if row["missing"] is not None:
        return row
    b, e = before[-1], upto[-1]
    row.update(base_time=ends[b], end_time=ends[e], base_close=float(s.iloc[b]), end_close=float(s.iloc[e]),
               **{"return": float(s.iloc[e] / s.iloc[b] - 1.0)})  # fmt: skip
    return row


def window_returns(prices: Any, start: object, end: object, *,
                   timeframe: str | Mapping[str, str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Each asset's return over the window of dates [start, end] (module conventions).

    Columns ``base_time, end_time`` (when the two closes happened), ``base_close,
    end_close, return`` and ``missing`` (the reason, or None).

    >>> idx = pd.date_range("2024-01-01", periods=5, tz="UTC")
    >>> closes = pd.DataFrame({"A": [100.0, 110.0, 99.0, 125.0, 130.0]}, index=idx)
    >>> float(window_returns(closes, "2024-01-02", "2024-01-04").loc["A", "return"])
    0.25
    """
    start_ts, end_ts = _date(start, "start"), _date(end, "end")
    if end_ts < start_ts:
        raise ParameterError(f"end {end_ts.date()} is before start {start_ts.date()}")
    closes = close_prices(prices)
    tfs = _timeframes(prices, timeframe, closes.columns)
    rows = {c: _one_window(closes[c], tfs[c], start_ts, end_ts) for c in closes.columns}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "symbol"
    return frame


def _scenario(s: Scenario | tuple) -> Scenario:
    if isinstance(s, Scenario):
        return s
    if isinstance(s, tuple) and len(s) in (2, 3):
        return Scenario(*s) if len(s) == 3 else Scenario(f"{s[0]}..{s[1]}", *s)
    raise ParameterError(f"a scenario is a Scenario, (start, end) or (name, start, end), got {s!r}")


def _held(b: Book) -> pd.DataFrame:
    return b.positions.loc[b.positions["quantity"] != 0, ["quantity", "value", "asset_class"]]


def _result(name: str, b: Book, by_asset: pd.DataFrame, **window: Any) -> StressResult:
    missing = tuple(by_asset.index[by_asset["return"].isna()])
    pnl = float(by_asset["pnl"].sum())  # NaN pnl of a missing asset is skipped
    return StressResult(name, pnl, pnl / b.equity, by_asset, missing, **window)


def replay(b: Book, prices: Any, scenario: Scenario | tuple, *,
           timeframe: str | Mapping[str, str] | None = None) -> StressResult:  # fmt: skip
    """Today's positions through one historical window (module conventions)."""
    sc = _scenario(scenario)
    held = _held(b)
    closes = close_prices(prices)
    absent = [s for s in held.index if s not in closes.columns]
    wr = window_returns(prices, sc.start, sc.end, timeframe=timeframe).reindex(held.index)
    wr.loc[absent, "missing"] = "no prices for this symbol"
    by_asset = held[["quantity", "value"]].join(wr[["return", "base_time", "end_time", "missing"]])
    by_asset["missing"] = by_asset["missing"].astype(object).where(by_asset["missing"].notna(), None)
    by_asset.insert(3, "pnl", by_asset["value"] * by_asset["return"])
    return _result(sc.name, b, by_asset, start=sc.start, end=sc.end)


def stress_test(b: Book, prices: Any, scenarios: Iterable[Scenario | tuple] | None = None, *,
                timeframe: str | Mapping[str, str] | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per scenario (default :data:`SCENARIOS`): ``start, end, pnl, pnl_frac,
    n_missing, missing`` (symbols left out, comma-separated)."""
    chosen = list(SCENARIOS.values()) if scenarios is None else [_scenario(s) for s in scenarios]
    rows = []
    for sc in chosen:
        r = replay(b, prices, sc, timeframe=timeframe)
        rows.append({"scenario": sc.name, "start": sc.start, "end": sc.end, "pnl": r.pnl, "pnl_frac": r.pnl_frac,
                     "n_missing": len(r.missing), "missing": ", ".join(r.missing)})  # fmt: skip
    return pd.DataFrame(rows).set_index("scenario")


# --- hypothetical and reverse stress ----------------------------------------------------


def _return(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite return, got {value!r}")
    if float(value) < -1:
        raise ParameterError(f"{name} must be >= -1 (a price cannot fall below 0), got {value!r}")
    return float(value)


def _class_key(value: object) -> str:
    if isinstance(value, str) and value.strip().upper() == UNKNOWN:
        return UNKNOWN
    try:
        return AssetClass.parse(value).value
    except InvalidValueError as exc:
        raise ParameterError(f"asset class shock key: {exc}") from None


def shock(b: Book, assets: Mapping[str, float] | None = None,
          asset_classes: Mapping[object, float] | None = None, *, name: str = "shock") -> StressResult:  # fmt: skip
    """P&L of hypothetical returns: per asset, else per asset class, else 0.

    >>> idx = pd.date_range("2024-01-01", periods=1, tz="UTC")
    >>> from workbench.risk.exposure import book
    >>> b = book({"A": 10, "B": -5}, pd.DataFrame({"A": [10.0], "B": [20.0]}, index=idx), equity=100.0)
    >>> shock(b, {"A": -0.1, "B": 0.05}).pnl
    -15.0
    """
    held = _held(b)
    per_asset = {str(k): _return(v, f"shock[{k!r}]") for k, v in (assets or {}).items()}
    unknown = sorted(set(per_asset) - set(b.positions.index))
    if unknown:
        raise ParameterError(f"shocked symbols not in the book: {', '.join(unknown)} (book: {', '.join(b.positions.index)})")
    per_class = {_class_key(k): _return(v, f"asset class shock[{k!r}]") for k, v in (asset_classes or {}).items()}
    rets = [per_asset.get(s, per_class.get(c, 0.0)) for s, c in zip(held.index, held["asset_class"], strict=True)]
    by_asset = held[["quantity", "value"]].assign(**{"return": rets})
    by_asset["pnl"] = by_asset["value"] * by_asset["return"]
    return _result(name, b, by_asset)


_DIRECTIONS = ("adverse", "down", "up")


def _limit(b: Book, limit: object, units: str) -> float:
    if units not in ("fraction", "value"):
        raise ParameterError(f"units must be 'fraction' (of equity) or 'value', got units={units!r}")
    if isinstance(limit, bool) or not isinstance(limit, numbers.Real) or not (math.isfinite(float(limit)) and limit > 0):
        raise ParameterError(f"limit must be a finite loss > 0 (0.1 = 10% of equity with units='fraction'), got limit={limit!r}")
    return float(limit) * b.equity if units == "fraction" else float(limit)


def reverse_stress(b: Book, limit: float, *, direction: str = "adverse", units: str = "fraction") -> ReverseStress:
    """The smallest shock size whose linear loss reaches ``limit`` (module conventions).

    >>> idx = pd.date_range("2024-01-01", periods=1, tz="UTC")
    >>> from workbench.risk.exposure import book
    >>> b = book({"A": 10, "B": -5}, pd.DataFrame({"A": [10.0], "B": [20.0]}, index=idx), equity=100.0)
    >>> reverse_stress(b, 0.1).shock   # 10 of loss on 200 gross
    0.05
    """
    if direction not in _DIRECTIONS:
        raise ParameterError(f"direction must be one of {', '.join(_DIRECTIONS)}, got direction={direction!r}")
    loss = _limit(b, limit, units)
    v = b.value
    long, short = float(v.clip(lower=0).sum()), float(v.clip(upper=0).sum())
    # loss per unit of shock, and whether some asset falls by the shock
    slope, falls = {"adverse": (long - short, long > 0), "down": (long + short, True),
                    "up": (-(long + short), False)}[direction]  # fmt: skip
    s = loss / slope if slope > 0 else math.inf
    return ReverseStress(s, direction, loss, slope, math.isfinite(s) and (s <= 1 or not falls))
