"""``workbench`` command line: demo, run a runbook, serve the dashboard, list the sample.

    workbench demo                       run the backtest runbook on GOOG into reports/
    workbench run NOTEBOOK -p fast 20 -r symbol SPX [--timeout SECONDS]
    workbench reports                    list the runs in reports/ (newest first)
    workbench schedule JOBS.yaml [--once]  run scheduled runbook jobs
    workbench dashboard [portfolio|risk|lab] [--port 8866] [--no-token] [--max-kernels 4] [--warm 1] [--preheat]
    workbench symbols                    list the offline sample
    workbench data fetch SYMBOL... [--source yfinance] [--start D] [--end D] [--timeframe 1d]
    workbench data list                  what the local price cache holds
    workbench data show SYMBOL [--source S] [--plot out.html]
    workbench data validate PATH|SYMBOL  check a CSV/Parquet file or a cached series
    workbench trade backtest CONFIG.yaml run and store the backtest a paper session is approved on
    workbench trade run CONFIG.yaml [--max-steps N] [--session NAME]  deploy and replay (again: resume)
    workbench trade status SESSION       what a session's event log holds

Exit status: 0 success, 1 an error (one line: its type and message, which names the rule
and the offending value; ``--debug`` shows the traceback) or a failed run, 2 bad usage
(for ``run``: an unknown parameter, a bad value or a missing notebook, in one line).

Each ``run`` writes one new folder ``reports/<runbook>/<UTC time>-<id>/`` (``report.html``,
``report.ipynb``, ``run.json``) and regenerates ``reports/index.html``; there is no ``-o``:
every run has its own folder, so no run can overwrite another's files.

``-p NAME VALUE`` and ``-r NAME VALUE`` set a parameter the notebook declares in its
``parameters`` cell; VALUE is parsed by the declared type (``-p fast 20`` is an int,
``-r symbol 0050`` stays the string ``"0050"``). An unknown name or a value of the wrong
type is refused before anything runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Any

from workbench.config import notebooks_dir, reports_dir

__all__ = ["main"]

#: ``workbench dashboard NAME`` → the notebook it serves (in notebooks/)
DASHBOARDS = {"portfolio": "dashboard_portfolio.ipynb", "risk": "dashboard_risk.ipynb", "lab": "dashboard_lab.ipynb"}


def _params(args: argparse.Namespace) -> tuple[dict[str, object], frozenset[str], frozenset[str]]:
    """The ``-p`` and ``-r`` pairs (a later one wins; ``-r`` after ``-p``), and which is which."""
    out: dict[str, object] = {}
    for name, value in (args.param or []) + (args.raw or []):
        out[name] = value
    raw = frozenset(name for name, _ in args.raw or [])
    return out, frozenset(out) - raw, raw


def _run(notebook: str | Path, params: dict[str, object], text: frozenset[str] = frozenset(),
         raw: frozenset[str] = frozenset(), timeout: float | None = None, debug: bool = False) -> int:  # fmt: skip
    """One report run: exit 2 (one line) for bad usage, 1 for a failed run, 0 with its paths."""
    from workbench.errors import ParameterError, ReportPathError, first_line
    from workbench.report import run_report
    from workbench.report_index import INDEX_FILE

    try:
        run = run_report(notebook, params, timeout=timeout, text_parameters=text, raw_parameters=raw,
                         progress=sys.stderr.isatty())  # fmt: skip
    except ReportPathError:
        raise  # the reports folder moved under the run: an error (1), not bad usage
    except ParameterError as exc:
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {first_line(exc, repr(exc))}", file=sys.stderr)
        return 2
    if not run.ok:
        kept = run.notebook or run.folder
        print(f"run {run.status}: {run.error}; the partial notebook is kept in {kept}", file=sys.stderr)
        return 1
    print(f"report:  {run.html}")
    print(f"folder:  {run.folder}  ({run.seconds:.1f} s)")
    print(f"index:   {run.folder.parents[1] / INDEX_FILE}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Replace this process with Voila (so Ctrl-C and SIGTERM reach it: no orphaned server)."""
    from workbench.adapters.voila_server import SECRET_ENVS, check_token, new_token, voila_command
    from workbench.notebook_params import load_notebook

    notebook = args.notebook or notebooks_dir() / DASHBOARDS[args.name]
    load_notebook(notebook)  # a missing file or a non-notebook is refused here, not by Voila
    chosen = os.environ.get("WORKBENCH_DASHBOARD_TOKEN")
    token = None if args.no_token else (check_token(chosen) if chosen else new_token())
    launch = voila_command(notebook, args.port, token=token, max_kernels=args.max_kernels,
                           preheat=args.preheat, warm=args.warm)  # fmt: skip
    if token is None:
        print("warning: serving WITHOUT a token: any local user or web page can start kernels", file=sys.stderr)
    print(f"serving {notebook.name} on {launch.url}  (Ctrl-C to stop)", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENVS}
    os.execve(launch.argv[0], launch.argv, {**env, **launch.env})
    return 0  # pragma: no cover - execve does not return


