"""The Strategy aggregate: frozen parameters, a lifecycle, and prices → targets → Signals.

Two shapes, one contract (decide at a bar's close from data up to and including it):

- :class:`Strategy` trades one instrument. ``target(prices)`` maps an OHLCV frame to a
  Series on the same index: +1 long, 0 flat, -1 short.
- :class:`PortfolioStrategy` trades several. ``weights(panel)`` maps a panel (columns
  ``(symbol, field)``, as :func:`workbench.load_prices` returns for several symbols) to a
  frame of target weights of equity, one column per symbol. A row of NaN means "hold":
  no rebalance on that bar. Gross weight (sum of ``|w|``) is at most 1.

The engines turn changes of the target into orders filled at the next bar's open, so a
strategy never sees fills or cash. :meth:`Strategy.signals` expresses the same decisions
as :class:`~workbench.strategy.signals.Signal` records (symbol, action, strength,
confidence).

Parameters are frozen, keyword-only dataclass fields validated in ``validate``: a bad
value raises :class:`~workbench.errors.ParameterError` naming the parameter and value.
:func:`check_int` bounds integers at :data:`MAX_INT_PARAM` (10**7 bars) unless told
otherwise, so ``fast=10**30`` is named instead of overflowing inside TA-Lib.
The lifecycle (DRAFT → TESTING → LIVE ⇄ PAUSED) is the one mutable part; each transition
is checked against :data:`LEGAL_TRANSITIONS` and recorded as a
:class:`StrategyStatusChanged` event.

Writing one is a short subclass::

    @dataclass(frozen=True, kw_only=True)
    class Breakout(Strategy):
        window: int = 20
        def validate(self):
            check_int("window", self.window, 2)
        @property
        def warmup(self):
            return self.window
        def target(self, prices):
            high = prices["High"].rolling(self.window).max().shift(1)
            return (prices["Close"] > high).astype(float)
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench.errors import ParameterError, StrategyStateError
from workbench.strategy.ids import code_fingerprint, describe, is_builtin, stable_id
from workbench.strategy.signals import signals_from_targets, signals_from_weights
from workbench.trading.events import Event

__all__ = [
    "Strategy", "PortfolioStrategy", "BarStrategy", "StrategyStatus", "StrategyStatusChanged",
    "LEGAL_TRANSITIONS", "FunctionStrategy", "check_int", "check_float", "check_bool", "panel_field",
]  # fmt: skip


class StrategyStatus(enum.Enum):
    DRAFT = "draft"
    TESTING = "testing"
    LIVE = "live"
    PAUSED = "paused"


LEGAL_TRANSITIONS: dict[StrategyStatus, frozenset[StrategyStatus]] = {
    StrategyStatus.DRAFT: frozenset({StrategyStatus.TESTING}),
    StrategyStatus.TESTING: frozenset({StrategyStatus.LIVE, StrategyStatus.DRAFT}),
    StrategyStatus.LIVE: frozenset({StrategyStatus.PAUSED}),
    StrategyStatus.PAUSED: frozenset({StrategyStatus.LIVE, StrategyStatus.TESTING}),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyStatusChanged(Event):
    strategy: str
    spec_id: str
    old: StrategyStatus
    new: StrategyStatus
    reason: str = ""


MAX_INT_PARAM = 10**7  # default ceiling of an integer parameter (see check_int)
MAX_SEED = 2**32 - 1  # the ceiling of a random seed (see check_seed)


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in ``[minimum, maximum]``, else a ParameterError naming both.

    Integer parameters are bar counts (windows, lookbacks, rebalance periods, top-k...):
    left unsaid, ``maximum`` is :data:`MAX_INT_PARAM` (10 million, the largest series the
    workbench is sized for: a longer window can never fill, and past 2**31 TA-Lib and
    pandas raise a raw OverflowError). Random seeds are not bar counts: see :func:`check_seed`.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {name}={value!r}")
    if maximum is not None:
        if not minimum <= value <= maximum:
            raise ParameterError(f"{name} must be in [{minimum}, {maximum}], got {name}={value}")
        return int(value)
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {name}={value}")
    return _at_most(name, value, MAX_INT_PARAM, "MAX_INT_PARAM")


def check_seed(name: str, value: object) -> int:
    """A random seed: an int in [0, :data:`MAX_SEED`] (what scikit-learn's ``random_state`` takes)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {name}={value!r}")
    if value < 0:
        raise ParameterError(f"{name} must be >= 0, got {name}={value}")
    return _at_most(name, value, MAX_SEED, "MAX_SEED")


def _at_most(name: str, value: int, ceiling: int, why: str) -> int:
    if value > ceiling:
        raise ParameterError(f"{name} must be <= {ceiling:,} ({why}), got {name}={value}")
    return int(value)


def check_float(
    name: str, value: object, low: float = -np.inf, high: float = np.inf, *, open_low: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ParameterError(f"{name} must be a number, got {name}={value!r}")
    v = float(value)
    if not np.isfinite(v) or v < low or v > high or (open_low and v == low):
        lo = "(" if open_low else "["
        raise ParameterError(f"{name} must be in {lo}{low:g}, {high:g}], got {name}={value!r}")
    return v


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be True or False, got {name}={value!r}")
    return value


def panel_field(panel: pd.DataFrame, field: str = "Close") -> pd.DataFrame:
    """One field of a ``(symbol, field)`` panel as a frame with one column per symbol."""
    if not isinstance(panel.columns, pd.MultiIndex):
        raise ParameterError("a portfolio strategy needs a panel with (symbol, field) columns")
    out = panel.xs(field, axis=1, level=1)
    out.columns = list(out.columns)
    return out


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A single-instrument strategy: frozen, validated parameters and ``target``."""

    kind: ClassVar[str] = "signal"

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "_status", StrategyStatus.DRAFT)
        object.__setattr__(self, "_events", [])

    def validate(self) -> None:
        """Raise :class:`ParameterError` naming the parameter and value when invalid."""

    # -- identity -----------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def identity(self) -> dict[str, Any]:
        """What makes two strategies decide alike: the name and parameters, plus, for a
        strategy defined outside the workbench, the bytecode of its class (so a class
        redefined in a notebook cell is a different strategy)."""
        out: dict[str, Any] = {"strategy": self.name, "params": describe(self.params)}
        if not is_builtin(type(self)):
            out["code"] = code_fingerprint(type(self))
        return out

    @property
    def spec_id(self) -> str:
        """:func:`~workbench.strategy.ids.stable_id` of :meth:`identity` (a cache/report key)."""
        return stable_id(self.identity())

    @property
    def warmup(self) -> int:
        """Bars needed before the first signal (indicator windows not yet complete)."""
        return 0

    @property
    def libraries(self) -> tuple[str, ...]:
        """Distributions whose code computes this strategy's decisions (e.g. scikit-learn):
        their versions are recorded with every run, so a rerun can name a changed one."""
        return ()

    # -- lifecycle ----------------------------------------------------------------
    @property
    def status(self) -> StrategyStatus:
        return self._status  # type: ignore[attr-defined,no-any-return]

    @property
    def events(self) -> list[StrategyStatusChanged]:
        return list(self._events)  # type: ignore[attr-defined]

    def _move(self, new: StrategyStatus, ts: object, reason: str) -> StrategyStatusChanged:
        old = self.status
        if new not in LEGAL_TRANSITIONS[old]:
            allowed = ", ".join(s.name for s in LEGAL_TRANSITIONS[old])
            raise StrategyStateError(
                f"{self.name} cannot go from {old.name} to {new.name} (allowed: {allowed})"
            )
        event = StrategyStatusChanged(
            ts=pd.Timestamp.now(tz="UTC") if ts is None else pd.Timestamp(ts),
            strategy=self.name, spec_id=self.spec_id, old=old, new=new, reason=reason,
        )  # fmt: skip
        object.__setattr__(self, "_status", new)
        self._events.append(event)  # type: ignore[attr-defined]
        return event

    def start_testing(self, ts: object = None, reason: str = "") -> StrategyStatusChanged:
        return self._move(StrategyStatus.TESTING, ts, reason)

    def go_live(self, ts: object = None, reason: str = "") -> StrategyStatusChanged:
        return self._move(StrategyStatus.LIVE, ts, reason)

    def pause(self, ts: object = None, reason: str = "") -> StrategyStatusChanged:
        return self._move(StrategyStatus.PAUSED, ts, reason)

    def back_to_draft(self, ts: object = None, reason: str = "") -> StrategyStatusChanged:
        return self._move(StrategyStatus.DRAFT, ts, reason)

    # -- decisions ----------------------------------------------------------------
    def target(self, prices: pd.DataFrame) -> pd.Series:
        raise NotImplementedError(f"{self.name} must implement target(prices)")

    def confidence(self, prices: pd.DataFrame) -> pd.Series | None:
        """Optional per-bar confidence in [0, 1] attached to the Signals (default: none)."""
        return None

    def signals(self, prices: pd.DataFrame, symbol: str | None = None) -> pd.DataFrame:
        """The target's changes as Signal records (one row per change)."""
        sym = symbol or str(prices.attrs.get("symbol", "ASSET"))
        return signals_from_targets(self.target(prices), sym, self.confidence(prices))


@dataclass(frozen=True, kw_only=True)
class PortfolioStrategy(Strategy):
    """A multi-instrument strategy: ``weights(panel)`` gives target weights per symbol."""

    kind: ClassVar[str] = "weights"

    def weights(self, panel: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError(f"{self.name} must implement weights(panel)")

    def target(self, prices: pd.DataFrame) -> pd.Series:
        raise ParameterError(f"{self.name} trades a panel of symbols: use weights(panel)")

    def signals(self, prices: pd.DataFrame, symbol: str | None = None) -> pd.DataFrame:
        return signals_from_weights(self.weights(prices))


@dataclass(frozen=True, kw_only=True)
class BarStrategy(Strategy):
    """A per-bar callback strategy for the event-driven engine (backtesting.py style).

    ``init(prices)`` runs once and returns anything (typically indicator arrays); it is
    available as ``ctx.data``. ``on_bar(ctx)`` then runs at every bar's close with a
    :class:`~workbench.engines.bars.BarContext`: read ``ctx.close`` (a view up to the
    current bar), ``ctx.position``, ``ctx.equity``; act with ``ctx.target(+1/0/-1,
    stop_loss=, take_profit=, trailing_stop=)`` or explicit ``ctx.buy`` / ``ctx.sell``
    orders of any type and time in force. Orders placed at bar t's close work from bar
    t+1. Only the event engine runs these.
    """

    kind: ClassVar[str] = "bar"

    def init(self, prices: pd.DataFrame) -> Any:
        return None

    def on_bar(self, ctx: Any) -> None:
        raise NotImplementedError(f"{self.name} must implement on_bar(ctx)")

    def target(self, prices: pd.DataFrame) -> pd.Series:
        raise ParameterError(f"{self.name} decides bar by bar: run it with wb.backtest(..., engine='event')")


@dataclass(frozen=True, kw_only=True)
class FunctionStrategy(Strategy):
    """A plain function ``fn(prices, **params) -> target Series`` used as a strategy.

    ``wb.backtest(my_rule, prices, {"window": 20})`` wraps it; the spec names the
    function (module and qualified name) and its keyword parameters.
    """

    fn: Callable[..., pd.Series]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def validate(self) -> None:
        if not callable(self.fn):
            raise ParameterError(f"fn must be callable, got {self.fn!r}")

    @property
    def name(self) -> str:
        """``module.qualname`` of the function (of the wrapped one for a partial)."""
        fn, wrap = self.fn, "{}"
        while isinstance(fn, functools.partial):
            fn, wrap = fn.func, wrap.format("partial({})")
        name = getattr(fn, "__qualname__", type(fn).__qualname__)
        return wrap.format(f"{getattr(fn, '__module__', '') or ''}.{name}".lstrip("."))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.kwargs)

    def identity(self) -> dict[str, Any]:
        """The function's bytecode, defaults and closure values, beside its name and
        keyword parameters: two lambdas, or a rule redefined in a notebook, differ."""
        return {"strategy": self.name, "params": describe(self.params), "fn": describe(self.fn)}

    def target(self, prices: pd.DataFrame) -> pd.Series:
        out = self.fn(prices, **dict(self.kwargs))
        if not isinstance(out, pd.Series):
            raise ParameterError(f"{self.name} must return a pandas Series of +1/0/-1, got {type(out).__name__}")
        return out.astype("float64").rename("target")
