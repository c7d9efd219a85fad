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
    DataReadError,
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


# -- issue 9: every rule named ---------------------------------------------------------------

def csv(tmp_path: Path, dates: list[object], *, opens: list[str] | None = None, name: str = "x") -> Path:
    """A small CSV with the given timestamp column (and, optionally, raw Open cells)."""
    opens = opens or ["1.5"] * len(dates)
    rows = [f'{d},"{o}",2.0,1.0,1.5,10.0' for d, o in zip(dates, opens, strict=True)]
    path = tmp_path / f"{name}.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n")
    return path


def read(path: Path, **kw: object) -> pd.DataFrame:
    return wb.load_prices(path.stem, source=wb.get_source(f"file:{path}", **kw))


def utc(*days: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d, tz="UTC") for d in days]


def test_a_missing_timestamp_is_an_error_not_sorted_first(cache: ParquetCache) -> None:
    d = bars()
    d.index = d.index.insert(2, pd.NaT).delete(3)  # row 2 has no time
    with pytest.raises(DataValidationError, match=r"^\[valid_timestamps\] X: timestamp at row 2 is missing \(NaT\)"):
        load(d, cache)
    assert cached_files(cache) == []


def test_bars_stamped_in_the_future_are_rejected() -> None:
    now = pd.Timestamp("2024-01-03 12:00", tz="UTC")
    d = bars()  # daily bars 2024-01-01 .. 01-06
    wb.validate_ohlcv(d.iloc[:5], now=now)  # 01-05: within one bar + one day of now
    with pytest.raises(DataValidationError, match=r"^\[no_future_bars\] prices: bar 2024-01-06 .* in the future") as info:
        wb.validate_ohlcv(d, now=now)
    assert info.value.timestamp == pd.Timestamp("2024-01-06", tz="UTC")
    later = d.set_axis(d.index + pd.DateOffset(years=200))  # the wall clock by default
    with pytest.raises(DataValidationError, match="no_future_bars"):
        wb.validate_ohlcv(later)


@pytest.mark.parametrize("price", [1e308, 2e12])
def test_prices_no_market_has_are_rejected(cache: ParquetCache, price: float) -> None:
    d = bars()
    d.iloc[3, :4] = price
    err = rejected(d, cache, "plausible_prices", "2024-01-04")
    assert "bound 1e+12" in str(err) and f"'High': {price!r}" in str(err)
    assert wb.validate_ohlcv(d, max_price=1e309)["High"].max() == price  # the bound is a keyword


def test_integer_columns_are_cast_with_a_warning() -> None:
    d = bars().astype({"Volume": "int64", "Open": "int64"})
    with pytest.warns(DataRepairWarning, match=r"cast column\(s\) Open \(int64\), Volume \(int64\) to float64"):
        out = wb.validate_ohlcv(d)
    assert (out.dtypes == "float64").all()


@pytest.mark.parametrize("cell", ["1,5", "1,234.5", "12 USD"])
def test_a_value_that_is_not_a_number_names_the_column_and_row(tmp_path: Path, cell: str) -> None:
    path = csv(tmp_path, ["2020-01-02", "2020-01-03"], opens=["1.5", cell])
    with pytest.raises(DataValidationError, match=rf"^\[numeric_values\] x: column Open at row 1 .*2020-01-03.* {cell!r}"):
        read(path, tz="UTC")


@pytest.mark.parametrize(
    ("dates", "order", "expected"),
    [
        (["05/01/2020", "13/01/2020"], "day-first", ("2020-01-05", "2020-01-13")),
        (["01/05/2020", "01/13/2020"], "month-first", ("2020-01-05", "2020-01-13")),
        (["05.01.2020 09:30", "13.01.2020 09:30"], "day-first", ("2020-01-05 09:30", "2020-01-13 09:30")),
    ],
)
def test_the_date_order_is_inferred_from_unambiguous_rows(tmp_path: Path, dates: list[str], order: str,
                                                          expected: tuple[str, str]) -> None:  # fmt: skip
    with pytest.warns(DataRepairWarning, match=rf"dates read {order} .*, inferred from row 1"):
        got = read(csv(tmp_path, dates), tz="UTC")
    assert list(got.index) == utc(*expected)


