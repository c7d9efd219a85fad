"""The vectorized engine: the same strategy spec run through vectorbt's portfolio simulator.

vectorbt is imported lazily (it takes seconds to import) and runs on its Rust engine
(``vectorbt[rust]``) when installed, which avoids numba's 7-25 s compile in every fresh
process; otherwise on numba.

How the shared conventions map onto vectorbt (so that both engines fill identically):

- **Signal strategies** (one instrument, target +1/0/-1) → ``Portfolio.from_signals``.
  A change of target at bar t's close becomes an entry/exit signal on bar t+1 at that
  bar's open (``price=Open``), or at t's close with ``FillTiming.SIGNAL_CLOSE``.
  ``size="all"`` → ``size=inf`` (all cash, reversals in one order),
  a fixed quantity → ``size=q`` with ``allow_partial=False`` (unaffordable orders are
  rejected, as the broker does); a fraction of equity → ``size_type="percent"``
  (long-only). Whole lots via ``size_granularity``.
- **Portfolio strategies** (target weights) → ``Portfolio.from_orders`` with
  ``size_type="targetpercent"``, valuation at the execution price, ``call_seq="auto"``
  (sales first) and ``cash_sharing=True``: see :func:`workbench.engines.event.run_weights`.
- **Costs:** ``PercentOfNotional`` (no minimum) → ``fees``; ``FixedPerOrder`` →
  ``fixed_fees``; ``FixedBps`` slippage → the engine prices each fill itself,
  open × (1 ± bps) clamped into the bar's [low, high] exactly like the simulated broker,
  for signal strategies; for weight strategies vectorbt's own ``slippage`` is used and the
  clamp cannot apply. Other models (per-share, minimum commission, volume caps) have no
  vectorbt equivalent and raise :class:`ParameterError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.costs import (
    CommissionModel,
    FixedBps,
    FixedPerOrder,
    NoCommission,
    NoSlippage,
    PercentOfNotional,
    SlippageModel,
)
from workbench.trading.enums import CostBasisMethod, FillTiming, Side
from workbench.trading.orders import Fill
from workbench.trading.portfolio import TRADE_COLUMNS, Portfolio
from workbench.trading.sizing import AllEquity, FixedQuantity, PercentOfEquity, Sizer
from workbench.trading.values import Instrument

__all__ = ["VectorRun", "run_signals", "run_weights", "vbt_engine", "vbt_version"]

FILL_COLUMNS = ["fill_id", "order_id", "symbol", "side", "quantity", "price", "fee", "ts"]
ORDER_COLUMNS = [
    "order_id", "symbol", "side", "type", "tif", "quantity", "limit_price", "stop_price",
    "placed", "status", "filled_quantity", "avg_fill_price", "fees", "updated", "reason", "tag",
]  # fmt: skip


def _vbt() -> Any:
    import vectorbt as vbt

    return vbt


def vbt_engine() -> str:
    """``"rust"`` when vectorbt-rust is installed and matches, else ``"numba"``."""
    from vectorbt._engine import is_rust_available

    return "rust" if is_rust_available() else "numba"


def vbt_version() -> str:
    return str(_vbt().__version__)


@dataclass
class VectorRun:
    equity: pd.Series
    positions: pd.Series | pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    trades: pd.DataFrame
    portfolio: Any  # the vectorbt Portfolio, for anything vectorbt offers beyond our result


def _fees(commission: CommissionModel) -> dict[str, float]:
    if isinstance(commission, NoCommission):
        return {"fees": 0.0, "fixed_fees": 0.0}
    if isinstance(commission, PercentOfNotional) and commission.minimum == 0:
        return {"fees": commission.rate, "fixed_fees": 0.0}
    if isinstance(commission, FixedPerOrder):
        return {"fees": 0.0, "fixed_fees": commission.amount}
    raise ParameterError(
        f"the vectorized engine cannot express commission {commission!r}; use engine='event' "
        "(vectorbt has percent-of-notional and fixed-per-order fees only)"
    )


def _slip(slippage: SlippageModel) -> float:
    if isinstance(slippage, NoSlippage):
        return 0.0
    if isinstance(slippage, FixedBps):
        return slippage.bps / 1e4
    raise ParameterError(
        f"the vectorized engine cannot express slippage {slippage!r}; use engine='event' "
        "(only fixed basis points map onto vectorbt)"
    )


def _check_instrument(inst: Instrument) -> None:
    if inst.multiplier != 1:
        raise ParameterError(f"the vectorized engine needs multiplier 1, {inst.symbol} has {inst.multiplier}")


def signal_masks(target: np.ndarray) -> dict[str, np.ndarray]:
    """Entry/exit masks on the *signal* bars of a +1/0/-1 target (vectorbt's four arrays)."""
    prev = np.concatenate(([0.0], target[:-1]))
    chg = target != prev
    return {
        "entries": chg & (target == 1),
        "exits": chg & (target == 0) & (prev == 1),
        "short_entries": chg & (target == -1),
        "short_exits": chg & (target == 0) & (prev == -1),
    }


def _shift(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    out[1:] = mask[:-1]
    return out


def run_signals(
    prices: pd.DataFrame,
    target: pd.Series,
    instrument: Instrument,
    *,
    cash: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    sizer: Sizer,
    fill_timing: FillTiming = FillTiming.NEXT_OPEN,
) -> VectorRun:
    """A +1/0/-1 target through ``vbt.Portfolio.from_signals`` (see the module notes)."""
    _check_instrument(instrument)
    fees = _fees(commission)
    slip = _slip(slippage)
    tgt = target.to_numpy(dtype="float64")
    masks = signal_masks(tgt)
    close_mode = fill_timing is FillTiming.SIGNAL_CLOSE
    if not close_mode:
        masks = {k: _shift(v) for k, v in masks.items()}
    shorts = bool((tgt < 0).any())
    o, h, lo, c = (prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close"))
    base = c if close_mode else o
    buy = masks["entries"] | masks["short_exits"]
    price = np.where(buy, np.minimum(base * (1 + slip), h), np.maximum(base * (1 - slip), lo))
    kw: dict[str, Any] = {"size_granularity": instrument.lot_size if instrument.lot_size > 0 else np.nan}
    if isinstance(sizer, AllEquity):
        kw["size"] = np.inf
    elif isinstance(sizer, FixedQuantity):
        kw.update(size=sizer.quantity, allow_partial=False)
    elif isinstance(sizer, PercentOfEquity) and not shorts:
        kw.update(size=sizer.fraction, size_type="percent")
    else:
        raise ParameterError(
            f"the vectorized engine cannot express sizing {sizer!r} here; use engine='event'"
        )
    vbt = _vbt()
    idx = prices.index
    pf = vbt.Portfolio.from_signals(
        pd.Series(c, index=idx, name=instrument.symbol),
        entries=masks["entries"], exits=masks["exits"],
        short_entries=masks["short_entries"] if shorts else None,
        short_exits=masks["short_exits"] if shorts else None,
        price=price, init_cash=float(cash), engine=vbt_engine(), **fees, **kw,
    )  # fmt: skip
    symbols = [instrument.symbol]
    placed_shift = 0 if close_mode else 1
    return VectorRun(
        equity=pd.Series(pf.value().to_numpy(), index=idx, name="equity"),
        positions=pd.Series(pf.assets().to_numpy(), index=idx, name=instrument.symbol),
        orders=_orders(pf, idx, symbols, placed_shift),
        fills=_fills(pf, idx, symbols),
        trades=_trades(pf, idx, symbols),
        portfolio=pf,
    )


def run_weights(
    panel: pd.DataFrame,
    weights: pd.DataFrame,
    instruments: list[Instrument],
    *,
    cash: float,
    commission: CommissionModel,
    slippage: SlippageModel,
    fill_timing: FillTiming = FillTiming.NEXT_OPEN,
    cost_basis: CostBasisMethod = CostBasisMethod.FIFO,
) -> VectorRun:
    """Target weights through ``vbt.Portfolio.from_orders(size_type="targetpercent")``."""
    from workbench.engines.event import check_weights

    for inst in instruments:
        _check_instrument(inst)
    names = [str(c) for c in weights.columns]
    W = check_weights(weights, panel.index, names)
    close_mode = fill_timing is FillTiming.SIGNAL_CLOSE
    if not close_mode:
        W = np.vstack([np.full((1, W.shape[1]), np.nan), W[:-1]])
    idx = panel.index
    close = pd.DataFrame({s: panel[(s, "Close")].to_numpy(dtype="float64") for s in names}, index=idx)
    price = close if close_mode else pd.DataFrame({s: panel[(s, "Open")].to_numpy(dtype="float64") for s in names}, index=idx)
    gran = np.array([[i.lot_size if i.lot_size > 0 else np.nan for i in instruments]])
    vbt = _vbt()
    pf = vbt.Portfolio.from_orders(
        close, size=W, size_type="targetpercent", price=price, val_price=price,
        size_granularity=gran, slippage=_slip(slippage), init_cash=float(cash),
        cash_sharing=True, group_by=True, call_seq="auto", direction="both",
        engine=vbt_engine(), **_fees(commission),
    )  # fmt: skip
    symbols = [i.symbol for i in instruments]
    fills = _fills(pf, idx, symbols)
    return VectorRun(
        equity=pd.Series(pf.value().to_numpy(), index=idx, name="equity"),
        positions=pd.DataFrame(pf.assets().to_numpy(), index=idx, columns=symbols),
        orders=_orders(pf, idx, symbols, 0 if close_mode else 1),
        fills=fills,
        trades=lot_trades(fills, instruments, float(cash), cost_basis),
        portfolio=pf,
    )


def lot_trades(
    fills: pd.DataFrame, instruments: list[Instrument], cash: float, cost_basis: CostBasisMethod
) -> pd.DataFrame:
    """Closed trades of a fill list under a lot-matching convention (FIFO, LIFO, AVERAGE).

    vectorbt's own exit trades average the entry price over every entry of a position, so
    when a rebalance trims or tops up a position they are not lots. Booking vectorbt's
    fills into the domain portfolio gives the same trade definition as the event engine
    (``run.portfolio.exit_trades`` still has vectorbt's view).
    """
    book = Portfolio(cash, instruments[0].currency, cost_basis, initial_margin=0.5)
    by_symbol = {i.symbol: i for i in instruments}
    for r in fills.itertuples(index=False):
        book.apply(Fill(fill_id=r.fill_id, order_id=r.order_id, instrument=by_symbol[r.symbol],
                        side=Side.parse(r.side), quantity=float(r.quantity), price=float(r.price),
                        fee=float(r.fee), ts=r.ts))  # fmt: skip
    return book.trades_frame()


def _records(pf: Any) -> np.ndarray:
    rec = pf.orders.values
    return rec[np.lexsort((rec["id"], rec["idx"]))]  # chronological, then in call order


def _fills(pf: Any, idx: pd.Index, symbols: list[str]) -> pd.DataFrame:
    rec = _records(pf)
    k = np.arange(1, len(rec) + 1)
    return pd.DataFrame(
        {
            "fill_id": [f"F-{i}" for i in k],
            "order_id": [f"O-{i}" for i in k],
            "symbol": np.asarray(symbols, dtype=object)[rec["col"]] if len(rec) else [],
            "side": np.where(rec["side"] == 0, "BUY", "SELL"),
            "quantity": rec["size"],
            "price": rec["price"],
            "fee": rec["fees"],
            "ts": idx[rec["idx"]],
        },
        columns=FILL_COLUMNS,
    )


def _orders(pf: Any, idx: pd.Index, symbols: list[str], placed_shift: int) -> pd.DataFrame:
    f = _fills(pf, idx, symbols)
    rec = _records(pf)
    return pd.DataFrame(
        {
            "order_id": f["order_id"], "symbol": f["symbol"], "side": f["side"],
            "type": "MARKET", "tif": "GTC", "quantity": f["quantity"], "limit_price": math.nan,
            "stop_price": math.nan, "placed": idx[np.maximum(rec["idx"] - placed_shift, 0)],
            "status": "FILLED", "filled_quantity": f["quantity"], "avg_fill_price": f["price"],
            "fees": f["fee"], "updated": f["ts"], "reason": "", "tag": "",
        },
        columns=ORDER_COLUMNS,
    )  # fmt: skip


def _trades(pf: Any, idx: pd.Index, symbols: list[str]) -> pd.DataFrame:
    """vectorbt's closed exit trades in the domain's trade columns (P&L net of fees)."""
    rec = pf.exit_trades.values
    rec = rec[rec["status"] == 1]
    rec = rec[np.lexsort((rec["col"], rec["exit_idx"]))]
    sign = np.where(rec["direction"] == 0, 1.0, -1.0)
    gross = (rec["exit_price"] - rec["entry_price"]) * rec["size"] * sign
    fees = rec["entry_fees"] + rec["exit_fees"]
    entry, exit_ = idx[rec["entry_idx"]], idx[rec["exit_idx"]]
    return pd.DataFrame(
        {
            "symbol": np.asarray(symbols, dtype=object)[rec["col"]] if len(rec) else [],
            "side": np.where(sign > 0, "LONG", "SHORT"),
            "quantity": rec["size"],
            "entry_time": entry,
            "exit_time": exit_,
            "entry_price": rec["entry_price"],
            "exit_price": rec["exit_price"],
            "gross_pnl": gross,
            "fees": fees,
            "pnl": gross - fees,
            "return": (gross - fees) / (rec["entry_price"] * rec["size"]),
            "duration": exit_ - entry,
        },
        columns=TRADE_COLUMNS,
    )
