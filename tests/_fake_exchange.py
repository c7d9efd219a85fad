"""A persistent fake venue that speaks ccxt's unified API (method names, arguments, return shapes).

The ccxt broker's tests trade against it, and so do the trading loop's kill -9 tests, in
real subprocesses: its whole state (markets, orders, trades, balances, last prices, the
clock, the injected faults) lives in one SQLite file, written in ``BEGIN IMMEDIATE``
transactions on a WAL journal, so a process killed at any instant leaves either all or
nothing of an action behind and a second process opened on the same path sees the same
venue. Importable with ``tests/`` on ``sys.path`` (``import _fake_exchange``) and no pytest.

The venue's rules, kept deliberately small:

- **Markets** (stored at creation): BTC/USDT (amount step 0.00001, tick 0.01) lists
  market, limit, stop-market and stop-limit; ETH/USDT (step 0.0001, tick 0.01) has no
  stop-limit. Both need amount >= one step and cost >= 5 USDT. ``precisionMode`` is ccxt's
  TICK_SIZE: a precision entry is the increment itself.
- **Matching**: a market order fills at once, whole, at the last price set by
  :meth:`FakeExchange.set_last_price`; a limit order that is marketable when it arrives
  fills at once at the last price (taker), otherwise it rests and fills at its limit when
  a later price crosses it (maker); a stop triggers when the last price reaches it (buy:
  last >= stop, sell: last <= stop) and then works as a market or limit order; a stop
  that would trigger at once is refused (Binance's "Order would trigger immediately.").
  ``set_last_price(..., volume=v)`` caps what all orders can fill on that price at ``v``
  (partial fills). IOC/FOK limit remainders expire at once, as Binance reports them.
- **Fees**: ``fee_rate`` of the trade's cost, charged in the quote currency; with
  ``fee_in_base=True`` a buy pays its fee in the base asset instead (``amount *
  fee_rate``, deducted from the base credited), as Binance does without BNB.
- **Client order ids**: a second order with the client id of an order that is still
  open is refused the Binance way, ``InvalidOrder('... {"code":-2010,"msg":"Duplicate
  order sent."}')``; once the first one has ended its id may be reused, so a broker that
  resends after a lost answer trades twice (which is what the idempotency tests catch).
- **Clock**: a logical clock in epoch ms (``milliseconds()``), starting 2024-01-01 UTC;
  every order and trade is stamped with it and then moves it on by 1 ms.
- **Faults** a test switches on (stored, so they reach another process):
  ``drop_next_response(method)`` performs the next call of ``method`` and then raises
  ``ccxt.RequestTimeout`` (the answer was lost); ``fail_next(method, exc)`` raises
  ``exc`` instead of performing it; ``no_sandbox=True`` makes ``set_sandbox_mode`` raise
  the plain ``TypeError`` ccxt raises on exchanges without a sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from sqlite3 import Connection
from typing import Any

import ccxt

from workbench._sqlite import ProcessConnection, immediate

__all__ = ["FakeExchange", "DEFAULT_MARKETS", "START_MS"]

#: 2024-01-01T00:00:00Z in epoch ms: where the fake venue's logical clock starts.
START_MS = 1_704_067_200_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, client_id TEXT NOT NULL, symbol TEXT NOT NULL,
    type TEXT NOT NULL, side TEXT NOT NULL, amount REAL NOT NULL, price REAL, trigger_price REAL,
    triggered INTEGER NOT NULL, tif TEXT NOT NULL, status TEXT NOT NULL,
    filled REAL NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0, timestamp INTEGER NOT NULL,
    updated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_client ON orders (client_id);
CREATE TABLE IF NOT EXISTS trades (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, order_seq INTEGER NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, amount REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL,
    fee_currency TEXT NOT NULL, maker INTEGER NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances (currency TEXT PRIMARY KEY, total REAL NOT NULL);
CREATE TABLE IF NOT EXISTS prices (symbol TEXT PRIMARY KEY, last REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faults (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT NOT NULL, kind TEXT NOT NULL,
    error TEXT NOT NULL, message TEXT NOT NULL);
"""

