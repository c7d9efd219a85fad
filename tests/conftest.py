"""Shared fakes and canned data (no mocks)."""

from __future__ import annotations

import os
import tempfile

import pandas as pd
import pytest

# Before any test module is imported (some run backtests at import): every run of the
# suite, and of every notebook kernel it starts, lands in a throw-away experiment store.
os.environ["WORKBENCH_STORE"] = os.path.join(tempfile.mkdtemp(prefix="workbench-store-"), "experiments.sqlite")

from workbench.trading import Bar, Instrument, Portfolio, SimulatedBroker


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test (and every notebook kernel it starts) uses a throw-away cache and reports dir."""
    import os

    os.environ["WORKBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["WORKBENCH_REPORTS_DIR"] = str(tmp_path_factory.mktemp("reports"))  # never the user's reports/
    os.environ.pop("WORKBENCH_OFFLINE", None)


@pytest.fixture(scope="session")
def chromium():
    """One headless Debian Chromium for the session's browser tests (see tests/_dashboards.py)."""
    from playwright.sync_api import sync_playwright

    from tests._dashboards import ARGS, CHROMIUM

    if CHROMIUM is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


# Real sample data for the strategy and engine tests (module scope: each module reads its own).
@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    import workbench as wb

    return wb.load_prices("GOOG")


@pytest.fixture(scope="module")
def four() -> pd.DataFrame:
    """GOOG, SPX, IXIC and WTI on their common days (the rotation universe)."""
    import workbench as wb

    return wb.load_prices(["GOOG", "SPX", "IXIC", "WTI"], progress=False)


@pytest.fixture(scope="module")
def pair() -> pd.DataFrame:
    """S&P 500 and NASDAQ Composite (the pairs-trading example)."""
    import workbench as wb

    return wb.load_prices(["SPX", "IXIC"], progress=False)


@pytest.fixture(scope="module")
def venues() -> pd.DataFrame:
    """EURUSD quoted on two venues: the real bars and a seeded second venue."""
    import workbench as wb

    return wb.two_venue_quotes(wb.load_prices("EURUSD"), seed=7)


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
