"""Position: the lots held in one instrument, with a selectable cost basis.

Conventions
-----------
- Quantity is signed: > 0 long, < 0 short. Each lot is an opening fill (or the open
  remainder of a fill that flipped the position through zero).
- A reducing fill closes lots oldest-first (FIFO), newest-first (LIFO), or from one
  merged lot at the volume-weighted average price (AVERAGE).
- P&L is *gross* of fees: ``realized_pnl`` accumulates ``(exit - entry) * qty * side *
  multiplier`` of closed quantity, ``unrealized_pnl(mark)`` the same for open lots against
  a mark. Fees are tracked apart in ``fees``, so ``realized + unrealized - fees`` is the
  position's contribution to equity. Whatever the method, once a position is flat its
  total realized P&L is the same (sum of sale proceeds minus purchase costs).
- Each closed piece becomes a :class:`~workbench.trading.events.TradeClosed` carrying its
  share of the entry fee (pro rata to quantity) and of the exit fill's fee.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pandas as pd

from workbench.errors import CurrencyMismatchError, InvalidValueError
from workbench.trading.enums import CostBasisMethod, PositionSide
from workbench.trading.events import (
    Event,
    PositionChanged,
    PositionClosed,
    PositionOpened,
    TradeClosed,
)
from workbench.trading.orders import Fill
from workbench.trading.values import Instrument

__all__ = ["Lot", "Position"]

_TOL = 1e-9


@dataclass(slots=True)
class Lot:
    """An open piece of a position: signed ``quantity`` bought/sold at ``price``."""

    quantity: float
    price: float
    ts: pd.Timestamp
    fee_per_unit: float

    def unrealized_pnl(self, mark: float, multiplier: float = 1.0) -> float:
        return (mark - self.price) * self.quantity * multiplier


class Position:
    """All open lots of one instrument, changed only by :meth:`apply` of a :class:`Fill`.

    >>> from workbench.trading.values import Instrument
    >>> from workbench.trading.enums import Side
    >>> ts = pd.Timestamp("2020-01-02", tz="UTC")
    >>> inst = Instrument(ticker="X", exchange="T")
    >>> pos = Position(inst, CostBasisMethod.FIFO)
    >>> _ = pos.apply(Fill(fill_id="F1", order_id="O1", instrument=inst, side=Side.BUY,
    ...                    quantity=10, price=100.0, fee=1.0, ts=ts))
    >>> _ = pos.apply(Fill(fill_id="F2", order_id="O2", instrument=inst, side=Side.SELL,
    ...                    quantity=4, price=110.0, fee=0.4, ts=ts))
    >>> pos.quantity, pos.realized_pnl, round(pos.fees, 2)
    (6.0, 40.0, 1.4)
    """

    __slots__ = ("instrument", "method", "lots", "realized_pnl", "fees", "opened", "trades")

    def __init__(
        self, instrument: Instrument, method: CostBasisMethod = CostBasisMethod.FIFO
    ) -> None:
        self.instrument = instrument
        self.method = CostBasisMethod.parse(method)
        self.lots: deque[Lot] = deque()
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.opened: pd.Timestamp | None = None
        self.trades: list[TradeClosed] = []

    # -- queries ----------------------------------------------------------------------
    @property
    def quantity(self) -> float:
        lots = self.lots
        if not lots:
            return 0.0
        if len(lots) == 1:  # the common case, on the engine's hot path
            return float(lots[0].quantity)
        return float(sum(lot.quantity for lot in lots))

    @property
    def side(self) -> PositionSide:
        q = self.quantity
        if q > _TOL:
            return PositionSide.LONG
        if q < -_TOL:
            return PositionSide.SHORT
        return PositionSide.FLAT

    @property
    def is_flat(self) -> bool:
        return not self.lots

    @property
    def avg_price(self) -> float:
        """Volume-weighted entry price of the open lots (NaN when flat)."""
        if len(self.lots) == 1:
            return float(self.lots[0].price)
        qty = sum(abs(lot.quantity) for lot in self.lots)
        if qty == 0:
            return float("nan")
        return sum(abs(lot.quantity) * lot.price for lot in self.lots) / qty

    def unrealized_pnl(self, mark: float) -> float:
        m = self.instrument.multiplier
        return float(sum(lot.unrealized_pnl(mark, m) for lot in self.lots))

    def market_value(self, mark: float) -> float:
        """Signed value of the open quantity at ``mark`` (negative for shorts)."""
        return self.quantity * mark * self.instrument.multiplier

    def total_pnl(self, mark: float) -> float:
        """Realized + unrealized − fees."""
        return self.realized_pnl + self.unrealized_pnl(mark) - self.fees

    # -- the one command --------------------------------------------------------------
    def apply(self, fill: Fill) -> list[Event]:
        """Book a fill; return the position and trade events it caused."""
        if fill.instrument != self.instrument:
            if fill.instrument.currency != self.instrument.currency:
                raise CurrencyMismatchError(
                    f"fill in {fill.instrument.currency} cannot book to a "
                    f"{self.instrument.currency} position"
                )
            raise InvalidValueError(
                f"fill for {fill.instrument.symbol} cannot book to position in "
                f"{self.instrument.symbol}"
            )
        events: list[Event] = []
        was_side = self.side
        qty_in = fill.signed_quantity
        fee_per_unit = fill.fee / fill.quantity
        self.fees += fill.fee
        mult = self.instrument.multiplier
        remaining = qty_in
        # Close against lots of the opposite sign.
        while self.lots and remaining != 0 and (self.lots[0].quantity > 0) != (remaining > 0):
            lot = self.lots[-1] if self.method is CostBasisMethod.LIFO else self.lots[0]
            close = min(abs(remaining), abs(lot.quantity))
            sign = 1.0 if lot.quantity > 0 else -1.0
            gross = (fill.price - lot.price) * close * sign * mult
            self.realized_pnl += gross
            self.trades.append(
                TradeClosed(
                    ts=fill.ts,
                    symbol=self.instrument.symbol,
                    side=PositionSide.LONG if sign > 0 else PositionSide.SHORT,
                    quantity=close,
                    entry_time=lot.ts,
                    exit_time=fill.ts,
                    entry_price=lot.price,
                    exit_price=fill.price,
                    gross_pnl=gross,
                    fees=(lot.fee_per_unit + fee_per_unit) * close,
                )
            )
            events.append(self.trades[-1])
            left = abs(lot.quantity) - close
            if left <= _TOL * max(1.0, abs(lot.quantity)):
                if self.method is CostBasisMethod.LIFO:
                    self.lots.pop()
                else:
                    self.lots.popleft()
            else:
                lot.quantity = sign * left
            remaining -= -sign * close  # remaining has the opposite sign of the lot
            if abs(remaining) <= _TOL * max(1.0, abs(qty_in)):
                remaining = 0.0
        if remaining != 0:
            self._open(remaining, fill.price, fill.ts, fee_per_unit)

        now_side = self.side
        if was_side is not PositionSide.FLAT and (now_side is not was_side):
            events.append(
                PositionClosed(
                    ts=fill.ts, symbol=self.instrument.symbol, realized_pnl=self.realized_pnl
                )
            )
        if now_side is not PositionSide.FLAT and now_side is not was_side:
            self.opened = fill.ts
            events.append(
                PositionOpened(
                    ts=fill.ts,
                    symbol=self.instrument.symbol,
                    side=now_side,
                    quantity=self.quantity,
                    avg_price=self.avg_price,
                )
            )
        elif now_side is was_side and now_side is not PositionSide.FLAT:
            events.append(
                PositionChanged(
                    ts=fill.ts,
                    symbol=self.instrument.symbol,
                    side=now_side,
                    quantity=self.quantity,
                    avg_price=self.avg_price,
                    realized_pnl=self.realized_pnl,
                )
            )
        return events

    def _open(self, signed_qty: float, price: float, ts: pd.Timestamp, fee_pu: float) -> None:
        if self.method is CostBasisMethod.AVERAGE and self.lots:
            lot = self.lots[0]
            q0, q1 = abs(lot.quantity), abs(signed_qty)
            lot.price = (lot.price * q0 + price * q1) / (q0 + q1)
            lot.fee_per_unit = (lot.fee_per_unit * q0 + fee_pu * q1) / (q0 + q1)
            lot.quantity += signed_qty
        else:
            self.lots.append(Lot(quantity=signed_qty, price=price, ts=ts, fee_per_unit=fee_pu))

    def lots_frame(self, mark: float | None = None) -> pd.DataFrame:
        rows = [
            {
                "opened": lot.ts,
                "quantity": lot.quantity,
                "price": lot.price,
                "unrealized_pnl": (
                    lot.unrealized_pnl(mark, self.instrument.multiplier)
                    if mark is not None
                    else float("nan")
                ),
            }
            for lot in self.lots
        ]
        return pd.DataFrame(rows, columns=["opened", "quantity", "price", "unrealized_pnl"])

    def __repr__(self) -> str:
        return (
            f"Position({self.instrument.symbol}, {self.side.name} {self.quantity:g} @ "
            f"{self.avg_price:.6g}, realized={self.realized_pnl:.2f}, fees={self.fees:.2f}, "
            f"{self.method.name})"
        )
