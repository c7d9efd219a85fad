"""A paper-trading session as one YAML file, validated into the arguments of :func:`workbench.trade.trade`.

``workbench trade backtest CONFIG`` and ``workbench trade run CONFIG`` read it (see
``notebooks/paper_trade.yaml``). Every key is optional but ``strategy`` and ``symbols``:

- ``session`` — the session's name in the event log (letters, digits, ``. _ + -``; default
  ``<strategy>-<symbols>-<broker>``); running the same session again resumes it;
- ``strategy``, ``params`` — a registry name (``wb.STRATEGIES``) and its parameters (a mapping);
- ``symbols`` — one sample symbol, or a list (a portfolio strategy takes a list);
- ``start``, ``end`` — inclusive bounds on the replayed sample bars (naive dates are UTC);
- ``broker`` — ``paper`` (default) or ``ccxt:<exchange id>`` (its sandbox);
- ``cash`` (10,000, the instrument's currency), ``commission`` (a fraction of notional per
  fill: 0.001 = 10 bps; default 0), ``slippage_bps`` (basis points against every fill, then
  clamped into the bar; default 0), ``size`` (``all``, a fraction of equity in (0, 1] or a
  whole quantity), ``fill_timing`` (``NEXT_OPEN`` or ``SIGNAL_CLOSE``);
- ``risk`` — ``max_position_weight`` and ``max_gross_leverage`` (fractions of equity: 1.0 =
  100 %), ``long_only`` (true/false), ``max_drawdown`` (a fraction in (0, 1) below the
  running peak of closes) and ``drawdown_action`` (``HALT`` or ``REDUCE``): a RiskProfile;
- ``approval`` — ``{run: <run id> | latest, by: <reviewer>, note: ...}``: ``latest`` is the
  newest stored backtest of this exact spec (strategy, parameters, costs, risk and bars);
- ``history`` (bars the strategy sees; default all), ``on_pause`` (``cancel`` or ``keep``),
  ``reconcile_every`` (steps between reconciliations; 0: only at start);
- ``notify`` — the settlement notification file; relative to the config's folder (default
  ``reports/trading/<session>/notifications.log``).

An unknown key is refused naming the known ones. Secrets are never config keys: a key like
``api_key``, ``secret`` or ``password`` anywhere in the file is refused, pointing to the
environment variables the ccxt broker reads (``CCXT_<EXCHANGE>_API_KEY``, ``_SECRET``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.api import ENGINES, bind, make_spec, prepare_prices, resolve_store, resolve_strategy
from workbench.config import read_yaml, reports_dir
from workbench.data import load_prices, sample_symbols
from workbench.errors import ParameterError, first_line
from workbench.risk.limits import Limit, LongOnly, MaxGrossLeverage, MaxPositionWeight
from workbench.risk.profile import RiskProfile
from workbench.strategy.base import Strategy
from workbench.strategy.result import BacktestResult
from workbench.strategy.spec import BacktestSpec
from workbench.trade import RiskApproval, approve, notify_to_file
from workbench.trading.costs import FixedBps
from workbench.trading.values import utc_timestamp

__all__ = ["TradeConfig", "ApprovalRef", "load_trade_config", "parse_trade_config", "check_session_name",
           "KEYS", "RISK_KEYS", "APPROVAL_KEYS"]  # fmt: skip

KEYS = ("session", "strategy", "params", "symbols", "start", "end", "broker", "cash", "commission", "slippage_bps",
        "size", "fill_timing", "risk", "approval", "history", "on_pause", "reconcile_every", "notify")  # fmt: skip
RISK_KEYS = ("max_position_weight", "max_gross_leverage", "long_only", "max_drawdown", "drawdown_action")
APPROVAL_KEYS = ("run", "by", "note")
#: ``approval.run: latest``: the newest stored backtest of the config's spec id
LATEST = "latest"

# Names a credential goes by at the venues ccxt speaks to (apiKey, secret, password, uid...).
_SECRET = re.compile(r"api[_-]?key|secret|passw(or)?d|passphrase|private[_-]?key|token|credential", re.IGNORECASE)
_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_BROKER = re.compile(r"paper|ccxt:[a-z0-9_]+")


@dataclass(frozen=True, kw_only=True)
class ApprovalRef:
    """The risk approval a config names: a stored run (or ``latest``) and its reviewer."""

    run: str
    by: str
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("run", "by"):
            value = getattr(self, name)
            if not (isinstance(value, str) and value.strip()):
                raise ParameterError(f"approval.{name} must be a non-empty text, got {name}={value!r}")
        if not isinstance(self.note, str):
            raise ParameterError(f"approval.note must be a text, got note={self.note!r}")


@dataclass(frozen=True, kw_only=True)
class TradeConfig:
    """A validated paper-trading config (see the module notes); build it with
    :func:`load_trade_config` or :func:`parse_trade_config`.

    >>> cfg = parse_trade_config({"strategy": "sma_crossover", "params": {"fast": 10, "slow": 30},
    ...                           "symbols": "goog", "commission": 0.001})
    >>> cfg.symbols, cfg.session, cfg.execution["commission"]
    (('GOOG',), 'sma_crossover-GOOG-paper', 0.001)
    """

    strategy: str
    symbols: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    session: str = ""
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    broker: str = "paper"
    cash: float = 10_000.0
    commission: float = 0.0
    slippage_bps: float = 0.0
    size: Any = "all"
    fill_timing: str = "NEXT_OPEN"
    risk: RiskProfile | None = None
    approval: ApprovalRef | None = None
    history: int | None = None
    on_pause: str = "cancel"
    reconcile_every: int = 0
    notify: Path | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.broker, str) and _BROKER.fullmatch(self.broker)):
            raise ParameterError(f"broker must be 'paper' or 'ccxt:<exchange id>', got broker={self.broker!r}")
        object.__setattr__(self, "session", check_session_name(self.session or self._default_session()))
        kind = self.strategy_instance().kind  # the name and parameters are checked here
        if kind == "bar":
            raise ParameterError(f"strategy {self.strategy!r} is a per-bar callback strategy: the trading loop runs "
                                 "signal and portfolio strategies")  # fmt: skip
        if kind != "weights" and len(self.symbols) != 1:
            raise ParameterError(f"strategy {self.strategy!r} trades one symbol, got symbols={list(self.symbols)}")
        if kind == "weights" and len(self.symbols) < 2:
            raise ParameterError(f"strategy {self.strategy!r} is a portfolio strategy: symbols must list two or more, "
                                 f"got symbols={list(self.symbols)}")  # fmt: skip
        if self.on_pause not in ("cancel", "keep"):
            raise ParameterError(f"on_pause must be 'cancel' or 'keep', got on_pause={self.on_pause!r}")
        _whole("reconcile_every", self.reconcile_every, 0)
        if self.history is not None:
            _whole("history", self.history, 1)
        if not (_number(self.slippage_bps) and 0 <= self.slippage_bps < 10_000):
            raise ParameterError(f"slippage_bps must be basis points in [0, 10000), got slippage_bps={self.slippage_bps!r}")
        make_spec(self.strategy_instance(), **self.execution)  # cash, commission, size, fill timing

    def _default_session(self) -> str:
        return f"{self.strategy}-{'+'.join(self.symbols)}-{self.broker.replace(':', '-')}"

    # -- what trade() gets ----------------------------------------------------------------
    def strategy_instance(self) -> Strategy:
        """A new instance of the strategy (DRAFT: each run moves its own through the lifecycle)."""
        return resolve_strategy(self.strategy, dict(self.params))

    @property
    def execution(self) -> dict[str, Any]:
        """The spec's keywords: cash, costs, sizing, fill timing and the risk profile."""
        return {"cash": self.cash, "commission": self.commission, "size": self.size, "fill_timing": self.fill_timing,
                "slippage": FixedBps(bps=float(self.slippage_bps)) if self.slippage_bps else None,
                "risk": self.risk}  # fmt: skip

    def prices(self) -> pd.DataFrame:
        """The sample bars the session replays (one frame, or a panel for several symbols)."""
        what: str | list[str] = self.symbols[0] if len(self.symbols) == 1 else list(self.symbols)
        return load_prices(what, start=self.start, end=self.end, progress=False)

    def spec(self, prices: pd.DataFrame | None = None, strategy: Strategy | None = None) -> BacktestSpec:
        """The bound spec of this config on ``prices`` (default :meth:`prices`): its ``id`` is
        what ``approval.run: latest`` looks up."""
        strat = strategy or self.strategy_instance()
        frame, symbols = prepare_prices(strat, self.prices() if prices is None else prices)
        return bind(make_spec(strat, **self.execution), frame, symbols)

    def notify_path(self, session: str | None = None) -> Path:
        """Where settlements are notified: ``notify``, else ``reports/trading/<session>/notifications.log``."""
        return self.notify or reports_dir() / "trading" / (session or self.session) / "notifications.log"

    def find_approval(self, spec: BacktestSpec, store: Any = "default") -> RiskApproval | None:
        """The config's approval as a :class:`RiskApproval` of its stored run (None: none named).
        :func:`workbench.trade.deploy` then checks it against the strategy and risk profile."""
        if self.approval is None:
            return None
        found = resolve_store(store)
        if found is None:
            raise ParameterError("approval needs the experiment store, which is off (WORKBENCH_STORE=off)")
        if self.approval.run == LATEST:
            result = _latest_backtest(found, spec)
        else:
            try:
                result = found.load(self.approval.run)
            except ParameterError as exc:
                raise type(exc)(f"approval.run: {first_line(exc)}") from None
            if result.spec.engine not in ENGINES:
                raise ParameterError(f"approval.run: run {self.approval.run} is a trading session (engine "
                                     f"{result.spec.engine!r}), not a backtest: approve a backtest run")  # fmt: skip
        return approve(result, by=self.approval.by, note=self.approval.note)

    def trade_arguments(self, prices: pd.DataFrame | None = None, *, store: Any = "default",
                        session: str | None = None) -> dict[str, Any]:  # fmt: skip
        """The keyword arguments of :func:`workbench.trade.trade` for this config: the strategy
        (moved DRAFT -> TESTING here), the replayed bars, the approval found in ``store``, the
        session and its notification file, and the spec's keywords. Add ``log``,
        ``max_steps`` and ``progress`` as wanted."""
        frame = self.prices() if prices is None else prices
        strategy = self.strategy_instance()
        strategy.start_testing(reason="paper trading config")
        name = check_session_name(session) if session else self.session
        return {"strategy": strategy, "feed": frame, "broker": self.broker, "session": name, "store": store,
                "approval": self.find_approval(self.spec(frame, strategy), store), "history": self.history,
                "on_pause": self.on_pause, "reconcile_every": self.reconcile_every,
                "notify": notify_to_file(self.notify_path(name)), **self.execution}  # fmt: skip


