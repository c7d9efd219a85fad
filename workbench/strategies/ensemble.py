"""Signal aggregation: several signal strategies on one instrument combined into one target.

Three rules over the members' targets (each -1/0/+1, decided at the same close):

- :class:`SignalVote`: the sign a majority of the members hold;
- :class:`WeightedSignal`: the sign of a weighted average, beyond a dead band;
- :class:`StackedSignal`: a walk-forward logistic regression that learns, from the
  members' past targets, which of them predicted the next bar's move.

An ensemble is itself a signal :class:`~workbench.strategy.base.Strategy`: frozen,
validated on construction, run by both engines, its identity made of its members'
identities (so two ensembles of different members never share a ``spec_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import ParameterError
from workbench.strategy.base import Strategy, check_float, check_int, check_seed
from workbench.strategy.targets import check_target

__all__ = ["SignalVote", "WeightedSignal", "StackedSignal", "member_targets"]

#: |s - threshold| at most this is no vote: float dust of a weighted sum (0.5 + 0.3 - 0.2
#: is 0.6000000000000001) must not decide a bar.
WEIGHT_DUST = 1e-12
MIN_TRAIN = 10  # fewest training rows of the stacked model (fewer is a fit to noise)


def member_targets(members: tuple[Strategy, ...], prices: pd.DataFrame, owner: str = "ensemble") -> np.ndarray:
    """The members' targets as a (bars, members) float array, each checked against the
    target contract (-1, 0 or 1 on exactly the prices' index); a member that breaks it is
    named with its position."""
    cols = []
    for i, member in enumerate(members):
        try:
            cols.append(check_target(member.target(prices), prices.index))
        except ParameterError as exc:
            raise type(exc)(f"{owner}: members[{i}] ({member.name}): {exc}") from None
    return np.column_stack(cols) if cols else np.zeros((len(prices), 0))


def _finite(name: str, value: object) -> float:
    """``value`` as a finite float, else a ParameterError naming it."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not (number and np.isfinite(value)):  # type: ignore[arg-type]
        raise ParameterError(f"{name} must be a finite number, got {name}={value!r}")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class _Ensemble(Strategy):
    """What every ensemble shares: the members, their checks, identity and warm-up.

    ``members`` is a non-empty tuple of signal strategies; a list is converted to a tuple
    (a notebook parameter is naturally a list, and a tuple keeps the strategy hashable).
    """

    members: tuple[Strategy, ...]

    def __post_init__(self) -> None:
        if isinstance(self.members, list):
            object.__setattr__(self, "members", tuple(self.members))
        super().__post_init__()

    def validate(self) -> None:
        try:
            self._check_members()
            self._validate()
        except ParameterError as exc:
            raise type(exc)(f"{self.name}: {exc}") from None

    def _validate(self) -> None:
        """The subclass's own parameter checks (members are checked already)."""

    def _check_members(self) -> None:
        if not isinstance(self.members, tuple) or not self.members:
            raise ParameterError(
                f"members must be a non-empty tuple (or list) of signal strategies, got members={self.members!r}"
            )
        for i, member in enumerate(self.members):
            if not isinstance(member, Strategy):
                raise ParameterError(f"members[{i}] must be a Strategy instance, got members[{i}]={member!r}")
            if member.kind != "signal":
                raise ParameterError(
                    f"members[{i}] must be a signal strategy (one instrument, target -1/0/+1), got "
                    f"members[{i}]={member.name} of kind {member.kind!r}"
                )

    def identity(self) -> dict[str, Any]:
        """Name and parameters, the members given by their own identities (a user-defined
        member brings its bytecode, a function member its code and closure)."""
        out = super().identity()
        out["params"]["members"] = [m.identity() for m in self.members]
        return out

    @property
    def warmup(self) -> int:
        return max(m.warmup for m in self.members)

    @property
    def libraries(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lib for m in self.members for lib in m.libraries))

    def votes(self, prices: pd.DataFrame) -> np.ndarray:
        """The members' targets at each close, one column per member (bars, members)."""
        return member_targets(self.members, prices, self.name)