#: symbol -> (id, base, quote, amount step, price tick, min amount, max amount, min cost, order types)
DEFAULT_MARKETS: dict[str, tuple[Any, ...]] = {
    "BTC/USDT": ("BTCUSDT", "BTC", "USDT", 0.00001, 0.01, 0.00001, 9000.0, 5.0,
                 ["MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_LIMIT"]),
    "ETH/USDT": ("ETHUSDT", "ETH", "USDT", 0.0001, 0.01, 0.0001, 100000.0, 5.0,
                 ["MARKET", "LIMIT", "STOP_LOSS"]),
}  # fmt: skip

_ORDER_ID0, _TRADE_ID0 = 100_000, 500_000  # order and trade ids are distinct number ranges
_TOL = 1e-12


def _market(symbol: str, spec: tuple[Any, ...]) -> dict[str, Any]:
    mid, base, quote, step, tick, amin, amax, cmin, types = spec
    return {
        "id": mid, "symbol": symbol, "base": base, "quote": quote, "settle": None,
        "baseId": base, "quoteId": quote, "type": "spot", "spot": True, "margin": False,
        "swap": False, "future": False, "option": False, "contract": False, "active": True,
        "linear": None, "inverse": None, "contractSize": None, "taker": 0.001, "maker": 0.001,
        "precision": {"amount": step, "price": tick},
        "limits": {"amount": {"min": amin, "max": amax}, "price": {"min": tick, "max": 1e7},
                   "cost": {"min": cmin, "max": None}, "leverage": {"min": None, "max": None}},
        "info": {"symbol": mid, "orderTypes": list(types)},
    }  # fmt: skip


def _to_grid(value: float, step: float, rounding: str) -> str:
    """``value`` on the ``step`` grid as a decimal string, the way ccxt's ``*_to_precision``
    answers (decimal arithmetic on the shortest repr, so 0.1 + 0.2 is no trap)."""
    step_d = Decimal(repr(float(step)))
    units = (Decimal(repr(float(value))) / step_d).quantize(Decimal(1), rounding=rounding)
    return format((units * step_d).normalize(), "f")


