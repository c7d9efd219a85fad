"""Pre-trade limits: small policy objects, one rule each (zipline's ``controls.py`` style).

Each limit answers ``check(proposal) -> Breach | None`` for one proposed order, seen with
the account as it stands and the order's expected price. Conventions every limit follows:

- exposure is marked at the expected price for the order's instrument and at the latest
  marks for the others; weights and leverage are fractions of current equity;
- a limit never blocks an order that only *reduces* a position (closing is always allowed,
  so a breach caused by prices moving can be traded out of); order-size limits apply to
  every order that opens or adds;
- a breach names the limit, the value and the threshold, so a denial is self-explaining;
- limits that need every position after the order (concentration, VaR) read it from
  :meth:`Proposal.values`, computed on first use, so the other limits never pay for it;
- a limit that needs the run's price history (:class:`MaxVaR`) also has
  ``bind(index, close, symbols) -> Limit``: the engine binds it to the run's closes when
  the run starts (:meth:`~workbench.risk.monitor.RiskMonitor.bind`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.trading.accounts import reduces_only
from workbench.trading.broker import PortfolioView
from workbench.trading.enums import Side
from workbench.trading.orders import Order
from workbench.trading.portfolio import Portfolio
from workbench.trading.positions import Position
from workbench.trading.values import Instrument

__all__ = [
    "Proposal", "Breach", "Limit", "MaxOrderNotional", "MaxOrderQuantity", "MaxPositionWeight",
    "MaxGrossLeverage", "MaxNetLeverage", "LongOnly", "MaxOrdersPerDay", "MaxTopNWeight", "MaxHHI",
    "MaxVaR",
]  # fmt: skip

_BUY = Side.BUY


class Proposal:
    """One order as the limits see it: before/after position, exposure and equity.

    Built once per order on the pre-trade hot path, so it computes only what the
    order-level limits read; every position after the order (:meth:`values`) waits for a
    limit that asks."""

    __slots__ = ("order", "price", "q0", "q1", "equity", "gross_after", "net_after", "orders_today",
                 "reduces_only", "notional", "book", "_values")  # fmt: skip

    def __init__(self, order: Order, price: float, book: PortfolioView, orders_today: int = 0,
                 working: float = 0.0) -> None:  # fmt: skip
        inst = order.instrument
        m = inst.multiplier
        qty = order.quantity
        held, value, gross = _book_state(book, inst)
        q0 = held + working  # what the position becomes once the orders already working fill
        q1 = q0 + qty if order.side is _BUY else q0 - qty  # Side.sign is an enum property: slow here
        mark0 = book.marks.get(inst.symbol, price) if held and hasattr(book, "marks") else price
        self.order, self.price, self.q0, self.q1, self.orders_today = order, price, q0, q1, orders_today
        self.book, self._values = book, None
        self.equity = book.cash + value
        self.gross_after = gross - abs(held * mark0 * m) + abs(q1 * price * m)
        self.net_after = value - held * mark0 * m + q1 * price * m
        #: the order only brings the position closer to flat (never past it)
        self.reduces_only = reduces_only(q0, q1)
        self.notional = qty * price * m

    @property
    def reversal(self) -> bool:
        """The order closes the position and opens the other side (one order, two legs)."""
        return self.q0 * self.q1 < 0

    def values(self) -> dict[str, float]:
        """Signed value of every position after the order, by symbol (flat ones left out):
        the order's instrument at ``q1`` × the expected price, the others at the book's
        latest marks (the entry price when never marked, as ``Portfolio`` values them).
        Computed on the first call; the book must be a ``Portfolio`` (or have its
        ``positions`` and ``marks``)."""
        if self._values is None:
            self._values = _values_after(self)
        return self._values


def _book_state(book: PortfolioView, inst: Instrument) -> tuple[float, float, float]:
    """(quantity held in ``inst``, market value, gross exposure) of ``book``.

    A ``Portfolio`` is read directly, in one pass over its positions, term by term as its
    ``quantity()``, ``market_value()`` and ``gross_exposure()`` compute them (the same
    floats; a position never marked is valued at its entry price, as there); the book of
    the order's instrument alone costs one quantity. Any other view answers through those
    three methods."""
    if type(book) is not Portfolio:
        return book.quantity(inst), book.market_value(), book.gross_exposure()
    positions = book.positions
    if not positions:
        return 0.0, 0.0, 0.0
    pos = positions.get(inst.symbol)
    held = 0.0 if pos is None else pos.quantity
    if pos is not None and len(positions) == 1:  # the common case: the order's instrument only
        mark = book.marks.get(inst.symbol)
        if mark is None:
            mark = pos.avg_price if not pos.is_flat else 0.0
        value = held * mark * inst.multiplier + 0.0  # Position.market_value; + 0.0 as sum() (0 + -0.0 is 0.0)
        return held, value, abs(value)
    return (held, *_totals(positions, book.marks))


def _totals(positions: dict[str, Position], marks: dict[str, float]) -> tuple[float, float]:
    """(market value, gross exposure) of a Portfolio's positions, summed as it sums them."""
    terms = []
    for pos in positions.values():
        mark = marks.get(pos.instrument.symbol)
        if mark is None:  # Portfolio's rule for a position never marked: its entry price
            mark = pos.avg_price if not pos.is_flat else 0.0
        terms.append(pos.market_value(mark))
    if len(terms) == 1:  # the common case, one instrument
        t = terms[0] + 0.0  # what sum() gives: 0 + -0.0 is 0.0
        return t, abs(t)
    return float(sum(terms)), float(sum(map(abs, terms)))


