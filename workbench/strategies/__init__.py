"""Built-in strategies, each documented with its rules (see each class's docstring).

Signal strategies (one instrument, target +1/0/-1): SMA/EMA crossover, time-series
momentum, Bollinger/RSI mean reversion, the walk-forward ML classifier. Portfolio
strategies (several instruments, target weights): cross-sectional momentum rotation,
pairs trading, cross-venue arbitrage. ``BUILTINS`` maps their names for
``wb.backtest("name", ...)``.
"""

from workbench.strategies.arbitrage import CrossVenueArbitrage
from workbench.strategies.crossover import EMACrossover, SMACrossover
from workbench.strategies.ensemble import SignalVote, StackedSignal, WeightedSignal
from workbench.strategies.mean_reversion import MeanReversion
from workbench.strategies.ml import MLClassifier
from workbench.strategies.momentum import CrossSectionalMomentum, TimeSeriesMomentum
from workbench.strategies.pairs import PairsTrading
from workbench.strategy.base import Strategy

__all__ = [
    "BUILTINS", "SMACrossover", "EMACrossover", "TimeSeriesMomentum", "CrossSectionalMomentum",
    "MeanReversion", "PairsTrading", "CrossVenueArbitrage", "MLClassifier",
    "SignalVote", "WeightedSignal", "StackedSignal",
]  # fmt: skip

BUILTINS: dict[str, type[Strategy]] = {
    "sma_crossover": SMACrossover,
    "ema_crossover": EMACrossover,
    "ts_momentum": TimeSeriesMomentum,
    "xs_momentum": CrossSectionalMomentum,
    "mean_reversion": MeanReversion,
    "pairs": PairsTrading,
    "arbitrage": CrossVenueArbitrage,
    "ml_classifier": MLClassifier,
    "vote": SignalVote,
    "weighted_signal": WeightedSignal,
    "stacked_signal": StackedSignal,
}
