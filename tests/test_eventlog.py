"""The trading event log (memory and SQLite) and reconciliation (issue 14)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.adapters.eventlog import SQLiteEventLog
from workbench.errors import ParameterError
from workbench.trading.enums import Side
from workbench.trading.eventlog import EventLogConflict, LogRecord, MemoryEventLog, canonical
from workbench.trading.events import OrderCancelled, OrderFilled
from workbench.trading.reconcile import ReconcilePolicy, reconcile
from workbench.trading.records import from_payload, to_payload
from workbench.trading.venue import VenueFill, VenueOrder, VenueState


def rec(key: str, value: object = 1, kind: str = "bar") -> LogRecord:
    return LogRecord(kind=kind, key=key, ts="2024-01-02T00:00:00+00:00", data={"v": value})


@pytest.fixture(params=["memory", "sqlite"])
def log(request, tmp_path):
    return MemoryEventLog() if request.param == "memory" else SQLiteEventLog(tmp_path / "log.sqlite")


def test_append_is_keyed_idempotent_and_numbered(log):
    assert log.append("s", [rec("a"), rec("b")]) == 2
    assert log.append("s", [rec("a"), rec("c")]) == 1  # a: same payload, skipped
    assert log.append("t", [rec("a", 2)]) == 1  # keys are per session
    rows = log.read("s")
    assert [(r.key, r.seq) for r in rows] == [("a", 0), ("b", 1), ("c", 2)]
    assert [r.key for r in log.read("s", since=2)] == ["c"]
    assert log.sessions() == ["s", "t"]


def test_a_conflicting_batch_writes_nothing(log):
    log.append("s", [rec("a")])
    with pytest.raises(EventLogConflict, match="record a is already logged with another payload"):
        log.append("s", [rec("new"), rec("a", 2)])
    with pytest.raises(EventLogConflict):
        log.append("s", [rec("x", 1), rec("x", 2)])  # inside one batch too
    assert [r.key for r in log.read("s")] == ["a"]


def test_payloads_compare_canonically():
    assert canonical({"b": 1, "a": [1.0, float("nan")]}) == canonical({"a": [1.0, None], "b": 1})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 2)), max_size=30))
def test_the_log_keeps_the_first_payload_of_each_key_in_first_seen_order(entries):
    log = MemoryEventLog()
    first: dict[str, int] = {}
    for key, value in entries:
        try:
            log.append("s", [rec(key, value)])
            first.setdefault(key, value)
        except EventLogConflict:
            assert first[key] != value
    assert [(r.key, r.data["v"]) for r in log.read("s")] == list(first.items())


def _writer(path: str, session: str, worker: int, n: int) -> None:
    log = SQLiteEventLog(path)
    for i in range(n):
        log.append(session, [rec(f"{worker}-{i}-a", i), rec(f"{worker}-{i}-b", i)])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_concurrent_writers_in_real_processes_lose_nothing_and_never_interleave_a_batch(tmp_path, method):
    path = str(tmp_path / "log.sqlite")
    ctx = mp.get_context(method)
    n, workers = 60, 4
    procs = [ctx.Process(target=_writer, args=(path, "shared" if w % 2 else f"own-{w}", w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    log = SQLiteEventLog(path)
    shared = log.read("shared")
    assert len(shared) == 2 * n * 2 and [r.seq for r in shared] == list(range(len(shared)))
    for a, b in zip(shared[::2], shared[1::2], strict=True):  # each batch's two rows are adjacent
        assert a.key.removesuffix("-a") == b.key.removesuffix("-b")
    assert sorted(log.sessions()) == ["own-0", "own-2", "shared"]
    assert all(len(log.read(f"own-{w}")) == 2 * n for w in (0, 2))


def test_the_sqlite_log_is_append_only_and_checks_its_schema(tmp_path):
    log = SQLiteEventLog(tmp_path / "log.sqlite")
    log.append("s", [rec("a")])
    db = sqlite3.connect(tmp_path / "log.sqlite")
    with pytest.raises(sqlite3.IntegrityError):  # (session, key) is unique even behind the API's back
        db.execute("INSERT INTO trading_log VALUES ('s', 5, 'bar', 'a', 't', '{}')")
    db.close()


def test_events_round_trip_through_payloads():
    t = pd.Timestamp("2024-01-02 15:30", tz="UTC")
    for event in (OrderCancelled(ts=t, order_id="wb-1", reason="x"),
                  OrderFilled(ts=t, order_id="wb-1", symbol="GOOG.SAMPLE", fill_id="F-1", side=Side.SELL,
                              quantity=3.0, price=101.5, fee=0.25, filled_quantity=3.0)):  # fmt: skip
        assert from_payload(to_payload(event)) == event
    with pytest.raises(ParameterError, match="unknown event type 'Evil'"):
        from_payload({"type": "Evil"})


# -- reconciliation ---------------------------------------------------------------------------
T = pd.Timestamp("2024-01-02", tz="UTC")


def vfill(fid: str, cid: str, qty: float, side: Side = Side.BUY) -> VenueFill:
    return VenueFill(fill_id=fid, client_id=cid, venue_order_id="v" + fid, symbol="BTC/USDT", side=side,
                     quantity=qty, price=100.0, fee=0.1, ts=T)  # fmt: skip


def vorder(cid: str) -> VenueOrder:
    return VenueOrder(client_id=cid, venue_id="v-" + cid, symbol="BTC/USDT", side=Side.BUY, quantity=1.0,
                      filled=0.0, status="open")  # fmt: skip


def test_reconcile_books_missing_fills_of_our_orders_and_flags_the_rest():
    state = VenueState(ts=T, fills=(vfill("1", "wb-a", 1.0), vfill("2", "wb-b", 0.5)),
                       positions={"BTC/USDT": 3.5}, open_orders=(vorder("wb-c"),))  # fmt: skip
    ok = reconcile(state, venue="fake", our_orders={"wb-a", "wb-b", "wb-c"}, our_fills={"1"},
                   positions={"BTC/USDT": 1.0}, baseline={"BTC/USDT": 2.0})  # fmt: skip
    assert [f.fill_id for f in ok.missing_fills] == ["2"] and ok.ok and not ok.position_gaps
    assert "was missing from the log: booked" in ok.summary()


def test_reconcile_flags_or_adopts_unknown_orders_and_position_gaps():
    state = VenueState(ts=T, fills=(vfill("9", "manual", 1.0),), positions={"BTC/USDT": 1.0},
                       open_orders=(vorder("someone-else"),))  # fmt: skip
    flagged = reconcile(state, venue="fake", our_orders=set(), our_fills=set(), positions={}, baseline={})
    assert not flagged.ok
    assert flagged.position_gaps == {"BTC/USDT": (0.0, 1.0)}
    assert [o.client_id for o in flagged.unknown_orders] == ["someone-else"] and len(flagged.unknown_fills) == 1
    assert "REFUSED" in flagged.summary() and "position gap in BTC/USDT" in flagged.summary()
    adopted = reconcile(state, venue="fake", our_orders=set(), our_fills=set(), positions={}, baseline={},
                        policy=ReconcilePolicy(unknown_orders="adopt", position_gaps="adopt"))  # fmt: skip
    assert adopted.ok and adopted.problems()


def test_reconcile_policy_is_validated():
    with pytest.raises(ParameterError, match="unknown_orders must be one of"):
        ReconcilePolicy(unknown_orders="cancel-all")
