"""The look-ahead guard: every class of cheat is caught, honest strategies never are.

Each cheat below would look brilliant in a backtest. The first-half, occasional, closure
and bar-strategy cheats all passed the guard before issue 9 (it cut the data at a few
points in the second half only, and never saw a bar strategy's last decision)."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters import indicators as ta
from workbench.market import validate_ohlcv
from workbench.research import lookahead as checks
from workbench.strategy.base import panel_field

GOOG = wb.load_prices("GOOG")  # what a closure captures: the same bars the guard is given
MIDPOINT = GOOG.index[len(GOOG) // 2]
TOMORROW_UP = (GOOG["Close"].shift(-1) > GOOG["Close"]).astype(float)


# -- cheats -----------------------------------------------------------------------------
def tomorrow_up(prices):
    """The classic: long today when tomorrow's close is higher (``shift(-1)``)."""
    return (prices["Close"].shift(-1) > prices["Close"]).astype(float)


def peeks_in_first_half(prices):
    """An honest trend rule in the second half; before the sample's midpoint, tomorrow."""
    c = prices["Close"]
    honest = (c > c.rolling(50).mean()).astype(float)
    return honest.where(prices.index >= MIDPOINT, (c.shift(-1) > c).astype(float))


def peeks_occasionally(prices, every=50):
    """The same trend rule, but on one bar in ``every`` it uses the next bar's close."""
    c = prices["Close"]
    out = (c > c.rolling(50).mean()).astype(float)
    peek = np.arange(len(c)) % every == 0
    out[peek] = (c.shift(-1) > c)[peek].astype(float)
    return out


def reads_the_full_frame(prices):
    """A closure over the full frame: causal in what it is given, but knows tomorrow."""
    return TOMORROW_UP.reindex(prices.index).fillna(0.0)


def mixes_the_full_frame_in(prices):
    """A closure mixing the two: tomorrow's real close against today's close as given."""
    return (GOOG["Close"].shift(-1).reindex(prices.index) > prices["Close"]).astype(float)


@dataclass(frozen=True, kw_only=True)
class PeekRotation(wb.PortfolioStrategy):
    """Weights that peek: every 21 bars, all in on the symbol with the best *next* 21 bars."""

    def weights(self, panel):
        close = panel_field(panel, "Close")
        future = close.shift(-21) / close - 1.0
        out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
        for i in range(0, len(close), 21):
            row = future.iloc[i]
            if row.notna().all():
                out.iloc[i] = (close.columns == row.idxmax()).astype(float)
        return out


@dataclass(frozen=True, kw_only=True)
class PeekBar(wb.BarStrategy):
    """A bar strategy that peeks through ``init``, which is given the whole frame."""

    def init(self, prices):
        return (prices["Close"].shift(-1) > prices["Close"]).to_numpy()

    def on_bar(self, ctx):
        want = int(ctx.data[ctx.i])
        if want != ctx.state.get("want", 0):
            ctx.state["want"] = want
            ctx.target(want)


CHEATS = {
    "shift(-1)": tomorrow_up,
    "first half": peeks_in_first_half,
    "1 bar in 50": peeks_occasionally,
    "closure": reads_the_full_frame,
    "mixing closure": mixes_the_full_frame_in,
    "bar strategy": PeekBar(),
}


@pytest.mark.parametrize("cheat", CHEATS.values(), ids=CHEATS.keys())
def test_every_cheat_is_caught(cheat):
    with pytest.raises(wb.LookAheadError, match="looks ahead"):
        wb.check_lookahead(cheat, GOOG)


def test_every_cheat_would_have_looked_too_good_to_be_true():
    honest = wb.backtest(breakout, GOOG).stats["total_return"]
    for cheat in CHEATS.values():
        assert wb.backtest(cheat, GOOG).stats["total_return"] > max(honest, 0.0) + 1.0


def test_a_weights_strategy_that_peeks_is_caught(four):
    with pytest.raises(wb.LookAheadError, match="PeekRotation looks ahead: its decision at"):
        wb.check_lookahead(PeekRotation(), four)


@pytest.mark.parametrize(
    ("cheat", "stand_in"),
    [(reads_the_full_frame, "replaced by a seeded bootstrap"), (mixes_the_full_frame_in, "replayed 1 bar")],
)
def test_a_closure_is_caught_by_a_stand_in_future_and_only_by_it(cheat, stand_in):
    # every cut and mirrored run passes (they run first): a closure ignores the future of
    # the frame it is given; on a stand-in future its decisions still follow the real one
    for settings in ({}, {"cuts": 1, "sample": 0}, {"sample": 200, "seed": 3}):
        with pytest.raises(wb.LookAheadError, match=f"{stand_in}.*still predict the real next-bar moves"):
            wb.check_lookahead(cheat, GOOG, **settings)


