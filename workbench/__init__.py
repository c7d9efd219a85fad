"""workbench: a Jupyter-centred quant research workbench.

>>> import workbench as wb
>>> prices = wb.load_prices("GOOG")
>>> result = wb.backtest("sma_crossover", prices, {"fast": 10, "slow": 30})
"""

from workbench.adapters.sample import load_series
from workbench.adapters.synthetic import synthetic_bars, two_venue_quotes
from workbench.api import ENGINES, STRATEGIES, backtest
from workbench.checks import EngineComparison, check_lookahead, compare_engines
from workbench.data import (
    align_panel,
    get_source,
    instrument_for,
    load_prices,
    sample_manifest,
    sample_symbols,
)
from workbench.errors import (
    CacheAccessError,
    CacheCorruptError,
    CacheMissError,
    DataError,
    DataReadError,
    DataValidationError,
    DomainError,
    InsufficientHistoryError,
    LookAheadError,
    NoDataError,
    NotebookRunError,
    ParameterError,
    ReportPathError,
    StrategyStateError,
    SweepTooLargeError,
    UnknownSymbolError,
    WorkbenchError,
)
from workbench.market import OHLCV_COLUMNS, DataRepairWarning, resample_ohlcv, validate_ohlcv
from workbench.optimize import grid_search
from workbench.strategies import (
    CrossSectionalMomentum,
    CrossVenueArbitrage,
    EMACrossover,
    MeanReversion,
    MLClassifier,
    PairsTrading,
    SMACrossover,
    TimeSeriesMomentum,
)
from workbench.strategy.base import BarStrategy, PortfolioStrategy, Strategy, StrategyStatus
from workbench.strategy.result import BacktestResult
from workbench.strategy.signals import Action, Signal
from workbench.trading import (
    AllEquity,
    CostBasisMethod,
    EventBus,
    FillTiming,
    FixedBps,
    FixedQuantity,
    HalfSpread,
    Instrument,
    PercentOfEquity,
    PercentOfNotional,
    PerShare,
    VolumeShare,
)

__version__ = "0.1.0"

__all__ = [
    "AllEquity", "BacktestResult", "CacheMissError", "DataRepairWarning", "InsufficientHistoryError",
    "align_panel", "get_source", "load_series", "resample_ohlcv", "synthetic_bars", "CostBasisMethod", "DataError", "DataValidationError",
    "DomainError", "EventBus", "FillTiming", "FixedBps", "FixedQuantity", "HalfSpread",
    "Instrument", "NoDataError", "OHLCV_COLUMNS", "ParameterError", "PerShare",
    "PercentOfEquity", "PercentOfNotional", "SMACrossover", "STRATEGIES", "Strategy",
    "UnknownSymbolError", "VolumeShare", "WorkbenchError", "backtest", "instrument_for",
    "load_prices", "sample_manifest", "sample_symbols", "validate_ohlcv",
    "ENGINES", "EngineComparison", "check_lookahead", "compare_engines", "CrossSectionalMomentum",
    "CrossVenueArbitrage", "EMACrossover", "MeanReversion", "MLClassifier", "PairsTrading",
    "TimeSeriesMomentum", "PortfolioStrategy", "StrategyStatus", "Action", "Signal", "two_venue_quotes",
    "LookAheadError", "StrategyStateError", "grid_search", "BarStrategy",
    "CacheAccessError", "CacheCorruptError", "DataReadError", "NotebookRunError", "ReportPathError",
    "SweepTooLargeError",
]  # fmt: skip
