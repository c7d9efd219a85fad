"""Loading prices: one call for every source, served through the local Parquet cache.

``load_prices("GOOG")`` returns one validated OHLCV frame (schema in
:mod:`workbench.market`); ``load_prices(["SPX", "IXIC"])`` a panel with ``(symbol, field)``
columns. Sources (``source=``):

==================  ===================================================  =======  ======
name                what                                                 network  cached
==================  ===================================================  =======  ======
``"sample"``        the real files in ``data/sample/`` (default)         no       yes
``"yfinance"``      Yahoo Finance via yfinance (raw, or ``adjusted=True``)  yes   yes
``"ccxt:<id>"``     any ccxt exchange, e.g. ``"ccxt:binance"``           yes      yes
``"synthetic"``     seeded GBM bars, symbol ``"SYN<seed>"``              no       no
``"file:<path>"``   a local CSV/Parquet (``{symbol}`` in the path)       no       no
an object           anything implementing :class:`~workbench.market.PriceSource`
==================  ===================================================  =======  ======

Panel calendar policy (``align=``), for series whose calendars differ (an equity index
trades on weekdays, bitcoin every day):

- ``"intersection"`` (default): only timestamps every symbol has;
- ``"union"``: every timestamp, gaps left visible as NaN;
- ``"ffill"``: union, then each symbol's last Close carried forward into its gaps as a
  flat bar (Open = High = Low = Close, Volume 0); before a symbol's first bar and after
  its last the gaps stay NaN. Only on request,
  because a carried-forward price is a price nobody could trade at.

Caching: cached sources are read from ``data/cache`` (``WORKBENCH_CACHE_DIR``); only the
part of ``[start, end]`` not yet covered is fetched, and each downloaded chunk is
committed atomically, so an interrupted download resumes where it stopped. Online
sources never store the still-open current bar. ``offline=True`` (or
``WORKBENCH_OFFLINE=1``) serves from the cache and raises :class:`CacheMissError` naming
the missing range. Every fetch, ok or failed, is appended to the entry's log.
Every read from the cache is verified (footer checksum, stored key, SHA-256 of the bars,
OHLC rules) before it is served: a corrupt file raises :class:`CacheCorruptError` and is
moved aside, and the next load (or ``refresh=True``) fetches a fresh copy. A cache that
cannot be written (read-only, disk full) raises :class:`CacheAccessError`; offline reads of
what it holds still work.

Each frame carries its instrument metadata in ``frame.attrs``: symbol, name, asset class,
currency, lot and tick size, timeframe, source, ``adjusted`` and the data's SHA-256.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.adapters.sample import SampleSource, sample_manifest
from workbench.adapters.store import CacheEntry, CacheKey, ParquetCache, content_hash
from workbench.config import cache_dir
from workbench.config import offline as offline_env
from workbench.errors import (
    CacheAccessError,
    CacheMissError,
    DataError,
    DataValidationError,
    InsufficientHistoryError,
    NoDataError,
    ParameterError,
)
from workbench.market import (
    OHLCV_COLUMNS,
    PriceSource,
    resample_ohlcv,
    timeframe_nanos,
    validate_ohlcv,
)
from workbench.trading.enums import AssetClass
from workbench.trading.values import Instrument, utc_timestamp

__all__ = [
    "load_prices",
    "get_source",
    "default_cache",
    "sample_symbols",
    "sample_manifest",
    "instrument_for",
    "ALIGN_POLICIES",
]

ALIGN_POLICIES = ("intersection", "union", "ffill")


def default_cache() -> ParquetCache:
    """The cache at :func:`workbench.config.cache_dir` (``data/cache`` by default)."""
    return ParquetCache(cache_dir())


def get_source(source: str | PriceSource, **options: Any) -> PriceSource:
    """Resolve a source name (see the module docstring) to a :class:`PriceSource`.

    >>> get_source("sample").name
    'sample'
    """
    if not isinstance(source, str):
        if not isinstance(source, PriceSource):
            raise ParameterError(
                f"source must be a name or a PriceSource, got {type(source).__name__}"
            )
        return source
    name = source.strip()
    kind, _, arg = name.partition(":")
    kind = kind.lower()
    if kind == "sample":
        return SampleSource()
    if kind == "synthetic":
        from workbench.adapters.synthetic import SyntheticSource

        return SyntheticSource(**options)
    if kind == "yfinance":
        from workbench.adapters.yahoo import YFinanceSource

        return YFinanceSource(**options)
    if kind == "ccxt":
        from workbench.adapters.crypto import CcxtSource

        exchange = arg or options.pop("exchange", None)
        if not exchange:
            raise ParameterError(
                "ccxt needs an exchange: source='ccxt:binance' (any id in ccxt.exchanges)"
            )
        return CcxtSource(exchange, **options)
    if kind == "file":
        from workbench.adapters.files import LocalFileSource

        if not arg:
            raise ParameterError("file source needs a path: source='file:prices/{symbol}.csv'")
        return LocalFileSource(arg, **options)
    raise ParameterError(
        f"unknown source {source!r}; expected sample, yfinance, ccxt:<exchange>, synthetic or file:<path>"
    )


def sample_symbols() -> list[str]:
    """Symbols with OHLCV bars in the offline sample."""
    return SampleSource().symbols()


def instrument_for(symbol: str, source: str | PriceSource = "sample") -> Instrument:
    """The :class:`Instrument` for a symbol (lot size, tick size, currency...)."""
    src = get_source(source)
    m = src.metadata(_normal(src, symbol))
    return Instrument(
        ticker=m["symbol"],
        exchange=m.get("exchange", src.name.upper()),
        asset_class=AssetClass.parse(m["asset_class"]),
        tick_size=m["tick_size"],
        lot_size=m["lot_size"],
        currency=m["currency"],
    )


def _normal(src: PriceSource, symbol: str) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ParameterError(f"symbol must be a non-empty string, got {symbol!r}")
    return symbol.strip() if getattr(src, "case_sensitive", False) else symbol.strip().upper()


def _bound(value: object, name: str) -> pd.Timestamp | None:
    return None if value is None else utc_timestamp(value, name, DataError)


def _now(src: PriceSource) -> pd.Timestamp:
    clock = getattr(src, "now", None)
    return clock() if callable(clock) else pd.Timestamp.now(tz="UTC")


# -- one symbol through the cache ----------------------------------------------------------
def _merge(old: pd.DataFrame | None, new: pd.DataFrame, name: str) -> pd.DataFrame:
    """Append ``new`` bars to ``old``; overlapping bars must be identical (else reject)."""
    if old is None or old.empty:
        return new
    common = old.index.intersection(new.index)
    if len(common):
        a = old.loc[common, OHLCV_COLUMNS].to_numpy()
        b = new.loc[common, OHLCV_COLUMNS].to_numpy()
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        if differ.any():
            ts = common[int(np.argmax(differ))]
            raise DataValidationError(
                "cache_conflict",
                f"{name}: the source now reports {dict(new.loc[ts, OHLCV_COLUMNS])} at {ts} but the "
                f"cache holds {dict(old.loc[ts, OHLCV_COLUMNS])}; the vendor revised its history "
                "(adjusted prices change after every dividend or split): reload with refresh=True",
                ts,
            )
        new = new[~new.index.isin(common)]
    return validate_ohlcv(pd.concat([old, new]).sort_index(kind="stable"), name=name)


def _complete(
    src: PriceSource, frame: pd.DataFrame, timeframe: str, now: pd.Timestamp
) -> pd.DataFrame:
    """Drop bars that have not closed yet (start + timeframe > now) from an online source."""
    if not src.online or frame.empty:
        return frame
    closed = frame.index.as_unit("ns").asi8 + timeframe_nanos(timeframe) <= now.as_unit("ns").value
    return frame[closed]


class _Fill:
    """Fetch one missing range into the cache, committing chunk by chunk."""

    def __init__(self, cache: ParquetCache, key: CacheKey, src: PriceSource, upstream: str | None,
                 checkpoint_seconds: float) -> None:  # fmt: skip
        self.cache, self.key, self.src, self.upstream = cache, key, src, upstream
        self.checkpoint_seconds = checkpoint_seconds

    def run(
        self, entry: CacheEntry | None, gap: tuple[pd.Timestamp | None, pd.Timestamp | None]
    ) -> CacheEntry:
        start, end = gap
        key, src = self.key, self.src
        now = _now(src)
        leading = (
            entry is not None
            and entry.covered_start is not None
            and end == pd.Timestamp(entry.covered_start)
        )
        data = self.cache.read(key) if entry is not None else None
        cov_start = start if (entry is None or leading) else _ts(entry.covered_start)
        if src.online and (end is None or end > now):
            end_final = now - pd.Timedelta(
                timeframe_nanos(key.timeframe), "ns"
            )  # last bar that can have closed
        else:
            end_final = end
        last_write = time.monotonic()
        dirty = False
        got = 0
        for chunk in src.fetch(key.symbol, key.timeframe, start, end):
            chunk = _complete(
                src, validate_ohlcv(chunk, name=key.symbol, repair=True), key.timeframe, now
            )
            if src.online:
                chunk = chunk.loc[start:end]
            if chunk.empty:
                continue
            got += len(chunk)
            data = _merge(data, chunk, key.symbol)
            dirty = True
            if not leading and time.monotonic() - last_write >= self.checkpoint_seconds:
                # checkpoint: what is on disk is complete up to this chunk's last bar
                self._write(data, cov_start, chunk.index[-1])
                last_write, dirty = time.monotonic(), False
        if data is None or data.empty:
            raise NoDataError(
                f"[empty_download] {key}: the source returned no bars between {start} and {end}"
            )
        cov_end = end_final if not leading else _ts(entry.covered_end)
        current = None if entry is None else self._current()
        if dirty or current is None or (_ts(current.covered_start), _ts(current.covered_end)) != (cov_start, cov_end):
            written = self._write(data, cov_start, cov_end)
        else:
            written = current
        self.cache.record(key, "ok", sha256=written.sha256, rows=written.rows, fetched_rows=got,
                          requested=[_iso(start), _iso(end)])  # fmt: skip
        return written

    def _current(self) -> CacheEntry:
        entry = self.cache.info(self.key)
        assert entry is not None
        return entry

    def _write(
        self, data: pd.DataFrame, cov_start: pd.Timestamp | None, cov_end: pd.Timestamp | None
    ) -> CacheEntry:
        return self.cache.write(self.key, data, adjusted=self.src.adjusted, covered_start=cov_start,
                                covered_end=cov_end, upstream=self.upstream)  # fmt: skip


def _ts(value: str | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None else value.isoformat()


def _check_entry(
    entry: CacheEntry | None, src: PriceSource, upstream: str | None, key: CacheKey
) -> CacheEntry | None:
    if entry is None:
        return None
    if upstream is not None and entry.upstream != upstream:
        return None  # the sample file changed: rebuild its cached copy
    if entry.adjusted != bool(src.adjusted):
        want, have = (
            ("adjusted" if src.adjusted else "raw"),
            ("adjusted" if entry.adjusted else "raw"),
        )
        raise DataValidationError(
            "adjustment_mixed",
            f"{key}: {want} prices asked for but the cache holds {have} prices; one frame never "
            "mixes the two: pass refresh=True to replace the cached series",
        )
    return entry


def _load_one(
    src: PriceSource,
    symbol: str,
    timeframe: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    cache: ParquetCache | None,
    offline: bool,
    refresh: bool,
    checkpoint_seconds: float,
) -> tuple[pd.DataFrame, str | None]:
    """The bars of one symbol and, when the cache verified exactly these bars, their hash."""
    if cache is None or not getattr(src, "cacheable", True):
        if offline and src.online:
            raise CacheMissError(f"{src.name}:{symbol}: offline and caching is off")
        chunks = [
            validate_ohlcv(c, name=symbol, repair=True)
            for c in src.fetch(symbol, timeframe, start, end)
        ]
        chunks = [c for c in chunks if not c.empty]
        if not chunks:
            raise NoDataError(f"[empty_download] {src.name}:{symbol}: the source returned no bars")
        frame = _complete(
            src, chunks[0] if len(chunks) == 1 else pd.concat(chunks), timeframe, _now(src)
        )
        return frame.loc[start:end], None
    key = CacheKey(src.name, symbol, timeframe)
    upstream = src.upstream(symbol) if hasattr(src, "upstream") else None
    entry = None if refresh else _check_entry(cache.info(key), src, upstream, key)
    gaps = [(start, end)] if entry is None else entry.missing(start, end)
    if entry is not None and offline and end is None:
        gaps = [
            g for g in gaps if g[1] is not None
        ]  # offline "up to now" means up to what is cached
    if gaps:
        if offline and src.online:
            have = (
                "nothing"
                if entry is None
                else f"{entry.covered_start or 'start'} .. {entry.covered_end or 'end'}"
            )
            raise CacheMissError(
                f"[offline] {key}: {_iso(start) or 'start'} .. {_iso(end) or 'now'} is not cached "
                f"(cached: {have}); go online or run `workbench data fetch {symbol} --source {src.name}`"
            )
        with cache.lock(key):
            entry = (
                None if refresh else _check_entry(cache.info(key), src, upstream, key)
            )  # another process may have filled it
            gaps = [(start, end)] if entry is None else entry.missing(start, end)
            if entry is None and not src.online:
                gaps = [(None, None)]  # a static source (the sample) is cached whole, once
            fill = _Fill(cache, key, src, upstream, checkpoint_seconds)
            for gap in gaps:
                try:
                    entry = fill.run(entry, gap)
                except BaseException as exc:
                    with contextlib.suppress(CacheAccessError):  # a full disk: keep the first error
                        cache.record(
                            key,
                            "failed",
                            error=f"{type(exc).__name__}: {exc}",
                            requested=[_iso(gap[0]), _iso(gap[1])],
                        )
                    raise
    got = cache.read_verified(key, start, end)
    if got is None or got[0].empty:
        info = cache.info(key)
        raise NoDataError(
            f"[no_data_in_range] {key}: no bars between {_iso(start) or 'start'} and {_iso(end) or 'end'}"
            + (f"; the data covers {info.first} .. {info.last}" if info else "")
        )
    return got


def _attrs(
    src: PriceSource, symbol: str, timeframe: str, frame: pd.DataFrame, sha256: str | None
) -> dict[str, Any]:
    """Instrument metadata plus the data's SHA-256 (``sha256``: already verified by the cache)."""
    meta = {
        k: v
        for k, v in src.metadata(symbol).items()
        if k not in ("source", "repairs", "file", "sha256", "rows", "start", "end")
    }
    return {**meta, "symbol": symbol, "source": src.name, "timeframe": timeframe, "adjusted": bool(src.adjusted),
            "sha256": sha256 or content_hash(frame)}  # fmt: skip


