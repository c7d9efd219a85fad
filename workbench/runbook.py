"""Validated notebook parameters: the cell after ``parameters`` turns them into a
:class:`~workbench.strategy.spec.BacktestSpec`, which every later cell runs.

A bad parameter fails at once with the parameter's name and value, before any work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.api import STRATEGIES, make_spec
from workbench.data import sample_symbols
from workbench.errors import ParameterError
from workbench.strategy.spec import BacktestSpec
from workbench.trading.values import utc_timestamp

__all__ = ["BacktestParams", "OptimizeParams", "PortfolioParams", "RiskParams", "parse_params", "parse_space",
           "parse_sleeves"]


def _opt_date(name: str, value: object) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # an empty notebook parameter means "no bound"
    return utc_timestamp(value, name, ParameterError)


@dataclass(frozen=True, kw_only=True)
class BacktestParams:
    """Parameters of the backtest runbook: any built-in strategy on one symbol or a panel.

    ``symbol`` is one sample symbol or several joined by ``+`` (a panel, for the pairs,
    cross-sectional and arbitrage strategies); ``params`` is the strategy's parameters as
    ``"name: value"`` pairs; ``benchmark`` is a sample symbol whose buy & hold the
    tearsheet compares against (empty: the first traded symbol; ``none``: no benchmark).

    >>> params = BacktestParams(symbol="GOOG", params="fast: 10, slow: 30", cash=10_000, commission=0.001)
    >>> params.spec.strategy
    SMACrossover(fast=10, slow=30, allow_short=False)
    >>> params.spec.commission
    PercentOfNotional(rate=0.001, minimum=0.0)
    >>> BacktestParams(strategy="pairs", params="", symbol="spx+ixic").symbols
    ['SPX', 'IXIC']
    """

    strategy: str = "sma_crossover"
    params: str = "fast: 10, slow: 30"
    symbol: str = "GOOG"
    benchmark: str = ""
    cash: float = 10_000.0
    commission: float = 0.001
    start: Any = None
    end: Any = None
    check_engines: bool = True
    tearsheet: bool = True

    def __post_init__(self) -> None:
        for name in ("check_engines", "tearsheet"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name} must be True or False, got {name}={getattr(self, name)!r}")
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ParameterError(f"symbol must be a sample symbol or SYM1+SYM2, got symbol={self.symbol!r}")
        symbols = [_symbol("symbol", part.strip()) for part in self.symbol.split("+")]
        object.__setattr__(self, "symbol", "+".join(symbols))
        object.__setattr__(self, "benchmark", self._benchmark())
        if isinstance(self.cash, bool) or not isinstance(self.cash, int | float) or not (math.isfinite(self.cash) and self.cash > 0):
            raise ParameterError(f"cash must be a number > 0, got cash={self.cash!r}")
        c = self.commission
        if isinstance(c, bool) or not isinstance(c, int | float) or not (0 <= c < 0.1):
            raise ParameterError(
                f"commission is a fraction of notional in [0, 0.1) (0.001 = 10 bps), got commission={c!r}"
            )
        start, end = _window(self.start, self.end)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        self.spec  # noqa: B018 - validates the strategy and its parameters now

    def _benchmark(self) -> str:
        text = self.benchmark.strip() if isinstance(self.benchmark, str) else self.benchmark
        if text == "":
            return self.symbols[0]
        if isinstance(text, str) and text.lower() == "none":
            return "none"
        return _symbol("benchmark", text)

    @property
    def symbols(self) -> list[str]:
        return self.symbol.split("+")

    @property
    def data(self) -> str | list[str]:
        """What to load: one symbol, or the panel's symbols."""
        return self.symbols[0] if len(self.symbols) == 1 else self.symbols

    @property
    def spec(self) -> BacktestSpec:
        """The backtest these parameters describe (event engine; the runbook's cross-check
        replaces the engine)."""
        from workbench.api import resolve_strategy

        strategy = resolve_strategy(self.strategy, parse_params(self.params))
        return make_spec(strategy, cash=float(self.cash), commission=float(self.commission))


# -- the research runbooks' parameters -------------------------------------------------
# Notebook parameters are scalars (papermill injects literals): the structured ones (a
# strategy's parameters, a search space, a book's sleeves) are short texts parsed here, so
# `workbench run notebooks/optimize.ipynb -p space "fast: 5..40 step 5; slow: 50..200 step 25"` works.


