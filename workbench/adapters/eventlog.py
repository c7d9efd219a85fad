"""The trading event log in the experiment store's SQLite file (the :class:`EventLog` port).

One table, ``trading_log (session, seq, kind, key, ts, payload)``, primary key
``(session, seq)`` and unique ``(session, key)``, beside the store's ``runs``: a
session's records sit with the backtests they came from, in one file to back up.

- **Append-only.** Rows are inserted, never updated or deleted; ``seq`` is the next number
  of the session, taken inside the same ``BEGIN IMMEDIATE`` transaction as the insert, so
  two writers of one session can never interleave a batch or reuse a number.
- **Durable before acting.** A batch is committed when :meth:`append` returns; with WAL and
  ``synchronous=NORMAL`` a commit survives a kill -9 of the process (not a power cut during
  a checkpoint), which is the failure the trading loop is built to survive.
- **Keyed.** A known key with the same payload is skipped, with another payload the whole
  batch is refused (:class:`~workbench.trading.eventlog.EventLogConflict`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from workbench._sqlite import ProcessConnection, immediate
from workbench.trading.eventlog import LogRecord, new_records

__all__ = ["SQLiteEventLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trading_log (
    session TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    ts TEXT NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (session, seq), UNIQUE (session, key)
);
"""
_CHUNK = 500  # keys per IN (...) lookup: well inside SQLite's variable limit


class SQLiteEventLog:
    """The event log in ``path`` (the experiment store's file by default, see
    :func:`workbench.config.store_path`)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = ProcessConnection(self.path, _SCHEMA, timeout)

    def __repr__(self) -> str:
        return f"SQLiteEventLog({str(self.path)!r})"

    def append(self, session: str, records: Sequence[LogRecord]) -> int:
        if not records:
            return 0
        db = self._conn.get()
        with immediate(db):
            stored = self._payloads(db, session, [r.key for r in records])
            new = list(new_records(session, records, stored.get))
            row = db.execute("SELECT COALESCE(MAX(seq), -1) FROM trading_log WHERE session = ?", (session,)).fetchone()
            seq = int(row[0]) + 1
            db.executemany(
                "INSERT INTO trading_log (session, seq, kind, key, ts, payload) VALUES (?, ?, ?, ?, ?, ?)",
                [(session, seq + i, r.kind, r.key, r.ts, payload) for i, (r, payload) in enumerate(new)],
            )
        return len(new)

    @staticmethod
    def _payloads(db: object, session: str, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _CHUNK):
            part = unique[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = db.execute(  # type: ignore[attr-defined]
                f"SELECT key, payload FROM trading_log WHERE session = ? AND key IN ({marks})", (session, *part)
            ).fetchall()
            out.update(rows)
        return out

    def read(self, session: str, since: int = 0) -> list[LogRecord]:
        rows = self._conn.get().execute(
            "SELECT seq, kind, key, ts, payload FROM trading_log WHERE session = ? AND seq >= ? ORDER BY seq",
            (session, since),
        ).fetchall()
        return [LogRecord(kind=k, key=key, ts=ts, data=json.loads(p), seq=s) for s, k, key, ts, p in rows]

    def sessions(self) -> list[str]:
        rows = self._conn.get().execute(
            "SELECT session FROM trading_log GROUP BY session ORDER BY MIN(rowid)"
        ).fetchall()
        return [r[0] for r in rows]

    def close(self) -> None:
        self._conn.close()
