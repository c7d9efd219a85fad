"""Risk context (domain): the RiskProfile every order meets, and the analytics a risk
reviewer reads (VaR/ES and their backtests, exposure, drawdown, correlation, stress).

The profile, its limits and the risk log load with the package; the analytics (scipy) load
on first use, so ``import workbench`` stays fast: ``wb.risk.historical_var(returns)``,
``wb.risk.kupiec_pof(exceptions, 0.99)``, ``wb.risk.stress_test(...)``.
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench.risk.events import (
    LimitBreached,
    RiskCheckFailed,
    RiskCheckPassed,
    TradingStateChanged,
)
from workbench.risk.limits import (
    Breach,
    Limit,
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
)
from workbench.risk.monitor import RiskLog
from workbench.risk.profile import DrawdownAction, RiskLevel, RiskProfile, TradingState
from workbench.risk.sizing import (
    ATRRisk,
    FixedFractional,
    VolatilityTarget,
    ewma_volatility,
    kelly_fraction,
    kelly_from_returns,
    kelly_from_trades,
    wilder_atr,
)

__all__ = [
    "RiskProfile", "TradingState", "RiskLevel", "DrawdownAction", "RiskLog", "Limit", "Breach",
    "MaxOrderNotional", "MaxOrderQuantity", "MaxPositionWeight", "MaxGrossLeverage", "MaxNetLeverage",
    "LongOnly", "MaxOrdersPerDay", "MaxTopNWeight", "MaxHHI", "MaxVaR", "RiskCheckPassed", "RiskCheckFailed", "LimitBreached", "TradingStateChanged",
    "FixedFractional", "kelly_fraction", "kelly_from_trades", "kelly_from_returns",
    "VolatilityTarget", "ATRRisk", "ewma_volatility", "wilder_atr",
]  # fmt: skip
#: analytics modules, imported on first use of one of their names (their ``__all__``)
_LAZY = ("var", "var_backtest", "exposure", "drawdown", "correlation", "stress")


def _lazy_names() -> dict[str, str]:
    out: dict[str, str] = {}
    for mod in _LAZY:
        module = importlib.import_module(f"workbench.risk.{mod}")
        out.update(dict.fromkeys(getattr(module, "__all__", ()), mod))
    return out


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # the module itself (wb.risk.var, wb.risk.exposure...)
        return importlib.import_module(f"workbench.risk.{name}")
    for mod in _LAZY:
        module = importlib.import_module(f"workbench.risk.{mod}")
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'workbench.risk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*_EAGER, *_lazy_names(), *_LAZY})


_EAGER = __all__
