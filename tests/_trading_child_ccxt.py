"""The child program of the kill -9 harness on the ccxt broker (tests/test_trading_restart.py).

One *attempt* of the session of tests/_trading_child.py (its strategy, commission and
session name, on the last half of its bars), traded through :class:`~workbench.adapters.ccxt_broker.CcxtBroker` on the fake
venue of tests/_fake_exchange.py. The venue's whole state lives in its own SQLite file, so it
outlives a killed process the way a real exchange does, and every attempt of a trial opens the
same file. The feed sets the venue's last price to each bar's close before the loop sees the
bar (:class:`VenueFeed`, the rule of tests/test_trading_ccxt.py), and a decision executes at
its own close (``SIGNAL_CLOSE``: the loop's rule for a venue that trades in real time), so a
market order fills at that close.

The attempt dies by SIGKILL at the ``kill_at``-th (1-based) pass through ``kill_point`` in
*this* process: one of the loop's fault points (the paper child's ``KillAt``), or
``"create_order"``: inside the venue's ``create_order``, after the venue has stored (committed)
the order and before its answer leaves (:class:`DyingExchange`). A finished attempt writes
the paper child's summary to a JSON file, atomically.

The harness runs :func:`run` in a forked child; the file also runs as a program:

    python tests/_trading_child_ccxt.py '<attempt as JSON>'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import _trading_child as paper  # noqa: E402
from tests._fake_exchange import FakeExchange  # noqa: E402
from workbench.adapters.ccxt_broker import CcxtBroker  # noqa: E402
from workbench.adapters.eventlog import SQLiteEventLog  # noqa: E402
from workbench.strategies import SMACrossover  # noqa: E402
from workbench.trade import RiskApproval, TradingSession, trade  # noqa: E402
from workbench.trading.enums import AssetClass  # noqa: E402
from workbench.trading.feeds import ReplayFeed  # noqa: E402
from workbench.trading.values import Instrument  # noqa: E402

CREATE = "create_order"  # the kill point inside the venue
SESSION = paper.SESSION
WINDOW = 100  # the last 100 of the paper child's bars (2012-10 .. 2013-03): 11 orders, ~0.12 s of CPU
# The fake's BTC/USDT market (tick 0.01, amount step 1e-5) replaying the GOOG window's bars
BTC = Instrument(ticker="BTC/USDT", exchange="fake", asset_class=AssetClass.CRYPTO, tick_size=0.01, lot_size=1e-5,
                 currency="USDT")  # fmt: skip
# commission = the fake's fee rate (a fraction of the notional, charged in USDT), so the
# session's fees are the backtest's; 10 000 USDT of the venue's 100 000 are the session's cash
EXECUTION: dict[str, Any] = {"commission": paper.COMMISSION, "fill_timing": "SIGNAL_CLOSE", "instrument": BTC,
                             "cash": 10_000.0}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One process's part of a trial: its event log, its venue's file, where its report goes,
    and where it dies (``kill_point``: a fault point or ``"create_order"``; None: nowhere)."""

    log: str
    venue: str
    result: str
    approval: dict[str, Any]
    kill_point: str | None = None
    kill_at: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class DyingExchange(FakeExchange):
    """The persistent fake venue that dies (with this process) inside its ``kill_at``-th
    ``create_order``: the order is stored, the answer never leaves, as when an exchange's
    gateway crashes after its matching engine took the order. ``creates`` counts the orders
    stored by this object (``kill_at=0``: it never dies)."""

    def __init__(self, path: str | Path, kill_at: int = 0) -> None:
        super().__init__(path)
        self.kill_at, self.creates = kill_at, 0

    def create_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = super().create_order(*args, **kwargs)  # committed when it returns
        self.creates += 1
        if self.creates == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return answer


class VenueFeed(ReplayFeed):
    """Replayed bars that first move the venue's last price to the bar's close (what the
    market did by the time the bar closed), so a market order fills at that close."""

    def __init__(self, prices: pd.DataFrame, venue: FakeExchange) -> None:
        super().__init__(prices, name=BTC.ticker)
        self.venue = venue

    def steps(self, after: Any = None) -> Iterator[Any]:
        for ts, bars in super().steps(after):
            self.venue.set_last_price(BTC.ticker, bars[0].close)
            yield ts, bars


def window(prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """The last ``WINDOW`` of ``prices`` (default: the paper child's bars, the real sample
    data), labelled as the venue's market."""
    out = (paper.window() if prices is None else prices).iloc[-WINDOW:].copy()
    out.attrs.update(symbol=BTC.ticker)
    return out


def session(prices: pd.DataFrame, log: SQLiteEventLog, venue: FakeExchange, approval: RiskApproval,
            faults: Any = None, store: Any = "default") -> TradingSession:  # fmt: skip
    """Open or resume the session ``SESSION`` on ``log`` and run it to the end of ``prices``
    (:func:`window`'s bars) on a fresh CcxtBroker over ``venue`` (a new strategy object, deployed through the
    approval of the backtest in ``store``, as a new process would)."""
    strategy = SMACrossover(**paper.PARAMS)
    strategy.start_testing()

    def broker(portfolio: Any, bus: Any) -> CcxtBroker:
        return CcxtBroker(venue, portfolio, instruments={BTC.symbol: BTC}, bus=bus, sandbox=True,
                          sleep=lambda seconds: None)  # fmt: skip

    return trade(strategy, VenueFeed(prices, venue), approval=approval, store=store, broker=broker, log=log,
                 session=SESSION, faults=faults, **EXECUTION)  # fmt: skip


def run(attempt: Attempt, prices: pd.DataFrame | None = None, store: Any = "default") -> None:
    """One attempt (see the module notes); an error is written beside the result file, then
    raised (the process exits non-zero). The log and the venue are opened here, in the child."""
    try:
        inside = attempt.kill_point == CREATE
        log = SQLiteEventLog(attempt.log)
        venue = DyingExchange(attempt.venue, attempt.kill_at if inside else 0)
        faults = paper.KillAt(None if inside else attempt.kill_point, attempt.kill_at)
        sess = session(window(prices), log, venue, RiskApproval(**attempt.approval), faults, store)
        out = Path(attempt.result)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(paper.summary(sess)))
        os.replace(tmp, out)
        log.close()
        venue.close()
    except BaseException:
        Path(attempt.result + ".error").write_text(traceback.format_exc())
        raise


if __name__ == "__main__":
    run(Attempt(**json.loads(sys.argv[1])))
