"""Resampling: OHLCV aggregation, bar-start labels, and no look-ahead (property tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.errors import DataError, DataValidationError
from workbench.plots import candlestick_figure


def test_minutes_to_5m_to_1h_to_1d_aggregate_correctly() -> None:
    m1 = wb.synthetic_bars(3 * 1440, "1m", seed=7)
    m5 = wb.resample_ohlcv(m1, "5m")
    h1 = wb.resample_ohlcv(m5, "1h", source_timeframe="5m")
    d1 = wb.resample_ohlcv(h1, "1d", source_timeframe="1h")
    direct = wb.resample_ohlcv(m1, "1d")
    pd.testing.assert_frame_equal(d1[["Open", "High", "Low", "Close"]], direct[["Open", "High", "Low", "Close"]])
    np.testing.assert_allclose(d1["Volume"], direct["Volume"], rtol=1e-12)
    first = m1.loc["2020-01-01 00:00":"2020-01-01 00:04"]
    assert m5.index[0] == pd.Timestamp("2020-01-01", tz="UTC")  # labelled by the bin's start
    assert m5.iloc[0].tolist() == pytest.approx([first.Open.iloc[0], first.High.max(), first.Low.min(),
                                                 first.Close.iloc[-1], first.Volume.sum()])  # fmt: skip
    wb.validate_ohlcv(d1)


def test_weekly_and_monthly_bins_start_monday_and_on_the_first() -> None:
    goog = wb.load_prices("GOOG")
    week = wb.resample_ohlcv(goog, "1w")
    month = wb.resample_ohlcv(goog, "1M")
    assert (week.index.day_of_week == 0).all() and (month.index.day == 1).all()
    assert week.loc["2004-08-16", "Open"] == goog.loc["2004-08-19", "Open"]  # first session of the week
    assert month.loc["2004-08-01", "Close"] == goog.loc["2004-08-31", "Close"]
    via_loader = wb.load_prices("GOOG", timeframe="1w")
    pd.testing.assert_frame_equal(via_loader, week, check_freq=False)
    assert via_loader.attrs["timeframe"] == "1w"


def test_finer_timeframe_and_misaligned_bars_are_refused() -> None:
    with pytest.raises(DataError, match=r"resample_direction.*finer"):
        wb.resample_ohlcv(wb.load_prices("GOOG"), "1h")
    half_past = wb.synthetic_bars(10, "1h", start="2024-01-01 00:30", seed=1)
    with pytest.raises(DataValidationError, match=r"resample_alignment.*leak"):
        wb.resample_ohlcv(half_past, "2h", source_timeframe="1h")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(10, 400), cut=st.floats(0.05, 0.95), seed=st.integers(0, 10_000), tf=st.sampled_from(["5m", "15m", "1h"]))
def test_resampling_never_uses_a_later_bar(n: int, cut: float, seed: int, tf: str) -> None:
    bars = wb.synthetic_bars(n, "1m", seed=seed)
    k = max(1, int(n * cut))
    full = wb.resample_ohlcv(bars, tf, source_timeframe="1m")
    part = wb.resample_ohlcv(bars.iloc[:k], tf, source_timeframe="1m")
    # every bin that was complete when the data stopped is identical with or without the future
    step = pd.tseries.frequencies.to_offset(tf.replace("m", "min"))
    complete = part.index[part.index + step <= bars.index[k - 1] + pd.Timedelta("1min")]
    pd.testing.assert_frame_equal(part.loc[complete], full.loc[complete])
    # and each bar only holds source bars stamped inside [t, t + step)
    for t, row in full.iloc[:3].iterrows():
        inside = bars[(bars.index >= t) & (bars.index < t + step)]
        assert row["High"] == inside["High"].max() and row["Close"] == inside["Close"].iloc[-1]


def test_panel_policies_for_different_calendars() -> None:
    inter = wb.load_prices(["SPX", "BTCUSD"], align="intersection")
    union = wb.load_prices(["SPX", "BTCUSD"], align="union", progress=False)
    ffill = wb.load_prices(["SPX", "BTCUSD"], align="ffill", progress=False)
    assert inter.notna().all().all() and len(inter) < len(union)
    assert union[("SPX", "Close")].isna().any()  # gaps left visible
    gap = union[("SPX", "Close")].isna() & (union.index > union[("SPX", "Close")].first_valid_index()) \
        & (union.index <= wb.load_prices("SPX").index[-1])  # fmt: skip
    assert ffill.loc[gap, ("SPX", "Volume")].eq(0).all()
    assert ffill.loc[gap, ("SPX", "Open")].equals(ffill.loc[gap, ("SPX", "Close")])
    assert ffill[("SPX", "Close")].loc["2019":].isna().all()  # never carried past the series' end


def test_candlestick_figure_resamples_large_frames_for_display() -> None:
    fig = candlestick_figure(wb.load_prices("GOOG"))
    assert [t.type for t in fig.data] == ["candlestick", "bar"] and len(fig.data[0].x) == 2148
    big = wb.synthetic_bars(100_000, "1m", seed=2)
    fig = candlestick_figure(big, max_bars=3000)
    assert len(fig.data[0].x) <= 3000 and "resampled to" in fig.layout.title.text
