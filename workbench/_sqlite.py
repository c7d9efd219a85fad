"""One way to hold a SQLite file that several processes write: WAL, IMMEDIATE transactions.

The experiment store and the scheduler's attempt log both need it: a connection per
process (SQLite connections must not cross a fork), the WAL journal so readers never block
the writer, ``synchronous=NORMAL`` (a commit survives a process kill, not a power cut
mid-checkpoint), a busy timeout so writers queue, and ``BEGIN IMMEDIATE`` so a writer takes
the lock up front instead of failing on a read-to-write upgrade.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ProcessConnection", "immediate"]


class ProcessConnection:
    """This process's connection to ``path`` (re-opened in a forked child), schema applied."""

    def __init__(self, path: Path, schema: str, timeout: float, *, threads: bool = False) -> None:
        self.path, self.schema, self.timeout, self.threads = Path(path), schema, timeout, threads
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    def get(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=not self.threads)  # fmt: skip
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            conn.executescript(self.schema)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction: committed on success, rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
