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
  for signal strategies; weight strategies with slippage are refused (vectorbt sizes the
  rebalance itself and its ``slippage`` cannot clamp). Other models (per-share, minimum
  commission, volume caps), hooks, per-bar strategies, margin accounts and multipliers
  other than 1 have no vectorbt equivalent: :meth:`VectorizedEngine.refusal` names them
  and the composition root raises :class:`ParameterError` before anything runs.
- **Risk:** a signal strategy with a RiskProfile of order-level limits, or with a target
  that goes short, runs through :mod:`workbench.engines.vector_risk`: each vectorbt run is
  replayed through the event engine's RiskMonitor and account rule, and the target is
  corrected where an order would be denied, cut or rejected, or where a margin call comes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.engines.rebalance import MarginWatch
from workbench.engines.vector_risk import Replay, SignalWalk, margin_call_row, profile_refusal
from workbench.errors import ParameterError
from workbench.risk.sizing import ATRRisk, FixedFractional, VolatilityTarget
from workbench.strategy.engine import Hooks, Run
from workbench.strategy.spec import BacktestSpec
from workbench.strategy.targets import check_target, check_weights
from workbench.trading.accounts import CashAccount
from workbench.trading.costs import (
    CommissionModel,
    FixedBps,
    FixedPerOrder,
    NoCommission,
    NoSlippage,
    PercentOfNotional,
    SlippageModel,
    fill_prices,
)
from workbench.trading.enums import CostBasisMethod, FillTiming, Side
from workbench.trading.frames import orders_frame
from workbench.trading.orders import Fill
from workbench.trading.portfolio import TRADE_COLUMNS, Portfolio
from workbench.trading.sizing import AllEquity, FixedQuantity, PercentOfEquity, Sizer
from workbench.trading.values import Instrument

__all__ = ["VectorizedEngine", "VectorRun", "run_signals", "run_weights", "run_signal_grid", "lot_trades", "vbt_engine",
           "vbt_version"]

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


class VectorRun:
    """Raw output of the vectorized engine: equity and positions at once; the order, fill
    and trade tables are built from vectorbt's records on first access (as vectorbt's own
    ``records_readable`` is), so a caller that only needs the curve does not pay for them.
    ``portfolio`` is the vectorbt Portfolio, for anything vectorbt offers beyond our result.
    """

    def __init__(
        self,
        equity: pd.Series,
        positions: pd.Series | pd.DataFrame,
        portfolio: Any,
        symbols: list[str],
        placed_shift: int,
        trades: Callable[[pd.DataFrame], pd.DataFrame],
        walk: Replay | None = None,
    ) -> None:
        self.walk = walk
        self.equity = equity
        self.positions = positions
        self.portfolio = portfolio
        self._symbols = symbols
        self._shift = placed_shift
        self._trades = trades

    @functools.cached_property
    def _rec(self) -> np.ndarray:
        return _records(self.portfolio)

    @functools.cached_property
    def fills(self) -> pd.DataFrame:
        fills = _fills(self._rec, self.equity.index, self._symbols)
        return fills if self.walk is None else _walk_fills(fills, self._rec, self.walk, self.equity.index)

    @functools.cached_property
    def orders(self) -> pd.DataFrame:
        n = len(self._rec)
        orders = _orders(self.fills.iloc[:n], self._rec, self.equity.index, self._shift)
        return orders if self.walk is None else _walk_orders(orders, self.fills.iloc[n:], self.walk, self.equity.index)

    @functools.cached_property
    def trades(self) -> pd.DataFrame:
        return self._trades(self.fills)


def naive_utc(index: pd.Index) -> pd.Index:
    """The index as naive UTC stamps for vectorbt.

    vectorbt 1.2 under pandas 3 turns a tz-aware index into an array of Timestamp objects
    every time it wraps an output (11 s for ``value()`` on 1M bars instead of 0.08 s); the
    same instants without the zone avoid that. Results get the original index back.
    """
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert("UTC").tz_localize(None)
    return index


