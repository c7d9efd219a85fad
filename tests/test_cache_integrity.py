"""Cache integrity (issue 9): a cached file is verified on every read, or it is not served.

Byte flips, a valid Parquet file with broken bars, a truncated file, a bad footer, a file
under another key's name, colliding symbols, a read-only cache, a full disk and a garbled
fetch log: each is either served exactly as written or refused with a typed error that
names the file and what to do ("data integrity over availability", nautilus_trader).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.adapters.store import CacheKey, ParquetCache, _meta_hash, content_hash
from workbench.errors import CacheAccessError, CacheCorruptError, CacheMissError

from .fakes import FakeSource, full_disk, read_only_disk

GOOG = CacheKey("sample", "GOOG", "1d")


@pytest.fixture
def cache(tmp_path: Path) -> ParquetCache:
    return ParquetCache(tmp_path / "cache")


@pytest.fixture
def goog(cache: ParquetCache) -> pd.DataFrame:
    """GOOG from the sample, cached (2148 daily bars, an ~90 kB file)."""
    return wb.load_prices("GOOG", cache=cache)


def quarantined(cache: ParquetCache, key: CacheKey) -> list[Path]:
    path = cache.path(key)
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def bars(n: int = 5, close: float = 10.5, start: str = "2024-01-01") -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="D", tz="UTC", name="timestamp")
    return pd.DataFrame({"Open": 10.0, "High": 11.0, "Low": 9.0, "Close": close, "Volume": 1.0}, index=idx)


def rewrite(path: Path, table_change: Callable | None = None, footer_change: Callable | None = None,
            checksum: bool = True) -> None:  # fmt: skip
    """Rewrite a cached file as a *valid* Parquet file with changed bars and/or footer."""
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    if table_change is not None:
        frame = table.to_pandas()
        table_change(frame)
        table = pa.Table.from_pandas(frame, preserve_index=True)
    fields = json.loads(meta[b"workbench"])
    if footer_change is not None:
        fields = footer_change(fields)
        if checksum and isinstance(fields, dict) and "meta_sha256" in fields:
            body = {k: v for k, v in fields.items() if k != "meta_sha256"}
            fields["meta_sha256"] = _meta_hash(body)
    raw = fields if fields is None or isinstance(fields, bytes) else json.dumps(fields, sort_keys=True).encode()
    meta = {**meta, b"workbench": raw} if raw is not None else {k: v for k, v in meta.items() if k != b"workbench"}
    pq.write_table(table.replace_schema_metadata(meta), path)


def assert_refused(cache: ParquetCache, key: CacheKey, match: str = "", load: Callable | None = None) -> None:
    """Reading ``key`` raises CacheCorruptError naming the file, and the file is set aside."""
    path = cache.path(key)
    with pytest.raises(CacheCorruptError, match=match) as info:
        (load or (lambda: cache.read(key)))()
    assert str(path) in str(info.value) and "refresh=True" in str(info.value)
    assert not path.exists() and len(quarantined(cache, key)) == 1


# -- corrupted bytes -----------------------------------------------------------------------
def test_byte_flips_are_refused_or_served_exactly_never_silently_different(cache: ParquetCache, goog: pd.DataFrame) -> None:
    path = cache.path(GOOG)
    raw = path.read_bytes()
    original = cache.read(GOOG)
    rng = np.random.default_rng(9)
    tail = min(len(raw), 3000)  # the footer (schema, statistics, our metadata) lives at the end
    positions = sorted(set(rng.choice(len(raw), 20, replace=False)) | set(len(raw) - 1 - rng.choice(tail, 20, replace=False)))
    refused = 0
    for pos in positions:
        flipped = bytearray(raw)
        flipped[pos] ^= 0xFF
        path.write_bytes(bytes(flipped))
        try:
            got = wb.load_prices("GOOG", cache=cache)
        except CacheCorruptError as exc:
            refused += 1
            assert str(path) in str(exc) and not path.exists(), pos
            for q in quarantined(cache, GOOG):
                assert q.read_bytes() == bytes(flipped)  # kept, byte for byte, for a post-mortem
                q.unlink()
            continue
        pd.testing.assert_frame_equal(got, goog, check_freq=False)
        pd.testing.assert_frame_equal(cache.read(GOOG), original, check_freq=False)
    assert len(positions) >= 38 and refused >= len(positions) // 2


def test_a_valid_parquet_file_with_broken_bars_and_copied_metadata_is_refused(cache: ParquetCache, goog: pd.DataFrame) -> None:
    def break_bars(frame: pd.DataFrame) -> None:
        frame.iloc[10, frame.columns.get_loc("Close")] = frame["High"].iloc[10] * 1.5
        frame.iloc[20, frame.columns.get_loc("Low")] = -1.0

    rewrite(cache.path(GOOG), table_change=break_bars)  # the old footer, hash and all, copied over
    assert_refused(cache, GOOG, "SHA-256 differs", load=lambda: wb.backtest("sma_crossover", wb.load_prices("GOOG", cache=cache)))


def test_broken_bars_with_a_recomputed_hash_still_fail_the_ohlc_rules(cache: ParquetCache, goog: pd.DataFrame) -> None:
    bad = goog.copy()
    bad.iloc[10, bad.columns.get_loc("Close")] = bad["High"].iloc[10] * 1.5

    def matching_footer(fields: dict) -> dict:  # as if a buggy writer had stored broken bars
        return {**fields, "sha256": content_hash(bad)}

    rewrite(cache.path(GOOG), table_change=lambda f: f.__setitem__("Close", bad["Close"].to_numpy()),
            footer_change=matching_footer)  # fmt: skip
    assert_refused(cache, GOOG, r"OHLCV rules.*close_in_range")


@pytest.mark.parametrize("keep", [0, 100, 0.5, -8, -1])
def test_a_truncated_file_is_refused(cache: ParquetCache, goog: pd.DataFrame, keep: float) -> None:
    path = cache.path(GOOG)
    raw = path.read_bytes()
    n = int(len(raw) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(raw) + keep)
    path.write_bytes(raw[:n])
    assert_refused(cache, GOOG, "not a readable Parquet file")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: None, "no workbench metadata"),
        (lambda f: b"{not json", "bad footer metadata"),
        (lambda f: b"\xff\xfe", "bad footer metadata"),
        (lambda f: [1, 2], "bad footer metadata.*JSON object"),
        (lambda f: {**f, "sha256": "0" * 64}, "SHA-256 differs"),  # a footer hash that does not match
        (lambda f: {**f, "rows": f["rows"] + 1}, r"holds \(2148"),
        (lambda f: {k: v for k, v in f.items() if k != "first"}, "footer fields"),
    ],
    ids=["missing", "not-json", "not-utf8", "not-an-object", "hash-mismatch", "row-count", "field-missing"],
)
def test_bad_footer_metadata_is_refused(cache: ParquetCache, goog: pd.DataFrame, change: Callable, match: str) -> None:
    rewrite(cache.path(GOOG), footer_change=change)
    with pytest.raises(CacheCorruptError, match=match):
        wb.load_prices("GOOG", cache=cache)
    assert not cache.path(GOOG).exists() and len(quarantined(cache, GOOG)) == 1


def test_a_footer_edited_without_its_checksum_is_refused(cache: ParquetCache, goog: pd.DataFrame) -> None:
    """A flipped digit in covered_end would make the cache claim a range it never fetched."""
    rewrite(cache.path(GOOG), footer_change=lambda f: {**f, "covered_end": "2099-01-01T00:00:00+00:00"}, checksum=False)
    with pytest.raises(CacheCorruptError, match="footer checksum"):
        cache.info(GOOG)


# -- keys ----------------------------------------------------------------------------------
def test_symbols_that_used_to_share_a_file_get_their_own_bars(cache: ParquetCache) -> None:
    src = FakeSource({"BTC/USDT": bars(close=10.5), "BTC_USDT": bars(close=9.5)}, online=False)
    a = wb.load_prices("BTC/USDT", source=src, cache=cache)
    b = wb.load_prices("BTC_USDT", source=src, cache=cache)
    assert (a["Close"] == 10.5).all() and (b["Close"] == 9.5).all()
    assert sorted(e.symbol for e in cache.entries()) == ["BTC/USDT", "BTC_USDT"]
    assert len(src.calls) == 2  # each fetched once, then served from its own file
    assert (wb.load_prices("BTC_USDT", source=src, cache=cache)["Close"] == 9.5).all() and len(src.calls) == 2


def test_cache_names_are_injective_readable_and_safe_on_case_insensitive_disks(cache: ParquetCache) -> None:
    symbols = ["BTC/USDT", "BTC_USDT", "BTC-USDT", "BTC:USDT", "BRK.A", "BRK.B", "BRK", "GOOG", "goog", "Goog",
               "^GSPC", "_GSPC", "EURUSD=X", "..", ".HIDDEN", "a" * 300, "a" * 301, "日経225"]  # fmt: skip
    keys = [CacheKey(src, s, tf) for s in symbols for src in ("ccxt-binance", "My Source", "my_source")
            for tf in ("1m", "1M")]  # fmt: skip
    files = [cache.path(k) for k in keys]
    folded = {str(p).lower() for p in files} | {str(cache.lock_path(k)).lower() for k in keys}
    assert len(folded) == 2 * len(keys)  # no two keys share a file, even case-folded
    for p in files:
        assert p.parent.parent.parent == cache.root and len(p.name) < 120 and not p.name.startswith(".")
    assert cache.path(CacheKey("sample", "GOOG", "1d")) == cache.root / "sample" / "1d" / "GOOG.parquet"
    assert cache.path(CacheKey("ccxt-binance", "BTC/USDT", "1h")).name.startswith("BTC_USDT~")


@pytest.mark.parametrize("other", [CacheKey("sample", "SPX", "1d"), CacheKey("fake", "GOOG", "1d"), CacheKey("sample", "GOOG", "1h")],
                         ids=["symbol", "source", "timeframe"])  # fmt: skip
def test_a_file_holding_another_key_is_refused(cache: ParquetCache, goog: pd.DataFrame, other: CacheKey) -> None:
    target = cache.path(other)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cache.path(GOOG).read_bytes())  # GOOG's bars under another key's name
    with pytest.raises(CacheCorruptError, match=r"the footer says it holds sample:GOOG:1d"):
        cache.read(other)
    assert not target.exists() and len(quarantined(cache, other)) == 1
    pd.testing.assert_frame_equal(cache.read(GOOG), goog[list(goog.columns)], check_freq=False)


def test_old_layout_files_are_read_where_the_name_is_unchanged_and_missed_where_it_moved(cache: ParquetCache) -> None:
    """Schema-1 files (no footer checksum) stay valid; ``BTC_USDT.parquet`` written for
    ``BTC/USDT`` by the old layout is a miss for both symbols, never the other's bars."""

    def as_v1(fields: dict) -> dict:
        return {k: v for k, v in fields.items() if k != "meta_sha256"} | {"schema_version": 1}

    goog = wb.load_prices("GOOG", cache=cache)
    rewrite(cache.path(GOOG), footer_change=as_v1)
    pd.testing.assert_frame_equal(wb.load_prices("GOOG", cache=cache, offline=True), goog, check_freq=False)
    src = FakeSource({"BTC/USDT": bars(close=10.5), "BTC_USDT": bars(close=9.5)}, online=False)
    wb.load_prices("BTC/USDT", source=src, cache=cache)
    new = cache.path(CacheKey("fake", "BTC/USDT", "1d"))
    old = new.with_name("BTC_USDT.parquet")
    new.rename(old)
    rewrite(old, footer_change=as_v1)
    assert cache.info(CacheKey("fake", "BTC_USDT", "1d")) is None and cache.info(CacheKey("fake", "BTC/USDT", "1d")) is None
    assert (wb.load_prices("BTC_USDT", source=src, cache=cache)["Close"] == 9.5).all()
    assert (wb.load_prices("BTC/USDT", source=src, cache=cache)["Close"] == 10.5).all()


