"""Strategy context: strategies, metrics, backtest results."""
