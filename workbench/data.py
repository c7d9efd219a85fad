"""Offline sample prices: the real files normalised into ``data/sample/``.

``load_prices("GOOG")`` returns one validated OHLCV frame (see :mod:`workbench.market`);
``load_prices(["SPX", "IXIC"])`` returns a panel with ``(symbol, field)`` columns aligned
on the *intersection* of the calendars by default (``align="union"`` keeps every
timestamp and leaves the gaps visible as NaN; nothing is forward-filled).

Each frame carries its instrument metadata in ``frame.attrs``: symbol, name, asset class,
currency, lot and tick size, timeframe, ``adjusted`` and the data's SHA-256.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.config import sample_dir
from workbench.errors import DataError, NoDataError, UnknownSymbolError
from workbench.market import OHLCV_COLUMNS, validate_ohlcv
from workbench.trading.enums import AssetClass
from workbench.trading.values import Instrument, utc_timestamp

__all__ = ["load_prices", "sample_symbols", "sample_manifest", "instrument_for"]


@lru_cache(maxsize=4)
def _manifest(directory: str) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise DataError(f"sample data manifest not found at {path} (set WORKBENCH_DATA_DIR?)")
    return json.loads(path.read_text())


def sample_manifest() -> dict[str, Any]:
    """The provenance and metadata of the offline sample (``data/sample/manifest.json``)."""
    return _manifest(str(sample_dir()))


def sample_symbols() -> list[str]:
    """Symbols with OHLCV bars in the offline sample."""
    return sorted(sample_manifest()["instruments"])


def _meta(symbol: str) -> dict[str, Any]:
    instruments = sample_manifest()["instruments"]
    key = symbol.strip().upper() if isinstance(symbol, str) else symbol
    if key not in instruments:
        raise UnknownSymbolError(
            f"unknown symbol {symbol!r} in the offline sample; known: {', '.join(sorted(instruments))}"
        )
    return {"symbol": key, **instruments[key]}


def instrument_for(symbol: str) -> Instrument:
    """The :class:`Instrument` for a sample symbol (lot size, tick size, currency...)."""
    m = _meta(symbol)
    return Instrument(
        ticker=m["symbol"],
        exchange=m["exchange"],
        asset_class=AssetClass.parse(m["asset_class"]),
        tick_size=m["tick_size"],
        lot_size=m["lot_size"],
        currency=m["currency"],
    )


@lru_cache(maxsize=32)
def _read(path: str) -> pd.DataFrame:
    df = pd.read_csv(path, index_col=0, dtype={c: "float64" for c in OHLCV_COLUMNS})
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, format="%Y-%m-%dT%H:%M:%SZ", utc=True), name="timestamp")
    return validate_ohlcv(df, name=Path(path).stem)


def _bound(value: object, name: str) -> pd.Timestamp | None:
    return None if value is None else utc_timestamp(value, name, DataError)


def _one(symbol: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    meta = _meta(symbol)
    full = _read(str(sample_dir() / meta["file"]))
    frame = full.loc[start:end].copy() if (start is not None or end is not None) else full.copy()
    if frame.empty:
        raise NoDataError(
            f"{meta['symbol']}: no bars between {start} and {end}; the sample covers "
            f"{full.index[0]} .. {full.index[-1]}"
        )
    frame.attrs = {k: v for k, v in meta.items() if k not in ("source", "repairs")}
    frame.attrs["source"] = "sample"
    return frame


def load_prices(
    symbols: str | list[str] | tuple[str, ...],
    start: object = None,
    end: object = None,
    align: str = "intersection",
) -> pd.DataFrame:
    """Validated OHLCV bars from the offline sample.

    Parameters
    ----------
    symbols : str or list of str
        One symbol gives an OHLCV frame; several give a ``(symbol, field)`` panel.
    start, end : date-like, optional
        Inclusive bounds; naive values are read as UTC.
    align : {"intersection", "union"}
        Panel calendar policy: common timestamps only, or all of them with NaN gaps.

    >>> import workbench as wb
    >>> wb.load_prices("GOOG", start="2005-01-01", end="2005-01-31").shape
    (20, 5)
    """
    s, e = _bound(start, "start"), _bound(end, "end")
    if s is not None and e is not None and s > e:
        raise DataError(f"start {s} is after end {e}")
    if isinstance(symbols, str):
        return _one(symbols, s, e)
    symbols = list(symbols)
    if not symbols:
        raise DataError("no symbols given")
    if align not in ("intersection", "union"):
        raise DataError(f"align must be 'intersection' or 'union', got {align!r}")
    frames = {sym.strip().upper(): _one(sym, s, e) for sym in symbols}
    panel = pd.concat(frames, axis=1, join="inner" if align == "intersection" else "outer", sort=True)
    panel.columns.names = ["symbol", "field"]
    if panel.empty:
        raise NoDataError(f"symbols {symbols} share no timestamps between {s} and {e}")
    panel.attrs = {"symbols": list(frames), "align": align, "source": "sample"}
    return panel
