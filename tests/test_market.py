import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import DataValidationError, NoDataError, UnknownSymbolError


def frame(n=5):
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC", name="timestamp")
    base = np.linspace(100, 104, n)
    return pd.DataFrame({"Open": base, "High": base + 1, "Low": base - 1, "Close": base + 0.5, "Volume": 1e3}, index=idx)


def test_valid_frame_passes_as_float64():
    out = wb.validate_ohlcv(frame())
    assert list(out.columns) == wb.OHLCV_COLUMNS and (out.dtypes == "float64").all()


@pytest.mark.parametrize(
    ("mutate", "rule", "when"),
    [
        (lambda d: d.iloc.__setitem__((2, 3), np.nan), "finite_prices", 2),
        (lambda d: d.iloc.__setitem__((3, 0), np.inf), "finite_prices", 3),
        (lambda d: d.iloc.__setitem__((1, 2), -1.0), "positive_prices", 1),
        (lambda d: d.iloc.__setitem__((2, 1), 50.0), "high_ge_low", 2),
        (lambda d: d.iloc.__setitem__((4, 0), 200.0), "open_in_range", 4),
        (lambda d: d.iloc.__setitem__((3, 3), 1.0), "close_in_range", 3),
        (lambda d: d.iloc.__setitem__((1, 4), -5.0), "non_negative_volume", 1),
    ],
)
def test_bad_values_name_the_rule_and_first_timestamp(mutate, rule, when):
    d = frame()
    mutate(d)
    with pytest.raises(DataValidationError) as exc:
        wb.validate_ohlcv(d)
    assert exc.value.rule == rule and exc.value.timestamp == d.index[when]
    assert str(d.index[when]) in str(exc.value) and f"[{rule}]" in str(exc.value)


def test_naive_timestamps_are_rejected():
    d = frame()
    d.index = d.index.tz_localize(None)
    with pytest.raises(DataValidationError, match="naive"):
        wb.validate_ohlcv(d)


def test_duplicate_and_unsorted_index_are_rejected():
    d = frame()
    dup = pd.concat([d.iloc[:3], d.iloc[2:3]])
    with pytest.raises(DataValidationError, match="duplicate timestamp 2024-01-03"):
        wb.validate_ohlcv(dup)
    with pytest.raises(DataValidationError, match="not sorted"):
        wb.validate_ohlcv(d.iloc[::-1])


def test_empty_frame_is_no_data_not_success():
    with pytest.raises(NoDataError):
        wb.validate_ohlcv(frame().iloc[:0])


def test_missing_column_is_named():
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['Volume'\]"):
        wb.validate_ohlcv(frame().drop(columns="Volume"))


def test_load_prices_sample_goog_is_real_and_validated():
    g = wb.load_prices("GOOG")
    assert len(g) == 2148 and str(g.index.tz) == "UTC"
    assert g.index[0] == pd.Timestamp("2004-08-19", tz="UTC")
    assert g.loc["2004-08-19", "Close"].item() == 100.34  # first close in backtesting.py's GOOG.csv
    assert g.attrs["adjusted"] is False and g.attrs["currency"] == "USD"


def test_load_prices_every_sample_symbol_passes_validation():
    for sym in wb.sample_symbols():
        assert len(wb.load_prices(sym)) > 100


def test_load_prices_range_and_errors():
    g = wb.load_prices("goog", start="2005-01-01", end="2005-01-31")
    assert len(g) == 20
    with pytest.raises(NoDataError, match="no bars between"):
        wb.load_prices("GOOG", start="1990-01-01", end="1990-02-01")
    with pytest.raises(UnknownSymbolError, match="unknown symbol 'NOPE'"):
        wb.load_prices("NOPE")


def test_load_prices_panel_alignment_policies():
    inter = wb.load_prices(["GOOG", "BTCUSD"], align="intersection")
    union = wb.load_prices(["GOOG", "BTCUSD"], align="union")
    assert len(inter) < len(union)
    assert not inter.isna().any().any() and union.isna().any().any()
    assert inter.columns.names == ["symbol", "field"]


def test_manifest_records_provenance_for_every_file():
    m = wb.sample_manifest()
    for sym, meta in m["instruments"].items():
        assert meta["source"]["shipped_by"] and len(meta["sha256"]) == 64, sym


def test_sample_series_fama_french_in_decimals_labelled_by_month_start() -> None:
    ff = wb.load_series("ff3_monthly")
    assert list(ff.columns) == ["Mkt-RF", "SMB", "HML", "RF"]
    assert ff.loc["1926-07-01", "Mkt-RF"].item() == pytest.approx(0.0296)  # file: 192607, 2.96 (percent)
    assert (ff.index.day == 1).all() and str(ff.index.tz) == "UTC" and ff.index.is_monotonic_increasing
    crude = wb.load_series("brent_wti_monthly")
    assert crude.loc["1987-05-01", "Brent"].item() == 18.58  # file: 1987-05-15 monthly average
    with pytest.raises(wb.UnknownSymbolError, match="known: brent_wti_monthly, ff3_monthly"):
        wb.load_series("nope")