def _latest_backtest(store: Any, spec: BacktestSpec) -> BacktestResult:
    """The newest stored *backtest* of ``spec.id``: a saved paper session of the same bars
    has the same spec id (the engine is not part of it), and is not what a reviewer approves."""
    for run_id in reversed(store.runs(spec.id)):
        result = store.load(run_id)
        if result.spec.engine in ENGINES:
            return result
    raise ParameterError(f"approval.run: latest: no stored backtest of spec id {spec.id} ({spec.label}); "
                         "run `workbench trade backtest CONFIG` first")  # fmt: skip


def check_session_name(name: object) -> str:
    """A session name: 1-100 of letters, digits, ``. _ + -``, starting with a letter or digit
    (it names a folder under ``reports/trading/``)."""
    if not (isinstance(name, str) and _SESSION.fullmatch(name)):
        raise ParameterError(f"session must be 1-100 letters, digits, '.', '_', '+' or '-' (starting with a letter "
                             f"or digit), got session={name!r}")  # fmt: skip
    return name


def load_trade_config(path: str | Path) -> TradeConfig:
    """The config in the YAML file ``path``; every problem is a one-line :class:`ParameterError`
    naming the file, the key and the value."""
    path = Path(path)
    doc = read_yaml(path, "config")
    return parse_trade_config(doc, where=f"config {path}", folder=path.parent)


