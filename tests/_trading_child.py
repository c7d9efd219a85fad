"""The child program of the kill -9 harness (tests/test_trading_restart.py).

One *attempt* of a paper-trading session: open (or resume) the session on its SQLite event
log, replay the GOOG window through the trading loop and, when told to, kill itself with
SIGKILL at the n-th time the loop passes one of its fault points. An attempt that reaches
the end of the feed writes what the session holds (fills, equity, cash, positions, its
reconciliation) to a JSON file, atomically, for the harness to compare with the reference.

The harness runs :func:`run` in a forked child (a real process: the parent has already paid
for ``import workbench`` and pandas), and this file as a program for a few trials:

    python tests/_trading_child.py '<attempt as JSON>'
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workbench as wb  # noqa: E402
from workbench.adapters.eventlog import SQLiteEventLog  # noqa: E402
from workbench.strategies import SMACrossover  # noqa: E402
from workbench.trade import RiskApproval, TradingSession, trade  # noqa: E402

# The spec every attempt and the reference trade: short SMAs on a short window, so a
# session of ~0.25 s of CPU places 17 orders (each one a chance to die around it).
SYMBOL = "GOOG"
WINDOW = 200  # the last 200 daily bars of the sample (2012-05 .. 2013-03)
PARAMS = {"fast": 3, "slow": 10}
COMMISSION = 0.001  # fraction of the traded notional
SESSION = "kill9"  # one name for every trial and the reference: client order ids derive from it


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One process's part of a trial. ``kill_point``/``kill_at``: die at the ``kill_at``-th
    (1-based) pass through that fault point in *this* process (None: run to the end)."""

    log: str
    result: str
    approval: dict[str, Any]
    kill_point: str | None = None
    kill_at: int = 0
    fill_timing: str = "NEXT_OPEN"  # or SIGNAL_CLOSE: the decision executes at its own close

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class KillAt:
    """The ``faults`` callable: SIGKILL to this process at the chosen pass of the chosen point."""

    def __init__(self, point: str | None, at: int) -> None:
        self.point, self.at, self.seen = point, at, 0

    def __call__(self, point: str) -> None:
        if point == self.point:
            self.seen += 1
            if self.seen == self.at:
                os.kill(os.getpid(), signal.SIGKILL)


def window() -> pd.DataFrame:
    """The bars every attempt replays (the real sample data)."""
    return wb.load_prices(SYMBOL).iloc[-WINDOW:]


def session(prices: pd.DataFrame, log: SQLiteEventLog, approval: RiskApproval, faults: Any = None,
            store: Any = "default", fill_timing: str = "NEXT_OPEN") -> TradingSession:  # fmt: skip
    """Open or resume the session ``SESSION`` on ``log`` and run it to the end of ``prices``
    (a fresh strategy object each time, deployed through the approval of the backtest in
    ``store``, as a new process would)."""
    strategy = SMACrossover(**PARAMS)
    strategy.start_testing()
    return trade(strategy, prices, commission=COMMISSION, fill_timing=fill_timing, approval=approval, store=store,
                 log=log, session=SESSION, faults=faults)  # fmt: skip


def summary(sess: TradingSession) -> dict[str, Any]:
    """What a finished attempt reports: the session's own view, in JSON-able values."""
    fills = sess.fills
    p = sess.loop.portfolio
    return {
        "pid": os.getpid(),
        "steps": sess.loop.steps,
        "fills": [[r.side, float(r.quantity), float(r.price), float(r.fee), r.ts.isoformat(), r.order_id]
                  for r in fills.itertuples()],  # fmt: skip
        "equity": [[ts.isoformat(), float(v)] for ts, v in sess.equity.items()],
        "cash": p.cash,
        "positions": {i.symbol: p.quantity(i) for i in sess.loop.instruments},
        "reconciliations": [r.summary() for r in sess.loop.reconciliations],
    }


def run(attempt: Attempt, prices: pd.DataFrame | None = None, store: Any = "default") -> None:
    """One attempt (see the module notes); an error is written beside the result file so
    the harness can show it, then raised (the process exits non-zero). A forked child gets
    the parent's bars and experiment store (a MemoryStore: loading the approved run from
    the SQLite store would cost half a restart); a program loads both itself."""
    try:
        log = SQLiteEventLog(attempt.log)  # opened here, in the child: never inherited
        sess = session(window() if prices is None else prices, log, RiskApproval(**attempt.approval),
                       KillAt(attempt.kill_point, attempt.kill_at), store, attempt.fill_timing)  # fmt: skip
        out = Path(attempt.result)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary(sess)))
        os.replace(tmp, out)
        log.close()
    except BaseException:
        Path(attempt.result + ".error").write_text(traceback.format_exc())
        raise


if __name__ == "__main__":
    run(Attempt(**json.loads(sys.argv[1])))