def _reports() -> int:
    """Every run folder, newest first (an unfinished one, killed or still going, too)."""
    import pandas as pd

    from workbench.report import folder_started, scan_runs

    rows = sorted(((run.started if run else folder_started(folder), folder, run) for folder, run in scan_runs()),
                  key=lambda r: (pd.Timestamp.min.tz_localize("UTC") if pd.isna(r[0]) else r[0], r[1].name),
                  reverse=True)  # fmt: skip
    if not rows:
        print(f"no reports in {reports_dir()}")
    for started, folder, run in rows:
        stamp = "?" if pd.isna(started) else f"{started:%Y-%m-%d %H:%M:%S}Z"
        status, seconds = (run.status, f"{run.seconds:7.1f} s") if run else ("unfinished", " " * 9)
        print(f"{folder.parent.name:16s} {status:10s} {stamp}  {seconds}  {folder}")
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _schedule_module() -> object:
    """``workbench.schedule``, or a string saying why it cannot be loaded (it is optional:
    the CLI keeps working without it)."""
    try:
        from workbench import schedule
    except ModuleNotFoundError as exc:
        return "" if exc.name == "workbench.schedule" else f" ({type(exc).__name__}: {exc})"
    except ImportError as exc:
        return f" ({type(exc).__name__}: {exc})"
    return schedule


def _schedule_parser(sub: argparse._SubParsersAction) -> None:
    """``schedule``: arguments from ``workbench.schedule`` when it is there, else a stub that
    accepts the documented ones and says it is not available."""
    parser = sub.add_parser("schedule", help="run the runbook jobs of a YAML file on their cron schedule")
    schedule = _schedule_module()
    if not isinstance(schedule, str):
        schedule.add_arguments(parser)
        return
    parser.add_argument("jobs", nargs="?", help="the jobs file (YAML)")
    parser.add_argument("--once", action="store_true", help="run the due jobs once and exit")


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1..65535, got {text}")
    return value


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {text}")
    return value


def _positive(text: str) -> int:
    return _whole(text, 1)


def _non_negative(text: str) -> int:
    return _whole(text, 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run every runbook once with small parameters (a schedule, run now) into "
                                       "reports/ and update reports/index.html")  # fmt: skip
    demo.add_argument("--jobs", type=Path, default=notebooks_dir() / "demo.yaml",
                      help="the jobs file to run once, now (default: notebooks/demo.yaml)")

    run = sub.add_parser("run", help="execute a parameterised notebook into a new report folder")
    run.add_argument("notebook", help="a notebook path, or a runbook name in notebooks/ (backtest)")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a declared parameter; VALUE is parsed by its declared type")
    run.add_argument("-r", "--raw", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="like -p, but an untyped parameter gets VALUE as a string")
    run.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="stop the run (recorded as 'timeout') when its cells take longer than this")  # fmt: skip

    sub.add_parser("reports", help="list the runs in reports/ (newest first)")
    _schedule_parser(sub)
    dash = sub.add_parser("dashboard", help="serve a Voila dashboard on 127.0.0.1 with a token")
    dash.add_argument("name", nargs="?", choices=sorted(DASHBOARDS), default="portfolio",
                      help="portfolio review (default), risk review, or the strategy lab")  # fmt: skip
    dash.add_argument("--port", type=_port, default=8866, help="port on 127.0.0.1 (default 8866)")
    dash.add_argument("--notebook", type=Path, default=None, help="serve this notebook instead of a named dashboard")
    dash.add_argument("--no-token", action="store_true", help="serve without authentication (unsafe)")
    dash.add_argument("--max-kernels", type=_positive, default=4,
                      help="most kernels at once, a pre-heated one included (default 4)")  # fmt: skip
    dash.add_argument("--warm", type=_non_negative, default=1,
                      help="kernels kept started with the libraries imported for the next visitors (default 1)")  # fmt: skip
    dash.add_argument("--preheat", action="store_true",
                      help="keep one kernel that has run the notebook ready for the next visitor (faster "
                           "first paint; experimental: Voila 0.5.13 sometimes serves such a page truncated)")  # fmt: skip

    sub.add_parser("symbols", help="list the offline sample symbols")
    _data_parser(sub)
    _trade_parser(sub)
    return parser