def reads_the_full_frame_rarely(prices):
    out = breakout(prices)
    peek = np.arange(len(prices)) % 50 == 0
    out[peek] = TOMORROW_UP.reindex(prices.index)[peek]
    return out


def test_a_rare_outside_peek_is_beyond_the_guard():
    """Documented limit: a closure peeking on 1 bar in 50 is too rare for the stand-in
    scores, and no cut can see it."""
    assert wb.check_lookahead(reads_the_full_frame_rarely, GOOG, backtests=False) > 0


def peeks_once(prices, at=150):
    """Honest but for one bar, where it knows whether the next close is higher."""
    c = prices["Close"]
    out = (c > c.rolling(20).mean()).astype(float)
    if len(c) > at + 1:
        out.iloc[at] = float(c.iloc[at + 1] < c.iloc[at])
    return out


def test_a_single_peek_is_caught_only_where_it_is_checked(goog):
    short = goog.iloc[:300]
    assert wb.check_lookahead(peeks_once, short, cuts=2, sample=0) == 6  # the limit of sampling
    with pytest.raises(wb.LookAheadError, match="decision at"):
        wb.check_lookahead(peeks_once, short, sample=len(short))  # every bar checked


# -- cheats inside the declared warm-up -------------------------------------------------
# All of these passed the guard before it looked inside the warm-up (its cuts and stand-in
# futures all started at the warm-up's end), and both engines trade what is decided there.
@dataclass(frozen=True, kw_only=True)
class BfilledCrossover(wb.Strategy):
    """SMA 10/50 declaring a warm-up of ``slow`` bars, its averages back-filled: the warm-up
    bars get the first complete averages, computed from later bars, and it trades there."""

    fast: int = 10
    slow: int = 50

    @property
    def warmup(self):
        return self.slow

    def target(self, prices):
        c = prices["Close"]
        return (c.rolling(self.fast).mean().bfill() > c.rolling(self.slow).mean().bfill()).astype(float)


@dataclass(frozen=True, kw_only=True)
class BfilledCrossoverRefusingShortData(BfilledCrossover):
    """The same, raising on fewer bars than its warm-up: every cut inside it 'cannot decide'."""

    def target(self, prices):
        if len(prices) < self.slow:
            raise wb.InsufficientHistoryError(f"need {self.slow} bars, got {len(prices)}")
        return super().target(prices)


@dataclass(frozen=True, kw_only=True)
class PeeksInItsWarmup(wb.Strategy):
    """The extreme: a declared warm-up of 1,000 bars, tomorrow's close all through it, flat after."""

    @property
    def warmup(self):
        return 1000

    def decide(self, prices):
        c = prices["Close"]
        return (c.shift(-1) > c).astype(float)

    def target(self, prices):
        out = self.decide(prices)
        out.iloc[self.warmup :] = 0.0
        return out


@dataclass(frozen=True, kw_only=True)
class ClosureInItsWarmup(PeeksInItsWarmup):
    """The same from a closure over the full frame: no cut of the frame can see it."""

    def decide(self, prices):
        return TOMORROW_UP.reindex(prices.index).fillna(0.0)


WARMUP_CHEATS = {
    "bfill": (BfilledCrossover(), r"decision at 2004-10-05.*\(bar 32, inside its declared warm-up of 50 bars"),
    "bfill, refusing short data": (
        BfilledCrossoverRefusingShortData(),
        r"decided at 2004-10-05.*warm-up of 50 bars.*cannot decide when the data was cut.*InsufficientHistoryError",
    ),
    "peeks in its warm-up": (PeeksInItsWarmup(), r"decision at 2004-08-19.*\(bar 0, inside its declared warm-up of 1000"),
    "closure in its warm-up": (ClosureInItsWarmup(), "replaced by a seeded bootstrap.*still predict the real next-bar"),
}


@pytest.mark.parametrize(("cheat", "message"), WARMUP_CHEATS.values(), ids=WARMUP_CHEATS.keys())
def test_a_cheat_inside_its_declared_warmup_is_caught(cheat, message):
    for settings in ({}, {"cuts": 1, "sample": 0, "seed": 7}):  # not a matter of sampling
        with pytest.raises(wb.LookAheadError, match=message):
            wb.check_lookahead(cheat, GOOG, **settings)


def test_the_warmup_cheats_trade_inside_the_warmup_and_look_too_good():
    honest = wb.backtest(HonestCrossover(), GOOG, cash=10_000)
    bfilled = wb.backtest(BfilledCrossover(), GOOG, cash=10_000)
    end_of_warmup = GOOG.index[BfilledCrossover().warmup - 1]
    assert bfilled.fills["ts"].iloc[0] == pd.Timestamp("2004-10-06", tz="UTC") < end_of_warmup
    assert honest.fills["ts"].iloc[0] > end_of_warmup
    assert bfilled.stats["total_return"] > honest.stats["total_return"] + 1.0  # 4.04 vs 2.51
    for cheat in (PeeksInItsWarmup(), ClosureInItsWarmup()):
        assert wb.backtest(cheat, GOOG, cash=10_000).equity.iloc[-1] > 1e7  # 10k into 10.8M


