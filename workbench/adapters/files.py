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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.errors import DataError, DataValidationError, UnknownSymbolError
from workbench.market import OHLCV_COLUMNS, validate_ohlcv

__all__ = ["LocalFileSource", "read_ohlcv_file"]

_CANON = {c.lower(): c for c in ["timestamp", *OHLCV_COLUMNS]}
_TIME_ALIASES = {"date", "datetime", "time", "timestamp", "index"}


def read_ohlcv_file(
    path: str | Path,
    *,
    columns: Mapping[str, str | None] | None = None,
    tz: str | None = None,
    adjusted: bool | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Read one CSV/Parquet file into a validated OHLCV frame (repairs warn, see market)."""
    path = Path(path)
    if not path.exists():
        raise UnknownSymbolError(f"[unknown_symbol] no such file: {path}")
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".parquet") or suffixes.endswith(".pq"):
        raw = pd.read_parquet(path)
        if isinstance(raw.index, pd.DatetimeIndex):
            raw = raw.reset_index(names=raw.index.name or "timestamp")
    elif ".csv" in suffixes or ".txt" in suffixes:
        raw = pd.read_csv(path)
    else:
        raise DataError(f"[file_format] {path}: expected .csv, .csv.gz or .parquet")
    name = name or path.stem
    mapping = {k: v for k, v in (columns or {}).items() if v is not None}
    raw = raw.drop(
        columns=[k for k, v in (columns or {}).items() if v is None and k in raw.columns]
    )
    targets = list(mapping.values())
    if targets.count("Close") > 1:
        raise DataValidationError(
            "adjustment_mixed", f"{name}: several columns mapped to Close: {mapping}"
        )
    renamed: dict[str, str] = {}
    for col in raw.columns:
        if col in mapping:
            renamed[col] = mapping[col]
        elif str(col).lower() in _CANON and _CANON[str(col).lower()] not in targets:
            renamed[col] = _CANON[str(col).lower()]
        elif str(col).lower() in _TIME_ALIASES and "timestamp" not in targets:
            renamed[col] = "timestamp"
    adj_cols = [c for c in raw.columns if str(c).lower().replace("_", " ") == "adj close" and c not in mapping]
    if adj_cols:
        if adjusted is None:
            raise DataValidationError(
                "adjustment_mixed",
                f"{name}: the file has both Close and {adj_cols[0]!r}; choose adjusted=False (raw, "
                f"drops {adj_cols[0]!r}) or adjusted=True (OHLC scaled by Adj Close / Close)",
            )
        adj = raw.pop(adj_cols[0]).astype("float64")
    df = raw.rename(columns=renamed)
    if adj_cols and adjusted:
        ratio = adj.to_numpy() / df["Close"].to_numpy(dtype="float64")
        for c in ("Open", "High", "Low", "Close"):
            df[c] = df[c].to_numpy(dtype="float64") * ratio
    df = df.loc[:, ~df.columns.duplicated()]
    if "timestamp" not in df.columns:
        raise DataValidationError(
            "columns", f"{name}: no timestamp column; map one with columns={{...: 'timestamp'}}"
        )
    ts = df.pop("timestamp")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(ts, utc=False, format="mixed"), name="timestamp")
    except (ValueError, TypeError) as exc:
        raise DataValidationError("timestamps", f"{name}: unparseable timestamp: {exc}") from exc
    df.index = index
    if "Close" in df.columns and not {"Open", "High", "Low"} & set(df.columns):
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
    """

    online = False
    cacheable = False  # the file is already local; reading it is the cache
    case_sensitive = True  # symbols fill {symbol} in file names

    def __init__(self, path: str | Path, *, columns: Mapping[str, str | None] | None = None, tz: str | None = None,
                 timeframe: str = "1d", adjusted: bool | None = None) -> None:  # fmt: skip
        self.path = str(path)
        self.columns = {k: v for k, v in (columns or {}).items()}
        self.tz = tz
        self.timeframe = timeframe
        self.adjusted = adjusted
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
        )
