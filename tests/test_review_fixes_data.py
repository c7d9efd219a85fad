"""Review fixes on the data path: non-regular cache files, synthetic stamps past 2262, mixed
UTC offsets in files, overflowing cash and integer parameters, duplicate panel symbols.

Every FIFO test runs the read in a child process under a timeout: before the fix the read
blocks for ever, and a test must fail then, never hang CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.adapters.files import read_ohlcv_file
from workbench.adapters.store import CacheKey, ParquetCache
from workbench.adapters.synthetic import LAST_STAMP, SyntheticSource
from workbench.errors import DataValidationError, ParameterError
from workbench.strategy.base import MAX_INT_PARAM, MAX_SEED, check_int

ROOT = Path(__file__).resolve().parents[1]
GUARD_S = 60  # a child still running after this has hung on the FIFO


def _guarded(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; a hang is a test failure after GUARD_S, not a stuck CI."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                              text=True, timeout=GUARD_S, cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip
    except subprocess.TimeoutExpired:  # run() has killed the child
        pytest.fail(f"the read blocked for more than {GUARD_S} s (a FIFO was opened and waited on)")


def _cached(tmp_path: Path, *symbols: str) -> ParquetCache:
    cache = ParquetCache(tmp_path / "cache")
    for sym in symbols:
        wb.load_prices(sym, cache=cache)
    return cache


# -- 1. a FIFO (or a link to one) in the cache --------------------------------------------
FIFO_READS = """
import json, sys, warnings
from workbench.adapters.store import CacheKey, ParquetCache
from workbench.errors import WorkbenchError
cache, key = ParquetCache(sys.argv[1]), CacheKey("sample", sys.argv[2], "1d")
out = {}
for name, call in [("info", lambda: cache.info(key)), ("read", lambda: cache.read(key)),
                   ("entries", lambda: [e.symbol for e in cache.entries()])]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            out[name] = ["ok", repr(call()) if name != "entries" else call()]
        except WorkbenchError as exc:
            out[name] = [type(exc).__name__, str(exc)]
    out[name].append([str(w.message) for w in seen])
