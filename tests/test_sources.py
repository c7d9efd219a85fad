"""Offline sources: local CSV/Parquet files with column mapping, and synthetic bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb


def test_parquet_file_with_vendor_column_names_maps_to_the_schema(tmp_path: Path) -> None:
    goog = wb.load_prices("GOOG", end="2004-12-31")
    vendor = goog.rename(columns={"Open": "o", "High": "h", "Low": "l", "Close": "c", "Volume": "vol"})
    vendor.index = vendor.index.tz_convert("America/New_York").rename("time")  # aware, not UTC
    (tmp_path / "GOOG.parquet").parent.mkdir(exist_ok=True)
    vendor.to_parquet(tmp_path / "GOOG.parquet")
    src = wb.get_source(f"file:{tmp_path}/{{symbol}}.parquet",
                        columns={"time": "timestamp", "o": "Open", "h": "High", "l": "Low", "c": "Close", "vol": "Volume"})  # fmt: skip
    got = wb.load_prices("GOOG", source=src)
    pd.testing.assert_frame_equal(got, goog, check_freq=False)  # converted back to UTC, same bars
    assert got.attrs["source"] == "file"


def test_close_only_csv_becomes_flat_bars_with_unknown_volume(tmp_path: Path) -> None:
    path = tmp_path / "wti.csv"
    path.write_text("date,close\n2020-01-02,61.17\n2020-01-03,63.0\n")
    got = wb.load_prices("wti", source=wb.get_source(f"file:{path}", tz="UTC"))
    assert got["Open"].equals(got["Close"]) and got["High"].equals(got["Low"]) and got["Volume"].isna().all()


def test_synthetic_bars_are_seeded_valid_and_have_the_asked_volatility() -> None:
    a = wb.synthetic_bars(200_000, "1h", seed=11, sigma=0.3, mu=0.0)
    b = wb.synthetic_bars(200_000, "1h", seed=11, sigma=0.3, mu=0.0)
    c = wb.synthetic_bars(200_000, "1h", seed=12, sigma=0.3, mu=0.0)
    pd.testing.assert_frame_equal(a, b)
    assert not a["Close"].equals(c["Close"])
    wb.validate_ohlcv(a)
    assert (a["Open"].iloc[1:].to_numpy() == a["Close"].iloc[:-1].to_numpy()).all()  # continuous
    logret = np.diff(np.log(a["Close"].to_numpy()))
    annual = logret.std(ddof=1) * np.sqrt(365.25 * 24)
    assert annual == pytest.approx(0.3, rel=0.01)  # 200k draws: standard error ~0.16 %
    assert (a.index[1] - a.index[0]) == pd.Timedelta("1h") and str(a.index.tz) == "UTC"


def test_synthetic_source_through_load_prices() -> None:
    got = wb.load_prices("SYN5", "2021-01-01", "2021-01-31", timeframe="1d", source="synthetic")
    assert len(got) == 31 and got.attrs["source"] == "synthetic"
    with pytest.raises(wb.DataError, match="invalid timeframe"):
        wb.load_prices("SYN5", timeframe="7x", source="synthetic")
