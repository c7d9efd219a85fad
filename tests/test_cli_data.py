"""`workbench data fetch|list|show|validate` (run in-process through main())."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main


def test_fetch_list_show_validate_roundtrip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "fetch", "GOOG", "SPX"]) == 0
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "sample   GOOG 1d  2148" in out and "SPX" in out
    chart = tmp_path / "goog.html"
    assert main(["data", "show", "GOOG", "--rows", "1", "--plot", str(chart)]) == 0
    assert "2013-03-01" in capsys.readouterr().out and chart.stat().st_size > 100_000
    assert main(["data", "validate", "GOOG"]) == 0
    assert "verified" in capsys.readouterr().out


def test_fetch_reports_each_failure_and_keeps_going(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "NOPE", "GOOG"]) == 1
    captured = capsys.readouterr()
    assert "FAILED  NOPE" in captured.err and "ok      GOOG" in captured.out


def test_validate_a_bad_file_names_rule_and_timestamp(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,0.5,1.5,10\n2020-01-03,1,0.4,0.5,1.5,10\n")
    assert main(["data", "validate", str(bad), "--tz", "UTC"]) == 1
    assert "[high_ge_low]" in capsys.readouterr().err and "2020-01-03" in bad.read_text()
    assert main(["data", "validate", str(bad)]) == 1
    assert "naive" in capsys.readouterr().err


def test_offline_fetch_of_an_uncached_online_series_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "AAPL", "--source", "yfinance", "--offline"]) == 1
    assert "CacheMissError" in capsys.readouterr().err


def _one_line_error(capsys: pytest.CaptureFixture[str], kind: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {kind}: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("content", "kind", "rule"),
    [
        (b"", "DataReadError", "[file_empty]"),
        (b"Date,Open,High,Low,Close,Volume\n2020-01-02,\"1,5\",2,1,1.5,10\n", "DataValidationError", "[numeric_values]"),
        (b"Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,10\n2099-01-02,1,2,1,1.5,10\n",
         "DataValidationError", "[no_future_bars]"),
        (b"Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1.5,10\n2999-01-02,1,2,1,1.5,10\n",
         "DataValidationError", "[timestamp_range]"),
        (b"Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,1,1e308,10\n", "DataValidationError", "[plausible_prices]"),
    ],
    ids=["empty", "comma-decimal", "future", "beyond-2262", "implausible"],
)
def test_every_data_error_is_one_line_with_exit_1(capsys, tmp_path, content, kind, rule) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(content)
    assert main(["data", "validate", str(path), "--tz", "UTC"]) == 1
    assert rule in _one_line_error(capsys, kind)


def test_missing_file_and_directory_are_one_line(capsys, tmp_path) -> None:
    assert main(["data", "validate", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv" in _one_line_error(capsys, "DataReadError")
    (tmp_path / "dir.csv").mkdir()
    assert main(["data", "validate", str(tmp_path / "dir.csv")]) == 1
    assert "is a directory" in _one_line_error(capsys, "DataReadError")


def test_a_corrupt_cache_entry_is_one_line_naming_refresh(capsys) -> None:
    from workbench.adapters.store import CacheKey
    from workbench.data import default_cache

    assert main(["data", "fetch", "IXIC"]) == 0
    path = default_cache().path(CacheKey("sample", "IXIC", "1d"))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["data", "validate", "IXIC"]) == 1
    assert "refresh=True" in _one_line_error(capsys, "CacheCorruptError")
    assert main(["data", "fetch", "IXIC", "--refresh"]) == 0  # and a fresh copy heals it
    assert main(["data", "validate", "IXIC"]) == 0


def test_bad_usage_exits_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "validate"])
    assert exc.value.code == 2
