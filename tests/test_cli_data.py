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
