"""Paper and live trading from a notebook or the CLI: ``wb.trade`` and the deploy rule.

The flow is the original design's: **backtest → risk approval → deploy**. A strategy goes
live only from TESTING, with a :class:`RiskApproval` of a *stored* backtest of the same
strategy under the same risk profile (:func:`approve` makes one from a result). Then
:func:`trade` runs its spec through the :class:`~workbench.engines.live.TradingLoop`:

- ``broker="paper"`` — the :class:`~workbench.trading.paper.PaperBroker` (the simulated
  broker's rules), ``"ccxt:<exchange>"`` — :class:`~workbench.adapters.ccxt_broker.CcxtBroker`
  on the exchange's sandbox, keys from the environment only; or a factory
  ``(portfolio, bus) -> Venue``;
- ``feed`` — a symbol or OHLCV frame/panel (replayed), or any :class:`~workbench.trading.feeds.Feed`;
- ``log`` — the event log: by default the experiment store's file (``WORKBENCH_STORE``).

Running the same session again resumes it from its log (see :mod:`workbench.engines.recovery`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.api import ENGINES, bind, data_id, make_spec, prepare_prices, resolve_store, versions
from workbench.config import store_path
from workbench.engines.live import TradingLoop, VenueFactory
from workbench.engines.recovery import fills_of, open_session
from workbench.errors import ParameterError, StrategyStateError
from workbench.strategy.base import Strategy, StrategyStatus
from workbench.strategy.ids import describe, stable_id
from workbench.strategy.metrics import returns_from_equity, summary
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec
from workbench.trading.eventlog import EventLog, MemoryEventLog
from workbench.trading.events import EventBus
from workbench.trading.feeds import Feed, ReplayFeed
from workbench.trading.frames import fills_frame, orders_frame
from workbench.trading.paper import PaperBroker
from workbench.trading.portfolio import Portfolio
from workbench.trading.reconcile import ReconcilePolicy

__all__ = ["trade", "approve", "deploy", "RiskApproval", "TradingSession", "venue_factory", "default_event_log",
           "notify_to_file"]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RiskApproval:
    """A risk reviewer's sign-off: this stored backtest run, under this risk profile, may
    go live. ``profile`` is the description of the spec's RiskProfile (None: no profile)."""

    run_id: str
    strategy_id: str
    profile: Any
    approved_by: str
    note: str = ""
    at: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.approved_by, str) and self.approved_by.strip()):
            raise ParameterError(f"RiskApproval: approved_by must name the reviewer, got approved_by={self.approved_by!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "strategy_id": self.strategy_id, "profile": self.profile,
                "approved_by": self.approved_by, "note": self.note, "at": self.at}  # fmt: skip


def approve(result: BacktestResult, *, by: str, note: str = "") -> RiskApproval:
    """The approval of ``result`` (a stored backtest) for deployment, signed by ``by``."""
    return RiskApproval(run_id=result.run_id, strategy_id=result.spec.strategy.spec_id,
                        profile=describe(result.spec.risk), approved_by=by, note=note,
                        at=pd.Timestamp.now(tz="UTC").isoformat())  # fmt: skip


def deploy(spec: BacktestSpec, approval: RiskApproval | None, store: Any = "default") -> None:
    """Move the spec's strategy to LIVE: from TESTING, with an approval of a stored backtest
    of this strategy under this risk profile (a LIVE strategy stays LIVE)."""
    strategy = spec.strategy
    if strategy.status is StrategyStatus.LIVE:
        approved = getattr(strategy, "_approval", None)
        if approved is not None and approved.profile != describe(spec.risk):
            raise StrategyStateError(f"{strategy.name} went live under risk profile {approved.profile!r}, not "
                                     f"{describe(spec.risk)!r}: pause it and approve a backtest with this profile")  # fmt: skip
        return
    if strategy.status is not StrategyStatus.TESTING:
        raise StrategyStateError(f"{strategy.name} is {strategy.status.name}: only a TESTING strategy is deployed "
                                 "(strategy.start_testing() after its backtest)")  # fmt: skip
    if approval is None:
        raise StrategyStateError(f"{strategy.name} has no risk approval: wb.approve(backtest_result, by='...')")
    if approval.strategy_id != strategy.spec_id:
        raise StrategyStateError(f"the approval is for strategy id {approval.strategy_id}, not {strategy.name} "
                                 f"{strategy.params} (id {strategy.spec_id})")  # fmt: skip
    if approval.profile != describe(spec.risk):
        raise StrategyStateError(f"the approval was given under risk profile {approval.profile!r}, not "
                                 f"{describe(spec.risk)!r}: approve a backtest with this profile")  # fmt: skip
    found = resolve_store(store)
    if found is None:
        raise StrategyStateError("deploying needs the experiment store (the approved backtest must be stored)")
    stored = found.load(approval.run_id)  # RunNotFoundError names the run id
    if stored.spec.engine not in ENGINES:
        raise StrategyStateError(f"run {approval.run_id} is a {stored.spec.engine} trading session, not a backtest: "
                                 "approve a backtest run")  # fmt: skip
    if stored.spec.strategy.spec_id != strategy.spec_id:
        raise StrategyStateError(f"stored run {approval.run_id} is {stored.spec.strategy.name}, not {strategy.name}")
    strategy.go_live(reason=f"risk approval by {approval.approved_by} of run {approval.run_id}")
    object.__setattr__(strategy, "_approval", approval)  # a LIVE strategy trades only under this profile


