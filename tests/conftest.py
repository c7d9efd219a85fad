"""Shared fakes and canned data (no mocks)."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.trading import Bar, Instrument, Portfolio, SimulatedBroker


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test (and every notebook kernel it starts) uses a throw-away price cache."""
    import os

    os.environ["WORKBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("WORKBENCH_OFFLINE", None)


def ts(day: int, hour: int = 0) -> pd.Timestamp:
    """A UTC timestamp on 2024-01-<day>."""
    return pd.Timestamp(2024, 1, day, hour, tz="UTC")


def bar(day: int, o: float, h: float, lo: float, c: float, v: float = 1e6, hour: int = 0) -> Bar:
    return Bar(ts(day, hour), o, h, lo, c, v)


@pytest.fixture
def inst() -> Instrument:
    return Instrument(ticker="TEST", exchange="SIM")


@pytest.fixture
def btc() -> Instrument:
    return Instrument(ticker="BTC", exchange="SIM", asset_class="CRYPTO", lot_size=1e-8)


@pytest.fixture
def broker() -> SimulatedBroker:
    return SimulatedBroker(Portfolio(100_000.0))
