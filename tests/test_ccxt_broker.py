"""CcxtBroker: order entry, idempotency, polling and secrets, all offline.

Two venues: a real ``ccxt.binance`` whose HTTP layer (``exchange.fetch``) answers from
Binance's recorded responses (tests/payloads/binance_order_*.json, see README_ccxt.md), so
ccxt's own request building, signing, parsing and error mapping run; and
:class:`FakeExchange`, the persistent ccxt-shaped venue, for fills, faults and processes.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.adapters.ccxt_broker import CcxtBroker, fee_in_quote
from workbench.errors import OrderStateError, ParameterError
from workbench.trading import (
    Bar,
    EventBus,
    Instrument,
    Order,
    OrderModified,
    OrderStatus,
    Portfolio,
)
from workbench.trading.events import Event
from workbench.trading.venue import client_order_id

from ._fake_exchange import FakeExchange
from .fakes import payload

TESTS = Path(__file__).resolve().parent
T0 = pd.Timestamp("2024-01-01", tz="UTC")
KLINES = payload("binance_klines_BTCUSDT_1h.json")  # recorded BTCUSDT hourly bars: the prices below
PX = float(KLINES[0][4])  # the first recorded close


def no_sleep(seconds: float) -> None:
    pass


# -- a real ccxt.binance over recorded responses ------------------------------------------
class BinanceTradeHttp:
    """The HTTP layer of a real ``ccxt.binance``: exchangeInfo and the spot order endpoints.

    Answers are the recorded responses with the fields a request decides (symbol, ids,
    quantity, price, type, side, status) taken from the request, over a small book (client
    id -> order) so that a lookup finds what a create stored. A market order fills at
    ``fill_price`` with one trade (the recorded trade's shape, fee 0.1 % in USDT). Errors
    go through ccxt's own ``handle_errors``, as a real HTTP 400 would.
    """

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self.info = payload("binance_exchangeInfo.json")
        self.errors = payload("binance_order_errors.json")
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []  # method, endpoint, params, headers
        self.book: dict[str, dict[str, Any]] = {}
        self.drop_next_create = False
        self.fill_price = "42000.00"
        self.balances: list[dict[str, str]] | None = None
        self._ids = iter(range(9_780_331_417, 10**10))
        self._ms = iter(range(1_704_067_200_000, 2**62, 1000))

    def creates(self) -> list[dict[str, str]]:
        return [p for m, e, p, _ in self.requests if (m, e) == ("POST", "order")]

    def __call__(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parsed = urlparse(url)
        if parsed.path.endswith("/exchangeInfo"):
            return copy.deepcopy(self.info)
        params = {k: v[0] for k, v in (parse_qs(parsed.query) | parse_qs(body or "")).items()}
        endpoint = parsed.path.rsplit("/api/v3/", 1)[-1]
        self.requests.append((method, endpoint, params, dict(headers or {})))
        handler = {("POST", "order"): self._create, ("GET", "order"): self._query, ("DELETE", "order"): self._cancel,
                   ("GET", "openOrders"): self._open, ("GET", "myTrades"): self._trades,
                   ("GET", "account"): self._account}[(method, endpoint)]  # fmt: skip
        return handler(url, method, params)

    def _fail(self, url: str, method: str, key: str) -> None:
        body = json.dumps(self.errors[key])
        self.exchange.handle_errors(400, "Bad Request", url, method, {}, body, json.loads(body), None, None)
        raise ccxt.ExchangeError(body)  # pragma: no cover - ccxt maps every recorded error

    def _create(self, url: str, method: str, p: dict[str, str]) -> Any:
        cid = p["newClientOrderId"]
        if cid in self.book and self.book[cid]["status"] == "NEW":
            self._fail(url, method, "duplicate")
        market = p["type"] == "MARKET"
        ms = str(next(self._ms))
        order = payload("binance_order_new.json") | {
            "symbol": p["symbol"], "orderId": str(next(self._ids)), "clientOrderId": cid, "transactTime": ms,
            "workingTime": ms, "price": p.get("price", "0.00000000"), "origQty": p["quantity"], "type": p["type"],
            "side": p["side"], "timeInForce": p.get("timeInForce", "GTC"), "icebergQty": "0.00000000",
            "status": "FILLED" if market else "NEW", "executedQty": p["quantity"] if market else "0.00000000",
        }  # fmt: skip
        order["cummulativeQuoteQty"] = str(Decimal(p["quantity"]) * Decimal(self.fill_price)) if market else "0"
        order["trades"] = [self._trade(order, p["quantity"])] if market else []
        self.book[cid] = order
        if self.drop_next_create:
            self.drop_next_create = False
            raise ccxt.RequestTimeout(f"binance POST {url}")  # what ccxt raises when the answer never comes
        return {k: v for k, v in order.items() if k != "trades"}

    def _trade(self, order: dict[str, Any], qty: str) -> dict[str, Any]:
        quote_qty = Decimal(qty) * Decimal(self.fill_price)
        return payload("binance_order_trades.json")[0] | {
            "symbol": order["symbol"], "id": str(309_520_010 + len(self.book)), "orderId": order["orderId"],
            "price": self.fill_price, "qty": qty, "quoteQty": str(quote_qty), "commission": str(quote_qty / 1000),
            "time": order["transactTime"], "isBuyer": order["side"] == "BUY",
        }  # fmt: skip

    def _find(self, url: str, method: str, p: dict[str, str]) -> dict[str, Any]:
        cid = p.get("origClientOrderId") or next((c for c, o in self.book.items() if o["orderId"] == p.get("orderId")), None)
        if cid not in self.book:
            self._fail(url, method, "not_found")
        return self.book[cid]  # type: ignore[index]

    def _as_query(self, o: dict[str, Any]) -> dict[str, Any]:
        keys = ("symbol", "orderId", "clientOrderId", "price", "origQty", "executedQty", "cummulativeQuoteQty",
                "status", "timeInForce", "type", "side")  # fmt: skip
        return payload("binance_order_query.json") | {k: o[k] for k in keys} | {
            "time": o["transactTime"], "updateTime": o["transactTime"], "workingTime": o["transactTime"]}

    def _query(self, url: str, method: str, p: dict[str, str]) -> Any:
        return self._as_query(self._find(url, method, p))

    def _open(self, url: str, method: str, p: dict[str, str]) -> Any:
        template = payload("binance_order_open.json")[0]
        return [template | self._as_query(o) for o in self.book.values() if o["status"] == "NEW" and o["symbol"] == p["symbol"]]

    def _cancel(self, url: str, method: str, p: dict[str, str]) -> Any:
        o = self._find(url, method, p)
        if o["status"] != "NEW":
            self._fail(url, method, "unknown_order")
        o["status"] = "CANCELED"
        keys = ("symbol", "orderId", "price", "origQty", "executedQty", "type", "side", "status")
        return payload("binance_order_cancel.json") | {k: o[k] for k in keys} | {"origClientOrderId": o["clientOrderId"]}

    def _trades(self, url: str, method: str, p: dict[str, str]) -> Any:
        start = int(p.get("startTime", 0))
        return [t for o in self.book.values() for t in o["trades"] if o["symbol"] == p["symbol"] and int(t["time"]) >= start]

    def _account(self, url: str, method: str, p: dict[str, str]) -> Any:
        recorded = payload("binance_order_account.json")
        return recorded | ({"balances": self.balances} if self.balances is not None else {})


def binance() -> tuple[Any, BinanceTradeHttp]:
    ex = ccxt.binance({"apiKey": "test-key-0001", "secret": "test-secret-0001",
                       "options": {"fetchMarkets": {"types": ["spot"]}}})  # fmt: skip
    http = BinanceTradeHttp(ex)
    ex.fetch = http
    ex.rateLimit = 1  # ccxt's limiter stays on; 1 ms keeps the tests fast
    return ex, http


def usdt() -> Portfolio:
    return Portfolio(100_000, currency="USDT")


#: an instrument finer than Binance's BTC/USDT (lot 1e-5, tick 0.01): orders built on it need rounding
FINE = Instrument(ticker="BTC/USDT", exchange="binance", asset_class="CRYPTO", tick_size=0.001, lot_size=1e-8,
                  currency="USDT")  # fmt: skip


def order(inst: Instrument, qty: float, oid: str = "wb-1", side: str = "BUY", **kw: Any) -> Order:
    return Order(order_id=oid, instrument=inst, side=side, quantity=qty, ts=T0, **kw)


def test_binance_request_carries_our_client_id_and_the_terms_rounded_to_the_market() -> None:
    ex, http = binance()
    bus, seen = EventBus(), []
    bus.subscribe(Event, seen.append)
    broker = CcxtBroker(ex, usdt(), bus=bus, sleep=no_sleep)
    o = broker.submit(order(FINE, 0.01234567, "wb-7f3a", order_type="LIMIT", limit_price=41000.006))
    (sent,) = http.creates()
    assert sent["newClientOrderId"] == "wb-7f3a" and sent["symbol"] == "BTCUSDT" and sent["type"] == "LIMIT"
    assert (sent["quantity"], sent["price"]) == ("0.01234", "41000.01")  # truncated to 1e-5, rounded to 0.01
    assert "signature" in sent and http.requests[-1][3]["X-MBX-APIKEY"] == "test-key-0001"  # a real signed request
    assert o.status is OrderStatus.ACCEPTED and broker._vid["wb-7f3a"] == http.book["wb-7f3a"]["orderId"]
    assert (o.quantity, o.limit_price) == (0.01234, 41000.01)  # the book says what the venue got
    assert [type(e).__name__ for e in seen] == ["OrderPlaced", "OrderModified", "OrderAccepted"]
    assert broker.name == "ccxt:binance (sandbox)" and "testnet" in ex.urls["api"]["private"]


def test_binance_duplicate_answer_is_resolved_by_fetching_the_order() -> None:
    ex, http = binance()
    first = CcxtBroker(ex, usdt(), sleep=no_sleep)
    first.submit(order(first.instrument("BTC/USDT"), 0.01, "wb-dup", order_type="LIMIT", limit_price=41000.0))
    again = CcxtBroker(ex, usdt(), sleep=no_sleep)  # a restarted loop sends the same decision again
    o = again.submit(order(again.instrument("BTC/USDT"), 0.01, "wb-dup", order_type="LIMIT", limit_price=41000.0))
    assert len(http.creates()) == 2 and len(http.book) == 1  # Binance answered -2010 "Duplicate order sent."
    lookup = [p for m, e, p, _ in http.requests if (m, e) == ("GET", "order")]
    assert lookup[-1]["origClientOrderId"] == "wb-dup"
    assert o.status is OrderStatus.ACCEPTED and again._vid["wb-dup"] == http.book["wb-dup"]["orderId"]


def test_binance_timeout_on_create_then_a_lookup_finds_it_sends_no_second_create(caplog: pytest.LogCaptureFixture) -> None:
    ex, http = binance()
    http.drop_next_create = True
    broker = CcxtBroker(ex, usdt(), sleep=no_sleep)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-lost"))
    assert len(http.creates()) == 1 and o.status is OrderStatus.ACCEPTED
    fills = broker.on_bar(inst, Bar(T0, PX, PX, PX, PX, 1.0))
    assert [f.fill_id for f in fills] == [f"BTC/USDT:{http.book['wb-lost']['trades'][0]['id']}"]
    assert fills[0].fee == pytest.approx(0.01 * 42000 * 0.001)  # recorded commission, in USDT
    assert o.status is OrderStatus.FILLED and broker.on_bar(inst, Bar(T0, PX, PX, PX, PX, 1.0)) == []
    assert "RequestTimeout" in caplog.text and "retry 1/3" in caplog.text


def test_binance_refuses_stop_market_by_name_and_small_orders_by_limit_without_sending() -> None:
    ex, http = binance()
    broker = CcxtBroker(ex, usdt(), sleep=no_sleep)
    inst = broker.instrument("BTC/USDT")
    assert (inst.tick_size, inst.lot_size, inst.currency) == (0.01, 1e-5, "USDT")
    stop = broker.submit(order(inst, 0.01, "wb-s", side="SELL", order_type="STOP", stop_price=39000.0))
    small = broker.submit(order(inst, 0.0001, "wb-m", order_type="LIMIT", limit_price=40000.0))
    assert stop.status is OrderStatus.REJECTED and stop.reason == "binance does not support STOP orders for BTC/USDT"
    assert small.status is OrderStatus.REJECTED and "cost 4 USDT" in small.reason and "limits.cost.min" in small.reason
    assert http.creates() == []
    ok = broker.submit(order(inst, 0.001, "wb-sl", side="SELL", order_type="STOP_LIMIT", stop_price=39000.0,
                             limit_price=38900.0))  # fmt: skip
    assert ok.status is OrderStatus.ACCEPTED and http.creates()[-1]["type"] == "STOP_LOSS_LIMIT"
    assert http.creates()[-1]["stopPrice"] == "39000"


def test_binance_cancel_polls_and_balances_parse() -> None:
    ex, http = binance()
    broker = CcxtBroker(ex, usdt(), sleep=no_sleep)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-c", order_type="LIMIT", limit_price=40000.0))
    broker.cancel(o, T0, "strategy paused")
    assert o.status is OrderStatus.CANCELLED and o.reason == "strategy paused"
    assert http.book["wb-c"]["status"] == "CANCELED" and not broker.has_open_orders
    http.balances = [{"asset": "BTC", "free": "0.25", "locked": "0.05"}, {"asset": "USDT", "free": "900.5", "locked": "0"}]
    acct = broker.account()
    assert (acct.cash, dict(acct.positions)) == (900.5, {"BTC/USDT.binance": 0.3})


# -- FakeExchange ---------------------------------------------------------------------------
@pytest.fixture
def fake(tmp_path: Path) -> FakeExchange:
    fx = FakeExchange(tmp_path / "venue.sqlite")
    fx.set_last_price("BTC/USDT", 40000.0)
    fx.set_last_price("ETH/USDT", 2000.0)
    return fx


def broker_on(fx: FakeExchange, **kw: Any) -> CcxtBroker:
    return CcxtBroker(fx, usdt(), sleep=no_sleep, **kw)


@pytest.mark.parametrize(("kind", "terms", "venue"), [
    ("MARKET", {}, ("market", None, None, "closed")),
    ("LIMIT", {"limit_price": 30000.0, "time_in_force": "GTC"}, ("limit", 30000.0, None, "open")),
    ("STOP", {"stop_price": 60000.0}, ("market", None, 60000.0, "open")),
    ("STOP_LIMIT", {"stop_price": 60000.0, "limit_price": 60100.0}, ("limit", 60100.0, 60000.0, "open")),
])  # fmt: skip
def test_order_types_map_to_ccxt_types_and_trigger_prices(fake: FakeExchange, kind: str, terms: dict, venue: tuple) -> None:
    broker = broker_on(fake)
    o = broker.submit(order(broker.instrument("BTC/USDT"), 0.01, "wb-t", order_type=kind, **terms))
    (at,) = fake.all_orders()
    assert o.status is OrderStatus.ACCEPTED and at["clientOrderId"] == "wb-t"
    price = at["price"] if at["type"] == "limit" else None
    assert (at["type"], price, at["triggerPrice"], at["status"]) == venue


def test_ioc_limit_is_sent_with_its_time_in_force_and_ends_as_the_venue_says(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-ioc", order_type="LIMIT", limit_price=30000.0, time_in_force="IOC"))
    assert fake.all_orders()[0]["timeInForce"] == "IOC" and fake.all_orders()[0]["status"] == "expired"
    broker.on_bar(inst, Bar(T0, PX, PX, PX, PX, 1.0))
    assert o.status is OrderStatus.EXPIRED and "expired" in o.reason


def test_unsupported_types_are_rejected_by_name_and_never_sent(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    eth = broker.instrument("ETH/USDT")
    o = broker.submit(order(eth, 0.1, "wb-e", order_type="STOP_LIMIT", stop_price=2100.0, limit_price=2110.0))
    assert o.status is OrderStatus.REJECTED and o.reason == "fake does not support STOP_LIMIT orders for ETH/USDT"
    fake.has = FakeExchange.has | {"createStopMarketOrder": False}  # an exchange with no stop-market at all
    s = broker.submit(order(broker.instrument("BTC/USDT"), 0.01, "wb-s", order_type="STOP", stop_price=60000.0))
    assert s.reason == "fake does not support STOP orders for BTC/USDT" and fake.all_orders() == []


def test_amount_is_truncated_to_the_step_and_the_order_amended_before_sending(fake: FakeExchange) -> None:
    bus, amended = EventBus(), []
    bus.subscribe(OrderModified, amended.append)
    fine = Instrument(ticker="BTC/USDT", exchange="fake", asset_class="CRYPTO", tick_size=0.001, lot_size=1e-8, currency="USDT")
    broker = broker_on(fake, bus=bus, instruments={fine.symbol: fine})  # keyed as the trading loop keys them
    assert broker.instrument("BTC/USDT") is fine
    o = broker.submit(order(fine, 0.01234567, "wb-r", order_type="LIMIT", limit_price=30000.004))
    (at,) = fake.all_orders()
    assert (at["amount"], at["price"]) == (0.01234, 30000.0) == (o.quantity, o.limit_price)
    assert [(e.quantity, e.limit_price) for e in amended] == [(0.01234, 30000.0)]


@pytest.mark.parametrize(("qty", "price", "limit"), [
    (0.0005, 40000.0, "below the minimum amount 0.001 (limits.amount.min)"),
    (0.002, 2000.0, "cost 4 USDT (amount 0.002 x price 2000) is below the minimum cost 5 (limits.cost.min)"),
    (20.0, 40000.0, "above the maximum amount 10 (limits.amount.max)"),
])  # fmt: skip
def test_orders_breaking_the_market_limits_are_rejected_naming_limit_and_value(tmp_path: Path, qty: float, price: float,
                                                                               limit: str) -> None:  # fmt: skip
    spec = ("BTCUSDT", "BTC", "USDT", 0.0001, 0.01, 0.001, 10.0, 5.0, ["MARKET", "LIMIT"])
    fx = FakeExchange(tmp_path / "v.sqlite", markets={"BTC/USDT": spec})
    broker = broker_on(fx)
    o = broker.submit(order(broker.instrument("BTC/USDT"), qty, order_type="LIMIT", limit_price=price))
    assert o.status is OrderStatus.REJECTED and limit in o.reason and fx.all_orders() == []


def test_a_venue_refusal_rejects_with_the_venues_message(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    o = broker.submit(order(broker.instrument("BTC/USDT"), 50.0, "wb-big"))  # 50 BTC from 100k USDT
    assert o.status is OrderStatus.REJECTED and o.reason == "ccxt:fake (sandbox): fake Account has insufficient balance for requested action."


def test_dropped_create_answer_gives_one_venue_order_and_one_booked_fill(fake: FakeExchange) -> None:
    fake.set_last_price("BTC/USDT", PX)  # the recorded market
    fake.drop_next_response("create_order")  # the venue takes the order, the answer is lost
    broker = broker_on(fake)
    inst = broker.instrument("BTC/USDT")
    before = fake.fetch_balance()["total"]
    cid = client_order_id("spec-1", inst.symbol, T0, 0)
    o = broker.submit(order(inst, 0.05, cid))
    fills = [f for k in KLINES[:3] for f in broker.on_bar(inst, Bar(pd.Timestamp(k[0], unit="ms", tz="UTC"), *map(float, k[1:6])))]
    after = fake.fetch_balance()["total"]
    assert [v["clientOrderId"] for v in fake.all_orders()] == [cid]  # exactly one order at the venue
    assert len(fills) == 1 and len(fake.fetch_my_trades("BTC/USDT")) == 1 and o.status is OrderStatus.FILLED
    assert broker.portfolio.quantity(inst) == pytest.approx(after["BTC"] - before.get("BTC", 0.0), abs=1e-12) == 0.05
    assert broker.portfolio.cash - 100_000 == pytest.approx(after["USDT"] - before["USDT"], rel=1e-12)
    assert fills[0].fee == pytest.approx(0.05 * PX * 0.001)


def test_a_naive_resend_would_have_traded_twice(fake: FakeExchange) -> None:
    """The fake accepts a reused client id once the first order has ended (as Binance
    does): what makes the test above able to fail."""
    fake.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "wb-x"})
    fake.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "wb-x"})
    assert len(fake.all_orders()) == 2


def test_every_attempt_lost_leaves_the_order_pending_until_a_poll_settles_it(fake: FakeExchange) -> None:
    for _ in range(2):
        fake.fail_next("create_order", ccxt.RequestTimeout("fake create_order timed out"))
    broker = broker_on(fake, attempts=2)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-p"))
    assert o.status is OrderStatus.PENDING and broker.has_open_orders
    broker.on_bar(inst, Bar(T0, PX, PX, PX, PX, 1.0))
    assert o.status is OrderStatus.REJECTED and "never placed" in o.reason and fake.all_orders() == []


def test_a_restarted_broker_adopts_the_venues_order_on_a_duplicate_answer(fake: FakeExchange) -> None:
    first = broker_on(fake)
    first.submit(order(first.instrument("BTC/USDT"), 0.01, "wb-d", order_type="LIMIT", limit_price=30000.0))
    second = broker_on(fake)
    inst = second.instrument("BTC/USDT")
    o = second.submit(order(inst, 0.01, "wb-d", order_type="LIMIT", limit_price=30000.0))
    assert o.status is OrderStatus.ACCEPTED and len(fake.all_orders()) == 1
    fake.set_last_price("BTC/USDT", 29999.0)
    assert [f.quantity for f in second.on_bar(inst, Bar(T0, PX, PX, PX, PX, 1.0))] == [0.01]


def test_fee_in_the_base_asset_is_booked_in_quote_at_the_trade_price(tmp_path: Path) -> None:
    fx = FakeExchange(tmp_path / "v.sqlite", fee_in_base=True)
    fx.set_last_price("BTC/USDT", 40000.0)
    broker = broker_on(fx)
    inst = broker.instrument("BTC/USDT")
    broker.submit(order(inst, 0.1, "wb-f"))
    (fill,) = broker.on_bar(inst, Bar(T0, 1, 1, 1, 1, 1))
    assert fill.fee == pytest.approx(0.1 * 0.001 * 40000.0)  # 0.0001 BTC at 40,000
    assert fx.fetch_balance()["total"]["BTC"] == pytest.approx(0.0999)  # the venue's position is net of it
    assert fee_in_quote([{"cost": 2.0, "currency": "BNB"}], "BTC", "USDT", 40000.0, lambda c, cur: c * 300.0) == 600.0


def test_modify_without_edit_order_raises_naming_the_venue(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    o = broker.submit(order(broker.instrument("BTC/USDT"), 0.01, order_type="LIMIT", limit_price=30000.0))
    with pytest.raises(OrderStateError, match=r"ccxt:fake \(sandbox\) cannot amend orders in place"):
        broker.modify(o, T0, limit_price=30100.0)
    assert o.limit_price == 30000.0 and fake.all_orders()[0]["price"] == 30000.0


def test_modify_goes_through_edit_order_where_the_venue_has_it(fake: FakeExchange) -> None:
    fake.has = FakeExchange.has | {"editOrder": True}
    bus, amended = EventBus(), []
    bus.subscribe(OrderModified, amended.append)
    broker = broker_on(fake, bus=bus)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-m", order_type="LIMIT", limit_price=30000.0))
    broker.modify(o, T0, quantity=0.02, limit_price=30500.004)
    (at,) = fake.all_orders()
    assert (at["amount"], at["price"], at["clientOrderId"]) == (0.02, 30500.0, "wb-m")
    assert (o.quantity, o.limit_price) == (0.02, 30500.0) and [e.quantity for e in amended] == [0.02]
    with pytest.raises(ParameterError, match="takes no stop_price"):
        broker.modify(o, T0, stop_price=29000.0)  # refused before the venue sees it
    fake.set_last_price("BTC/USDT", 30400.0)
    assert sum(f.quantity for f in broker.on_bar(inst, Bar(T0, 1, 1, 1, 1, 1))) == pytest.approx(0.02)


def test_cancelling_an_order_the_venue_filled_books_the_fill_and_raises(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-late", order_type="LIMIT", limit_price=30000.0))
    fake.set_last_price("BTC/USDT", 29900.0)  # it fills before the cancel arrives
    with pytest.raises(OrderStateError, match=r"has it no longer open.*FILLED here after polling"):
        broker.cancel(o, T0)
    assert o.status is OrderStatus.FILLED and [f.order_id for f in broker.fills_since(0)] == ["wb-late"]


def test_expire_all_ends_day_orders_at_the_venue_and_keeps_gtc(fake: FakeExchange) -> None:
    broker = broker_on(fake)
    inst = broker.instrument("BTC/USDT")
    day = broker.submit(order(inst, 0.01, "wb-day", order_type="LIMIT", limit_price=30000.0, time_in_force="DAY"))
    gtc = broker.submit(order(inst, 0.01, "wb-gtc", order_type="LIMIT", limit_price=30000.0))
    broker.expire_all(T0, "session ended")
    assert (day.status, day.reason, gtc.status) == (OrderStatus.EXPIRED, "session ended", OrderStatus.ACCEPTED)
    assert [o["status"] for o in fake.all_orders()] == ["canceled", "open"]
    assert broker.open_orders == [gtc]


def test_adopt_takes_a_rebuilt_order_in_the_state_the_venue_reports(fake: FakeExchange) -> None:
    before = broker_on(fake)
    inst = before.instrument("BTC/USDT")
    before.submit(order(inst, 0.01, "wb-a", order_type="LIMIT", limit_price=30000.0))
    before.submit(order(inst, 0.01, "wb-b", order_type="LIMIT", limit_price=30000.0))
    fake.cancel_order(fake.all_orders()[1]["id"], "BTC/USDT")
    after = broker_on(fake)  # a restart: orders rebuilt PENDING from the event log
    a, b = (order(inst, 0.01, cid, order_type="LIMIT", limit_price=30000.0) for cid in ("wb-a", "wb-b"))
    for o in (a, b):
        after.adopt(o, after.find_order(o.order_id, inst))
    assert (a.status, b.status) == (OrderStatus.ACCEPTED, OrderStatus.CANCELLED)
    fake.set_last_price("BTC/USDT", 29000.0)
    assert [f.order_id for f in after.on_bar(inst, Bar(T0, 1, 1, 1, 1, 1))] == ["wb-a"] and a.status is OrderStatus.FILLED
    state = after.venue_state([inst])
    assert [f.client_id for f in state.fills] == ["wb-a"] and dict(state.positions) == {"BTC/USDT.fake": 0.01}
    assert state.cash == pytest.approx(100_000 - 0.01 * 30000 * 1.001) and state.open_orders == ()  # filled at its limit


_CHILD = """
import json, os, signal, sys
sys.path[:0] = [sys.argv[2], sys.argv[3]]  # tests/ and the repository: no pytest needed
import pandas as pd
from _fake_exchange import FakeExchange
from workbench.adapters.ccxt_broker import CcxtBroker
from workbench.trading import Order, Portfolio

broker = CcxtBroker(FakeExchange(sys.argv[1]), Portfolio(100_000, currency="USDT"), sleep=lambda s: None)
inst = broker.instrument("BTC/USDT")
seen = broker.find_order("wb-parent", inst)
broker.submit(Order(order_id="wb-child", instrument=inst, side="BUY", quantity=0.02, ts=pd.Timestamp("2024-01-01", tz="UTC"),
                    order_type="LIMIT", limit_price=30000.0))
print(json.dumps({"seen": seen.venue_id, "status": seen.status}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean exit: what is committed must be there
"""


def test_two_processes_over_one_fake_file_see_the_same_venue(fake: FakeExchange) -> None:
    parent = broker_on(fake)
    inst = parent.instrument("BTC/USDT")
    parent.submit(order(inst, 0.01, "wb-parent", order_type="LIMIT", limit_price=30000.0))
    run = subprocess.run([sys.executable, "-c", _CHILD, str(fake.path), str(TESTS), str(TESTS.parent)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert json.loads(run.stdout) == {"seen": parent._vid["wb-parent"], "status": "open"}
    child = parent.find_order("wb-child", inst)
    assert child is not None and (child.quantity, child.status, child.limit_price) == (0.02, "open", 30000.0)
    adopted = order(inst, 0.02, "wb-child", order_type="LIMIT", limit_price=30000.0)
    parent.adopt(adopted, child)
    fake.set_last_price("BTC/USDT", 29500.0)
    assert sorted(f.order_id for f in parent.on_bar(inst, Bar(T0, 1, 1, 1, 1, 1))) == ["wb-child", "wb-parent"]
    assert parent.portfolio.quantity(inst) == pytest.approx(FakeExchange(fake.path).fetch_balance()["total"]["BTC"])


def test_an_exchange_without_sandbox_is_a_parameter_error(tmp_path: Path) -> None:
    fx = FakeExchange(tmp_path / "v.sqlite", no_sandbox=True)
    with pytest.raises(ParameterError, match=r"fake has no sandbox/testnet.*TypeError.*pass sandbox=False"):
        CcxtBroker(fx, usdt())
    assert CcxtBroker(fx, usdt(), sandbox=False).name == "ccxt:fake (live)"
    assert FakeExchange(fx.path).fetch_balance()["total"] == {"USDT": 100_000.0}  # the switch is stored, not the state reset
    with pytest.raises(ParameterError, match=r"kraken has no sandbox/testnet.*pass sandbox=False"):
        CcxtBroker(ccxt.kraken(), usdt())  # ccxt itself raises a plain TypeError here


def test_canary_keys_never_reach_a_repr_a_message_a_log_or_an_order(monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    key, secret = "CANARY-KEY-7c1d9e", "CANARY-SECRET-5b2f8a"
    monkeypatch.setenv("CCXT_BINANCE_API_KEY", key)
    monkeypatch.setenv("CCXT_BINANCE_SECRET", secret)
    real, made = ccxt.binance, []

    def leaky(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        """A venue whose every error echoes the request, headers (the key) and all."""
        if url.endswith("/exchangeInfo"):
            return payload("binance_exchangeInfo.json")
        echo = f"binance {method} {url} headers={headers} body={body} apiKey={made[0].apiKey} secret={made[0].secret}"
        raise (ccxt.RequestTimeout if method == "POST" else ccxt.AuthenticationError)(echo)

    def factory(config: dict[str, Any]) -> Any:
        ex = real(config | {"options": {"fetchMarkets": {"types": ["spot"]}}})
        ex.fetch, ex.rateLimit = leaky, 1
        made.append(ex)
        return ex

    monkeypatch.setattr(ccxt, "binance", factory)
    caplog.set_level(logging.DEBUG)
    bus, events = EventBus(), []
    bus.subscribe(Event, events.append)
    broker = CcxtBroker("binance", usdt(), bus=bus, sleep=no_sleep)
    assert made[0].apiKey == key and made[0].secret == secret  # the keys came from the environment
    inst = broker.instrument("BTC/USDT")
    o = broker.submit(order(inst, 0.01, "wb-canary"))
    raised = []
    for call in (broker.account, lambda: broker.venue_state([inst]), lambda: broker.find_order("wb-x", inst)):
        with pytest.raises(ccxt.AuthenticationError) as info:
            call()
        raised.append("".join(traceback.format_exception(info.value)))
    assert o.status is OrderStatus.REJECTED and "***" in o.reason and "headers=" in o.reason
    texts = [repr(broker), broker.name, o.reason, repr(o.to_dict()), *map(repr, events), *raised,
             *(r.getMessage() for r in caplog.records), caplog.text,
             *(repr(v) for k, v in vars(broker).items() if k != "exchange")]  # fmt: skip
    assert "RequestTimeout" in caplog.text and "retry 1/3" in caplog.text  # the create retry was logged
    for text in texts:
        assert key not in text and secret not in text


# -- invariants -----------------------------------------------------------------------------
_BINANCE: list[tuple[Any, BinanceTradeHttp]] = []


@settings(max_examples=60, deadline=None)
@given(qty=st.decimals(min_value="0.00001", max_value="3", places=8),
       price=st.decimals(min_value="1000", max_value="90000", places=3))  # fmt: skip
def test_rounding_never_increases_the_amount_and_lands_on_the_markets_grid(qty: Decimal, price: Decimal) -> None:
    if not _BINANCE:
        _BINANCE.append(binance())
    ex, http = _BINANCE[0]
    broker = CcxtBroker(ex, usdt(), sleep=no_sleep)
    n = len(http.creates())
    o = broker.submit(order(FINE, float(qty), broker.next_order_id(), order_type="LIMIT", limit_price=float(price)))
    step, tick = Decimal("0.00001"), Decimal("0.01")
    amount = (qty / step).to_integral_value(rounding="ROUND_DOWN") * step  # the grid, by hand
    px = (price / tick).to_integral_value(rounding="ROUND_HALF_UP") * tick
    if amount * px < 5:
        assert o.status is OrderStatus.REJECTED and "limits.cost.min" in o.reason and len(http.creates()) == n
        return
    sent = http.creates()[-1]
    assert Decimal(sent["quantity"]) == amount <= qty and Decimal(sent["quantity"]) % step == 0
    assert Decimal(sent["price"]) == px and abs(px - price) <= tick / 2
    assert o.quantity == float(amount) and o.limit_price == float(px)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(["BTC", "ETH", "poll BTC", "poll ETH"]), st.integers(1, 3)),
                      min_size=1, max_size=10))  # fmt: skip
def test_fills_are_booked_exactly_once_whatever_the_polling_order(steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fx = FakeExchange(os.path.join(tmp, "v.sqlite"))
        fx.set_last_price("BTC/USDT", 40000.0)
        fx.set_last_price("ETH/USDT", 2000.0)
        broker = broker_on(fx)
        inst = {s: broker.instrument(f"{s}/USDT") for s in ("BTC", "ETH")}
        terms = {"BTC": (0.05, 39000.0), "ETH": (1.0, 1900.0)}
        orders = {s: broker.submit(order(inst[s], q, f"wb-{s}", order_type="LIMIT", limit_price=p))
                  for s, (q, p) in terms.items()}  # fmt: skip
        bar = Bar(T0, 1, 1, 1, 1, 1)
        booked = []
        for what, units in steps:
            if what.startswith("poll"):
                booked += broker.on_bar(inst[what[-3:]], bar)
            else:  # trades a fifth of the order per unit, partial fills
                q, p = terms[what]
                fx.set_last_price(f"{what}/USDT", p - 1.0, volume=units * q / 5)
        for s in inst:
            booked += broker.on_bar(inst[s], bar)
        trades = fx.fetch_my_trades()
        assert sorted(f.fill_id for f in booked) == sorted(f"{t['symbol']}:{t['id']}" for t in trades)
        assert [f.fill_id for f in broker.fills_since(0)] == [f.fill_id for f in booked]
        total = fx.fetch_balance()["total"]
        for s, o in orders.items():
            venue = fx.fetch_order(None, f"{s}/USDT", {"clientOrderId": o.order_id})
            assert o.filled_quantity == pytest.approx(venue["filled"], abs=1e-12)
            assert broker.portfolio.quantity(inst[s]) == pytest.approx(total.get(s, 0.0), abs=1e-12)
        assert broker.portfolio.cash == pytest.approx(total["USDT"], rel=1e-12)
        fx.close()