def _values_after(p: Proposal) -> dict[str, float]:
    book, inst = p.book, p.order.instrument
    positions, marks = getattr(book, "positions", None), getattr(book, "marks", None)
    if positions is None or marks is None:
        raise ParameterError(f"concentration and VaR limits need a book with positions and marks (a Portfolio), "
                             f"got {type(book).__name__}")  # fmt: skip
    out: dict[str, float] = {}
    for sym, pos in positions.items():
        if sym == inst.symbol or pos.is_flat:
            continue
        mark = marks.get(sym)
        value = pos.market_value(pos.avg_price if mark is None else mark)
        if value != 0.0:
            out[sym] = value
    mine = p.q1 * p.price * inst.multiplier
    if mine != 0.0:
        out[inst.symbol] = mine
    return out


def _hhi(values: Sequence[float] | np.ndarray) -> float:
    """Herfindahl-Hirschman index of gross weights: HHI = Σ (|v_i| / Σ|v_j|)², in (0, 1]
    (1 = one position; 1/HHI is the effective number of positions); 0 for an empty book
    (no position, nothing concentrated).

    >>> _hhi([50.0, -30.0, 20.0])  # 0.5² + 0.3² + 0.2²
    0.38
    """
    a = np.abs(np.asarray(values, dtype="float64"))
    g = float(a.sum())
    return float(((a / g) ** 2).sum()) if g > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Breach:
    limit: str
    value: float
    threshold: float
    message: str
    #: a reversal breaking only its new side is cut to this closing quantity, not denied
    reduce_to: float | None = None

    @property
    def usage(self) -> float:
        return self.value / self.threshold if self.threshold else math.inf


@runtime_checkable
class Limit(Protocol):
    @property
    def name(self) -> str: ...

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        """(usage, breach): how much of the limit the order would use (1.0 = at the
        threshold; 0 for a reducing order) and the breach, if any, in one evaluation."""
        ...

    def check(self, p: Proposal) -> Breach | None: ...