class FakeExchange:
    """A ccxt-shaped venue whose state lives in the SQLite file ``path`` (see the module notes).

    The keyword arguments are stored when the file is created; opened again (in this
    process or another) the stored venue wins, except for the switches given explicitly
    (``no_sandbox``, ``fee_rate``, ``fee_in_base``), which are stored anew.
    """

    precisionMode = ccxt.TICK_SIZE
    has: dict[str, Any] = {
        "createOrder": True, "createMarketOrder": True, "createLimitOrder": True,
        "createStopMarketOrder": True, "createStopLimitOrder": True, "createStopOrder": True,
        "editOrder": False, "cancelOrder": True, "fetchOrder": True, "fetchOrders": True,
        "fetchOpenOrders": True, "fetchClosedOrders": True, "fetchMyTrades": True,
        "fetchOrderTrades": False, "fetchBalance": True, "fetchTicker": True,
    }  # fmt: skip

    def __init__(self, path: str | Path, *, exchange_id: str = "fake",
                 markets: Mapping[str, tuple[Any, ...]] | None = None,
                 balances: Mapping[str, float] | None = None, fee_rate: float | None = None,
                 fee_in_base: bool | None = None, no_sandbox: bool | None = None) -> None:  # fmt: skip
        self.path = Path(path)
        self._db = ProcessConnection(self.path, _SCHEMA, timeout=30.0)
        self.apiKey = self.secret = self.password = ""  # a broker under test may set them
        self.verbose = False
        self.isSandboxModeEnabled = False
        with immediate(self._db.get()) as db:
            if _get(db, "markets") is None:
                specs = markets if markets is not None else DEFAULT_MARKETS
                _put(db, "markets", {s: _market(s, spec) for s, spec in specs.items()})
                _put(db, "exchange_id", exchange_id)
                _put(db, "now_ms", START_MS)
                start = {"USDT": 100_000.0} if balances is None else dict(balances)
                db.executemany("INSERT INTO balances VALUES (?, ?)", [(c, float(v)) for c, v in start.items()])
            for key, value in (("fee_rate", fee_rate), ("fee_in_base", fee_in_base), ("no_sandbox", no_sandbox)):
                if value is not None or _get(db, key) is None:
                    _put(db, key, value if value is not None else {"fee_rate": 0.001}.get(key, False))
        self._markets_all: dict[str, dict[str, Any]] = _get(self._db.get(), "markets")
        self.id: str = _get(self._db.get(), "exchange_id")
        self.markets: dict[str, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"FakeExchange({self.id!r}, {str(self.path)!r})"

    # -- switches and inspection (test helpers, not ccxt API) ---------------------------
    def drop_next_response(self, method: str) -> None:
        """The next ``method`` call is performed, then raises ``ccxt.RequestTimeout``."""
        self._add_fault(method, "drop", "RequestTimeout", f"{self.id} {method} timed out (response dropped)")

    def fail_next(self, method: str, exc: BaseException) -> None:
        """The next ``method`` call raises ``exc`` (a ccxt exception class, by name) unperformed."""
        self._add_fault(method, "fail", type(exc).__name__, str(exc))

    def set_last_price(self, symbol: str, price: float, volume: float | None = None) -> None:
        """The market trades at ``price``: resting orders that it reaches fill (at most
        ``volume`` in all, when given)."""
        self.market(symbol)
        with immediate(self._db.get()) as db:
            db.execute("INSERT OR REPLACE INTO prices VALUES (?, ?)", (symbol, float(price)))
            left = float("inf") if volume is None else float(volume)
            for row in _rows(db, "SELECT * FROM orders WHERE symbol = ? AND status = 'open' ORDER BY seq", symbol):
                left -= self._work(db, row, float(price), left)

    def advance(self, ms: int) -> None:
        """Move the venue's clock on by ``ms`` milliseconds."""
        with immediate(self._db.get()) as db:
            _put(db, "now_ms", int(_get(db, "now_ms")) + int(ms))

    def all_orders(self) -> list[dict[str, Any]]:
        """Every order the venue holds, oldest first, in ccxt's order shape."""
        db = self._db.get()
        return [self._order(db, r) for r in _rows(db, "SELECT * FROM orders ORDER BY seq")]

    def close(self) -> None:
        self._db.close()

    # -- ccxt: markets and precision ----------------------------------------------------
    def milliseconds(self) -> int:
        return int(_get(self._db.get(), "now_ms"))

    def load_markets(self, reload: bool = False, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self._fault("load_markets")
        self.markets = self._markets_all
        return self.markets

    @property
    def symbols(self) -> list[str]:
        return list(self._markets_all)

    def market(self, symbol: str) -> dict[str, Any]:
        if symbol not in self._markets_all:
            raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
        return self._markets_all[symbol]

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        """Truncated to the amount step, as ccxt does; zero is refused like ccxt refuses it."""
        m = self.market(symbol)
        out = _to_grid(amount, m["precision"]["amount"], ROUND_DOWN)
        if Decimal(out) == 0:
            raise ccxt.InvalidOrder(f"{self.id} amount of {symbol} must be greater than minimum amount "
                                    f"precision of {m['precision']['amount']}")  # fmt: skip
        return out

    def price_to_precision(self, symbol: str, price: float) -> str:
        """Rounded half up to the tick, as ccxt's ROUND does."""
        return _to_grid(price, self.market(symbol)["precision"]["price"], ROUND_HALF_UP)

    def set_sandbox_mode(self, enabled: bool) -> None:
        if _get(self._db.get(), "no_sandbox"):
            raise TypeError("'NoneType' object is not iterable")  # what ccxt.kraken, bitstamp... raise
        self.isSandboxModeEnabled = bool(enabled)

    # -- ccxt: orders -------------------------------------------------------------------
    def create_order(self, symbol: str, type: str, side: str, amount: float, price: float | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        params = dict(params or {})
        with self._call("create_order") as db:
            return self._create(db, symbol, type.lower(), side.lower(), float(amount), price, params)

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        params = dict(params or {})
        cid = params.get("clientOrderId") or params.get("origClientOrderId")
        with self._call("fetch_order") as db:
            if cid is not None:
                found = _rows(db, "SELECT * FROM orders WHERE client_id = ? ORDER BY seq DESC LIMIT 1", cid)
            else:
                found = _rows(db, "SELECT * FROM orders WHERE seq = ?", _seq(id, _ORDER_ID0))
            if not found or (symbol is not None and found[0]["symbol"] != symbol):
                raise ccxt.OrderNotFound(f'{self.id} {{"code":-2013,"msg":"Order does not exist."}}')
            return self._order(db, found[0])

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                          params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        return self._orders("fetch_open_orders", "status = 'open'", symbol, since, limit)

    def fetch_closed_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                            params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        return self._orders("fetch_closed_orders", "status != 'open'", symbol, since, limit)

    def fetch_orders(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                     params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        return self._orders("fetch_orders", "1 = 1", symbol, since, limit)

    def cancel_order(self, id: str, symbol: str | None = None,
                     params: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        with self._call("cancel_order") as db:
            rows = _rows(db, "SELECT * FROM orders WHERE seq = ? AND status = 'open'", _seq(id, _ORDER_ID0))
            if not rows:
                raise ccxt.OrderNotFound(f'{self.id} {{"code":-2011,"msg":"Unknown order sent."}}')
            db.execute("UPDATE orders SET status = 'canceled', updated = ? WHERE seq = ?", (self._tick(db), rows[0]["seq"]))
            return self._order(db, _rows(db, "SELECT * FROM orders WHERE seq = ?", rows[0]["seq"])[0])

    def edit_order(self, id: str, symbol: str, type: str, side: str, amount: float | None = None,
                   price: float | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        """Amend an open order in place (same id, same place in the book); listed in
        ``has`` as False, a test switches it on (``fake.has = FakeExchange.has | {...}``)."""
        params = dict(params or {})
        with self._call("edit_order") as db:
            rows = _rows(db, "SELECT * FROM orders WHERE seq = ? AND status = 'open'", _seq(id, _ORDER_ID0))
            if not rows:
                raise ccxt.OrderNotFound(f'{self.id} {{"code":-2011,"msg":"Unknown order sent."}}')
            row = rows[0]
            amount = row["amount"] if amount is None else float(amount)
            if amount < row["filled"] - _TOL:
                raise ccxt.InvalidOrder(f"{self.id} amount {amount} is below the {row['filled']} already filled")
            trigger = params.get("triggerPrice", params.get("stopPrice", row["trigger_price"]))
            db.execute("UPDATE orders SET amount = ?, price = ?, trigger_price = ?, updated = ? WHERE seq = ?",
                       (amount, row["price"] if price is None else float(price), trigger, self._tick(db), row["seq"]))  # fmt: skip
            row = _rows(db, "SELECT * FROM orders WHERE seq = ?", row["seq"])[0]
            last = self._last(db, symbol)
            if last is not None and row["triggered"]:
                self._work(db, row, last, float("inf"), taker=True)
            return self._order(db, _rows(db, "SELECT * FROM orders WHERE seq = ?", row["seq"])[0])

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None, limit: int | None = None,
                        params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
        with self._call("fetch_my_trades") as db:
            sql = "SELECT * FROM trades WHERE (? IS NULL OR symbol = ?) AND timestamp >= ? ORDER BY seq"
            rows = _rows(db, sql, symbol, symbol, since or 0)
            return [self._trade(r) for r in rows[: limit or None]]

    def fetch_balance(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with self._call("fetch_balance") as db:
            total = {r["currency"]: r["total"] for r in _rows(db, "SELECT * FROM balances ORDER BY currency")}
            used = dict.fromkeys(total, 0.0)
            for r in _rows(db, "SELECT * FROM orders WHERE status = 'open'"):
                base, quote, need = self._reserve(r)
                cur = quote if r["side"] == "buy" else base
                used[cur] = used.get(cur, 0.0) + need
                total.setdefault(cur, 0.0)
            out: dict[str, Any] = {"info": {"balances": total}, "timestamp": None, "datetime": None}
            out["total"], out["used"] = total, used
            out["free"] = {c: total[c] - used.get(c, 0.0) for c in total}
            for c in total:
                out[c] = {"free": out["free"][c], "used": used.get(c, 0.0), "total": total[c]}
            return out

    def fetch_ticker(self, symbol: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with self._call("fetch_ticker") as db:
            last = self._last(db, symbol)
            return {"symbol": symbol, "last": last, "close": last, "timestamp": self.milliseconds()}

    # -- internals ----------------------------------------------------------------------
    @contextmanager
    def _call(self, method: str) -> Iterator[Connection]:
        """One ccxt call in one IMMEDIATE transaction, with its injected fault (if any):
        a "fail" raises before anything happens, a "drop" commits the action, then raises."""
        db = self._db.get()
        db.execute("BEGIN IMMEDIATE")
        try:
            fault = self._take_fault(db, method)
            if fault is not None and fault["kind"] == "fail":
                db.execute("COMMIT")  # the fault is used up; nothing else happened
                raise getattr(ccxt, fault["error"], ccxt.ExchangeError)(fault["message"])
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if fault is not None:
            raise ccxt.RequestTimeout(fault["message"])

    def _fault(self, method: str) -> None:
        with self._call(method):
            pass

    def _add_fault(self, method: str, kind: str, error: str, message: str) -> None:
        with immediate(self._db.get()) as db:
            db.execute("INSERT INTO faults (method, kind, error, message) VALUES (?, ?, ?, ?)",
                       (method, kind, error, message))  # fmt: skip

    @staticmethod
    def _take_fault(db: Connection, method: str) -> dict[str, Any] | None:
        rows = _rows(db, "SELECT * FROM faults WHERE method = ? ORDER BY seq LIMIT 1", method)
        if rows:
            db.execute("DELETE FROM faults WHERE seq = ?", (rows[0]["seq"],))
        return rows[0] if rows else None

    def _tick(self, db: Connection) -> int:
        """The clock's current ms, then one ms on: stamps are strictly increasing."""
        now = int(_get(db, "now_ms"))
        _put(db, "now_ms", now + 1)
        return now

    def _last(self, db: Connection, symbol: str) -> float | None:
        rows = _rows(db, "SELECT last FROM prices WHERE symbol = ?", symbol)
        return rows[0]["last"] if rows else None

    def _create(self, db: Connection, symbol: str, type: str, side: str, amount: float,
                price: float | None, params: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        m = self.market(symbol)
        trigger = params.get("triggerPrice", params.get("stopPrice"))
        cid = str(params.get("clientOrderId") or params.get("newClientOrderId") or f"fake-{self._tick(db)}")
        self._check_type(m, type, trigger)
        self._check_terms(db, m, type, side, amount, price, trigger)
        if _rows(db, "SELECT seq FROM orders WHERE client_id = ? AND status = 'open'", cid):
            raise ccxt.InvalidOrder(f'{self.id} {{"code":-2010,"msg":"Duplicate order sent."}}')
        now = self._tick(db)
        tif = str(params.get("timeInForce") or "GTC").upper()
        cur = db.execute(
            "INSERT INTO orders (client_id, symbol, type, side, amount, price, trigger_price, triggered, tif,"
            " status, timestamp, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
            (cid, symbol, type, side, amount, None if price is None else float(price),
             None if trigger is None else float(trigger), int(trigger is None), tif, now, now),
        )  # fmt: skip
        row = _rows(db, "SELECT * FROM orders WHERE seq = ?", cur.lastrowid)[0]
        last = self._last(db, symbol)
        if last is not None and row["triggered"]:
            self._work(db, row, last, float("inf"), taker=True)
        if tif in ("IOC", "FOK"):
            db.execute("UPDATE orders SET status = 'expired' WHERE seq = ? AND status = 'open'", (row["seq"],))
        return self._order(db, _rows(db, "SELECT * FROM orders WHERE seq = ?", row["seq"])[0])

    def _check_type(self, m: dict[str, Any], type: str, trigger: Any) -> None:
        venue_type = {("market", False): "MARKET", ("limit", False): "LIMIT",
                      ("market", True): "STOP_LOSS", ("limit", True): "STOP_LOSS_LIMIT"}.get((type, trigger is not None))  # fmt: skip
        if venue_type not in m["info"]["orderTypes"]:
            raise ccxt.InvalidOrder(f"{self.id} {type} is not a valid order type for the {m['symbol']} market")

    def _check_terms(self, db: Connection, m: dict[str, Any], type: str, side: str, amount: float,
                     price: float | None, trigger: Any) -> None:  # fmt: skip
        symbol, lim = m["symbol"], m["limits"]
        last = self._last(db, symbol)
        if type == "limit" and price is None:
            raise ccxt.InvalidOrder(f"{self.id} createOrder() requires a price argument for a limit order")
        if trigger is not None and last is not None and (last >= trigger if side == "buy" else last <= trigger):
            raise ccxt.InvalidOrder(f'{self.id} {{"code":-2010,"msg":"Order would trigger immediately."}}')
        ref = price if price is not None else trigger if trigger is not None else last
        if ref is None:
            raise ccxt.InvalidOrder(f"{self.id} has no last price for {symbol} to fill a market order at")
        if amount < lim["amount"]["min"] - _TOL or amount > lim["amount"]["max"]:
            raise ccxt.InvalidOrder(f'{self.id} {{"code":-1013,"msg":"Filter failure: LOT_SIZE"}}')
        if amount * float(ref) < lim["cost"]["min"] - _TOL:
            raise ccxt.InvalidOrder(f'{self.id} {{"code":-1013,"msg":"Filter failure: NOTIONAL"}}')
        base, quote = m["base"], m["quote"]
        need = amount * float(ref) * (1 + float(_get(db, "fee_rate"))) if side == "buy" else amount
        cur = quote if side == "buy" else base
        if need > self._free(db, cur) + _TOL:
            raise ccxt.InsufficientFunds(f"{self.id} Account has insufficient balance for requested action.")

    def _free(self, db: Connection, currency: str) -> float:
        rows = _rows(db, "SELECT total FROM balances WHERE currency = ?", currency)
        total = rows[0]["total"] if rows else 0.0
        for r in _rows(db, "SELECT * FROM orders WHERE status = 'open'"):
            base, quote, need = self._reserve(r)
            if (quote if r["side"] == "buy" else base) == currency:
                total -= need
        return total

    def _reserve(self, r: dict[str, Any]) -> tuple[str, str, float]:
        """What an open order holds back: a buy its remaining cost in quote, a sell its
        remaining amount in base."""
        m = self._markets_all[r["symbol"]]
        rem = r["amount"] - r["filled"]
        px = r["price"] if r["price"] is not None else r["trigger_price"] or 0.0
        return m["base"], m["quote"], rem * px if r["side"] == "buy" else rem

    def _work(self, db: Connection, row: dict[str, Any], last: float, room: float, taker: bool = False) -> float:
        """Trigger and fill one open order against the last price; the quantity filled."""
        buy = row["side"] == "buy"
        if not row["triggered"]:
            if not (last >= row["trigger_price"] if buy else last <= row["trigger_price"]):
                return 0.0
            db.execute("UPDATE orders SET triggered = 1 WHERE seq = ?", (row["seq"],))
            taker = True  # a triggered stop takes liquidity
        if row["type"] == "market":
            px = last
        elif (last <= row["price"]) if buy else (last >= row["price"]):
            px = last if taker else row["price"]
        else:
            return 0.0
        qty = min(row["amount"] - row["filled"], room)
        if qty <= _TOL:
            return 0.0
        self._fill(db, row, qty, px, maker=not taker)
        return qty

    def _fill(self, db: Connection, row: dict[str, Any], qty: float, px: float, maker: bool) -> None:
        m = self._markets_all[row["symbol"]]
        base, quote, buy = m["base"], m["quote"], row["side"] == "buy"
        rate, in_base = float(_get(db, "fee_rate")), bool(_get(db, "fee_in_base"))
        cost = qty * px
        fee, fee_cur = (qty * rate, base) if (buy and in_base) else (cost * rate, quote)
        now = self._tick(db)
        db.execute("INSERT INTO trades (order_seq, symbol, side, amount, price, fee, fee_currency, maker, timestamp)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (row["seq"], row["symbol"], row["side"], qty, px, fee, fee_cur, int(maker), now))  # fmt: skip
        d_base = qty - (fee if fee_cur == base else 0.0) if buy else -qty
        d_quote = -cost - (fee if fee_cur == quote else 0.0) if buy else cost - fee
        for cur, delta in ((base, d_base), (quote, d_quote)):
            db.execute("INSERT INTO balances VALUES (?, ?) ON CONFLICT(currency) DO UPDATE SET total = total + ?",
                       (cur, delta, delta))  # fmt: skip
        filled = row["filled"] + qty
        status = "closed" if filled >= row["amount"] - _TOL else "open"
        db.execute("UPDATE orders SET filled = ?, cost = cost + ?, status = ?, updated = ? WHERE seq = ?",
                   (filled, cost, status, now, row["seq"]))  # fmt: skip
        row["filled"] = filled

    def _orders(self, method: str, where: str, symbol: str | None, since: int | None,
                limit: int | None) -> list[dict[str, Any]]:  # fmt: skip
        with self._call(method) as db:
            sql = f"SELECT * FROM orders WHERE {where} AND (? IS NULL OR symbol = ?) AND timestamp >= ? ORDER BY seq"
            rows = _rows(db, sql, symbol, symbol, since or 0)
            return [self._order(db, r) for r in rows[: limit or None]]

    def _order(self, db: Connection, r: dict[str, Any]) -> dict[str, Any]:
        trades = [self._trade(t) for t in _rows(db, "SELECT * FROM trades WHERE order_seq = ? ORDER BY seq", r["seq"])]
        fees: dict[str, float] = {}
        for t in trades:
            fees[t["fee"]["currency"]] = fees.get(t["fee"]["currency"], 0.0) + t["fee"]["cost"]
        average = r["cost"] / r["filled"] if r["filled"] > 0 else None
        return {
            "info": dict(r), "id": str(_ORDER_ID0 + r["seq"]), "clientOrderId": r["client_id"],
            "timestamp": r["timestamp"], "datetime": _iso(r["timestamp"]),
            "lastTradeTimestamp": trades[-1]["timestamp"] if trades else None,
            "lastUpdateTimestamp": r["updated"], "symbol": r["symbol"], "type": r["type"],
            "timeInForce": r["tif"], "postOnly": False, "reduceOnly": None, "side": r["side"],
            "price": r["price"] if r["price"] is not None else average, "triggerPrice": r["trigger_price"],
            "stopPrice": r["trigger_price"], "amount": r["amount"], "filled": r["filled"],
            "remaining": r["amount"] - r["filled"], "cost": r["cost"], "average": average,
            "status": r["status"], "trades": trades,
            "fee": next(({"cost": c, "currency": k} for k, c in fees.items()), None),
            "fees": [{"cost": c, "currency": k} for k, c in fees.items()],
        }  # fmt: skip

    @staticmethod
    def _trade(t: dict[str, Any]) -> dict[str, Any]:
        fee = {"cost": t["fee"], "currency": t["fee_currency"]}
        return {
            "info": dict(t), "id": str(_TRADE_ID0 + t["seq"]), "order": str(_ORDER_ID0 + t["order_seq"]),
            "timestamp": t["timestamp"], "datetime": _iso(t["timestamp"]), "symbol": t["symbol"],
            "type": None, "side": t["side"], "takerOrMaker": "maker" if t["maker"] else "taker",
            "price": t["price"], "amount": t["amount"], "cost": t["amount"] * t["price"],
            "fee": fee, "fees": [fee],
        }  # fmt: skip


def _seq(venue_id: object, base: int) -> int:
    try:
        return int(str(venue_id)) - base
    except ValueError:
        return -1


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rows(db: Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    cur = db.execute(sql, args)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _get(db: Connection, key: str) -> Any:
    row = db.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def _put(db: Connection, key: str, value: Any) -> None:
    db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (key, json.dumps(value)))