def venue_factory(broker: str | VenueFactory, spec: BacktestSpec) -> VenueFactory:
    """``"paper"``, ``"ccxt:<exchange>"`` (sandbox) or a factory, as a factory."""
    if callable(broker):
        return broker
    if broker == "paper":
        def paper(portfolio: Portfolio, bus: EventBus) -> PaperBroker:
            return PaperBroker(portfolio, spec.commission, spec.slippage, spec.fill_timing, bus)

        return paper
    if isinstance(broker, str) and broker.startswith("ccxt:") and len(broker) > 5:
        exchange = broker[5:]

        def ccxt(portfolio: Portfolio, bus: EventBus) -> Any:
            from workbench.adapters.ccxt_broker import CcxtBroker

            return CcxtBroker(exchange, portfolio, instruments={i.symbol: i for i in spec.instruments}, bus=bus)

        return ccxt
    raise ParameterError(f"broker must be 'paper', 'ccxt:<exchange id>' or a factory, got broker={broker!r}")


def default_event_log() -> EventLog:
    """The event log in the experiment store's file; in memory when the store is off."""
    path = store_path()
    if path is None:
        return MemoryEventLog()
    from workbench.adapters.eventlog import SQLiteEventLog

    return SQLiteEventLog(path)


def notify_to_file(path: str | os.PathLike[str]) -> Callable[[dict[str, Any]], None]:
    """The default end-of-day notification: one JSON line per settlement, appended."""
    target = Path(path)

    def notify(snapshot: dict[str, Any]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(snapshot, sort_keys=True, default=str) + "\n"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())  # one write of one line: appends never interleave
        finally:
            os.close(fd)

    return notify


@dataclass(eq=False)
class TradingSession:
    """What a session did: its loop (portfolio, venue, log) and the tables of it."""

    loop: TradingLoop
    name: str
    steps_run: int = 0
    settlements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def equity(self) -> pd.Series:
        if not self.loop.equity:
            return pd.Series(dtype="float64", name="equity")
        ts, values = zip(*self.loop.equity, strict=True)
        return pd.Series(values, index=pd.DatetimeIndex(ts, name="timestamp"), name="equity")

    @property
    def fills(self) -> pd.DataFrame:
        """Every fill of the session, in log order (across restarts: the log's, not the process's)."""
        instruments = {i.symbol: i for i in self.loop.instruments}
        return fills_frame(fills_of(self.loop.log.read(self.name), instruments))

    @property
    def orders(self) -> pd.DataFrame:
        return orders_frame(self.loop.all_orders())

    @property
    def trades(self) -> pd.DataFrame:
        return self.loop.portfolio.trades_frame()

    @property
    def positions(self) -> pd.Series | pd.DataFrame:
        """Signed quantity held at each step's close (a Series for one instrument)."""
        cols = [i.symbol for i in self.loop.instruments]
        frame = pd.DataFrame(self.loop.positions, index=self.equity.index, columns=cols, dtype="float64")
        return frame[cols[0]] if self.loop.kind != "weights" else frame

    def result(self) -> BacktestResult:
        """The session as a run (engine ``paper``/the venue's name, the bars it traded), with
        the backtests' stats and tables: what the store, the dashboards and the risk runbook read."""
        loop = self.loop
        frame = loop.history.frame(panel=loop.kind == "weights", full=True)
        names = loop.history.names
        spec = loop.spec.replace(engine=_engine_name(loop.venue.name), data=data_id(frame, names))
        equity, trades = self.equity, self.trades
        stats = summary(equity, trades["pnl"], spec.cash, spec.periods_per_year, spec.risk_free_rate,
                        positions=self.positions, fills=self.fills)  # fmt: skip
        return BacktestResult(equity=equity, returns=returns_from_equity(equity), orders=self.orders, fills=self.fills,
                              trades=trades, positions=self.positions, stats=stats, spec=spec,
                              versions=versions(spec.engine, spec.strategy),
                              risk=None if loop.monitor is None else loop.monitor.result())  # fmt: skip

    def save(self, store: Any = "default") -> str:
        """Keep :meth:`result` in the experiment store; its run id (a later save of a longer
        session is another run: its bars differ)."""
        found = resolve_store(store)
        if found is None:
            raise ParameterError("the experiment store is off: pass store=wb.SQLiteStore(path)")
        return found.save(self.result())

    @property
    def reconciliation(self) -> str:
        return "; ".join(r.summary() for r in self.loop.reconciliations) or "not reconciled"

    def __repr__(self) -> str:
        p = self.loop.portfolio
        return (f"<TradingSession {self.name!r} on {self.loop.venue.name}: {self.loop.steps} steps, "
                f"{len(self.loop.venue.orders)} orders, equity {p.equity:,.2f} {p.currency}>")  # fmt: skip