def parse_trade_config(doc: object, *, where: str = "config", folder: Path | None = None) -> TradeConfig:
    """A :class:`TradeConfig` from a mapping (a parsed YAML document); ``folder`` is what a
    relative ``notify`` path is relative to (default: the working directory)."""
    try:
        return _parse(doc, folder)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {first_line(exc)}") from None


def _parse(doc: object, folder: Path | None) -> TradeConfig:
    if not isinstance(doc, dict):
        raise ParameterError(f"must be a mapping of keys ({', '.join(KEYS)}), got {type(doc).__name__}")
    _refuse_secrets(doc, "", str(doc.get("broker", "")))
    _known(doc, KEYS, "")
    for key in ("strategy", "symbols"):
        if key not in doc:
            raise ParameterError(f"missing key {key!r}")
    fields: dict[str, Any] = {k: v for k, v in doc.items() if v is not None}
    fields["strategy"] = _text("strategy", doc["strategy"]).strip().lower()
    fields["symbols"] = _symbols(doc["symbols"])
    fields["params"] = _mapping("params", doc.get("params") or {})
    start, end = _date("start", doc.get("start")), _date("end", doc.get("end"))
    if start is not None and end is not None and start >= end:
        raise ParameterError(f"start must be before end, got start={start}, end={end}")
    fields["start"], fields["end"] = start, end
    if doc.get("risk") is not None:
        fields["risk"] = _risk(_mapping("risk", doc["risk"]))
    if doc.get("approval") is not None:
        approval = _mapping("approval", doc["approval"])
        _known(approval, APPROVAL_KEYS, "approval.")
        for key in ("run", "by"):
            if key not in approval:
                raise ParameterError(f"approval needs run (a run id or latest) and by (the reviewer), missing {key!r}")
        if isinstance(approval.get("run"), int | float):  # YAML reads an all-digit id as a number (0123 as octal)
            raise ParameterError(f"approval.run must be a quoted run id or latest, got run={approval['run']!r}")
        fields["approval"] = ApprovalRef(**approval)
    if doc.get("notify") is not None:
        target = Path(_text("notify", doc["notify"])).expanduser()
        fields["notify"] = target if target.is_absolute() or folder is None else folder / target
    for key in ("session", "broker", "on_pause", "fill_timing"):
        if key in fields:
            _text(key, fields[key])
    for key in ("cash", "commission", "slippage_bps"):
        if key in fields and not _number(fields[key]):
            raise ParameterError(f"{key} must be a number, got {key}={fields[key]!r}")
    return TradeConfig(**fields)