@dataclass(frozen=True, kw_only=True)
class SignalVote(_Ensemble):
    """The sign a majority of the members hold at each close.

    Rule, per bar, with n members of which L are long (+1) and S short (-1), and
    k = ``min_agree`` (default: a strict majority of all members, n // 2 + 1):

    - +1 if L > S and L >= k; -1 if S > L and S >= k; 0 (flat) otherwise.

    A flat member votes for neither side but counts in n, so by default 2 of 3 members
    must agree; ``min_agree=1`` is a plurality of the members not flat (one long and two
    flat is long); a tie L == S is always flat. Warm-up: the longest member's.

    >>> from workbench.strategies.crossover import SMACrossover
    >>> SignalVote(members=(SMACrossover(),), min_agree=2)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: SignalVote: min_agree must be in [1, 1], got min_agree=2
    """

    min_agree: int | None = None

    def _validate(self) -> None:
        if self.min_agree is not None:
            check_int("min_agree", self.min_agree, 1, len(self.members))

    @property
    def needed(self) -> int:
        """k: the votes a side needs (``min_agree``, or a strict majority of all members)."""
        return len(self.members) // 2 + 1 if self.min_agree is None else int(self.min_agree)

    def target(self, prices: pd.DataFrame) -> pd.Series:
        v = self.votes(prices)
        longs, shorts, k = (v == 1).sum(axis=1), (v == -1).sum(axis=1), self.needed
        out = np.where((longs > shorts) & (longs >= k), 1.0, np.where((shorts > longs) & (shorts >= k), -1.0, 0.0))
        return pd.Series(out, index=prices.index, name="target")


@dataclass(frozen=True, kw_only=True)
class WeightedSignal(_Ensemble):
    """The sign of the members' weighted average target, beyond a dead band.

    Rule, per bar: s = sum(w_i * target_i) / sum(|w_i|), in [-1, 1]; +1 if s > ``threshold``,
    -1 if s < -``threshold``, 0 otherwise (|s - threshold| <= :data:`WEIGHT_DUST` counts
    as equal: float dust of the sum decides nothing).

    ``weights`` are finite numbers, one per member, not all zero (default: equal weights);
    a negative weight trades against its member. A list or array is stored as a tuple.
    ``threshold`` is in [0, 1): at 0 any net lean trades, near 1 only unanimity
    does. Warm-up: the longest member's.
    """

    weights: tuple[float, ...] | None = None
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.weights, list | np.ndarray):
            object.__setattr__(self, "weights", tuple(self.weights))
        super().__post_init__()

    def _validate(self) -> None:
        if self.weights is not None:
            if not isinstance(self.weights, tuple) or len(self.weights) != len(self.members):
                raise ParameterError(
                    f"weights must hold one number per member ({len(self.members)}), got weights={self.weights!r}"
                )
            w = [_finite(f"weights[{i}]", x) for i, x in enumerate(self.weights)]
            if not any(w):
                raise ParameterError(f"weights must not all be 0, got weights={self.weights!r}")
        if not 0.0 <= _finite("threshold", self.threshold) < 1.0:
            raise ParameterError(f"threshold must be in [0, 1), got threshold={self.threshold!r}")

    def score(self, prices: pd.DataFrame) -> pd.Series:
        """s at each close: the weighted average of the members' targets, in [-1, 1]."""
        w = np.ones(len(self.members)) if self.weights is None else np.asarray(self.weights, dtype=float)
        s = self.votes(prices) @ w / np.abs(w).sum()
        return pd.Series(s, index=prices.index, name="score")

    def target(self, prices: pd.DataFrame) -> pd.Series:
        s, t = self.score(prices).to_numpy(), float(self.threshold)
        out = np.where(s > t + WEIGHT_DUST, 1.0, np.where(s < -t - WEIGHT_DUST, -1.0, 0.0))
        return pd.Series(out, index=prices.index, name="target")