def load_prices(
    symbols: str | Sequence[str],
    start: object = None,
    end: object = None,
    timeframe: str | None = None,
    source: str | PriceSource = "sample",
    *,
    align: str = "intersection",
    adjusted: bool | None = None,
    offline: bool | None = None,
    refresh: bool = False,
    min_bars: int | None = None,
    progress: bool | None = None,
    cache: ParquetCache | None | bool = True,
    checkpoint_seconds: float = 5.0,
) -> pd.DataFrame:
    """Validated OHLCV bars for one symbol, or an aligned panel for several.

    Parameters
    ----------
    symbols : str or sequence of str
        One symbol gives an OHLCV frame; several give a ``(symbol, field)`` panel (each
        symbol once: a duplicate is a :class:`ParameterError`).
    start, end : date-like, optional
        Inclusive bounds on the bar stamps; naive values are read as UTC.
    timeframe : str, optional
        ``"1m"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1w"``, ``"1M"``... Default: the source's
        native timeframe (``"1d"`` for online sources). A timeframe coarser than the
        source's is built with :func:`~workbench.market.resample_ohlcv` (no look-ahead).
    source : str or PriceSource
        ``"sample"`` (default), ``"yfinance"``, ``"ccxt:<exchange>"``, ``"synthetic"``,
        ``"file:<path>"`` or a source object.
    align : {"intersection", "union", "ffill"}
        Panel calendar policy (module docstring).
    adjusted : bool, optional
        yfinance only: split/dividend-adjusted (True) or raw (False, the default) prices.
    offline : bool, optional
        Serve from the cache only; default from ``WORKBENCH_OFFLINE``.
    refresh : bool
        Re-download and replace the cached series (the way back after a
        :class:`~workbench.errors.CacheCorruptError`).
    min_bars : int, optional
        Raise :class:`InsufficientHistoryError` if fewer bars come back.
    progress : bool, optional
        Progress bar over symbols; default on for more than one symbol.
    cache : ParquetCache, True or False
        The cache to use (True: the default cache; False/None: bypass it).

    >>> import workbench as wb
    >>> wb.load_prices("GOOG", start="2005-01-01", end="2005-01-31").shape
    (20, 5)
    """
    s, e = _bound(start, "start"), _bound(end, "end")
    if s is not None and e is not None and s > e:
        raise DataError(f"[range] start {s} is after end {e}")
    if align not in ALIGN_POLICIES:
        raise ParameterError(f"align must be one of {ALIGN_POLICIES}, got {align!r}")
    if min_bars is not None and (not isinstance(min_bars, (int, np.integer)) or min_bars < 1):
        raise ParameterError(f"min_bars must be a positive integer, got {min_bars!r}")
    options = {} if adjusted is None else {"adjusted": adjusted}
    src = get_source(source, **options)
    if adjusted is not None and bool(getattr(src, "adjusted", False)) != adjusted:
        raise ParameterError(
            f"source {src.name!r} serves adjusted={src.adjusted}, not adjusted={adjusted}"
        )
    store = default_cache() if cache is True else (cache or None)
    is_offline = offline_env() if offline is None else bool(offline)
    single = isinstance(symbols, str)
    names = [_normal(src, symbols)] if single else [_normal(src, x) for x in symbols]
    if not names:
        raise ParameterError("no symbols given")
    _check_unique(names)

    def one(sym: str) -> pd.DataFrame:
        native = src.native_timeframe(sym, timeframe)
        frame, sha256 = _load_one(src, sym, native, s, e, store, is_offline, refresh,
                                  checkpoint_seconds)  # fmt: skip
        if timeframe is not None and timeframe != native:
            frame, sha256 = resample_ohlcv(frame, timeframe, source_timeframe=native), None
        tf = timeframe or native
        if min_bars is not None and len(frame) < min_bars:
            raise InsufficientHistoryError(
                f"[min_bars] {sym}: {len(frame)} {tf} bars between {frame.index[0]} and "
                f"{frame.index[-1]}, fewer than the {min_bars} asked for"
            )
        frame.attrs = _attrs(src, sym, tf, frame, sha256)
        return frame

    if single:
        return one(names[0])
    frames = {sym: one(sym) for sym in _progress(names, progress, f"loading from {src.name}")}
    return align_panel(frames, align)


