"""The Engine port: one entry point from a spec and bars to one run type.

An engine (the event-driven simulator, vectorbt, later a live loop) implements
:class:`Engine`. Before it runs anything it answers :meth:`Engine.refusal`: the feature
of a spec it cannot reproduce *exactly* (a cost model vectorbt has no equivalent for, a
per-bar callback strategy, a pre-trade hook...), so a spec is refused by name instead of
being approximated silently. The composition root (:mod:`workbench.api`) picks the
engine, checks the refusal, and turns the :class:`Run` into a ``BacktestResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.spec import BacktestSpec
from workbench.trading.broker import PreTradeCheck
from workbench.trading.events import EventBus

__all__ = ["Engine", "Hooks", "NO_HOOKS", "Run", "check_supported"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Hooks:
    """Callables a run calls into (not part of the spec: they do not change what is
    simulated, only who watches or vetoes): an event bus and a pre-trade check."""

    bus: EventBus | None = None
    pre_trade_check: PreTradeCheck | None = None

    def __post_init__(self) -> None:
        if self.bus is not None and not callable(getattr(self.bus, "publish", None)):
            raise ParameterError(f"bus must be an EventBus, got bus={self.bus!r}")
        if self.pre_trade_check is not None and (not callable(self.pre_trade_check) or isinstance(self.pre_trade_check, type)):
            raise ParameterError(
                "pre_trade_check must be a function (order, portfolio, expected_price) -> reason, "
                f"got pre_trade_check={self.pre_trade_check!r}"
            )

    @property
    def any(self) -> bool:
        return self.bus is not None or self.pre_trade_check is not None


NO_HOOKS = Hooks()


Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]


class Run:
    """What every engine returns: curves at each bar's close and the three tables.

    ``equity`` is marked at each close; ``positions`` is the signed quantity held at each
    close (a Series for one instrument, a DataFrame for a panel); ``orders``, ``fills``
    and ``trades`` have the same columns whichever engine ran; ``native`` is the engine's
    own object (the broker, or vectorbt's Portfolio) for anything beyond this; ``risk`` is
    the run's :class:`~workbench.risk.monitor.RiskMonitor` when the spec has a profile.

    The tables are given directly, or as ``tables``: a function building all three, called
    on first access (as vectorbt's ``records_readable`` is), so a caller that needs only
    the curves (a sweep, a benchmark of the engine loop) does not pay for them.
    """

    __slots__ = ("equity", "positions", "native", "risk", "_tables", "_built")

    def __init__(
        self,
        *,
        equity: pd.Series,
        positions: pd.Series | pd.DataFrame,
        orders: pd.DataFrame | None = None,
        fills: pd.DataFrame | None = None,
        trades: pd.DataFrame | None = None,
        tables: Callable[[], Tables] | None = None,
        native: Any = None,
        risk: Any = None,
    ) -> None:
        given = (orders, fills, trades)
        if (tables is None) == any(t is None for t in given):
            raise TypeError("a Run needs either orders, fills and trades, or tables (not both)")
        self.equity, self.positions, self.native, self.risk = equity, positions, native, risk
        self._tables = tables
        self._built: Tables | None = None if tables is not None else given  # type: ignore[assignment]

    def _get(self) -> Tables:
        if self._built is None:
            self._built = self._tables()  # type: ignore[misc]
        return self._built

    @property
    def orders(self) -> pd.DataFrame:
        return self._get()[0]

    @property
    def fills(self) -> pd.DataFrame:
        return self._get()[1]

    @property
    def trades(self) -> pd.DataFrame:
        return self._get()[2]


@runtime_checkable
class Engine(Protocol):
    """Runs a bound :class:`BacktestSpec` on validated bars."""

    name: str

    def refusal(self, spec: BacktestSpec, hooks: Hooks) -> str:
        """The feature of ``spec`` (or of the hooks) this engine cannot reproduce exactly,
        as a short phrase, or ``""`` when it can run it."""
        ...

    def run(self, spec: BacktestSpec, prices: pd.DataFrame, hooks: Hooks) -> Run: ...


def check_supported(engine: Engine, spec: BacktestSpec, hooks: Hooks) -> None:
    """Raise :class:`ParameterError` naming what ``engine`` cannot reproduce."""
    why = engine.refusal(spec, hooks)
    if why:
        raise ParameterError(f"the {engine.name} engine cannot reproduce {why}")
