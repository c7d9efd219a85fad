"""Cross-checks a researcher runs before trusting a backtest.

- :func:`compare_engines` runs one spec on the event-driven and the vectorized engine and
  reports every difference in fills, trades and equity.
- :func:`check_lookahead` truncates the data after several times t and checks that the
  strategy's decisions (and the backtest's equity) up to t do not move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.api import _prepare, backtest, resolve_strategy
from workbench.errors import LookAheadError, ParameterError
from workbench.strategy.base import Strategy
from workbench.strategy.result import BacktestResult

__all__ = ["EngineComparison", "compare_engines", "check_lookahead"]

# Keys must be equal; values equal within the tolerance. Quantities are values so that a
# fractional instrument (lot 1e-8) may differ by vectorbt's float floor of cash / price
# (one satoshi in 5e10); for whole units any relative tolerance < 1e-6 is exact equality.
KEYS = {"fills": ["ts", "symbol", "side"], "trades": ["symbol", "side", "entry_time", "exit_time"]}
VALUES = {"fills": ["quantity", "price", "fee"], "trades": ["quantity", "entry_price", "exit_price", "pnl"]}


def _costly(result: BacktestResult) -> bool:
    return result.spec["commission"] != "NoCommission()" or result.spec["slippage"] != "NoSlippage()"


def _diff_table(name: str, a: pd.DataFrame, b: pd.DataFrame, rtol: float) -> list[str]:
    """Row-by-row differences of two fill or trade tables, as readable lines."""
    keys, vals = KEYS[name], VALUES[name]
    order = ["ts", "symbol"] if name == "fills" else ["symbol", "exit_time", "entry_time", "side"]
    a = a.sort_values(order, kind="stable").reset_index(drop=True)
    b = b.sort_values(order, kind="stable").reset_index(drop=True)
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
            if not np.isclose(x, y, rtol=rtol, atol=rtol * 1e-3):
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
    compared: tuple[str, ...] = ("fills", "trades", "equity")

    @property
    def ok(self) -> bool:
        return not self.differences

    def report(self) -> str:
        e, v = self.event, self.vectorized
        head = (
            f"{e.spec['strategy']} {e.spec['params']} on {e.spec['symbol']}: "
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
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    tolerance: float | None = None,
    **kwargs: Any,
) -> EngineComparison:
    """Run the same spec on both engines and list every difference.

    Fills must match on timestamp, symbol and side exactly and on quantity, price and fee
    within ``tolerance`` (exact for whole units); so must the closed trades (timestamps, side, quantity, prices,
    P&L), and the equity curves bar by bar in relative terms. The default tolerance is
    1e-9 without costs and 1e-6 with commission or slippage.

    The engines agree while the account is solvent. Once equity is at or below zero
    (a short through a rally can do that) they part: vectorbt covers only what cash pays
    for, the simulated broker always lets an exit through (into negative cash).

    >>> import workbench as wb
    >>> wb.compare_engines("sma_crossover", "GOOG", commission=0.001).ok
    True
    """
    ev = backtest(strategy, prices, params, engine="event", **kwargs)
    vz = backtest(strategy, prices, params, engine="vectorized", **kwargs)
    tol = tolerance if tolerance is not None else (1e-6 if _costly(ev) else 1e-9)
    diffs = _diff_table("fills", ev.fills, vz.fills, tol)
    diffs += _diff_table("trades", ev.trades, vz.trades, tol)
    a, b = ev.equity.to_numpy(), vz.equity.to_numpy()
    rel = np.abs(a - b) / np.maximum(np.abs(a), 1e-300)
    worst = float(rel.max()) if len(rel) else 0.0
    if worst > tol:
        i = int(np.argmax(rel))
        diffs.append(f"equity at {ev.equity.index[i]}: event {a[i]!r} vs vectorized {b[i]!r} (rel {rel[i]:.2e})")
    return EngineComparison(ev, vz, tol, worst, diffs)


def _decisions(strat: Strategy, prices: pd.DataFrame) -> pd.DataFrame:
    if strat.kind == "bar":  # decided bar by bar: only the backtest shows the decisions
        return pd.DataFrame(index=prices.index)
    if strat.kind == "weights":
        return strat.weights(prices).ffill().fillna(0.0)
    return strat.target(prices).to_frame()


def check_lookahead(
    strategy: str | type[Strategy] | Strategy,
    prices: pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    cuts: int = 8,
    backtests: bool = True,
    **kwargs: Any,
) -> int:
    """Raise :class:`LookAheadError` if removing data after t changes anything up to t.

    The data is cut at ``cuts`` points spread over the second half of the sample (after
    the warm-up) and at the very last bar. At each cut, the strategy's targets (or
    weights) up to the cut must be identical to the full run's, and with ``backtests``
    the equity up to the bar before the cut too (its last bar may differ only because an
    order placed at the cut fills on the next bar). Returns the number of cuts checked.
    """
    strat = resolve_strategy(strategy, params)
    prices, _ = _prepare(strat, prices)
    n = len(prices)
    if n < 4:
        raise ParameterError(f"need at least 4 bars to check look-ahead, got {n}")
    start = min(max(strat.warmup + 2, n // 2), n - 2)
    points = sorted(set(np.linspace(start, n - 2, cuts).astype(int).tolist()))
    full = _decisions(strat, prices)
    full_equity = backtest(strat, prices, **kwargs).equity if backtests or strat.kind == "bar" else None
    for t in points:
        cut = prices.iloc[: t + 1]
        part = _decisions(strat, cut)
        ref = full.iloc[: t + 1]
        same = np.array_equal(part.to_numpy(), ref.to_numpy(), equal_nan=True)
        if not same:
            bad = ~np.isclose(part.to_numpy(), ref.to_numpy(), rtol=0, atol=0, equal_nan=True).all(axis=1)
            first = prices.index[int(np.argmax(bad))]
            raise LookAheadError(
                f"{strat.name} looks ahead: its decision at {first} changed when the data was cut "
                f"after {prices.index[t]} (decisions must use only bars up to their own close)"
            )
        if full_equity is not None:
            eq = backtest(strat, cut, **kwargs).equity.to_numpy()[:-1]
            ref_eq = full_equity.to_numpy()[: t]
            if not np.array_equal(eq, ref_eq):
                i = int(np.argmax(eq != ref_eq))
                raise LookAheadError(
                    f"{strat.name}: backtest equity at {prices.index[i]} changed when the data was cut "
                    f"after {prices.index[t]}"
                )
    return len(points)