def _fees(commission: CommissionModel) -> dict[str, float]:
    if isinstance(commission, PercentOfNotional):
        return {"fees": commission.rate, "fixed_fees": 0.0}
    if isinstance(commission, FixedPerOrder):
        return {"fees": 0.0, "fixed_fees": commission.amount}
    return {"fees": 0.0, "fixed_fees": 0.0}


def _bps(slippage: SlippageModel) -> float:
    """Basis points of a slippage model the engine prices itself (fills through fill_prices)."""
    return float(slippage.bps) if isinstance(slippage, FixedBps) else 0.0


def _sizing_refusal(spec: BacktestSpec) -> str:
    """The sizing policy vectorbt cannot reproduce exactly, or ``""``: exactly the built-in
    policies that are all cash, a quantity or a percent of equity (per bar for volatility
    targeting and ATR risk; a subclass may size differently), and a percent only in whole
    units (vectorbt's granularity floor of a fractional exit leaves a one-lot rest that
    blocks every later entry)."""
    sizer = spec.sizer
    percent = (PercentOfEquity, FixedFractional, VolatilityTarget, ATRRisk)
    if type(sizer) not in (AllEquity, FixedQuantity, *percent):
        return f"sizing {sizer!r} (vectorbt has all cash, a quantity or a percent); use engine='event'"
    if type(sizer) in percent and any(i.fractional for i in spec.instruments):
        return f"sizing {sizer!r} on a fractional-lot instrument (vectorbt leaves a lot behind on exits); use engine='event'"
    return ""


def _cost_refusal(spec: BacktestSpec) -> str:
    """The cost model vectorbt cannot reproduce exactly, or ``""``.

    vectorbt has percent-of-notional and fixed-per-order fees only (no minimum, no per
    share). Fixed basis points of slippage are priced by this engine itself through the
    one fill-price rule (:func:`~workbench.trading.costs.fill_prices`: slip, then clamp into
    [low, high]) for signal strategies; for weight strategies the rebalances are sized
    inside vectorbt, so the side of each fill is not known before the call and vectorbt's
    own ``slippage`` does not clamp: the engines would disagree silently (483 vs 467 pairs
    fills at 1 bp), so slippage is refused there.
    """
    comm, slip = spec.commission, spec.slippage
    if not (type(comm) in (NoCommission, FixedPerOrder) or (type(comm) is PercentOfNotional and comm.minimum == 0)):
        return f"commission {comm!r} (vectorbt has percent-of-notional and fixed-per-order fees only)"
    if spec.strategy.kind == "weights" and not isinstance(slip, NoSlippage):
        return (f"slippage {slip!r} for weight strategies (fills are slipped, then clamped into the bar, "
                "and vectorbt only slips); use engine='event', or slippage=None")  # fmt: skip
    if type(slip) not in (NoSlippage, FixedBps):
        return f"slippage {slip!r} (only fixed basis points map onto vectorbt)"
    return ""


def _instrument_refusal(instruments: tuple[Instrument, ...]) -> str:
    for inst in instruments:
        if inst.multiplier != 1:
            return f"multiplier {inst.multiplier:g} of {inst.symbol} (vectorbt needs multiplier 1)"
    return ""


def signal_masks(target: np.ndarray, shift: int = 0) -> dict[str, np.ndarray]:
    """vectorbt's four signal arrays for a +1/0/-1 target, on the bar ``shift`` bars after
    each change (1 = the execution bar of NEXT_OPEN). Built from the change points only,
    so a long series with few trades costs four empty masks and a few writes."""
    n = len(target)
    at = np.flatnonzero(target[1:] != target[:-1]) + 1
    if n and target[0] != 0:
        at = np.concatenate(([0], at))
    new, old = target[at], np.where(at > 0, target[at - 1], 0.0)
    rows = {
        "entries": at[new == 1], "exits": at[(new == 0) & (old == 1)],
        "short_entries": at[new == -1], "short_exits": at[(new == 0) & (old == -1)],
    }  # fmt: skip
    out = {}
    for k, r in rows.items():
        m = np.zeros(n, dtype=bool)
        r = r + shift
        m[r[r < n]] = True
        out[k] = m
    return out


