"""The local Parquet price cache: one file per (source, symbol, timeframe), written atomically.

Layout (root defaults to ``data/cache``, see :func:`workbench.config.cache_dir`)::

    <root>/<source>/<timeframe>/<SYMBOL>.parquet     the bars (canonical OHLCV schema)
    <root>/<source>/<timeframe>/<SYMBOL>.log.jsonl   one line per fetch: ok or failed
    <root>/<source>/<timeframe>/<SYMBOL>.lock        serialises writers across processes

The Parquet file's schema metadata (key ``workbench``) holds source, symbol, timeframe,
adjusted flag, the covered range (what was *asked for* and fetched, which may extend past
the first/last bar, e.g. over a holiday), first/last bar, row count, the SHA-256 of the
data and the upstream id (the sample file's hash). It is a pure function of the data, so
two downloads of the same bars give byte-identical files however they were interrupted.
Fetch times and failures live in the log, not in the Parquet file.

Writes go through :func:`workbench._fs.atomic_write` (a temporary file in the same
directory, fsync, then ``os.replace`` over the old file): a reader in another process sees the old file or the new one, never a
half-written one, and a writer killed at any point leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench._fs import atomic_write
from workbench.errors import DataError
from workbench.market import OHLCV_COLUMNS, parse_timeframe

__all__ = ["CacheKey", "CacheEntry", "ParquetCache", "content_hash"]

_META_KEY = b"workbench"
_SCHEMA_VERSION = 1
_UNIT_DIR = {
    "m": "min",
    "h": "h",
    "d": "d",
    "w": "w",
    "M": "mo",
}  # '1m' vs '1M' on case-insensitive disks


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the bars: int64 epoch-ns timestamps, then each OHLCV column's float64 values.

    Column by column, so the bytes are hashed where pandas keeps them (no row-major copy).
    """
    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(frame.index.as_unit("ns").asi8)))
    for col in OHLCV_COLUMNS:
        h.update(memoryview(np.ascontiguousarray(frame[col].to_numpy(dtype="float64"))))
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """Where a series lives in the cache: source name, symbol and timeframe."""

    source: str
    symbol: str
    timeframe: str

    def relpath(self) -> Path:
        n, unit = parse_timeframe(self.timeframe)
        safe = re.sub(r"[^A-Za-z0-9._=-]", "_", self.symbol)
        return Path(re.sub(r"[^A-Za-z0-9._-]", "_", self.source)) / f"{n}{_UNIT_DIR[unit]}" / safe

    def __str__(self) -> str:
        return f"{self.source}:{self.symbol}:{self.timeframe}"


