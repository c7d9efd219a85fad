"""The Parquet cache: atomic writes, incremental fills, offline mode, and injected failures
(an exception at every write step, a download interrupted mid-way, a real SIGKILL, and a
reader in another process while the file is rewritten)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ccxt
import pandas as pd
import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.adapters.crypto import CcxtSource
from workbench.adapters.store import CacheKey, ParquetCache, content_hash
from workbench.errors import CacheMissError, DataValidationError

from .fakes import FakeBinanceHttp, FakeSource, payload

KLINES = payload("binance_klines_BTCUSDT_1h.json")
START = pd.Timestamp(KLINES[0][0], unit="ms", tz="UTC")
END = pd.Timestamp(KLINES[-1][0], unit="ms", tz="UTC")
KEY = CacheKey("ccxt-binance", "BTC/USDT", "1h")


def binance_source(http: FakeBinanceHttp | None = None, limit: int = 250) -> tuple[CcxtSource, FakeBinanceHttp]:
    http = http or FakeBinanceHttp(KLINES)
    ex = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    ex.fetch = http
    ex.rateLimit = 1  # ccxt's limiter stays on; 1 ms keeps the test fast
    return CcxtSource(ex, limit=limit, sleep=lambda s: None, clock=lambda: END + pd.Timedelta("2h")), http


def download(cache: ParquetCache, http: FakeBinanceHttp | None = None, start=START, end=END, **kw) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    src, _ = binance_source(http)
    return wb.load_prices("BTC/USDT", start, end, timeframe="1h", source=src, cache=cache, checkpoint_seconds=0, **kw)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")]


@pytest.fixture
def cache(tmp_path: Path) -> ParquetCache:
    return ParquetCache(tmp_path / "cache")


def test_cache_roundtrip_keeps_bars_metadata_and_log(cache: ParquetCache) -> None:
    df = download(cache)
    entry = cache.info(KEY)
    assert entry is not None and entry.rows == len(df) == len(KLINES)
    assert (entry.source, entry.symbol, entry.timeframe, entry.adjusted) == ("ccxt-binance", "BTC/USDT", "1h", False)
    assert entry.first == START.isoformat() and entry.last == END.isoformat()
    assert entry.sha256 == content_hash(df) and entry.fetched_at is not None
    pd.testing.assert_frame_equal(cache.read(KEY), df, check_freq=False)
    assert [e.symbol for e in cache.entries()] == ["BTC/USDT"]


def test_incremental_update_fetches_only_the_missing_range(cache: ParquetCache) -> None:
    mid = START + pd.Timedelta(hours=999)
    download(cache, end=mid)
    http = FakeBinanceHttp(KLINES)
    full = download(cache, http=http)
    first_request = int(http.kline_calls[0]["startTime"])
    assert first_request == mid.value // 1_000_000  # resumes at the cached edge (1 bar overlap, checked)
    assert len(http.kline_calls) == -(-(len(KLINES) - 999) // 250)  # only the missing pages, not all
    reference = download(ParquetCache(cache.root.parent / "ref"))
    pd.testing.assert_frame_equal(full, reference)


def test_offline_serves_cached_ranges_and_names_the_missing_one(cache: ParquetCache) -> None:
    mid = START + pd.Timedelta(hours=999)
    download(cache, end=mid)
    http = FakeBinanceHttp(KLINES)
    src, _ = binance_source(http)
    inside = wb.load_prices("BTC/USDT", START, mid, timeframe="1h", source=src, cache=cache, offline=True)
    assert len(inside) == 1000 and http.kline_calls == []
    with pytest.raises(CacheMissError, match=r"\[offline\].*not cached \(cached: 2017-04-19T09:00:00\+00:00 \.\. 2017-05-31"):
        wb.load_prices("BTC/USDT", START, END, timeframe="1h", source=src, cache=cache, offline=True)
    with pytest.raises(CacheMissError, match="cached: nothing"):
        wb.load_prices("ETH/USDT", timeframe="1h", source=src, cache=cache, offline=True)
    assert http.kline_calls == []


def test_offline_mode_from_the_environment(cache: ParquetCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    with pytest.raises(CacheMissError):
        download(cache)
    assert wb.load_prices("GOOG").shape == (2148, 5)  # the sample is local: offline is fine


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_a_failing_write_leaves_the_previous_file_intact(cache: ParquetCache, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    download(cache, end=START + pd.Timedelta(hours=499))
    path = cache.path(KEY)
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError(f"injected failure in os.{step}")

    monkeypatch.setattr(f"workbench._fs.os.{step}", boom)
    with pytest.raises(OSError, match="injected"):
        download(cache)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert temp_files(cache.root) == []
    log = cache._log_path(KEY).read_text().splitlines()
    assert '"status": "failed"' in log[-1] and "injected failure" in log[-1]


def test_interrupted_download_keeps_committed_pages_and_resumes_byte_identical(cache: ParquetCache, tmp_path: Path) -> None:
    download(cache, end=START + pd.Timedelta(hours=249))  # a previous cache: the first page
    previous = cache.read(KEY)
    with pytest.raises(KeyboardInterrupt):
        download(cache, http=FakeBinanceHttp(KLINES, kill_after_pages=3))
    partial = cache.read(KEY)
    pd.testing.assert_frame_equal(partial.iloc[: len(previous)], previous)  # nothing lost
    assert len(partial) == 250 + 249 + 2 * 250  # three more pages committed (the first overlaps one bar)
    wb.validate_ohlcv(partial)
    resumed_http = FakeBinanceHttp(KLINES)
    download(cache, http=resumed_http)
    assert int(resumed_http.kline_calls[0]["startTime"]) == int(partial.index[-1].value // 1_000_000)
    reference = ParquetCache(tmp_path / "reference")
    download(reference)
    assert cache.path(KEY).read_bytes() == reference.path(KEY).read_bytes()


def test_transient_errors_retry_and_a_resume_after_a_crash_is_byte_identical(cache: ParquetCache, tmp_path: Path) -> None:
    flaky = FakeBinanceHttp(KLINES, failures=[ccxt.RequestTimeout("t1"), ccxt.RateLimitExceeded("429")])
    download(cache, http=flaky)
    reference = ParquetCache(tmp_path / "reference")
    download(reference)
    assert cache.path(KEY).read_bytes() == reference.path(KEY).read_bytes()


def test_sigkill_mid_download_leaves_a_valid_cache_and_resume_is_byte_identical(tmp_path: Path) -> None:
    root = tmp_path / "killed"
    worker = Path(__file__).with_name("_download_worker.py")
    proc = subprocess.Popen([sys.executable, str(worker), str(root)], stdout=subprocess.PIPE, text=True)
    path = ParquetCache(root).path(KEY)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.4)  # let it get further, possibly mid-write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    cache = ParquetCache(root)
    partial = cache.read(KEY)
    assert partial is not None and 250 <= len(partial) < len(KLINES)
    wb.validate_ohlcv(partial)
    assert content_hash(partial) == cache.info(KEY).sha256  # the footer matches the bars
    download(cache)
    reference = ParquetCache(tmp_path / "reference")
    download(reference)
    assert path.read_bytes() == reference.path(KEY).read_bytes()


READER = r"""
import sys, time, hashlib, json
import numpy as np, pyarrow.parquet as pq
path, seconds = sys.argv[1], float(sys.argv[2])
reads, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    pf = pq.ParquetFile(path)  # one open: footer and data come from the same file version
    meta = json.loads(pf.schema_arrow.metadata[b"workbench"])
    df = pf.read().to_pandas()
    h = hashlib.sha256(np.ascontiguousarray(df.index.as_unit("ns").asi8).tobytes())
    for col in ["Open", "High", "Low", "Close", "Volume"]:  # independent of workbench.content_hash
        h.update(df[col].to_numpy().tobytes())
    assert h.hexdigest() == meta["sha256"] and len(df) == meta["rows"], "torn read"
    reads += 1