YEAR_RETURN = GOOG["Close"].groupby(GOOG.index.year).agg(lambda c: c.iloc[-1] / c.iloc[0] - 1.0)


def trades_only_in_good_years(prices):
    """A closure at the scale of years: long all through each year whose full-year return,
    read from the module's copy of the data, was positive (8 of GOOG's 10), flat in the others."""
    good = YEAR_RETURN.reindex(prices.index.year).to_numpy() > 0
    return pd.Series(good.astype(float), index=prices.index)


def test_a_leak_at_the_scale_of_years_is_beyond_the_guard():
    """Documented limit: a handful of year-long bets scores like an honest trend rule on the
    stand-in futures (z about 2 to 3.5 at horizons of 1 to 252 bars, honest rules up to
    |3|, the limit is 6), and it ignores the frame, so no cut sees it."""
    leak = wb.backtest(trades_only_in_good_years, GOOG).stats["total_return"]
    assert leak > wb.backtest(always_long, GOOG).stats["total_return"] + 5.0  # 16.6 vs 7.0
    for seed in (0, 1):
        assert wb.check_lookahead(trades_only_in_good_years, GOOG, seed=seed, backtests=False) > 0


# -- honest strategies ------------------------------------------------------------------
def breakout(prices, window=20):
    high = prices["High"].rolling(window).max().shift(1)
    return (prices["Close"] > high).astype(float)


def held_until_reversed(prices):
    """Entry and exit rules with NaN = keep the last state, forward-filled: honest."""
    c = prices["Close"]
    sma = c.rolling(30).mean()
    state = pd.Series(np.nan, index=c.index)
    state[c > sma * 1.02] = 1.0
    state[c < sma * 0.98] = 0.0
    return state.ffill().fillna(0.0)


def always_long(prices):
    return pd.Series(1.0, index=prices.index)


def mondays(prices):
    """A calendar rule: ignores prices entirely, never predicts tomorrow."""
    return pd.Series((prices.index.day_of_week == 0).astype(float), index=prices.index)


SPX = wb.load_prices("SPX")


def follows_the_index(prices):
    """A closure over another series, used only up to each bar: honest."""
    spx = SPX["Close"].reindex(prices.index).ffill()
    return (spx > spx.rolling(50).mean()).astype(float)


@dataclass(frozen=True, kw_only=True)
class EqualWeightMonthly(wb.PortfolioStrategy):
    """Rebalance to equal weight every 21 bars; NaN (hold) in between."""

    def weights(self, panel):
        close = panel_field(panel, "Close")
        out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
        out.iloc[::21] = 1.0 / close.shape[1]
        return out


@dataclass(frozen=True, kw_only=True)
class LimitDips(wb.BarStrategy):
    """A bar strategy placing explicit day limit orders below an SMA, out by target above it."""

    def init(self, prices):
        return ta.sma(prices["Close"], 20).to_numpy()

    def on_bar(self, ctx):
        sma = ctx.data[ctx.i]
        if np.isnan(sma):
            return
        if ctx.position == 0 and not ctx.open_orders:
            ctx.buy(10, order_type="limit", limit_price=ctx.round_price(sma * 0.97), time_in_force="day")
        elif ctx.position > 0 and ctx.price > sma * 1.03:
            ctx.target(0)


HONEST = {
    "breakout": breakout,
    "held until reversed": held_until_reversed,
    "always long": always_long,
    "mondays": mondays,
    "closure over point-in-time data": follows_the_index,
    "bar strategy with orders": LimitDips(),
}


@dataclass(frozen=True, kw_only=True)
class HonestCrossover(BfilledCrossover):
    """SMA 10/50 with its warm-up declared one bar too long: it decides at bar 49, inside
    the declared warm-up, from a complete window. Honest: no cut there can move it."""

    def target(self, prices):
        c = prices["Close"]
        return (c.rolling(self.fast).mean() > c.rolling(self.slow).mean()).astype(float)


@dataclass(frozen=True, kw_only=True)
class ExpandingMean(wb.Strategy):
    """Long above the mean of every close so far: decides from bar 1, all through the 100
    bars it declares as warm-up, each time from the bars up to its own close."""

    @property
    def warmup(self):
        return 100

    def target(self, prices):
        c = prices["Close"]
        return (c > c.expanding().mean()).astype(float)