def _refuse_secrets(node: object, path: str, broker: str) -> None:
    """Refuse any key that looks like a credential, wherever it is (its value is never echoed)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = f"{path}[{key}]" if isinstance(node, list) else f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _SECRET.search(key):
            ex = broker[5:].upper() if broker.startswith("ccxt:") and len(broker) > 5 else "<EXCHANGE>"
            raise ParameterError(f"key {here!r} looks like a secret, and secrets are never config keys: set the "
                                 f"environment variables CCXT_{ex}_API_KEY and CCXT_{ex}_SECRET (and "
                                 f"CCXT_{ex}_PASSWORD if the venue needs one)")  # fmt: skip
        _refuse_secrets(value, here, broker)


def _known(mapping: dict[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in mapping:
        if key not in known:
            raise ParameterError(f"unknown key {prefix}{key!s} (known: {', '.join(known)})")


def _text(name: str, value: object) -> str:
    if not (isinstance(value, str) and value.strip()):
        raise ParameterError(f"{name} must be a non-empty text, got {name}={value!r}")
    return value


def _mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ParameterError(f"{name} must be a mapping of name: value, got {name}={value!r}")
    return dict(value)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{name} must be a whole number >= {minimum}, got {name}={value!r}")
    return value


def _symbols(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
        raise ParameterError(f"symbols must be a sample symbol or a list of them, got symbols={value!r}")
    out = tuple(dict.fromkeys(s.strip().upper() for s in items))
    known = sample_symbols()
    for sym in out:
        if sym not in known:
            raise ParameterError(f"symbols: {sym!r} is not a sample symbol ({', '.join(known)})")
    return out


def _date(name: str, value: object) -> pd.Timestamp | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return utc_timestamp(value, name, ParameterError)


def _risk(risk: dict[str, Any]) -> RiskProfile:
    """The ``risk`` mapping as a RiskProfile (limits in the order of :data:`RISK_KEYS`)."""
    _known(risk, RISK_KEYS, "risk.")
    limits: list[Limit] = []
    for key, cls in (("max_position_weight", MaxPositionWeight), ("max_gross_leverage", MaxGrossLeverage)):
        if risk.get(key) is not None:
            if not _number(risk[key]):
                raise ParameterError(f"risk.{key} must be a fraction of equity (1.0 = 100 %), got {key}={risk[key]!r}")
            limits.append(cls(limit=float(risk[key])))
    long_only = risk.get("long_only", False)
    if not isinstance(long_only, bool):
        raise ParameterError(f"risk.long_only must be true or false, got long_only={long_only!r}")
    if long_only:
        limits.append(LongOnly())
    action = risk.get("drawdown_action", "REDUCE")
    if not (isinstance(action, str) and action.strip().upper() in ("HALT", "REDUCE")):
        raise ParameterError(f"risk.drawdown_action must be HALT or REDUCE (the trading loop does not FLATTEN), "
                             f"got drawdown_action={action!r}")  # fmt: skip
    return RiskProfile(limits=tuple(limits), max_drawdown=risk.get("max_drawdown"),
                       drawdown_action=action.strip().upper())  # fmt: skip
