"""Run in a subprocess by test_cache.py: a slow multi-page ccxt download that the test kills."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from tests.fakes import FakeBinanceHttp, payload  # noqa: E402
from tests.test_cache import END, START, binance_source  # noqa: E402
from workbench.adapters.store import ParquetCache  # noqa: E402


class SlowHttp(FakeBinanceHttp):
    def __call__(self, url, method="GET", headers=None, body=None):  # type: ignore[no-untyped-def]
        if "klines" in url:
            time.sleep(0.3)
        return super().__call__(url, method, headers, body)


if __name__ == "__main__":
    src, _ = binance_source(http=SlowHttp(payload("binance_klines_BTCUSDT_1h.json")))
    print("started", flush=True)
    wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=ParquetCache(sys.argv[1]), checkpoint_seconds=0)
    print("finished", flush=True)