@dataclass(frozen=True, kw_only=True)
class RefusesShortData(wb.Strategy):
    """Raises on fewer bars than its warm-up (as a TA-Lib lookback check would) and is flat
    until its window is complete: on a short cut it 'cannot decide yet', and does not."""

    @property
    def warmup(self):
        return 50

    def target(self, prices):
        if len(prices) < self.warmup:
            raise wb.InsufficientHistoryError(f"need {self.warmup} bars, got {len(prices)}")
        sma = ta.sma(prices["Close"], 50)
        return (prices["Close"] > sma).astype(float)


@dataclass(frozen=True, kw_only=True)
class FailsOnAFewBars(RefusesShortData):
    """Crashes (its own bug) on fewer than 5 bars, where it is flat anyway: not a look-ahead."""

    def target(self, prices):
        if len(prices) < 5:
            raise ValueError("not enough bars to fit")
        return (prices["Close"] > ta.sma(prices["Close"], 50)).astype(float)


@dataclass(frozen=True, kw_only=True)
class LimitDipsDeclaringAWarmup(LimitDips):
    """The bar strategy above declaring a warm-up of 40 bars: it places orders from bar 19."""

    @property
    def warmup(self):
        return 40


HONEST_IN_THE_WARMUP = {
    "warm-up declared a bar too long": HonestCrossover(),
    "expanding window": ExpandingMean(),
    "refuses short data": RefusesShortData(),
    "fails on a few bars": FailsOnAFewBars(),
    "bar strategy": LimitDipsDeclaringAWarmup(),
}


@pytest.mark.parametrize("strategy", HONEST_IN_THE_WARMUP.values(), ids=HONEST_IN_THE_WARMUP.keys())
def test_honest_decisions_inside_a_declared_warmup_are_not_flagged(strategy):
    bar = isinstance(strategy, wb.BarStrategy)  # each of its checks is a backtest
    prices, sample = (GOOG.iloc[:250], 16) if bar else (GOOG, 64)
    assert wb.check_lookahead(strategy, prices, sample=sample, seed=3, commission=0.001) > 0


@pytest.mark.parametrize("strategy", HONEST.values(), ids=HONEST.keys())
def test_honest_strategies_are_never_flagged(strategy):
    prices = GOOG.iloc[:1200] if isinstance(strategy, wb.BarStrategy) else GOOG  # each check a backtest
    assert wb.check_lookahead(strategy, prices, commission=0.001) > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_honest_strategies_pass_whatever_the_seed(seed):
    for strategy in (breakout, held_until_reversed, follows_the_index):
        assert wb.check_lookahead(strategy, GOOG, seed=seed, backtests=False) > 0


def test_an_honest_hold_weights_strategy_passes(four):
    assert wb.check_lookahead(EqualWeightMonthly(), four, commission=0.001) > 0


# -- the machinery --------------------------------------------------------------------
def test_changed_data_is_valid_bars(goog, pair):
    rng = np.random.default_rng(0)
    for frame in (goog, pair):
        t = len(frame) // 3
        for changed in (checks._mirror(frame, t), checks._bootstrap(frame, t, rng), checks._late(frame, t)):
            pd.testing.assert_frame_equal(changed.iloc[: t + 1], frame.iloc[: t + 1])
            assert not changed.iloc[t + 1 :].equals(frame.iloc[t + 1 : len(changed)])
            subs = [changed[s] for s in ("SPX", "IXIC")] if frame is pair else [changed]
            for sub in subs:
                validate_ohlcv(sub)
    mirrored = checks._mirror(goog, 100)
    moves = np.sign(np.diff(np.log(goog["Close"].to_numpy()[100:106])))
    np.testing.assert_array_equal(np.sign(np.diff(np.log(mirrored["Close"].to_numpy()[100:]))), -moves)


def test_runs_are_seeded_and_reproducible():
    a = checks._cut_points(10, 500, 8, 64, np.arange(20, 500, 7), np.random.default_rng(5))
    b = checks._cut_points(10, 500, 8, 64, np.arange(20, 500, 7), np.random.default_rng(5))
    c = checks._cut_points(10, 500, 8, 64, np.arange(20, 500, 7), np.random.default_rng(6))
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    spread, sampled = a
    assert spread[0] == 10 and spread[-1] == 498 and len(sampled) == 64
    assert len(np.intersect1d(sampled, np.arange(20, 500, 7))) >= 32  # half on decision changes
    assert len(set(spread) | set(sampled)) == len(spread) + len(sampled)


def test_bad_arguments_fail_naming_them():
    with pytest.raises(wb.ParameterError, match="sample must be >= 0"):
        wb.check_lookahead(breakout, GOOG, sample=-1)
    with pytest.raises(wb.ParameterError, match="cuts must be >= 1"):
        wb.check_lookahead(breakout, GOOG, cuts=0)
