"""The local Parquet price cache: one file per (source, symbol, timeframe), written atomically.

Layout (root defaults to ``data/cache``, see :func:`workbench.config.cache_dir`)::

    <root>/<source>/<timeframe>/<SYMBOL>.parquet     the bars (canonical OHLCV schema)
    <root>/<source>/<timeframe>/<SYMBOL>.log.jsonl   one line per fetch: ok or failed
    <root>/<source>/<timeframe>/<SYMBOL>.lock        serialises writers across processes

Names are injective, also on case-insensitive disks: a symbol made of upper-case letters,
digits and ``._=-`` (a source: lower-case) is used as it is, anything else becomes a
readable slug plus ``~`` and 12 hex digits of the SHA-256 of the exact name
(``BTC/USDT`` -> ``BTC_USDT~<hash>``, while ``BTC_USDT`` stays ``BTC_USDT``). Timeframes map
to ``1min`` / ``1mo`` so ``1m`` and ``1M`` never share a directory.

The Parquet file's schema metadata (key ``workbench``) holds source, symbol, timeframe,
adjusted flag, the covered range (what was *asked for* and fetched, which may extend past
the first/last bar, e.g. over a holiday), first/last bar, row count, the SHA-256 of the
data, the upstream id (the sample file's hash) and a SHA-256 of those fields themselves. It
is a pure function of the data, so two downloads of the same bars give byte-identical
files however they were interrupted. Fetch times and failures live in the log, not in the
Parquet file.

Every read is verified before anything is served ("data integrity over availability"):
the footer checksum, the stored source/symbol/timeframe against the key, the schema, the
row count and first/last bar, the SHA-256 of the bars and the OHLC rules. A file failing
any check is renamed aside (``<name>.parquet.corrupt-<UTC time>``, never listed, never
served) and :class:`~workbench.errors.CacheCorruptError` names it; the next load (or
``refresh=True``) fetches a fresh copy. Only regular files are read: anything else at a
cache path (a FIFO, a directory, a device, or a symlink to one) could block for ever, so
it is refused before a byte is read (a ``.parquet``: ``CacheCorruptError``, moved aside
like any bad file; a fetch log: ``CacheAccessError``, left in place). Files from before
the injective layout (schema version 1) are still read, verified, where their name did
not change (every plain upper-case symbol); a series whose name changed (``BTC/USDT``,
``BRK.B``) is a cache miss and is fetched again.

Writes go through :func:`workbench._fs.atomic_write` (a temporary file in the same
directory, fsync, then ``os.replace`` over the old file): a reader in another process sees the old file or the new one, never a
half-written one, and a writer killed at any point leaves the previous file intact. A cache
that cannot be written (read-only, disk full) raises :class:`~workbench.errors.CacheAccessError`;
reading what is cached never needs write access.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import stat as st
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from workbench._fs import atomic_write, remove_stale_temporaries
from workbench.errors import CacheAccessError, CacheCorruptError, DataError
from workbench.market import OHLCV_COLUMNS, parse_timeframe, validate_ohlcv

__all__ = ["CacheKey", "CacheEntry", "ParquetCache", "content_hash"]

_META_KEY = b"workbench"
_SCHEMA_VERSION = 2  # 2: the footer carries meta_sha256; 1 (no footer checksum) is still read
_UNIT_DIR = {
    "m": "min",
    "h": "h",
    "d": "d",
    "w": "w",
    "M": "mo",
}  # '1m' vs '1M' on case-insensitive disks
_PLAIN_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._=-]{0,79}")  # one case, no separator, no leading dot
_PLAIN_SOURCE = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_ARROW_SCHEMA = pa.schema(
    [(c, pa.float64()) for c in OHLCV_COLUMNS] + [("timestamp", pa.timestamp("ns", tz="UTC"))]
)


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the bars: int64 epoch-ns timestamps, then each OHLCV column's float64 values.

    Column by column, so the bytes are hashed where pandas keeps them (no row-major copy).
    """
    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(frame.index.as_unit("ns").asi8)))
    for col in OHLCV_COLUMNS:
        h.update(memoryview(np.ascontiguousarray(frame[col].to_numpy(dtype="float64"))))
    return h.hexdigest()