print(reads)
"""


def test_a_reader_in_another_process_never_sees_a_half_written_file(cache: ParquetCache) -> None:
    bars = wb.synthetic_bars(200_000, "1m", seed=3)
    key = CacheKey("synthetic", "SYN3", "1m")
    cache.write(key, bars, adjusted=False, covered_start=None, covered_end=None)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cache.path(key)), "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writes = 0
    t_end = time.monotonic() + 4
    while time.monotonic() < t_end:
        n = 50_000 + (writes % 7) * 20_000
        cache.write(key, bars.iloc[:n], adjusted=False, covered_start=None, covered_end=None)
        writes += 1
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 5 and writes > 5


def test_cache_conflict_when_the_vendor_revises_history(cache: ParquetCache) -> None:
    idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC", name="timestamp")
    d = pd.DataFrame({"Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5, "Volume": 1.0}, index=idx)
    wb.load_prices("X", end="2024-01-03", source=FakeSource({"X": d.iloc[:3]}), cache=cache)
    revised = d.copy()
    revised["Close"] = 10.25
    with pytest.raises(DataValidationError, match=r"\[cache_conflict\].*2024-01-03.*refresh=True"):
        wb.load_prices("X", end="2024-01-05", source=FakeSource({"X": revised}), cache=cache)
    out = wb.load_prices("X", end="2024-01-05", source=FakeSource({"X": revised}), cache=cache, refresh=True)
    assert (out["Close"] == 10.25).all()


def test_concurrent_writers_are_serialised_by_the_lock(cache: ParquetCache) -> None:
    import fcntl

    lock_file = cache.lock_path(KEY)
    with cache.lock(KEY), open(lock_file, "a+") as fh, pytest.raises(BlockingIOError):  # a second writer waits
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_sample_cache_is_rebuilt_when_the_sample_file_changes(cache: ParquetCache) -> None:
    wb.load_prices("GOOG", cache=cache)
    key = CacheKey("sample", "GOOG", "1d")
    entry = cache.info(key)
    assert entry is not None and entry.upstream == wb.sample_manifest()["instruments"]["GOOG"]["sha256"]
    # a stale upstream id (an older sample) is replaced, not served
    stale = cache.read(key).iloc[:10]
    cache.write(key, stale, adjusted=False, covered_start=None, covered_end=None, upstream="old-sample-hash")
    assert len(wb.load_prices("GOOG", cache=cache)) == 2148
    assert pq.read_schema(cache.path(key)).metadata is not None


def test_a_leading_gap_without_bars_still_extends_the_covered_range(cache: ParquetCache) -> None:
    idx = pd.date_range("2024-01-08", periods=5, freq="D", tz="UTC", name="timestamp")  # Monday..Friday
    d = pd.DataFrame({"Open": 10.0, "High": 11.0, "Low": 9.0, "Close": 10.5, "Volume": 1.0}, index=idx)
    src = FakeSource({"X": d})
    wb.load_prices("X", "2024-01-08", "2024-01-12", source=src, cache=cache)
    wb.load_prices("X", "2024-01-06", "2024-01-12", source=src, cache=cache)  # a weekend before: no bars
    assert cache.info(CacheKey("fake", "X", "1d")).covered_start == "2024-01-06T00:00:00+00:00"
    calls = len(src.calls)
    wb.load_prices("X", "2024-01-06", "2024-01-12", source=src, cache=cache)
    assert len(src.calls) == calls  # now fully cached: no fetch