def trade(
    strategy: Any,
    feed: Feed | pd.DataFrame | str | list[str],
    params: dict[str, Any] | None = None,
    *,
    broker: str | VenueFactory = "paper",
    approval: RiskApproval | None = None,
    session: str | None = None,
    log: EventLog | None = None,
    store: Any = "default",
    history: int | None = None,
    max_steps: int | None = None,
    policy: ReconcilePolicy | None = None,
    on_pause: str = "cancel",
    reconcile_every: int = 0,
    notify: Callable[[dict[str, Any]], None] | None = None,
    faults: Callable[[str], None] | None = None,
    progress: bool = False,
    **execution: Any,
) -> TradingSession:
    """Trade ``strategy`` (a name, class, instance or spec, as :func:`wb.backtest` takes)
    on ``feed`` through ``broker``; see the module notes. Returns the session.

    The strategy must be LIVE, or TESTING with an ``approval`` (then it is deployed here).
    ``session`` names the session (default: strategy, params id, symbols and broker); a
    session that exists in ``log`` is resumed from it.
    """
    if params and isinstance(getattr(strategy, "strategy", strategy), Strategy):
        raise ParameterError("params= would make a new strategy (in DRAFT) from this instance: set its "
                             "parameters on the instance you approved, or pass a strategy name with params")  # fmt: skip
    spec = make_spec(strategy, params, **execution)
    feed_obj, spec = _feed_and_spec(spec, feed)
    deploy(spec, approval, store)
    name = session or _session_name(spec, broker)
    settlements: list[dict[str, Any]] = []

    def on_day_end(snapshot: dict[str, Any]) -> None:
        settlements.append(snapshot)
        if notify is not None:
            notify(snapshot)

    kwargs: dict[str, Any] = {"history": history, "on_pause": on_pause, "policy": policy,
                              "reconcile_every": reconcile_every, "on_day_end": on_day_end}  # fmt: skip
    if faults is not None:
        kwargs["faults"] = faults
    loop = TradingLoop(spec, venue_factory(broker, spec), feed_obj, log or default_event_log(), session=name, **kwargs)
    open_session(loop)
    bar = _progress(progress, feed_obj, loop)
    ran = loop.run(max_steps, progress=bar)
    return TradingSession(loop=loop, name=name, steps_run=ran, settlements=settlements)


def _feed_and_spec(spec: BacktestSpec, feed: Any) -> tuple[Feed, BacktestSpec]:
    """A feed and the spec bound to its instruments (replayed bars bind like a backtest's)."""
    if isinstance(feed, str | list | tuple | pd.DataFrame):
        frame, symbols = prepare_prices(spec.strategy, feed)
        return ReplayFeed(frame), bind(spec, frame, symbols)
    if not isinstance(feed, Feed):
        raise ParameterError(f"feed must be a symbol, an OHLCV frame or panel, or a Feed, got {type(feed).__name__}")
    if not spec.instruments:
        raise ParameterError("a live feed needs the instruments in the spec: pass instrument= (or a bound spec)")
    return feed, spec


def _engine_name(venue: str) -> str:
    """``paper``, ``ccxt:binance``...: the venue's name without its qualifiers."""
    return venue.split(" ")[0]


def _session_name(spec: BacktestSpec, broker: Any) -> str:
    venue = broker if isinstance(broker, str) else getattr(broker, "__name__", "venue")
    symbols = "+".join(i.symbol for i in spec.instruments)
    return f"{spec.strategy.name}-{stable_id(spec.strategy.identity())[:8]}-{symbols}-{venue}"


def _progress(enabled: bool, feed: Feed, loop: TradingLoop) -> Callable[[int], None] | None:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    total = len(feed) if hasattr(feed, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(total=total, initial=loop.steps, desc=loop.session, unit="bar")
    return lambda n: bar.update(1)