def _name(text: str, plain: re.Pattern[str]) -> str:
    """A file-name component for ``text`` that no other text maps to, on any disk.

    Plain names are kept as they are; anything else gets a slug (readable) plus a hash of
    the exact text (injective). ``~`` is never part of a plain name, so the two never meet,
    and plain names have one letter case, so case-insensitive disks cannot fold two together.
    """
    if plain.fullmatch(text):
        return text
    slug = re.sub(r"[^A-Za-z0-9._=-]", "_", text)[:40].lstrip(".") or "_"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug}~{digest}"


@dataclass(frozen=True)
class CacheKey:
    """Where a series lives in the cache: source name, symbol and timeframe."""

    source: str
    symbol: str
    timeframe: str

    def relpath(self) -> Path:
        """``<source>/<timeframe>/<symbol>``, without suffix (add one with ``name + suffix``:
        ``Path.with_suffix`` would eat the ``.B`` of ``BRK.B``)."""
        n, unit = parse_timeframe(self.timeframe)
        return (
            Path(_name(self.source, _PLAIN_SOURCE))
            / f"{n}{_UNIT_DIR[unit]}"
            / _name(self.symbol, _PLAIN_SYMBOL)
        )

    def _legacy_relpath(self) -> Path | None:
        """Where the layout before schema 2 put this key (lossy: ``BTC/USDT`` and ``BTC_USDT``
        shared it); only used to recognise such files as misses, never to read them."""
        n, unit = parse_timeframe(self.timeframe)
        safe = re.sub(r"[^A-Za-z0-9._=-]", "_", self.symbol)
        source = re.sub(r"[^A-Za-z0-9._-]", "_", self.source)
        with contextlib.suppress(ValueError):
            return (Path(source) / f"{n}{_UNIT_DIR[unit]}" / safe).with_suffix(".parquet")
        return None

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

    @property
    def key(self) -> CacheKey:
        return CacheKey(self.source, self.symbol, self.timeframe)

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


_FOOTER_FIELDS = frozenset(f.name for f in fields(CacheEntry)) - {"fetched_at"}


def _meta_hash(fields: dict[str, object]) -> str:
    """SHA-256 of the footer fields: a flipped digit in covered_end would otherwise make the
    cache claim (and never fetch) a range it does not hold."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _check_fields(fields: object) -> CacheEntry:
    """The footer fields as an entry; ValueError/TypeError for anything a writer never wrote."""
    if not isinstance(fields, dict):
        raise TypeError(f"expected a JSON object, got {type(fields).__name__}")
    fields = dict(fields)
    version = fields.pop("schema_version", None)
    if version == 2:
        if fields.pop("meta_sha256", None) != _meta_hash({**fields, "schema_version": 2}):
            raise ValueError("footer checksum (meta_sha256) does not match the footer fields")
    elif version != 1:
        raise ValueError(f"unknown schema_version {version!r}")
    if set(fields) != _FOOTER_FIELDS:
        raise ValueError(f"footer fields {sorted(fields)} are not {sorted(_FOOTER_FIELDS)}")
    entry = CacheEntry(**fields)
    parse_timeframe(entry.timeframe)
    for stamp in (entry.first, entry.last, entry.covered_start, entry.covered_end):
        if stamp is not None:
            pd.Timestamp(stamp)
    if not (isinstance(entry.rows, int) and isinstance(entry.sha256, str)):
        raise TypeError("rows must be an integer and sha256 a string")
    return entry


def _access_error(path: Path, action: str, exc: OSError) -> CacheAccessError:
    """A typed error naming the file, the system's reason and the way out."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk is full: free some space, or set WORKBENCH_CACHE_DIR to a disk with room"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS) and action == "read":
        hint = "fix the cache's permissions, or set WORKBENCH_CACHE_DIR to a readable copy"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = ("the cache is read-only: make it writable or set WORKBENCH_CACHE_DIR to a writable "
                "directory; offline=True still serves what is cached, cache=False bypasses it")  # fmt: skip
    else:
        hint = "check the cache directory (WORKBENCH_CACHE_DIR) and the disk"
    err = CacheAccessError(f"[cache_access] cannot {action} {path}: {exc.strerror or exc}; {hint}")
    err.errno = code
    return err