@dataclass(frozen=True, kw_only=True)
class StackedSignal(_Ensemble):
    """A meta-model: logistic regression on the members' targets, walk-forward.

    Rules:

    - features of bar s: the members' targets at s (-1/0/+1, one column each); label of s:
      1 if Close_{s+1} > Close_s, else 0 (an unchanged close counts as "not up");
    - let W be the longest member warm-up. The model is fit at decision bars
      d = W + ``train``, d + ``refit``, d + 2 * ``refit``, ... (counted from the first bar,
      so cutting later data never moves a fit), each time on rows d - ``train`` .. d - 1:
      the trailing ``train`` rows whose labels are known at d's close (the label of d - 1
      needs Close_d). It then decides bars d .. d + ``refit`` - 1;
    - target +1 where it predicts "up" (log-odds > 0, :meth:`decision`), -1 where it
      predicts "not up"; 0 before the first fit (warm-up W + ``train``) and over a
      segment whose training labels are all one class (no model can be fit there);
    - ``model="logistic"``: scikit-learn ``LogisticRegression(C=C, solver="newton-cholesky",
      random_state=seed)`` (L2 penalty of strength 1/C, intercept unpenalised; features
      unscaled, they share the -1..+1 scale). Deterministic for a given seed.
      ``confidence`` is the model's P(up).
    """

    train: int = 252
    refit: int = 21
    model: str = "logistic"
    C: float = 1.0
    seed: int = 0

    def _validate(self) -> None:
        check_int("train", self.train, MIN_TRAIN)
        check_int("refit", self.refit, 1)
        if self.model != "logistic":
            raise ParameterError(f"model must be 'logistic', got model={self.model!r}")
        check_float("C", self.C, 0.0, open_low=True)
        check_seed("seed", self.seed)

    @property
    def warmup(self) -> int:
        return super().warmup + self.train

    @property
    def libraries(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(("scikit-learn", *super().libraries)))

    def _estimator(self):  # type: ignore[no-untyped-def]
        from sklearn.linear_model import LogisticRegression  # the one vendor strategies may use

        # Newton steps on a (rows x members) problem: exact and ~6x faster than lbfgs here
        return LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=1000, random_state=self.seed)

    def fit_bars(self, n: int) -> range:
        """The decision bars where the model is refit, on data of ``n`` bars."""
        return range(self.warmup, n, self.refit)

    def decision(self, prices: pd.DataFrame) -> pd.Series:
        """The walk-forward model's log-odds of "up" at each bar (NaN where no model
        decides: the warm-up, a one-class segment). "Up" is predicted where it is > 0,
        as ``LogisticRegression.predict`` does."""
        X = self.votes(prices)
        c = prices["Close"].to_numpy(dtype=float)
        n = len(c)
        y = np.zeros(n, dtype=int)
        y[:-1] = c[1:] > c[:-1]  # the last bar's label is unknown and never used
        out = np.full(n, np.nan)
        for d in self.fit_bars(n):
            rows = slice(d - self.train, d)  # labels of rows < d need closes <= d
            if len(np.unique(y[rows])) < 2:
                continue
            est = self._estimator().fit(X[rows], y[rows])
            seg = slice(d, min(d + self.refit, n))
            out[seg] = est.decision_function(X[seg])  # classes_ is [0, 1]: log-odds of "up"
        return pd.Series(out, index=prices.index, name="log_odds")

    def target(self, prices: pd.DataFrame) -> pd.Series:
        z = self.decision(prices).to_numpy()
        with np.errstate(invalid="ignore"):
            side = np.where(np.isnan(z), 0.0, np.where(z > 0, 1.0, -1.0))
        return pd.Series(side, index=prices.index, name="target")

    def confidence(self, prices: pd.DataFrame) -> pd.Series:
        """P(up) = 1 / (1 + exp(-log-odds)); NaN where no model decides."""
        return (1.0 / (1.0 + np.exp(-self.decision(prices)))).rename("p_up")
