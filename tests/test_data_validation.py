"""Every bad-input case of the market-data issue: a typed error naming the rule and the
first offending timestamp (or a documented repair with a warning), and nothing cached."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.store import ParquetCache
from workbench.errors import (
    DataValidationError,
    InsufficientHistoryError,
    NoDataError,
    UnknownSymbolError,
)
from workbench.market import DataRepairWarning

from .fakes import FakeSource


def bars(n: int = 6) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC", name="timestamp", unit="ns")
    c = np.linspace(100.0, 105.0, n)
    return pd.DataFrame({"Open": c, "High": c + 1, "Low": c - 1, "Close": c + 0.5, "Volume": 1000.0}, index=idx)


@pytest.fixture
def cache(tmp_path: Path) -> ParquetCache:
    return ParquetCache(tmp_path / "cache")


def cached_files(cache: ParquetCache) -> list[str]:
    return sorted(str(p.relative_to(cache.root)) for p in cache.root.rglob("*.parquet")) if cache.root.exists() else []


def load(frame: pd.DataFrame | None, cache: ParquetCache, symbol: str = "X", **kw: object) -> pd.DataFrame:
    return wb.load_prices(symbol, source=FakeSource({"X": frame}), cache=cache, **kw)


def rejected(frame: pd.DataFrame, cache: ParquetCache, rule: str, ts: str) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        load(frame, cache)
    err = info.value
    assert err.rule == rule
    assert f"[{rule}]" in str(err)
    assert err.timestamp == pd.Timestamp(ts, tz="UTC")
    assert str(pd.Timestamp(ts, tz="UTC")) in str(err)
    assert cached_files(cache) == []  # nothing was written
    return err


def test_nan_price_is_rejected_naming_its_timestamp(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[3, 3] = np.nan
    rejected(d, cache, "finite_prices", "2024-01-04")


def test_infinite_price_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[2, 1] = np.inf
    rejected(d, cache, "finite_prices", "2024-01-03")


def test_zero_price_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[4, [0, 1, 2, 3]] = [0.0, 1.0, 0.0, 0.5]
    rejected(d, cache, "positive_prices", "2024-01-05")


def test_negative_price_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[1, 2] = -1.0
    rejected(d, cache, "positive_prices", "2024-01-02")


def test_high_below_low_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[2, 1] = d.iloc[2, 2] - 0.5
    err = rejected(d, cache, "high_ge_low", "2024-01-03")
    assert "High" in str(err) and "Low" in str(err)


def test_open_outside_range_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[1, 0] = d.iloc[1, 1] + 5
    rejected(d, cache, "open_in_range", "2024-01-02")


def test_close_outside_range_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[5, 3] = d.iloc[5, 2] - 5
    rejected(d, cache, "close_in_range", "2024-01-06")


def test_negative_volume_is_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.iloc[0, 4] = -10.0
    err = rejected(d, cache, "non_negative_volume", "2024-01-01")
    assert "-10.0" in str(err)


def test_conflicting_duplicate_timestamps_are_rejected(cache: ParquetCache) -> None:
    d = bars()
    dup = d.iloc[[2]].copy()
    dup["Close"] += 0.25
    rejected(pd.concat([d, dup]).sort_index(kind="stable"), cache, "duplicate_conflict", "2024-01-03")


def test_identical_duplicate_rows_are_dropped_with_a_warning(cache: ParquetCache) -> None:
    d = bars()
    with pytest.warns(DataRepairWarning, match=r"dropped 1 duplicate bar.*2024-01-03"):
        out = load(pd.concat([d, d.iloc[[2]]]).sort_index(kind="stable"), cache)
    pd.testing.assert_frame_equal(out, d, check_freq=False)


def test_unsorted_index_is_sorted_with_a_warning(cache: ParquetCache) -> None:
    d = bars()
    with pytest.warns(DataRepairWarning, match=r"not sorted.*2024-01-02"):
        out = load(d.iloc[[0, 3, 1, 2, 4, 5]], cache)
    pd.testing.assert_frame_equal(out, d, check_freq=False)


def test_naive_timestamps_are_rejected(cache: ParquetCache) -> None:
    d = bars()
    d.index = d.index.tz_localize(None)
    with pytest.raises(DataValidationError, match=r"\[tz_aware_utc\].*naive.*2024-01-01") as info:
        load(d, cache)
    assert info.value.rule == "tz_aware_utc"
    assert cached_files(cache) == []


def test_naive_timestamps_are_accepted_when_the_time_zone_is_given(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    pd.DataFrame({"Date": ["2024-01-02 09:30", "2024-01-03 09:30"], "Open": [1.0, 2.0], "High": [2.0, 3.0],
                  "Low": [0.5, 1.5], "Close": [1.5, 2.5], "Volume": [10, 20]}).to_csv(path, index=False)  # fmt: skip
    with pytest.raises(DataValidationError, match="naive"):
        wb.load_prices("x", source=wb.get_source(f"file:{path}"))
    out = wb.load_prices("x", source=wb.get_source(f"file:{path}", tz="America/New_York"))
    assert list(out.index) == [pd.Timestamp("2024-01-02 14:30", tz="UTC"), pd.Timestamp("2024-01-03 14:30", tz="UTC")]


def test_empty_download_is_a_no_data_error_not_an_empty_frame(cache: ParquetCache) -> None:
    with pytest.raises(NoDataError, match=r"\[empty_download\].*fake:X:1d"):
        load(bars().iloc[:0], cache)
    assert cached_files(cache) == []
    log = (cache.root / "fake" / "1d" / "X.log.jsonl").read_text()
    assert '"status": "failed"' in log and "empty_download" in log  # the failure is recorded


def test_unknown_symbol_is_rejected(cache: ParquetCache) -> None:
    with pytest.raises(UnknownSymbolError, match=r"unknown_symbol.*'NOPE'"):
        wb.load_prices("NOPE", source=FakeSource({"X": bars()}), cache=cache)
    with pytest.raises(UnknownSymbolError, match="known: BTCUSD, EURUSD, GOOG"):
        wb.load_prices("NOPE", cache=cache)
    assert cached_files(cache) == []


def test_a_date_range_with_no_data_is_a_no_data_error() -> None:
    with pytest.raises(NoDataError, match=r"no_data_in_range.*GOOG.*1990-01-01.*covers 2004-08-19"):
        wb.load_prices("GOOG", start="1990-01-01", end="1990-12-31")


def test_adjusted_and_raw_prices_are_never_mixed(cache: ParquetCache, tmp_path: Path) -> None:
    load(bars(), cache)  # raw prices cached
    before = (cache.root / "fake" / "1d" / "X.parquet").read_bytes()
    adjusted = FakeSource({"X": bars()}, adjusted=True)
    with pytest.raises(DataValidationError, match=r"\[adjustment_mixed\].*adjusted prices asked for but the cache holds raw"):
        wb.load_prices("X", source=adjusted, cache=cache, end="2024-02-01")
    assert (cache.root / "fake" / "1d" / "X.parquet").read_bytes() == before
    path = tmp_path / "both.csv"
    d = bars().reset_index()
    d["Adj Close"] = d["Close"] * 0.98
    d.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"adjustment_mixed.*both Close and 'Adj Close'"):
        wb.load_prices("both", source=wb.get_source(f"file:{path}"))
    raw = wb.load_prices("both", source=wb.get_source(f"file:{path}", adjusted=False))
    adj = wb.load_prices("both", source=wb.get_source(f"file:{path}", adjusted=True))
    assert raw["Close"].tolist() == bars()["Close"].tolist()
    for col in ("Open", "High", "Low", "Close"):  # adjusted means every price, never Close alone
        assert adj[col].to_numpy() == pytest.approx(bars()[col].to_numpy() * 0.98, rel=1e-12)
    assert (raw.attrs["adjusted"], adj.attrs["adjusted"]) == (False, True)


def test_too_little_history_for_what_was_asked(cache: ParquetCache) -> None:
    with pytest.raises(InsufficientHistoryError, match=r"\[min_bars\] X: 6 1d bars .* fewer than the 50 asked for"):
        load(bars(), cache, min_bars=50)


def test_repairs_never_modify_the_callers_frame() -> None:
    d = bars().iloc[[1, 0, 2]]
    before = d.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataRepairWarning)
        wb.validate_ohlcv(d, repair=True)
    pd.testing.assert_frame_equal(d, before)