print(json.dumps(out))
"""


def _fifo_reads(cache: ParquetCache, symbol: str) -> dict[str, list]:
    done = _guarded(FIFO_READS, str(cache.root), symbol)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_fifo_in_the_cache_is_refused_as_corrupt_and_moved_aside_never_waited_on(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "IXIC", "GOOG")
    path = cache.path(CacheKey("sample", "IXIC", "1d"))
    path.unlink()
    os.mkfifo(path)
    got = _fifo_reads(cache, "IXIC")
    kind, msg, _ = got["info"]
    assert kind == "CacheCorruptError" and str(path) in msg and "FIFO" in msg and "not a regular file" in msg
    assert got["read"][:2] == ["ok", "None"]  # moved aside by info(): now a plain miss
    assert got["entries"][1] == ["GOOG"]
    assert [p.name.split(".corrupt-")[0] for p in path.parent.glob("*.corrupt-*")] == ["IXIC.parquet"]
    pd.testing.assert_frame_equal(wb.load_prices("IXIC", cache=cache), wb.load_prices("IXIC", cache=False),
                                  check_freq=False)  # fmt: skip  # the next load fetches a good copy


def test_entries_skip_a_fifo_with_a_warning_naming_it(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "IXIC", "GOOG")
    path = cache.path(CacheKey("sample", "IXIC", "1d"))
    path.unlink()
    os.mkfifo(path)
    done = _guarded("import sys, json; from workbench.adapters.store import ParquetCache; "
                    "print(json.dumps([e.symbol for e in ParquetCache(sys.argv[1]).entries()]))",
                    str(cache.root))  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout) == ["GOOG"], done.stderr
    assert "[cache_corrupt]" in done.stderr and str(path) in done.stderr and "FIFO" in done.stderr


def test_a_symlink_to_a_fifo_is_refused_and_only_the_link_is_moved(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "GOOG")
    path = cache.path(CacheKey("sample", "GOOG", "1d"))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path.unlink()
    path.symlink_to(fifo)
    kind, msg, _ = _fifo_reads(cache, "GOOG")["info"]
    assert kind == "CacheCorruptError" and str(path) in msg and "FIFO" in msg
    assert fifo.exists() and not path.is_symlink()  # the link went aside, its target stayed


def test_the_cli_lists_and_shows_past_a_fifo_instead_of_hanging(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "IXIC", "GOOG")
    path = cache.path(CacheKey("sample", "IXIC", "1d"))
    path.unlink()
    os.mkfifo(path)
    env = {"WORKBENCH_CACHE_DIR": str(cache.root)}
    cli = "import sys; from workbench.cli import main; sys.exit(main(sys.argv[1:]))"
    listed = _guarded(cli, "data", "list", env=env)
    assert listed.returncode == 0 and "GOOG" in listed.stdout and "IXIC" not in listed.stdout
    os.mkfifo(path)
    shown = _guarded(cli, "data", "show", "IXIC", env=env)
    assert shown.returncode == 1 and "CacheCorruptError" in shown.stderr and str(path) in shown.stderr
    assert _guarded(cli, "data", "show", "IXIC", env=env).returncode == 0  # healed by a fresh copy


def test_a_fifo_fetch_log_is_a_cache_access_error_naming_it(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "GOOG")
    log = cache._log_path(CacheKey("sample", "GOOG", "1d"))
    log.unlink()
    os.mkfifo(log)
    code = """
    import sys
    from workbench.adapters.store import CacheKey, ParquetCache
    from workbench.errors import CacheAccessError
    cache, key = ParquetCache(sys.argv[1]), CacheKey("sample", "GOOG", "1d")
    for call in (lambda: cache.info(key), lambda: cache.record(key, "ok")):
        try:
            call()
            print("no error")
        except CacheAccessError as exc:
            print(exc)
    """
    done = _guarded(code, str(cache.root))
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr
    assert all(str(log) in line for line in lines) and "FIFO" in lines[0]
    assert log.exists()  # a journal is never moved aside


def test_a_directory_where_the_parquet_file_should_be_is_corrupt_and_listing_goes_on(tmp_path: Path) -> None:
    cache = _cached(tmp_path, "GOOG", "IXIC")
    path = cache.path(CacheKey("sample", "IXIC", "1d"))
    path.unlink()
    path.mkdir()
    with pytest.warns(RuntimeWarning, match="a directory, not a regular file"):
        assert [e.symbol for e in cache.entries()] == ["GOOG"]


# -- 2. synthetic stamps stay inside what pandas holds -----------------------------------
@pytest.mark.parametrize("timeframe", [None, "1d", "1w", "1M", "1h", "1m"])
def test_the_default_synthetic_series_fits_every_timeframe(timeframe: str | None) -> None:
    got = wb.load_prices("FOO", source="synthetic", timeframe=timeframe)
    assert pd.Timestamp("2020-01-01", tz="UTC") <= got.index[0] < got.index[-1] <= LAST_STAMP
    assert len(got) <= 100_000
    pd.testing.assert_frame_equal(got, wb.load_prices("FOO", source="synthetic", timeframe=timeframe))


def test_minute_and_hour_defaults_are_unchanged_and_daily_ends_at_the_limit() -> None:
    assert len(wb.load_prices("SYN1", source="synthetic", timeframe="1m")) == 100_000
    assert len(wb.load_prices("SYN1", source="synthetic", timeframe="1h")) == 100_000
    daily = wb.load_prices("SYN1", source="synthetic")
    assert (len(daily), daily.index[-1]) == (65_745, LAST_STAMP)
    np.testing.assert_array_equal(daily["Close"].to_numpy()[:500],
                                  wb.synthetic_bars(500, "1d", seed=1)["Close"].to_numpy())  # fmt: skip


def test_the_cli_fetches_and_shows_a_default_synthetic_series(capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.cli import main

    assert main(["data", "fetch", "FOO", "--source", "synthetic"]) == 0
    assert main(["data", "show", "FOO", "--source", "synthetic", "--timeframe", "1d"]) == 0
    assert "OutOfBounds" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: wb.synthetic_bars(100_000, "1d"), r"100,000 1d bars .* past LAST_STAMP 2200-01-01 .*at most 65,745"),
        (lambda: wb.synthetic_bars(3, "1M", start="2262-04-01"), r"first bar 2262-04-01.*after LAST_STAMP 2200-01-01"),
        (lambda: wb.load_prices("SYN1", end="3000-01-01", source="synthetic"), r"end 3000-01-01.*LAST_STAMP 2200-01-01"),
        (lambda: wb.load_prices("SYN1", start="2250-01-01", source="synthetic"), r"first bar 2250.*LAST_STAMP"),
        (lambda: wb.load_prices("SYN1", source=SyntheticSource(bars=100_000)), r"100,000 1d bars.*LAST_STAMP"),
    ],
)
def test_an_explicit_synthetic_request_that_cannot_fit_names_the_limit(call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ParameterError, match=match):
        call()


def test_a_named_synthetic_symbol_gets_the_same_bars_in_every_process() -> None:
    code = "import workbench as wb; print(repr(float(wb.load_prices('FOO', source='synthetic')['Close'].iloc[-1])))"
    runs = [_guarded(code, env={"PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout  # hash() of a str changes with PYTHONHASHSEED: not a seed


# -- 3. ISO stamps whose UTC offsets change (a DST change) -------------------------------
DST = "date,open,high,low,close,volume\n2021-03-26T00:00:00+01:00,1,2,0.5,1.5,10\n2021-03-29T00:00:00+02:00,1,2,0.5,1.5,10\n"


@pytest.mark.parametrize("tz", [None, "Europe/Berlin", "UTC"])
@pytest.mark.filterwarnings("ignore::workbench.market.DataRepairWarning")
def test_stamps_with_their_own_changing_offsets_are_read_as_utc(tmp_path: Path, tz: str | None) -> None:
    path = tmp_path / "dax.csv"
    path.write_text(DST)
    got = read_ohlcv_file(path, tz=tz)
    want = pd.DatetimeIndex(["2021-03-25 23:00", "2021-03-28 22:00"], tz="UTC", name="timestamp")
    pd.testing.assert_index_equal(got.index, want.as_unit("ns"))
    src = wb.get_source(f"file:{path}", tz=tz)
    pd.testing.assert_index_equal(wb.load_prices("dax", source=src).index, want.as_unit("ns"))


@pytest.mark.parametrize("offset", ["Z", "+0200", "+02"])
@pytest.mark.filterwarnings("ignore::workbench.market.DataRepairWarning")
def test_every_offset_spelling_counts(tmp_path: Path, offset: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(DST.replace("+02:00", offset))
    assert read_ohlcv_file(path).index.tz is not None


@pytest.mark.filterwarnings("ignore::workbench.market.DataRepairWarning")
def test_naive_stamps_among_offset_stamps_are_named_not_pandas_advice(tmp_path: Path) -> None:
    path = tmp_path / "mix.csv"
    path.write_text(DST.replace("2021-03-29T00:00:00+02:00", "2021-03-29"))
    with pytest.raises(DataValidationError, match=r"\[timestamps\] mix: row 1 '2021-03-29' has no UTC offset") as err:
        read_ohlcv_file(path, tz="Europe/Berlin")
    assert "utc=True" not in str(err.value)


# -- 4. overflowing cash and integer parameters ------------------------------------------
@pytest.mark.parametrize("cash", [1e308, 1e16, 10**400])
def test_implausible_cash_is_a_parameter_error_naming_the_bound(cash: float) -> None:
    with pytest.raises(ParameterError, match=r"cash must be <= 1e\+15 \(MAX_CASH"):
        wb.backtest("sma_crossover", "GOOG", cash=cash)


def test_cash_at_the_bound_still_runs(goog: pd.DataFrame) -> None:
    assert wb.backtest("sma_crossover", goog, cash=1e15).stats["n_trades"] > 0


def test_grid_search_checks_the_cash_bound_too(goog: pd.DataFrame) -> None:
    with pytest.raises(ParameterError, match="MAX_CASH"):
        wb.grid_search("sma_crossover", goog, {"fast": [5], "slow": [20]}, cash=1e308)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"fast": 10**30, "slow": 10**31}, r"fast must be <= 10,000,000 \(MAX_INT_PARAM\), got fast=10{30}"),
        ({"fast": 10, "slow": 2**31}, r"slow must be <= 10,000,000 \(MAX_INT_PARAM\), got slow=2147483648"),
        ({"fast": np.int64(2**62), "slow": 10}, r"fast must be <= 10,000,000"),
    ],
)
def test_huge_integer_parameters_are_named_not_overflowed(goog: pd.DataFrame, params: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        wb.backtest("sma_crossover", goog, params)


def test_seeds_have_their_own_ceiling_and_explicit_maxima_still_rule() -> None:
    assert wb.MLClassifier(seed=20_240_101).seed == 20_240_101  # a date as a seed is fine
    with pytest.raises(ParameterError, match=rf"seed must be <= {MAX_SEED:,} \(MAX_SEED\), got seed={2**32}"):
        wb.MLClassifier(seed=2**32)
    assert check_int("n", MAX_INT_PARAM, 1) == MAX_INT_PARAM
    assert check_int("n", 10**9, 1, 10**10) == 10**9  # a caller's own maximum replaces the default
    with pytest.raises(ParameterError, match=r"n must be in \[1, 5\], got n=6"):
        check_int("n", 6, 1, 5)


# -- 5. duplicate symbols in a panel request ---------------------------------------------
@pytest.mark.parametrize("symbols", [["GOOG", "GOOG"], ["goog", "SPX", "GOOG"], ("SPX", " spx ")])
def test_a_symbol_asked_for_twice_is_a_parameter_error_naming_it(symbols: list[str]) -> None:
    with pytest.raises(ParameterError, match=r"symbol '(GOOG|SPX)' is asked for twice"):
        wb.load_prices(symbols)


def test_a_portfolio_backtest_on_a_duplicated_symbol_is_refused() -> None:
    with pytest.raises(ParameterError, match="'SPX' is asked for twice"):
        wb.backtest("pairs", ["SPX", "SPX"])


def test_a_window_above_talibs_limit_is_a_parameter_error() -> None:
    import workbench as wb
    from workbench.errors import ParameterError

    with pytest.raises(ParameterError, match="<= 100,000 .TA-Lib's limit., got 200000"):
        wb.backtest("sma_crossover", "GOOG", {"fast": 200_000, "slow": 300_000})
