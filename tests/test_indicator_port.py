"""The indicator port: strategies compute with whatever library the composition root installed."""

from __future__ import annotations

import types

import numpy as np
import pytest

import workbench as wb
from workbench.adapters import indicators as talib_adapter
from workbench.strategy import indicators as port


@pytest.fixture
def restore_library():
    """Each test may swap the library; the TA-Lib adapter is back afterwards."""
    previous = port.indicators()
    yield
    port.use_indicators(previous)


def test_import_workbench_installs_the_talib_adapter():
    assert port.indicators() is talib_adapter
    assert isinstance(talib_adapter, port.IndicatorLibrary)


def test_the_port_names_exactly_what_the_strategies_use():
    assert port._protocol_members() == ["bbands", "ema", "hedge_ratio", "macd", "natr", "roc", "rsi", "sma", "stddev"]


def test_no_library_is_a_typed_error_naming_the_fix(goog, monkeypatch):
    monkeypatch.setattr(port, "_library", None)
    with pytest.raises(port.NoIndicatorLibraryError, match="no indicator library is installed"):
        wb.SMACrossover().target(goog)
    assert issubclass(port.NoIndicatorLibraryError, wb.WorkbenchError)


def test_an_incomplete_library_is_refused_where_it_is_installed(restore_library):
    partial = types.SimpleNamespace(sma=talib_adapter.sma, ema=talib_adapter.ema)
    with pytest.raises(wb.ParameterError, match="missing bbands, hedge_ratio, macd, natr, roc, rsi, stddev"):
        port.use_indicators(partial)
    assert port.indicators() is talib_adapter


def test_strategies_compute_with_the_installed_library(goog, restore_library):
    calls: list[str] = []

    class Recording:
        """Delegates to TA-Lib and records each call."""

        def __getattr__(self, name):
            calls.append(name)
            return getattr(talib_adapter, name)

    expected = wb.MeanReversion().target(goog)
    assert port.use_indicators(Recording()) is talib_adapter
    calls.clear()  # installing checked every function
    got = wb.MeanReversion().target(goog)
    assert calls == ["bbands", "rsi"]
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())  # bit for bit


def test_install_returns_the_library_it_replaces(restore_library):
    fake = types.SimpleNamespace(**{n: getattr(talib_adapter, n) for n in port._protocol_members()})
    port.use_indicators(fake)
    assert talib_adapter.install() is fake
    assert port.indicators() is talib_adapter