# -- quarantine and recovery ---------------------------------------------------------------
def test_a_corrupt_file_is_quarantined_and_refresh_fetches_a_fresh_copy(cache: ParquetCache, goog: pd.DataFrame) -> None:
    path = cache.path(GOOG)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # inside the data pages
    path.write_bytes(bytes(raw))
    with pytest.raises(CacheCorruptError, match=r"GOOG\.parquet.*kept as GOOG\.parquet\.corrupt-.*refresh=True"):
        wb.load_prices("GOOG", cache=cache)
    [kept] = quarantined(cache, GOOG)
    assert kept.read_bytes() == bytes(raw) and not path.exists()
    assert cache.entries() == [] and cache.info(GOOG) is None  # never listed, never served
    fresh = wb.load_prices("GOOG", cache=cache, refresh=True)
    pd.testing.assert_frame_equal(fresh, goog, check_freq=False)
    assert cache.info(GOOG).sha256 == goog.attrs["sha256"] and quarantined(cache, GOOG) == [kept]


def test_refresh_replaces_a_corrupt_online_series_only_once_a_good_copy_is_written(cache: ParquetCache) -> None:
    d = bars(10)
    src = FakeSource({"X": d})
    key = CacheKey("fake", "X", "1d")
    wb.load_prices("X", end="2024-01-10", source=src, cache=cache)
    rewrite(cache.path(key), table_change=lambda f: f.__setitem__("Close", 10.75))  # still valid OHLC
    with pytest.raises(CacheCorruptError):
        wb.load_prices("X", end="2024-01-10", source=src, cache=cache, offline=True)
    with pytest.raises(CacheMissError):  # quarantined: offline has nothing left to serve
        wb.load_prices("X", end="2024-01-10", source=src, cache=cache, offline=True)
    out = wb.load_prices("X", end="2024-01-10", source=src, cache=cache, refresh=True)
    assert (out["Close"] == 10.5).all() and len(out) == 10


