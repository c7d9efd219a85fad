import pytest

from tests.conftest import ts
from workbench.errors import CurrencyMismatchError
from workbench.trading import CostBasisMethod, Fill, Instrument, Position, PositionSide, Side
from workbench.trading.events import PositionChanged, PositionClosed, PositionOpened, TradeClosed


def f(inst, side, qty, price, fee=0.0, day=1):
    return Fill(fill_id=f"F{day}{side}{qty}", order_id="O", instrument=inst, side=Side.parse(side),
                quantity=qty, price=price, fee=fee, ts=ts(day))


def _book(method, inst):
    pos = Position(inst, method)
    pos.apply(f(inst, "BUY", 10, 100.0, day=1))
    pos.apply(f(inst, "BUY", 10, 120.0, day=2))
    pos.apply(f(inst, "SELL", 10, 130.0, day=3))
    return pos


def test_fifo_closes_oldest_lot_first(inst):
    pos = _book(CostBasisMethod.FIFO, inst)
    assert pos.realized_pnl == pytest.approx(300.0)  # (130 - 100) * 10
    assert pos.lots[0].price == 120.0
    assert pos.unrealized_pnl(125.0) == pytest.approx(50.0)


def test_lifo_closes_newest_lot_first(inst):
    pos = _book(CostBasisMethod.LIFO, inst)
    assert pos.realized_pnl == pytest.approx(100.0)  # (130 - 120) * 10
    assert pos.lots[0].price == 100.0
    assert pos.unrealized_pnl(125.0) == pytest.approx(250.0)


def test_average_cost_uses_one_weighted_lot(inst):
    pos = _book(CostBasisMethod.AVERAGE, inst)
    assert pos.realized_pnl == pytest.approx(200.0)  # (130 - 110) * 10
    assert pos.avg_price == pytest.approx(110.0)
    assert pos.unrealized_pnl(125.0) == pytest.approx(150.0)


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_all_methods_agree_once_flat(inst, method):
    pos = _book(method, inst)
    pos.apply(f(inst, "SELL", 10, 95.0, day=4))
    assert pos.is_flat
    assert pos.realized_pnl == pytest.approx(1300 + 950 - 1000 - 1200)  # proceeds - costs


def test_short_position_profits_when_price_falls(inst):
    pos = Position(inst)
    events = pos.apply(f(inst, "SELL", 5, 50.0, fee=1.0))
    assert isinstance(events[0], PositionOpened) and pos.side is PositionSide.SHORT
    assert pos.unrealized_pnl(40.0) == pytest.approx(50.0)
    events = pos.apply(f(inst, "BUY", 5, 40.0, fee=1.0, day=2))
    trade = next(e for e in events if isinstance(e, TradeClosed))
    assert trade.side is PositionSide.SHORT and trade.gross_pnl == pytest.approx(50.0) and trade.pnl == pytest.approx(48.0)
    assert any(isinstance(e, PositionClosed) for e in events)


def test_flip_through_zero_closes_and_reopens_with_the_remainder(inst):
    pos = Position(inst)
    pos.apply(f(inst, "BUY", 10, 100.0, fee=10.0))
    events = pos.apply(f(inst, "SELL", 15, 110.0, fee=15.0, day=2))
    kinds = [type(e) for e in events]
    assert kinds == [TradeClosed, PositionClosed, PositionOpened]
    assert pos.quantity == -5 and pos.side is PositionSide.SHORT and pos.lots[0].price == 110.0
    trade = events[0]
    assert trade.quantity == 10 and trade.fees == pytest.approx(10.0 + 10.0)  # entry fee + 10/15 of exit fee
    assert pos.lots[0].fee_per_unit == pytest.approx(1.0)
    assert pos.realized_pnl == pytest.approx(100.0) and pos.fees == pytest.approx(25.0)


def test_adding_to_a_position_emits_position_changed(inst):
    pos = Position(inst)
    pos.apply(f(inst, "BUY", 1, 10.0))
    assert isinstance(pos.apply(f(inst, "BUY", 1, 12.0, day=2))[0], PositionChanged)


def test_fill_in_another_currency_is_refused(inst):
    eur = Instrument(ticker="TEST", exchange="SIM", currency="EUR")
    with pytest.raises(CurrencyMismatchError):
        Position(inst).apply(f(eur, "BUY", 1, 1.0))


def test_fractional_lots(btc):
    pos = Position(btc)
    pos.apply(f(btc, "BUY", 0.5, 20_000.0))
    pos.apply(f(btc, "SELL", 0.25, 22_000.0, day=2))
    assert pos.quantity == pytest.approx(0.25)
    assert pos.realized_pnl == pytest.approx(500.0)
