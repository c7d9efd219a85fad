"""Sizers that read the price path: volatility targeting (EWMA σ) and ATR risk per trade.

Their estimators equal a hand loop and TA-Lib; every entry on the real GOOG bars is the
formula recomputed from the fills; an order decided at bar s never depends on later bars;
the event, bar-callback and vectorized engines fill alike; caps and cash always hold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.engines.event import engine_only, simulated_broker
from workbench.engines.vectorized import run_signal_grid
from workbench.risk.sizing import ATRRisk, VolatilityTarget, ewma_volatility, wilder_atr
from workbench.strategy.engine import NO_HOOKS
from workbench.trading.sizing import BarFractions, PercentOfEquity, bind_sizer

GOOG = wb.load_prices("GOOG")
INST = wb.instrument_for("GOOG")
RATE = 0.001  # commission: a fraction of notional per fill


def _hand_ewma_vol(close: np.ndarray, lam: float, warmup: int, ppy: float) -> np.ndarray:
    """RiskMetrics by hand: simple returns, zero-mean seed over the first ``warmup``, then
    σ²_t = λσ²_{t-1} + (1-λ)r²_t, annualised; NaN before bar ``warmup``."""
    out = [math.nan] * len(close)
    r = [close[t] / close[t - 1] - 1.0 for t in range(1, len(close))]
    var = sum(x * x for x in r[:warmup]) / warmup
    out[warmup] = math.sqrt(var * ppy)
    for t in range(warmup + 1, len(close)):
        var = lam * var + (1.0 - lam) * r[t - 1] ** 2
        out[t] = math.sqrt(var * ppy)
    return np.array(out)


def _columns(prices: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(prices[k].to_numpy(dtype="float64") for k in ("Open", "High", "Low", "Close"))


def _entries(result: wb.BacktestResult) -> pd.DataFrame:
    """Each entry fill with its signal bar s, and the equity just before it, from the fills
    table alone: cash starts at the spec's cash and moves by every fill's notional and fee
    (an entry is always from flat here, so equity before it is that cash)."""
    orders = result.orders.set_index("order_id")
    cash, held, rows = float(result.spec.cash), 0.0, []
    for f in result.fills.itertuples():
        signed = f.quantity if f.side == "BUY" else -f.quantity
        if held == 0:
            s = GOOG.index.get_loc(orders.loc[f.order_id, "placed"])
            rows.append({"s": s, "ts": f.ts, "price": f.price, "quantity": f.quantity, "fee": f.fee, "equity": cash})
        cash -= signed * f.price + f.fee
        held += signed
    return pd.DataFrame(rows)


def _fits(budget: float, price: float) -> float:
    """Most whole shares whose notional plus commission fit in ``budget`` (by hand)."""
    q = math.floor(budget / (price * (1 + RATE)))
    return float(q - 1 if q * price * (1 + RATE) > budget else q)


# -- the estimators -------------------------------------------------------------------------
@pytest.mark.parametrize(("lam", "warmup", "ppy"), [(0.94, 20, 252.0), (0.97, 60, 252.0), (0.5, 1, 365.0)])
def test_ewma_volatility_equals_a_hand_loop(lam: float, warmup: int, ppy: float) -> None:
    close = GOOG["Close"].to_numpy()
    got = ewma_volatility(close, lam, warmup, ppy)
    want = _hand_ewma_vol(close, lam, warmup, ppy)
    assert np.isnan(got[:warmup]).all() and not np.isnan(got[warmup:]).any()
    np.testing.assert_allclose(got[warmup:], want[warmup:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("window", [1, 5, 14, 30])
def test_wilder_atr_equals_talib(window: int) -> None:
    _, h, lo, c = _columns(GOOG)
    got = wilder_atr(h, lo, c, window)
    want = talib.ATR(h, lo, c, timeperiod=window)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_short_histories_are_all_warmup() -> None:
    assert np.isnan(ewma_volatility(np.array([1.0, 2.0]), warmup=2)).all()
    assert np.isnan(wilder_atr(np.ones(3), np.ones(3), np.ones(3), window=3)).all()


# -- every entry on GOOG is the formula -----------------------------------------------------
@pytest.mark.parametrize("timing", ["next_open", "signal_close"])
def test_vol_target_entries_equal_the_formula_from_the_fills(timing: str) -> None:
    sizer = VolatilityTarget(target=0.25, lam=0.94, warmup=20, cap=0.9)
    r = wb.backtest("sma_crossover", GOOG, {"fast": 10, "slow": 30}, size=sizer, commission=RATE, fill_timing=timing)
    sigma = _hand_ewma_vol(GOOG["Close"].to_numpy(), 0.94, 20, 252.0)
    e = _entries(r)
    assert len(e) > 20
    f = np.minimum(0.9, 0.25 / sigma[e["s"]])
    want = [_fits(fi * eq, p) for fi, eq, p in zip(f, e["equity"], e["price"], strict=True)]
    assert e["quantity"].tolist() == want
    assert (f < 0.9).any() and (f == 0.9).any(), "both the target and the cap decide some entries"
    np.testing.assert_allclose(e["fee"], RATE * e["quantity"] * e["price"], rtol=1e-12)


@pytest.mark.parametrize("timing", ["next_open", "signal_close"])
def test_atr_risk_entries_equal_the_formula_from_the_fills(timing: str) -> None:
    sizer = ATRRisk(risk=0.02, k=1.5, window=14, cap=0.8)
    r = wb.backtest("sma_crossover", GOOG, {"fast": 10, "slow": 30}, size=sizer, commission=RATE, fill_timing=timing)
    _, h, lo, c = _columns(GOOG)
    atr = talib.ATR(h, lo, c, timeperiod=14)
    e = _entries(r)
    assert len(e) > 20
    # risk × equity / (k × ATR) units, as a fraction of equity at the fill price, capped
    f = np.minimum(0.8, 0.02 * e["price"].to_numpy() / (1.5 * atr[e["s"]]))
    want = [_fits(fi * eq, p) for fi, eq, p in zip(f, e["equity"], e["price"], strict=True)]
    assert e["quantity"].tolist() == want
    assert (f < 0.8).any() and (f == 0.8).any(), "both the ATR risk and the cap decide some entries"


def test_signals_inside_the_warmup_open_nothing_on_either_engine() -> None:
    target = wb.STRATEGIES["sma_crossover"](fast=5, slow=10).target(GOOG).to_numpy()
    entries = np.flatnonzero((target == 1) & (np.concatenate(([0.0], target[:-1])) == 0))
    warmup = int(entries[2]) + 1  # the first three entry signals come before σ̂ exists
    sizer = VolatilityTarget(target=0.2, warmup=warmup)
    r = wb.backtest("sma_crossover", GOOG, {"fast": 5, "slow": 10}, size=sizer)
    first = GOOG.index.get_loc(r.orders["placed"].iloc[0])
    assert first == entries[entries >= warmup][0]
    assert wb.compare_engines("sma_crossover", GOOG, {"fast": 5, "slow": 10}, size=sizer).ok


# -- no look-ahead --------------------------------------------------------------------------
def _perturbed(prices: pd.DataFrame, after: int, seed: int = 3) -> pd.DataFrame:
    """Bars after ``after`` rescaled by a random walk (a valid OHLCV frame, other prices)."""
    out = prices.copy()
    walk = np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.05, len(out) - after - 1)))
    for k in ("Open", "High", "Low", "Close"):
        out.iloc[after + 1 :, out.columns.get_loc(k)] *= walk
    return out


@pytest.mark.parametrize("sizer", [VolatilityTarget(target=0.2), ATRRisk(risk=0.01, k=2.0)])
def test_the_bound_path_at_bar_s_ignores_later_bars(sizer: VolatilityTarget | ATRRisk) -> None:
    s = 1000
    a, b = sizer.bind(GOOG), sizer.bind(_perturbed(GOOG, s))
    np.testing.assert_array_equal(a.scale[: s + 1], b.scale[: s + 1])
    assert not np.allclose(a.scale[s + 1 :], b.scale[s + 1 :])


@pytest.mark.parametrize("sizer", [VolatilityTarget(target=0.2), ATRRisk(risk=0.01, k=2.0)])
@pytest.mark.parametrize("timing", ["next_open", "signal_close"])
def test_the_order_decided_at_s_ignores_prices_after_it(sizer: VolatilityTarget | ATRRisk, timing: str) -> None:
    s = 1200
    target = pd.Series(0.0, index=GOOG.index)
    target.iloc[s:] = 1.0  # one entry, decided at s whatever the later prices are

    def hold_from_s(prices: pd.DataFrame) -> pd.Series:
        return target

    # the order fills at s's close, or at s+1's open: keep those, change everything after
    later = _perturbed(GOOG, s if timing == "signal_close" else s + 1)
    if timing == "next_open":  # and s+1's high, low and close too
        k = s + 1
        later.iloc[k, later.columns.get_loc("High")] *= 1.2
        later.iloc[k, later.columns.get_loc("Low")] *= 0.8
        later.iloc[k, later.columns.get_loc("Close")] = later["Low"].iloc[k]
    runs = [wb.backtest(hold_from_s, p, size=sizer, fill_timing=timing) for p in (GOOG, later)]
    fills = [x.fills.iloc[0] for x in runs]
    assert fills[0]["quantity"] == fills[1]["quantity"] > 0
    assert fills[0]["ts"] == fills[1]["ts"] == GOOG.index[s if timing == "signal_close" else s + 1]
    assert runs[0].equity.iloc[-1] != runs[1].equity.iloc[-1], "the later prices did change the run"


# -- every engine ---------------------------------------------------------------------------
SIZERS = [VolatilityTarget(target=0.2, lam=0.94, cap=0.8), ATRRisk(risk=0.015, k=2.0, cap=0.9)]


@pytest.mark.parametrize("sizer", SIZERS)
@pytest.mark.parametrize("timing", ["next_open", "signal_close"])
def test_event_and_vectorized_engines_agree_fill_for_fill(sizer: VolatilityTarget | ATRRisk, timing: str) -> None:
    cmp = wb.compare_engines("sma_crossover", GOOG, {"fast": 10, "slow": 30}, size=sizer, commission=RATE,
                             slippage=wb.FixedBps(bps=5), fill_timing=timing)  # fmt: skip
    assert cmp.ok, cmp.report()
    assert len(cmp.event.fills) > 40


@pytest.mark.parametrize("sizer", SIZERS)
def test_the_bar_callback_engine_sizes_from_the_signal_bar(sizer: VolatilityTarget | ATRRisk) -> None:
    target = wb.STRATEGIES["sma_crossover"](fast=10, slow=30).target(GOOG).to_numpy()

    class Follow(wb.BarStrategy):
        def on_bar(self, ctx):  # type: ignore[no-untyped-def]
            if ctx.i == 0 or target[ctx.i] != target[ctx.i - 1]:
                ctx.target(target[ctx.i])

    a = wb.backtest(Follow(), GOOG, size=sizer, commission=RATE).fills
    b = wb.backtest("sma_crossover", GOOG, {"fast": 10, "slow": 30}, size=sizer, commission=RATE).fills
    cols = ["ts", "side", "quantity", "price", "fee"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


@pytest.mark.parametrize("sizer", SIZERS)
def test_a_signal_grid_sizes_each_column_as_its_own_run(sizer: VolatilityTarget | ATRRisk) -> None:
    runs = [wb.backtest("sma_crossover", GOOG, {"fast": f, "slow": 40}, size=sizer, commission=RATE) for f in (5, 15)]
    targets = np.column_stack([wb.STRATEGIES["sma_crossover"](fast=f, slow=40).target(GOOG) for f in (5, 15)])
    equity, n_trades = run_signal_grid(GOOG, targets, INST, runs[0].spec)
    for j, r in enumerate(runs):
        np.testing.assert_allclose(equity[:, j], r.equity.to_numpy(), rtol=1e-9)
        assert n_trades[j] == len(r.trades)


def test_the_vectorized_engine_refuses_what_it_cannot_reproduce_by_name() -> None:
    sizer = VolatilityTarget(target=0.2)
    with pytest.raises(wb.ParameterError, match=r"cannot reproduce sizing VolatilityTarget\(.*goes short"):
        wb.backtest("sma_crossover", GOOG, {"allow_short": True}, size=sizer, engine="vectorized")
    profiled = wb.compare_engines("sma_crossover", GOOG, size=ATRRisk(risk=0.01), risk=wb.RiskProfile())
    assert profiled.ok, profiled.report()  # the risk replay sizes each order with the bound sizer too
    short = wb.backtest("sma_crossover", GOOG, {"allow_short": True}, size=sizer)  # the event engine runs it
    reversals = short.orders[short.orders["tag"] == "reverse"]
    assert len(reversals) > 10 and (reversals["filled_quantity"] > 0).all()


def test_own_sizers_keep_the_gc_pause_and_lambda_changes_the_spec_id() -> None:
    for sizer in SIZERS:
        assert engine_only(wb.make_spec("sma_crossover", size=sizer), NO_HOOKS, simulated_broker)
    ids = {wb.make_spec("sma_crossover", size=VolatilityTarget(target=0.2, lam=lam)).id for lam in (0.94, 0.97, 0.94)}
    assert len(ids) == 2
    atr = {wb.make_spec("sma_crossover", size=ATRRisk(risk=0.01, window=w)).id for w in (14, 20)}
    assert len(atr) == 2


# -- caps and affordability (properties) ----------------------------------------------------
def _fee_cost(price: float, rate: float, fixed: float):  # type: ignore[no-untyped-def]
    return lambda q: q * price * (1 + rate) + (fixed if q > 0 else 0.0)


@settings(max_examples=200, deadline=None)
@given(scale=st.one_of(st.floats(1e-6, 1e3), st.just(math.inf), st.just(math.nan)), per_price=st.booleans(),
       cap=st.floats(0.01, 1.0), price=st.floats(0.5, 5_000.0), equity=st.floats(-1e4, 1e7),
       rate=st.floats(0, 0.02), fixed=st.floats(0, 20.0))  # fmt: skip
def test_a_bound_size_never_exceeds_its_cap_or_what_cash_pays(scale: float, per_price: bool, cap: float, price: float,
                                                              equity: float, rate: float, fixed: float) -> None:  # fmt: skip
    bound = BarFractions(scale=np.array([scale]), cap=cap, per_price=per_price)
    cost = _fee_cost(price, rate, fixed)
    q = bound.size_at(0, price, equity, equity, INST, cost)
    f = bound.fraction(0, price)
    assert 0 <= f <= cap and q == int(q) >= 0
    assert q * price <= cap * max(equity, 0.0) * (1 + 1e-12), "never more than cap × equity"
    assert cost(q) <= max(equity, 0.0) * (1 + 1e-12), "never more than cash pays, fees included"
    if q > 0 or f > 0:
        assert cost(q + 1) > f * equity, "and the most whole lots the fraction buys"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.floats(0.02, 1.0), lam=st.floats(0.8, 0.99), cap=st.floats(0.1, 1.0), rate=st.floats(0, 0.01),
       atr=st.booleans())  # fmt: skip
def test_every_goog_entry_respects_the_cap_and_the_cash(target: float, lam: float, cap: float, rate: float,
                                                        atr: bool) -> None:  # fmt: skip
    sizer = ATRRisk(risk=target / 20, cap=cap) if atr else VolatilityTarget(target=target, lam=lam, cap=cap)
    r = wb.backtest("sma_crossover", GOOG, {"fast": 10, "slow": 30}, size=sizer, commission=rate)
    e = _entries(r)
    assert (e["quantity"] * e["price"] <= cap * e["equity"] * (1 + 1e-12)).all()
    assert (e["quantity"] * e["price"] + e["fee"] <= e["equity"] * (1 + 1e-12)).all()


# -- binding and bad parameters -------------------------------------------------------------
def test_bind_sizer_binds_path_sizers_and_leaves_plain_ones_alone() -> None:
    plain = PercentOfEquity(fraction=0.5)
    assert bind_sizer(plain, GOOG) is plain
    bound = bind_sizer(VolatilityTarget(target=0.2), GOOG)
    assert isinstance(bound, BarFractions) and len(bound.scale) == len(GOOG)
    assert not bound.scale.flags.writeable
    cost = _fee_cost(100.0, 0.0, 0.0)
    want = bound.size_at(len(GOOG) - 1, 100.0, 10_000.0, 10_000.0, INST, cost)
    assert bound.size(100.0, 10_000.0, 10_000.0, INST, cost) == want, "unindexed: the last bound bar"


def test_an_unbound_path_sizer_says_to_bind_it() -> None:
    with pytest.raises(wb.ParameterError, match=r"VolatilityTarget sizes from the price history: bind"):
        VolatilityTarget(target=0.1).size(100.0, 1e4, 1e4, INST, _fee_cost(100.0, 0, 0))
    with pytest.raises(wb.ParameterError, match=r"ATRRisk: bind needs the OHLCV frame"):
        ATRRisk(risk=0.01).bind(GOOG[["Open", "Close"]])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: VolatilityTarget(target=0.1, lam=1.5), r"VolatilityTarget: lam must be in \(0, 1\), got lam=1.5"),
        (lambda: VolatilityTarget(target=0.1, lam=0), r"lam must be in \(0, 1\), got lam=0"),
        (lambda: VolatilityTarget(target=0.0), r"VolatilityTarget: target must be a finite number > 0, got target=0.0"),
        (lambda: VolatilityTarget(target=math.nan), r"target must be a finite number > 0, got target=nan"),
        (lambda: VolatilityTarget(target=0.1, warmup=0), r"warmup must be an int >= 1, got warmup=0"),
        (lambda: VolatilityTarget(target=0.1, warmup=2.5), r"warmup must be an int >= 1, got warmup=2.5"),
        (lambda: VolatilityTarget(target=0.1, warmup=True), r"warmup must be an int >= 1, got warmup=True"),
        (lambda: VolatilityTarget(target=0.1, cap=1.5), r"VolatilityTarget: cap must be in \(0, 1\], got cap=1.5"),
        (lambda: VolatilityTarget(target=0.1, periods_per_year=-252), r"periods_per_year must be .*, got periods_per_year=-252"),
        (lambda: ATRRisk(risk=0.0), r"ATRRisk: risk must be in \(0, 1\], got risk=0.0"),
        (lambda: ATRRisk(risk=1.5), r"ATRRisk: risk must be in \(0, 1\], got risk=1.5"),
        (lambda: ATRRisk(risk=0.01, k=math.inf), r"ATRRisk: k must be a finite number > 0, got k=inf"),
        (lambda: ATRRisk(risk=0.01, k=-2), r"k must be a finite number > 0, got k=-2"),
        (lambda: ATRRisk(risk=0.01, window=0), r"ATRRisk: window must be an int >= 1, got window=0"),
        (lambda: ATRRisk(risk=0.01, cap=0), r"ATRRisk: cap must be in \(0, 1\], got cap=0"),
        (lambda: ATRRisk(risk="1%"), r"risk must be in \(0, 1\], got risk='1%'"),
        (lambda: ewma_volatility(GOOG["Close"], lam=1.0), r"ewma_volatility: lam must be in \(0, 1\), got lam=1.0"),
        (lambda: wilder_atr(GOOG["High"], GOOG["Low"], GOOG["Close"], window=-3), r"window must be an int >= 1, got window=-3"),
    ],
)  # fmt: skip
def test_bad_parameters_name_the_rule_and_the_value(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(wb.ParameterError, match=message):
        make()
