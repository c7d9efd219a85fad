"""The offline sample: real prices shipped in ``data/sample/`` with their provenance.

Each symbol's CSV is listed in ``manifest.json`` with its source, licence, the repairs made
when it was normalised, and its SHA-256. The cache keys sample entries by that hash, so an
updated sample file replaces its cached copy automatically.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.config import sample_dir
from workbench.errors import DataError, UnknownSymbolError
from workbench.market import OHLCV_COLUMNS, validate_ohlcv

__all__ = ["SampleSource", "sample_manifest"]


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
        meta = self.metadata(symbol)
        path = sample_dir() / meta["file"]
        df = pd.read_csv(path, index_col=0, dtype={c: "float64" for c in OHLCV_COLUMNS})
        df.index = pd.DatetimeIndex(
            pd.to_datetime(df.index, format="%Y-%m-%dT%H:%M:%SZ", utc=True), name="timestamp"
        )
        yield validate_ohlcv(df, name=symbol)  # the whole file: the cache then serves any range