def _positive(owner: str, field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{owner}: {field} must be a finite number > 0, got {field}={value!r}")
    return float(value)


class _Threshold:
    """A limit on one number of the proposal: breached when ``value > threshold``."""

    __slots__ = ()
    threshold: float
    label: str = ""

    @property
    def name(self) -> str:
        return type(self).__name__

    def value(self, p: Proposal) -> float:
        raise NotImplementedError

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        # the order-level limits below inline value() here: this runs for every order
        if p.reduces_only:
            return 0.0, None
        v = self.value(p)
        threshold = self.limit  # type: ignore[attr-defined]  # every threshold limit's field
        if v <= threshold * (1 + 1e-12):  # NaN (no equity) compares False: a breach
            return v / threshold, None
        return self._breach(v)

    def _breach(self, v: float) -> tuple[float, Breach]:
        threshold = self.limit  # type: ignore[attr-defined]
        usage = v / threshold if v == v else math.inf
        return usage, Breach(self.name, v, threshold, f"{self.name}: {self.label} {v:,.6g} > {threshold:,.6g}")

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


@dataclass(frozen=True, slots=True)
class MaxOrderNotional(_Threshold):
    """Order value (quantity × expected price × multiplier) at most ``limit``."""

    limit: float
    label = "order notional"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxOrderNotional", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.notional

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        v, t = p.notional, self.limit
        return (v / t, None) if v <= t * (1 + 1e-12) else self._breach(v)


@dataclass(frozen=True, slots=True)
class MaxOrderQuantity(_Threshold):
    """Order quantity at most ``limit`` units."""

    limit: float
    label = "order quantity"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxOrderQuantity", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.order.quantity

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        v, t = p.order.quantity, self.limit
        return (v / t, None) if v <= t * (1 + 1e-12) else self._breach(v)


@dataclass(frozen=True, slots=True)
class MaxPositionWeight(_Threshold):
    """|position value after the fill| / equity at most ``limit`` (0.2 = 20%)."""

    limit: float
    label = "position weight"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxPositionWeight", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return abs(p.q1 * p.price * p.order.instrument.multiplier) / (p.equity if p.equity > 0 else math.nan)

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        e = p.equity
        v, t = abs(p.q1 * p.price * p.order.instrument.multiplier) / (e if e > 0 else math.nan), self.limit
        return (v / t, None) if v <= t * (1 + 1e-12) else self._breach(v)


@dataclass(frozen=True, slots=True)
class MaxGrossLeverage(_Threshold):
    """Σ|position values| after the fill / equity at most ``limit`` (1.0 = unlevered)."""

    limit: float
    label = "gross leverage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxGrossLeverage", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return p.gross_after / (p.equity if p.equity > 0 else math.nan)

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        e = p.equity
        v, t = p.gross_after / (e if e > 0 else math.nan), self.limit
        return (v / t, None) if v <= t * (1 + 1e-12) else self._breach(v)


@dataclass(frozen=True, slots=True)
class MaxNetLeverage(_Threshold):
    """|Σ signed position values| after the fill / equity at most ``limit``."""

    limit: float
    label = "net leverage"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxNetLeverage", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    def value(self, p: Proposal) -> float:
        return abs(p.net_after) / (p.equity if p.equity > 0 else math.nan)  # no equity: over any cap


@dataclass(frozen=True, slots=True)
class LongOnly:
    """No short position: an order that would leave the position below zero is denied
    (a reversal from long to short is one order, so it is denied whole)."""

    @property
    def name(self) -> str:
        return "LongOnly"

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.q1 >= -1e-12 or p.reduces_only:
            return 0.0, None
        return 1.0, Breach("LongOnly", p.q1, 0.0, f"LongOnly: position after the order {p.q1:g} < 0")

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


@dataclass(frozen=True, slots=True)
class MaxOrdersPerDay:
    """At most ``limit`` orders that open or add let through per UTC date (every order
    passed counts; an order that only reduces, such as a stop, is never held back)."""

    limit: int

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, numbers.Integral) or self.limit < 1:
            raise ParameterError(f"MaxOrdersPerDay: limit must be an int >= 1, got limit={self.limit!r}")

    @property
    def name(self) -> str:
        return "MaxOrdersPerDay"

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        usage = (p.orders_today + 1) / self.limit
        if p.orders_today < self.limit or p.reduces_only:  # a stop or an exit is never held back
            return usage, None
        return usage, Breach("MaxOrdersPerDay", p.orders_today + 1, self.limit,
                             f"MaxOrdersPerDay: order {p.orders_today + 1} today > {self.limit}")  # fmt: skip

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