_KINDS = {st.S_IFIFO: "a FIFO (named pipe)", st.S_IFDIR: "a directory", st.S_IFCHR: "a character device",
          st.S_IFBLK: "a block device", st.S_IFSOCK: "a socket"}  # fmt: skip


def _kind(mode: int) -> str:
    """What a file that is not a regular one is, for the error naming it."""
    return _KINDS.get(st.S_IFMT(mode), "of an unknown file type")


def _open_regular(path: Path) -> tuple[BinaryIO | None, os.stat_result]:
    """``path`` opened for reading without ever blocking, and the fstat of what was opened;
    ``(None, stat)`` if it is not a regular file (closed again, not a byte read).

    The writer only makes regular files, so anything else at a cache path was put there by
    hand, and reading it could block for ever: a plain ``open`` of a FIFO waits for a
    writer, a device never ends. ``O_NONBLOCK`` returns at once, and the fstat is of the
    opened file itself (not of a path another process could swap in between). For a
    regular file the flag changes nothing and is cleared; the old ``open`` + ``fstat``
    made the same two system calls, so reads cost nothing more.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        if st.S_ISREG(stat.st_mode):
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb"), stat
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None, stat


def _not_regular_error(path: Path, kind: str) -> CacheAccessError:
    """A non-regular fetch log: named, never read (it is a journal: it is not moved aside)."""
    err = CacheAccessError(f"[cache_access] cannot read {path}: it is {kind}, not a regular file; "
                           "remove it (the cache only ever writes regular files)")  # fmt: skip
    err.errno = errno.EINVAL
    return err


class ParquetCache:
    """Atomic, process-safe Parquet storage of validated OHLCV frames, verified on every read.

    >>> import tempfile
    >>> cache = ParquetCache(tempfile.mkdtemp())
    >>> cache.entries()
    []
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------
    def _file(self, key: CacheKey, suffix: str) -> Path:
        rel = key.relpath()
        return self.root / rel.parent / (rel.name + suffix)

    def path(self, key: CacheKey) -> Path:
        return self._file(key, ".parquet")

    def _log_path(self, key: CacheKey) -> Path:
        return self._file(key, ".log.jsonl")

    def lock_path(self, key: CacheKey) -> Path:
        return self._file(key, ".lock")

    # -- reading -----------------------------------------------------------------------
    def info(self, key: CacheKey) -> CacheEntry | None:
        """The entry for ``key`` from the Parquet footer (cheap), or None if not cached.

        The footer is checked (checksum, stored key); the bars are verified by :meth:`read`.
        """
        got = self._load(self.path(key), key, bars=False)
        return None if got is None else self._with_log(got[0])

    def _with_log(self, entry: CacheEntry) -> CacheEntry:
        fetched_at = self._last_ok(self._log_path(entry.key), entry.sha256)
        return CacheEntry(**{**asdict(entry), "fetched_at": fetched_at})

    @staticmethod
    def _last_ok(log: Path, sha256: str) -> str | None:
        """When the file with hash ``sha256`` was fetched, from the log's last matching ok line.

        The log is a journal, not data: a torn or garbled line (a crash, a full disk) is
        skipped, so it can cost a fetch time but never hide verified bars.
        """
        try:
            fh, stat = _open_regular(log)
            if fh is None:  # a FIFO would block the read for ever
                raise _not_regular_error(log, _kind(stat.st_mode))
            with fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return None
        except CacheAccessError:
            raise
        except OSError as exc:
            raise _access_error(log, "read", exc) from exc
        for line in reversed(lines):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if (
                    isinstance(event, dict)
                    and event.get("status") == "ok"
                    and event.get("sha256") == sha256
                ):
                    return event.get("at") if isinstance(event.get("at"), str) else None
        return None

    def read(
        self, key: CacheKey, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> pd.DataFrame | None:
        """The verified cached bars in ``[start, end]`` (inclusive), or None if not cached."""
        got = self.read_verified(key, start, end)
        return None if got is None else got[0]

    def read_verified(
        self, key: CacheKey, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
    ) -> tuple[pd.DataFrame, str | None] | None:
        """The verified bars in ``[start, end]`` and, when that is the whole file, their hash.

        The whole file is read and verified, then sliced: a range read never trusts the page
        statistics a Parquet filter would skip by, and the hash checked here is handed on
        (``frame.attrs``, the backtest spec) instead of being computed a second time. A
        slice has its own hash (None here: the caller computes it if it needs it).
        """
        got = self._load(self.path(key), key, bars=True)
        if got is None:
            return None
        entry, frame = got
        assert frame is not None
        idx = frame.index
        lo = 0 if start is None else int(idx.searchsorted(start, "left"))
        hi = len(idx) if end is None else int(idx.searchsorted(end, "right"))
        if (lo, hi) == (0, len(idx)):
            return frame, entry.sha256
        return frame.iloc[lo:hi], None

    def _load(
        self, path: Path, key: CacheKey | None, *, bars: bool
    ) -> tuple[CacheEntry, pd.DataFrame | None] | None:
        """Footer entry (and bars) of one file, all from one open; None if there is no file.

        Failing to open is an access problem (the file stays); anything pyarrow cannot
        decode is corruption (the file is quarantined). So is anything that is not a regular
        file (a FIFO, a directory, a device, or a symlink to one): the writer never makes
        one, it is never read (a FIFO would block every reader for ever), and moving it
        aside (the link itself, never its target) lets the next load fetch a good copy.
        """
        try:
            fh, stat = _open_regular(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _access_error(path, "read", exc) from exc
        if fh is None:
            raise self._corrupt(path, stat, f"it is {_kind(stat.st_mode)}, not a regular file (never read)")
        with fh:
            try:
                pf = pq.ParquetFile(fh, pre_buffer=True)
                meta = pf.schema_arrow.metadata or {}
                table = pf.read() if bars else None
            except MemoryError:
                raise
            except OSError as exc:
                if exc.errno is not None:  # EIO and friends: the disk, not the file
                    raise _access_error(path, "read", exc) from exc
                raise self._corrupt(path, stat, f"not a readable Parquet file ({exc})") from exc
            except Exception as exc:
                raise self._corrupt(
                    path, stat, f"not a readable Parquet file ({type(exc).__name__}: {exc})"
                ) from exc
        entry = self._footer(path, stat, meta, key)
        if entry is None:
            return None
        return entry, None if table is None else self._bars(path, stat, entry, table)

    def _footer(
        self, path: Path, stat: os.stat_result, meta: dict[bytes, bytes], key: CacheKey | None
    ) -> CacheEntry | None:
        """The checked footer entry; None for a file of the old layout under a changed name."""
        if _META_KEY not in meta:
            raise self._corrupt(path, stat, "the footer has no workbench metadata")
        try:
            entry = _check_fields(json.loads(meta[_META_KEY]))
            stored = entry.key
            home = self.path(stored)
        except (TypeError, ValueError, RecursionError, DataError) as exc:
            raise self._corrupt(
                path, stat, f"bad footer metadata ({type(exc).__name__}: {exc})"
            ) from exc
        if home == path and key in (None, stored):
            return entry
        legacy = stored._legacy_relpath()
        if legacy is not None and self.root / legacy == path and home != path:
            return None  # written by the old layout under a name that has since changed: a miss
        raise self._corrupt(path, stat, f"the footer says it holds {stored}, not {key or home}")

    def _bars(
        self, path: Path, stat: os.stat_result, entry: CacheEntry, table: pa.Table
    ) -> pd.DataFrame:
        """The frame, once schema, shape, SHA-256 and OHLC rules all match the footer."""
        if not table.schema.equals(_ARROW_SCHEMA, check_metadata=False):
            raise self._corrupt(
                path, stat, f"the schema is not the OHLCV schema: {table.schema.remove_metadata()}"
            )
        # pandas' own metadata is never consulted (a flipped byte there must not reshape the frame)
        frame = table.replace_schema_metadata(None).to_pandas().set_index("timestamp")
        shape = (
            (len(frame), frame.index[0].isoformat(), frame.index[-1].isoformat())
            if len(frame)
            else (0, None, None)
        )
        if shape != (entry.rows, entry.first, entry.last):
            raise self._corrupt(path, stat, f"holds {shape} (rows, first, last), the footer says "
                                f"{(entry.rows, entry.first, entry.last)}")  # fmt: skip
        if content_hash(frame) != entry.sha256:
            raise self._corrupt(
                path, stat, "the bars' SHA-256 differs from the one recorded at write time"
            )
        try:
            return validate_ohlcv(frame, name=str(entry.key))
        except DataError as exc:
            raise self._corrupt(path, stat, f"the bars break the OHLCV rules: {exc}") from exc

    def _corrupt(self, path: Path, stat: os.stat_result, reason: str) -> CacheCorruptError:
        """Quarantine ``path`` and build the error; ``stat`` is the file that was read, so a
        good copy another writer has just put in its place is left alone."""
        return CacheCorruptError(path, reason + self._quarantine(path, stat))

    @staticmethod
    def _quarantine(path: Path, stat: os.stat_result) -> str:
        """Rename the bad file aside (never deleted, never overwritten); a note for the error."""
        try:
            now = os.stat(path)
            if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino):
                return " (another writer has replaced it since)"
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            target = path.with_name(f"{path.name}.corrupt-{stamp}")
            while target.exists():
                target = target.with_name(target.name + "+")
            os.rename(path, target)
        except FileNotFoundError:
            return " (already moved aside)"
        except OSError as exc:
            return f" (it could not be moved aside: {exc.strerror or exc}; delete it by hand)"
        return f" (kept as {target.name})"

    def entries(self) -> list[CacheEntry]:
        """Every cached series, sorted by source, timeframe and symbol.

        A corrupt file is quarantined and skipped with a warning (listing serves no bars).
        """
        if not self.root.exists():
            return []
        found = []
        for p in sorted(self.root.glob("*/*/*.parquet")):
            try:
                got = self._load(p, None, bars=False)
            except CacheCorruptError as exc:
                warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
                continue
            if got is not None:
                found.append(self._with_log(got[0]))
        return sorted(found, key=lambda e: (e.source, e.timeframe, e.symbol))

    # -- writing -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: CacheKey) -> Iterator[None]:
        """Exclusive writer lock for ``key`` across processes (readers never need it)."""
        path = self.lock_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+")  # noqa: SIM115 (closed below, after the lock)
        except OSError as exc:
            raise _access_error(path, "create the writer lock", exc) from exc
        with fh:
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
        fields["meta_sha256"] = _meta_hash(fields)
        table = pa.Table.from_pandas(
            frame.set_axis(frame.index.as_unit("ns").rename("timestamp")), preserve_index=True
        )
        table = table.replace_schema_metadata(
            {**table.schema.metadata, _META_KEY: json.dumps(fields, sort_keys=True).encode()}
        )
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, compression="snappy")
        target = self.path(key)
        try:
            atomic_write(target, memoryview(buffer.getvalue()))
            remove_stale_temporaries(target.parent)  # a writer SIGKILLed mid-write left one behind
        except OSError as exc:
            raise _access_error(target, "write", exc) from exc
        return entry

    def record(self, key: CacheKey, status: str, **details: object) -> None:
        """Append one event (``ok`` or ``failed`` with the error) to the key's fetch log."""
        path = self._log_path(key)
        event = {"at": pd.Timestamp.now(tz="UTC").isoformat(), "status": status, **details}
        line = json.dumps(event, default=str, sort_keys=True) + "\n"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_APPEND makes each small line one atomic write, even with several writers
            # O_NONBLOCK: a FIFO without a reader is ENXIO at once, not a wait for ever
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise _access_error(path, "append to", exc) from exc

    def remove(self, key: CacheKey) -> bool:
        """Delete a cached series (and its log); True if something was removed."""
        removed = False
        for p in (self.path(key), self._log_path(key)):
            try:
                p.unlink()
                removed = True
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _access_error(p, "delete", exc) from exc
        return removed
