"""The Portfolio aggregate: cash, positions, transactions, closed trades, equity from marks.

A single-currency cash/margin account. Booking a fill moves cash by
``-signed_quantity * price * multiplier - fee`` and applies the fill to the position;
``equity = cash + Σ quantity × mark × multiplier``. A short sale credits its proceeds to
cash and carries a negative market value, so equity is unchanged by the sale itself.

Buying power (checked by the broker *before* a fill, see :meth:`Portfolio.check_fill`) is
the rule of the portfolio's ``account`` policy (:mod:`workbench.trading.accounts`): a
:class:`~workbench.trading.accounts.CashAccount` by default. Fills that only reduce
exposure are always allowed. Each fill id is booked at most once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from workbench.errors import CurrencyMismatchError, DuplicateFillError, InvalidValueError
from workbench.trading.accounts import AccountPolicy, CashAccount
from workbench.trading.enums import CostBasisMethod
from workbench.trading.events import Event, TradeClosed
from workbench.trading.orders import Fill
from workbench.trading.positions import Position
from workbench.trading.values import Instrument, Money

__all__ = ["Portfolio", "Transaction", "TRADE_COLUMNS"]

TRADE_COLUMNS = [
    "symbol",
    "side",
    "quantity",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "fees",
    "pnl",
    "return",
    "duration",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Transaction:
    """The cash side of a fill, as booked."""

    ts: pd.Timestamp
    fill_id: str
    order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    cash_flow: float
    cash_after: float


#: How the account-policy error shows a class passed for an instance.
_ACCOUNT_EXAMPLES = {
    "CashAccount": "CashAccount()",
    "MarginAccount": "MarginAccount(initial_margin=0.5, maintenance_margin=0.25)",
    "BuysFromCash": "BuysFromCash()",
}


def _check_account(account: object) -> None:
    """An account policy instance or ``None``. A class passes the protocol check (it has
    ``check_fill``) and would fail with a TypeError at the first fill, so it is refused."""
    if isinstance(account, type):
        name = account.__name__
        raise InvalidValueError(
            f"account must be an instance, got the class {name}; pass an instance, "
            f"e.g. {_ACCOUNT_EXAMPLES.get(name, name + '(...)')}"
        )
    if account is not None and not isinstance(account, AccountPolicy):
        raise InvalidValueError(
            f"account must be an account policy (CashAccount(), MarginAccount(...), "
            f"BuysFromCash()), got account={account!r}"
        )


class Portfolio:
    """Cash and positions in one base currency.

    Parameters
    ----------
    cash : float
        Starting cash (> 0).
    currency : str
        Base currency; fills in another currency raise :class:`CurrencyMismatchError`.
    cost_basis : CostBasisMethod
        How positions match reducing fills against lots (FIFO, LIFO, AVERAGE).
    account : AccountPolicy, optional
        The buying-power rule fills are checked against (``CashAccount()`` by default;
        ``MarginAccount(...)`` for leverage, ``BuysFromCash()`` for rebalancing legs). A
        plain attribute: an engine may swap it for the span of a rebalance. An instance:
        the class itself is refused here, not at the first fill.
    """

    def __init__(
        self,
        cash: float,
        currency: str = "USD",
        cost_basis: CostBasisMethod | str = CostBasisMethod.FIFO,
        account: AccountPolicy | None = None,
    ) -> None:
        cash = float(cash)
        if not (math.isfinite(cash) and cash > 0):
            raise InvalidValueError(f"starting cash must be > 0, got {cash!r}")
        _check_account(account)
        self.currency = Money(amount=0, currency=currency).currency
        self.starting_cash = cash
        self.cash = cash
        self.cost_basis = CostBasisMethod.parse(cost_basis)
        self.account: AccountPolicy = CashAccount() if account is None else account
        self.positions: dict[str, Position] = {}
        self.marks: dict[str, float] = {}
        self.transactions: list[Transaction] = []
        self.trades: list[TradeClosed] = []
        self.events: list[Event] = []
        self._fill_ids: set[str] = set()

    # -- queries ----------------------------------------------------------------------
    def position(self, instrument: Instrument) -> Position:
        pos = self.positions.get(instrument.symbol)
        if pos is None:
            pos = self.positions[instrument.symbol] = Position(instrument, self.cost_basis)
        return pos

    def quantity(self, instrument: Instrument) -> float:
        pos = self.positions.get(instrument.symbol)
        return 0.0 if pos is None else pos.quantity

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest price of ``symbol`` (used for equity and buying power)."""
        self.marks[symbol] = float(price)

    def _mark_of(self, pos: Position) -> float:
        mark = self.marks.get(pos.instrument.symbol)
        if mark is None:
            mark = pos.avg_price if not pos.is_flat else 0.0
        return mark

    def market_value(self) -> float:
        return float(sum(p.market_value(self._mark_of(p)) for p in self.positions.values()))

    def gross_exposure(self) -> float:
        return float(sum(abs(p.market_value(self._mark_of(p))) for p in self.positions.values()))

    @property
    def equity(self) -> float:
        """Cash plus positions marked at the latest marks."""
        return self.cash + self.market_value()

    @property
    def equity_money(self) -> Money:
        return Money(amount=self.equity, currency=self.currency)

    @property
    def realized_pnl(self) -> float:
        return float(sum(p.realized_pnl for p in self.positions.values()))

    @property
    def unrealized_pnl(self) -> float:
        return float(sum(p.unrealized_pnl(self._mark_of(p)) for p in self.positions.values()))

    @property
    def fees(self) -> float:
        return float(sum(p.fees for p in self.positions.values()))

    def exposure_excluding(self, symbol: str) -> tuple[float, float]:
        """Gross exposure and market value of every position but ``symbol``'s: the part
        of the book a fill in ``symbol`` leaves as it is (account policies need it)."""
        other_gross = sum(
            abs(p.market_value(self._mark_of(p))) for s, p in self.positions.items() if s != symbol
        )
        other_value = sum(
            p.market_value(self._mark_of(p)) for s, p in self.positions.items() if s != symbol
        )
        return other_gross, other_value

    def margin_requirement(self, rate: Callable[[Instrument], float], excluding: str = "") -> float:
        """Σ_i rate(instrument_i) × |v_i| over the positions (v_i at the latest marks, in
        the account currency), leaving out ``excluding``'s: a margin account's requirement
        when each instrument has its own rate."""
        return float(sum(rate(p.instrument) * abs(p.market_value(self._mark_of(p)))
                         for s, p in self.positions.items() if s != excluding))  # fmt: skip

    def check_fill(self, instrument: Instrument, signed_qty: float, price: float, fee: float) -> str:
        """Why a prospective fill would break the account's rule, or ``""`` if it is allowed."""
        return self.account.check_fill(self, instrument, signed_qty, price, fee)

    # -- the one command --------------------------------------------------------------
    def apply(self, fill: Fill) -> list[Event]:
        """Book a fill: cash, position, transaction, closed trades. Returns its events.

        A fill id already booked is refused (:class:`DuplicateFillError`), state unchanged.
        """
        if fill.fill_id in self._fill_ids:
            raise DuplicateFillError(
                f"fill {fill.fill_id} (order {fill.order_id}) was already booked to this "
                f"portfolio; a fill id is booked at most once (two brokers booking into one "
                f"portfolio need distinct id_prefixes, e.g. SimulatedBroker(..., id_prefix='A-'))"
            )
        if fill.instrument.currency != self.currency:
            raise CurrencyMismatchError(
                f"fill {fill.fill_id} is in {fill.instrument.currency}; this portfolio books "
                f"only {self.currency} (convert explicitly first)"
            )
        pos = self.position(fill.instrument)
        n_trades = len(pos.trades)
        events = pos.apply(fill)
        self._fill_ids.add(fill.fill_id)
        flow = -fill.signed_quantity * fill.price * fill.instrument.multiplier - fill.fee
        self.cash += flow
        self.marks.setdefault(fill.instrument.symbol, fill.price)
        self.transactions.append(
            Transaction(
                ts=fill.ts,
                fill_id=fill.fill_id,
                order_id=fill.order_id,
                symbol=fill.instrument.symbol,
                side=fill.side.name,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                cash_flow=flow,
                cash_after=self.cash,
            )
        )
        self.trades.extend(pos.trades[n_trades:])
        self.events.extend(events)
        return events

    # -- frames -----------------------------------------------------------------------
    def trades_frame(self) -> pd.DataFrame:
        """Closed trades: one row per closed lot piece, P&L net of allocated fees."""
        rows = []
        for t in self.trades:
            notional = t.entry_price * t.quantity * self.positions[t.symbol].instrument.multiplier
            rows.append(
                {
                    "symbol": t.symbol,
                    "side": t.side.name,
                    "quantity": t.quantity,
                    "entry_time": t.entry_time,
                    "exit_time": t.exit_time,
                    "entry_price": t.entry_price,
                    "exit_price": t.exit_price,
                    "gross_pnl": t.gross_pnl,
                    "fees": t.fees,
                    "pnl": t.pnl,
                    "return": t.pnl / notional,
                    "duration": t.exit_time - t.entry_time,
                }
            )
        return pd.DataFrame(rows, columns=TRADE_COLUMNS)

    def transactions_frame(self) -> pd.DataFrame:
        cols = list(Transaction.__dataclass_fields__)
        return pd.DataFrame([{c: getattr(t, c) for c in cols} for t in self.transactions], columns=cols)

    def positions_frame(self) -> pd.DataFrame:
        rows = []
        for sym, p in self.positions.items():
            mark = self._mark_of(p)
            rows.append(
                {
                    "symbol": sym,
                    "side": p.side.name,
                    "quantity": p.quantity,
                    "avg_price": p.avg_price,
                    "mark": mark,
                    "market_value": p.market_value(mark),
                    "realized_pnl": p.realized_pnl,
                    "unrealized_pnl": p.unrealized_pnl(mark),
                    "fees": p.fees,
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"Portfolio(cash={self.cash:,.2f} {self.currency}, equity={self.equity:,.2f}, "
            f"positions={ {s: p.quantity for s, p in self.positions.items() if not p.is_flat} })"
        )
