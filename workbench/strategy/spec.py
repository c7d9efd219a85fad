"""BacktestSpec: everything that determines a backtest, as one frozen, validated value.

A spec names the strategy and its parameters, the data (by content hash), the starting
cash, the cost models (as comparable values, not strings), the sizing policy, the fill
timing, the cost-basis method, the account rules and the engine. Two specs are equal
exactly when they would produce the same result, and :attr:`BacktestSpec.id` hashes
everything but the engine, so one experiment run on two engines has one id. Every use
case (``backtest``, ``compare_engines``, ``grid_search``, a stored run) passes a spec,
never a bundle of keywords.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ParameterError
from workbench.risk.profile import RiskProfile
from workbench.strategy.base import Strategy
from workbench.strategy.ids import describe, stable_id
from workbench.strategy.metrics import check_periods_per_year, check_risk_free_rate
from workbench.trading.accounts import AccountPolicy, CashAccount
from workbench.trading.costs import CommissionModel, SlippageModel, commission_from, slippage_from
from workbench.trading.enums import CostBasisMethod, FillTiming
from workbench.trading.sizing import AllEquity, Sizer, sizer_from
from workbench.trading.values import Instrument

__all__ = ["BacktestSpec", "DataId", "MAX_CASH", "check_cash"]

MAX_CASH = 1e15  # a plausibility bound on starting cash (see check_cash)


def check_cash(value: object) -> float:
    """Starting cash: a finite number in (0, :data:`MAX_CASH`] (else a ParameterError).

    A string, True or NaN is no amount. Above 1e15 (a quadrillion: ~10x world GDP) it is
    a typo, and float64 equity steps by 1/8 of a unit, no longer a cent: near 1e308,
    sizing ``cash / price`` lots overflowed. The bound is checked before any float
    conversion, which a huge int would overflow too.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ParameterError(f"cash must be > 0 and finite, got cash={value!r}")
    if value > MAX_CASH and value != math.inf:  # inf keeps its "finite" message below
        raise ParameterError(f"cash must be <= {MAX_CASH:g} (MAX_CASH, a plausibility bound), got cash={value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"cash must be > 0 and finite, got cash={value!r}")
    return v


@dataclass(frozen=True, kw_only=True, slots=True)
class DataId:
    """Which bars a backtest ran on: symbols, span, length and the SHA-256 of the OHLCV
    values (``content_hash``), plus where they came from (not part of the identity)."""

    symbols: tuple[str, ...]
    start: str
    end: str
    bars: int
    sha256: str
    source: str = field(default="user", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"symbols": list(self.symbols), "start": self.start, "end": self.end,
                "bars": self.bars, "sha256": self.sha256, "source": self.source}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class BacktestSpec:
    """One backtest, fully determined (see the module notes).

    Parameters
    ----------
    strategy : Strategy
        A validated strategy instance; its ``name`` and ``params`` enter the id.
    cash : float
        Starting cash, finite, > 0 and <= 1e15 (``MAX_CASH``).
    commission : float or CommissionModel
        A number is a fraction of notional per fill (0.001 = 10 bps).
    slippage : SlippageModel, optional
        ``FixedBps(bps=5)`` moves every fill 5 bps against you, then clamps it into the bar.
    sizer : "all", float in (0, 1], int, or Sizer
        Signal strategies: all equity in whole lots, a fraction of equity or a quantity.
    fill_timing : FillTiming
        Market orders fill at the next bar's open (default) or the signal bar's close.
    cost_basis : CostBasisMethod
        FIFO (default), LIFO or AVERAGE lot matching for closed trades.
    account : AccountPolicy
        The buying-power rule: ``CashAccount()`` (default) or ``MarginAccount(...)``.
    risk : RiskProfile, optional
        Limits every order must pass before it reaches the broker, and a drawdown rule.
    engine : str
        Which engine runs it; not part of :attr:`id`.
    instruments : tuple of Instrument
        What is traded; empty until bound to data (then one per symbol).
    risk_free_rate, periods_per_year : float
        Conventions of the stats (annual rate; annualisation factor, default from the bars).
    data : DataId, optional
        The bars, once bound (:meth:`bind`).

    >>> from workbench.strategies import SMACrossover
    >>> a = BacktestSpec(strategy=SMACrossover(fast=10, slow=30), commission=0.001)
    >>> a.commission
    PercentOfNotional(rate=0.001, minimum=0.0)
    >>> a.replace(engine="vectorized").id == a.id
    True
    """

    strategy: Strategy
    cash: float = 10_000.0
    commission: CommissionModel = field(default=None)  # type: ignore[assignment]
    slippage: SlippageModel = field(default=None)  # type: ignore[assignment]
    sizer: Sizer = field(default_factory=AllEquity)
    fill_timing: FillTiming = FillTiming.NEXT_OPEN
    cost_basis: CostBasisMethod = CostBasisMethod.FIFO
    account: AccountPolicy = field(default_factory=CashAccount)
    risk: RiskProfile | None = None
    engine: str = "event"
    instruments: tuple[Instrument, ...] = ()
    risk_free_rate: float = 0.0
    periods_per_year: float | None = None
    data: DataId | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.strategy, Strategy):
            raise ParameterError(f"spec.strategy must be a Strategy instance, got {self.strategy!r}")
        fix = self._set
        fix("cash", check_cash(self.cash))
        fix("commission", commission_from(self.commission))
        fix("slippage", slippage_from(self.slippage))
        fix("sizer", sizer_from(self.sizer))
        fix("fill_timing", FillTiming.parse(self.fill_timing))
        fix("cost_basis", CostBasisMethod.parse(self.cost_basis))
        fix("risk_free_rate", check_risk_free_rate(self.risk_free_rate))
        if self.periods_per_year is not None:
            fix("periods_per_year", check_periods_per_year(self.periods_per_year))
        if not (isinstance(self.engine, str) and self.engine):
            raise ParameterError(f"engine must be an engine name, got engine={self.engine!r}")
        if not hasattr(self.account, "check_fill"):
            raise ParameterError(f"account must be an account policy (CashAccount(), MarginAccount(...)), got {self.account!r}")
        if self.risk is not None and not isinstance(self.risk, RiskProfile):
            raise ParameterError(f"risk must be a RiskProfile(limits=...), got risk={self.risk!r}")
        fix("instruments", tuple(self.instruments))
        if not all(isinstance(i, Instrument) for i in self.instruments):
            raise ParameterError(f"instruments must be Instrument values, got {self.instruments!r}")

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    # -- derived ------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return self.strategy.params

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.data.symbols if self.data is not None else ()

    @property
    def label(self) -> str:
        """``name {params} on SYMBOL``: the title of charts and reports."""
        on = ", ".join(self.symbols) or "unbound data"
        return f"{self.strategy.name} {self.params} on {on}"

    def replace(self, **changes: Any) -> BacktestSpec:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def bind(self, data: DataId, instruments: tuple[Instrument, ...]) -> BacktestSpec:
        """This spec on concrete bars and instruments."""
        return self.replace(data=data, instruments=instruments)

    # -- identity -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: what a store saves and what :attr:`id` hashes (with the engine)."""
        weights = self.strategy.kind == "weights"
        return {
            **self.strategy.identity(),  # name, params (and the code of user strategies)
            "data": None if self.data is None else self.data.to_dict(),
            "instruments": [{"symbol": i.symbol, **describe(i)} for i in self.instruments],
            "cash": self.cash,
            "commission": describe(self.commission),
            "slippage": describe(self.slippage),
            "size": "target weights" if weights else describe(self.sizer),
            "fill_timing": self.fill_timing.name,
            "cost_basis": self.cost_basis.name,
            "account": describe(self.account),
            "risk": describe(self.risk),
            "risk_free_rate": self.risk_free_rate,
            "periods_per_year": self.periods_per_year,
            "engine": self.engine,
        }

    @property
    def id(self) -> str:
        """:func:`~workbench.strategy.ids.stable_id` of :meth:`to_dict` without the engine
        and the data's source label: the experiment, whichever engine reproduces it."""
        d = self.to_dict()
        del d["engine"]
        if d["data"] is not None:
            del d["data"]["source"]
        return stable_id(d)