def _value(text: str) -> Any:
    """A literal: int, float, True/False/None, else the text itself (a name, a date)."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _entry(part: str, what: str) -> tuple[str, str]:
    """``name: value`` or ``name=value`` (a notebook's parameters cell cannot hold a default
    with "=" in it: papermill skips such a line, so the cell's defaults use ":")."""
    cut = min((i for i in (part.find(":"), part.find("=")) if i >= 0), default=-1)
    name = part[:cut].strip() if cut >= 0 else ""
    if not name.isidentifier():
        raise ParameterError(f"{what} entries are name: value, got {part!r}")
    return name, part[cut + 1 :].strip()


def parse_params(text: str, what: str = "params") -> dict[str, Any]:
    """``"fast: 10, slow: 30, allow_short: True"`` (or ``fast=10``) → a dict of literals.

    >>> parse_params("fast: 10, slow=30")
    {'fast': 10, 'slow': 30}
    """
    out: dict[str, Any] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if part:
            name, raw = _entry(part, what)
            out[name] = _value(raw)
    return out


def _range(name: str, raw: str) -> list[int]:
    """``lo..hi`` or ``lo..hi step k``: every integer from lo to hi, **hi included**."""
    body, _, step = raw.partition("step")
    lo, _, hi = body.partition("..")
    bits = [_value(x.strip()) for x in (lo, hi, step or "1")]
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in bits) or bits[2] < 1 or bits[0] > bits[1]:
        raise ParameterError(f"a range is lo..hi [step k] of integers, lo <= hi, k >= 1; got {name}: {raw}")
    return list(range(bits[0], bits[1] + 1, bits[2]))


def parse_space(text: str) -> dict[str, list[Any]]:
    """A search space: ``"fast: 5..40 step 5; slow: 50, 100, 200"``: ``lo..hi step k`` is
    every value from lo to hi **inclusive** by k; ``a, b, c`` lists values; ``;`` separates.

    >>> parse_space("fast: 5..20 step 5; slow: 50, 100")
    {'fast': [5, 10, 15, 20], 'slow': [50, 100]}
    """
    out: dict[str, list[Any]] = {}
    for part in (p.strip() for p in str(text).split(";")):
        if not part:
            continue
        name, raw = _entry(part, "space")
        values = _range(name, raw) if ".." in raw else [_value(v.strip()) for v in raw.split(",") if v.strip()]
        if not values:
            raise ParameterError(f"space entry {name!r} has no values: {part!r}")
        out[name] = values
    if not out:
        raise ParameterError(f"space must name at least one parameter, got space={text!r}")
    return out


def parse_sleeves(text: str) -> tuple[Any, ...]:
    """A book's sleeves: ``"name: strategy(params) @ SYM+SYM; ..."``, e.g.
    ``"trend: sma_crossover(fast: 20, slow: 100) @ SPX; rotation: xs_momentum(top_k: 1) @ GOOG+IXIC"``.
    """
    from workbench.api import resolve_strategy
    from workbench.research.book import Sleeve

    out = []
    for part in (p.strip() for p in str(text).split(";")):
        if not part:
            continue
        name, rest = _entry(part, "sleeves")
        body, at, symbols = rest.rpartition("@")
        if not at or not body.strip():
            raise ParameterError(f"a sleeve is name: strategy(params) @ SYMBOL[+SYMBOL...], got {part!r}")
        key, paren, args = body.strip().partition("(")
        if paren and not args.endswith(")"):
            raise ParameterError(f"sleeve {name!r}: unclosed parameters in {body.strip()!r}")
        params = parse_params(args[:-1], f"sleeve {name} params") if paren else {}
        strategy = resolve_strategy(key.strip(), params)
        out.append(Sleeve(name=name, strategy=strategy, symbols=tuple(s.strip().upper() for s in symbols.split("+"))))
    if not out:
        raise ParameterError(f"sleeves must list at least one sleeve, got sleeves={text!r}")
    return tuple(out)


def _symbol(name: str, value: object) -> str:
    if not isinstance(value, str) or value.upper() not in sample_symbols():
        raise ParameterError(f"{name} must be one of {', '.join(sample_symbols())}; got {name}={value!r}")
    return value.upper()


def _window(start: object, end: object) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    s, e = _opt_date("start", start), _opt_date("end", end)
    if s is not None and e is not None and s >= e:
        raise ParameterError(f"start must be before end, got start={s}, end={e}")
    return s, e


