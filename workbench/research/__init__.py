"""Research use cases on top of the composition root: the engine cross-check, the
look-ahead guard and parameter sweeps (optimisation, walk-forward and the overfitting
statistics come with the research issue)."""