def _demo(jobs_file: Path) -> int:
    """Every job of ``jobs_file`` once, now (each member of a universe), through run_report:
    one line per run, then the index; exit 1 if any run failed."""
    from workbench.report import run_report
    from workbench.schedule import load_jobs

    failed = 0
    for job in load_jobs(jobs_file):
        for member in job.members:
            run = run_report(job.runbook, job.parameters_for(member), timeout=job.timeout)
            failed += not run.ok
            where = run.html or run.folder
            print(f"{run.status:8s} {run.seconds:6.1f} s  {job.name}{f' [{member}]' if member else ''}  {where}"
                  + (f"  ({run.error})" if run.error else ""))  # fmt: skip
    print(f"index: {reports_dir() / 'index.html'}")
    return 1 if failed else 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "data":
        return _data(args)
    if args.command == "demo":
        return _demo(args.jobs)
    if args.command == "run":
        params, text, raw = _params(args)
        return _run(args.notebook, params, text, raw, timeout=args.timeout, debug=args.debug)
    if args.command == "reports":
        return _reports()
    if args.command == "schedule":
        schedule = _schedule_module()
        if isinstance(schedule, str):
            print(f"schedule: not available{schedule}", file=sys.stderr)
            return 2
        return schedule.command(args)
    if args.command == "dashboard":
        return _serve(args)
    if args.command == "trade":
        return _trade(args)
    if args.command == "symbols":
        from workbench.data import sample_manifest

        for sym, meta in sorted(sample_manifest()["instruments"].items()):
            print(
                f"{sym:8s} {meta['timeframe']:3s} {meta['start'][:10]} .. {meta['end'][:10]}  {meta['name']}"
            )
        return 0
    return 2  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    """Run one command; an error is one line on stderr with exit status 1 (2 for bad usage)."""
    args = _parser().parse_args(argv)
    from workbench.errors import WorkbenchError, first_line

    try:
        return _dispatch(args)
    except (WorkbenchError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {first_line(exc, repr(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen input: still one line, the trace on demand
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {first_line(exc, repr(exc))} (rerun with --debug "
              "for the traceback, and please report it)", file=sys.stderr)  # fmt: skip
        return 1


def _data_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="fetch, list, show and validate market data")
    dsub = data.add_subparsers(dest="data_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source",
            default="sample",
            help="sample, yfinance, ccxt:<exchange>, synthetic, file:<path>",
        )
        p.add_argument(
            "--timeframe", default=None, help="1m, 5m, 1h, 1d, 1w, 1M (default: the source's)"
        )
        p.add_argument("--start", default=None)
        p.add_argument("--end", default=None)
        p.add_argument(
            "--adjusted", action="store_true", help="yfinance: split/dividend-adjusted prices"
        )
        p.add_argument("--offline", action="store_true", help="serve from the cache only")

    fetch = dsub.add_parser("fetch", help="download into the cache (only what is missing)")
    fetch.add_argument("symbols", nargs="+")
    common(fetch)
    fetch.add_argument("--refresh", action="store_true", help="re-download and replace")
    dsub.add_parser("list", help="list the cached series")
    show = dsub.add_parser("show", help="metadata, first and last bars, optional candlestick HTML")
    show.add_argument("symbol")
    common(show)
    show.add_argument("--rows", type=_positive, default=5)
    show.add_argument(
        "--plot", type=Path, default=None, help="write a candlestick/volume chart (HTML)"
    )
    val = dsub.add_parser("validate", help="validate a CSV/Parquet file, or a cached series")
    val.add_argument("target", help="a file path, or a symbol in the cache")
    val.add_argument("--tz", default=None, help="time zone of naive timestamps in the file")
    val.add_argument("--column", action="append", default=[], metavar="FILE=CANONICAL",
                     help="column mapping, e.g. --column 'Adj Close=Close'")  # fmt: skip
    val.add_argument("--dayfirst", choices=["yes", "no"], default=None,
                     help="the file's numeric dates are D/M/Y (yes) or M/D/Y (no); default: inferred")  # fmt: skip
    val.add_argument("--source", default=None)
    val.add_argument("--timeframe", default=None)


def _load_args(args: argparse.Namespace) -> dict[str, object]:
    return {"start": args.start, "end": args.end, "timeframe": args.timeframe, "source": args.source,
            "adjusted": True if args.adjusted else None, "offline": True if args.offline else None}  # fmt: skip


def _data(args: argparse.Namespace) -> int:
    import pandas as pd

    from workbench.data import default_cache, load_prices

    if args.data_command == "fetch":
        from tqdm.auto import tqdm

        failed = 0
        for sym in tqdm(
            args.symbols,
            desc=f"fetching from {args.source}",
            unit="symbol",
            disable=len(args.symbols) < 2,
        ):
            try:
                df = load_prices(sym, refresh=args.refresh, progress=False, **_load_args(args))
                print(f"ok      {sym:12s} {len(df):>9,d} bars  {df.index[0]} .. {df.index[-1]}")
            except Exception as exc:  # keep going: one bad symbol must not lose the others  # noqa: BLE001
                failed += 1
                print(f"FAILED  {sym:12s} {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1 if failed else 0
    if args.data_command == "list":
        entries = default_cache().entries()
        if not entries:
            print(f"the cache at {default_cache().root} is empty")
            return 0
        rows = [{"source": e.source, "symbol": e.symbol, "tf": e.timeframe, "rows": e.rows, "first": e.first[:19],
                 "last": e.last[:19], "adjusted": e.adjusted, "fetched_at": (e.fetched_at or "?")[:19],
                 "sha256": e.sha256[:12]} for e in entries]  # fmt: skip
        print(pd.DataFrame(rows).to_string(index=False))
        return 0
    if args.data_command == "show":
        df = load_prices(args.symbol, progress=False, **_load_args(args))
        for k, v in df.attrs.items():
            print(f"{k:12s} {v}")
        print(f"{'bars':12s} {len(df):,d}  {df.index[0]} .. {df.index[-1]}")
        with pd.option_context("display.width", 120):
            print(pd.concat([df.head(args.rows), df.tail(args.rows)]).to_string())
        if args.plot:
            from workbench._fs import atomic_write
            from workbench.plots import candlestick_figure

            html = candlestick_figure(df).to_html(include_plotlyjs=True, full_html=True)
            atomic_write(args.plot, html.encode())
            print(f"chart: {args.plot}")
        return 0
    if args.data_command == "validate":
        return _validate(args)
    return 2  # pragma: no cover


def _validate(args: argparse.Namespace) -> int:
    from workbench.adapters.files import read_ohlcv_file
    from workbench.adapters.store import CacheKey
    from workbench.data import default_cache, get_source
    from workbench.errors import DataError

    target = Path(args.target)
    if target.exists() or target.suffix.lower() in (".csv", ".parquet", ".pq"):
        mapping = {}
        for item in args.column:
            old, sep, new = item.partition("=")
            if not sep:
                raise DataError(f"--column expects FILE=CANONICAL, got {item!r}")
            mapping[old] = new or None
        dayfirst = None if args.dayfirst is None else args.dayfirst == "yes"
        df = read_ohlcv_file(target, columns=mapping, tz=args.tz, dayfirst=dayfirst)
        print(f"valid   {target}: {len(df):,d} bars {df.index[0]} .. {df.index[-1]}")
        return 0
    src = get_source(args.source or "sample")
    sym = args.target.strip().upper()
    key = CacheKey(src.name, sym, src.native_timeframe(sym, args.timeframe))
    cache = default_cache()
    entry = cache.info(key)
    if entry is None:
        raise DataError(f"[not_cached] {key} is neither a file nor in the cache at {cache.root}")
    df = cache.read(key)  # verifies the footer, the stored key, the SHA-256 and the OHLC rules
    print(
        f"valid   {key}: {len(df):,d} bars {df.index[0]} .. {df.index[-1]}, sha256 {entry.sha256[:12]} verified"
    )
    return 0


# -- trade: backtest -> risk approval -> deploy (paper), from a YAML config -----------------
def _trade_parser(sub: argparse._SubParsersAction) -> None:
    trade = sub.add_parser("trade", help="paper trading from a YAML config: backtest -> risk approval -> deploy")
    tsub = trade.add_subparsers(dest="trade_command", required=True)
    config_help = "the session's config (YAML; see notebooks/paper_trade.yaml)"
    backtest = tsub.add_parser("backtest", help="run and store the backtest of the config's spec (the run an "
                                                "approval names)")  # fmt: skip
    backtest.add_argument("config", type=Path, help=config_help)
    run = tsub.add_parser("run", help="deploy the approved strategy and replay its bars through the trading loop; "
                                      "run it again to resume the session from its event log")  # fmt: skip
    run.add_argument("config", type=Path, help=config_help)
    run.add_argument("--max-steps", type=_positive, default=None, metavar="N",
                     help="stop after N bars (the next run resumes from there)")  # fmt: skip
    run.add_argument("--session", default=None, metavar="NAME",
                     help="the session's name in the event log (default: the config's session)")  # fmt: skip
    run.add_argument("--risk-report", action="store_true",
                     help="end of the run: keep the session as a run in the store and run the risk_report "
                          "runbook on it (a report folder under reports/risk_report/)")  # fmt: skip
    status = tsub.add_parser("status", help="steps, orders, fills, positions, equity, last reconciliation and "
                                            "settlement of a session, from its event log")  # fmt: skip
    status.add_argument("session", help="the session's name (the config's session, or --session)")


def _trade(args: argparse.Namespace) -> int:
    """A bad config, a missing or mismatched approval and an unknown session are bad usage
    (exit 2, one line); a venue that disagrees with the log stops the run (exit 1)."""
    from workbench.errors import DataError, ParameterError, StrategyStateError, first_line
    from workbench.trading.reconcile import ReconciliationError

    try:
        if args.trade_command == "backtest":
            return _trade_backtest(args.config)
        if args.trade_command == "run":
            return _trade_run(args.config, args.max_steps, args.session, args.risk_report)
        return _trade_status(args.session)
    except ReconciliationError:
        raise  # the venue and the event log disagree: a failed run, not bad usage
    except (ParameterError, StrategyStateError, DataError) as exc:
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {first_line(exc, repr(exc))}", file=sys.stderr)
        return 2


def _trade_backtest(config: Path) -> int:
    """The first step of the flow: the stored run a risk reviewer approves."""
    from workbench.api import default_store, run
    from workbench.errors import ParameterError
    from workbench.trade_config import load_trade_config

    cfg = load_trade_config(config)
    store = default_store()
    if store is None:
        raise ParameterError("trade backtest keeps the run an approval names, and the experiment store is off "
                             "(WORKBENCH_STORE=off)")  # fmt: skip
    prices = cfg.prices()
    result = run(cfg.spec(prices), prices, store=store)
    s = result.stats
    print(f"backtest  {result.spec.label}")
    print(f"run id    {result.run_id}  (spec id {result.id}; stored in {getattr(store, 'path', store)})")
    print(f"stats     total return {s['total_return']:.2%}, Sharpe {s['sharpe']:.2f} ({s['periods_per_year']:g} "
          f"periods/yr, risk-free {s['risk_free_rate']:.2%}), {int(s['n_trades'])} closed trades")  # fmt: skip
    print(f"next      approval: {{run: {result.run_id} (or latest), by: <reviewer>}} in {config}, then "
          f"`workbench trade run {config}`")  # fmt: skip
    return 0


def _trade_run(config: Path, max_steps: int | None, session: str | None, risk_report: bool = False) -> int:
    """Deploy (DRAFT -> TESTING -> LIVE with the config's approval) and replay; resume a known session."""
    from workbench.trade import default_event_log, trade
    from workbench.trade_config import load_trade_config

    cfg = load_trade_config(config)
    kwargs = cfg.trade_arguments(session=session)
    log = default_event_log()
    resumed = kwargs["session"] in log.sessions()
    sess = trade(**kwargs, log=log, max_steps=max_steps, progress=sys.stderr.isatty())
    loop, p = sess.loop, sess.loop.portfolio
    holdings = ", ".join(f"{i.symbol} {p.quantity(i):g}" for i in loop.instruments)
    bars = f", bars {_day(sess.equity.index[0])} .. {_day(sess.equity.index[-1])}" if len(sess.equity) else ""
    print(f"session   {sess.name} ({'resumed from its log' if resumed else 'new'}) on {loop.venue.name}: "
          f"{loop.spec.strategy.name} {loop.spec.strategy.params}, {loop.spec.strategy.status.name}")  # fmt: skip
    print(f"steps     {loop.steps} ({sess.steps_run} this run){bars}")
    print(f"orders    {len(sess.orders)} orders, {len(sess.fills)} fills")
    print(f"equity    {p.equity:,.2f} {p.currency} (cash {p.cash:,.2f}; {holdings})")
    print(f"reconciliation  {sess.reconciliation}")
    print(f"notified  {len(sess.settlements)} settlements this run -> {cfg.notify_path(sess.name)}")
    if risk_report:
        return _session_risk_report(sess)
    return 0


def _session_risk_report(sess: Any) -> int:
    """The end-of-day risk review: the session kept as a run, the risk runbook run on it."""
    from workbench.report import run_report

    run_id = sess.save()
    out = run_report("risk_report", {"run_id": run_id}, timeout=600)
    print(f"risk      {out.status}: {out.html if out.status == 'ok' else out.error} (session run {run_id})")
    return 0 if out.status == "ok" else 1


def _trade_status(session: str) -> int:
    """A session as its event log tells it (no venue is contacted)."""
    from workbench.engines.recovery import read_session
    from workbench.errors import ParameterError
    from workbench.trade import default_event_log

    log = default_event_log()
    records = log.read(session)
    if not records:
        known = log.sessions()
        raise ParameterError(f"unknown session {session!r}; known: {', '.join(known) if known else 'none in this log'}")
    found = read_session(records)
    start = found.start.data if found.start is not None else {}
    print(f"session   {session}: {start.get('strategy', '?')} {start.get('params', {})} on {start.get('venue', '?')}, "
          f"instruments {', '.join(start.get('instruments', []))}")  # fmt: skip
    bars = f", bars {_day(found.bars[0][0])} .. {_day(found.bars[-1][0])}" if found.bars else ""
    print(f"steps     {len(found.steps)}{bars}")
    print(f"orders    {len(found.intents)} orders (intents), {len(found.fills)} fills")
    if found.steps:
        last = found.steps[-1]
        holdings = ", ".join(f"{s} {q:g}" for s, q in last.data["positions"].items())
        print(f"equity    {last.data['equity']:,.2f} (cash {last.data['cash']:,.2f}; {holdings}) at {last.ts}")
    checks = [r for r in records if r.kind == "reconcile"]
    if checks:
        rec = checks[-1].data
        verdict = "ok" if rec.get("ok") else "REFUSED"
        print(f"reconciliation  {verdict}: {'; '.join(rec.get('problems') or []) or 'no differences'} "
              f"({checks[-1].ts}, {len(checks)} in the log)")  # fmt: skip
    if found.settlements:
        snap = found.settlements[-1].data
        print(f"settlement  {snap['day']}: equity {snap['equity']:,.2f}, P&L {snap['pnl']:+,.2f}, fees "
              f"{snap['fees']:,.2f}, risk state {snap.get('risk_state') or '-'}")  # fmt: skip
    return 0


def _day(ts: object) -> str:
    """A bar's stamp: the date alone for daily bars (midnight UTC), else the full time."""
    import pandas as pd

    t = pd.Timestamp(ts)
    return f"{t:%Y-%m-%d}" if t == t.normalize() else t.isoformat()


if __name__ == "__main__":
    raise SystemExit(main())
