"""Exposure of a book of holdings: gross/net/long/short, concentration, beta, factor loadings.

A **book** (:class:`Book`) is a set of signed quantities marked at one close, the snapshot
every exposure and stress figure reads. Build one with :func:`book` from either

- holdings: a mapping or Series ``symbol -> signed quantity`` plus prices, or
- a backtest result (duck-typed: ``.positions``, ``.equity``, ``.spec.instruments``), whose
  positions at a close (the last by default) become the holdings.

Conventions
-----------
- **Prices** (:func:`close_prices`) may be a ``(symbol, field)`` panel as
  ``wb.load_prices([...])`` returns, one OHLCV frame (its ``attrs["symbol"]`` names it), a
  DataFrame of closes (one column per symbol) or a mapping ``symbol -> OHLCV frame or
  Series of closes``. Only ``Close`` is read. The index must be a tz-aware DatetimeIndex
  (converted to UTC); gaps stay NaN, never filled.
- **Marks**: each asset is marked at its last non-NaN close stamped on or before ``at``
  (``marked_at`` says when, so a stale mark is visible). ``at`` defaults to the result's
  last positions stamp, or the last stamp of the prices.
- **Position value** = quantity × close × multiplier (multiplier 1 unless the result's
  instrument or ``multipliers=`` says otherwise), in the quote currency; no FX conversion
  (every asset is assumed quoted in the account currency).
- **Equity**: ``equity=`` if given; else the result's equity at ``at``; else the book's net
  value (all capital invested, no cash), which must then be > 0.
- **Long** = Σ max(value, 0); **short** = Σ min(value, 0) (a negative number);
  **gross** = long − short = Σ |value|; **net** = long + short = Σ value. The ``*_frac``
  figures divide by equity (1.5 = 150% of equity).
- **Weights for concentration** are |value| / gross (they sum to 1 whatever the leverage,
  so concentration measures shape, not size), over non-zero positions only:
  **HHI** = Σ w², in [1/N, 1]; **effective N** = 1 / HHI, in [1, N]; **top-N weight** = the
  sum of the N largest w. A flat book has HHI, effective N and top-N weight NaN.
- **Asset class** comes from ``asset_classes=``, else the result's instruments, else the
  prices' metadata (``attrs``), else ``"UNKNOWN"``.
- **Asset returns** (:func:`asset_returns`) are simple close-to-close returns from each
  asset's previous available close (gaps are skipped, not filled).
- **Beta** (:func:`benchmark_beta`) = cov(r, b) / var(b), both with ddof = 1 (the ddof
  cancels), on the dates both series have (inner join, NaN dropped); **correlation** is
  Pearson's on the same dates; **alpha** = mean(r) − beta × mean(b), per period.
- **Factor exposures** (:func:`factor_exposures`): OLS with an intercept of excess returns
  (r − RF) on the factor columns; classical (homoskedastic) standard errors
  s²(XᵀX)⁻¹ with s² = SSR / (n − p), p = factors + 1; t = coef / se; two-sided p-values
  from Student's t with n − p degrees of freedom. Factors are **decimal** returns
  (``wb.load_series("ff3_monthly")`` already divides the file's percent by 100) labelled
  by the start of their month (00:00 UTC on the 1st). Returns not already on month-start
  stamps are compounded per calendar month, ∏(1 + r) − 1, and the first and last months
  are dropped (usually partial: a sample rarely starts on a month's first bar).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from workbench.errors import InsufficientHistoryError, ParameterError
from workbench.trading.enums import AssetClass
from workbench.trading.values import utc_timestamp

__all__ = [
    "Book",
    "FactorFit",
    "book",
    "close_prices",
    "price_meta",
    "asset_returns",
    "book_exposure",
    "exposure_by",
    "concentration",
    "holdings_returns",
    "benchmark_beta",
    "monthly_returns",
    "factor_exposures",
]

UNKNOWN = "UNKNOWN"
_SIDES = ["long", "short", "gross", "net"]


# --- prices -----------------------------------------------------------------------------


def _utc_index(frame: pd.DataFrame | pd.Series, what: str) -> pd.DatetimeIndex:
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise ParameterError(f"{what} must have a DatetimeIndex, got {type(idx).__name__}")
    if idx.tz is None:
        raise ParameterError(f"{what} has naive timestamps (first {idx[0] if len(idx) else None}); "
                             "localize them (tz='UTC') first")  # fmt: skip
    return idx.tz_convert("UTC")


def _closes_of(value: Any, symbol: str) -> pd.Series:
    if isinstance(value, pd.DataFrame):
        if "Close" not in value.columns:
            raise ParameterError(f"prices[{symbol!r}] has no Close column (columns: {list(value.columns)})")
        value = value["Close"]
    if not isinstance(value, pd.Series):
        raise ParameterError(f"prices[{symbol!r}] must be an OHLCV frame or a Series of closes, "
                             f"got {type(value).__name__}")  # fmt: skip
    out = pd.Series(value.to_numpy(dtype="float64"), index=_utc_index(value, f"prices[{symbol!r}]"), name=symbol)
    return out.sort_index()


def close_prices(prices: Any) -> pd.DataFrame:
    """Closes as one column per symbol on the union of the stamps (gaps NaN, never filled).

    >>> idx = pd.date_range("2024-01-01", periods=2, tz="UTC")
    >>> close_prices({"A": pd.Series([1.0, 2.0], index=idx)})["A"].tolist()
    [1.0, 2.0]
    """
    if isinstance(prices, Mapping):
        cols = [_closes_of(v, str(k)) for k, v in prices.items()]
        return pd.concat(cols, axis=1, join="outer", sort=True) if cols else pd.DataFrame()
    if not isinstance(prices, pd.DataFrame):
        raise ParameterError(f"prices must be a panel, an OHLCV frame, a DataFrame of closes or a "
                             f"mapping of them, got {type(prices).__name__}")  # fmt: skip
    if isinstance(prices.columns, pd.MultiIndex):
        if "Close" not in prices.columns.get_level_values(-1):
            raise ParameterError("a (symbol, field) panel needs a Close field")
        closes = prices.xs("Close", axis=1, level=-1)
    elif "Close" in prices.columns:
        symbol = prices.attrs.get("symbol")
        if not symbol:
            raise ParameterError("an OHLCV frame needs attrs['symbol'] to name it; pass {symbol: frame}")
        closes = prices[["Close"]].rename(columns={"Close": str(symbol)})
    else:
        closes = prices
    out = closes.astype("float64")
    out.index = _utc_index(prices, "prices")
    out.columns = [str(c) for c in out.columns]
    return out.sort_index()


def price_meta(prices: Any) -> dict[str, dict[str, Any]]:
    """Per-symbol metadata the prices carry in ``attrs`` (asset class, timeframe...), if any."""
    if isinstance(prices, Mapping):
        return {str(k): dict(getattr(v, "attrs", {}) or {}) for k, v in prices.items()}
    attrs = getattr(prices, "attrs", {}) or {}
    if "meta" in attrs:
        return {str(k): dict(v) for k, v in attrs["meta"].items()}
    if attrs.get("symbol"):
        return {str(attrs["symbol"]): dict(attrs)}
    return {}


def asset_returns(prices: Any) -> pd.DataFrame:
    """Simple returns of each asset from its previous available close (gaps skipped)."""
    closes = close_prices(prices)
    cols = {c: (s := closes[c].dropna()) / s.shift(1) - 1.0 for c in closes.columns}
    return pd.DataFrame(cols).reindex(closes.index).iloc[1:] if cols else closes


# --- the book ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Book:
    """Signed holdings marked at one close (see module conventions).

    ``positions`` is indexed by symbol with columns ``quantity, price, multiplier, value,
    weight, asset_class, marked_at``; ``weight`` = value / equity.
    """

    positions: pd.DataFrame
    equity: float
    asof: pd.Timestamp

    @property
    def value(self) -> pd.Series:
        return self.positions["value"]

    @property
    def quantity(self) -> pd.Series:
        return self.positions["quantity"]


def _finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _is_result(obj: object) -> bool:
    return hasattr(obj, "positions") and hasattr(obj, "spec") and hasattr(obj, "equity")


def _result_holdings(result: Any, at: pd.Timestamp | None) -> tuple[pd.Series, dict, dict, float, pd.Timestamp]:
    """Quantities (keyed by ticker, as prices are), classes, multipliers, equity, stamp."""
    pos = result.positions
    pos = pos.to_frame() if isinstance(pos, pd.Series) else pos
    instruments = {i.symbol: i for i in result.spec.instruments}
    stamp = pos.index[-1] if at is None else at
    held = pos.loc[:stamp]
    if held.empty:
        raise ParameterError(f"at={stamp} is before the result's first bar {pos.index[0]}")
    row = held.iloc[-1]
    names, classes, mults = {}, {}, {}
    for col in row.index:
        inst = instruments.get(str(col))
        key = inst.ticker if inst is not None else str(col)
        if key in names.values():
            raise ParameterError(f"two instruments share the ticker {key!r}; pass holdings keyed by symbol")
        names[col] = key
        if inst is not None:
            classes[key], mults[key] = inst.asset_class.value, inst.multiplier
    equity = float(result.equity.loc[:stamp].iloc[-1])
    return row.rename(index=names).astype("float64"), classes, mults, equity, held.index[-1]


def _quantities(holdings: Any) -> pd.Series:
    if not isinstance(holdings, pd.Series | Mapping):
        raise ParameterError(f"holdings must be a mapping or Series symbol -> signed quantity, or a "
                             f"backtest result, got {type(holdings).__name__}")  # fmt: skip
    q = {str(k): _finite(v, f"holdings[{k!r}]") for k, v in holdings.items()}
    return pd.Series(q, dtype="float64")


def _asset_class(symbol: str, given: Mapping, found: Mapping, meta: Mapping) -> str:
    if symbol in given:
        return AssetClass.parse(given[symbol]).value
    if symbol in found:
        return found[symbol]
    cls = meta.get(symbol, {}).get("asset_class")
    return AssetClass.parse(cls).value if cls else UNKNOWN


def _marks(closes: pd.DataFrame, symbols: list[str], at: pd.Timestamp) -> tuple[list[float], list[pd.Timestamp]]:
    prices, stamps = [], []
    for sym in symbols:
        if sym not in closes.columns:
            raise ParameterError(f"holding {sym!r} has no prices (prices have: {', '.join(closes.columns)})")
        s = closes[sym].loc[:at].dropna()
        if s.empty:
            raise ParameterError(f"holding {sym!r} has no close on or before at={at}")
        prices.append(float(s.iloc[-1]))
        stamps.append(s.index[-1])
    return prices, stamps


def _equity(given: object, found: float | None, net: float) -> float:
    if given is not None:
        eq = _finite(given, "equity")
    elif found is not None:
        eq = found
    else:
        eq = net
        if not eq > 0:
            raise ParameterError(f"pass equity=: the holdings' net value {net:g} is not > 0, so it "
                                 "cannot stand for equity (a long-short or cash-funded book)")  # fmt: skip
    if not eq > 0:
        raise ParameterError(f"equity must be > 0, got equity={eq!r}")
    return eq


def book(
    holdings: Any,
    prices: Any,
    *,
    at: object = None,
    equity: float | None = None,
    asset_classes: Mapping[str, object] | None = None,
    multipliers: Mapping[str, float] | None = None,
) -> Book:
    """Mark ``holdings`` (mapping, Series or backtest result) at ``at`` (module conventions).

    >>> idx = pd.date_range("2024-01-01", periods=2, tz="UTC")
    >>> b = book({"A": 10, "B": -5}, pd.DataFrame({"A": [9.0, 10.0], "B": [20.0, 20.0]}, index=idx),
    ...          equity=200.0)
    >>> b.value.tolist(), b.positions["weight"].tolist()
    ([100.0, -100.0], [0.5, -0.5])
    """
    closes = close_prices(prices)
    at_ts = None if at is None else utc_timestamp(at, "at", ParameterError)
    found_cls: dict = {}
    found_mult: dict = {}
    found_eq: float | None = None
    if _is_result(holdings):
        qty, found_cls, found_mult, found_eq, at_ts = _result_holdings(holdings, at_ts)
    else:
        qty = _quantities(holdings)
        if at_ts is None:
            if closes.empty:
                raise ParameterError("prices are empty")
            at_ts = closes.index[-1]
    symbols = list(qty.index)
    px, stamps = _marks(closes, symbols, at_ts)
    mult = [_finite((multipliers or {}).get(s, found_mult.get(s, 1.0)), f"multipliers[{s!r}]") for s in symbols]
    meta = price_meta(prices)
    pos = pd.DataFrame({"quantity": qty.to_numpy(), "price": px, "multiplier": mult}, index=pd.Index(symbols, name="symbol"))
    pos["value"] = pos["quantity"] * pos["price"] * pos["multiplier"]
    eq = _equity(equity, found_eq, float(pos["value"].sum()))
    pos["weight"] = pos["value"] / eq
    pos["asset_class"] = [_asset_class(s, asset_classes or {}, found_cls, meta) for s in symbols]
    pos["marked_at"] = pd.DatetimeIndex(stamps, tz="UTC") if stamps else pd.DatetimeIndex([], tz="UTC")
    return Book(pos, eq, at_ts)


# --- exposure and concentration ---------------------------------------------------------


def _sides(values: pd.Series) -> dict[str, float]:
    long = float(values.clip(lower=0).sum())
    short = float(values.clip(upper=0).sum())
    return {"long": long, "short": short, "gross": long - short, "net": long + short}


def book_exposure(b: Book) -> pd.Series:
    """Long, short, gross and net exposure in value and as a fraction of equity.

    >>> idx = pd.date_range("2024-01-01", periods=1, tz="UTC")
    >>> b = book({"A": 3, "B": -1}, pd.DataFrame({"A": [10.0], "B": [10.0]}, index=idx), equity=20.0)
    >>> book_exposure(b)[["gross", "net", "gross_frac"]].tolist()
    [40.0, 20.0, 2.0]
    """
    s = _sides(b.value)
    out = {**s, **{f"{k}_frac": v / b.equity for k, v in s.items()}}
    out.update(equity=b.equity, n_long=int((b.value > 0).sum()), n_short=int((b.value < 0).sum()))
    return pd.Series(out, name="exposure")


def exposure_by(b: Book, by: str = "asset_class") -> pd.DataFrame:
    """:func:`exposure`'s long/short/gross/net (and ``*_frac``) per asset or asset class.

    ``by`` is ``"asset"`` (one row per symbol, in book order) or ``"asset_class"`` (one row
    per class, sorted by name).
    """
    if by not in ("asset", "asset_class"):
        raise ParameterError(f"by must be 'asset' or 'asset_class', got by={by!r}")
    keys = b.positions.index if by == "asset" else b.positions["asset_class"]
    rows = {k: _sides(v) for k, v in b.value.groupby(keys.to_numpy(), sort=by == "asset_class")}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=_SIDES)
    for col in _SIDES:
        frame[f"{col}_frac"] = frame[col] / b.equity
    frame.index.name = by
    return frame


def _top_n(top_n: object) -> int:
    if isinstance(top_n, bool) or not isinstance(top_n, numbers.Integral) or top_n < 1:
        raise ParameterError(f"top_n must be an integer >= 1, got top_n={top_n!r}")
    return int(top_n)


def concentration(values: Book | pd.Series | Mapping[str, float], top_n: int = 5) -> pd.Series:
    """HHI, effective N and top-N weight of |value| / gross over non-zero positions.

    >>> concentration(pd.Series({"A": 50.0, "B": -50.0}), top_n=1).tolist()
    [0.5, 2.0, 0.5, 2.0]
    """
    n_top = _top_n(top_n)
    v = values.value if isinstance(values, Book) else pd.Series(values, dtype="float64")
    a = np.abs(v.to_numpy(dtype="float64"))
    if not np.isfinite(a).all():
        raise ParameterError(f"position values must be finite, got {v[~np.isfinite(a)].to_dict()}")
    a = a[a > 0]
    if a.size == 0:
        return pd.Series({"hhi": math.nan, "effective_n": math.nan, "top_n_weight": math.nan, "n": 0.0},
                         name="concentration")  # fmt: skip
    w = a / a.sum()
    hhi = float(np.sum(w**2))
    top = float(np.sort(w)[::-1][:n_top].sum())
    return pd.Series({"hhi": hhi, "effective_n": 1.0 / hhi, "top_n_weight": top, "n": float(a.size)},
                     name="concentration")  # fmt: skip


# --- beta and factors -------------------------------------------------------------------


def holdings_returns(b: Book, prices: Any) -> pd.Series:
    """Past per-bar returns of *today's* book: Σ value_i × r_i,t / equity.

    Today's position values are held constant (rebalanced every bar), the usual way to ask
    "how would the current book have moved". Only dates on which every non-zero holding has
    a return are kept, so the assets should share a bar frequency (a monthly return next to
    a daily one is not one period's move).
    """
    held = b.value[b.value != 0]
    rets = asset_returns(prices).reindex(columns=held.index).dropna(how="any")
    pnl = rets.to_numpy(dtype="float64") @ held.to_numpy(dtype="float64")
    return pd.Series(pnl / b.equity, index=rets.index, name="returns")


def _returns_of(returns: Any, name: str) -> pd.Series:
    if _is_result(returns):
        returns = returns.returns
    if not isinstance(returns, pd.Series):
        raise ParameterError(f"{name} must be a Series of returns (or a backtest result), got {type(returns).__name__}")
    return returns.astype("float64")


def benchmark_beta(returns: Any, benchmark: pd.Series, *, min_obs: int = 3) -> pd.Series:
    """OLS beta, Pearson correlation and per-period alpha of ``returns`` on ``benchmark``.

    >>> idx = pd.date_range("2024-01-01", periods=4, tz="UTC")
    >>> b = pd.Series([0.01, -0.02, 0.03, 0.0], index=idx)
    >>> benchmark_beta(2 * b, b)[["beta", "correlation"]].round(12).tolist()
    [2.0, 1.0]
    """
    r = _returns_of(returns, "returns")
    m = _returns_of(benchmark, "benchmark")
    both = pd.concat([r.rename("r"), m.rename("b")], axis=1, join="inner").dropna()
    if len(both) < max(int(min_obs), 2):
        raise InsufficientHistoryError(f"beta needs >= {max(int(min_obs), 2)} common dates, got {len(both)}")
    x, y = both["b"].to_numpy(), both["r"].to_numpy()
    var = float(np.var(x, ddof=1))
    if var == 0:
        raise ParameterError("benchmark returns are constant on the common dates: beta is undefined")
    beta = float(np.cov(y, x, ddof=1)[0, 1]) / var
    sd_y = float(np.std(y, ddof=1))
    corr = float(np.corrcoef(y, x)[0, 1]) if sd_y > 0 else math.nan
    return pd.Series({"beta": beta, "correlation": corr, "alpha": float(y.mean() - beta * x.mean()),
                      "n_obs": float(len(both)), "start": both.index[0], "end": both.index[-1]},
                     dtype=object, name="beta")  # fmt: skip


def _month_starts(idx: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return idx.tz_convert("UTC").tz_localize(None).to_period("M").to_timestamp().tz_localize("UTC")


def monthly_returns(returns: pd.Series) -> pd.Series:
    """Returns on month-start stamps: kept as they are, else compounded per calendar month
    with the (usually partial) first and last months dropped (module conventions)."""
    r = _returns_of(returns, "returns").dropna()
    idx = _utc_index(r, "returns")
    starts = _month_starts(idx)
    if len(idx) and (starts == idx).all() and starts.is_unique:
        return pd.Series(r.to_numpy(), index=idx, name="returns")
    grown = (1.0 + pd.Series(r.to_numpy(), index=idx)).groupby(starts).prod() - 1.0
    return grown.iloc[1:-1].rename("returns")


@dataclass(frozen=True)
class FactorFit:
    """OLS factor loadings: ``table`` rows ``alpha`` then each factor, columns ``coef, se,
    t, p``; ``alpha`` is per month (per period of the factors)."""

    table: pd.DataFrame
    r_squared: float
    n_obs: int
    start: pd.Timestamp
    end: pd.Timestamp


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients, classical standard errors and R² of y on [1, x]."""
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = len(y) - design.shape[1]
    xtx = design.T @ design
    if np.linalg.matrix_rank(xtx) < design.shape[1]:
        raise ParameterError("factor columns are collinear (or constant): loadings are not identified")
    cov = float(resid @ resid) / dof * np.linalg.inv(xtx)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else math.nan
    return coef, np.sqrt(np.diag(cov)), r2


def factor_exposures(returns: Any, factors: pd.DataFrame, *, rf: str | None = "RF") -> FactorFit:
    """Loadings of excess returns on ``factors`` (e.g. ``wb.load_series("ff3_monthly")``).

    ``rf`` names the risk-free column subtracted from the returns (``None``: the returns
    are already excess returns); every other column is a regressor.
    """
    if not isinstance(factors, pd.DataFrame):
        raise ParameterError(f"factors must be a DataFrame, got {type(factors).__name__}")
    if rf is not None and rf not in factors.columns:
        raise ParameterError(f"rf={rf!r} is not a column of factors ({list(factors.columns)})")
    names = [c for c in factors.columns if c != rf]
    r = monthly_returns(returns)
    f = factors.copy()
    f.index = _utc_index(factors, "factors")
    data = pd.concat([r, f], axis=1, join="inner").dropna()
    if len(data) < len(names) + 2:
        raise InsufficientHistoryError(f"{len(names)} factors need >= {len(names) + 2} common months, got {len(data)}")
    y = data["returns"].to_numpy() - (data[rf].to_numpy() if rf is not None else 0.0)
    coef, se, r2 = _ols(y, data[names].to_numpy(dtype="float64"))
    t = coef / se
    dof = len(y) - len(coef)
    table = pd.DataFrame({"coef": coef, "se": se, "t": t, "p": 2 * stats.t.sf(np.abs(t), dof)},
                         index=pd.Index(["alpha", *names], name="term"))  # fmt: skip
    return FactorFit(table, r2, len(y), data.index[0], data.index[-1])
