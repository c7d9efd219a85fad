"""The event log port: an append-only, keyed record of everything a trading session did.

The trading loop writes a record *before* it acts on it (a bar before it is processed, an
order intent before it is sent, a decision before it is executed) and reads the log back
on a restart: the log, not the process's memory, is what the session knows.

Every record has a **key** that names what it is about (``bar:<ts>``, ``intent:<client
id>``, ``fill:<fill id>``...). Appending a record whose key the session already holds
is a no-op when the payload is the same and an :class:`EventLogConflict` when it
differs. That makes a restart simple and safe: the loop re-runs the logged inputs, writes
the same records again (ignored), and a replay that would write something *different*
under a known key (the strategy or the data changed since) stops the session instead of
trading on a divergent history.

A batch of records is appended atomically: all or none. Payloads are JSON-able dicts
(numbers, strings, lists, dicts, None), never credentials.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from workbench.errors import ParameterError

__all__ = ["LogRecord", "EventLog", "MemoryEventLog", "EventLogConflict", "canonical", "new_records"]


class EventLogConflict(ParameterError):
    """A record's key is already in the log with a different payload (a divergent replay)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class LogRecord:
    """One entry: ``kind`` (``bar``, ``intent``, ``fill``...), its unique ``key`` within the
    session, when it happened (``ts``, ISO 8601 UTC) and a JSON-able ``data`` payload.
    ``seq`` is its position in the session's log (0-based), set by the log."""

    kind: str
    key: str
    ts: str
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = -1


def canonical(data: dict[str, Any]) -> str:
    """The payload as canonical JSON (sorted keys, no NaN: it becomes null), the form two
    payloads are compared in."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(data), sort_keys=True, separators=(",", ":"), allow_nan=False)


@runtime_checkable
class EventLog(Protocol):
    """Where trading sessions keep their records (see the module notes)."""

    def append(self, session: str, records: Sequence[LogRecord]) -> int:
        """Append ``records`` atomically; return how many were new (known keys with the
        same payload are skipped; a known key with another payload raises
        :class:`EventLogConflict` and nothing is written)."""
        ...

    def read(self, session: str, since: int = 0) -> list[LogRecord]:
        """The session's records from position ``since`` on, in append order."""
        ...

    def sessions(self) -> list[str]:
        """Every session with at least one record, oldest first."""
        ...


class MemoryEventLog:
    """An in-process :class:`EventLog` (tests, notebooks), with the same rules as the store's."""

    def __init__(self) -> None:
        self._records: dict[str, list[LogRecord]] = {}
        self._payloads: dict[str, dict[str, str]] = {}

    def append(self, session: str, records: Sequence[LogRecord]) -> int:
        known = self._payloads.setdefault(session, {})
        new = list(new_records(session, records, known.get))
        rows = self._records.setdefault(session, [])
        for rec, payload in new:
            known[rec.key] = payload
            rows.append(LogRecord(kind=rec.kind, key=rec.key, ts=rec.ts, data=json.loads(payload), seq=len(rows)))
        return len(new)

    def read(self, session: str, since: int = 0) -> list[LogRecord]:
        return list(self._records.get(session, [])[since:])

    def sessions(self) -> list[str]:
        return [s for s, rows in self._records.items() if rows]


def new_records(session: str, records: Iterable[LogRecord], stored: Any) -> Iterable[tuple[LogRecord, str]]:
    """The records whose key is new, with their canonical payloads; a known key with a
    different payload raises before anything is yielded (the batch is all or none)."""
    out: list[tuple[LogRecord, str]] = []
    batch: dict[str, str] = {}
    for rec in records:
        payload = canonical(rec.data)
        before = batch.get(rec.key) or stored(rec.key)
        if before is None:
            batch[rec.key] = payload
            out.append((rec, payload))
        elif before != payload:
            raise EventLogConflict(
                f"event log {session!r}: record {rec.key} is already logged with another payload "
                f"(logged {before[:200]}, now {payload[:200]}): the replay diverged from the log"
            )
    return out