def _signal_arrays(
    prices: pd.DataFrame, tgt: np.ndarray, bps: float, close_mode: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(masks, fill prices, closes) for one target (1-D) or one per column (2-D).

    Fills are at the next open (or the signal close); with slippage the engine prices each
    fill itself, open × (1 ± bps) clamped into [low, high] exactly as the broker does
    (vectorbt's own ``slippage`` cannot clamp). Buys are entries and short exits.
    """
    shift = 0 if close_mode else 1
    if tgt.ndim == 1:
        masks = signal_masks(tgt, shift)
    else:
        cols = [signal_masks(tgt[:, j], shift) for j in range(tgt.shape[1])]
        masks = {k: np.column_stack([m[k] for m in cols]) for k in cols[0]}
    o, h, lo, c = (prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close"))
    if tgt.ndim == 2:
        o, h, lo, c = o[:, None], h[:, None], lo[:, None], c[:, None]
    base = c if close_mode else o
    if bps:
        buy = masks["entries"] | masks["short_exits"]
        price = fill_prices(base, bps, buy, lo, h)
    else:
        price = np.broadcast_to(base, tgt.shape)
    return masks, price, np.broadcast_to(c, tgt.shape)


def _size_kwargs(sizer: Sizer, shorts: bool, prices: pd.DataFrame | None = None, close_mode: bool = False,
                 ndim: int = 1) -> dict[str, Any]:  # fmt: skip
    """vectorbt's size arguments for a sizing policy (see the module notes).

    A sizer bound to the bars (:class:`VolatilityTarget`, :class:`ATRRisk`) becomes a
    percent per execution row: the fraction of signal bar s, at its order's reference
    price (the next open, or s's close with SIGNAL_CLOSE), on row s + 1 (or s), exactly
    what the event engine's bound sizer spends; a column (``ndim=2``) for a grid.
    """
    if isinstance(sizer, AllEquity):
        return {"size": np.inf}
    if isinstance(sizer, FixedQuantity):
        return {"size": sizer.quantity, "allow_partial": False}
    if isinstance(sizer, PercentOfEquity | FixedFractional) and not shorts:
        return {"size": sizer.fraction, "size_type": "percent"}
    if isinstance(sizer, VolatilityTarget | ATRRisk) and not shorts and prices is not None:
        shift = 0 if close_mode else 1
        ref = prices["Close" if close_mode else "Open"].to_numpy(dtype="float64")
        f = sizer.bind(prices).fractions(np.concatenate([ref[shift:], np.full(shift, np.nan)]))  # by signal bar
        size = np.zeros(len(ref))
        size[shift:] = f[: len(ref) - shift]
        return {"size": size[:, None] if ndim == 2 else size, "size_type": "percent"}
    raise ParameterError(f"the vectorized engine cannot reproduce sizing {sizer!r} for a strategy that goes "
                         "short (vectorbt's percent size is long-only); use engine='event'")  # fmt: skip


def _short_kwargs(masks: dict[str, np.ndarray], shorts: bool) -> dict[str, np.ndarray]:
    # passing short_entries=None is not free in vectorbt 1.2 (3x slower): omit them
    return {"short_entries": masks["short_entries"], "short_exits": masks["short_exits"]} if shorts else {}


class VectorizedEngine:
    """vectorbt behind the :class:`~workbench.strategy.engine.Engine` port: signal strategies
    through ``from_signals``, weight strategies through ``from_orders`` (module notes)."""

    name = "vectorized"

    def refusal(self, spec: BacktestSpec, hooks: Hooks) -> str:
        if spec.strategy.kind == "bar":
            return "a per-bar callback strategy; use engine='event'"
        if hooks.pre_trade_check is not None:
            return "a pre-trade check hook (vectorbt sizes inside its own loop); use engine='event'"
        if hooks.bus is not None:
            return "an event bus (vectorbt emits no order events); use engine='event'"
        if spec.risk is not None and spec.strategy.kind != "signal":
            return ("a risk profile on a weights strategy (its checks run on every leg of a rebalance that "
                    "vectorbt sizes inside its own loop); use engine='event'")  # fmt: skip
        if profile_refusal(spec.risk):
            return profile_refusal(spec.risk)
        if type(spec.account) is not CashAccount:
            return f"account {spec.account!r} (vectorbt runs a cash account); use engine='event'"
        if spec.strategy.kind == "signal":
            why = _sizing_refusal(spec)
            if why:
                return why
        elif any(i.fractional for i in spec.instruments):
            return ("a weights strategy on fractional-lot instruments (vectorbt's float floor of a "
                    "closing order leaves one lot behind, which the event engine closes); use engine='event'")
        return _cost_refusal(spec) or _instrument_refusal(spec.instruments)

    def run(self, spec: BacktestSpec, prices: pd.DataFrame, hooks: Hooks) -> Run:
        strategy = spec.strategy
        if strategy.kind == "weights":
            vr = run_weights(prices, strategy.weights(prices), spec)  # type: ignore[attr-defined]
        else:
            vr = run_signals(prices, strategy.target(prices), spec.instruments[0], spec)
        return Run(equity=vr.equity, positions=vr.positions, native=vr.portfolio,
                   tables=lambda: (vr.orders, vr.fills, vr.trades),
                   risk=vr.walk.monitor if vr.walk is not None else None)  # fmt: skip


def run_signals(prices: pd.DataFrame, target: pd.Series, instrument: Instrument, spec: BacktestSpec) -> VectorRun:
    """A +1/0/-1 target through ``vbt.Portfolio.from_signals`` (see the module notes); with
    a risk profile, or a target that goes short (a margin call is then possible), through
    the replay of :mod:`workbench.engines.vector_risk`."""
    tgt = check_target(target, prices.index)  # the event engine's check: same error, same message
    close_mode = spec.fill_timing is FillTiming.SIGNAL_CLOSE
    walk = SignalWalk(prices=prices, tgt=tgt, instrument=instrument, spec=spec) if spec.risk is not None or (tgt < 0).any() else None
    start = tgt if walk is None else walk.first_guess()
    shorts = bool((start < 0).any())
    kw = _size_kwargs(spec.sizer, shorts, prices, close_mode)
    kw["size_granularity"] = instrument.lot_size
    bps = _bps(spec.slippage)
    vbt = _vbt()

    def portfolio(eff: np.ndarray) -> Any:
        masks, price, c = _signal_arrays(prices, eff, bps, close_mode)
        return vbt.Portfolio.from_signals(
            c,  # plain arrays: vectorbt's index wrapping costs more than the simulation (see naive_utc)
            entries=masks["entries"], exits=masks["exits"], price=price, init_cash=float(spec.cash),
            engine=vbt_engine(), **_short_kwargs(masks, shorts), **_fees(spec.commission), **kw,
        )  # fmt: skip

    if walk is None:
        pf = portfolio(tgt)
    else:
        walk.simulate = lambda eff: _state(portfolio(eff))
        pf = walk.run()
    return _signal_run(pf, prices.index, instrument, spec, walk)


def _state(pf: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """(portfolio, cash, assets, value) per bar: what the risk replay reads of a run."""
    return pf, np.asarray(pf.cash()), np.asarray(pf.assets()), np.asarray(pf.value())


def _signal_run(pf: Any, idx: pd.Index, instrument: Instrument, spec: BacktestSpec, walk: SignalWalk | None) -> VectorRun:
    equity, positions = np.array(pf.value(), dtype="float64"), np.array(pf.assets(), dtype="float64")
    liq = walk.liquidated if walk is not None else None
    if liq is not None:  # flat from the liquidation on: its cash is the equity
        equity[liq.row :], positions[liq.row :] = liq.cash_after, 0.0
    symbols = [instrument.symbol]
    cash, basis = float(spec.cash), spec.cost_basis
    return VectorRun(
        equity=pd.Series(equity, index=idx, name="equity", copy=False),
        positions=pd.Series(positions, index=idx, name=instrument.symbol, copy=False),
        portfolio=pf,
        symbols=symbols,
        placed_shift=0 if spec.fill_timing is FillTiming.SIGNAL_CLOSE else 1,
        trades=(lambda fills: _trades(pf, idx, symbols)) if liq is None else
               (lambda fills: lot_trades(fills, [instrument], cash, basis)),
        walk=walk,
    )  # fmt: skip


def run_weights(panel: pd.DataFrame, weights: pd.DataFrame, spec: BacktestSpec) -> VectorRun:
    """Target weights through ``vbt.Portfolio.from_orders(size_type="targetpercent")``."""
    instruments = list(spec.instruments)
    names = [str(c) for c in weights.columns]
    symbols = [i.symbol for i in instruments]
    W = check_weights(weights, panel.index, names)
    close_mode = spec.fill_timing is FillTiming.SIGNAL_CLOSE
    if not close_mode:
        W = np.vstack([np.full((1, W.shape[1]), np.nan), W[:-1]])
    idx = panel.index
    vidx = naive_utc(idx)
    close = pd.DataFrame({s: panel[(s, "Close")].to_numpy(dtype="float64") for s in names}, index=vidx)
    price = close if close_mode else pd.DataFrame({s: panel[(s, "Open")].to_numpy(dtype="float64") for s in names}, index=vidx)
    gran = np.array([[i.lot_size if i.lot_size > 0 else np.nan for i in instruments]])
    vbt = _vbt()

    def portfolio(sizes: np.ndarray) -> Any:
        return vbt.Portfolio.from_orders(
            close, size=sizes, size_type="targetpercent", price=price, val_price=price,
            size_granularity=gran, init_cash=float(spec.cash),
            cash_sharing=True, group_by=True, call_seq="auto", direction="both",
            engine=vbt_engine(), **_fees(spec.commission),
        )  # fmt: skip

    pf = portfolio(W)
    equity, positions = np.array(pf.value(), dtype="float64"), np.array(pf.assets(), dtype="float64")
    replay = None
    j = margin_call_row(equity, np.abs(positions).sum(axis=1), 0, len(idx))
    if j is not None:  # a margin call: no order after it, every position closed at the next open
        W = W.copy()
        W[j + 1 :] = np.nan
        pf = portfolio(W)
        equity, positions = np.array(pf.value(), dtype="float64"), np.array(pf.assets(), dtype="float64")
        replay = Replay(n_orders=int(np.count_nonzero(pf.orders.values["idx"] <= j)))
        watch = MarginWatch(spec.account, idx, close.to_numpy(), np.array([i.multiplier for i in instruments]), None,
                            instruments=instruments)  # fmt: skip
        column = dict(zip(symbols, names, strict=True))
        replay.margin_call(watch, lambda sym, f, row: float(panel[(column[sym], f)].iat[row]), instruments, spec, j,
                           float(np.asarray(pf.cash()).reshape(-1)[j]), positions[j])  # fmt: skip
        if replay.liquidated is not None:
            equity[replay.liquidated.row :], positions[replay.liquidated.row :] = replay.liquidated.cash_after, 0.0
    cash, basis = float(spec.cash), spec.cost_basis
    return VectorRun(
        equity=pd.Series(equity, index=idx, name="equity", copy=False),
        positions=pd.DataFrame(positions, index=idx, columns=symbols),
        portfolio=pf,
        symbols=symbols,
        placed_shift=0 if close_mode else 1,
        trades=lambda fills: lot_trades(fills, instruments, cash, basis),
        walk=replay,
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
    book = Portfolio(cash, instruments[0].currency, cost_basis)
    by_symbol = {i.symbol: i for i in instruments}
    for r in fills.itertuples(index=False):
        book.apply(Fill(fill_id=r.fill_id, order_id=r.order_id, instrument=by_symbol[r.symbol],
                        side=Side.parse(r.side), quantity=float(r.quantity), price=float(r.price),
                        fee=float(r.fee), ts=r.ts))  # fmt: skip
    return book.trades_frame()


def _records(pf: Any) -> np.ndarray:
    rec = pf.orders.values
    return rec[np.lexsort((rec["id"], rec["idx"]))]  # chronological, then in call order


def _fills(rec: np.ndarray, idx: pd.Index, symbols: list[str]) -> pd.DataFrame:
    k = range(1, len(rec) + 1)  # Python ints: f-strings of numpy ints are 2x slower
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


def _orders(f: pd.DataFrame, rec: np.ndarray, idx: pd.Index, placed_shift: int) -> pd.DataFrame:
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


def _walk_fills(fills: pd.DataFrame, rec: np.ndarray, walk: Replay, idx: pd.Index) -> pd.DataFrame:
    """The event engine's order ids on vectorbt's fills (a denied order used one too),
    and the liquidation's fills, which this engine made itself."""
    if walk.order_ids:
        fills["order_id"] = [walk.order_ids.get(int(r), "") for r in rec["idx"]]
    liq = walk.liquidated
    if liq is None:
        return fills
    rows = [{"fill_id": f"F-{len(fills) + i}", "order_id": f.order_id, "symbol": f.symbol, "side": f.side.name,
             "quantity": f.quantity, "price": f.price, "fee": f.fee, "ts": idx[liq.row]}
            for i, f in enumerate(liq.fills, start=1)]  # fmt: skip
    return pd.concat([fills, pd.DataFrame(rows, columns=FILL_COLUMNS)], ignore_index=True)


def _walk_orders(orders: pd.DataFrame, extra: pd.DataFrame, walk: Replay, idx: pd.Index) -> pd.DataFrame:
    """vectorbt's orders, the denied ones and the liquidation, in order-id order."""
    orders["tag"] = [walk.tags.get(i, "") for i in orders["order_id"]]
    parts = [orders]
    if walk.unfilled:
        parts.append(orders_frame(walk.unfilled))
    if walk.liquidated is not None:
        liq = extra.assign(type="MARKET", tif="GTC", limit_price=math.nan, stop_price=math.nan,
                           placed=idx[walk.liquidated.row - 1], status="FILLED", filled_quantity=extra["quantity"],
                           avg_fill_price=extra["price"], fees=extra["fee"], updated=extra["ts"], reason="",
                           tag="liquidation")  # fmt: skip
        parts.append(liq[ORDER_COLUMNS])
    if not any(len(p) for p in parts):
        return orders
    out = pd.concat([p for p in parts if len(p)], ignore_index=True)
    number = out["order_id"].astype(str).str.extract(r"(\d+)$", expand=False).astype("float64")
    return out.iloc[np.argsort(number.to_numpy(), kind="stable")].reset_index(drop=True)


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


def run_signal_grid(
    prices: pd.DataFrame, targets: np.ndarray, instrument: Instrument, spec: BacktestSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Many +1/0/-1 targets (one column each) in one vectorbt call, with ``spec``'s cash,
    costs, sizing and timing (checked by :meth:`VectorizedEngine.refusal` first).

    Returns (equity, closed-trade count per column). Same conventions as
    :func:`run_signals`, column by column.
    """
    tgt = check_target(targets, prices.index)
    masks, price, c = _signal_arrays(prices, tgt, _bps(spec.slippage), spec.fill_timing is FillTiming.SIGNAL_CLOSE)
    shorts = bool((tgt < 0).any())
    kw = _size_kwargs(spec.sizer, shorts, prices, spec.fill_timing is FillTiming.SIGNAL_CLOSE, tgt.ndim)
    vbt = _vbt()
    pf = vbt.Portfolio.from_signals(
        c, entries=masks["entries"], exits=masks["exits"],
        price=price, init_cash=float(spec.cash), size_granularity=instrument.lot_size,
        engine=vbt_engine(), **_short_kwargs(masks, shorts), **_fees(spec.commission), **kw,
    )  # fmt: skip
    rec = pf.exit_trades.values
    n_trades = np.bincount(rec["col"][rec["status"] == 1], minlength=tgt.shape[1])
    return np.asarray(pf.value()), n_trades