def _check_unique(names: list[str]) -> None:
    """A symbol asked for twice is a ParameterError naming it (after case folding, so
    ``["goog", "GOOG"]`` counts): the panel has one column block per symbol, so it would
    otherwise come back silently with fewer symbols than were asked for."""
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise ParameterError(f"symbol {name!r} is asked for twice (positions {first[name]} and {i} "
                                 f"of {names}); list each symbol once")  # fmt: skip
        first[name] = i


def _progress(items: list[str], enabled: bool | None, desc: str) -> Iterable[str]:
    if enabled is False or (enabled is None and len(items) < 2):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="symbol")


def align_panel(frames: dict[str, pd.DataFrame], align: str = "intersection") -> pd.DataFrame:
    """Combine per-symbol OHLCV frames into a ``(symbol, field)`` panel (policies above)."""
    join = "inner" if align == "intersection" else "outer"
    panel = pd.concat(frames, axis=1, join=join, sort=True)
    panel.columns.names = ["symbol", "field"]
    if panel.empty:
        raise NoDataError(f"[no_common_bars] symbols {list(frames)} share no timestamps")
    if align == "ffill":
        for sym in frames:
            close = panel[(sym, "Close")].ffill()
            inside = (
                panel.index <= frames[sym].index[-1]
            )  # never carry a price past the series' end
            gap = panel[(sym, "Close")].isna() & close.notna() & inside
            for f in ("Open", "High", "Low", "Close"):
                panel[(sym, f)] = panel[(sym, f)].where(~gap, close)
            panel[(sym, "Volume")] = panel[(sym, "Volume")].where(~gap, 0.0)
    panel.attrs = {
        "symbols": list(frames),
        "align": align,
        "meta": {k: dict(v.attrs) for k, v in frames.items()},
    }
    return panel
