"""The offline sample: real prices shipped in ``data/sample/`` with their provenance.

Each symbol's CSV is listed in ``manifest.json`` with its source, licence, the repairs made
when it was normalised, and its SHA-256. The cache keys sample entries by that hash, so an
updated sample file replaces its cached copy automatically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.config import sample_dir
from workbench.errors import DataError, DataValidationError, UnknownSymbolError
from workbench.market import OHLCV_COLUMNS, validate_ohlcv

__all__ = ["SampleSource", "sample_manifest", "sample_prices", "load_series"]


@lru_cache(maxsize=4)
def _manifest(directory: str) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise DataError(f"sample data manifest not found at {path} (set WORKBENCH_DATA_DIR?)")
    return json.loads(path.read_text())


def sample_manifest() -> dict[str, Any]:
    """The provenance and metadata of the offline sample (``data/sample/manifest.json``)."""
    return _manifest(str(sample_dir()))


class SampleSource:
    """:class:`~workbench.market.PriceSource` over the shipped sample files (offline)."""

    name = "sample"
    online = False
    adjusted = False
    cacheable = True

    def symbols(self) -> list[str]:
        return sorted(sample_manifest()["instruments"])

    def metadata(self, symbol: str) -> dict[str, Any]:
        instruments = sample_manifest()["instruments"]
        if symbol not in instruments:
            raise UnknownSymbolError(
                f"[unknown_symbol] unknown symbol {symbol!r} in the offline sample; known: "
                f"{', '.join(sorted(instruments))}"
            )
        return {"symbol": symbol, **instruments[symbol]}

    def native_timeframe(self, symbol: str, timeframe: str | None) -> str:
        return self.metadata(symbol)["timeframe"]

    def upstream(self, symbol: str) -> str:
        return self.metadata(symbol)["sha256"]

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> Iterator[pd.DataFrame]:
        yield sample_prices(symbol)  # the whole file: the cache then serves any range


def sample_prices(symbol: str) -> pd.DataFrame:
    """A sample symbol's whole validated OHLCV file, read from disk (no cache, no network).

    For adapters that need local prices (a tearsheet's benchmark, say): they read them here
    instead of importing :func:`workbench.load_prices`, which sits a layer above them.

    >>> sample_prices("GOOG")["Close"].index[0].isoformat()
    '2004-08-19T00:00:00+00:00'
    """
    meta = SampleSource().metadata(symbol)
    df = pd.read_csv(sample_dir() / meta["file"], index_col=0, dtype={c: "float64" for c in OHLCV_COLUMNS})
    df.index = pd.DatetimeIndex(
        pd.to_datetime(df.index, format="%Y-%m-%dT%H:%M:%SZ", utc=True), name="timestamp"
    )
    return validate_ohlcv(df, name=symbol)


def load_series(name: str) -> pd.DataFrame:
    """A non-OHLCV sample series, verified against its SHA-256 in the manifest.

    - ``"ff3_monthly"``: Fama-French 3 factors (``Mkt-RF, SMB, HML, RF``) as monthly
      **decimal** returns (the file is in percent), 1926-07 onwards;
    - ``"brent_wti_monthly"``: Brent and WTI monthly average prices, USD/bbl.

    Both are labelled by the start of their month (00:00 UTC on the 1st), the workbench's
    period-start convention: a value is known only once its month is over.

    >>> ff = load_series("ff3_monthly")
    >>> list(ff.columns), str(ff.index[0].date())
    (['Mkt-RF', 'SMB', 'HML', 'RF'], '1926-07-01')
    """
    series = sample_manifest().get("series", {})
    if name not in series:
        raise UnknownSymbolError(f"[unknown_symbol] no sample series {name!r}; known: {', '.join(sorted(series))}")
    meta = series[name]
    path = sample_dir() / meta["file"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != meta["sha256"]:
        raise DataValidationError("sample_hash", f"{path} does not match the SHA-256 in manifest.json ({digest[:12]}...)")
    raw = pd.read_csv(path)
    if name == "ff3_monthly":
        index = pd.to_datetime(raw.pop("Date").astype(str), format="%Y%m", utc=True)
        frame = raw.astype("float64") / 100.0
    else:
        index = pd.to_datetime(raw.pop("Date"), format="%Y-%m-%d").dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
        frame = raw.astype("float64")
    frame.index = pd.DatetimeIndex(index, name="timestamp").as_unit("ns")
    frame.attrs = {"name": name, "description": meta.get("description"), "source": "sample", "sha256": digest}
    return frame
