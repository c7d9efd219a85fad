"""Paper trading from the CLI (`workbench trade backtest|run|status`) and from the runbook
(notebooks/paper_trade.ipynb), with the YAML config of workbench/trade_config.py."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import nbformat
import numpy as np
import papermill as pm
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench import cli
from workbench.adapters.eventlog import SQLiteEventLog
from workbench.engines.recovery import read_session
from workbench.trade import trade
from workbench.trade_config import KEYS, load_trade_config, parse_trade_config

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "paper_trade.ipynb"
FILL = ["side", "quantity", "price", "fee", "ts"]
# Three years of GOOG: the first SMA(10/30) crossover fills on the 44th bar, so a split
# after 50 bars falls inside the trading, not in the warm-up.
BASE = {"session": "cli-test", "strategy": "sma_crossover", "params": {"fast": 10, "slow": 30}, "symbols": "GOOG",
        "start": "2010-01-01", "end": "2012-12-31", "commission": 0.001,
        "risk": {"max_position_weight": 1.0, "max_gross_leverage": 1.0, "long_only": True, "max_drawdown": 0.5,
                 "drawdown_action": "HALT"},
        "approval": {"run": "latest", "by": "risk desk"}}  # fmt: skip


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away experiment store (and event log) and reports folder for the CLI."""
    path = tmp_path / "experiments.sqlite"
    monkeypatch.setenv("WORKBENCH_STORE", str(path))
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    return path