@pytest.mark.parametrize(
    ("dates", "kw", "message"),
    [
        (["13/01/2020", "01/14/2020"], {}, r"rows disagree on the date order: row 0 '13/01/2020' is day-first, row 1"),
        (["01/02/2020", "01/03/2020"], {}, r"every date reads both ways .* row 0 '01/02/2020'.*pass dayfirst="),
        (["01/02/2020", "13/02/2020"], {"dayfirst": False}, r"dayfirst=False but row 1 '13/02/2020' is day-first"),
    ],
)
def test_dates_in_no_single_order_are_rejected(tmp_path: Path, dates: list[str], kw: dict, message: str) -> None:
    with pytest.raises(DataValidationError, match=r"^\[date_order\] x: " + message) as info:
        read(csv(tmp_path, dates), tz="UTC", **kw)
    assert info.value.rule == "date_order"


def test_an_explicit_date_order_reads_ambiguous_dates_silently(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataRepairWarning)
        got = read(csv(tmp_path, ["01/02/2020", "01/03/2020"]), tz="UTC", dayfirst=True)
    assert list(got.index) == utc("2020-02-01", "2020-03-01")


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_timestamps_get_the_unit_their_magnitude_implies(tmp_path: Path, unit: str, scale: int) -> None:
    stamps = [1_577_836_800 * scale, 1_577_923_200 * scale]  # 2020-01-01, 2020-01-02 in `unit`
    got = read(csv(tmp_path, stamps))  # epoch time is UTC: no tz= needed
    assert list(got.index) == utc("2020-01-01", "2020-01-02")


def test_epoch_timestamps_of_mixed_units_and_yyyymmdd_integers(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"^\[epoch_unit\] x: .* row 0 \(1577836800\) reads as s, row 1 \(1577923200000\) as ms"):
        read(csv(tmp_path, [1_577_836_800, 1_577_923_200_000]))
    got = read(csv(tmp_path, [20200102, 20200103], name="y"))
    assert list(got.index) == utc("2020-01-02", "2020-01-03")


def _no_permission(*args: object, **kwargs: object) -> pd.DataFrame:
    raise PermissionError(13, "Permission denied", str(args[0]))


@pytest.mark.parametrize(
    ("case", "rule", "says"),
    [
        ("missing", "file_missing", "no such file"),
        ("empty", "file_empty", "empty (0 bytes)"),
        ("directory", "file_unreadable", "is a directory"),
        ("no_permission", "file_unreadable", "permission denied"),
        ("garbage", "file_unreadable", "not a parquet table"),
    ],
)
def test_unreadable_files_are_one_typed_line_naming_the_real_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, rule: str, says: str
) -> None:
    path = tmp_path / ("spy.parquet" if case == "garbage" else "spy.csv")
    if case == "empty":
        path.touch()
    elif case == "directory":
        path.mkdir()
    elif case == "garbage":
        path.write_bytes(b"\x00not parquet\xff" * 10)
    elif case == "no_permission":
        csv(tmp_path, ["2020-01-02"], name="spy")
        monkeypatch.setattr(pd, "read_csv", _no_permission)  # tests run as root: chmod cannot deny
    src = wb.get_source(f"file:{tmp_path}/{{symbol}}{path.suffix}")
    with pytest.raises(DataReadError) as info:
        wb.load_prices("spy", source=src)  # the lower-case symbol names the real file
    assert isinstance(info.value, OSError)
    assert str(info.value).startswith(f"[{rule}] ") and str(path.resolve()) in str(info.value)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_trailing_delimiters_are_read_and_extra_values_are_refused(tmp_path) -> None:
    from workbench.adapters.files import read_ohlcv_file
    from workbench.errors import DataValidationError

    ok = tmp_path / "trailing.csv"
    ok.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,10,\n2020-01-03,1,2,1,1.6,10,\n")
    df = read_ohlcv_file(ok, tz="UTC")
    assert list(df["Close"]) == [1.5, 1.6] and str(df.index[0].date()) == "2020-01-02"
    bad = tmp_path / "extra.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,10,99\n2020-01-03,1,2,1,1.6,10\n")
    with pytest.raises(DataValidationError, match=r"\[column_count\]"):
        read_ohlcv_file(bad, tz="UTC")