def _fraction(owner: str, field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise ParameterError(f"{owner}: {field} must be in ({low:g}, {high:g}], got {field}={value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class MaxTopNWeight(_Threshold):
    """The ``n`` largest |position values| after the order, summed, / equity at most
    ``limit`` (``MaxTopNWeight(3, 0.6)``: the three biggest positions hold at most 60% of
    equity). A fraction of equity, like :class:`MaxPositionWeight` (``n=1`` is the same
    rule over every position); ``wb.risk.concentration``'s top-N weight is a fraction of
    gross exposure instead. An empty book weighs 0."""

    n: int
    limit: float

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, numbers.Integral) or self.n < 1:
            raise ParameterError(f"MaxTopNWeight: n must be an int >= 1, got n={self.n!r}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "limit", _positive("MaxTopNWeight", "limit", self.limit))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"top-{self.n} weight"

    def value(self, p: Proposal) -> float:
        top = sorted((abs(v) for v in p.values().values()), reverse=True)[: self.n]
        return float(sum(top)) / (p.equity if p.equity > 0 else math.nan)


@dataclass(frozen=True, slots=True)
class MaxHHI(_Threshold):
    """Herfindahl index of the gross weights after the order at most ``limit``:
    HHI = Σ (|v_i| / Σ|v_j|)² over the positions after it, so 1/HHI is the effective number
    of positions (``limit=0.25``: at least 4 effective positions); an empty book is 0.

    ``min_gross`` (a fraction of equity, default 0): orders that leave the gross exposure
    below ``min_gross`` × equity are not judged. Orders are checked one at a time, and a
    book built from cash passes through concentrated states (its first position alone
    has HHI 1, so with ``min_gross=0`` a limit below 1 admits no first entry);
    ``min_gross=0.9`` judges the book once it is (nearly) invested.

    >>> MaxHHI(limit=0.5).limit
    0.5
    """

    limit: float
    min_gross: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _fraction("MaxHHI", "limit", self.limit, 0.0, 1.0))
        g = self.min_gross
        if isinstance(g, bool) or not isinstance(g, int | float) or not (math.isfinite(g) and g >= 0):
            raise ParameterError(f"MaxHHI: min_gross must be a finite fraction of equity >= 0, got min_gross={g!r}")
        object.__setattr__(self, "min_gross", float(g))

    @property
    def threshold(self) -> float:  # type: ignore[override]
        return self.limit

    @property
    def label(self) -> str:  # type: ignore[override]
        return "HHI of gross weights"

    def value(self, p: Proposal) -> float:
        return _hhi(list(p.values().values()))

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        if self.min_gross > 0 and p.equity > 0:
            gross = float(sum(abs(v) for v in p.values().values()))
            if gross < self.min_gross * p.equity:  # a book still being built: not judged
                return 0.0, None
        return _Threshold.assess(self, p)


@dataclass(frozen=True, slots=True)
class MaxVaR:
    """1-day historical VaR of the book after the order, as a fraction of equity, at most
    ``limit`` (``MaxVaR(0.02)``: a 1-in-100-days loss of at most 2% of equity).

    Conventions: full revaluation of today's post-trade position values ``v_i``
    (:meth:`Proposal.values`) on the last ``window`` close-to-close simple returns
    r_t = close_t / close_{t-1} - 1 of the instruments held, P&L_t = Σ v_i r_{i,t}; the
    window ends at the last close at or before the order's ``ts`` (its signal bar: no
    look-ahead). VaR is ``workbench.risk.var.historical_var`` of that P&L (order statistic
    ``inverted_cdf``: the ⌈window·(1-confidence)⌉-th worst), a positive loss, divided by
    current equity. Before ``window`` returns exist, or with a missing close in the
    window, an order that opens or adds is denied ("not enough history"): a limit that
    cannot be computed does not pass. Reducing orders always pass.

    The limit needs the run's closes: engines bind it when the run starts (:meth:`bind`);
    used unbound, it denies every order that opens or adds.

    >>> MaxVaR(0.02).window
    250
    """

    limit: float
    confidence: float = 0.99
    window: int = 250
    method: str = "historical"

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", _positive("MaxVaR", "limit", self.limit))
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < 1:
            raise ParameterError(f"MaxVaR: confidence must be in (0, 1) (0.99 for a 99% VaR), got confidence={c!r}")
        object.__setattr__(self, "confidence", float(c))
        w = self.window
        if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 2:
            raise ParameterError(f"MaxVaR: window must be an int >= 2 (returns), got window={w!r}")
        object.__setattr__(self, "window", int(w))
        if self.method != "historical":
            raise ParameterError(f"MaxVaR: method must be 'historical' (the only one checked per order), "
                                 f"got method={self.method!r}")  # fmt: skip

    @property
    def name(self) -> str:
        return "MaxVaR"

    @property
    def threshold(self) -> float:
        return self.limit

    def bind(self, index: pd.Index, close: np.ndarray, symbols: Sequence[str]) -> _BoundVaR:
        """This limit on a run's closes (``close``: bars × instruments, column j is
        ``symbols[j]``, bar t is ``index[t]``); the returns are computed once, here."""
        return _BoundVaR(self, index, close, symbols)

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        return math.inf, Breach("MaxVaR", math.nan, self.limit,
                                "MaxVaR: no price history (the limit was not bound to the run's closes)")  # fmt: skip

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


class _BoundVaR:
    """A :class:`MaxVaR` bound to one run's returns (made by :meth:`MaxVaR.bind`)."""

    __slots__ = ("spec", "stamps", "returns", "columns", "_ts", "_end")

    def __init__(self, spec: MaxVaR, index: pd.Index, close: np.ndarray, symbols: Sequence[str]) -> None:
        c = np.asarray(close, dtype="float64")
        if c.ndim != 2 or c.shape != (len(index), len(symbols)):
            raise ParameterError(f"MaxVaR.bind: close must be (bars, instruments) = ({len(index)}, {len(symbols)}), "
                                 f"got shape {c.shape}")  # fmt: skip
        self.spec = spec
        self.stamps = _stamps_ns(index)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.returns = c[1:] / c[:-1] - 1.0  # row t-1 is the return of close t
        self.columns = {s: j for j, s in enumerate(symbols)}
        self._ts: object = None
        self._end = -1

    @property
    def name(self) -> str:
        return "MaxVaR"

    @property
    def threshold(self) -> float:
        return self.spec.limit

    def end(self, ts: pd.Timestamp) -> int:
        """The bar of the last close at or before ``ts`` (-1 if none)."""
        if ts is not self._ts:
            self._ts, self._end = ts, int(np.searchsorted(self.stamps, ts.value, side="right")) - 1
        return self._end

    def pnl(self, p: Proposal) -> np.ndarray | str:
        """The window's P&L of the book after the order, or why it cannot be computed."""
        values = p.values()
        w, e = self.spec.window, self.end(p.order.ts)
        if e < w:
            return f"not enough history: {max(e, 0)} returns up to {p.order.ts}, window {w}"
        missing = [s for s in values if s not in self.columns]
        if missing:
            return f"no price history for {', '.join(missing)}"
        cols = [self.columns[s] for s in values]
        pnl = self.returns[e - w : e, cols] @ np.fromiter(values.values(), dtype="float64", count=len(values))
        if not np.isfinite(pnl).all():
            return f"not enough history: a missing close among the {w} returns up to {p.order.ts}"
        return pnl

    def var(self, p: Proposal) -> float | str:
        """The VaR after the order as a fraction of equity, or why it cannot be computed."""
        pnl = self.pnl(p)
        if isinstance(pnl, str):
            return pnl
        # scipy loads on first use, not with the package
        from workbench.risk.var import historical_var

        return historical_var(pnl, self.spec.confidence).value / (p.equity if p.equity > 0 else math.nan)

    def value(self, p: Proposal) -> float:
        v = self.var(p)
        return math.nan if isinstance(v, str) else v

    def assess(self, p: Proposal) -> tuple[float, Breach | None]:
        if p.reduces_only:
            return 0.0, None
        limit = self.spec.limit
        v = self.var(p)
        if isinstance(v, str):
            return math.inf, Breach("MaxVaR", math.nan, limit, f"MaxVaR: {v}")
        if v <= limit * (1 + 1e-12):  # NaN (no equity) compares False: a breach
            return v / limit, None
        return (v / limit if v == v else math.inf), Breach(
            "MaxVaR", v, limit, f"MaxVaR: 1-day {self.spec.confidence:g} historical VaR {v:,.6g} of equity > {limit:,.6g}")

    def check(self, p: Proposal) -> Breach | None:
        return self.assess(p)[1]


def _stamps_ns(index: pd.Index) -> np.ndarray:
    """Bar stamps as int64 nanoseconds (any unit of DatetimeIndex), comparable with ``Timestamp.value``."""
    if isinstance(index, pd.DatetimeIndex):
        return index.as_unit("ns").asi8
    return np.asarray(pd.DatetimeIndex(index).as_unit("ns").asi8)