@dataclass(frozen=True, kw_only=True)
class OptimizeParams:
    """Parameters of the optimisation runbook (search, walk-forward, overfitting report).

    >>> p = OptimizeParams(space="fast: 5..15 step 5; slow: 50, 100")
    >>> p.grid
    {'fast': [5, 10, 15], 'slow': [50, 100]}
    """

    strategy: str = "sma_crossover"
    symbol: str = "GOOG"
    space: str = "fast: 5..40 step 5; slow: 50..200 step 25"
    objective: str = "sharpe"
    method: str = "grid"
    n_trials: int = 0
    seed: int = 0
    commission: float = 0.001
    engine: str = "vectorized"
    n_blocks: int = 16
    walk_forward: bool = True
    train: int = 750
    test: int = 250
    start: Any = None
    end: Any = None

    def __post_init__(self) -> None:
        from workbench.research.optimize import GRID_METRICS
        from workbench.research.study import METHODS

        object.__setattr__(self, "symbol", _symbol("symbol", self.symbol))
        if self.strategy not in STRATEGIES:
            raise ParameterError(f"strategy must be one of {', '.join(sorted(STRATEGIES))}; got strategy={self.strategy!r}")
        if self.objective not in GRID_METRICS:
            raise ParameterError(f"objective must be one of {GRID_METRICS}; got objective={self.objective!r}")
        if self.method not in METHODS:
            raise ParameterError(f"method must be one of {METHODS}; got method={self.method!r}")
        self.grid  # noqa: B018 - parses the space now
        s, e = _window(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)

    @property
    def grid(self) -> dict[str, list[Any]]:
        return parse_space(self.space)

    @property
    def search(self) -> dict[str, Any]:
        """Keywords of ``wb.optimize`` / ``wb.walk_forward_optimize`` besides the space."""
        out = {"objective": self.objective, "method": self.method, "seed": self.seed, "engine": self.engine,
               "commission": float(self.commission)}  # fmt: skip
        if self.method != "grid":
            out["n_trials"] = self.n_trials
        return out


@dataclass(frozen=True, kw_only=True)
class PortfolioParams:
    """Parameters of the portfolio review runbook (a multi-strategy book).

    >>> p = PortfolioParams(sleeves="trend: sma_crossover(fast: 20, slow: 100) @ SPX; tsmom: ts_momentum @ WTI")
    >>> p.book.allocation, [s.name for s in p.book.sleeves], p.symbols
    ('hrp', ['trend', 'tsmom'], ['SPX', 'WTI'])
    """

    sleeves: str = ("trend: sma_crossover(fast: 20, slow: 100) @ SPX; tsmom: ts_momentum @ WTI; "
                    "rotation: xs_momentum(top_k: 1) @ GOOG+IXIC")  # fmt: skip
    allocation: str = "hrp"
    rebalance: str = "MS"
    lookback: int = 126
    cash: float = 100_000.0
    commission: float = 0.001
    check_engines: bool = True
    start: Any = None
    end: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.cash, bool) or not isinstance(self.cash, int | float) or not (math.isfinite(self.cash) and self.cash > 0):
            raise ParameterError(f"cash must be a number > 0, got cash={self.cash!r}")
        rebalance: Any = int(self.rebalance) if str(self.rebalance).isdigit() else self.rebalance
        object.__setattr__(self, "rebalance", rebalance)
        self.book  # noqa: B018 - parses the sleeves and checks the schedule now
        s, e = _window(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)

    @property
    def book(self) -> Any:
        from workbench.research.book import MultiStrategy

        return MultiStrategy(sleeves=parse_sleeves(self.sleeves), allocation=self.allocation,
                             rebalance=self.rebalance, lookback=self.lookback)  # fmt: skip

    @property
    def symbols(self) -> list[str]:
        syms = dict.fromkeys(s for sl in parse_sleeves(self.sleeves) for s in sl.symbols)
        for s in syms:
            _symbol("sleeve symbol", s)
        return list(syms)


@dataclass(frozen=True, kw_only=True)
class RiskParams:
    """Parameters of the risk runbook: a stored run (``run_id``) or a backtest to run.

    >>> RiskParams(strategy="sma_crossover", params="fast: 20, slow: 100", symbol="SPX").spec.strategy
    SMACrossover(fast=20, slow=100, allow_short=False)
    """

    run_id: str = ""
    strategy: str = "sma_crossover"
    params: str = "fast: 20, slow: 100"
    symbol: str = "SPX"
    commission: float = 0.001
    confidence: float = 0.99
    window: int = 250
    start: Any = None
    end: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.confidence, float) or not 0.5 < self.confidence < 1:
            raise ParameterError(f"confidence must be in (0.5, 1), e.g. 0.99; got confidence={self.confidence!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 20:
            raise ParameterError(f"window must be an integer >= 20 bars, got window={self.window!r}")
        if not self.run_id:
            object.__setattr__(self, "symbol", _symbol("symbol", self.symbol))
            self.spec  # noqa: B018
        s, e = _window(self.start, self.end)
        object.__setattr__(self, "start", s)
        object.__setattr__(self, "end", e)

    @property
    def spec(self) -> BacktestSpec:
        from workbench.api import resolve_strategy

        return make_spec(resolve_strategy(self.strategy, parse_params(self.params)), commission=float(self.commission))