@dataclass(frozen=True)
class CacheEntry:
    """What the cache holds for one key (read from the Parquet footer and the fetch log)."""

    source: str
    symbol: str
    timeframe: str
    adjusted: bool
    covered_start: str | None  # ISO UTC; None = from the source's first bar
    covered_end: str | None  # ISO UTC; None = to the source's last bar (static sources)
    first: str
    last: str
    rows: int
    sha256: str
    upstream: str | None = None
    fetched_at: str | None = None

    def covers(self, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
        return not self.missing(start, end)

    def missing(
        self, start: pd.Timestamp | None, end: pd.Timestamp | None
    ) -> list[tuple[pd.Timestamp | None, pd.Timestamp | None]]:
        """The sub-ranges of ``[start, end]`` not covered yet (at most one before, one after)."""
        cs = None if self.covered_start is None else pd.Timestamp(self.covered_start)
        ce = None if self.covered_end is None else pd.Timestamp(self.covered_end)
        gaps: list[tuple[pd.Timestamp | None, pd.Timestamp | None]] = []
        if cs is not None and (start is None or start < cs):
            gaps.append((start, cs))
        if ce is not None and (end is None or end > ce):
            gaps.append((ce, end))
        return gaps


class ParquetCache:
    """Atomic, process-safe Parquet storage of validated OHLCV frames.

    >>>     >>> cache = ParquetCache(tempfile.mkdtemp())
    >>> cache.entries()
    []
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------
    def path(self, key: CacheKey) -> Path:
        return self.root / key.relpath().with_suffix(".parquet")

    def _log_path(self, key: CacheKey) -> Path:
        return self.root / key.relpath().with_suffix(".log.jsonl")

    # -- reading -----------------------------------------------------------------------
    def info(self, key: CacheKey) -> CacheEntry | None:
        """The entry for ``key`` from the Parquet footer (cheap), or None if not cached."""
        return self._info_at(self.path(key))

    def _info_at(self, path: Path) -> CacheEntry | None:
        try:
            meta = pq.read_schema(path).metadata or {}
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"[cache_corrupt] cannot read cache file {path}: {exc}") from exc
        if _META_KEY not in meta:
            raise DataError(f"[cache_corrupt] {path} has no workbench metadata")
        fields = json.loads(meta[_META_KEY])
        fields.pop("schema_version", None)
        fields["fetched_at"] = self._last_ok(path.with_suffix(".log.jsonl"), fields["sha256"])
        return CacheEntry(**fields)

    @staticmethod
    def _last_ok(log: Path, sha256: str) -> str | None:
        try:
            lines = log.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in reversed(lines):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("status") == "ok" and event.get("sha256") == sha256:
                    return event.get("at")
        return None

    def read(
        self, key: CacheKey, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame | None:
        """The cached bars in ``[start, end]`` (inclusive), or None if ``key`` is not cached."""
        path = self.path(key)
        filters = []
        if start is not None:
            filters.append(("timestamp", ">=", start))
        if end is not None:
            filters.append(("timestamp", "<=", end))
        try:
            table = pq.read_table(path, filters=filters or None)
        except FileNotFoundError:
            return None
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"[cache_corrupt] cannot read cache file {path}: {exc}") from exc
        frame = table.to_pandas()
        frame.attrs = {}
        return frame

    def entries(self) -> list[CacheEntry]:
        """Every cached series, sorted by source, timeframe and symbol."""
        if not self.root.exists():
            return []
        found = [self._info_at(p) for p in sorted(self.root.glob("*/*/*.parquet"))]
        return sorted((e for e in found if e), key=lambda e: (e.source, e.timeframe, e.symbol))

    # -- writing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: CacheKey) -> Iterator[None]:
        """Exclusive writer lock for ``key`` across processes (readers never need it)."""
        path = self.root / key.relpath().with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def write(
        self,
        key: CacheKey,
        frame: pd.DataFrame,
        *,
        adjusted: bool,
        covered_start: pd.Timestamp | None,
        covered_end: pd.Timestamp | None,
        upstream: str | None = None,
    ) -> CacheEntry:
        """Atomically replace the cached series for ``key`` with ``frame`` (already validated)."""
        if frame.empty:
            raise DataError(f"[cache_write] refusing to cache an empty frame for {key}")
        frame = frame[OHLCV_COLUMNS]
        frame.attrs = {}  # pandas would serialise attrs into the file; the file must depend on the bars only
        entry = CacheEntry(
            source=key.source,
            symbol=key.symbol,
            timeframe=key.timeframe,
            adjusted=bool(adjusted),
            covered_start=None if covered_start is None else covered_start.isoformat(),
            covered_end=None if covered_end is None else covered_end.isoformat(),
            first=frame.index[0].isoformat(),
            last=frame.index[-1].isoformat(),
            rows=len(frame),
            sha256=content_hash(frame),
            upstream=upstream,
        )
        fields = {k: v for k, v in asdict(entry).items() if k != "fetched_at"}
        fields["schema_version"] = _SCHEMA_VERSION
        table = pa.Table.from_pandas(
            frame.set_axis(frame.index.as_unit("ns").rename("timestamp")), preserve_index=True
        )
        table = table.replace_schema_metadata(
            {**table.schema.metadata, _META_KEY: json.dumps(fields, sort_keys=True).encode()}
        )
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, compression="snappy")
        atomic_write(target, memoryview(buffer.getvalue()))
        return entry

    def record(self, key: CacheKey, status: str, **details: object) -> None:
        """Append one event (``ok`` or ``failed`` with the error) to the key's fetch log."""
        path = self._log_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        event = {"at": pd.Timestamp.now(tz="UTC").isoformat(), "status": status, **details}
        line = json.dumps(event, default=str, sort_keys=True) + "\n"
        # O_APPEND makes each small line one atomic write, even with several writers
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def remove(self, key: CacheKey) -> bool:
        """Delete a cached series (and its log); True if something was removed."""
        removed = False
        for p in (self.path(key), self._log_path(key)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed = True
        return removed
