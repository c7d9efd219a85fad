"""workbench: a Jupyter-centred quant research workbench.

>>> import workbench as wb
>>> prices = wb.load_prices("GOOG")
>>> result = wb.backtest("sma_crossover", prices, {"fast": 10, "slow": 30})
"""

import importlib as _importlib

from workbench.adapters.experiments import SQLiteStore
from workbench.adapters.indicators import install as _install_indicators
from workbench.adapters.sample import load_series
from workbench.adapters.synthetic import synthetic_bars, two_venue_quotes
from workbench.api import ENGINES, STRATEGIES, SubscriberWarning, backtest, make_spec
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
    DuplicateFillError,
    InsufficientHistoryError,
    InvalidValueError,
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
from workbench.research.compare import EngineComparison, compare_engines
from workbench.research.experiments import Rerun, load_run, rerun, runs
from workbench.research.lookahead import check_lookahead
from workbench.research.optimize import grid_search
from workbench.risk import (
    ATRRisk,
    DrawdownAction,
    FixedFractional,
    LongOnly,
    MaxGrossLeverage,
    MaxHHI,
    MaxNetLeverage,
    MaxOrderNotional,
    MaxOrderQuantity,
    MaxOrdersPerDay,
    MaxPositionWeight,
    MaxTopNWeight,
    MaxVaR,
    RiskProfile,
    VolatilityTarget,
)
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
from workbench.strategy.engine import Engine, Hooks, Run
from workbench.strategy.result import BacktestResult
from workbench.strategy.signals import Action, Signal
from workbench.strategy.spec import BacktestSpec, DataId
from workbench.strategy.store import ExperimentStore, MemoryStore, RunNotFoundError

# imported here, not lazily: the submodule workbench.trade would otherwise shadow the function
from workbench.trade import RiskApproval, TradingSession, approve, deploy, trade  # noqa: E402
from workbench.trading import (
    AccountState,
    AllEquity,
    Broker,
    CashAccount,
    CostBasisMethod,
    EventBus,
    FillTiming,
    FixedBps,
    FixedQuantity,
    HalfSpread,
    Instrument,
    MarginAccount,
    PercentOfEquity,
    PercentOfNotional,
    PerShare,
    SimulatedBroker,
    VolumeShare,
)

_install_indicators()  # composition root: the strategies' indicator port gets TA-Lib

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
    "BacktestSpec", "DataId", "make_spec", "Engine", "Hooks", "Run", "ExperimentStore", "MemoryStore",
    "RunNotFoundError", "AccountState", "Broker", "CashAccount", "MarginAccount", "SimulatedBroker",
    "DuplicateFillError", "InvalidValueError", "SubscriberWarning",
    "RiskProfile", "DrawdownAction", "LongOnly", "MaxGrossLeverage", "MaxNetLeverage", "MaxOrderNotional",
    "MaxOrderQuantity", "MaxOrdersPerDay", "MaxPositionWeight", "MaxTopNWeight", "MaxHHI", "MaxVaR", "FixedFractional", "VolatilityTarget", "ATRRisk",
    "SQLiteStore", "runs", "load_run", "rerun", "Rerun", "optimize", "Optimization", "walk_forward_optimize",
    "WalkForward",
    "CSCVResult", "deflated_sharpe_ratio", "expected_max_sharpe", "min_backtest_length", "min_track_record_length",
    "pbo_cscv", "RobustnessReport", "block_bootstrap", "parameter_jitter", "trade_resampling",
    "walk_forward", "purged_kfold", "combinatorial_purged_cv", "cpcv_paths",
    "TaskRunner", "InProcess", "ProcessPool", "task_seeds", "DaskRunner",
    "MultiStrategy", "Sleeve", "AssetAllocation", "attribution", "Attribution", "allocate", "ALLOCATORS",
    "risk_contributions",
    "trade", "approve", "deploy", "RiskApproval", "TradingSession", "PaperBroker", "ReplayFeed",
    "ReconcilePolicy", "SQLiteEventLog", "MemoryEventLog",
]  # fmt: skip

# Notebook-facing modules, loaded on first use (PEP 562) so `import workbench` stays fast:
# plotly figures, papermill reports, ipywidgets and quantstats load only when asked for.
_LAZY_MODULES = {
    "config": "workbench.config",
    "garch": "workbench.adapters.garch",
    "dashboards": "workbench.dashboards",
    "plots": "workbench.plots",
    "report": "workbench.report",
    "risk_report": "workbench.risk_report",
    "runbook": "workbench.runbook",
    "tearsheet": "workbench.adapters.tearsheet",
    "tearsheets": "workbench.tearsheets",
}


# Research functions whose modules import scipy.stats / optuna / arch (~0.7 s): loaded on first use.
_LAZY_NAMES = {
    **dict.fromkeys(["optimize", "Optimization", "walk_forward_optimize", "WalkForward"], "workbench.research.study"),
    **dict.fromkeys(["CSCVResult", "deflated_sharpe_ratio", "expected_max_sharpe", "min_backtest_length",
                     "min_track_record_length", "pbo_cscv"], "workbench.research.overfitting"),
    **dict.fromkeys(["RobustnessReport", "block_bootstrap", "parameter_jitter", "trade_resampling"],
                    "workbench.research.robustness"),
    **dict.fromkeys(["walk_forward", "purged_kfold", "combinatorial_purged_cv", "cpcv_paths"],
                    "workbench.research.splits"),
    **dict.fromkeys(["TaskRunner", "InProcess", "ProcessPool", "task_seeds"], "workbench.research.tasks"),
    "DaskRunner": "workbench.adapters.dask_cluster",
    **dict.fromkeys(["MultiStrategy", "Sleeve", "AssetAllocation"], "workbench.research.book"),
    **dict.fromkeys(["attribution", "Attribution"], "workbench.research.attribution"),
    **dict.fromkeys(["allocate", "ALLOCATORS", "risk_contributions"], "workbench.research.allocation"),
    "PaperBroker": "workbench.trading.paper",
    "ReplayFeed": "workbench.trading.feeds",
    "ReconcilePolicy": "workbench.trading.reconcile",
    "SQLiteEventLog": "workbench.adapters.eventlog",
    "MemoryEventLog": "workbench.trading.eventlog",
}  # fmt: skip


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """``wb.plots``, ``wb.tearsheet``...: import the module the first time it is used."""
    if name in _LAZY_NAMES:
        value = getattr(_importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    if name not in _LAZY_MODULES:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    try:
        module = _importlib.import_module(_LAZY_MODULES[name])
    except ImportError as exc:  # an optional extra is missing: hasattr() and help() stay usable
        raise AttributeError(
            f"wb.{name} needs {exc.name or 'an optional dependency'}: pip install 'workbench[notebooks]'"
        ) from exc
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    """The lazy modules are listed too, so tab completion in a notebook finds them."""
    return sorted({*globals(), *_LAZY_MODULES})
