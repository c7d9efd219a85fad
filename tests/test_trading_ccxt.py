"""The trading loop on the ccxt broker against the persistent fake venue: replay equals the
SIGNAL_CLOSE backtest, lost answers, restarts, reconciliation and the canary secret (issue 14)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.ccxt_broker import CcxtBroker
from workbench.adapters.eventlog import SQLiteEventLog
from workbench.strategies import SMACrossover
from workbench.trade import TradingSession, approve, trade
from workbench.trading.enums import AssetClass
from workbench.trading.feeds import ReplayFeed
from workbench.trading.reconcile import ReconcilePolicy, ReconciliationError
from workbench.trading.values import Instrument

sys.path.insert(0, str(Path(__file__).parent))
from _fake_exchange import FakeExchange  # noqa: E402

BTC = Instrument(ticker="BTC/USDT", exchange="fake", asset_class=AssetClass.CRYPTO, tick_size=0.01, lot_size=1e-5,
                 currency="USDT")  # fmt: skip
KW = {"commission": 0.001, "fill_timing": "SIGNAL_CLOSE", "instrument": BTC, "cash": 10_000.0}
PARAMS = {"fast": 5, "slow": 20}
FILL_COLUMNS = ["side", "quantity", "price", "fee", "ts"]


class VenueFeed(ReplayFeed):
    """Replayed bars that also move the fake venue's last price to each bar's close (what a
    real market would have done by the time the bar closed)."""

    def __init__(self, prices: pd.DataFrame, venue: FakeExchange) -> None:
        super().__init__(prices, name="BTC/USDT")
        self.venue = venue

    def steps(self, after=None):
        for ts, bars in super().steps(after):
            self.venue.set_last_price("BTC/USDT", bars[0].close)
            yield ts, bars


@pytest.fixture(scope="module")
def bars(goog: pd.DataFrame) -> pd.DataFrame:
    out = goog.iloc[:400].copy()
    out.attrs.update(goog.attrs, symbol="BTC/USDT")
    return out


@pytest.fixture(scope="module")
def reference(bars):
    store = wb.MemoryStore()
    return wb.backtest("sma_crossover", bars, PARAMS, store=store, **KW), store


def _session(tmp_path: Path, bars, reference, *, policy=None, faults=None, venue_path=None, **extra) -> TradingSession:
    result, store = reference
    venue = FakeExchange(venue_path or tmp_path / "venue.sqlite")
    strategy = SMACrossover(**PARAMS)
    strategy.start_testing()

    def broker(portfolio, bus):
        return CcxtBroker(venue, portfolio, instruments={BTC.symbol: BTC}, bus=bus, sandbox=True, sleep=lambda s: None)

    return trade(strategy, VenueFeed(bars, venue), approval=approve(result, by="risk desk"), store=store,
                 broker=broker, log=SQLiteEventLog(tmp_path / "log.sqlite"), session="ccxt", policy=policy,
                 faults=faults, **KW, **extra)  # fmt: skip


def _venue_orders(tmp_path: Path) -> list[dict]:
    return FakeExchange(tmp_path / "venue.sqlite").all_orders()


def assert_matches_reference(sess: TradingSession, result, tmp_path: Path) -> None:
    bf, lf = result.fills.reset_index(drop=True), sess.fills.reset_index(drop=True)
    log = SQLiteEventLog(tmp_path / "log.sqlite").read("ccxt")
    logged = pd.DataFrame([r.data for r in log if r.kind == "fill"])
    assert len(logged) == len(bf) > 0
    assert list(logged["side"]) == list(bf["side"])
    pd.testing.assert_series_equal(logged["quantity"].astype(float), bf["quantity"], check_names=False)
    pd.testing.assert_series_equal(logged["price"].astype(float), bf["price"], check_names=False)
    assert logged["fee"].astype(float).tolist() == pytest.approx(bf["fee"].tolist(), rel=1e-9)
    orders = _venue_orders(tmp_path)
    cids = [o["clientOrderId"] for o in orders]
    assert len(cids) == len(set(cids)) == len(result.orders)  # one venue order per decision, none twice
    venue = FakeExchange(tmp_path / "venue.sqlite").fetch_balance()["total"]
    assert venue.get("BTC", 0.0) == pytest.approx(sess.loop.portfolio.quantity(BTC), abs=1e-9)
    assert sess.loop.reconciliations and all(r.ok for r in sess.loop.reconciliations)
    del lf


def test_a_replay_through_the_ccxt_broker_equals_the_signal_close_backtest(tmp_path, bars, reference):
    sess = _session(tmp_path, bars, reference)
    assert_matches_reference(sess, reference[0], tmp_path)
    assert sess.loop.venue.name == "ccxt:fake (sandbox)"


def test_a_lost_answer_to_create_order_ends_with_one_order_and_one_fill(tmp_path, bars, reference):
    venue = FakeExchange(tmp_path / "venue.sqlite")
    drops = {"n": 0}

    def faults(point: str) -> None:
        if point == "intent_logged" and drops["n"] < 3:  # the next three orders: accepted, answer lost
            venue.drop_next_response("create_order")
            drops["n"] += 1

    sess = _session(tmp_path, bars, reference, faults=faults)
    assert drops["n"] == 3
    assert_matches_reference(sess, reference[0], tmp_path)


class Crash(Exception):
    pass


@pytest.mark.parametrize("point", ["intent_logged", "submitted", "fills_received", "step_logged"])
def test_a_crash_then_a_restart_neither_loses_nor_duplicates_an_order(tmp_path, bars, reference, point):
    seen = {"n": 0}

    def faults(p: str) -> None:
        if p == point:
            seen["n"] += 1
            if seen["n"] == 3:
                raise Crash(p)

    with pytest.raises(Crash):
        _session(tmp_path, bars, reference, faults=faults)
    sess = _session(tmp_path, bars, reference)
    cids = [o["clientOrderId"] for o in _venue_orders(tmp_path)]
    assert len(cids) == len(set(cids))
    venue = FakeExchange(tmp_path / "venue.sqlite").fetch_balance()["total"]
    assert venue.get("BTC", 0.0) == pytest.approx(sess.loop.portfolio.quantity(BTC), abs=1e-9)
    assert all(r.ok and not r.position_gaps for r in sess.loop.reconciliations)
    if point in ("fills_received", "step_logged", "submitted"):  # the venue had the order: same outcome
        assert_matches_reference(sess, reference[0], tmp_path)


def test_the_loop_refuses_to_start_on_an_unknown_order_or_a_position_gap(tmp_path, bars, reference):
    _session(tmp_path, bars.iloc[:60], reference)  # a session exists
    venue = FakeExchange(tmp_path / "venue.sqlite")
    venue.set_last_price("BTC/USDT", 50.0)
    venue.create_order("BTC/USDT", "limit", "buy", 1.0, 10.0, {"clientOrderId": "someone-else"})  # rests
    with pytest.raises(ReconciliationError, match="unknown open order .* client id someone-else"):
        _session(tmp_path, bars.iloc[:80], reference)
    sess = _session(tmp_path, bars.iloc[:80], reference, policy=ReconcilePolicy(unknown_orders="adopt"))
    assert "unknown open order" in sess.reconciliation
    venue.create_order("BTC/USDT", "market", "buy", 0.5, None, {"clientOrderId": "manual-trade"})
    with pytest.raises(ReconciliationError, match="position gap in BTC/USDT.fake"):
        _session(tmp_path, bars.iloc[:100], reference, policy=ReconcilePolicy(unknown_orders="adopt"))
    both = ReconcilePolicy(unknown_orders="adopt", position_gaps="adopt")
    sess = _session(tmp_path, bars.iloc[:100], reference, policy=both)
    assert sess.loop.baseline["BTC/USDT.fake"] == pytest.approx(0.5)
    assert sess.loop.reconciliations[-1].ok


def test_canary_credentials_appear_nowhere(tmp_path, bars, reference, caplog, monkeypatch):
    canary_key, canary_secret = "CANARY-KEY-7f3e9a1b", "CANARY-SECRET-c0ffee42"
    monkeypatch.setenv("CCXT_FAKE_API_KEY", canary_key)
    monkeypatch.setenv("CCXT_FAKE_SECRET", canary_secret)
    monkeypatch.setenv("WORKBENCH_STORE", str(tmp_path / "store.sqlite"))
    venue = FakeExchange(tmp_path / "venue.sqlite")
    venue.apiKey, venue.secret = os.environ["CCXT_FAKE_API_KEY"], os.environ["CCXT_FAKE_SECRET"]  # as ccxt holds them
    venue.fail_next("create_order", type("InvalidOrder", (Exception,), {})(f"bad request apiKey={canary_key}"))
    result, _ = reference
    store = wb.SQLiteStore(tmp_path / "store.sqlite")
    store.save(result)
    strategy = SMACrossover(**PARAMS)
    strategy.start_testing()
    caplog.set_level(logging.DEBUG)
    notes = tmp_path / "notifications.log"
    from workbench.trade import notify_to_file

    sess = trade(strategy, VenueFeed(bars.iloc[:120], venue), approval=approve(result, by="risk"), store=store,
                 broker=lambda p, b: CcxtBroker(venue, p, instruments={BTC.symbol: BTC}, bus=b, sleep=lambda s: None),
                 log=SQLiteEventLog(tmp_path / "store.sqlite"), session="canary", notify=notify_to_file(notes), **KW)  # fmt: skip
    sess.save(store)
    from workbench.report import run_report

    # the trading runbook, run with the canary keys in its kernel's environment: its notebook
    # and HTML report must not carry them either
    report = run_report("paper_trade", {"start": "2010-01-01", "end": "2010-12-31"}, root=tmp_path / "reports",
                        timeout=300, text_parameters=frozenset({"start", "end"}))  # fmt: skip
    assert report.status == "ok", report.error
    rejected = sess.orders[sess.orders["status"] == "REJECTED"]
    assert len(rejected) == 1 and "bad request" in rejected["reason"].iloc[0]
    texts = [repr(sess), repr(sess.loop.venue), sess.reconciliation, sess.orders.to_csv(), sess.fills.to_csv(),
             caplog.text, notes.read_text()]  # fmt: skip
    for path in tmp_path.iterdir():  # the log and the store (one SQLite file), notifications, WAL files
        if path.name.startswith("store") or path.suffix == ".log":
            texts.append(path.read_bytes().decode("latin-1"))
    reports = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]  # the risk runbook's notebook and HTML
    assert any(p.suffix == ".ipynb" for p in reports) and any(p.suffix == ".html" for p in reports)
    texts += [p.read_bytes().decode("latin-1") for p in reports]
    for text in texts:
        assert canary_key not in text and canary_secret not in text


def test_periodic_reconciliation_stops_the_session_on_a_trade_it_cannot_explain(tmp_path, bars, reference):
    venue = FakeExchange(tmp_path / "venue.sqlite")

    class Meddling(VenueFeed):
        def steps(self, after=None):
            for k, step in enumerate(super().steps(after)):
                if k == 70:  # someone trades on the account mid-session
                    venue.create_order("BTC/USDT", "market", "buy", 0.25, None, {"clientOrderId": "manual"})
                yield step

    result, store = reference
    strategy = SMACrossover(**PARAMS)
    strategy.start_testing()
    log = SQLiteEventLog(tmp_path / "log.sqlite")
    with pytest.raises(ReconciliationError, match="position gap in BTC/USDT.fake"):
        trade(strategy, Meddling(bars, venue), approval=approve(result, by="r"), store=store, log=log, session="p",
              broker=lambda p, b: CcxtBroker(venue, p, instruments={BTC.symbol: BTC}, bus=b, sleep=lambda s: None),
              reconcile_every=25, **KW)  # fmt: skip
    checks = [r for r in log.read("p") if r.kind == "reconcile"]
    assert [c.data["ok"] for c in checks] == [True, True, True, False]  # start, steps 25 and 50, then 75
    steps = [r for r in log.read("p") if r.kind == "step"]
    assert len(steps) == 75  # stopped at the check that found the gap


def test_a_fill_the_log_missed_is_booked_once_even_when_its_order_cannot_be_found(tmp_path, bars, reference,
                                                                                  monkeypatch):  # fmt: skip
    seen = {"n": 0}

    def faults(p: str) -> None:
        if p == "submitted":
            seen["n"] += 1
            if seen["n"] == 2:
                raise Crash(p)  # the venue filled the order; the log knows only its intent

    with pytest.raises(Crash):
        _session(tmp_path, bars, reference, faults=faults)
    monkeypatch.setattr(CcxtBroker, "find_order", lambda self, cid, inst: None)  # a venue whose lookup fails
    sess = _session(tmp_path, bars, reference)
    start = sess.loop.reconciliations[0]
    assert len(start.missing_fills) == 1 and start.ok and not start.position_gaps
    venue = FakeExchange(tmp_path / "venue.sqlite").fetch_balance()["total"]
    assert venue.get("BTC", 0.0) == pytest.approx(sess.loop.portfolio.quantity(BTC), abs=1e-9)
    logged = [r.data["fill_id"] for r in SQLiteEventLog(tmp_path / "log.sqlite").read("ccxt") if r.kind == "fill"]
    assert len(logged) == len(set(logged)) == len(reference[0].fills) == len(sess.fills)
    assert all(r.ok and not r.position_gaps for r in sess.loop.reconciliations)


@pytest.mark.live
def test_live_sandbox_round_trip():
    """Off by default (``-m live``): needs the network and CCXT_BINANCE_API_KEY/_SECRET of a
    Binance spot *testnet* account. One tiny limit order far from the market, found by its
    client id, reconciled, cancelled."""
    if not (os.environ.get("CCXT_BINANCE_API_KEY") and os.environ.get("CCXT_BINANCE_SECRET")):
        pytest.skip("set CCXT_BINANCE_API_KEY and CCXT_BINANCE_SECRET (Binance spot testnet keys)")
    from workbench.trading.portfolio import Portfolio

    broker = CcxtBroker("binance", Portfolio(1_000.0, "USDT"), sandbox=True)
    inst = broker.instrument("BTC/USDT")
    ticker = broker.exchange.fetch_ticker("BTC/USDT")
    order = broker.place(inst, "BUY", 0.001, pd.Timestamp.now(tz="UTC"), "LIMIT",
                         limit_price=round(ticker["last"] * 0.5, 2))  # fmt: skip
    try:
        assert broker.find_order(order.order_id, inst) is not None
        assert order.order_id in {o.client_id for o in broker.venue_state([inst]).open_orders}
    finally:
        broker.cancel(order, pd.Timestamp.now(tz="UTC"))