def _config(tmp_path: Path, name: str = "paper.yaml", **changes: object) -> Path:
    doc = {**BASE, **changes}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({k: v for k, v in doc.items() if v is not None}, sort_keys=False))
    return path


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["trade", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _backtest(capsys: pytest.CaptureFixture[str], config: Path) -> str:
    code, out, err = _main(capsys, "backtest", str(config))
    assert code == 0, err
    return out.split("run id")[1].split()[0]


def _session_fills(store: Path, session: str) -> list[tuple]:
    """The session's fills as the event log holds them (side, quantity, price, fee, ts)."""
    import pandas as pd

    found = read_session(SQLiteEventLog(store).read(session))
    return [(f["side"], f["quantity"], f["price"], f["fee"], pd.Timestamp(f["ts"])) for f in found.fills]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One ``trade backtest``, ``trade run`` and ``trade status`` of the base config, outputs kept."""
    folder = tmp_path_factory.mktemp("ran")
    out: dict[str, object] = {"store": folder / "experiments.sqlite"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_STORE", str(out["store"]))
        mp.setenv("WORKBENCH_REPORTS_DIR", str(folder / "reports"))
        config = _config(folder)
        for name, argv in (("backtest", ["backtest", str(config)]), ("run", ["run", str(config)]),
                           ("status", ["status", "cli-test"])):  # fmt: skip
            text, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(err):
                assert cli.main(["trade", *argv]) == 0, err.getvalue()
            out[name] = text.getvalue()
    out["run_id"] = str(out["backtest"]).split("run id")[1].split()[0]
    out["stored"] = wb.SQLiteStore(out["store"]).load(out["run_id"])
    return out


def test_trade_backtest_then_run_replays_the_stored_backtest_fill_for_fill(ran):
    stored, out = ran["stored"], ran["run"]
    expected = list(stored.fills[FILL].itertuples(index=False, name=None))
    assert len(expected) > 20 and _session_fills(ran["store"], "cli-test") == expected
    steps = read_session(SQLiteEventLog(ran["store"]).read("cli-test")).steps
    assert [s.data["equity"] for s in steps] == stored.equity.tolist()  # the whole curve, exactly
    assert "(new)" in out and "reconciled with paper: no differences" in out and "LIVE" in out
    assert f"{len(expected)} fills" in out and f"{stored.equity.iloc[-1]:,.2f} USD" in out
    assert f"run id    {ran['run_id']}  (spec id {stored.id}; " in ran["backtest"]
    assert f"total return {stored.stats['total_return']:.2%}, Sharpe {stored.stats['sharpe']:.2f}" in ran["backtest"]


def test_trade_run_fills_follow_the_sma_crossover_computed_by_hand(ran):
    """Independent of the engines: SMA(10) and SMA(30) of the closes by pandas; every change
    of "fast above slow" fills at the next bar's open, paying 10 bps of the notional."""
    prices = wb.load_prices("GOOG", start="2010-01-01", end="2012-12-31")
    close = prices["Close"]
    long = (close.rolling(10).mean() > close.rolling(30).mean()).astype(int)
    change = long.diff().fillna(0).to_numpy()
    k = np.flatnonzero(change != 0)
    k = k[k + 1 < len(prices)]
    expected = [("BUY" if change[i] > 0 else "SELL", prices.index[i + 1], prices["Open"].iloc[i + 1]) for i in k]
    fills = _session_fills(ran["store"], "cli-test")
    assert [(side, ts, price) for side, _, price, _, ts in fills] == expected
    for _, qty, price, fee, _ in fills:
        assert fee == pytest.approx(0.001 * qty * price, rel=1e-12)
    holdings = np.cumsum([q if s == "BUY" else -q for s, q, *_ in fills])
    assert holdings.min() >= 0 and set(np.unique(holdings[1::2])) == {0.0}  # long-only: each sell closes the buy


def test_trade_status_reports_what_the_log_holds(ran):
    stored, out = ran["stored"], ran["status"]
    bars = wb.load_prices("GOOG", start="2010-01-01", end="2012-12-31")
    position = stored.positions.iloc[-1]
    assert out.startswith("session   cli-test: SMACrossover {'allow_short': False, 'fast': 10, 'slow': 30} on paper")
    assert f"steps     {len(bars)}, bars 2010-01-04 .. 2012-12-31" in out
    assert f"orders    {len(stored.fills)} orders (intents), {len(stored.fills)} fills" in out
    assert f"equity    {stored.equity.iloc[-1]:,.2f} (cash " in out and f"GOOG.SAMPLE {position:g})" in out
    assert "reconciliation  ok: no differences" in out and "settlement  2012-12-28: equity" in out


def test_trade_run_resumed_after_max_steps_ends_with_the_uninterrupted_fills(tmp_path, store, capsys):
    config = _config(tmp_path)
    _backtest(capsys, config)
    code, out, err = _main(capsys, "run", str(config), "--max-steps", "50", "--session", "split")
    assert code == 0, err
    assert "steps     50 (50 this run)" in out and "(new)" in out
    partial = _session_fills(store, "split")
    assert len(partial) > 0  # the split falls after the first fill
    code, out, err = _main(capsys, "run", str(config), "--session", "split")
    assert code == 0, err
    assert "resumed from its log" in out
    assert _main(capsys, "run", str(config), "--session", "whole")[0] == 0
    whole = _session_fills(store, "whole")
    assert _session_fills(store, "split") == whole and whole[: len(partial)] == partial
    log = SQLiteEventLog(store)
    equity = {s: [(r.ts, r.data["equity"]) for r in read_session(log.read(s)).steps] for s in ("split", "whole")}
    assert equity["split"] == equity["whole"]
    notes = {s: [json.loads(x)["day"] for x in (tmp_path / "reports" / "trading" / s / "notifications.log")
                 .read_text().splitlines()] for s in ("split", "whole")}  # fmt: skip
    assert notes["split"] == notes["whole"] and len(notes["whole"]) == len(equity["whole"]) - 1


def test_trade_status_of_an_unknown_session_lists_the_known_ones(tmp_path, store, capsys):
    config = _config(tmp_path)
    _backtest(capsys, config)
    assert _main(capsys, "run", str(config), "--max-steps", "5")[0] == 0
    code, out, err = _main(capsys, "status", "nope")
    assert (code, out) == (2, "")
    assert err == "error: ParameterError: unknown session 'nope'; known: cli-test\n"


@pytest.mark.parametrize(("changes", "message"), [
    ({"comission": 0.001}, "unknown key comission (known: session, strategy, params, symbols, start"),
    ({"risk": {"max_leverage": 2}}, "unknown key risk.max_leverage (known: max_position_weight"),
    ({"api_key": "canary-7f3a"}, "key 'api_key' looks like a secret, and secrets are never config keys: set the "
                                 "environment variables CCXT_<EXCHANGE>_API_KEY and CCXT_<EXCHANGE>_SECRET"),
    ({"broker": "ccxt:binance", "params": {"fast": 10, "slow": 30, "Secret": "canary-7f3a"}},
     "key 'params.Secret' looks like a secret, and secrets are never config keys: set the environment "
     "variables CCXT_BINANCE_API_KEY and CCXT_BINANCE_SECRET"),
    ({"strategy": "sma_crosover"}, "unknown strategy 'sma_crosover'; known: arbitrage"),
    ({"params": {"fast": 50, "slow": 20}}, "fast must be < slow, got fast=50, slow=20"),
    ({"symbols": ["GOOG", "SPX"]}, "strategy 'sma_crossover' trades one symbol, got symbols=['GOOG', 'SPX']"),
    ({"symbols": "XYZ"}, "symbols: 'XYZ' is not a sample symbol"),
    ({"start": "2013-01-01", "end": "2012-01-01"}, "start must be before end"),
    ({"broker": "ib"}, "broker must be 'paper' or 'ccxt:<exchange id>', got broker='ib'"),
    ({"risk": {"drawdown_action": "FLATTEN", "max_drawdown": 0.2}}, "drawdown_action must be HALT or REDUCE"),
    ({"risk": {"max_drawdown": 1.5}}, "RiskProfile: max_drawdown must be a fraction in (0, 1), got max_drawdown=1.5"),
    ({"cash": -5}, "cash"),
    ({"session": "../etc"}, "session must be 1-100 letters, digits"),
    ({"approval": {"run": "latest"}}, "approval needs run (a run id or latest) and by (the reviewer), missing 'by'"),
    ({"approval": {"run": "0123456789abcdef", "by": "risk desk"}},
     "approval.run: no stored run has run id or spec id '0123456789abcdef'"),
    ({"approval": {"run": "latest", "by": "risk desk"}, "end": "2012-06-29"}, "approval.run: latest: no stored "
                                                                              "backtest of spec id"),
    ({"approval": None}, "StrategyStateError: SMACrossover has no risk approval"),
])  # fmt: skip
def test_trade_run_refuses_a_bad_config_in_one_line_with_exit_2(tmp_path, store, capsys, changes, message):
    _backtest(capsys, _config(tmp_path, "approved.yaml"))  # the base config's backtest is stored
    _refused(capsys, store, _config(tmp_path, **changes), message)


def test_trade_run_refuses_an_approval_given_under_another_risk_profile(tmp_path, store, capsys):
    run_id = _backtest(capsys, _config(tmp_path, "approved.yaml"))  # approved with the base config's profile
    loose = _config(tmp_path, risk={"long_only": True}, approval={"run": run_id, "by": "risk desk"})
    _refused(capsys, store, loose, "StrategyStateError: the approval was given under risk profile")


def _refused(capsys: pytest.CaptureFixture[str], store: Path, config: Path, message: str) -> None:
    code, out, err = _main(capsys, "run", str(config))
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert "canary-7f3a" not in err  # a secret's value is never echoed
    assert not SQLiteEventLog(store).sessions()  # refused before the session started


def test_latest_approval_skips_a_saved_paper_session_of_the_same_spec(tmp_path, store, capsys):
    config = _config(tmp_path, end="2010-12-31")
    run_id = _backtest(capsys, config)
    cfg = load_trade_config(config)
    session = trade(**cfg.trade_arguments(store=wb.SQLiteStore(store)), log=wb.MemoryEventLog())
    saved = session.save(wb.SQLiteStore(store))
    assert session.result().id == wb.SQLiteStore(store).load(run_id).id  # same spec id: the engine is not in it
    assert wb.SQLiteStore(store).runs(session.result().id)[-1] == saved  # the newest run of it is the session
    assert cfg.find_approval(cfg.spec(), wb.SQLiteStore(store)).run_id == run_id
    paper = parse_trade_config({**BASE, "end": "2010-12-31", "approval": {"run": saved, "by": "risk desk"}})
    with pytest.raises(wb.ParameterError, match=f"run {saved} is a trading session \\(engine 'paper'\\)"):
        paper.find_approval(paper.spec(), wb.SQLiteStore(store))


def test_trade_backtest_refuses_a_bad_config_and_a_store_that_is_off(tmp_path, store, capsys, monkeypatch):
    code, _, err = _main(capsys, "backtest", str(_config(tmp_path, params={"fast": 10, "slow": 30, "window": 5})))
    assert code == 2 and err.count("\n") == 1 and "window" in err
    code, _, err = _main(capsys, "backtest", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml: cannot be read" in err
    (tmp_path / "bad.yaml").write_text("strategy: [unclosed\n")
    code, _, err = _main(capsys, "backtest", str(tmp_path / "bad.yaml"))
    assert code == 2 and "not valid YAML at line" in err
    monkeypatch.setenv("WORKBENCH_STORE", "off")
    code, _, err = _main(capsys, "backtest", str(_config(tmp_path)))
    assert code == 2 and "the experiment store is off" in err


def test_trade_run_max_steps_must_be_positive(tmp_path, store, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["trade", "run", str(_config(tmp_path)), "--max-steps", "0"])
    assert exc.value.code == 2 and "expected a number >= 1, got 0" in capsys.readouterr().err


def test_sample_config_parses_into_the_trade_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_REPORTS_DIR", str(tmp_path / "reports"))
    cfg = load_trade_config(ROOT / "notebooks" / "paper_trade.yaml")
    assert (cfg.strategy, cfg.symbols, cfg.broker, cfg.approval.run) == ("sma_crossover", ("GOOG",), "paper", "latest")
    assert cfg.risk == wb.RiskProfile(limits=(wb.MaxPositionWeight(limit=1.0), wb.MaxGrossLeverage(limit=1.0),
                                              wb.LongOnly()), max_drawdown=0.5, drawdown_action="HALT")  # fmt: skip
    assert cfg.notify_path() == tmp_path / "reports" / "trading" / "paper-sma-goog" / "notifications.log"
    spec = cfg.spec()
    assert spec.strategy == wb.SMACrossover(fast=10, slow=30) and spec.commission == wb.PercentOfNotional(rate=0.001)
    assert (spec.data.start[:10], spec.data.end[:10]) == ("2006-01-03", "2013-03-01")


def test_config_for_a_portfolio_strategy_takes_a_symbol_list_and_slippage_in_bps():
    cfg = parse_trade_config({"strategy": "xs_momentum", "params": {"top_k": 1}, "symbols": ["goog", "spx"],
                              "slippage_bps": 5, "notify": "out/n.log"}, folder=Path("/cfg"))  # fmt: skip
    assert cfg.symbols == ("GOOG", "SPX") and cfg.execution["slippage"] == wb.FixedBps(bps=5)
    assert cfg.notify_path("any") == Path("/cfg/out/n.log")  # relative to the config's folder
    with pytest.raises(wb.ParameterError, match=r"portfolio strategy: symbols must list two or more"):
        parse_trade_config({"strategy": "xs_momentum", "symbols": "GOOG"})


_NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(word=st.sampled_from(["api_key", "apiKey", "SECRET", "password", "passphrase", "private_key", "token"]),
       prefix=_NAME, shape=st.lists(st.sampled_from(["map", "list"]), max_size=3),
       value=st.from_regex(r"CANARY[0-9]{4,12}", fullmatch=True))  # fmt: skip
def test_a_secret_key_anywhere_is_refused_naming_its_place_without_echoing_its_value(word, prefix, shape, value):
    node: object = {f"{prefix}_{word}": value}
    where = f"{prefix}_{word}"
    for level in reversed(shape):  # wrap it in mappings and lists, innermost first
        node, where = ({"inner": node}, f"inner.{where}") if level == "map" else ([node], f"[0].{where}")
    doc = {**BASE, "params": {"fast": 10, "slow": 30, "nested": node}}
    with pytest.raises(wb.ParameterError, match="looks like a secret") as exc:
        parse_trade_config(doc)
    assert f"key 'params.nested.{where}'".replace(".[", "[") in str(exc.value) and value not in str(exc.value)


@settings(max_examples=40, deadline=None)
@given(key=_NAME.filter(lambda k: k not in KEYS and not any(w in k for w in ("key", "secret", "passw", "token"))))
def test_an_unknown_key_is_refused_naming_it_and_the_known_ones(key):
    with pytest.raises(wb.ParameterError, match=f"unknown key {key} \\(known: {', '.join(KEYS)}\\)"):
        parse_trade_config({**BASE, key: 1})


@pytest.mark.notebooks
def test_paper_trade_runbook_replays_its_backtest_and_resumes_a_named_session(tmp_path, store):
    small = {"start": "2010-01-01", "end": "2010-12-31", "session": "nb-run"}
    texts = []
    for steps in (100, 0):  # 100 bars, then the rest of the same session
        out = tmp_path / f"paper_{steps}.ipynb"
        pm.execute_notebook(str(NOTEBOOK), str(out), parameters={**small, "max_steps": steps}, progress_bar=False,
                            cwd=str(NOTEBOOK.parent), kernel_name="python3")  # fmt: skip
        nb = nbformat.read(out, as_version=4)
        texts.append("".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                             if o.output_type == "stream"))  # fmt: skip
        assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert all("fills equal: True; max |equity difference|: 0.00e+00" in t for t in texts)
    assert "100 steps this run" in texts[0] and "reconciled with paper: no differences" in texts[1]
    bars = len(wb.load_prices("GOOG", start="2010-01-01", end="2010-12-31"))
    assert f"'nb-run' on paper: {bars} steps" in texts[1] and f"{bars - 100} steps this run" in texts[1]
    assert read_session(SQLiteEventLog(store).read("nb-run")).steps[-1].data["equity"] > 0


def test_run_with_risk_report_keeps_the_session_and_reviews_it_with_the_risk_runbook(tmp_path, store, capsys,
                                                                                     monkeypatch):  # fmt: skip
    from workbench import report

    calls = []

    def fake_run_report(runbook, parameters=None, **kwargs):
        calls.append((runbook, parameters))

        class Out:
            status, html, error = "ok", tmp_path / "report.html", None

        return Out()

    monkeypatch.setattr(report, "run_report", fake_run_report)
    config = _config(tmp_path, end="2010-12-31")
    _backtest(capsys, config)
    code, out, err = _main(capsys, "run", str(config), "--risk-report")
    assert code == 0, err
    [(runbook, parameters)] = calls
    assert runbook == "risk_report"
    kept = wb.SQLiteStore(store).load(parameters["run_id"])
    assert kept.spec.engine == "paper" and kept.spec.strategy.name == "SMACrossover"
    assert f"(session run {parameters['run_id']})" in out
