"""A machine-learning strategy: a scikit-learn classifier on TA-Lib features, walk-forward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.base import Strategy, check_bool, check_float, check_int, check_seed
from workbench.strategy.indicators import indicators

__all__ = ["MLClassifier", "ml_features"]

FEATURES = ["rsi_14", "roc_5", "roc_20", "natr_14", "bb_pct_20", "macd_hist"]


def ml_features(prices: pd.DataFrame) -> pd.DataFrame:
    """TA-Lib features at each close (NaN until every window is complete)."""
    c, h, lo = prices["Close"], prices["High"], prices["Low"]
    ta = indicators()
    up, _, dn = ta.bbands(c, 20, 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct_b = (c - dn) / (up - dn)
    return pd.DataFrame(
        {
            "rsi_14": ta.rsi(c, 14) / 100.0,
            "roc_5": ta.roc(c, 5),
            "roc_20": ta.roc(c, 20),
            "natr_14": ta.natr(h, lo, c, 14) / 100.0,
            "bb_pct_20": pct_b.replace([np.inf, -np.inf], np.nan),
            "macd_hist": ta.macd(c) / c,
        },
        index=prices.index,
    )


@dataclass(frozen=True, kw_only=True)
class MLClassifier(Strategy):
    """Predict tomorrow's direction; long when the classifier is confident enough.

    Rules:

    - features: RSI(14), 5- and 20-bar rate of change, NATR(14), Bollinger %b(20) and
      the MACD histogram (:func:`ml_features`); label of bar s: Close_{s+1} > Close_s;
    - walk-forward: the model is refit every ``retrain`` bars, starting once
      ``min_train`` labelled rows exist. A fit at bar t uses rows s < t only (the label of
      s needs Close_{s+1}, known at t), at most ``train_window`` of them; it then predicts
      bars t .. t + retrain − 1. The refit dates are counted from the first bar, so
      truncating the data never changes an earlier prediction;
    - long while P(up) > ``threshold``; with ``allow_short``, short while
      P(up) < 1 − ``threshold``; flat otherwise. ``confidence`` is P(up).
    - ``model``: ``"logistic"`` (standardised logistic regression) or ``"forest"``
      (random forest, ``random_state=seed``).
    """

    train_window: int = 750
    min_train: int = 250
    retrain: int = 63
    threshold: float = 0.55
    model: str = "logistic"
    allow_short: bool = False
    seed: int = 0

    def validate(self) -> None:
        check_int("min_train", self.min_train, 50)
        check_int("train_window", self.train_window, self.min_train)
        check_int("retrain", self.retrain, 1)
        check_float("threshold", self.threshold, 0.5, 1.0)
        if self.model not in ("logistic", "forest"):
            raise ParameterError(f"model must be 'logistic' or 'forest', got model={self.model!r}")
        check_bool("allow_short", self.allow_short)
        check_seed("seed", self.seed)

    @property
    def warmup(self) -> int:
        return 33 + self.min_train  # MACD(12, 26, 9) is the longest feature window

    @property
    def libraries(self) -> tuple[str, ...]:
        return ("scikit-learn",)

    def _estimator(self):  # type: ignore[no-untyped-def]
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.model == "forest":
            return RandomForestClassifier(n_estimators=100, max_depth=4, random_state=self.seed, n_jobs=1)
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))

    def probability(self, prices: pd.DataFrame) -> pd.Series:
        """Walk-forward P(Close_{t+1} > Close_t) at each bar (NaN before the first fit)."""
        X = ml_features(prices).to_numpy()
        c = prices["Close"].to_numpy()
        n = len(c)
        y = np.zeros(n, dtype=int)
        y[:-1] = (c[1:] > c[:-1]).astype(int)
        ok = ~np.isnan(X).any(axis=1)
        rows = np.flatnonzero(ok)
        proba = np.full(n, np.nan)
        if len(rows) <= self.min_train:
            return pd.Series(proba, index=prices.index, name="p_up")
        start = int(rows[self.min_train])  # the first bar with min_train labelled rows before it
        for t in range(start, n, self.retrain):
            train = rows[rows < t][-self.train_window :]  # labels need Close_{s+1}: s + 1 <= t
            if len(np.unique(y[train])) < 2:
                continue
            est = self._estimator().fit(X[train], y[train])
            seg = np.arange(t, min(t + self.retrain, n))
            seg = seg[ok[seg]]
            if len(seg):
                proba[seg] = est.predict_proba(X[seg])[:, 1]
        return pd.Series(proba, index=prices.index, name="p_up")

    def _target(self, p: np.ndarray) -> np.ndarray:
        low = np.where(p < 1.0 - self.threshold, -1.0, 0.0) if self.allow_short else 0.0
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(p), 0.0, np.where(p > self.threshold, 1.0, low))

    def target(self, prices: pd.DataFrame) -> pd.Series:
        p = self.probability(prices).to_numpy()
        return pd.Series(self._target(p), index=prices.index, name="target")

    def confidence(self, prices: pd.DataFrame) -> pd.Series:
        return self.probability(prices)
