"""Local CSV and Parquet files a user points at, with column-name mapping.

>>> src = LocalFileSource("prices/{symbol}.csv", columns={"Date": "timestamp",
...                       "Adj Close": "Close"}, tz="America/New_York")  # doctest: +SKIP

``path`` is a file, or a pattern with ``{symbol}``; the format follows the suffix
(``.csv``, ``.csv.gz``, ``.parquet``). ``columns`` maps the file's names to the canonical
``timestamp, Open, High, Low, Close, Volume`` (matching is case-insensitive, so ``date``,
``open`` ... need no mapping). A close-only file (one ``Close`` column) gets
``Open = High = Low = Close`` and NaN volume. Naive timestamps need ``tz``.
Files that carry both ``Close`` and ``Adj Close`` must say which prices they want, never
a mix: ``adjusted=False`` drops ``Adj Close``; ``adjusted=True`` scales Open, High, Low and
Close by ``Adj Close / Close`` (as yfinance's ``auto_adjust`` does); leaving it unsaid is
an error (``adjustment_mixed``).

Reading rules (each failure is one typed line, never a pandas or OS traceback):

- a file that cannot be read is a :class:`~workbench.errors.DataReadError` naming its full
  path: ``file_missing``, ``file_empty`` (0 bytes or no columns), ``file_unreadable`` (a
  directory, no permission, not a CSV/Parquet table);
- numbers must be numbers: ``"1,5"`` or ``"1,234.5"`` is a ``numeric_values`` error naming
  the column and first row (see :func:`workbench.market.float_columns`);
- numeric dates ``D/M/Y`` or ``M/D/Y`` (``/``, ``.`` or ``-``) are read in one order for the
  whole file (``date_order``): ``dayfirst=True/False`` says which; left unsaid, the order is
  inferred from the rows that allow only one (a first field > 12 means day-first, a second
  field > 12 month-first) with a :class:`~workbench.market.DataRepairWarning`, and a file
  whose rows disagree, or where every row could be either, is an error;
- integer (or float) timestamps are epoch times in UTC, their unit inferred from the
  largest magnitude (``epoch_unit``): below 1e11 seconds, 1e14 milliseconds, 1e17
  microseconds, else nanoseconds (each range starts in 1973 and ends after 5000), and
  rows of different magnitudes are an error; 8-digit integers that are all valid
  ``YYYYMMDD`` dates are read as dates;
- text stamps that each name their UTC offset (``2021-03-26T00:00:00+01:00``, ``...Z``)
  are exact whatever the offsets, so a file whose offsets change (across a DST change) is
  read as UTC, ``tz`` or not; a file mixing such stamps with naive ones is a ``timestamps``
  error naming the first naive row (its zone is unsaid).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataReadError, DataValidationError, first_line
from workbench.market import OHLCV_COLUMNS, DataRepairWarning, float_columns, validate_ohlcv

__all__ = ["LocalFileSource", "read_ohlcv_file"]

_CANON = {c.lower(): c for c in ["timestamp", *OHLCV_COLUMNS]}
_TIME_ALIASES = {"date", "datetime", "time", "timestamp", "index"}
_NUMERIC_DATE = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-]\d{2,4}(?!\d)"
_EPOCH_UNITS = ("s", "ms", "us", "ns")
_EPOCH_BOUNDS = np.array([1e11, 1e14, 1e17])  # magnitudes where the next unit starts
# a time (hh:mm[:ss[.f]]) then Z, +01, +0100 or +01:00; a bare date's "-26" is no offset
_UTC_OFFSET = r"\d:\d{2}(?::\d{2}(?:\.\d*)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)\s*$"


def _file_format(path: Path) -> str:
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet") or suffixes.endswith(".pq"):
        return "parquet"
    if ".csv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise DataError(f"[file_format] {path}: expected .csv, .csv.gz or .parquet")


def _read_table(path: Path) -> pd.DataFrame:
    """The file as a raw table; every way a file can be unreadable is one DataReadError
    naming the resolved path (a missing file is not an unknown symbol: the path says why)."""
    where = path.expanduser().resolve()
    if not path.exists():
        raise DataReadError(f"[file_missing] no such file: {where}")
    if path.is_dir():
        raise DataReadError(f"[file_unreadable] {where} is a directory, not a price file")
    fmt = _file_format(path)
    if path.stat().st_size == 0:
        raise DataReadError(f"[file_empty] {where} is empty (0 bytes)")
    try:
        if fmt == "parquet":
            raw = pd.read_parquet(path)
            if isinstance(raw.index, pd.DatetimeIndex):
                raw = raw.reset_index(names=raw.index.name or "timestamp")
            return raw
        return _read_csv(path, where)
    except DataValidationError:
        raise
    except pd.errors.EmptyDataError:
        raise DataReadError(f"[file_empty] {where} has no columns (blank lines only)") from None
    except PermissionError:
        raise DataReadError(f"[file_unreadable] {where}: permission denied") from None
    except OSError as exc:
        raise DataReadError(f"[file_unreadable] {where}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # ParserError, ArrowInvalid are ValueErrors
        first = first_line(exc, type(exc).__name__)
        raise DataReadError(f"[file_unreadable] {where}: not a {fmt} table ({first})") from None


def _date_order(ts: pd.Series, name: str, dayfirst: bool | None) -> bool:
    """Whether numeric D/M dates are day-first, one answer for the whole file (see module)."""
    parts = ts.astype("string").str.extract(_NUMERIC_DATE).astype("float64").to_numpy()
    a, b = parts[:, 0], parts[:, 1]
    day, month = np.flatnonzero(a > 12), np.flatnonzero(b > 12)

    def row(i: int) -> str:
        return f"row {i} {ts.iloc[i]!r}"

    if day.size and month.size:
        raise DataValidationError("date_order", f"{name}: rows disagree on the date order: {row(day[0])} is "
                                  f"day-first, {row(month[0])} month-first")  # fmt: skip
    if dayfirst is not None:
        against = month if dayfirst else day
        if against.size:
            raise DataValidationError("date_order", f"{name}: dayfirst={dayfirst} but {row(against[0])} "
                                      f"is {'month' if dayfirst else 'day'}-first")  # fmt: skip
        return dayfirst
    if day.size or month.size:
        first = int(day[0] if day.size else month[0])
        order = "day-first (D/M/Y)" if day.size else "month-first (M/D/Y)"
        warnings.warn(f"{name}: dates read {order}, inferred from {row(first)}; pass dayfirst= to say so",
                      DataRepairWarning, stacklevel=5)  # fmt: skip
        return bool(day.size)
    either = np.flatnonzero(a != b)
    if either.size:
        raise DataValidationError("date_order", f"{name}: every date reads both ways (day and month <= 12, "
                                  f"e.g. {row(either[0])}); pass dayfirst=True or False")  # fmt: skip
    return False


def _from_epoch(ts: pd.Series, name: str) -> pd.DatetimeIndex:
    """Epoch numbers (UTC by definition) in the unit their magnitude implies (see module)."""
    v = ts.to_numpy(dtype="float64")
    if ts.dtype.kind in "iu" and ((v >= 19_000_101) & (v <= 21_001_231)).all():
        dates = pd.to_datetime(ts.astype("string"), format="%Y%m%d", errors="coerce")
        if dates.notna().all():
            return pd.DatetimeIndex(dates, name="timestamp").tz_localize("UTC")
    mag = np.abs(v)
    rows = np.flatnonzero(np.isfinite(mag) & (mag > 0))
    units = np.searchsorted(_EPOCH_BOUNDS, mag[rows], side="right")
    if units.size and units.min() != units.max():
        i, j = rows[int(np.argmin(units))], rows[int(np.argmax(units))]
        raise DataValidationError(
            "epoch_unit",
            f"{name}: epoch timestamps of different magnitudes: row {i} ({ts.iloc[i]}) reads as "
            f"{_EPOCH_UNITS[units.min()]}, row {j} ({ts.iloc[j]}) as {_EPOCH_UNITS[units.max()]}",
        )
    unit = _EPOCH_UNITS[int(units.max())] if units.size else "s"
    try:
        return pd.DatetimeIndex(pd.to_datetime(ts, unit=unit, utc=True), name="timestamp").as_unit("ns")
    except (ValueError, OverflowError) as exc:  # OutOfBoundsDatetime: beyond 2262 in ns
        raise DataValidationError("epoch_unit", f"{name}: epoch {unit} timestamps out of range: {exc}") from None


def _parse_timestamps(ts: pd.Series, name: str, dayfirst: bool | None) -> pd.DatetimeIndex:
    """The timestamp column as a DatetimeIndex under the reading rules of the module."""
    if ts.dtype.kind in "iuf":
        return _from_epoch(ts, name)
    text = ts.dropna()
    try:
        if len(text) and re.match(_NUMERIC_DATE, str(text.iloc[0])):  # a file keeps one format
            return _numeric_dates(ts, name, dayfirst)
        return pd.DatetimeIndex(_to_datetime(ts, name), name="timestamp")
    except DataValidationError:  # date_order: already named
        raise
    except (ValueError, TypeError) as exc:
        raise DataValidationError("timestamps", f"{name}: unparseable timestamp: {exc}") from exc


def _to_datetime(ts: pd.Series, name: str, **kwargs: object) -> pd.Series:
    """``pd.to_datetime`` (format mixed); if pandas refuses mixed time zones and every stamp
    names its own offset, the same stamps read with ``utc=True`` (exact: see module).

    Only tried after a failure, so files with one offset (or none) pay nothing extra.
    """
    try:
        return pd.to_datetime(ts, format="mixed", **kwargs)
    except ValueError:
        if not _all_offsets(ts, name):
            raise
    return pd.to_datetime(ts, format="mixed", utc=True, **kwargs)


def _all_offsets(ts: pd.Series, name: str) -> bool:
    """True if every stamp ends in a UTC offset, False if none does; a mix is named."""
    text = ts.dropna().astype("string")
    has = text.str.contains(_UTC_OFFSET, regex=True).to_numpy(dtype=bool)
    if has.all() or not has.any():
        return bool(has.size and has.all())
    naive, aware = int(np.argmin(has)), int(np.argmax(has))

    def row(i: int) -> str:
        return f"row {text.index[i]} {text.iloc[i]!r}"

    raise DataValidationError("timestamps", f"{name}: {row(naive)} has no UTC offset but {row(aware)} "
                              "has one; give every row an offset (or none, and pass tz=)")  # fmt: skip


def _numeric_dates(ts: pd.Series, name: str, dayfirst: bool | None) -> pd.DatetimeIndex:
    """D/M/Y or M/D/Y dates in one order; other rows (ISO...) never get ``dayfirst``, which
    would read ``2020-01-07`` as 1 July."""
    first = _date_order(ts, name, dayfirst)
    numeric = ts.astype("string").str.match(_NUMERIC_DATE).fillna(False).to_numpy(dtype=bool)
    if numeric.all():
        return pd.DatetimeIndex(_to_datetime(ts, name, dayfirst=first), name="timestamp")
    parts = [_to_datetime(ts[numeric], name, dayfirst=first), _to_datetime(ts[~numeric], name)]
    return pd.DatetimeIndex(pd.concat(parts).reindex(ts.index), name="timestamp")


def _adjust(df: pd.DataFrame, adj: pd.Series, name: str) -> pd.DataFrame:
    """Open, High, Low and Close scaled by Adj Close / Close (yfinance's ``auto_adjust``)."""
    prices = [c for c in ("Open", "High", "Low", "Close") if c in df.columns]
    if "Close" not in prices:
        raise DataValidationError("columns", f"{name}: an Adj Close column needs a Close column to adjust")
    num = float_columns(df.assign(**{"Adj Close": adj}), [*prices, "Adj Close"], name)
    ratio = num["Adj Close"] / num["Close"]
    return df.assign(**{c: num[c] * ratio for c in prices})


def _renames(raw: pd.DataFrame, mapping: Mapping[str, str]) -> dict[str, str]:
    """File column -> canonical name: the mapping first, then case-insensitive matches."""
    targets = list(mapping.values())
    renamed: dict[str, str] = {}
    for col in raw.columns:
        if col in mapping:
            renamed[col] = mapping[col]
        elif str(col).lower() in _CANON and _CANON[str(col).lower()] not in targets:
            renamed[col] = _CANON[str(col).lower()]
        elif str(col).lower() in _TIME_ALIASES and "timestamp" not in targets:
            renamed[col] = "timestamp"
    return renamed


def _read_csv(path: Path, where: object) -> pd.DataFrame:
    """A CSV whose rows may end in a delimiter (``...,10,``), but never carry more values than
    the header names: pandas would otherwise turn the first column into the index, or drop
    the extra values, and shift every field silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            return pd.read_csv(path, index_col=False)
        except pd.errors.ParserWarning:
            raise DataValidationError(
                "column_count", f"{where}: a row has more values than the header has columns"
            ) from None


def read_ohlcv_file(
    path: str | Path,
    *,
    columns: Mapping[str, str | None] | None = None,
    tz: str | None = None,
    adjusted: bool | None = None,
    name: str | None = None,
    dayfirst: bool | None = None,
) -> pd.DataFrame:
    """Read one CSV/Parquet file into a validated OHLCV frame (repairs warn, see market).

    ``dayfirst`` fixes the order of numeric ``D/M/Y`` dates; ``None`` infers it (module notes).
    """
    path = Path(path)
    raw = _read_table(path)
    name = name or path.stem
    mapping = {k: v for k, v in (columns or {}).items() if v is not None}
    raw = raw.drop(
        columns=[k for k, v in (columns or {}).items() if v is None and k in raw.columns]
    )
    if list(mapping.values()).count("Close") > 1:
        raise DataValidationError(
            "adjustment_mixed", f"{name}: several columns mapped to Close: {mapping}"
        )
    adj_cols = [c for c in raw.columns if str(c).lower().replace("_", " ") == "adj close" and c not in mapping]
    if adj_cols and adjusted is None:
        raise DataValidationError(
            "adjustment_mixed",
            f"{name}: the file has both Close and {adj_cols[0]!r}; choose adjusted=False (raw, "
            f"drops {adj_cols[0]!r}) or adjusted=True (OHLC scaled by Adj Close / Close)",
        )
    adj = raw.pop(adj_cols[0]) if adj_cols else None
    df = raw.rename(columns=_renames(raw, mapping))
    df = df.loc[:, ~df.columns.duplicated()]
    if "timestamp" not in df.columns:
        raise DataValidationError(
            "columns", f"{name}: no timestamp column; map one with columns={{...: 'timestamp'}}"
        )
    df.index = _parse_timestamps(df.pop("timestamp"), name, dayfirst)
    if adj is not None and adjusted:
        df = _adjust(df, adj.set_axis(df.index), name)
    if "Close" in df.columns and not {"Open", "High", "Low"} & set(df.columns):
        df["Close"] = float_columns(df, ["Close"], name)["Close"]  # a bad cell is named as Close
        for c in ("Open", "High", "Low"):
            df[c] = df["Close"]
        df["Volume"] = df.get("Volume", np.nan)
    elif "Volume" not in df.columns and {"Open", "High", "Low", "Close"} <= set(df.columns):
        df["Volume"] = np.nan
    out = validate_ohlcv(df, name=name, tz=tz, repair=True)
    out.attrs.update({"symbol": name, "adjusted": bool(adjusted), "file": str(path)})
    return out


class LocalFileSource:
    """:class:`~workbench.market.PriceSource` over local CSV/Parquet files (offline).

    Parameters
    ----------
    path : str or Path
        One file, or a pattern containing ``{symbol}``.
    columns : mapping, optional
        File column name -> canonical name (``timestamp, Open, High, Low, Close, Volume``).
    tz : str, optional
        Time zone of naive timestamps (required if the file has naive timestamps).
    timeframe : str
        The bars' timeframe (default ``"1d"``).
    adjusted : bool, optional
        For files with an ``Adj Close`` column: raw (False) or adjusted (True) prices.
    dayfirst : bool, optional
        Numeric ``D/M/Y`` (True) or ``M/D/Y`` (False) dates; ``None`` infers the order.
    """

    online = False
    cacheable = False  # the file is already local; reading it is the cache
    case_sensitive = True  # symbols fill {symbol} in file names

    def __init__(self, path: str | Path, *, columns: Mapping[str, str | None] | None = None, tz: str | None = None,
                 timeframe: str = "1d", adjusted: bool | None = None, dayfirst: bool | None = None) -> None:  # fmt: skip
        self.path = str(path)
        self.columns = {k: v for k, v in (columns or {}).items()}
        self.tz = tz
        self.timeframe = timeframe
        self.adjusted = adjusted
        self.dayfirst = dayfirst
        self.name = "file"

    def _file(self, symbol: str) -> Path:
        path = self.path.format(symbol=symbol) if "{symbol}" in self.path else self.path
        return Path(path).expanduser()

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        return self.timeframe

    def metadata(self, symbol: str) -> dict[str, object]:
        return {"symbol": symbol, "name": str(self._file(symbol)), "asset_class": "EQUITY", "currency": "USD",
                "lot_size": 1.0, "tick_size": 0.01, "adjusted": self.adjusted, "timeframe": self.timeframe}  # fmt: skip

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]:
        yield read_ohlcv_file(
            self._file(symbol),
            columns=self.columns,
            tz=self.tz,
            adjusted=self.adjusted,
            name=symbol,
            dayfirst=self.dayfirst,
        )