def test_listing_skips_and_quarantines_a_corrupt_file_with_a_warning(cache: ParquetCache, goog: pd.DataFrame) -> None:
    wb.load_prices("SPX", cache=cache)
    rewrite(cache.path(GOOG), footer_change=lambda f: b"garbage")
    with pytest.warns(RuntimeWarning, match=r"\[cache_corrupt\].*GOOG"):
        assert [e.symbol for e in cache.entries()] == ["SPX"]
    assert len(quarantined(cache, GOOG)) == 1


# -- the file system says no ----------------------------------------------------------------
def test_a_read_only_cache_serves_offline_reads_and_names_the_path_for_writes(cache: ParquetCache, goog: pd.DataFrame,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    src = FakeSource({"X": bars(10)})
    wb.load_prices("X", end="2024-01-05", source=src, cache=cache)
    read_only_disk(monkeypatch, cache.root)
    pd.testing.assert_frame_equal(wb.load_prices("GOOG", cache=cache), goog, check_freq=False)
    assert len(wb.load_prices("X", end="2024-01-05", source=src, cache=cache, offline=True)) == 5
    assert len(wb.load_prices("X", end="2024-01-03", source=src, cache=cache)) == 3  # covered: no write needed
    with pytest.raises(CacheAccessError, match=r"\[cache_access\] cannot create the writer lock .*X\.lock: "
                       r"Read-only file system; the cache is read-only.*offline=True") as info:  # fmt: skip
        wb.load_prices("X", end="2024-01-10", source=src, cache=cache)
    assert isinstance(info.value, OSError) and info.value.errno == errno.EROFS
    with pytest.raises(CacheAccessError, match="cannot write"):
        cache.write(CacheKey("fake", "Y", "1d"), bars(), adjusted=False, covered_start=None, covered_end=None)
    with pytest.raises(CacheAccessError, match="cannot append to"):
        cache.record(CacheKey("fake", "X", "1d"), "ok")


def test_a_corrupt_file_in_a_read_only_cache_is_still_refused(cache: ParquetCache, goog: pd.DataFrame,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    rewrite(cache.path(GOOG), table_change=lambda f: f.__setitem__("Volume", 0.0))
    read_only_disk(monkeypatch, cache.root)
    with pytest.raises(CacheCorruptError, match="could not be moved aside: Read-only file system"):
        wb.load_prices("GOOG", cache=cache)


def test_a_full_disk_is_a_cache_access_error_and_keeps_the_previous_file(cache: ParquetCache,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    src = FakeSource({"X": bars(10)})
    key = CacheKey("fake", "X", "1d")
    wb.load_prices("X", end="2024-01-05", source=src, cache=cache)
    before = cache.path(key).read_bytes()
    full_disk(monkeypatch, cache.root)
    with pytest.raises(CacheAccessError, match=r"cannot write .*X\.parquet: No space left on device; the disk is full") as info:
        wb.load_prices("X", end="2024-01-10", source=src, cache=cache)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert cache.path(key).read_bytes() == before
    assert [p for p in cache.root.rglob("*") if p.name.endswith(".tmp")] == []
    assert len(wb.load_prices("X", end="2024-01-05", source=src, cache=cache, offline=True)) == 5


def test_a_garbled_fetch_log_costs_the_fetch_time_not_the_bars(cache: ParquetCache, goog: pd.DataFrame) -> None:
    log = cache._log_path(GOOG)
    good = log.read_bytes()
    log.write_bytes(b"\xff\xfe not json\n[1, 2]\n\"ok\"\n{\"status\": \"ok\", \"sha256\": 3}\n" + good[: len(good) // 2])
    entry = cache.info(GOOG)
    assert entry is not None and entry.fetched_at is None
    log.write_bytes(b"\xff garbage\n" + good)
    assert cache.info(GOOG).fetched_at is not None
    pd.testing.assert_frame_equal(wb.load_prices("GOOG", cache=cache), goog, check_freq=False)


def test_an_unreadable_fetch_log_is_a_cache_access_error(cache: ParquetCache, goog: pd.DataFrame) -> None:
    log = cache._log_path(GOOG)
    log.unlink()
    log.mkdir()  # a directory where the log should be: EISDIR
    with pytest.raises(CacheAccessError, match=r"cannot read .*GOOG\.log\.jsonl"):
        cache.info(GOOG)
