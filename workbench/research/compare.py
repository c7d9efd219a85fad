"""Engine cross-check: one spec on the event-driven and the vectorized engine, every
difference in fills, trades and equity listed (:func:`compare_engines`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.api import check_keywords, make_spec, run
from workbench.strategy.base import Strategy
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec
from workbench.trading.costs import NoCommission, NoSlippage

__all__ = ["EngineComparison", "compare_engines"]

# Keys must be equal; values equal within the tolerance. Quantities are values so that a
# fractional instrument (lot 1e-8) may differ by vectorbt's float floor of cash / price
# (one satoshi in 5e10); for whole units any relative tolerance < 1e-6 is exact equality.
KEYS = {"fills": ["ts", "symbol", "side"], "trades": ["symbol", "side", "entry_time", "exit_time"],
        "risk log": ["ts", "event", "order_id", "limit", "detail"]}  # fmt: skip
VALUES = {"fills": ["quantity", "price", "fee"], "trades": ["quantity", "entry_price", "exit_price", "pnl"],
          "risk log": ["value", "threshold"]}  # fmt: skip
ORDER = {"fills": ["ts", "symbol"], "trades": ["symbol", "exit_time", "entry_time", "side"], "risk log": []}


def _costly(result: BacktestResult) -> bool:
    spec = result.spec
    return not (isinstance(spec.commission, NoCommission) and isinstance(spec.slippage, NoSlippage))


def _diff_table(name: str, a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> list[str]:
    """Row-by-row differences of two fill or trade tables, as readable lines."""
    keys, vals = KEYS[name], VALUES[name]
    if ORDER[name]:  # the risk log is in time order already (events of one bar in the order they happened)
        a = a.sort_values(ORDER[name], kind="stable").reset_index(drop=True)
        b = b.sort_values(ORDER[name], kind="stable").reset_index(drop=True)
    out = []
    if len(a) != len(b):
        out.append(f"{name}: {len(a)} on the event engine vs {len(b)} on the vectorized engine")
    for i in range(min(len(a), len(b))):
        ra, rb = a.iloc[i], b.iloc[i]
        for k in keys:
            if ra[k] != rb[k]:
                out.append(f"{name}[{i}] {k}: event {ra[k]} vs vectorized {rb[k]}")
        for k in vals:
            x, y = float(ra[k]), float(rb[k])
            if not np.isclose(x, y, rtol=rtol, atol=rtol * 1e-3, equal_nan=True):
                out.append(f"{name}[{i}] {k}: event {x!r} vs vectorized {y!r}")
        if len(out) >= 20:
            out.append("... (first 20 differences shown)")
            break
    return out


@dataclass
class EngineComparison:
    """Both results and every difference; ``ok`` when they agree within ``tolerance``."""

    event: BacktestResult
    vectorized: BacktestResult
    tolerance: float
    equity_max_rel_diff: float
    differences: list[str] = field(default_factory=list)
    compared: tuple[str, ...] = ("fills", "trades", "equity", "risk log")

    @property
    def ok(self) -> bool:
        return not self.differences

    def report(self) -> str:
        e, v = self.event, self.vectorized
        head = (
            f"{e.spec.label}: "
            f"{len(e.fills)} fills / {len(e.trades)} trades (event) vs {len(v.fills)} / "
            f"{len(v.trades)} (vectorized); equity max relative difference "
            f"{self.equity_max_rel_diff:.2e} (tolerance {self.tolerance:g})"
        )
        return head + ("\nAGREE" if self.ok else "\nDIFFER:\n  " + "\n  ".join(self.differences))

    def __repr__(self) -> str:
        return f"<EngineComparison {'AGREE' if self.ok else 'DIFFER'}: {self.report().splitlines()[0]}>"

    def raise_if_different(self) -> None:
        if not self.ok:
            raise AssertionError(self.report())


def compare_engines(
    strategy: str | type[Strategy] | Strategy | BacktestSpec,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    tolerance: float | None = None,
    **execution: Any,
) -> EngineComparison:
    """Run the same spec on both engines and list every difference.

    ``strategy``, ``params`` and ``execution`` build the spec as for ``wb.backtest``
    (or pass a :class:`BacktestSpec`); its ``engine`` is replaced by each engine in turn.
    A spec the vectorized engine cannot reproduce exactly is refused with a
    :class:`~workbench.errors.ParameterError` naming the feature.

    Fills must match on timestamp, symbol and side exactly and on quantity, price and fee
    within ``tolerance`` (exact for whole units); so must the closed trades (timestamps, side, quantity, prices,
    P&L), and the equity curves bar by bar in relative terms. The default tolerance is
    1e-9 without costs and 1e-6 with commission or slippage or on a fractional-lot
    instrument (vectorbt's float floor of cash / price can differ by one lot, e.g. a
    satoshi in 1.85 BTC).

    So must the risk logs (``result.risk``): every denial, cut reversal, margin call,
    liquidation and state change, with the same order ids, limits and values, and the same
    counts. Both engines make the margin call of a cash account whose equity reaches zero
    with a position held, and liquidate at the next open.

    >>> import workbench as wb
    >>> wb.compare_engines("sma_crossover", "GOOG", commission=0.001).ok
    True
    """
    check_keywords(execution, "compare_engines", ("tolerance",))
    spec = make_spec(strategy, params, **execution)
    vz = run(spec.replace(engine="vectorized"), prices)  # refusals first: before the slow run
    ev = run(spec.replace(engine="event"), prices)
    fractional = any(i.fractional for i in ev.spec.instruments)  # vectorbt floors cash / price in floats
    tol = tolerance if tolerance is not None else (1e-6 if _costly(ev) or fractional else 1e-9)
    diffs = _diff_table("fills", ev.fills, vz.fills, tol)
    diffs += _diff_table("trades", ev.trades, vz.trades, tol)
    diffs += _risk_diffs(ev, vz, tol)
    a, b = ev.equity.to_numpy(), vz.equity.to_numpy()
    rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-300)
    worst = float(rel.max()) if len(rel) else 0.0
    if worst > tol:
        i = int(np.argmax(rel))
        diffs.append(f"equity at {ev.equity.index[i]}: event {a[i]!r} vs vectorized {b[i]!r} (rel {rel[i]:.2e})")
    return EngineComparison(ev, vz, tol, worst, diffs)


def _risk_diffs(ev: BacktestResult, vz: BacktestResult, tol: float) -> list[str]:
    """Differences of the two risk logs: presence, counts, then event by event."""
    a, b = ev.risk, vz.risk
    if a is None or b is None:
        return [] if a is b else [f"risk log: {a!r} on the event engine vs {b!r} on the vectorized engine"]
    out = [f"risk log {k}: event {getattr(a, k)!r} vs vectorized {getattr(b, k)!r}"
           for k in ("state", "level", "passed", "denied", "reduced") if getattr(a, k) != getattr(b, k)]  # fmt: skip
    return out + _diff_table("risk log", a.events, b.events, tol)
